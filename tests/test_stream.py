"""Fuser.stream's threaded pipeline: order, batching, back-pressure, errors and shutdown (no OpenCV needed)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tsjnet_sdk import Fuser
from tsjnet_sdk.runtime.backends.base import Backend
from tsjnet_sdk.runtime.stream import Pipeline


class MeanBackend(Backend):
    """(ir + vis) / 2, recording the batch size of every call; optionally slow or failing on a call."""

    name = "mean"
    thread_safe = True

    def __init__(self, delay_s: float = 0.0, fail_on_call: int | None = None) -> None:
        super().__init__(None, "cpu")
        self.delay_s, self.fail_on_call = delay_s, fail_on_call
        self.batches: list[int] = []

    def run(self, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
        self.batches.append(ir.shape[0])
        if self.fail_on_call is not None and len(self.batches) == self.fail_on_call:
            raise RuntimeError("backend failed on purpose")
        time.sleep(self.delay_s)
        return (ir + vis) / 2


def pairs(count: int, sizes=((40, 48), (48, 64))):
    """Distinct pairs (frame i has IR value i), alternating sizes in runs of 3."""
    for i in range(count):
        h, w = sizes[(i // 3) % len(sizes)]
        ir = np.full((h, w), i % 256, np.uint8)
        vis = np.random.default_rng(i).integers(0, 256, (h, w, 3), dtype=np.uint8)
        yield ir, vis


def stream_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("tsjnet-stream")]


@pytest.mark.parametrize("batch", [1, 4])
def test_stream_keeps_order_and_equals_the_plain_loop(batch):
    fuser = Fuser(MeanBackend(delay_s=0.002))
    expected = [fuser(ir, vis) for ir, vis in pairs(30)]
    got = list(fuser.stream(pairs(30), batch=batch))
    assert len(got) == 30
    for e, g in zip(expected, got):
        assert np.array_equal(e, g)
    assert not stream_threads()


def test_waiting_frames_of_one_size_share_a_batch():
    backend = MeanBackend(delay_s=0.02)
    fuser = Fuser(backend)
    out = list(fuser.stream(pairs(24, sizes=((40, 48),)), batch=4))
    assert len(out) == 24 and sum(backend.batches) == 24
    assert max(backend.batches) == 4  # frames queue up behind the slow network and run together


def test_mixed_sizes_never_share_a_batch():
    backend = MeanBackend(delay_s=0.01)
    out = list(Fuser(backend).stream(pairs(12), batch=8))
    assert [o.shape[:2] for o in out] == [ir.shape for ir, _ in pairs(12)]
    assert max(backend.batches) <= 3  # runs of 3 frames per size


def test_unthreaded_stream_matches():
    fuser = Fuser(MeanBackend())
    a = list(fuser.stream(pairs(5), threaded=False))
    b = list(fuser.stream(pairs(5)))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_a_bad_frame_raises_after_the_frames_before_it():
    from tsjnet_sdk.imaging import ImageError

    def source():
        yield from pairs(4)
        yield np.zeros((40, 48), np.uint8), np.zeros((41, 48, 3), np.uint8)  # mismatched sizes
        yield from pairs(4)

    got = []
    with pytest.raises(ImageError, match="registered to the same size"):
        for out in Fuser(MeanBackend()).stream(source()):
            got.append(out)
    assert len(got) == 4
    time.sleep(0.05)
    assert not stream_threads()


def test_backend_and_source_errors_propagate():
    with pytest.raises(RuntimeError, match="on purpose"):
        list(Fuser(MeanBackend(fail_on_call=3)).stream(pairs(10)))

    def broken_source():
        yield from pairs(2)
        raise OSError("camera unplugged")

    with pytest.raises(OSError, match="camera unplugged"):
        list(Fuser(MeanBackend()).stream(broken_source()))
    assert not stream_threads()


def test_break_and_ctrl_c_stop_every_thread_and_close_the_source():
    closed = []

    def source():
        try:
            yield from pairs(10_000)
        finally:
            closed.append(True)

    fuser = Fuser(MeanBackend())
    for i, _ in enumerate(fuser.stream(source())):
        if i == 3:
            break
    time.sleep(0.05)  # the generator is closed as the loop ends (CPython refcounting)
    assert not stream_threads() and closed == [True]

    with pytest.raises(KeyboardInterrupt):
        for i, _ in enumerate(fuser.stream(source())):
            if i == 2:
                raise KeyboardInterrupt  # Ctrl-C in the caller's loop body
    time.sleep(0.05)
    assert not stream_threads() and closed == [True, True]


def test_back_pressure_bounds_what_is_read_ahead():
    pulled = []

    def source():
        for p in pairs(1000):
            pulled.append(1)
            yield p

    queue_size = 2
    stream = Fuser(MeanBackend()).stream(source(), queue_size=queue_size)
    next(stream)
    time.sleep(0.2)  # a consumer that stalls: the pipeline fills its queues and waits
    # 3 queues + one item in hand per stage + the one yielded
    assert len(pulled) <= 3 * queue_size + 4
    stream.close()
    assert not stream_threads()


def test_pipeline_rejects_bad_sizes():
    with pytest.raises(ValueError, match=">= 1"):
        Pipeline(lambda x: x, lambda g: g, lambda p, r: r, key=lambda p: 0, batch=0)
