"""A three-stage threaded pipeline for ``Fuser.stream``: while the network runs on frame n, frame n+1
is decoded and prepared and frame n-1 is composed (colour) and handed to the caller (who encodes it).

    source --> [prepare] --q--> [infer, batched] --q--> [finish] --q--> caller

* Order: one thread per stage and FIFO queues, so results come out in input order, none lost.
* Back-pressure: every queue holds at most ``queue_size`` items; a slow consumer stalls the source
  (memory stays flat whatever the stream's length).
* Errors: an exception in any stage travels down the queues in its place and is raised to the caller
  after the results before it; the pipeline then stops.
* Shutdown: when the caller stops (break, an exception, Ctrl-C, or the generator is closed) every stage
  thread is told to stop and joined; the source iterator is closed by the thread that reads it.
* Batching: the infer stage takes up to ``batch`` prepared frames of one size that are already waiting
  (it never waits for a batch to fill, so latency does not grow).

The stages release the GIL in their heavy parts (OpenCV decode, numpy, ONNX Runtime / torch / TensorRT),
so the threads overlap on a multi-core CPU or CPU + GPU.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

_END = object()
_POLL_S = 0.05  # how often blocked stages look at the stop flag


class _Failed:
    """An exception in a stage, carried down the pipeline in the place of the item it concerns."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Pipeline:
    """``prepare(item) -> p``; ``infer([p, ...]) -> [out, ...]`` (same length, one batch); ``finish(p, out) -> result``;
    ``key(p)``: items with equal keys may share a batch."""

    def __init__(
        self,
        prepare: Callable[[Any], Any],
        infer: Callable[[list[Any]], list[Any]],
        finish: Callable[[Any, Any], Any],
        key: Callable[[Any], Any],
        batch: int = 1,
        queue_size: int = 4,
    ) -> None:
        if batch < 1 or queue_size < 1:
            raise ValueError(f"batch and queue_size must be >= 1, got {batch} and {queue_size}")
        self.prepare, self.infer, self.finish, self.key = prepare, infer, finish, key
        self.batch, self.queue_size = batch, queue_size
        self._stop = threading.Event()
        self.threads: list[threading.Thread] = []

    # -- queue helpers that give up when the pipeline stops ----------------------------------------------

    def _put(self, q: queue.Queue, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q: queue.Queue) -> Any:
        while not self._stop.is_set():
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
        return _END

    # -- stages --------------------------------------------------------------------------------------------

    def _read(self, source: Iterable[Any], out: queue.Queue) -> None:
        iterator = iter(source)
        try:
            while not self._stop.is_set():
                try:
                    item = next(iterator)
                except StopIteration:
                    break
                try:
                    prepared: Any = self.prepare(item)
                except Exception as e:  # noqa: BLE001 - any error of a frame goes to the caller, in its place
                    prepared = _Failed(e)
                if not self._put(out, prepared) or isinstance(prepared, _Failed):
                    return
        except BaseException as e:  # noqa: BLE001 - the source itself failed (a camera, a decoder): tell the caller
            self._put(out, _Failed(e))
            return
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # noqa: BLE001, S110 - closing a finished source must not mask the real outcome
                    pass
        self._put(out, _END)

    def _infer(self, inp: queue.Queue, out: queue.Queue) -> None:
        carry: Any = None
        while True:
            first = carry if carry is not None else self._get(inp)
            carry = None
            if first is _END or isinstance(first, _Failed):
                self._put(out, first)
                return
            group = [first]
            while len(group) < self.batch:
                try:
                    nxt = inp.get_nowait()
                except queue.Empty:
                    break
                if nxt is _END or isinstance(nxt, _Failed) or self.key(nxt) != self.key(first):
                    carry = nxt
                    break
                group.append(nxt)
            try:
                results = self.infer(group)
            except Exception as e:  # noqa: BLE001 - the batch's error goes to the caller in its place
                self._put(out, _Failed(e))
                return
            for p, r in zip(group, results):
                if not self._put(out, (p, r)):
                    return

    def _finish(self, inp: queue.Queue, out: queue.Queue) -> None:
        while True:
            item = self._get(inp)
            if item is _END or isinstance(item, _Failed):
                self._put(out, item)
                return
            try:
                result: Any = self.finish(*item)
            except Exception as e:  # noqa: BLE001
                result = _Failed(e)
            if not self._put(out, result) or isinstance(result, _Failed):
                return

    # -- the caller's side ---------------------------------------------------------------------------------

    def run(self, source: Iterable[Any]) -> Iterator[Any]:
        """Results in input order; raises the first error of any stage."""
        q1, q2, q3 = (queue.Queue(self.queue_size) for _ in range(3))
        self.threads = [
            threading.Thread(target=self._read, args=(source, q1), name="tsjnet-stream-read", daemon=True),
            threading.Thread(target=self._infer, args=(q1, q2), name="tsjnet-stream-infer", daemon=True),
            threading.Thread(target=self._finish, args=(q2, q3), name="tsjnet-stream-finish", daemon=True),
        ]
        for t in self.threads:
            t.start()
        try:
            while True:
                try:
                    item = q3.get(timeout=_POLL_S)
                except queue.Empty:
                    if not any(t.is_alive() for t in self.threads) and q3.empty():
                        raise RuntimeError("the stream's worker threads ended without a result") from None
                    continue
                if item is _END:
                    return
                if isinstance(item, _Failed):
                    raise item.exc
                yield item
        finally:
            self.stop()

    def stop(self, timeout: float = 5.0) -> None:
        """Tell every stage to stop and wait for them (a source blocked in a read may outlive ``timeout``;
        the threads are daemons, so they never keep the process alive)."""
        self._stop.set()
        for t in self.threads:
            if t is not threading.current_thread():
                t.join(timeout)
