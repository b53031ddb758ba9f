"""The default model needs no torch: the shipped ONNX, what `Fuser()` / `Fuser("tsjnet-edge")` / `tsjnet fuse`
without -m run, and that the choice is made (and explained) in tsjnet_sdk/shipped.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli_without, run_python_without
from typer.testing import CliRunner

from tsjnet_sdk import shipped
from tsjnet_sdk.cli import app
from tsjnet_sdk.hashing import file_sha256
from tsjnet_sdk.runtime.artifacts import read_onnx_metadata

pytestmark = pytest.mark.skipif(not shipped.SHIPPED_ONNX.exists(), reason=f"no shipped ONNX at {shipped.SHIPPED_ONNX}")
runner = CliRunner()


def test_shipped_onnx_is_the_shipped_checkpoint_and_passed_parity() -> None:
    meta = read_onnx_metadata(shipped.SHIPPED_ONNX)
    assert meta["source_checkpoint_sha256"] == file_sha256(shipped.SHIPPED_WEIGHTS), (
        "tsjnet_sdk/weights/tsjnet-edge.onnx was exported from other weights: re-run scripts/export_shipped_onnx.sh"
    )
    assert meta["config_name"] == "tsjnet-edge" and meta["precision"] == "fp32" and meta["shapes"] == "dynamic"
    assert meta["na_mode"] == "decomposed"  # standard ops: runs in any ONNX Runtime and TensorRT without a plugin
    report = json.loads(shipped.SHIPPED_MODELS["tsjnet-edge"].parity_report.read_text())
    assert report["artefact"] == "tsjnet-edge.onnx" and report["passed"] and report["psnr_db"] >= 60
    # small enough for a wheel (a lean export shrinks it further: issue 20)
    assert shipped.SHIPPED_ONNX.stat().st_size < 40 * 2**20
    fp16 = shipped.SHIPPED_MODELS["tsjnet-edge"].onnx_fp16
    meta16 = read_onnx_metadata(fp16)
    assert meta16["source_checkpoint_sha256"] == meta["source_checkpoint_sha256"] and meta16["precision"] == "fp16"
    report16 = json.loads(fp16.with_name("tsjnet-edge_fp16.parity.json").read_text())
    assert report16["artefact"] == fp16.name and report16["passed"] and report16["psnr_db"] >= 40


def test_default_and_named_models_run_on_onnxruntime_and_the_backend_choice_is_explained() -> None:
    from tsjnet_sdk import Fuser

    for fuser in (Fuser(), Fuser("tsjnet-edge")):
        assert fuser.backend == "onnxruntime" and Path(fuser.describe()["model"]).name == "tsjnet-edge.onnx"
    choice = shipped.choose_file()
    assert choice.backend == "onnxruntime" and "fastest measured CPU path" in choice.why
    torch_choice = shipped.choose_file(backend="torch")
    assert torch_choice.path == shipped.SHIPPED_WEIGHTS and torch_choice.backend == "torch"
    with pytest.raises(shipped.ShippedModelError, match="tsjnet export tsjnet-edge --format engine"):
        shipped.choose_file(backend="tensorrt")
    with pytest.raises(shipped.ShippedModelError, match="unknown model name 'tsjnet-big'"):
        shipped.choose_file("tsjnet-big")


def test_without_onnxruntime_the_checkpoint_runs_on_torch_and_without_both_the_error_names_the_extra(monkeypatch) -> None:
    monkeypatch.setattr(shipped, "_importable", lambda module: module != "onnxruntime")
    choice = shipped.choose_file()
    assert choice.backend == "torch" and "onnxruntime is not installed" in choice.why
    assert "pip install 'tsjnet-sdk[onnx]'" in choice.why
    monkeypatch.setattr(shipped, "_importable", lambda module: False)
    with pytest.raises(shipped.ShippedModelError, match=r"pip install 'tsjnet-sdk\[onnx\]'"):
        shipped.choose_file()


def test_a_file_named_like_a_shipped_model_wins(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tsjnet-edge").write_bytes(b"not a model")
    assert not shipped.is_shipped_name("tsjnet-edge")
    assert shipped.is_shipped_name(None)


@pytest.mark.slow
def test_fuser_runs_with_torch_absent_and_matches_the_torch_reference(tmp_path) -> None:
    """The acceptance check of issue 19: `Fuser()(ir, vis)` in a process where torch cannot be imported."""
    code = f"""
import numpy as np, sys
from tsjnet_sdk import Fuser
from tsjnet_sdk.samples import night_scene
ir, vis = night_scene(96, 128, seed=3)
fuser = Fuser()
out = fuser(ir, vis)
assert sys.modules.get('torch') is None  # blocked, and nothing imported it anyway
np.save({str(tmp_path / "fused.npy")!r}, out)
print(fuser.backend)
"""
    proc = run_python_without({"torch"}, code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "onnxruntime"
    fused = np.load(tmp_path / "fused.npy")

    import torch

    from tsjnet_sdk import Fuser
    from tsjnet_sdk.samples import night_scene

    torch.set_num_threads(1)
    ir, vis = night_scene(96, 128, seed=3)
    reference = Fuser(shipped.SHIPPED_WEIGHTS, backend="torch")(ir, vis)
    assert fused.shape == reference.shape and fused.dtype == reference.dtype
    # uint8 outputs: compare in float; identical pixels give inf dB
    err = np.mean((fused.astype(np.float64) - reference.astype(np.float64)) ** 2)
    psnr = np.inf if err == 0 else 10 * np.log10(255.0**2 / err)
    assert psnr >= 60, psnr


@pytest.mark.slow
def test_tsjnet_fuse_without_model_uses_onnxruntime_without_torch(tmp_path) -> None:
    from tsjnet_sdk.imaging import write_image
    from tsjnet_sdk.samples import night_scene

    ir, vis = night_scene(64, 96, seed=1)
    write_image(tmp_path / "ir.png", ir)
    write_image(tmp_path / "vis.png", vis)
    proc = run_cli_without({"torch"}, ["fuse", "ir.png", "vis.png", "-o", "out.png", "--threads", "1"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "shipped tsjnet-edge (tsjnet-edge.onnx on onnxruntime)" in proc.stderr
    from PIL import Image

    assert Image.open(tmp_path / "out.png").size == (96, 64)


def test_doctor_reports_the_default_model_and_why() -> None:
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "tsjnet-edge: tsjnet-edge.onnx on onnxruntime (ONNX Runtime is installed" in result.output


@pytest.mark.slow
def test_default_path_benchmark_times_both_paths_on_the_same_pair(tmp_path) -> None:
    from tsjnet_sdk.benchmarks.default_path import run, to_markdown

    results = run(threads=1, runs=2, size=(64, 96))
    default, torch_row = results["rows"]
    assert default["backend"] == "onnxruntime" and default["model"] == "tsjnet-edge.onnx" and default["n"] == 2
    assert torch_row["backend"] == "torch" and torch_row["model"] == "tsjnet-edge.safetensors"
    assert results["speedup_default_vs_torch"] == pytest.approx(torch_row["median_ms"] / default["median_ms"])
    assert results["output_psnr_db"] >= 60  # the two paths fuse the same picture
    assert "x torch eager" in to_markdown(results)
