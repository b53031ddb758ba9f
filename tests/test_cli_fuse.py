"""`tsjnet fuse`: end to end on synthetic and real pairs, colour handling, errors."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from tsjnet_sdk.cli import app
from tsjnet_sdk.imaging import read_image, rgb_to_ycbcr, write_image

runner = CliRunner()


@pytest.fixture
def synthetic_pair(tmp_path):
    rng = np.random.default_rng(0)
    ir = rng.integers(0, 256, (48, 72), dtype=np.uint8)
    vis = rng.integers(60, 200, (48, 72, 3), dtype=np.uint8)  # mid-range colours: no clipping on output
    return write_image(tmp_path / "ir.png", ir), write_image(tmp_path / "vis.png", vis)


def test_fuse_colour_output_keeps_visible_chroma(tmp_path, synthetic_pair):
    out = tmp_path / "out" / "fused.png"
    result = runner.invoke(app, ["fuse", *map(str, synthetic_pair), "-o", str(out), "--config", "tsjnet-tiny"])
    assert result.exit_code == 0, result.output
    assert "RANDOM weights" in result.output
    fused = read_image(out)
    assert fused.shape == (48, 72, 3)
    _, cb_f, cr_f = rgb_to_ycbcr(fused / 255.0)
    _, cb_v, cr_v = rgb_to_ycbcr(read_image(synthetic_pair[1]) / 255.0)
    assert np.abs(cb_f - cb_v).max() < 3 / 255 and np.abs(cr_f - cr_v).max() < 3 / 255


def test_fuse_gray_and_checkpoint(tmp_path, synthetic_pair):
    import torch

    from tsjnet_sdk.models import create_model, save_checkpoint

    torch.manual_seed(0)
    ckpt = save_checkpoint(create_model("tsjnet-tiny").eval(), tmp_path / "tiny.safetensors")
    out = tmp_path / "g.png"
    result = runner.invoke(app, ["fuse", *map(str, synthetic_pair), "-o", str(out), "-m", str(ckpt), "--gray"])
    assert result.exit_code == 0, result.output
    assert "RANDOM" not in result.output
    assert read_image(out).shape == (48, 72)


def test_fuse_defaults_to_the_shipped_weights(tmp_path, synthetic_pair):
    from tsjnet_sdk.shipped import SHIPPED_WEIGHTS

    if not SHIPPED_WEIGHTS.exists():
        pytest.skip(f"no shipped weights at {SHIPPED_WEIGHTS}")
    out = tmp_path / "d.png"
    result = runner.invoke(app, ["fuse", *map(str, synthetic_pair), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "model: shipped tsjnet-edge (tsjnet-edge.onnx on onnxruntime)" in result.output and "RANDOM" not in result.output
    assert read_image(out).shape == (48, 72, 3)


def test_fuse_errors(tmp_path, synthetic_pair):
    small = write_image(tmp_path / "small.png", np.zeros((40, 40), np.uint8))
    result = runner.invoke(
        app, ["fuse", str(small), str(synthetic_pair[1]), "-o", str(tmp_path / "x.png"), "--config", "tsjnet-tiny"]
    )
    assert result.exit_code == 1 and "same size" in result.output
    assert not (tmp_path / "x.png").exists()
    not_ckpt = tmp_path / "bad.safetensors"
    not_ckpt.write_text("garbage")
    result = runner.invoke(app, ["fuse", *map(str, synthetic_pair), "-m", str(not_ckpt), "-o", str(tmp_path / "y.png")])
    assert result.exit_code == 2 and "unknown model file kind" in result.output


def test_fuse_real_msrs_pair(tmp_path, msrs_pair):
    out = tmp_path / "msrs.png"
    result = runner.invoke(app, ["fuse", *map(str, msrs_pair), "-o", str(out), "--config", "tsjnet-tiny"])
    assert result.exit_code == 0, result.output
    assert read_image(out).shape == (480, 640, 3)


def test_fuse_folders_reports_unpaired_and_bad_pairs(tmp_path):
    rng = np.random.default_rng(3)
    for folder in ("ir", "vi"):
        (tmp_path / folder).mkdir()
    for name in ("a", "b"):
        write_image(tmp_path / "ir" / f"{name}.png", rng.integers(0, 256, (40, 50), dtype=np.uint8))
        write_image(tmp_path / "vi" / f"{name}.png", rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
    write_image(tmp_path / "ir" / "only_ir.png", np.zeros((40, 50), np.uint8))
    (tmp_path / "ir" / "c.png").write_bytes(b"corrupt")
    write_image(tmp_path / "vi" / "c.png", np.zeros((40, 50, 3), np.uint8))
    out = tmp_path / "out"
    result = runner.invoke(app, ["fuse", str(tmp_path / "ir"), str(tmp_path / "vi"), "-o", str(out), "--config", "tsjnet-tiny"])
    assert result.exit_code == 1, result.output  # one bad pair: reported, the others still written
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert "unpaired: only_ir (ir only)" in result.output
    assert "c:" in result.output and "fused 2/3" in result.output


def test_info_and_doctor(tmp_path):
    import torch

    from tsjnet_sdk.models import create_model, save_checkpoint

    ckpt = save_checkpoint(create_model("tsjnet-tiny"), tmp_path / "t.safetensors")
    result = runner.invoke(app, ["info", str(ckpt)])
    assert result.exit_code == 0 and "checkpoint" in result.output and "tsjnet-tiny" in result.output
    result = runner.invoke(app, ["info", str(tmp_path / "nothing.onnx")])
    assert result.exit_code == 2 and "not found" in result.output
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "torch" in result.output and torch.__version__.split("+")[0] in result.output
    assert "onnxruntime" in result.output and "CPUExecutionProvider" in result.output
