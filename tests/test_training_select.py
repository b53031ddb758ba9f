"""Checkpoint selection on validation (training/select.py): the rule, and the command on a tiny run."""

from __future__ import annotations

import json

import pytest

from tsjnet_sdk.training.select import select_checkpoint

BASE = {"average": {"PSNR": 16.6, "VIF": 0.27, "Qabf": 0.40}, "max": {"PSNR": 13.6, "VIF": 0.40, "Qabf": 0.55}}


def test_highest_vif_plus_qabf_among_checkpoints_above_the_max_psnr():
    rows = [
        {"step": "250", "PSNR": "16.0", "VIF": "0.25", "Qabf": "0.46"},
        {"step": "500", "PSNR": "13.0", "VIF": "0.40", "Qabf": "0.60"},  # sharper but below the max's PSNR
        {"step": "750", "PSNR": "15.4", "VIF": "0.26", "Qabf": "0.48"},
    ]
    choice = select_checkpoint(rows, BASE)
    assert choice["step"] == 750 and "above the max" in choice["rule"]


def test_falls_back_to_the_highest_psnr_and_rejects_empty_logs():
    rows = [
        {"step": "1", "PSNR": "12.0", "VIF": "0.3", "Qabf": "0.5"},
        {"step": "2", "PSNR": "13.0", "VIF": "0.2", "Qabf": "0.4"},
    ]
    assert select_checkpoint(rows, BASE)["step"] == 2
    with pytest.raises(ValueError, match="no validation row"):
        select_checkpoint([{"step": "1", "PSNR": "nan", "VIF": "0.1", "Qabf": "0.1"}], BASE)


@pytest.mark.slow
def test_select_command_on_a_tiny_run(tmp_path):
    from test_training_trainer import _write_toml, make_pairs
    from typer.testing import CliRunner

    from tsjnet_sdk.cli import app

    make_pairs(tmp_path / "data", 6)
    extra = "keep_checkpoints = true\ncheckpoint_every = 1\n[val]\nfraction = 0.34\nevery_steps = 1\ncrop_size = 64\n"
    toml = _write_toml(tmp_path / "cfg.toml", tmp_path / "data", tmp_path / "run", extra)
    res = CliRunner().invoke(app, ["train", str(toml), "--max-steps", "2"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "run" / "step_0000001.safetensors").exists() and (tmp_path / "run" / "step_0000002.safetensors").exists()
    res = CliRunner().invoke(app, ["select", str(toml)])
    assert res.exit_code == 0, res.output
    sel = json.loads((tmp_path / "run" / "selection.json").read_text())
    assert sel["choice"]["step"] in (1, 2) and set(sel["baselines"]) == {"average", "max", "laplacian"}
    assert (tmp_path / "run" / f"step_{sel['choice']['step']:07d}.safetensors").exists()
