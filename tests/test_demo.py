"""`tsjnet demo` core (tsjnet_sdk.demo.run_demo): files, panels and metrics written; model resolution."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import require_shared_data

from tsjnet_sdk import demo, shipped
from tsjnet_sdk.demo import METHODS, DemoError, make_panel, run_demo
from tsjnet_sdk.imaging import prepare_pair, read_image, rgb_to_ycbcr, to_unit_float, write_image
from tsjnet_sdk.metrics import PRESETS
from tsjnet_sdk.samples import night_scene


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from tsjnet_sdk.models import create_model, save_checkpoint

    torch.set_num_threads(1)
    torch.manual_seed(0)
    return save_checkpoint(create_model("tsjnet-tiny").eval(), tmp_path_factory.mktemp("demo") / "tiny.safetensors")


def test_demo_on_builtin_scenes(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    summary = run_demo(model=tiny_model, out_dir=out, count=1, size=(64, 96), quiet=True, real=False)
    assert summary["trained"] and summary["model"] == str(tiny_model)
    [pair] = summary["pairs"]
    assert pair["name"] == "night_00"
    for method in METHODS:
        image = read_image(out / method / "night_00.png")
        assert image.shape == (64, 96, 3) and image.dtype == np.uint8  # colour visible -> colour outputs
    # the procedural inputs are written too, so `tsjnet eval` can re-score the folders
    ir, vis = night_scene(64, 96, seed=0)
    np.testing.assert_array_equal(read_image(out / "inputs" / "ir" / "night_00.png"), ir)
    np.testing.assert_array_equal(read_image(out / "inputs" / "vis" / "night_00.png"), vis)
    panel = read_image(pair["panel"])
    assert panel.shape[1] == 3 * 96 and panel.shape[0] > 2 * 64  # 2 rows x 3 tiles + label bars

    # metrics: every method, every metric of the paper preset, in CSV and JSON
    keys = list(PRESETS["paper"].metrics)
    doc = json.loads(Path(summary["metrics_json"]).read_text())
    assert doc["preset"] == "paper" and doc["trained"] is True and doc["methods"] == list(METHODS)
    assert set(doc["pairs"]["night_00"]) == set(METHODS)
    assert list(doc["pairs"]["night_00"]["average"]) == keys
    assert doc["pairs"]["night_00"]["tsjnet"]["EN"] > 0
    assert doc["pairs"]["night_00"]["max"]["MS_SSIM"] is None  # 64 px < 161 px: undefined, null
    with open(summary["metrics_csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["pair"], r["method"]) for r in rows] == [(p, m) for p in ("night_00", "mean") for m in METHODS]
    assert math.isclose(float(rows[1]["EN"]), summary["metrics"]["night_00"]["average"]["EN"], rel_tol=1e-5)
    # the average baseline's luminance is the mean of the two input luminances (to 8-bit rounding)
    ir_y, vis_y, _ = prepare_pair(ir, vis)
    avg_y, _, _ = rgb_to_ycbcr(to_unit_float(read_image(out / "average" / "night_00.png")))
    assert np.abs(avg_y - (ir_y + vis_y) / 2).max() < 2.5 / 255


def test_demo_on_a_folder_of_grey_pairs(tiny_model: Path, tmp_path: Path) -> None:
    ir, vis = night_scene(48, 64, seed=3)
    grey_vis = vis.mean(axis=2).astype(np.uint8)
    for name in ("a", "b"):
        write_image(tmp_path / "ir" / f"{name}.png", ir)
        write_image(tmp_path / "vi" / f"{name}.png", grey_vis)
    write_image(tmp_path / "ir" / "lonely.png", ir)  # no partner: skipped
    summary = run_demo(model=tiny_model, ir=tmp_path / "ir", vis=tmp_path / "vi", out_dir=tmp_path / "out", quiet=True)
    assert [p["name"] for p in summary["pairs"]] == ["a", "b"]
    assert read_image(tmp_path / "out" / "tsjnet" / "a.png").shape == (48, 64)  # grey in, grey out
    assert not (tmp_path / "out" / "inputs").exists()  # user inputs are not copied


def test_demo_input_errors(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(DemoError, match="both --ir and --vis"):
        run_demo(model=tiny_model, ir=tmp_path, out_dir=tmp_path / "out")
    with pytest.raises(DemoError, match="does not exist"):
        run_demo(model=tmp_path / "missing.safetensors", out_dir=tmp_path / "out")
    with pytest.raises(DemoError, match="H, W >= 32"):
        run_demo(model=tiny_model, size=(16, 16), out_dir=tmp_path / "out")


def test_fallback_is_random_edge_with_a_warning(monkeypatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setattr(shipped, "WEIGHTS_DIR", tmp_path)  # a stripped install: no shipped file at all
    state = torch.random.get_rng_state()
    net, description, trained = demo.resolve_model(None)
    assert not trained and "random" in description
    assert net.config.name == "tsjnet-edge"
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is untouched
    assert "RANDOMLY INITIALISED" in capsys.readouterr().err
    again, _, _ = demo.resolve_model(None)  # seed 0: the same weights each time
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))


def test_shipped_weights_are_preferred(monkeypatch, tiny_model: Path, tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copy(tiny_model, weights / "tsjnet-edge.safetensors")  # a shipped checkpoint and no shipped ONNX
    monkeypatch.setattr(shipped, "WEIGHTS_DIR", weights)
    model, description, trained = demo.resolve_model(None)
    assert model == weights / "tsjnet-edge.safetensors" and trained and "shipped" in description


def test_make_panel_layout() -> None:
    tiles = [(str(i), np.full((20, 30), 40 * i, np.uint8)) for i in range(6)]
    panel = make_panel(tiles, columns=3)
    bar = panel.shape[0] // 2 - 20
    assert panel.shape == (2 * (20 + bar), 90, 3) and bar > 0
    assert (panel[bar + 5, 30 + 5] == 40).all() and (panel[-1, -1] == 200).all()  # tile 1 top row, tile 5 last
    with pytest.raises(ValueError, match="expected"):
        make_panel([("a", np.zeros((20, 30), np.uint8)), ("b", np.zeros((10, 30), np.uint8))])


def test_demo_on_real_pairs(tiny_model: Path, tmp_path: Path) -> None:
    root = require_shared_data("msrs", "test")
    ir, vis = read_image(root / "ir" / "00004N.png"), read_image(root / "vi" / "00004N.png")
    # a small crop keeps the run short
    write_image(tmp_path / "ir.png", ir[:96, :128])
    write_image(tmp_path / "vis.png", vis[:96, :128])
    summary = run_demo(model=tiny_model, ir=tmp_path / "ir.png", vis=tmp_path / "vis.png", out_dir=tmp_path / "out", quiet=True)
    assert summary["pairs"][0]["name"] == "ir"
    assert all(np.isfinite(summary["metrics"]["ir"][m]["EN"]) for m in METHODS)


def test_demo_command_through_typer(tiny_model: Path, tmp_path: Path) -> None:
    # The command as `tsjnet demo` will register it (tsjnet_sdk/cli.py: app.command("demo")(demo_command)).
    import typer
    from typer.testing import CliRunner

    app = typer.Typer()
    app.command("demo")(demo.demo_command)
    app.command("noop")(lambda: None)  # two commands: typer then dispatches on the name, as in the real CLI
    runner = CliRunner()
    out = tmp_path / "cli-out"
    threads_before = torch.get_num_threads()
    result = runner.invoke(
        app,
        [
            "demo",
            "--model",
            str(tiny_model),
            "--out",
            str(out),
            "--count",
            "1",
            "--height",
            "48",
            "--width",
            "64",
            "--threads",
            str(threads_before + 1),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "metrics:" in result.output and (out / "metrics.csv").exists() and (out / "panels" / "night_00.png").exists()
    assert torch.get_num_threads() == threads_before  # --threads is restored afterwards
    bad = runner.invoke(app, ["demo", "--ir", str(tmp_path), "--out", str(out)])
    assert bad.exit_code == 2


def _real_root(root: Path) -> Path:
    """A data root with two of the demo's REAL_SAMPLES (small synthetic stand-ins) and one missing."""
    for folder, stem, ext in (("msrs/test", "00004N", ".png"), ("tno", "01", ".png")):
        ir, vis = night_scene(64, 96, seed=len(stem))
        write_image(root / folder / "ir" / f"{stem}{ext}", ir)
        write_image(root / folder / "vi" / f"{stem}{ext}", vis)
    return root


def test_real_sample_pairs_are_found_in_the_data_root(tmp_path: Path) -> None:
    pairs, where = demo.real_sample_pairs(_real_root(tmp_path / "data"))
    assert where == tmp_path / "data"
    assert [name for name, _, _ in pairs] == ["msrs_00004N", "tno_01"]  # msrs_00055D is absent: left out
    assert demo.real_sample_pairs(tmp_path / "nothing")[0] == []


def test_builtin_demo_adds_real_pairs_from_tsjnet_data(tiny_model: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TSJNET_DATA", str(_real_root(tmp_path / "data")))
    summary = run_demo(model=tiny_model, out_dir=tmp_path / "out", count=1, size=(64, 96), quiet=True)
    assert [p["name"] for p in summary["pairs"]] == ["night_00", "msrs_00004N", "tno_01"]
    assert (tmp_path / "out" / "panels" / "msrs_00004N.png").is_file()
    assert (tmp_path / "out" / "inputs" / "ir" / "tno_01.png").is_file()  # re-scorable with tsjnet eval
