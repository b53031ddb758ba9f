"""``tsjnet bench``: latency and accuracy of every backend against the PyTorch eager fp32 reference.

One run measures, for each (size, batch) configuration, a list of *rows* (backend + precision +
settings). The first row, PyTorch eager fp32 on the CPU, is the reference: every other row's speed-up
and accuracy are taken against it, measured in the same process and run.

Per row:

* latency, end to end: ``Fuser.fuse_batch`` on uint8 frames (numpy in -> numpy out, pre/post-processing
  included); warm-up calls first, then N timed calls; min/median/p90/p99/mean and frames/s;
* latency, compute only: the time spent inside ``Backend.run`` (float32 [N,1,H,W] in and out, the
  network only) during those same calls, so both come from one set of runs;
* peak resident memory of the process while the row was built and run (Linux ``VmHWM``, reset per
  row), and peak GPU memory where a GPU is used;
* accuracy against the reference on real pairs: max/mean abs error and PSNR of the fused luminance
  (network output, [0, 1]), and the fusion metrics (preset ``paper``) of the row's fused images.

Rows that cannot run here (no GPU, a failed export, torch.compile too slow) are kept in the results
with ``status`` ``skipped``/``failed`` and the reason: nothing is hidden and no number is made up.

The models are randomly initialised (seeded) because no trained TSJNet weights exist yet; latency
does not depend on the weights, accuracy against the reference is still meaningful (same weights in
every row), fusion metrics of an untrained network are not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import json
import math
import os
import queue as queue_mod
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tsjnet_sdk.runtime import Backend

from tsjnet_sdk.results import data_root
from .machine import describe_machine

SCHEMA = "tsjnet-bench/1"
REFERENCE_ROW = "torch-eager-fp32"
DEFAULT_SIZES = ("640x480",)
DEFAULT_DATA = data_root() / "msrs" / "test"

Progress = Callable[[str], None]
Shape = tuple[int, int, int]  # (N, H, W)


# -- settings ---------------------------------------------------------------------------------------


@dataclass
class BenchSettings:
    """Everything one bench run needs; picklable (isolated rows get a copy in a subprocess)."""

    model: str = "tsjnet"                      # config name (random init) or checkpoint path
    sizes: tuple[tuple[int, int], ...] = ((480, 640),)  # (H, W)
    batches: tuple[int, ...] = (1,)
    rows: tuple[str, ...] | None = None        # None: every row (GPU rows are skipped without a GPU)
    warmup: int = 3
    runs: int = 20
    accuracy_pairs: int = 4                    # real pairs each row is compared on (the first N are also timed)
    calib_pairs: int = 4                       # pairs for static int8 calibration (disjoint from accuracy pairs)
    metrics: tuple[str, ...] | None = None     # fusion metrics (None: the paper preset's full set)
    metrics_preset: str = "paper"
    psnr_threshold_db: float = 40.0            # a row's accuracy "holds" at or above this PSNR vs the reference
    snr_threshold_db: float = 20.0             # ... and this SNR (error vs the reference's own variation)
    data_dir: Path = DEFAULT_DATA
    work_dir: Path = field(default_factory=lambda: Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                           / "tsjnet-bench")
    onnx: Path | None = None                   # a given fp32 ONNX (used instead of exporting)
    engine: Path | None = None                 # a given TensorRT engine
    seed: int = 0
    ort_threads: int | None = None             # tuned row: intra-op threads (None: the SDK default, usable cores)
    compile_timeout_s: float = 600.0           # torch.compile row: build + warm-up + runs, in a subprocess
    row_timeout_s: float = 3600.0              # other isolated rows (int8 static: quantisation + runs)
    torch_threads: int | None = None


def parse_size(text: str) -> tuple[int, int]:
    """``640x480`` (W x H, like camera resolutions) -> (H, W)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size must be WIDTHxHEIGHT like 640x480, got {text!r}") from None
    if min(width, height) < 32:
        raise ValueError(f"size {text}: TSJNet needs H, W >= 32")
    return height, width


def size_label(hw: tuple[int, int]) -> str:
    return f"{hw[1]}x{hw[0]}"


# -- data -------------------------------------------------------------------------------------------


