"""Runtime options: OrtOptions / TorchOptions reach the sessions, caches work, ready backends, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import mean_onnx_model

from tsjnet_sdk import Fuser
from tsjnet_sdk.runtime import Backend, BackendUnavailable, OrtOptions, TensorRTOptions, TorchOptions, open_backend
from tsjnet_sdk.runtime.options import options_for, usable_cores

ort = pytest.importorskip("onnxruntime")


def _mean_onnx(path: Path) -> Path:
    """A dynamic-shape ONNX with the tsjnet I/O names whose output is (ir + vis) / 2 (builds in ms)."""
    return mean_onnx_model(path, ["N", 1, "H", "W"])


@pytest.fixture()
def mean_onnx(tmp_path: Path) -> Path:
    pytest.importorskip("onnx")
    return _mean_onnx(tmp_path / "mean.onnx")


def _frames(h: int = 40, w: int = 48) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w), dtype=np.uint8), rng.integers(0, 256, (h, w), dtype=np.uint8)


def test_ort_options_reach_the_session(mean_onnx: Path) -> None:
    backend = open_backend(
        mean_onnx,
        "onnxruntime",
        "cpu",
        OrtOptions(
            intra_op_threads=1,
            execution_mode="parallel",
            inter_op_threads=2,
            graph_optimization="basic",
            denormal_as_zero=True,
            memory_pattern=False,
            cpu_arena=False,
        ),
    )
    got = backend.session.get_session_options()
    assert got.intra_op_num_threads == 1 and got.inter_op_num_threads == 2
    assert got.execution_mode == ort.ExecutionMode.ORT_PARALLEL
    assert got.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert got.get_session_config_entry("session.set_denormal_as_zero") == "1"
    assert not got.enable_mem_pattern and not got.enable_cpu_mem_arena  # the low-memory settings reach the session
    # Defaults: the measured fastest CPU setting (docs/edge.md): usable cores, sequential, all passes.
    default = open_backend(mean_onnx, "onnxruntime", "cpu").session.get_session_options()
    assert default.intra_op_num_threads == usable_cores() and default.inter_op_num_threads == 1
    assert default.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert default.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert default.enable_mem_pattern and default.enable_cpu_mem_arena
    with pytest.raises(RuntimeError, match="set_denormal_as_zero"):  # off by default: the entry is never set
        default.get_session_config_entry("session.set_denormal_as_zero")


def test_optimised_graph_cache_is_written_once_and_used(mean_onnx: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    ir, vis = _frames()
    plain = Fuser(mean_onnx)(ir, vis)
    fuser = Fuser(mean_onnx, options=OrtOptions(optimized_model_cache=cache))
    (saved,) = cache.glob("mean.ortopt-*.onnx")
    assert "cached offline" in fuser.describe()["graph_optimization"]
    assert np.array_equal(fuser(ir, vis), plain)
    stamp = saved.stat().st_mtime_ns
    Fuser(mean_onnx, options=OrtOptions(optimized_model_cache=cache))
    # reused; beside it only its record (source and cache SHA-256), no temp files left
    assert saved.stat().st_mtime_ns == stamp and sorted(p.name for p in cache.iterdir()) == [
        saved.with_suffix(".json").name,
        saved.name,
    ]
    Fuser(mean_onnx, options=OrtOptions(optimized_model_cache=cache, graph_optimization="extended"))
    assert len(list(cache.glob("*.onnx"))) == 2  # another level -> another key


def test_option_errors_name_the_fix(mean_onnx: Path) -> None:
    with pytest.raises(ValueError, match="execution_mode must be one of sequential, parallel"):
        OrtOptions(execution_mode="fast")
    with pytest.raises(ValueError, match="graph_optimization"):
        OrtOptions(graph_optimization="max")
    with pytest.raises(ValueError, match="intra_op_threads must be a whole number"):
        OrtOptions(intra_op_threads=-1)
    with pytest.raises(ValueError, match="dtype must be one of fp32, fp16, bf16"):
        TorchOptions(dtype="int8")
    with pytest.raises(ValueError, match="profile_index"):
        TensorRTOptions(profile_index=-2)
    # A lone options object for another backend would be ignored silently: refused instead.
    with pytest.raises(ValueError, match="TorchOptions is for the torch backend, but this model runs on onnxruntime"):
        Fuser(mean_onnx, options=TorchOptions())
    with pytest.raises(ValueError, match="two options objects for the onnxruntime backend"):
        Fuser(mean_onnx, options=[OrtOptions(), OrtOptions()])
    with pytest.raises(BackendUnavailable, match="NoSuchExecutionProvider not in this onnxruntime"):
        Fuser(mean_onnx, options=OrtOptions(providers=("NoSuchExecutionProvider",)))


def test_options_list_gives_each_backend_its_own(mean_onnx: Path) -> None:
    chosen = options_for("onnxruntime", [TorchOptions(dtype="fp16"), OrtOptions(intra_op_threads=1)])
    assert chosen == OrtOptions(intra_op_threads=1)
    assert options_for("tensorrt", [TorchOptions()]) is None
    fuser = Fuser(mean_onnx, options=[TorchOptions(dtype="fp16"), OrtOptions(intra_op_threads=1)])
    assert fuser.describe()["intra_op_threads"] == 1


def test_provider_options_are_passed(mean_onnx: Path) -> None:
    from tsjnet_sdk.runtime.backends.onnxruntime_backend import provider_options_for

    opts = OrtOptions(
        trt_fp16=True,
        trt_engine_cache="/tmp/never-created-unless-trt",
        provider_options={"CUDAExecutionProvider": {"arena_extend_strategy": "kSameAsRequested"}},
    )
    trt, cuda, cpu = provider_options_for(
        ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"], opts, "cuda:1"
    )
    assert trt["trt_fp16_enable"] == "True" and trt["trt_engine_cache_path"].endswith("never-created-unless-trt")
    assert trt["device_id"] == cuda["device_id"] == "1"
    assert cuda["arena_extend_strategy"] == "kSameAsRequested" and cpu == {}


class _Halves(Backend):
    name = "halves"

    def __init__(self) -> None:
        super().__init__(None, "cpu")
        self.calls = 0

    def run(self, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
        self.calls += 1
        return (0.5 * ir + 0.5 * vis).astype(np.float32)


def test_fuser_takes_a_ready_backend(mean_onnx: Path) -> None:
    ir, vis = _frames()
    ready = _Halves()
    out = Fuser(ready, gray=True)(ir, vis)
    assert ready.calls == 1 and Fuser(ready).backend == "halves"
    assert np.abs(out.astype(int) - Fuser(mean_onnx, gray=True)(ir, vis).astype(int)).max() <= 1
    # An open ORT backend works the same way (what `tsjnet bench` does).
    session_backed = open_backend(mean_onnx, "onnxruntime", "cpu", OrtOptions(intra_op_threads=1))
    assert np.array_equal(Fuser(session_backed, gray=True)(ir, vis), Fuser(mean_onnx, gray=True)(ir, vis))
    with pytest.raises(ValueError, match="already open: backend=, device= and options= do not apply"):
        Fuser(_Halves(), options=OrtOptions())


def test_torch_half_precision_is_cuda_only(tiny_checkpoint: Path) -> None:
    pytest.importorskip("torch")
    with pytest.raises(BackendUnavailable, match="runs on CUDA only"):
        Fuser(tiny_checkpoint, device="cpu", options=TorchOptions(dtype="fp16"))
    fuser = Fuser(tiny_checkpoint, device="cpu", options=TorchOptions())
    assert fuser.describe()["precision"] == "fp32"


def test_bench_uses_no_mock() -> None:
    """Shipped code builds every benchmark row through the public API, never by patching it."""
    root = Path(__file__).resolve().parents[1]
    offenders = [
        str(p.relative_to(root))
        for folder in ("tsjnet_sdk", "export", "kernels", "training", "benchmarks")
        for p in (root / folder).rglob("*.py")
        if "unittest.mock" in p.read_text() or "from unittest import mock" in p.read_text()
    ]
    assert offenders == []


def test_ort_memory_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="memory_pattern"):
        OrtOptions(memory_pattern="off")
