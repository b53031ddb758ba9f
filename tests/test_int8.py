"""int8 (QDQ convolutions) with ONNX Runtime's quantizer: calibration from a training-pool-shaped folder,
the tsjnet metadata kept with precision int8, and a file the Fuser runs close to its fp32 source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tsjnet_sdk.imaging import write_image
from tsjnet_sdk.samples import night_scene


def _pool(root: Path, sets: dict[str, int]) -> Path:
    for name, count in sets.items():
        for i in range(count):
            ir, vis = night_scene(72, 96, seed=100 * len(name) + i)
            write_image(root / name / "ir" / f"{i:02d}.png", ir)
            write_image(root / name / "vi" / f"{i:02d}.png", vis)
    return root


def test_calibration_pairs_take_every_set_in_turn(tmp_path: Path) -> None:
    from tsjnet_sdk.export.common import ExportError
    from tsjnet_sdk.export.int8 import calibration_pairs

    pool = _pool(tmp_path / "train", {"a": 3, "bb": 1, "ccc": 2})
    pairs = calibration_pairs(pool, limit=4)
    assert [p[0].parent.parent.name for p in pairs] == ["a", "bb", "ccc", "a"]
    assert all(ir.name == vis.name and vis.parent.name == "vi" for ir, vis in pairs)
    with pytest.raises(ExportError, match="no <set>/ir"):
        calibration_pairs(tmp_path / "train" / "a" / "ir")


@pytest.mark.slow
def test_int8_file_keeps_metadata_and_fuses_close_to_fp32(tiny_onnx: Path, tmp_path: Path) -> None:
    import onnx

    from tsjnet_sdk import Fuser
    from tsjnet_sdk.export.int8 import calibration_pairs, quantize_int8
    from tsjnet_sdk.runtime import OrtOptions
    from tsjnet_sdk.runtime.artifacts import read_onnx_metadata

    pool = _pool(tmp_path / "train", {"a": 2, "b": 2})
    out = quantize_int8(tiny_onnx, tmp_path / "tiny_int8.onnx", calibration_pairs(pool), size=(64, 64))
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    meta = read_onnx_metadata(out)
    assert (
        meta["precision"] == "int8"
        and meta["config_name"] == "tsjnet-tiny"
        and "4 training-pool pairs" in meta["int8_calibration"]
    )
    ir, vis = night_scene(64, 96, seed=7)
    options = OrtOptions(intra_op_threads=1)
    ref = Fuser(tiny_onnx, options=options, gray=True)(ir, vis).astype(np.float64)
    got = Fuser(out, options=options, gray=True)(ir, vis).astype(np.float64)
    psnr = 10 * np.log10(255.0**2 / max(np.mean((ref - got) ** 2), 1e-12))
    assert psnr > 25, psnr  # quantized, so not identical, but the same picture
