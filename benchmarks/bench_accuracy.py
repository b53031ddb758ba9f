"""``tsjnet bench`` accuracy: a row's outputs against the reference row's, and its fusion metrics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

# -- accuracy ---------------------------------------------------------------------------------------


def accuracy_vs_reference(
    outputs_y: Sequence[np.ndarray],
    reference_y: Sequence[np.ndarray],
    outputs: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
) -> dict[str, Any]:
    """Errors of a row's fused luminance against the reference's ([0, 1] floats), over all pairs, and
    of its final uint8 images (in grey levels)."""
    diff = np.concatenate(
        [(np.asarray(o, np.float64) - np.asarray(r, np.float64)).ravel() for o, r in zip(outputs_y, reference_y)]
    )
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


def fusion_metrics(
    frames: Sequence[tuple[np.ndarray, np.ndarray]], outputs: Sequence[np.ndarray], preset: str, metrics: Sequence[str] | None
) -> dict[str, float]:
    """The fusion metrics of a row's fused images, averaged over the pairs (NaN-aware)."""
    from tsjnet_sdk.metrics import evaluate

    reports = [
        evaluate(ir, vis, fused, preset, metrics=list(metrics) if metrics else None) for (ir, vis), fused in zip(frames, outputs)
    ]
    return {
        k: float(np.nanmean([r[k] for r in reports])) if any(not math.isnan(r[k]) for r in reports) else math.nan
        for k in reports[0]
    }
