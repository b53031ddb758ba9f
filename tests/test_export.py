"""Export: ONNX (decomposed / plugin, fp32 / fp16, dynamic / static), metadata, parity, engines, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

from tsjnet_sdk import na_node
from tsjnet_sdk.cli import app
from tsjnet_sdk.engine_format import (
    EngineFileError,
    EngineIncompatibleError,
    check_engine_compatible,
    read_engine_file,
    read_engine_header,
    write_engine_file,
)
from tsjnet_sdk.export import ExportError, export_onnx
from tsjnet_sdk.models import load_checkpoint

runner = CliRunner()
METADATA_KEYS = {
    "sdk_version",
    "config_name",
    "config",
    "input_convention",
    "colour",
    "na_mode",
    "precision",
    "kept_float32",
    "opset",
    "shapes",
    "source_checkpoint_sha256",
}


def _meta(path) -> dict[str, str]:
    return {p.key[len("tsjnet.") :]: p.value for p in onnx.load(str(path)).metadata_props if p.key.startswith("tsjnet.")}


def _torch_fused(checkpoint, ir, vis):
    with torch.inference_mode():
        return load_checkpoint(checkpoint).fuse(torch.from_numpy(ir), torch.from_numpy(vis)).numpy()


def test_dynamic_onnx_runs_any_size_with_metadata(tiny_checkpoint, tiny_onnx):
    model = onnx.load(str(tiny_onnx))
    assert [i.name for i in model.graph.input] == ["ir", "vis"] and [o.name for o in model.graph.output] == ["fused"]
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1] == 1 and all(isinstance(d, str) and d for d in (dims[0], dims[2], dims[3]))  # N, H, W dynamic
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)  # decomposed: standard ops only
    meta = _meta(tiny_onnx)
    assert METADATA_KEYS <= meta.keys()
    assert meta["config_name"] == "tsjnet-tiny" and meta["na_mode"] == "decomposed" and meta["precision"] == "fp32"
    report = json.loads(tiny_onnx.with_suffix(".parity.json").read_text())
    assert report["passed"] and report["psnr_db"] >= 60
    session = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    for shape in [(1, 1, 32, 32), (2, 1, 64, 96), (1, 1, 50, 77)]:  # incl. sizes that are not multiples of 32
        ir, vis = rng.random(shape, np.float32), rng.random(shape, np.float32)
        (out,) = session.run(["fused"], {"ir": ir, "vis": vis})
        assert out.shape == shape
        assert np.abs(out - _torch_fused(tiny_checkpoint, ir, vis)).max() < 1e-5


def test_static_fp16_export_through_the_cli(tiny_checkpoint, tmp_path, msrs_pair):
    out = tmp_path / "tiny_fp16.onnx"
    result = runner.invoke(
        app,
        [
            "export",
            str(tiny_checkpoint),
            "--fp16",
            "--static",
            "64",
            "96",
            "-o",
            str(out),
            "--parity-pair",
            str(msrs_pair[0]),
            str(msrs_pair[1]),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "parity of this ONNX vs PyTorch (00004N.png + 00004N.png)" in result.output and "PSNR" in result.output
    model = onnx.load(str(out))
    elem = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    assert elem == {"ir": onnx.TensorProto.FLOAT, "vis": onnx.TensorProto.FLOAT}  # I/O stays float32
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, 1, 64, 96]
    weights = [t.data_type for t in model.graph.initializer if len(t.dims) >= 2]
    assert weights and weights.count(onnx.TensorProto.FLOAT16) > len(weights) // 2  # conv/linear weights in half
    meta = _meta(out)
    assert meta["precision"] == "fp16" and "softmax" in meta["kept_float32"] and "layer_norm" in meta["kept_float32"]
    report = json.loads(out.with_suffix(".parity.json").read_text())
    assert report["passed"] and 40 <= report["psnr_db"] < 150 and report["shape"] == [1, 1, 64, 96]


@pytest.mark.parametrize("fp16", [False, True])
def test_plugin_mode_custom_node_runs_with_the_reference_op(tiny_checkpoint, tmp_path, fp16):
    from tsjnet_sdk.export.parity import onnx_session

    path = export_onnx(tiny_checkpoint, tmp_path / "p.onnx", na="plugin", fp16=fp16, static=(1, 64, 96)).path
    model = onnx.load(str(path))
    na_nodes = [n for n in model.graph.node if n.domain == na_node.DOMAIN]
    cfg = load_checkpoint(tiny_checkpoint).config
    # encoder NAT branch (one pass over IR and visible stacked on the batch axis) + base fuse
    assert len(na_nodes) == 2 * sum(cfg.nat_depths)
    for node in na_nodes:
        assert node.op_type == na_node.OP_TYPE
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert set(attrs) == set(na_node.ATTRIBUTES)
        assert attrs["kernel_size"] == cfg.nat_kernel_size and attrs["dilation"] == 1
        assert len(node.input) == 4  # q, k, v, rpb (tsjnet-tiny has rpb)
    assert any(o.domain == na_node.DOMAIN and o.version == na_node.DOMAIN_VERSION for o in model.opset_import)
    assert _meta(path)["na_mode"] == "plugin"
    # Plain onnxruntime cannot run the custom node; the reference-op session can, and matches torch.
    with pytest.raises(Exception):  # noqa: B017 - onnxruntime raises its own exception types
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ir, vis = np.random.default_rng(2).random((2, 1, 1, 64, 96), np.float32)
    (out,) = onnx_session(path, "plugin").run(["fused"], {"ir": ir, "vis": vis})
    assert np.abs(out - _torch_fused(tiny_checkpoint, ir, vis)).max() < (2e-3 if fp16 else 1e-5)


def test_failed_parity_writes_nothing(tiny_checkpoint, tmp_path, monkeypatch):
    import tsjnet_sdk.export.parity as parity

    def bad_parity(*args, **kwargs):
        return {"psnr_db": 12.0, "max_abs_error": 0.5, "mean_abs_error": 0.1, "passed": False}

    monkeypatch.setattr(parity, "check_parity", bad_parity)
    out = tmp_path / "bad.onnx"
    with pytest.raises(ExportError, match="parity check failed: PSNR 12.0 dB < 60 dB"):
        export_onnx(tiny_checkpoint, out, static=(1, 32, 32), simplify=False)
    assert list(tmp_path.iterdir()) == []


def test_export_errors_are_one_line_and_leave_no_file(tiny_checkpoint, tmp_path):
    not_ckpt = tmp_path / "notes.safetensors"
    not_ckpt.write_text("these are my notes, not a checkpoint\n" * 4)
    cases = [
        (["export", str(tmp_path / "missing.safetensors")], "checkpoint not found"),
        (["export", str(not_ckpt)], "not a safetensors checkpoint"),
        (["export", str(tiny_checkpoint), "--opset", "11"], "opset 11 is not supported"),
        (["export", str(tiny_checkpoint), "--na", "fused"], "unknown --na mode"),
        (["export", str(tiny_checkpoint), "--format", "tflite"], "unknown --format"),
        (["export", str(tiny_checkpoint), "--format", "engine", "--trt", "tensorrt"], "needs TensorRT (tensorrt)"),
    ]
    if _has_tensorrt_rtx():
        cases.append(
            (
                ["export", str(tiny_checkpoint), "--format", "engine", "--trt", "tensorrt_rtx", "--na", "plugin"],
                "takes no custom plugins",
            )
        )
    before = set(tiny_checkpoint.parent.iterdir())
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert set(tiny_checkpoint.parent.iterdir()) == before  # nothing written beside the checkpoint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.safetensors"]


def _has_tensorrt_rtx() -> bool:
    try:
        import tensorrt_rtx  # noqa: F401
    except ImportError:
        return False
    return True


def test_engine_header_round_trip_and_errors(tmp_path):
    meta = {"trt_flavour": "tensorrt", "trt_version": "10.9.0", "compute_capabilities": ["8.7"], "precision": "fp16"}
    path = write_engine_file(tmp_path / "m.engine", meta, b"\x01\x02engine-bytes")
    header, engine = read_engine_file(path)
    assert engine == b"\x01\x02engine-bytes" and header["precision"] == "fp16" and header["header_version"] == 1
    assert read_engine_header(path)["engine_bytes"] == len(engine)
    check_engine_compatible(header, "tensorrt", "10.9.0", (8, 7))
    with pytest.raises(EngineIncompatibleError, match="built with tensorrt 10.9.0, this machine has 10.3.0"):
        check_engine_compatible(header, "tensorrt", "10.3.0", (8, 7))
    with pytest.raises(EngineIncompatibleError, match="compute capability 8.7, this GPU is 8.9"):
        check_engine_compatible(header, "tensorrt", "10.9.0", (8, 9))
    with pytest.raises(EngineIncompatibleError, match="built with tensorrt, this process runs tensorrt_rtx"):
        check_engine_compatible(header, "tensorrt_rtx", "10.9.0", None)
    raw = path.read_bytes()
    (tmp_path / "cut.engine").write_bytes(raw[:20])
    with pytest.raises(EngineFileError, match="truncated"):
        read_engine_file(tmp_path / "cut.engine")
    (tmp_path / "bare.engine").write_bytes(b"ftrt" + raw[8:])
    with pytest.raises(EngineFileError, match="not a tsjnet engine"):
        read_engine_header(tmp_path / "bare.engine")
    newer = raw[:8] + (99).to_bytes(4, "little") + raw[12:]
    (tmp_path / "newer.engine").write_bytes(newer)
    with pytest.raises(EngineFileError, match="header version 99 is newer"):
        read_engine_header(tmp_path / "newer.engine")


@pytest.mark.slow
def test_tensorrt_rtx_builds_a_real_engine_without_gpu(tiny_checkpoint, tmp_path):
    if not _has_tensorrt_rtx():
        pytest.skip("tensorrt-rtx is not installed (pip install 'tsjnet-sdk[tensorrt-rtx]')")
    from tsjnet_sdk.runtime import BackendUnavailable, Fuser, inspect_artifact

    out, cache = tmp_path / "tiny.engine", tmp_path / "timing.cache"
    result = runner.invoke(
        app,
        [
            "export",
            str(tiny_checkpoint),
            "--format",
            "engine",
            "--fp16",
            "--trt",
            "tensorrt_rtx",
            "--compute-capability",
            "8.6,8.9",
            "--min",
            "64",
            "96",
            "--opt",
            "64",
            "96",
            "--max",
            "64",
            "96",
            "--timing-cache",
            str(cache),
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    header, engine = read_engine_file(out)
    assert len(engine) > 10_000
    assert header["trt_flavour"] == "tensorrt_rtx" and header["precision"] == "fp16" and header["strongly_typed"]
    assert header["compute_capabilities"] == ["8.6", "8.9"] and header["na_mode"] == "decomposed"
    assert header["profile"] == {"min": [1, 1, 64, 96], "opt": [1, 1, 64, 96], "max": [1, 1, 64, 96]}
    assert header["config_name"] == "tsjnet-tiny" and len(header["source_onnx_sha256"]) == 64
    assert not cache.exists()  # RTX has no build timing cache: nothing written, and the CLI said so
    assert "timing-cache ignored" in result.output
    assert json.loads(out.with_suffix(".parity.json").read_text())["passed"]
    info = inspect_artifact(out)
    assert info.kind == "engine" and info.config_name == "tsjnet-tiny"
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailable, match="GPU"):
            Fuser(out)


@pytest.mark.gpu
def test_engine_runs_on_gpu_and_matches_torch(tiny_checkpoint, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs an NVIDIA GPU to run a TensorRT engine (none on this machine)")
    from tsjnet_sdk.export.engine_export import import_tensorrt
    from tsjnet_sdk.runtime import Fuser

    try:
        import_tensorrt()
    except ExportError as e:
        pytest.skip(str(e))
    from tsjnet_sdk.export import build_engine

    path = build_engine(
        tiny_checkpoint, tmp_path / "t.engine", min_shape=(1, 64, 64), opt_shape=(1, 96, 128), max_shape=(2, 128, 160)
    ).path
    ir, vis = np.random.default_rng(3).random((2, 96, 128), np.float32)
    a, b = Fuser(path, gray=True)(ir, vis), Fuser(tiny_checkpoint, gray=True, device="cpu")(ir, vis)
    assert np.abs(a - b).max() < 1e-3


def test_export_cli_imports_no_torch():
    code = "import tsjnet_sdk.cli, tsjnet_sdk.export, tsjnet_sdk.export.cli, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
