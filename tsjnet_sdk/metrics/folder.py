"""Folder evaluation: match (IR, visible, fused) files by name, evaluate each triple, average.

Pairs are matched by file stem (``00004N.png`` in all three folders, any image suffix); files
present in only some folders are reported, not evaluated. The dataset mean of each metric is the
arithmetic mean of the per-image values (NaN values skipped, as VIFB's ``nanmean``), never a
metric of pooled data.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tsjnet_sdk.imaging import IMAGE_SUFFIXES
from tsjnet_sdk.metrics.evaluate import evaluate, resolve_metrics
from tsjnet_sdk.metrics.presets import Preset, get_preset
from tsjnet_sdk.pairing import index_images, match_folders

__all__ = ["IMAGE_SUFFIXES", "FolderReport", "evaluate_folders", "list_images", "match_triples", "read_image"]


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image with Pillow as uint8 / uint16, H x W or H x W x 3 (RGB order).

    JPEGs are decoded by Pillow's libjpeg(-turbo), which reproduces VIFB's MATLAB decoding to the
    precision of its published values. Palette/alpha images become RGB, 16-bit grey stays uint16.
    """
    from tsjnet_sdk.imaging import read_image as _read

    return _read(path)


def list_images(folder: str | os.PathLike) -> dict[str, Path]:
    """Image files of a folder by stem (the pairing rule of :mod:`tsjnet_sdk.pairing`).

    Raises:
        ValueError: the folder does not exist, or two files share a stem (``a.png`` and ``a.jpg``).
    """
    return index_images(folder)


def match_triples(
    ir_dir: str | os.PathLike, vis_dir: str | os.PathLike, fused_dir: str | os.PathLike
) -> tuple[list[tuple[str, Path, Path, Path]], dict[str, list[str]]]:
    """Match the three folders by file stem (:func:`tsjnet_sdk.pairing.match_folders`).

    Returns:
        (matched, unmatched): ``matched`` is a sorted list of (stem, ir_path, vis_path, fused_path);
        ``unmatched`` maps 'ir' / 'vis' / 'fused' to the stems found there but not in all three.
    """
    result = match_folders(ir_dir, vis_dir, fused_dir)
    return result.rows, dict(zip(("ir", "vis", "fused"), result.unmatched))


@dataclass
class FolderReport:
    """Per-image metric values, dataset means and the unmatched names of a folder evaluation."""

    preset: str
    metrics: tuple[str, ...]
    rows: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    unmatched: dict[str, list[str]] = field(default_factory=dict)

    @property
    def means(self) -> dict[str, float]:
        """Mean over images of each metric, NaN values skipped (NaN if none is finite)."""
        out = {}
        for m in self.metrics:
            vals = np.array([r[m] for _, r in self.rows], dtype=np.float64)
            vals = vals[~np.isnan(vals)]
            out[m] = float(vals.mean()) if vals.size else math.nan
        return out

    def write_csv(self, path: str | os.PathLike) -> Path:
        """Write ``image,preset,<metrics...>`` rows and a final ``MEAN`` row, atomically (a temporary
        file in the same folder, then one rename)."""
        from tsjnet_sdk.atomic import atomic_path

        path = Path(path)
        with atomic_path(path) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                w.writerow(["image", "preset", *self.metrics])
                for name, vals in self.rows:
                    w.writerow([name, self.preset, *(_fmt(vals[m]) for m in self.metrics)])
                means = self.means
                w.writerow(["MEAN", self.preset, *(_fmt(means[m]) for m in self.metrics)])
        return path


def _fmt(v: float) -> str:
    return f"{v:.10g}"


def evaluate_folders(
    ir_dir: str | os.PathLike,
    vis_dir: str | os.PathLike,
    fused_dir: str | os.PathLike,
    preset: str | Preset = "paper",
    *,
    metrics: str | Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> FolderReport:
    """Evaluate every (IR, visible, fused) triple matched by file stem in three folders.

    Args:
        ir_dir, vis_dir, fused_dir: folders of images (png/jpg/bmp/tif).
        preset: 'paper' (default), 'vifb', 'cdd' or a :class:`~tsjnet_sdk.metrics.Preset`.
        metrics: subset of metric keys; default the preset's set.
        progress: called with each image's name after it has been evaluated.

    Returns:
        :class:`FolderReport` (rows in name order, ``.means``, ``.unmatched``, ``.write_csv``).

    Raises:
        ValueError: a folder is missing, names collide, no triple matches, or an image is unusable
            (the message names the file).
    """
    p = get_preset(preset)
    keys = resolve_metrics(metrics, p)
    matched, unmatched = match_triples(ir_dir, vis_dir, fused_dir)
    report = FolderReport(preset=p.name, metrics=keys, unmatched=unmatched)
    if not matched:
        raise ValueError(
            f"no image name is present in all three folders ({ir_dir}, {vis_dir}, {fused_dir}); "
            "pairs are matched by file name without suffix"
        )
    for stem, ir_p, vis_p, f_p in matched:
        ir, vis, fused = read_image(ir_p), read_image(vis_p), read_image(f_p)
        try:
            vals = evaluate(ir, vis, fused, p, metrics=keys)
        except ValueError as e:
            raise ValueError(f"{stem} ({ir_p.name}, {vis_p.name}, {f_p.name}): {e}") from None
        report.rows.append((stem, dict(vals)))
        if progress is not None:
            progress(stem)
    return report
