"""``tsjnet bench`` rows: one RowSpec per backend + precision + settings, each built through the public
runtime API (``open_backend`` with OrtOptions / TorchOptions), and why a row cannot run here."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tsjnet_sdk.runtime import Backend

from .bench_artefacts import _cache_path, ensure_int8, ensure_onnx
from .bench_settings import REFERENCE_ROW, BenchSettings, Progress, Shape, _say

# -- rows -------------------------------------------------------------------------------------------


@dataclass
class RowContext:
    """What a row builder may use: settings, the checkpoint, calibration frames, progress."""

    settings: BenchSettings
    checkpoint: Path
    calib_frames: list[tuple[np.ndarray, np.ndarray]]
    progress: Progress | None = None


@dataclass(frozen=True)
class RowSpec:
    """One row of the table: how to build its backend, and why it cannot run here (None: it can)."""

    id: str
    label: str
    backend: str
    precision: str
    device: str
    build: Callable[[RowContext, Shape], Backend]
    unavailable: Callable[[BenchSettings], str | None] = lambda _s: None
    # Run in a subprocess with a time limit: torch.compile can take very long, and static int8
    # calibration of the full model at 640x480 can exhaust memory (the OOM killer then ends the child only).
    isolate: bool = False
    timeout_setting: str = "row_timeout_s"  # the BenchSettings field with this row's time limit
    warmup_min: int = 0  # at least this many warm-up calls (compilation happens in the first)


def _no_cuda_torch(_settings: BenchSettings) -> str | None:
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    return None if torch.cuda.is_available() else "no CUDA GPU visible to torch on this machine"


def _no_ort_cuda(settings: BenchSettings) -> str | None:
    import onnxruntime as ort

    reason = _no_cuda_torch(settings)
    if reason:
        return reason
    providers = ort.get_available_providers()
    return None if "CUDAExecutionProvider" in providers else f"this onnxruntime has no CUDA EP ({', '.join(providers)})"


def _no_na_kernel(settings: BenchSettings) -> str | None:
    reason = _no_cuda_torch(settings)
    if reason:
        return reason
    from tsjnet_sdk.ops import available_backends

    return None if "cuda" in available_backends() else "the SDK's CUDA NA kernel is not built (see kernels/)"


def _no_tensorrt(settings: BenchSettings) -> str | None:
    from tsjnet_sdk.runtime.backends.tensorrt_backend import tensorrt_installed

    reason = _no_cuda_torch(settings)
    if reason:
        return reason
    if not tensorrt_installed():
        return "neither tensorrt nor tensorrt_rtx is installed"
    return None


def _no_compile(_settings: BenchSettings) -> str | None:
    import torch

    return None if hasattr(torch, "compile") else "this torch has no torch.compile"


def _build_torch(ctx: RowContext, _shape: Shape, device: str = "cpu", dtype: str = "fp32") -> Backend:
    from tsjnet_sdk.runtime import TorchOptions, open_backend

    return open_backend(ctx.checkpoint, "torch", device, TorchOptions(dtype=dtype))


def _build_torch_compile(ctx: RowContext, shape: Shape) -> Backend:
    import torch

    backend = _build_torch(ctx, shape)
    # Compile the method the backend calls; the instance attribute shadows TSJNet.fuse. dynamic=False:
    # one static shape per row, the best case for inductor. Compilation happens on the first call.
    backend.model.fuse = torch.compile(backend.model.fuse, dynamic=False)
    return backend


def _build_torch_na_kernel(ctx: RowContext, shape: Shape) -> Backend:
    from tsjnet_sdk.ops import set_na_backend

    set_na_backend("cuda")  # process-wide; this row runs in its own subprocess (isolate=True)
    return _build_torch(ctx, shape, "cuda")


#: ONNX Runtime with its own defaults (what an app gets from a bare InferenceSession): threads from
#: ORT's count of physical cores, optimisation at every load.
ORT_OWN_DEFAULTS = dict(intra_op_threads=0, inter_op_threads=0)


def _build_ort(ctx: RowContext, shape: Shape, device: str = "cpu") -> Backend:
    from tsjnet_sdk.runtime import OrtOptions, open_backend

    path = ensure_onnx(ctx.settings, ctx.checkpoint, shape, ctx.progress)
    return open_backend(path, "onnxruntime", device, OrtOptions(**ORT_OWN_DEFAULTS))


def tuned_ort_options(settings: BenchSettings, threads: int | None = None) -> Any:
    """The tuned row's options: the SDK's defaults plus the optimised-graph cache and a thread count,
    i.e. exactly what an app gets from ``Fuser(path, options=OrtOptions(intra_op_threads=N,
    optimized_model_cache=...))``."""
    from tsjnet_sdk.runtime import OrtOptions

    return OrtOptions(intra_op_threads=threads, optimized_model_cache=Path(settings.work_dir) / "ort-optimised")


def _build_ort_tuned(ctx: RowContext, shape: Shape) -> Backend:
    from tsjnet_sdk.runtime import open_backend
    from tsjnet_sdk.runtime.options import usable_cores

    onnx_path = ensure_onnx(ctx.settings, ctx.checkpoint, shape, ctx.progress)
    if ctx.settings.ort_threads:
        return open_backend(onnx_path, "onnxruntime", "cpu", tuned_ort_options(ctx.settings, ctx.settings.ort_threads))
    # Sweep: on a shared or small machine fewer threads can win (threads waiting on cores other
    # processes hold), so try 1 thread and all usable cores (1 warm-up + 3 calls each), keep the faster.
    zeros = np.zeros((shape[0], 1, shape[1], shape[2]), np.float32)
    sweep: dict[int, float] = {}
    best: Backend | None = None
    for threads in sorted({1, usable_cores()}):
        _say(ctx.progress, f"ort-tuned-fp32: trying {threads} intra-op thread(s)")
        candidate = open_backend(onnx_path, "onnxruntime", "cpu", tuned_ort_options(ctx.settings, threads))
        candidate.run(zeros, zeros)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            candidate.run(zeros, zeros)
            times.append(time.perf_counter() - t)
        sweep[threads] = float(np.median(times) * 1e3)
        if best is None or sweep[threads] < min(v for k, v in sweep.items() if k != threads):
            if best is not None:
                best.close()
            best = candidate
        else:
            candidate.close()
    assert best is not None
    best.thread_sweep_median_ms = {str(k): round(v, 3) for k, v in sweep.items()}  # shown by TimedRunner.describe
    return best


def _build_ort_int8(mode: str) -> Callable[[RowContext, Shape], Backend]:
    def build(ctx: RowContext, shape: Shape) -> Backend:

        from tsjnet_sdk.runtime import open_backend

        calib = ctx.calib_frames if mode == "static" else []
        return open_backend(ensure_int8(ctx.settings, ctx.checkpoint, shape, mode, calib, ctx.progress), "onnxruntime", "cpu")

    return build


def _build_tensorrt(fp16: bool) -> Callable[[RowContext, Shape], Backend]:
    def build(ctx: RowContext, shape: Shape) -> Backend:
        from tsjnet_sdk.runtime import open_backend

        if ctx.settings.engine is not None:
            return open_backend(Path(ctx.settings.engine), "tensorrt", "cuda")
        out = _cache_path(ctx.settings, ctx.checkpoint, shape, "fp16" if fp16 else "fp32", ".engine")
        if not out.is_file():
            from tsjnet_sdk.export import build_engine

            _say(ctx.progress, f"building a TensorRT engine {shape} ({'fp16' if fp16 else 'fp32'})")
            out.parent.mkdir(parents=True, exist_ok=True)
            build_engine(
                ctx.checkpoint,
                out,
                fp16=fp16,
                min_shape=shape,
                opt_shape=shape,
                max_shape=shape,
                parity=False,
                progress=ctx.progress,
            )
        return open_backend(out, "tensorrt", "cuda")

    return build


ROWS: tuple[RowSpec, ...] = (
    RowSpec(REFERENCE_ROW, "PyTorch eager fp32 (reference)", "torch", "fp32", "cpu", _build_torch),
    RowSpec(
        "torch-compile-fp32",
        "PyTorch torch.compile (inductor) fp32",
        "torch",
        "fp32",
        "cpu",
        _build_torch_compile,
        _no_compile,
        isolate=True,
        timeout_setting="compile_timeout_s",
        warmup_min=1,
    ),
    RowSpec("ort-fp32", "ONNX Runtime fp32 (ORT's own defaults)", "onnxruntime", "fp32", "cpu", _build_ort),
    RowSpec(
        "ort-tuned-fp32",
        "ONNX Runtime fp32 (SDK defaults, OrtOptions(), cached optimised graph)",
        "onnxruntime",
        "fp32",
        "cpu",
        _build_ort_tuned,
    ),
    RowSpec(
        "ort-int8-dynamic", "ONNX Runtime int8 (dynamic quantisation)", "onnxruntime", "int8", "cpu", _build_ort_int8("dynamic")
    ),
    RowSpec(
        "ort-int8-static",
        "ONNX Runtime int8 (static QDQ, calibrated on real pairs)",
        "onnxruntime",
        "int8",
        "cpu",
        _build_ort_int8("static"),
        isolate=True,
    ),
    RowSpec(
        "torch-cuda-fp32",
        "PyTorch eager fp32 CUDA",
        "torch",
        "fp32",
        "cuda",
        lambda ctx, shape: _build_torch(ctx, shape, "cuda"),
        _no_cuda_torch,
    ),
    RowSpec(
        "torch-cuda-fp16",
        "PyTorch eager fp16 CUDA",
        "torch",
        "fp16",
        "cuda",
        lambda ctx, shape: _build_torch(ctx, shape, "cuda", "fp16"),
        _no_cuda_torch,
    ),
    RowSpec(
        "torch-cuda-na-kernel",
        "PyTorch fp32 CUDA + SDK NA kernel",
        "torch",
        "fp32",
        "cuda",
        _build_torch_na_kernel,
        _no_na_kernel,
        isolate=True,
    ),
    RowSpec(
        "ort-cuda-fp32",
        "ONNX Runtime CUDA EP fp32",
        "onnxruntime",
        "fp32",
        "cuda",
        lambda ctx, shape: _build_ort(ctx, shape, "cuda"),
        _no_ort_cuda,
    ),
    RowSpec("tensorrt-fp32", "TensorRT engine fp32", "tensorrt", "fp32", "cuda", _build_tensorrt(False), _no_tensorrt),
    RowSpec("tensorrt-fp16", "TensorRT engine fp16", "tensorrt", "fp16", "cuda", _build_tensorrt(True), _no_tensorrt),
)
ROW_IDS = tuple(r.id for r in ROWS)


def select_rows(ids: Sequence[str] | None) -> list[RowSpec]:
    """Rows by id, in table order; the reference row is always included (ratios need it)."""
    if ids is None:
        return list(ROWS)
    unknown = sorted(set(ids) - set(ROW_IDS))
    if unknown:
        raise ValueError(f"unknown rows {unknown}; choose from {', '.join(ROW_IDS)}")
    return [r for r in ROWS if r.id in ids or r.id == REFERENCE_ROW]