def list_pairs(data_dir: Path) -> list[tuple[Path, Path]]:
    """(ir, vis) paths of ``data_dir/ir/NAME`` + ``data_dir/vi/NAME`` (tsjnet_sdk.pairing), sorted by name."""
    from tsjnet_sdk.pairing import pair_folders

    ir_dir, vis_dir = Path(data_dir) / "ir", Path(data_dir) / "vi"
    if not ir_dir.is_dir() or not vis_dir.is_dir():
        raise FileNotFoundError(f"{data_dir} needs ir/ and vi/ folders of image pairs (e.g. ../shared/data/msrs/test)")
    pairs = [(ir, vis) for _, ir, vis in pair_folders(ir_dir, vis_dir).rows]
    if not pairs:
        raise FileNotFoundError(f"no ir/vi pairs with matching names in {data_dir}")
    return pairs


def load_pair(paths: tuple[Path, Path], hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A real pair as the camera would deliver it (uint8), resized to (H, W) when its size differs."""
    from PIL import Image

    from tsjnet_sdk.imaging import read_image

    out = []
    for path in paths:
        arr = read_image(path)
        if arr.dtype != np.uint8:
            arr = (arr / 257).round().astype(np.uint8)
        if arr.shape[:2] != hw:
            arr = np.asarray(Image.fromarray(arr).resize((hw[1], hw[0]), Image.BICUBIC))
        out.append(arr)
    return out[0], out[1]


def prepared_inputs(frames: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Network inputs [N, 1, H, W] float32 for the frames (what the Fuser feeds its backend)."""
    from tsjnet_sdk.imaging import prepare_pair

    prepared = [prepare_pair(ir, vis)[:2] for ir, vis in frames]
    return (np.stack([p[0] for p in prepared])[:, None].astype(np.float32),
            np.stack([p[1] for p in prepared])[:, None].astype(np.float32))


# -- artefacts (cached by checkpoint hash + options) ------------------------------------------------


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ensure_checkpoint(settings: BenchSettings, progress: Progress | None = None) -> Path:
    """The checkpoint to benchmark: the given file, or a seeded random-init one of the named config."""
    path = Path(settings.model)
    if path.suffix == ".safetensors" or path.exists():
        return path
    import torch

    from tsjnet_sdk.models import create_model, save_checkpoint

    out = Path(settings.work_dir) / f"{settings.model}_seed{settings.seed}_random.safetensors"
    if not out.is_file():
        _say(progress, f"creating a random-init {settings.model} checkpoint (seed {settings.seed})")
        out.parent.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(settings.seed)
        save_checkpoint(create_model(settings.model).eval(), out,
                        extra_metadata={"note": f"random init, torch.manual_seed({settings.seed}); not trained"})
    return out


def _cache_path(settings: BenchSettings, checkpoint: Path, shape: Shape, tag: str, suffix: str) -> Path:
    from tsjnet_sdk import __version__

    key = hashlib.sha256(f"{file_digest(checkpoint)}|{__version__}|{tag}|{shape}".encode()).hexdigest()[:16]
    return Path(settings.work_dir) / "artefacts" / f"{checkpoint.stem}_{shape[0]}x{shape[1]}x{shape[2]}_{tag}_{key}{suffix}"


def ensure_onnx(settings: BenchSettings, checkpoint: Path, shape: Shape, progress: Progress | None = None,
                fp16: bool = False) -> Path:
    """A static-shape fp32 (or fp16) ONNX of the checkpoint at ``shape``: the given file, or a cached export.

    Static shapes: the export is about 3x faster than a dynamic one, and the bench runs one shape per file.
    """
    if settings.onnx is not None and not fp16:
        return Path(settings.onnx)
    out = _cache_path(settings, checkpoint, shape, "fp16" if fp16 else "fp32", ".onnx")
    if not out.is_file():
        from tsjnet_sdk.export import export_onnx

        _say(progress, f"exporting ONNX {shape[0]}x1x{shape[1]}x{shape[2]} (static, cached for reruns)")
        out.parent.mkdir(parents=True, exist_ok=True)
        # parity=False: the bench measures every row's accuracy against PyTorch itself, on real pairs.
        export_onnx(checkpoint, out, fp16=fp16, static=shape, parity=False, progress=progress)
    return out


class _PairReader:
    """onnxruntime.quantization calibration reader over real pairs (prepared like the Fuser does)."""

    def __init__(self, batches: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self._batches = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {"ir": batch[0], "vis": batch[1]}


def ensure_int8(settings: BenchSettings, checkpoint: Path, shape: Shape, mode: str,
                calib_frames: Sequence[tuple[np.ndarray, np.ndarray]], progress: Progress | None = None) -> Path:
    """An int8 ONNX: ``dynamic`` (weights int8, activations quantised at run time) or ``static``
    (QDQ, activation ranges calibrated with MinMax on real pairs). Conv/MatMul/Gemm are quantised;
    softmax and norms stay float."""
    fp32 = ensure_onnx(settings, checkpoint, shape, progress)
    # The key includes the fp32 file's digest: a given --onnx is quantised into its own cache entry.
    out = _cache_path(settings, checkpoint, shape, f"int8-{mode}-c{len(calib_frames)}-{file_digest(fp32)[:12]}", ".onnx")
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with _quiet_root_logger():
        _quantize(fp32, out, shape, mode, calib_frames, progress)
    return out


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime.quantization logs one root-logger warning per unfused bias (thousands); mute them."""
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def float_intermediates_gib(model_path: Path) -> float:
    """Total size of the graph's float32 intermediate tensors (static shapes from the export's value_info)."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    total = 0
    for info in model.graph.value_info:
        tensor = info.type.tensor_type
        dims = [d.dim_value for d in tensor.shape.dim]
        if tensor.elem_type == onnx.TensorProto.FLOAT and dims and all(d > 0 for d in dims):
            total += int(np.prod(dims)) * 4
    return total / 2**30


def _check_calibration_memory(fp32: Path) -> None:
    """Refuse static calibration that cannot fit: ORT's calibrator runs a graph augmented with an output
    per quantised tensor, which keeps activations alive; for the full model at 640x480 the float
    intermediates total tens of GiB. Failing here with the numbers beats the OOM killer."""
    available = _proc_meminfo_gib("MemAvailable")
    needed = float_intermediates_gib(fp32)
    # Measured: tsjnet-tiny at 640x480 (4.9 GiB of intermediates) peaked at 4.0 GiB RSS while calibrating,
    # and the full model was OOM-killed at 23 GiB. The margin leaves room for the bench process and
    # whatever else runs on the machine (the OOM killer could pick another process).
    if available is not None and needed > 0.75 * available:
        raise MemoryError(
            f"static int8 calibration not attempted: the graph's float32 intermediate tensors total {needed:.1f} GiB, "
            f"more than 75% of the {available:.1f} GiB of memory available, and ORT's MinMax calibration holds about "
            "that much (the full model was OOM-killed here); calibrate on a machine with more memory, or use "
            "ort-int8-dynamic"
        )


def _proc_meminfo_gib(key: str) -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def _quantize(fp32: Path, out: Path, shape: Shape, mode: str, calib_frames: Sequence[tuple[np.ndarray, np.ndarray]],
              progress: Progress | None) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if mode == "static":
        _check_calibration_memory(fp32)
    pre = out.with_name(out.stem + "_pre.onnx")
    _say(progress, f"int8 {mode}: pre-processing {fp32.name}")
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    ops = ["Conv", "MatMul", "Gemm"]
    if mode == "dynamic":
        _say(progress, "int8 dynamic: quantising weights")
        quantize_dynamic(str(pre), str(out), op_types_to_quantize=ops, weight_type=QuantType.QInt8, per_channel=True)
    else:
        n = shape[0]
        batches = [prepared_inputs(calib_frames[i : i + n]) for i in range(0, len(calib_frames) - n + 1, n)]
        if not batches:
            raise ValueError(f"static int8 needs at least {n} calibration pairs")
        _say(progress, f"int8 static: calibrating on {len(batches) * n} real pairs (MinMax)")
        quantize_static(str(pre), str(out), _PairReader(batches), op_types_to_quantize=ops, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    pre.unlink(missing_ok=True)


# -- the timing wrapper ---------------------------------------------------------------------------


class TimedRunner(Backend):
    """Wraps a backend: adds up the time spent in ``run`` (compute only) and keeps the last output.

    ``batched`` hides a fixed-shape artefact's batch size from the Fuser: the Fuser runs frames of a
    fixed-shape file one at a time (as single tiles), so a static N > 1 file would get N = 1 inputs. The
    bench always feeds exactly the file's N frames of its H x W, so it lets the Fuser send them whole.
    """

    def __init__(self, inner: Backend, batched: bool = False) -> None:
        super().__init__(inner.path, inner.device)
        self.inner, self.name, self._batched = inner, inner.name, batched
        self.compute_s = 0.0
        self.last_output: np.ndarray | None = None

    def run(self, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
        t = time.perf_counter()
        out = self.inner.run(ir, vis)
        self.compute_s += time.perf_counter() - t
        self.last_output = out
        return out

    @property
    def static_shape(self) -> tuple[int, int, int] | None:
        return None if self._batched else self.inner.static_shape

    def describe(self) -> dict[str, Any]:
        sweep = getattr(self.inner, "thread_sweep_median_ms", None)
        return {**self.inner.describe(), **({"thread_sweep_median_ms": sweep} if sweep else {})}

    def close(self) -> None:
        self.inner.close()


def fuser_for(runner: Backend) -> Any:
    """A ``Fuser`` around an already-open backend: the public API's ready-backend form, so every row runs
    the Fuser's own pre/post-processing and tiling."""
    from tsjnet_sdk.runtime import Fuser

    return Fuser(runner)


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
    warmup_min: int = 0       # at least this many warm-up calls (compilation happens in the first)


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

    with contextlib.suppress(ImportError):
        import tsjnet_sdk.kernels.torch_binding  # noqa: F401 - registers the kernel when built
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
            build_engine(ctx.checkpoint, out, fp16=fp16, min_shape=shape, opt_shape=shape, max_shape=shape,
                         parity=False, progress=ctx.progress)
        return open_backend(out, "tensorrt", "cuda")

    return build


ROWS: tuple[RowSpec, ...] = (
    RowSpec(REFERENCE_ROW, "PyTorch eager fp32 (reference)", "torch", "fp32", "cpu", _build_torch),
    RowSpec("torch-compile-fp32", "PyTorch torch.compile (inductor) fp32", "torch", "fp32", "cpu",
            _build_torch_compile, _no_compile, isolate=True, timeout_setting="compile_timeout_s", warmup_min=1),
    RowSpec("ort-fp32", "ONNX Runtime fp32 (ORT's own defaults)", "onnxruntime", "fp32", "cpu", _build_ort),
    RowSpec("ort-tuned-fp32", "ONNX Runtime fp32 (SDK defaults, OrtOptions(), cached optimised graph)", "onnxruntime",
            "fp32", "cpu", _build_ort_tuned),
    RowSpec("ort-int8-dynamic", "ONNX Runtime int8 (dynamic quantisation)", "onnxruntime", "int8", "cpu",
            _build_ort_int8("dynamic")),
    RowSpec("ort-int8-static", "ONNX Runtime int8 (static QDQ, calibrated on real pairs)", "onnxruntime", "int8",
            "cpu", _build_ort_int8("static"), isolate=True),
    RowSpec("torch-cuda-fp32", "PyTorch eager fp32 CUDA", "torch", "fp32", "cuda",
            lambda ctx, shape: _build_torch(ctx, shape, "cuda"), _no_cuda_torch),
    RowSpec("torch-cuda-fp16", "PyTorch eager fp16 CUDA", "torch", "fp16", "cuda",
            lambda ctx, shape: _build_torch(ctx, shape, "cuda", "fp16"), _no_cuda_torch),
    RowSpec("torch-cuda-na-kernel", "PyTorch fp32 CUDA + SDK NA kernel", "torch", "fp32", "cuda",
            _build_torch_na_kernel, _no_na_kernel, isolate=True),
    RowSpec("ort-cuda-fp32", "ONNX Runtime CUDA EP fp32", "onnxruntime", "fp32", "cuda",
            lambda ctx, shape: _build_ort(ctx, shape, "cuda"), _no_ort_cuda),
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


# -- measuring --------------------------------------------------------------------------------------


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def _proc_status_mib(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) for this process; False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float | None:
    value = _proc_status_mib("VmHWM")
    if value is None:
        import resource

        value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return value


def latency_stats(seconds: Sequence[float]) -> dict[str, float | int]:
    """min/median/p90/p99/mean/std in milliseconds over the timed runs (percentiles interpolate)."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    return {"n": int(ms.size), "min_ms": float(ms.min()), "median_ms": float(np.median(ms)),
            "p90_ms": float(np.percentile(ms, 90)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean()), "std_ms": float(ms.std())}


@dataclass
class RawRow:
    """A row's measurements before they are compared with the reference (picklable)."""

    e2e_s: list[float] = field(default_factory=list)
    compute_s: list[float] = field(default_factory=list)
    warmup_s: list[float] = field(default_factory=list)
    build_s: float = 0.0
    outputs_y: list[np.ndarray] = field(default_factory=list)   # fused luminance per accuracy pair, H x W
    outputs: list[np.ndarray] = field(default_factory=list)     # Fuser outputs per accuracy pair (uint8)
    rss_peak_mib: float | None = None
    rss_scope: str = "row"
    rss_before_mib: float | None = None
    gpu_peak_mib: float | None = None
    describe: dict[str, Any] = field(default_factory=dict)


def _gpu_memory_begin(device: str) -> Callable[[], float | None]:
    """Start measuring GPU memory for a row; returns a function giving the peak (MiB), None on CPU."""
    if device != "cuda":
        return lambda: None
    import torch

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    free_before, _ = torch.cuda.mem_get_info()

    def peak() -> float | None:
        torch.cuda.synchronize()
        allocated = torch.cuda.max_memory_allocated()
        # Non-torch runtimes (ORT, TensorRT) allocate outside torch's allocator: use the drop in free memory.
        used_outside = max(0, free_before - torch.cuda.mem_get_info()[0])
        return max(allocated, used_outside) / 2**20

    return peak


def measure_row(spec: RowSpec, ctx: RowContext, shape: Shape,
                acc_chunks: Sequence[Sequence[tuple[np.ndarray, np.ndarray]]], warmup: int, runs: int) -> RawRow:
    """Build ``spec``'s backend at ``shape``, time it on ``acc_chunks[0]``, then run the other chunks.

    The timed frames are the first accuracy chunk, so the last timed call's outputs are reused as that
    chunk's accuracy outputs (for the full model a call is a minute on a small CPU).
    """
    raw = RawRow()
    raw.rss_before_mib = _proc_status_mib("VmRSS")
    raw.rss_scope = "row" if reset_peak_rss() else "process"
    gpu_peak = _gpu_memory_begin(spec.device)
    t = time.perf_counter()
    inner = spec.build(ctx, shape)
    runner = TimedRunner(inner, batched=shape[0] > 1)
    fuser = fuser_for(runner)
    raw.build_s = time.perf_counter() - t
    raw.describe = {k: (str(v) if isinstance(v, Path) else v) for k, v in fuser.describe().items()}
    try:
        frames = list(acc_chunks[0])
        for i in range(max(warmup, spec.warmup_min)):
            _say(ctx.progress, f"{spec.id}: warm-up {i + 1}")
            t = time.perf_counter()
            fuser.fuse_batch(frames)
            raw.warmup_s.append(time.perf_counter() - t)
        outputs: list[np.ndarray] = []
        for i in range(runs):
            _say(ctx.progress, f"{spec.id}: run {i + 1}/{runs}")
            runner.compute_s = 0.0
            t = time.perf_counter()
            outputs = fuser.fuse_batch(frames)
            raw.e2e_s.append(time.perf_counter() - t)
            raw.compute_s.append(runner.compute_s)
        last_y = runner.last_output
        if not runs:  # accuracy still needs the first chunk's outputs
            outputs, last_y = fuser.fuse_batch(frames), runner.last_output
        raw.outputs.extend(outputs)
        raw.outputs_y.extend(last_y[:, 0])
        for chunk in acc_chunks[1:]:
            _say(ctx.progress, f"{spec.id}: accuracy pairs")
            raw.outputs.extend(fuser.fuse_batch(list(chunk)))
            raw.outputs_y.extend(runner.last_output[:, 0])
        raw.rss_peak_mib = peak_rss_mib()
        raw.gpu_peak_mib = gpu_peak()
    finally:
        fuser.close()
    return raw


def _isolated_worker(spec_id: str, ctx: RowContext, shape: Shape, acc_chunks: Any, warmup: int, runs: int,
                     out: Any) -> None:
    """Subprocess entry point: measure one row, send progress lines and then the result (or the error)."""
    ctx = dataclasses.replace(ctx, progress=lambda message: out.put(("progress", message)))
    if ctx.settings.torch_threads:
        import torch

        torch.set_num_threads(ctx.settings.torch_threads)
    spec = next(r for r in ROWS if r.id == spec_id)
    try:
        out.put(("result", measure_row(spec, ctx, shape, acc_chunks, warmup, runs)))
    except BaseException as e:  # noqa: BLE001 - reported to the parent as the row's failure
        out.put(("error", f"{type(e).__name__}: {e}", traceback.format_exc(limit=4)))


def measure_isolated(spec: RowSpec, ctx: RowContext, shape: Shape, acc_chunks: Any, warmup: int, runs: int,
                     timeout_s: float) -> RawRow:
    """``measure_row`` in a fresh process, killed after ``timeout_s`` (raises TimeoutError then)."""
    import multiprocessing as mp

    spawn = mp.get_context("spawn")  # fork after torch/ORT started threads is unsafe
    messages = spawn.Queue()
    child_ctx = dataclasses.replace(ctx, progress=None)
    proc = spawn.Process(target=_isolated_worker, args=(spec.id, child_ctx, shape, acc_chunks, warmup, runs, messages),
                         daemon=True)
    proc.start()
    deadline = time.monotonic() + timeout_s
    last = "starting"
    try:
        while True:
            try:
                kind, *payload = messages.get(timeout=min(1.0, max(0.01, deadline - time.monotonic())))
            except queue_mod.Empty:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"did not finish within its {timeout_s:.0f} s limit (stopped during "
                                       f"'{last}')") from None
                if not proc.is_alive() and messages.empty():
                    code = proc.exitcode
                    why = " (SIGKILL: most likely the out-of-memory killer)" if code == -9 else ""
                    raise RuntimeError(f"the row's subprocess died with exit code {code}{why} during '{last}'") from None
                continue
            if kind == "progress":
                last = payload[0]
                _say(ctx.progress, payload[0])
            elif kind == "result":
                return payload[0]
            else:
                raise RuntimeError(payload[0])
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)


# -- accuracy ---------------------------------------------------------------------------------------


def accuracy_vs_reference(outputs_y: Sequence[np.ndarray], reference_y: Sequence[np.ndarray],
                          outputs: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> dict[str, Any]:
    """Errors of a row's fused luminance against the reference's ([0, 1] floats), over all pairs, and
    of its final uint8 images (in grey levels)."""
    diff = np.concatenate([(np.asarray(o, np.float64) - np.asarray(r, np.float64)).ravel()
                           for o, r in zip(outputs_y, reference_y)])
    mse = float(np.mean(diff**2))
    ref_std = float(np.std(np.concatenate([np.asarray(r, np.float64).ravel() for r in reference_y])))
    per_pair_psnr = []
    for o, r in zip(outputs_y, reference_y):
        m = float(np.mean((np.asarray(o, np.float64) - np.asarray(r, np.float64)) ** 2))
        per_pair_psnr.append(math.inf if m == 0 else 10 * math.log10(1.0 / m))
    u8 = np.concatenate([np.abs(o.astype(np.int32) - r.astype(np.int32)).ravel() for o, r in zip(outputs, reference)])
    return {
        "pairs": len(reference_y),
        "max_abs": float(np.abs(diff).max()),
        "mean_abs": float(np.abs(diff).mean()),
        "psnr_db": math.inf if mse == 0 else 10 * math.log10(1.0 / mse),
        "psnr_db_worst_pair": min(per_pair_psnr),
        "max_abs_uint8": int(u8.max()),
        # How much the reference output varies: errors are only small relative to this. Random-init
        # networks give almost flat images, so PSNR (peak 1) alone flatters every row; the SNR (the
        # reference's variance over the error's mean square) does not.
        "reference_std": ref_std,
        "snr_db": math.inf if mse == 0 else (-math.inf if ref_std == 0 else 10 * math.log10(ref_std**2 / mse)),
        "pixels_differing_uint8": float(np.mean(u8 > 0)),
    }


def fusion_metrics(frames: Sequence[tuple[np.ndarray, np.ndarray]], outputs: Sequence[np.ndarray],
                   preset: str, metrics: Sequence[str] | None) -> dict[str, float]:
    """The fusion metrics of a row's fused images, averaged over the pairs (NaN-aware)."""
    from tsjnet_sdk.metrics import evaluate

    reports = [evaluate(ir, vis, fused, preset, metrics=list(metrics) if metrics else None)
               for (ir, vis), fused in zip(frames, outputs)]
    return {k: float(np.nanmean([r[k] for r in reports])) if any(not math.isnan(r[k]) for r in reports) else math.nan
            for k in reports[0]}


# -- the run ----------------------------------------------------------------------------------------


def _failure(spec: RowSpec, status: str, reason: str) -> dict[str, Any]:
    return {"id": spec.id, "label": spec.label, "backend": spec.backend, "precision": spec.precision,
            "device": spec.device, "status": status, "reason": reason}


def _summarise(spec: RowSpec, raw: RawRow, shape: Shape) -> dict[str, Any]:
    e2e, compute = latency_stats(raw.e2e_s), latency_stats(raw.compute_s)
    return {
        "id": spec.id, "label": spec.label, "backend": spec.backend, "precision": spec.precision,
        "device": spec.device, "status": "ok", "reason": None,
        "latency": {"end_to_end": e2e, "compute": compute},
        "throughput_fps": shape[0] / (e2e["median_ms"] / 1e3),
        "warmup_s": raw.warmup_s, "build_s": raw.build_s,
        "memory": {"rss_peak_mib": raw.rss_peak_mib, "rss_before_mib": raw.rss_before_mib,
                   "rss_peak_scope": raw.rss_scope, "gpu_peak_mib": raw.gpu_peak_mib},
        "backend_info": raw.describe,
    }


def _load_average() -> list[float] | None:
    """1/5/15-minute load averages: other work on the machine slows every row (recorded, not corrected)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def run_bench(settings: BenchSettings, progress: Progress | None = None,
              on_row: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run every selected row at every (size, batch); returns the results document (see ``SCHEMA``)."""
    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    started = time.time()
    load_start = _load_average()
    checkpoint = ensure_checkpoint(settings, progress)
    from tsjnet_sdk.models import read_checkpoint_metadata

    meta = read_checkpoint_metadata(checkpoint)
    specs = select_rows(settings.rows)
    pairs = list_pairs(settings.data_dir)
    n_acc = max(settings.accuracy_pairs, max(settings.batches))
    acc_paths = pairs[:n_acc]
    calib_paths = pairs[n_acc : n_acc + settings.calib_pairs] or pairs[: settings.calib_pairs]
    configs = []
    for hw in settings.sizes:
        acc_frames = [load_pair(p, hw) for p in acc_paths]
        calib_frames = [load_pair(p, hw) for p in calib_paths]
        ctx = RowContext(settings, checkpoint, calib_frames, progress)
        for b_index, batch in enumerate(settings.batches):
            shape = (batch, hw[0], hw[1])
            # Accuracy frames in chunks of exactly `batch` (fixed-shape files take N frames per call); the
            # count is rounded down to whole chunks, at least one.
            n_chunks = max(1, len(acc_frames) // batch)
            chunks = [acc_frames[i * batch : (i + 1) * batch] for i in range(n_chunks)]
            used = [f for c in chunks for f in c]
            label = f"{size_label(hw)} batch {batch}"
            rows: list[dict[str, Any]] = []
            reference: RawRow | None = None
            ref_metrics: dict[str, float] | None = None
            for spec in specs:
                reason = spec.unavailable(settings)
                if reason:
                    row = _failure(spec, "skipped", reason)
                else:
                    _say(progress, f"[{label}] {spec.id}: building")
                    try:
                        if spec.isolate:
                            raw = measure_isolated(spec, ctx, shape, chunks, settings.warmup, settings.runs,
                                                   getattr(settings, spec.timeout_setting))
                        else:
                            raw = measure_row(spec, ctx, shape, chunks, settings.warmup, settings.runs)
                    except Exception as e:  # noqa: BLE001 - a failing row is reported, the bench goes on
                        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
                        row = _failure(spec, "failed", f"{type(e).__name__}: {message}"[:500])
                    else:
                        row = _summarise(spec, raw, shape)
                        if spec.id == REFERENCE_ROW:
                            reference = raw
                        if reference is not None:
                            ref_e2e = float(np.median(reference.e2e_s))
                            ref_compute = float(np.median(reference.compute_s))
                            row["speedup_vs_reference"] = {
                                "end_to_end": ref_e2e / row["latency"]["end_to_end"]["median_ms"] * 1e3,
                                "compute": ref_compute / row["latency"]["compute"]["median_ms"] * 1e3,
                            }
                            acc = accuracy_vs_reference(raw.outputs_y, reference.outputs_y, raw.outputs,
                                                        reference.outputs)
                            acc["holds"] = (acc["psnr_db"] >= settings.psnr_threshold_db
                                            and acc["snr_db"] >= settings.snr_threshold_db)
                            row["accuracy_vs_reference"] = acc
                        if b_index == 0:  # fusion metrics do not depend on the batch size
                            _say(progress, f"[{label}] {spec.id}: fusion metrics ({settings.metrics_preset})")
                            row["fusion_metrics"] = fusion_metrics(used, raw.outputs, settings.metrics_preset,
                                                                   settings.metrics)
                            if spec.id == REFERENCE_ROW:
                                ref_metrics = row["fusion_metrics"]
                            elif ref_metrics is not None:
                                row["fusion_metrics_delta"] = {k: v - ref_metrics[k] for k, v in
                                                               row["fusion_metrics"].items() if k in ref_metrics}
                        del raw
                        gc.collect()
                rows.append(row)
                if on_row is not None:
                    on_row({**row, "config": label})
            configs.append({"size": size_label(hw), "height": hw[0], "width": hw[1], "batch": batch, "rows": rows,
                            "accuracy_pairs": [p[0].name for p in acc_paths[: len(used)]]})
    return {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": time.time() - started,
        "machine": describe_machine(),
        "model": {"name": json.loads(meta["config"]).get("name") if "config" in meta else None,
                  "checkpoint": checkpoint.name, "checkpoint_sha256": file_digest(checkpoint),
                  "weights": meta.get("note", "as given")},
        "settings": {
            "warmup": settings.warmup, "runs": settings.runs, "sizes": [size_label(s) for s in settings.sizes],
            "batches": list(settings.batches), "rows": [s.id for s in specs], "reference": REFERENCE_ROW,
            "data": str(settings.data_dir), "accuracy_pairs": settings.accuracy_pairs,
            "calibration_pairs": [p[0].name for p in calib_paths], "metrics_preset": settings.metrics_preset,
            "psnr_threshold_db": settings.psnr_threshold_db, "snr_threshold_db": settings.snr_threshold_db, "seed": settings.seed,
            "torch_threads": settings.torch_threads or _torch_threads(),
            "compile_timeout_s": settings.compile_timeout_s, "row_timeout_s": settings.row_timeout_s,
            "load_average_start_end": [load_start, _load_average()],
        },
        "configs": configs,
        "notes": [
            "end_to_end: Fuser.fuse_batch on uint8 frames (numpy in -> numpy out, pre/post-processing included); "
            "compute: time inside Backend.run (float32 [N,1,H,W] in and out) during the same calls.",
            "speed-ups are the reference row's median over this row's median, measured in the same run.",
            "accuracy: the fused luminance ([0,1]) against the reference's on the accuracy pairs; PSNR peak 1.",
            "ONNX files are static-shape exports (decomposed NA) at the benchmarked (N, H, W).",
        ],
    }
