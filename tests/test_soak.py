"""Short soak (the 10,000-frame run is benchmarks/soak.py, results in benchmarks/results/): a few hundred
small frames through Fuser.stream must not grow resident memory beyond GROWTH_BOUND_MB after warm-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tsjnet_sdk.benchmarks.soak import growth, rss_mb

REPO = Path(__file__).resolve().parents[1]
FRAMES, WARMUP, SIZE = 300, 100, 32
# Leaking one frame's working set (~90 bytes a pixel at 32 x 32 = 92 KB) per frame adds ~18 MB over the
# 200 post-warm-up frames (measured in a fresh process); 8 MB leaves room for allocator noise.
GROWTH_BOUND_MB = 8.0


_CHILD = """
import json, sys
from tsjnet_sdk import Fuser
from tsjnet_sdk.benchmarks.soak import measure
fuser = Fuser(sys.argv[1], backend="onnxruntime", device="cpu")
print(json.dumps(measure(fuser, int(sys.argv[2]), int(sys.argv[3]), every=20, warmup=int(sys.argv[4]))))
"""


@pytest.mark.slow
def test_short_soak_memory_stays_flat(tiny_onnx):
    # In a fresh process: inside pytest, heap freed by earlier tests would absorb (hide) a leak.
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tiny_onnx), str(FRAMES), str(SIZE), str(WARMUP)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(result["samples"]) == FRAMES // 20 + 1
    assert result["growth_mb"] < GROWTH_BOUND_MB, result["samples"]


_LEAKY_CHILD = """
import json
import numpy as np
from tsjnet_sdk.benchmarks.soak import measure


class LeakyFuser:
    # Keeps every output (a classic leak: a cache without a bound), 1 MB a frame.
    def __init__(self):
        self.kept = []

    def stream(self, pairs):
        for _ir, vis in pairs:
            self.kept.append(np.repeat(vis[None], 350, axis=0))  # 1 MB per frame at 32 x 32 x 3
            yield vis


print(json.dumps(measure(LeakyFuser(), %d, %d, every=20, warmup=%d)))
"""


def test_the_soak_measure_catches_a_leak():
    # A fresh process, like the soak itself: in a long pytest run the heap freed by earlier tests
    # absorbs the leak's pages (measured: 0.3 MB of growth in the full suite).
    proc = subprocess.run(
        [sys.executable, "-c", _LEAKY_CHILD % (FRAMES, SIZE, WARMUP)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["growth_mb"] > GROWTH_BOUND_MB
    assert result["slope_mb_per_1000_frames"] > 500


def test_growth_summary():
    samples = [(n, 0.0, 100.0 + (0.01 * n if n >= 100 else 0)) for n in range(0, 1001, 100)]
    g = growth(samples, warmup=100)
    assert g["slope_mb_per_1000_frames"] == pytest.approx(10.0)
    assert g["rss_start_mb"] == 100.0 and g["growth_mb"] == pytest.approx(9.0)
    assert rss_mb() > 1.0
