"""Short soak (the 10,000-frame run is benchmarks/soak.py, results in benchmarks/results/): a few hundred
small frames through Fuser.stream must not grow resident memory beyond GROWTH_BOUND_MB after warm-up."""

from __future__ import annotations

import numpy as np
import pytest

from tsjnet_sdk import Fuser
from tsjnet_sdk.benchmarks.soak import growth, measure, rss_mb

FRAMES, WARMUP, SIZE = 300, 100, 32
# Leaking one frame's working set (~90 bytes a pixel at 32 x 32 = 92 KB) per frame would add ~18 MB
# over the 200 post-warm-up frames; 8 MB leaves room for allocator noise and still catches that.
GROWTH_BOUND_MB = 8.0


@pytest.mark.slow
def test_short_soak_memory_stays_flat(tiny_onnx):
    fuser = Fuser(tiny_onnx, backend="onnxruntime", device="cpu")
    result = measure(fuser, FRAMES, SIZE, every=20, warmup=WARMUP)
    assert len(result["samples"]) == FRAMES // 20 + 1
    assert result["growth_mb"] < GROWTH_BOUND_MB, result["samples"]


class _LeakyFuser:
    """Keeps every output (a classic leak: a cache without a bound)."""

    def __init__(self):
        self.kept = []

    def stream(self, pairs):
        for ir, vis in pairs:
            out = np.repeat(vis[None], 30, axis=0)  # 92 KB per frame at 32 x 32 x 3
            self.kept.append(out)
            yield vis


def test_the_soak_measure_catches_a_leak():
    result = measure(_LeakyFuser(), FRAMES, SIZE, every=20, warmup=WARMUP)
    assert result["growth_mb"] > GROWTH_BOUND_MB
    assert result["slope_mb_per_1000_frames"] > 50


def test_growth_summary():
    samples = [(n, 0.0, 100.0 + (0.01 * n if n >= 100 else 0)) for n in range(0, 1001, 100)]
    g = growth(samples, warmup=100)
    assert g["slope_mb_per_1000_frames"] == pytest.approx(10.0)
    assert g["rss_start_mb"] == 100.0 and g["growth_mb"] == pytest.approx(9.0)
    assert rss_mb() > 1.0
