"""Soak: stream many frames through ``Fuser.stream`` and record resident memory (RSS) over time.

    python -m tsjnet_sdk.benchmarks.soak --frames 10000 --size 64 --backend onnxruntime

Without ``--model`` it runs a randomly initialised ``--config`` (default tsjnet-tiny, seed 0; memory, not
image quality, is measured), exported to a static ONNX for the onnxruntime backend. Writes
``benchmarks/results/soak_<backend>_<config>_<frames>.json`` and a ``.png`` chart (atomically).

Growth is measured after a warm-up (allocators and caches settle in the first frames): the RSS of the
last 10 % of the samples minus that of the first 10 % after warm-up (medians), and the slope of a
least-squares line through all post-warm-up samples (MB per 1000 frames).
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from tsjnet_sdk.atomic import atomic_path
from tsjnet_sdk.results import results_dir, write_json


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def frame_pairs(count: int, size: int, pool: int = 16, seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``count`` (IR uint8 H x W, visible uint8 H x W x 3) pairs cycling through ``pool`` random ones,
    each a fresh copy (as a camera delivers new buffers)."""
    rng = np.random.default_rng(seed)
    pairs = [
        (rng.integers(0, 256, (size, size), dtype=np.uint8), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        for _ in range(pool)
    ]
    for i in range(count):
        ir, vis = pairs[i % pool]
        yield ir.copy(), vis.copy()


def measure(fuser: Any, frames: int, size: int, every: int = 100, warmup: int = 200) -> dict[str, Any]:
    """Stream ``frames`` pairs through ``fuser.stream``; RSS every ``every`` frames and the growth summary."""
    samples: list[tuple[int, float, float]] = [(0, 0.0, rss_mb())]
    start = time.perf_counter()
    checksum = 0.0
    for i, fused in enumerate(fuser.stream(frame_pairs(frames, size)), 1):
        checksum += float(fused[0, 0, 0]) if fused.ndim == 3 else float(fused[0, 0])
        if i % every == 0 or i == frames:
            samples.append((i, time.perf_counter() - start, rss_mb()))
    return {
        "frames": frames,
        "size": size,
        "every": every,
        "warmup": warmup,
        "samples": samples,
        "seconds": time.perf_counter() - start,
        **growth(samples, warmup),
        "checksum": checksum,
    }


def growth(samples: list[tuple[int, float, float]], warmup: int) -> dict[str, float]:
    """RSS after warm-up, growth first->last 10 % (medians, MB) and the fitted slope (MB / 1000 frames)."""
    after = [(n, r) for n, _, r in samples if n >= warmup] or [(n, r) for n, _, r in samples]
    k = max(1, len(after) // 10)
    first = float(np.median([r for _, r in after[:k]]))
    last = float(np.median([r for _, r in after[-k:]]))
    n = np.array([a for a, _ in after], dtype=np.float64)
    r = np.array([b for _, b in after], dtype=np.float64)
    slope = float(np.polyfit(n, r, 1)[0] * 1000) if len(after) >= 2 and np.ptp(n) > 0 else 0.0
    return {
        "rss_start_mb": samples[0][2],
        "rss_after_warmup_mb": first,
        "rss_end_mb": last,
        "growth_mb": last - first,
        "slope_mb_per_1000_frames": slope,
        "rss_peak_mb": max(s[2] for s in samples),
    }


def draw_chart(result: dict[str, Any], path: Path) -> Path:
    """RSS (MB) against frames, with the warm-up marked; written atomically as PNG."""
    from PIL import Image, ImageDraw

    from tsjnet_sdk.imaging import default_font

    font, bold = default_font(14), default_font(16)
    width, height, left, right, top, bottom = 900, 420, 80, 20, 70, 50
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    d.text((12, 10), f"tsjnet soak: {result['label']}", fill="black", font=bold)
    d.text(
        (12, 34),
        f"RSS over {result['frames']} frames of {result['size']}x{result['size']}; growth after warm-up "
        f"{result['growth_mb']:+.1f} MB, slope {result['slope_mb_per_1000_frames']:+.2f} MB/1000 frames",
        fill="#444",
        font=font,
    )
    xs = [s[0] for s in result["samples"]]
    ys = [s[2] for s in result["samples"]]
    lo, hi = min(ys), max(ys)
    pad = max(5.0, (hi - lo) * 0.2)
    lo, hi = lo - pad, hi + pad
    x_max = max(xs) or 1

    def px(n: float, r: float) -> tuple[float, float]:
        return (left + (width - left - right) * n / x_max, top + (height - top - bottom) * (1 - (r - lo) / (hi - lo)))

    d.rectangle([left, top, width - right, height - bottom], outline="#888")
    for j in range(5):
        value = lo + (hi - lo) * j / 4
        y = px(0, value)[1]
        d.line([left, y, width - right, y], fill="#eee")
        d.text((8, y - 8), f"{value:.0f} MB", fill="#444", font=font)
    for j in range(6):
        n = x_max * j / 5
        x = px(n, lo)[0]
        d.text((x - 15, height - bottom + 8), f"{n:.0f}", fill="#444", font=font)
    wx = px(min(result["warmup"], x_max), lo)[0]
    d.line([wx, top, wx, height - bottom], fill="#e07b39")
    d.text((wx + 4, top + 4), "warm-up", fill="#e07b39", font=font)
    d.line([px(n, r) for n, r in zip(xs, ys)], fill="#3b6fb6", width=2)
    d.text((width // 2 - 30, height - 22), "frames", fill="#444", font=font)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return path


def open_soak_fuser(model: str | None, config: str, backend: str, size: int, workdir: Path) -> tuple[Any, str]:
    """A Fuser for ``model``, or for a random ``config`` (seed 0) exported as needed for ``backend``."""
    from tsjnet_sdk import Fuser

    if model is None:
        import torch

        from tsjnet_sdk.models import create_model, save_checkpoint

        torch.manual_seed(0)
        model = str(save_checkpoint(create_model(config).eval(), workdir / f"{config}.safetensors"))
        if backend == "onnxruntime":
            from tsjnet_sdk.export import export_onnx

            model = str(export_onnx(model, workdir / f"{config}.onnx", static=(1, size, size), parity=False).path)
    return Fuser(model, backend=backend, device="cpu"), model


def run_soak(
    frames: int = 10_000,
    size: int = 64,
    config: str = "tsjnet-tiny",
    model: str | None = None,
    backend: str = "onnxruntime",
    every: int = 100,
    warmup: int = 200,
    out: Path | None = None,
) -> Path:
    """Stream ``frames`` frames of ``size`` x ``size`` through one Fuser, recording RSS every ``every``
    frames after ``warmup``; writes the JSON (and a PNG chart beside it) atomically and returns its path."""
    with tempfile.TemporaryDirectory() as workdir:
        fuser, model_path = open_soak_fuser(model, config, backend, size, Path(workdir))
        label = f"{backend}, {Path(model_path).name if model else config + ' (random weights)'}"
        result = measure(fuser, frames, size, every, warmup)
    result.update(
        {
            "label": label,
            "backend": backend,
            "model": model or f"{config} (random weights, seed 0)",
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "nice": os.nice(0),
        }
    )
    stem = config if not model else Path(model).stem
    out = out or results_dir("soak", "benchmarks/results") / f"soak_{backend}_{stem}_{frames}.json"
    write_json(out, result, indent=1)
    draw_chart(result, out.with_suffix(".png"))
    print(
        f"{frames} frames in {result['seconds']:.0f} s: RSS {result['rss_after_warmup_mb']:.1f} -> "
        f"{result['rss_end_mb']:.1f} MB (growth {result['growth_mb']:+.2f} MB, slope "
        f"{result['slope_mb_per_1000_frames']:+.3f} MB/1000 frames); wrote {out} and {out.with_suffix('.png').name}"
    )
    return out


if __name__ == "__main__":
    # `python -m tsjnet_sdk.benchmarks.soak`: the same command as `tsjnet soak`. The CLI is imported only here:
    # the command-line layer imports this module, never the reverse (tests/test_import_graph.py).
    from tsjnet_sdk.benchmarks.cli import soak_command
    from tsjnet_sdk.cli_support import run_command

    raise SystemExit(run_command(soak_command, None, "python -m tsjnet_sdk.benchmarks.soak"))
