"""Cross-check of the ``vifb`` preset against VIFB's published per-image values.

The VIFB benchmark (xingchenzhang/VIFB) publishes 13 metrics, 5 significant digits, for every
(method, image) pair it ships. :func:`compare_vifb` recomputes them from the images with the
``vifb`` preset; the test suite and ``docs/metrics.md`` report the relative errors.

Expected layout of ``root`` (see ``../shared/data/metrics_reference/README.md``)::

    root/published_metrics.csv      method,image,<13 VIFB metric columns>
    root/ir/<image>.jpg  root/vi/<image>.jpg  root/fused/<image>_<method>.jpg
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

__all__ = ["VIFB_METRICS", "FUSED_ONLY", "VifbRow", "compare_vifb", "read_published"]

#: VIFB column -> metric key of this module
VIFB_METRICS: Mapping[str, str] = MappingProxyType(
    {
        "Cross_entropy": "CE",
        "Entropy": "EN",
        "Mutinf": "MI",
        "Psnr": "PSNR",
        "Avg_gradient": "AG",
        "Edge_intensity": "EI",
        "Qabf": "Qabf",
        "Variance": "SD",
        "Spatial_frequency": "SF",
        "Rmse": "RMSE",
        "Ssim": "SSIM",
        "Qcb": "Qcb",
        "Qcv": "Qcv",
    }
)

#: VIFB columns that depend on the fused image alone: a disagreement there means the fused file
#: differs from the one VIFB scored (it cannot come from the source images or a fusion formula).
FUSED_ONLY = ("Entropy", "Variance", "Avg_gradient", "Spatial_frequency", "Edge_intensity")


@dataclass(frozen=True)
class VifbRow:
    """One (method, image) row: VIFB's published values and ours, keyed by VIFB column name."""

    method: str
    image: str
    published: dict[str, float]
    computed: dict[str, float]

    def rel_error(self, column: str) -> float:
        pub = self.published[column]
        return abs(self.computed[column] - pub) / abs(pub)


def read_published(root: str | os.PathLike) -> list[tuple[str, str, dict[str, float]]]:
    """(method, image, {column: value}) for every row of ``published_metrics.csv``."""
    with open(Path(root) / "published_metrics.csv", newline="", encoding="utf-8") as fh:
        return [(r["method"], r["image"], {c: float(r[c]) for c in VIFB_METRICS}) for r in csv.DictReader(fh)]


def _scene(args: tuple[str, str, Sequence[str]]) -> list[tuple[str, dict[str, float]]]:
    root, image, methods = args
    from tsjnet_sdk.metrics.evaluate import evaluate_many
    from tsjnet_sdk.metrics.folder import read_image

    base = Path(root)
    ir = read_image(base / "ir" / f"{image}.jpg")
    vi = read_image(base / "vi" / f"{image}.jpg")
    fused = [read_image(base / "fused" / f"{image}_{m}.jpg") for m in methods]
    # VIFB's metric functions are called as metric(VI, IR, F); every metric here is symmetric in
    # the sources, and evaluate's argument order is (ir, vis, fused)
    reports = evaluate_many(ir, vi, fused, "vifb", metrics=list(VIFB_METRICS.values()))
    return [(m, {c: rep[k] for c, k in VIFB_METRICS.items()}) for m, rep in zip(methods, reports)]


def compare_vifb(root: str | os.PathLike, *, workers: int = 1) -> tuple[list[VifbRow], list[tuple[str, str]]]:
    """Recompute every published row whose fused image is present.

    Args:
        root: the ``metrics_reference/vifb`` folder.
        workers: processes to use (scenes are distributed; 1 = in this process).

    Returns:
        (rows, missing): the compared rows, and the (method, image) rows whose fused image is not
        in ``root/fused`` (VIFB's MST_SR results are not shipped with the project's data).
    """
    root = Path(root)
    published = read_published(root)
    by_image: dict[str, list[str]] = {}
    missing: list[tuple[str, str]] = []
    for method, image, _ in published:
        if (root / "fused" / f"{image}_{method}.jpg").is_file():
            by_image.setdefault(image, []).append(method)
        else:
            missing.append((method, image))
    jobs = [(str(root), image, methods) for image, methods in sorted(by_image.items())]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_scene, jobs))
    else:
        results = [_scene(j) for j in jobs]
    computed = {(m, job[1]): vals for job, res in zip(jobs, results) for m, vals in res}
    rows = [
        VifbRow(method, image, pub, computed[(method, image)]) for method, image, pub in published if (method, image) in computed
    ]
    return rows, missing
