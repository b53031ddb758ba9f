"""``tsjnet bench`` timing: one row measured end to end through ``Fuser`` (with the compute time inside
``Backend.run``), its peak memory, and the subprocess runner for rows that may hang or run out of memory."""

from __future__ import annotations

import dataclasses
import queue as queue_mod
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tsjnet_sdk.runtime import Backend

from .bench_rows import ROWS, RowContext, RowSpec
from .bench_settings import Shape, _say

# -- the timing wrapper ---------------------------------------------------------------------------


class TimedRunner(Backend):
    """Wraps a backend: adds up the time spent in ``run`` (compute only) and keeps the last output.

    ``batched`` hides a fixed-shape artefact's batch size from the Fuser: the Fuser runs frames of a
    fixed-shape file one at a time (as single tiles), so a static N > 1 file would get N = 1 inputs. The
    bench always feeds exactly the file's N frames of its H x W, so it lets the Fuser send them whole.
    """

    def __init__(self, inner: Backend, batched: bool = False) -> None:
        super().__init__(inner.path, inner.device)
        self.inner, self.name, self._batched = inner, inner.name, batched
        self.compute_s = 0.0
        self.last_output: np.ndarray | None = None

    def run(self, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
        t = time.perf_counter()
        out = self.inner.run(ir, vis)
        self.compute_s += time.perf_counter() - t
        self.last_output = out
        return out

    @property
    def static_shape(self) -> tuple[int, int, int] | None:
        return None if self._batched else self.inner.static_shape

    def describe(self) -> dict[str, Any]:
        sweep = getattr(self.inner, "thread_sweep_median_ms", None)
        return {**self.inner.describe(), **({"thread_sweep_median_ms": sweep} if sweep else {})}

    def close(self) -> None:
        self.inner.close()


def fuser_for(runner: Backend) -> Any:
    """A ``Fuser`` around an already-open backend: the public API's ready-backend form, so every row runs
    the Fuser's own pre/post-processing and tiling."""
    from tsjnet_sdk.runtime import Fuser

    return Fuser(runner)


# -- measuring --------------------------------------------------------------------------------------


def _proc_status_mib(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) for this process; False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float | None:
    value = _proc_status_mib("VmHWM")
    if value is None:
        import resource

        value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return value


def latency_stats(seconds: Sequence[float]) -> dict[str, float | int]:
    """min/median/p90/p99/mean/std in milliseconds over the timed runs (percentiles interpolate)."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    return {
        "n": int(ms.size),
        "min_ms": float(ms.min()),
        "median_ms": float(np.median(ms)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "std_ms": float(ms.std()),
    }


@dataclass
class RawRow:
    """A row's measurements before they are compared with the reference (picklable)."""

    e2e_s: list[float] = field(default_factory=list)
    compute_s: list[float] = field(default_factory=list)
    warmup_s: list[float] = field(default_factory=list)
    build_s: float = 0.0
    outputs_y: list[np.ndarray] = field(default_factory=list)  # fused luminance per accuracy pair, H x W
    outputs: list[np.ndarray] = field(default_factory=list)  # Fuser outputs per accuracy pair (uint8)
    rss_peak_mib: float | None = None
    rss_scope: str = "row"
    rss_before_mib: float | None = None
    gpu_peak_mib: float | None = None
    describe: dict[str, Any] = field(default_factory=dict)


def _gpu_memory_begin(device: str) -> Callable[[], float | None]:
    """Start measuring GPU memory for a row; returns a function giving the peak (MiB), None on CPU."""
    if device != "cuda":
        return lambda: None
    import torch

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    free_before, _ = torch.cuda.mem_get_info()

    def peak() -> float | None:
        torch.cuda.synchronize()
        allocated = torch.cuda.max_memory_allocated()
        # Non-torch runtimes (ORT, TensorRT) allocate outside torch's allocator: use the drop in free memory.
        used_outside = max(0, free_before - torch.cuda.mem_get_info()[0])
        return max(allocated, used_outside) / 2**20

    return peak


def measure_row(
    spec: RowSpec,
    ctx: RowContext,
    shape: Shape,
    acc_chunks: Sequence[Sequence[tuple[np.ndarray, np.ndarray]]],
    warmup: int,
    runs: int,
) -> RawRow:
    """Build ``spec``'s backend at ``shape``, time it on ``acc_chunks[0]``, then run the other chunks.

    The timed frames are the first accuracy chunk, so the last timed call's outputs are reused as that
    chunk's accuracy outputs (for the full model a call is a minute on a small CPU).
    """
    raw = RawRow()
    raw.rss_before_mib = _proc_status_mib("VmRSS")
    raw.rss_scope = "row" if reset_peak_rss() else "process"
    gpu_peak = _gpu_memory_begin(spec.device)
    t = time.perf_counter()
    inner = spec.build(ctx, shape)
    runner = TimedRunner(inner, batched=shape[0] > 1)
    fuser = fuser_for(runner)
    raw.build_s = time.perf_counter() - t
    raw.describe = {k: (str(v) if isinstance(v, Path) else v) for k, v in fuser.describe().items()}
    try:
        frames = list(acc_chunks[0])
        for i in range(max(warmup, spec.warmup_min)):
            _say(ctx.progress, f"{spec.id}: warm-up {i + 1}")
            t = time.perf_counter()
            fuser.fuse_batch(frames)
            raw.warmup_s.append(time.perf_counter() - t)
        outputs: list[np.ndarray] = []
        for i in range(runs):
            _say(ctx.progress, f"{spec.id}: run {i + 1}/{runs}")
            runner.compute_s = 0.0
            t = time.perf_counter()
            outputs = fuser.fuse_batch(frames)
            raw.e2e_s.append(time.perf_counter() - t)
            raw.compute_s.append(runner.compute_s)
        last_y = runner.last_output
        if not runs:  # accuracy still needs the first chunk's outputs
            outputs, last_y = fuser.fuse_batch(frames), runner.last_output
        raw.outputs.extend(outputs)
        raw.outputs_y.extend(last_y[:, 0])
        for chunk in acc_chunks[1:]:
            _say(ctx.progress, f"{spec.id}: accuracy pairs")
            raw.outputs.extend(fuser.fuse_batch(list(chunk)))
            raw.outputs_y.extend(runner.last_output[:, 0])
        raw.rss_peak_mib = peak_rss_mib()
        raw.gpu_peak_mib = gpu_peak()
    finally:
        fuser.close()
    return raw


def _isolated_worker(spec_id: str, ctx: RowContext, shape: Shape, acc_chunks: Any, warmup: int, runs: int, out: Any) -> None:
    """Subprocess entry point: measure one row, send progress lines and then the result (or the error)."""
    ctx = dataclasses.replace(ctx, progress=lambda message: out.put(("progress", message)))
    if ctx.settings.torch_threads:
        import torch

        torch.set_num_threads(ctx.settings.torch_threads)
    spec = next(r for r in ROWS if r.id == spec_id)
    try:
        out.put(("result", measure_row(spec, ctx, shape, acc_chunks, warmup, runs)))
    except BaseException as e:  # noqa: BLE001 - reported to the parent as the row's failure
        out.put(("error", f"{type(e).__name__}: {e}", traceback.format_exc(limit=4)))


def measure_isolated(
    spec: RowSpec, ctx: RowContext, shape: Shape, acc_chunks: Any, warmup: int, runs: int, timeout_s: float
) -> RawRow:
    """``measure_row`` in a fresh process, killed after ``timeout_s`` (raises TimeoutError then)."""
    import multiprocessing as mp

    spawn = mp.get_context("spawn")  # fork after torch/ORT started threads is unsafe
    messages = spawn.Queue()
    child_ctx = dataclasses.replace(ctx, progress=None)
    proc = spawn.Process(
        target=_isolated_worker, args=(spec.id, child_ctx, shape, acc_chunks, warmup, runs, messages), daemon=True
    )
    proc.start()
    deadline = time.monotonic() + timeout_s
    last = "starting"
    try:
        while True:
            try:
                kind, *payload = messages.get(timeout=min(1.0, max(0.01, deadline - time.monotonic())))
            except queue_mod.Empty:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"did not finish within its {timeout_s:.0f} s limit (stopped during '{last}')") from None
                if not proc.is_alive() and messages.empty():
                    code = proc.exitcode
                    why = " (SIGKILL: most likely the out-of-memory killer)" if code == -9 else ""
                    raise RuntimeError(f"the row's subprocess died with exit code {code}{why} during '{last}'") from None
                continue
            if kind == "progress":
                last = payload[0]
                _say(ctx.progress, payload[0])
            elif kind == "result":
                return payload[0]
            else:
                raise RuntimeError(payload[0])
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
