"""Bad artefacts give a clear SDK error at load (or, for weights that only a run reveals, at the first
run, as ModelOutputError), never a silent garbage image; extreme but valid inputs give finite outputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tsjnet_sdk import Fuser
from tsjnet_sdk.engine_format import EngineFileError, read_engine_file, read_engine_header, write_engine_file
from tsjnet_sdk.models.checkpoint import CheckpointError, checkpoint_config
from tsjnet_sdk.runtime import BackendUnavailable, ModelFileError, ModelOutputError


def _rewrite_checkpoint(src, dst, tensors=None, metadata=None):
    from safetensors.numpy import load_file, save

    from tsjnet_sdk.models.checkpoint import read_checkpoint_metadata

    state = load_file(str(src)) if tensors is None else tensors
    meta = dict(read_checkpoint_metadata(src)) if metadata is None else metadata
    dst.write_bytes(save(state, metadata=meta))
    return dst


# -- checkpoints ------------------------------------------------------------------------------------


def test_truncated_checkpoints_are_refused(tiny_checkpoint, tmp_path):
    from tsjnet_sdk.models import load_checkpoint

    data = tiny_checkpoint.read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    for cut in (0, 4, 8, 100, header_end - 1, header_end, header_end + 10, len(data) // 2, len(data) - 1):
        path = tmp_path / f"cut{cut}.safetensors"
        path.write_bytes(data[:cut])
        with pytest.raises((CheckpointError, ModelFileError), match="truncated|corrupt|not a safetensors|unknown model file"):
            load_checkpoint(path) if cut > 16 else Fuser(path)


def test_bit_flips_in_a_checkpoint_header_never_escape_as_other_errors(tiny_checkpoint, tmp_path):
    from tsjnet_sdk.models import load_checkpoint

    data = bytearray(tiny_checkpoint.read_bytes())
    header_end = 8 + int.from_bytes(data[:8], "little")
    rng = np.random.default_rng(0)
    refused = 0
    for _ in range(40):
        flipped = bytearray(data)
        at = int(rng.integers(0, header_end))
        flipped[at] ^= 1 << int(rng.integers(0, 8))
        path = tmp_path / "flip.safetensors"
        path.write_bytes(bytes(flipped))
        try:
            load_checkpoint(path)  # a flip inside a string (e.g. the SDK version) may go unnoticed
        except CheckpointError:
            refused += 1
    assert refused >= 20


def test_checkpoint_of_another_config_is_refused(tiny_checkpoint, tmp_path):
    from tsjnet_sdk.models import load_checkpoint
    from tsjnet_sdk.models.checkpoint import read_checkpoint_metadata
    from tsjnet_sdk.models.config import get_config

    meta = dict(read_checkpoint_metadata(tiny_checkpoint))
    meta["config"] = get_config("tsjnet-edge").to_json()
    other = _rewrite_checkpoint(tiny_checkpoint, tmp_path / "other.safetensors", metadata=meta)
    with pytest.raises(CheckpointError, match=r"weights do not match config 'tsjnet-edge' .* is \[\d+(, \d+)*\] \(config wants"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="do not match"):
        Fuser(other)


@pytest.mark.parametrize(
    "bad", ["not json {", "[1, 2]", '{"name": "x", "trunk_width": "wide"}', '{"nat_depths": 7}', '{"colour": 1}']
)
def test_malformed_checkpoint_configs_are_checkpoint_errors(tiny_checkpoint, tmp_path, bad):
    """Found by the checkpoint fuzz harness: a config that is not valid JSON escaped as JSONDecodeError
    (and wrong types as TypeError) from checkpoint_config / `tsjnet info`."""
    from tsjnet_sdk.models.checkpoint import read_checkpoint_metadata

    meta = dict(read_checkpoint_metadata(tiny_checkpoint), config=bad)
    path = _rewrite_checkpoint(tiny_checkpoint, tmp_path / "bad_config.safetensors", metadata=meta)
    with pytest.raises(CheckpointError, match="model config in this checkpoint is not valid"):
        checkpoint_config(path)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_weights_with_nan_or_inf_are_refused_at_load(tiny_checkpoint, tmp_path, value):
    from safetensors.numpy import load_file

    state = load_file(str(tiny_checkpoint))
    name = sorted(k for k, v in state.items() if v.dtype == np.float32 and v.size > 10)[3]
    state[name] = state[name].copy()
    state[name].flat[5] = value
    path = _rewrite_checkpoint(tiny_checkpoint, tmp_path / "nan.safetensors", tensors=state)
    with pytest.raises(CheckpointError, match=rf"NaN or inf \({name}"):
        Fuser(path)


# -- ONNX -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_truncated_and_bit_flipped_onnx_files(tiny_onnx, tmp_path):
    data = tiny_onnx.read_bytes()
    for cut in (1, 20, len(data) // 3, len(data) - 7):
        path = tmp_path / "cut.onnx"
        path.write_bytes(data[:cut])
        with pytest.raises((ModelFileError, BackendUnavailable), match="unknown model file kind|cannot load"):
            Fuser(path, backend="onnxruntime")
    # Random bit flips: a load error, or a run that is refused (NaN/inf out), or a valid [0, 1] image
    # (a flipped mantissa bit changes a weight slightly: see docs/reliability.md); never anything else.
    rng = np.random.default_rng(0)
    ir, vis = np.zeros((32, 32), np.uint8), np.full((32, 32, 3), 200, np.uint8)
    outcomes = {"load error": 0, "refused at run": 0, "ran": 0}
    for _ in range(6):
        flipped = bytearray(data)
        for at in rng.integers(0, len(data), 8):
            flipped[int(at)] ^= 1 << int(rng.integers(0, 8))
        path = tmp_path / "flip.onnx"
        path.write_bytes(bytes(flipped))
        try:
            fuser = Fuser(path, backend="onnxruntime")
        except (ModelFileError, BackendUnavailable):
            outcomes["load error"] += 1
            continue
        try:
            out = fuser(ir, vis)
        except ModelOutputError:
            outcomes["refused at run"] += 1
            continue
        except BackendUnavailable:  # a graph ORT accepts but cannot execute
            outcomes["load error"] += 1
            continue
        assert out.dtype == np.uint8 and out.shape == vis.shape
        outcomes["ran"] += 1
    assert sum(outcomes.values()) == 6


@pytest.mark.slow
def test_onnx_with_nan_weights_is_refused_at_first_run(tiny_onnx, tmp_path):
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(tiny_onnx))
    init = max(proto.graph.initializer, key=lambda t: int(np.prod(t.dims)) if t.data_type == onnx.TensorProto.FLOAT else 0)
    arr = numpy_helper.to_array(init).copy()
    arr[...] = np.nan
    init.CopyFrom(numpy_helper.from_array(arr, init.name))
    path = tmp_path / "nan.onnx"
    onnx.save(proto, str(path))
    fuser = Fuser(path, backend="onnxruntime")
    with pytest.raises(ModelOutputError, match=r"NaN/inf .*nan\.onnx are corrupt"):
        fuser(np.zeros((32, 32), np.uint8), np.zeros((32, 32, 3), np.uint8))


# -- engines (header; the engine bytes are TensorRT's to check) -------------------------------------


def test_truncated_and_flipped_engine_headers(tmp_path):
    from tsjnet_sdk.runtime.artifacts import detect_kind

    good = write_engine_file(tmp_path / "good.engine", {"trt_flavour": "tensorrt", "config_name": "tsjnet-tiny"}, b"E" * 100)
    data = good.read_bytes()
    header_end = len(data) - 100
    for cut in range(0, header_end + 1):
        path = tmp_path / "cut.engine"
        path.write_bytes(data[:cut])
        with pytest.raises((EngineFileError, ModelFileError), match="truncated|not a tsjnet engine|bare TensorRT engine|corrupt"):
            detect_kind(path)
            read_engine_header(path)
    rng = np.random.default_rng(0)
    for _ in range(200):
        flipped = bytearray(data)
        flipped[int(rng.integers(0, header_end))] ^= 1 << int(rng.integers(0, 8))
        path = tmp_path / "flip.engine"
        path.write_bytes(bytes(flipped))
        try:
            meta, engine = read_engine_file(path)
        except EngineFileError:
            continue
        assert isinstance(meta, dict) and engine  # a flip inside a JSON string can keep it valid


# -- extreme but valid inputs ---------------------------------------------------------------------

S = 32
EXTREMES = {
    "all black": (np.zeros((S, S), np.uint8), np.zeros((S, S, 3), np.uint8)),
    "all white": (np.full((S, S), 255, np.uint8), np.full((S, S, 3), 255, np.uint8)),
    "uint16 full range": (np.tile(np.array([0, 65535], np.uint16), (S, S // 2)), np.full((S, S), 65535, np.uint16)),
    "constant grey": (np.full((S, S), 0.5, np.float32), np.full((S, S), 0.5, np.float32)),
    "black IR, white visible": (np.zeros((S, S), np.uint8), np.full((S, S, 3), 255, np.uint8)),
}


def _check_extremes(fuser):
    """Fuser refuses NaN/inf network outputs (ModelOutputError), so a returned image proves them finite."""
    for name, (ir, vis) in EXTREMES.items():
        out = fuser(ir, vis)
        assert out.shape == vis.shape and out.dtype == vis.dtype, name
        if out.dtype == np.float32:
            assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1, name


def test_extreme_inputs_give_finite_outputs_torch_fp32(tiny_checkpoint):
    _check_extremes(Fuser(tiny_checkpoint, backend="torch", device="cpu"))


def test_extreme_inputs_give_finite_outputs_shipped_weights():
    from tsjnet_sdk.shipped import SHIPPED_WEIGHTS

    if not SHIPPED_WEIGHTS.exists():
        pytest.skip("shipped weights not present")
    _check_extremes(Fuser(SHIPPED_WEIGHTS, backend="torch", device="cpu"))


@pytest.mark.slow
def test_extreme_inputs_give_finite_outputs_onnx_fp32(tiny_onnx):
    _check_extremes(Fuser(tiny_onnx, backend="onnxruntime", device="cpu"))


@pytest.mark.slow
def test_extreme_inputs_give_finite_outputs_onnx_fp16(tmp_path):
    """The fp16 ONNX export (half-precision graph, float32 I/O) of the shipped weights at 32 x 32."""
    from tsjnet_sdk.export import export_onnx
    from tsjnet_sdk.shipped import SHIPPED_WEIGHTS

    if not SHIPPED_WEIGHTS.exists():
        pytest.skip("shipped weights not present")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = export_onnx(SHIPPED_WEIGHTS, tmp_path / "edge_fp16.onnx", fp16=True, static=(1, S, S), parity=False).path
    fuser = Fuser(path, backend="onnxruntime", device="cpu", tile_overlap=8)  # the default 32 needs tiles > 32
    assert fuser.describe()["precision"] == "fp16"
    _check_extremes(fuser)
