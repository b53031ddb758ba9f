"""Engines built where they run: from a tsjnet ONNX without torch, bare trtexec engines with a sidecar, exports
that write into the current folder, and export errors that are one readable line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from conftest import mean_onnx_model, run_cli_without
from rich.console import Console
from typer.testing import CliRunner

from tsjnet_sdk.cli import app
from tsjnet_sdk.cli_support import error_line
from tsjnet_sdk.engine_format import EngineFileError, read_engine_file, read_engine_header, sidecar_path, write_engine_file
from tsjnet_sdk.runtime.artifacts import ModelFileError, detect_kind

runner = CliRunner()


def _has_tensorrt_rtx() -> bool:
    try:
        import tensorrt_rtx  # noqa: F401
    except ImportError:
        return False
    return True


def test_error_lines_keep_brackets_and_quotes() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200)
    error_line(console, "the torch backend needs PyTorch: pip install 'tsjnet-sdk[torch]', or use device='cpu'")
    text = buffer.getvalue()
    assert "pip install 'tsjnet-sdk[torch]'" in text and "device='cpu'" in text


def test_exports_write_into_the_current_folder_not_beside_the_source(tmp_path, monkeypatch) -> None:
    from tsjnet_sdk.export.common import default_output_path
    from tsjnet_sdk.export.onnx_export import default_onnx_path

    monkeypatch.chdir(tmp_path)
    installed = Path("/site-packages/tsjnet_sdk/weights/tsjnet-edge.safetensors")
    assert default_onnx_path(installed, fp16=True, na="plugin") == tmp_path / "tsjnet-edge_fp16_plugin.onnx"
    assert default_output_path(Path("/opt/models/tsjnet-edge.onnx"), "_fp16", ".engine") == tmp_path / "tsjnet-edge_fp16.engine"


def test_export_without_the_export_extras_is_one_line(tmp_path) -> None:
    from tsjnet_sdk.shipped import SHIPPED_WEIGHTS

    proc = run_cli_without({"torch", "onnx"}, ["export", str(SHIPPED_WEIGHTS), "-o", "x.onnx"], cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "pip install 'tsjnet-sdk[export]'" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def _tsjnet_onnx(path: Path) -> Path:
    """A tiny ONNX with the tsjnet I/O and metadata, as `tsjnet export` writes it (no torch needed)."""
    import onnx

    mean_onnx_model(path, ["N", 1, "H", "W"], metadata=False)
    model = onnx.load(str(path))
    for key, value in {"config_name": "tsjnet-tiny", "na_mode": "decomposed", "precision": "fp32", "shapes": "dynamic"}.items():
        model.metadata_props.add(key=f"tsjnet.{key}", value=value)
    onnx.save(model, str(path))
    return path


def test_a_bare_engine_opens_with_its_sidecar_and_only_with_it(tmp_path) -> None:
    onnx_path = _tsjnet_onnx(tmp_path / "model.onnx")
    engine = tmp_path / "model.plan"
    engine.write_bytes(b"\x00trtexec-engine-bytes" * 10)
    with pytest.raises(EngineFileError, match=f"tsjnet export MODEL.onnx --sidecar-for {engine}"):
        read_engine_file(engine)
    with pytest.raises(ModelFileError, match="--sidecar-for"):
        detect_kind(engine)

    result = runner.invoke(app, ["export", str(onnx_path), "--sidecar-for", str(engine), "--fp16"])
    assert result.exit_code == 0, result.output
    side = sidecar_path(engine)
    assert side.name == "model.plan.tsjnet.json" and side.exists()
    meta, blob = read_engine_file(engine)
    assert blob == engine.read_bytes()  # the whole file is the engine
    assert meta["config_name"] == "tsjnet-tiny" and meta["precision"] == "fp16" and meta["na_mode"] == "decomposed"
    assert meta["trt_flavour"] == "tensorrt" and meta["header_source"] == "sidecar"
    assert detect_kind(engine) == "engine" and read_engine_header(engine)["engine_bytes"] == engine.stat().st_size

    engine.write_bytes(b"\x00another-engine" * 10)  # rebuilt, sidecar not renewed
    with pytest.raises(EngineFileError, match="describes another engine"):
        read_engine_file(engine)


def test_sidecar_refuses_a_foreign_onnx_and_a_headed_engine(tmp_path) -> None:
    foreign = mean_onnx_model(tmp_path / "foreign.onnx", [1, 1, 32, 32], metadata=False)
    engine = tmp_path / "m.plan"
    engine.write_bytes(b"bytes" * 10)
    result = runner.invoke(app, ["export", str(foreign), "--sidecar-for", str(engine)])
    assert result.exit_code == 2 and "no tsjnet metadata" in result.output and "Traceback" not in result.output
    headed = write_engine_file(tmp_path / "h.engine", {"trt_flavour": "tensorrt"}, b"engine")
    result = runner.invoke(app, ["export", str(_tsjnet_onnx(tmp_path / "t.onnx")), "--sidecar-for", str(headed)])
    assert result.exit_code == 2 and "already has a tsjnet header" in result.output
    assert not sidecar_path(engine).exists() and not sidecar_path(headed).exists()


@pytest.mark.slow
def test_engine_from_the_onnx_builds_with_torch_absent(tiny_onnx, tmp_path) -> None:
    """`tsjnet export model.onnx --format engine` imports no torch: what a Jetson runs (here with TensorRT-RTX,
    which builds without a GPU; full TensorRT is not installable on this machine)."""
    if not _has_tensorrt_rtx():
        pytest.skip("tensorrt-rtx is not installed (pip install 'tsjnet-sdk[tensorrt-rtx]')")
    args = [
        "export",
        str(tiny_onnx),
        "--format",
        "engine",
        "--trt",
        "tensorrt_rtx",
        "--compute-capability",
        "8.9",
        "--min",
        "64",
        "64",
        "--opt",
        "64",
        "64",
        "--max",
        "64",
        "64",
    ]
    proc = run_cli_without({"torch"}, args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "tiny.engine"  # default: the current folder
    header, engine = read_engine_file(out)
    assert len(engine) > 10_000 and header["config_name"] == "tsjnet-tiny" and header["precision"] == "fp32"
    assert header["na_mode"] == "decomposed" and header["trt_flavour"] == "tensorrt_rtx"
    assert "parity: not checked here" in proc.stdout
    # an fp32 ONNX cannot make a strongly typed fp16 engine: said, with the fix
    proc = run_cli_without({"torch"}, [*args, "--fp16", "-o", "x.engine"], cwd=tmp_path)
    assert proc.returncode == 2 and "needs an fp16 ONNX" in proc.stderr and "Traceback" not in proc.stderr
    # the NA mode is the ONNX's own
    proc = run_cli_without({"torch"}, [*args, "--na", "plugin", "-o", "y.engine"], cwd=tmp_path)
    assert proc.returncode == 2 and "has NA mode 'decomposed'" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.engine"]
    assert json.loads(json.dumps(header))  # the header is plain JSON


def test_every_export_format_row_points_at_an_exporter() -> None:
    import importlib

    from tsjnet_sdk.export.formats import EXPORT_FORMATS

    assert [f.name for f in EXPORT_FORMATS] == ["onnx", "engine"]
    for fmt in EXPORT_FORMATS:
        module = importlib.import_module(f"tsjnet_sdk.export.{fmt.module}")
        assert callable(module.export_from_options) and fmt.suffix.startswith(".")
    result = runner.invoke(app, ["export", "tsjnet-edge", "--format", "tflite"])
    assert result.exit_code == 2 and "choose onnx or engine" in result.output
