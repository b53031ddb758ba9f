"""Concurrency contract: one Fuser called from several threads gives the results of the same calls
made one by one; backends that are not thread-safe are serialized by the Fuser's lock."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tsjnet_sdk import Fuser

THREADS, PER_THREAD = 4, 50


def _frames(count, seed=0):
    rng = np.random.default_rng(seed)
    return [
        (rng.integers(0, 256, (32, 32), dtype=np.uint8), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(count)
    ]


def _threaded_equals_sequential(fuser):
    frames = _frames(THREADS * PER_THREAD)
    sequential = [fuser(ir, vis) for ir, vis in frames]
    start = threading.Barrier(THREADS)

    def worker(t):
        start.wait()  # all threads call at once
        return [(i, fuser(*frames[i])) for i in range(t, len(frames), THREADS)]

    with ThreadPoolExecutor(THREADS) as pool:
        results = [r for chunk in pool.map(worker, range(THREADS)) for r in chunk]
    assert len(results) == len(frames)
    for i, out in results:
        assert np.array_equal(out, sequential[i]), f"frame {i} differs when fused from {THREADS} threads"


@pytest.mark.slow
def test_torch_backend_from_four_threads(tiny_checkpoint):
    fuser = Fuser(tiny_checkpoint, backend="torch", device="cpu")
    assert fuser._runner.thread_safe and fuser._lock is None  # runs concurrently, no lock
    _threaded_equals_sequential(fuser)


@pytest.mark.slow
def test_onnxruntime_backend_from_four_threads(tiny_onnx):
    fuser = Fuser(tiny_onnx, backend="onnxruntime", device="cpu")
    assert fuser._runner.thread_safe and fuser._lock is None
    _threaded_equals_sequential(fuser)


class _NotThreadSafe:
    """A backend stub that, like a TensorRT execution context, breaks when entered twice at once."""

    name, device, path, static_shape = "stub", "cpu", None, None
    thread_safe = False

    def __init__(self):
        self.inside = 0
        self.overlaps = 0

    def run(self, ir, vis):
        self.inside += 1
        if self.inside > 1:
            self.overlaps += 1
        time.sleep(0.002)  # long enough for other threads to try to enter
        out = (ir + vis) / 2
        self.inside -= 1
        return out

    def describe(self):
        return {"backend": "stub"}

    def close(self):
        pass


@pytest.mark.parametrize("safe", [False, True])
def test_backends_that_are_not_thread_safe_are_serialized(monkeypatch, safe):
    import tsjnet_sdk.runtime.fuser as fuser_mod

    backend = _NotThreadSafe()
    backend.thread_safe = safe
    monkeypatch.setattr(fuser_mod, "open_backend", lambda *a, **k: backend)
    fuser = Fuser("unused")
    assert (fuser._lock is None) == safe
    frames = _frames(40)
    with ThreadPoolExecutor(THREADS) as pool:
        outs = list(pool.map(lambda f: fuser(*f), frames))
    assert all(o.shape == (32, 32, 3) for o in outs)
    if safe:
        assert backend.overlaps > 0  # the stub does detect concurrent calls
    else:
        assert backend.overlaps == 0


def test_tensorrt_backend_is_declared_not_thread_safe():
    """TensorRT execution contexts must not run concurrently: the backend must not claim otherwise."""
    from tsjnet_sdk.runtime.backends.tensorrt_backend import TensorRTBackend

    assert TensorRTBackend.thread_safe is False
