"""Time the fusion-quality metrics on one 640 x 480 triple, per preset and per metric.

Real MSRS pair (../shared/data/msrs/test, IR grey + visible RGB) with a synthetic fused image
(the average of the visible image and the IR replicated to RGB), so that the ``vifb`` preset also
exercises its per-RGB-channel path. Not a test; run it by hand:

    tsjnet bench-metrics [--repeat 3] [--pair 00004N]

Prints, for each preset, the best-of-N wall time of every metric alone (each in a fresh
``evaluate`` call, so shared intermediates are not reused) and of the whole preset set in one
``evaluate`` call (where they are).
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from tsjnet_sdk.results import data_root


def _load(pair: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from tsjnet_sdk.metrics.folder import read_image

    root = data_root() / "msrs" / "test"
    ir_path, vis_path = root / "ir" / f"{pair}.png", root / "vi" / f"{pair}.png"
    if not ir_path.is_file():
        raise SystemExit(f"needs the MSRS test pair {ir_path} (../shared/data beside the checkout)")
    ir, vis = read_image(ir_path), read_image(vis_path)
    ir3 = np.repeat(ir[..., None], 3, axis=2) if ir.ndim == 2 else ir
    vis3 = np.repeat(vis[..., None], 3, axis=2) if vis.ndim == 2 else vis
    fused = np.round((ir3.astype(np.float64) + vis3) / 2).astype(np.uint8)
    return ir, vis, fused


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def time_metrics(repeat: int = 3, pair: str = "00004N", presets: list[str] | None = None) -> None:
    """Print the timings (see the module docstring)."""
    from tsjnet_sdk.metrics import PRESETS, evaluate

    ir, vis, fused = _load(pair)
    print(f"MSRS {pair}: ir {ir.shape} {ir.dtype}, vis {vis.shape}, fused {fused.shape} (average)")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}, best of {repeat}")
    evaluate(ir, vis, fused, "paper", metrics=["SSIM"])  # warm-up (imports, FFT plans)
    for name in presets or ["paper", "vifb", "cdd"]:
        preset = PRESETS[name]
        print(f"\npreset {name!r} ({len(preset.metrics)} metrics; colour: {preset.colour})")
        total_alone = 0.0
        for key in preset.metrics:
            dt = _best(lambda k=key: evaluate(ir, vis, fused, preset, metrics=[k]), repeat)
            total_alone += dt
            print(f"  {key:8s} {dt * 1000:8.1f} ms")
        dt = _best(lambda: evaluate(ir, vis, fused, preset), repeat)
        print(f"  {'sum':8s} {total_alone * 1000:8.1f} ms (each metric alone)")
        print(f"  {'TOTAL':8s} {dt * 1000:8.1f} ms (whole set in one evaluate call)")


if __name__ == "__main__":
    # `python -m tsjnet_sdk.benchmarks.bench_metrics`: the same command as `tsjnet bench-metrics`. The CLI is imported only here:
    # the command-line layer imports this module, never the reverse (tests/test_import_graph.py).
    from tsjnet_sdk.benchmarks.cli import metrics_speed_command
    from tsjnet_sdk.cli_support import run_command

    raise SystemExit(run_command(metrics_speed_command, None, "python -m tsjnet_sdk.benchmarks.bench_metrics"))
