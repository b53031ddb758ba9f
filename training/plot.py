"""Loss curves from a run's ``train_log.csv`` as a PNG, drawn with Pillow (matplotlib is not a dependency).

tsjnet plot-log outputs/train/tiny_cpu/train_log.csv training/results/tiny_cpu_loss.png
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

#: The loss columns plotted, in legend order (those present in the log).
PLOTTED = ("loss", "ssim", "diversity", "recon_ir", "recon_vis", "intensity", "gradient", "det_fused", "seg")
COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75), (23, 190, 207)]


def read_curves(csv_path: str | Path, stage: str = "fusion") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{column: (steps, values)} for every numeric loss column of one stage."""
    with open(csv_path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["stage"] == stage]
    skip = {"stage", "step", "epoch", "lr", "task_lr", "sec_per_step"}
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for key in rows[0].keys() if rows else []:
        if key in skip:
            continue
        pts = [(int(r["step"]), float(r[key])) for r in rows if r[key] not in ("", None)]
        if pts:
            s, v = zip(*pts)
            out[key] = (np.array(s), np.array(v))
    return out


def plot_curves(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    png_path: str | Path,
    title: str = "",
    keys: list[str] | None = None,
    size: tuple[int, int] = (900, 520),
) -> Path:
    """Line plot (linear y from 0) of the chosen curves with axes, ticks and a legend; written atomically."""
    from PIL import Image, ImageDraw, ImageFont

    from tsjnet_sdk.imaging import write_image

    keys = [k for k in (keys or list(curves)) if k in curves]
    w, h = size
    left, right, top, bottom = 70, 170, 40, 50
    im = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(im)
    font = ImageFont.load_default()
    x_max = max(float(curves[k][0].max()) for k in keys)
    y_max = max(float(np.nanmax(curves[k][1])) for k in keys) * 1.05
    y_max = _nice(y_max)

    def px(x: float, y: float) -> tuple[float, float]:
        return (left + (w - left - right) * x / x_max, h - bottom - (h - top - bottom) * y / y_max)

    d.rectangle([left, top, w - right, h - bottom], outline="black")
    for i in range(6):
        yv = y_max * i / 5
        _, yp = px(0, yv)
        d.line([left - 4, yp, left, yp], fill="black")
        d.line([left, yp, w - right, yp], fill=(225, 225, 225))
        d.text((8, yp - 6), f"{yv:.3g}", fill="black", font=font)
    for i in range(6):
        xv = x_max * i / 5
        xp, _ = px(xv, 0)
        d.line([xp, h - bottom, xp, h - bottom + 4], fill="black")
        d.text((xp - 10, h - bottom + 8), f"{xv:.0f}", fill="black", font=font)
    d.text(((w - right + left) / 2 - 15, h - 22), "step", fill="black", font=font)
    d.text((left, 12), title, fill="black", font=font)
    for i, k in enumerate(keys):
        colour = COLOURS[i % len(COLOURS)]
        xs, ys = curves[k]
        pts = [px(float(x), float(y)) for x, y in zip(xs, ys) if math.isfinite(float(y))]
        if len(pts) > 1:
            d.line(pts, fill=colour, width=2)
        ly = top + 10 + 18 * i
        d.line([w - right + 12, ly + 6, w - right + 36, ly + 6], fill=colour, width=3)
        d.text((w - right + 42, ly), k, fill="black", font=font)
    write_image(Path(png_path), np.asarray(im))
    return Path(png_path)


def _nice(v: float) -> float:
    if v <= 0 or not math.isfinite(v):
        return 1.0
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * e >= v:
            return m * e
    return 10 * e


if __name__ == "__main__":
    # `python -m tsjnet_sdk.training.plot`: the same command as `tsjnet plot-log`. The CLI is imported only here:
    # the command-line layer imports this module, never the reverse (tests/test_import_graph.py).
    from tsjnet_sdk.cli_support import run_command
    from tsjnet_sdk.training.cli import plot_command

    raise SystemExit(run_command(plot_command, None, "python -m tsjnet_sdk.training.plot"))
