"""Shared helpers of the GPU verification (benchmarks/gpu_verify.py): devices, the kernel (or its dry-run
stand-in), references, timing, child processes, side files.

Split out of benchmarks/gpu_verify.py (the entry point); see its docstring for the whole run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tsjnet_sdk.atomic import atomic_path
from tsjnet_sdk.benchmarks.gpu_verify_core import (
    MAX_LOG_BYTES,
    REPO_ROOT,
    Ctx,
)


# ---------------------------------------------------------------------------------------------------
# Shared helpers: devices, the kernel (or its dry-run stand-in), references, timing
# ---------------------------------------------------------------------------------------------------
def _device(ctx: Ctx) -> Any:
    import torch

    if ctx.dry_run:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("torch.cuda.is_available() is False: no usable GPU (use --dry-run to test the plumbing)")
    return torch.device("cuda", torch.cuda.current_device())


def _binding() -> Any:
    from tsjnet_sdk.kernels import torch_binding

    return torch_binding


def _kernel(ctx: Ctx) -> Callable[..., Any]:
    """na2d_cuda, or in a dry run the fp32 reference standing in for it (same signature)."""
    if ctx.dry_run:
        from tsjnet_sdk.ops._na_reference import neighborhood_attention_2d_reference

        return neighborhood_attention_2d_reference
    return lambda *a, **kw: _binding().na2d_cuda(*a, **kw)


def _reference64(q: Any, k: Any, v: Any, ks: int, dil: int, rpb: Any, scale: float | None = None) -> Any:
    """The float64 reference on the inputs' device (exact copies of fp16/fp32 values)."""
    from tsjnet_sdk.ops._na_reference import neighborhood_attention_2d_reference

    r = None if rpb is None else rpb.double()
    return neighborhood_attention_2d_reference(q.double(), k.double(), v.double(), ks, dil, r, scale)


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _errors(out: Any, ref: Any, mask: Any = None) -> dict[str, float]:
    """max abs / max rel error of ``out`` against the float64 ``ref`` (optionally only where ``mask``)."""
    diff = (out.double() - ref).abs()
    scale = ref.abs().clamp_min(1e-3)
    if mask is not None:
        diff, scale = diff[mask], scale[mask]
    if diff.numel() == 0:
        return {"max_abs": 0.0, "max_rel": 0.0}
    return {"max_abs": float(diff.max()), "max_rel": float((diff / scale).max())}


def _inputs(shape: Sequence[int], dtype: Any, device: Any, ks: int, rpb_dtype: Any = None, seed: int = 0) -> tuple:
    import torch

    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(tuple(shape), generator=g).to(device=device, dtype=dtype) for _ in range(3))
    rpb = None
    if rpb_dtype is not None:
        span = 2 * ks - 1
        rpb = (torch.randn(shape[3], span, span, generator=g) * 0.5).to(device=device, dtype=rpb_dtype)
    return q, k, v, rpb


def _torch_dtype(name: str) -> Any:
    import torch

    return {"f32": torch.float32, "f16": torch.float16}[name]


def _time_ms(fn: Callable[[], Any], ctx: Ctx, reps: int = 20, warmup: int = 3, flush: bool = True) -> dict[str, float]:
    """Median / p20 / p80 ms of ``fn``: triton's do_bench (L2 flushed) on a GPU when available, else
    CUDA-event or perf_counter loops."""
    import torch

    for _ in range(warmup):
        fn()
    _sync()
    if not ctx.dry_run and flush:
        try:
            from triton.testing import do_bench

            med, p20, p80 = do_bench(fn, warmup=5, rep=40, quantiles=[0.5, 0.2, 0.8])
            return {"median": med, "p20": p20, "p80": p80, "how": "triton.do_bench, L2 flushed"}
        except ImportError:
            pass
    times = []
    for _ in range(reps):
        if not ctx.dry_run:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    pick = lambda f: times[min(len(times) - 1, int(f * len(times)))]  # noqa: E731
    return {
        "median": pick(0.5),
        "p20": pick(0.2),
        "p80": pick(0.8),
        "how": "perf_counter (dry run, CPU)" if ctx.dry_run else "CUDA events, warm L2",
    }


def _which(tool: str) -> str | None:
    found = shutil.which(tool)
    if found:
        return found
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root and (Path(root) / "bin" / tool).is_file():
            return str(Path(root) / "bin" / tool)
    return None


def _run_text(cmd: Sequence[str], timeout: float, env: dict[str, str] | None = None) -> tuple[int, str]:
    """(returncode, stdout+stderr) of a command; 124 and the partial output when it times out.

    The command runs in its own process group, and the whole group is killed on a timeout or any other
    exit from here (a section alarm): compute-sanitizer's python child must not outlive it on the GPU.
    """
    try:
        proc = subprocess.Popen(
            list(cmd),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=str(REPO_ROOT),
            start_new_session=True,
        )
    except OSError as exc:
        return 127, f"cannot run {cmd[0]}: {exc}"
    try:
        out, err = proc.communicate(timeout=max(1.0, timeout))
        return proc.returncode, out + err
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        return 124, (out or "") + (err or "") + "\n[timed out]"
    finally:
        _kill_group(proc)


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group led by ``proc`` (its children included), if any of it is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.wait(timeout=5)


def _write_text(path: Path, text: str) -> None:
    if len(text) > MAX_LOG_BYTES:
        text = text[: MAX_LOG_BYTES // 4] + "\n[... cut ...]\n" + text[-3 * MAX_LOG_BYTES // 4 :]
    with atomic_path(path) as tmp:
        tmp.write_text(text)
