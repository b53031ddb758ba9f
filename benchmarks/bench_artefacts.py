"""``tsjnet bench`` artefacts: the checkpoint, static ONNX exports and int8 files, cached by content hash."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from tsjnet_sdk.hashing import file_sha256

from .bench_data import prepared_inputs
from .bench_settings import BenchSettings, Progress, Shape, _say

# -- artefacts (cached by checkpoint hash + options) ------------------------------------------------


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
        save_checkpoint(
            create_model(settings.model).eval(),
            out,
            extra_metadata={"note": f"random init, torch.manual_seed({settings.seed}); not trained"},
        )
    return out


def _cache_path(settings: BenchSettings, checkpoint: Path, shape: Shape, tag: str, suffix: str) -> Path:
    from tsjnet_sdk import __version__

    key = hashlib.sha256(f"{file_sha256(checkpoint)}|{__version__}|{tag}|{shape}".encode()).hexdigest()[:16]
    return Path(settings.work_dir) / "artefacts" / f"{checkpoint.stem}_{shape[0]}x{shape[1]}x{shape[2]}_{tag}_{key}{suffix}"


def ensure_onnx(
    settings: BenchSettings, checkpoint: Path, shape: Shape, progress: Progress | None = None, fp16: bool = False
) -> Path:
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


def ensure_int8(
    settings: BenchSettings,
    checkpoint: Path,
    shape: Shape,
    mode: str,
    calib_frames: Sequence[tuple[np.ndarray, np.ndarray]],
    progress: Progress | None = None,
) -> Path:
    """An int8 ONNX: ``dynamic`` (weights int8, activations quantised at run time) or ``static``
    (QDQ, activation ranges calibrated with MinMax on real pairs). Conv/MatMul/Gemm are quantised;
    softmax and norms stay float."""
    fp32 = ensure_onnx(settings, checkpoint, shape, progress)
    # The key includes the fp32 file's digest: a given --onnx is quantised into its own cache entry.
    out = _cache_path(settings, checkpoint, shape, f"int8-{mode}-c{len(calib_frames)}-{file_sha256(fp32)[:12]}", ".onnx")
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


def _quantize(
    fp32: Path,
    out: Path,
    shape: Shape,
    mode: str,
    calib_frames: Sequence[tuple[np.ndarray, np.ndarray]],
    progress: Progress | None,
) -> None:
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
        quantize_static(
            str(pre),
            str(out),
            _PairReader(batches),
            op_types_to_quantize=ops,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    pre.unlink(missing_ok=True)
