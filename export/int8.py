"""Static int8 (QDQ) for the convolutions of a tsjnet ONNX, with ONNX Runtime's quantizer.

    from tsjnet_sdk.export.int8 import quantize_int8
    quantize_int8("tsjnet-edge.onnx", "tsjnet-edge_int8.onnx", calibration_pairs(data_root() / "train"))

Only Conv nodes are quantized (per-channel int8 weights, uint8 activations, QDQ format, the explicit-
quantization form TensorRT also reads); neighborhood attention, softmax and norms stay float.
Calibration uses IR/visible pairs from the training pool only, never an evaluation set. The result
keeps the source's tsjnet metadata, with precision "int8" and the calibration recorded. Off by default:
whether int8 holds the fusion quality is measured in benchmarks/results/int8_tsjnet-edge.md.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from tsjnet_sdk.atomic import atomic_path
from tsjnet_sdk.export.common import INPUT_NAMES, ExportError, tsjnet_onnx_metadata


def calibration_pairs(folder: str | os.PathLike, limit: int = 24) -> list[tuple[Path, Path]]:
    """Up to ``limit`` (ir, vis) file pairs from a training-pool folder (``<set>/ir``, ``<set>/vi``), spread over its sets."""
    from tsjnet_sdk.pairing import pair_folders

    root = Path(folder)
    per_set = [pair_folders(d / "ir", d / "vi").rows for d in sorted(root.iterdir()) if (d / "ir").is_dir()]
    if not per_set:
        raise ExportError(f"no <set>/ir + <set>/vi folders under {root} for int8 calibration")
    chosen: list[tuple[Path, Path]] = []
    while len(chosen) < limit and any(per_set):  # round-robin so every set is represented
        for rows in per_set:
            if rows and len(chosen) < limit:
                _, ir, vis = rows.pop(0)
                chosen.append((Path(ir), Path(vis)))
    return chosen


class _PairReader:
    """ONNX Runtime CalibrationDataReader over image pairs, centre-cropped to ``size`` (H, W) after the Fuser's
    pre-processing (luminance in [0, 1])."""

    def __init__(self, pairs: Sequence[tuple[Path, Path]], size: tuple[int, int]) -> None:
        self._items = self._frames(pairs, size)

    @staticmethod
    def _frames(pairs: Sequence[tuple[Path, Path]], size: tuple[int, int]) -> Iterator[dict[str, np.ndarray]]:
        from tsjnet_sdk.imaging import prepare_pair, read_image

        height, width = size
        for ir_path, vis_path in pairs:
            ir, vis, _ = prepare_pair(read_image(ir_path), read_image(vis_path))
            if ir.shape[0] < height or ir.shape[1] < width:
                continue
            top, left = (ir.shape[0] - height) // 2, (ir.shape[1] - width) // 2
            crop = (slice(top, top + height), slice(left, left + width))
            yield {
                name: np.ascontiguousarray(img[crop][None, None], dtype=np.float32) for name, img in zip(INPUT_NAMES, (ir, vis))
            }

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)


def quantize_int8(
    source: str | os.PathLike,
    output: str | os.PathLike,
    pairs: Sequence[tuple[Path, Path]],
    size: tuple[int, int] = (224, 224),
) -> Path:
    """Write an int8-QDQ copy of ``source`` (a tsjnet fp32 ONNX) to ``output``, calibrated on ``pairs``."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    source, output = Path(source), Path(output)
    if not pairs:
        raise ExportError("int8 calibration needs at least one training pair")
    tsjnet_onnx_metadata(source)  # refuse a foreign ONNX before the slow calibration
    with tempfile.TemporaryDirectory(prefix="tsjnet-int8-") as tmpdir:
        raw = Path(tmpdir) / "int8.onnx"
        quantize_static(
            str(source),
            str(raw),
            _PairReader(pairs, size),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv"],
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        model = onnx.load(str(raw))
    props = {p.key: p.value for p in model.metadata_props}  # the quantizer keeps the source's
    props["tsjnet.precision"] = "int8"
    props["tsjnet.kept_float32"] = "all but Conv"
    props["tsjnet.int8_calibration"] = f"{len(pairs)} training-pool pairs, centre crops {size[0]}x{size[1]}, MinMax"
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    with atomic_path(output) as tmp:
        onnx.save(model, str(tmp))
    return output
