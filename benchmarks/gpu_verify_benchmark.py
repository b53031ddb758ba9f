"""GPU verification section 5: benchmarks (kernel vs reference vs flex_attention; host overhead; graphs).

Split out of benchmarks/gpu_verify.py (the entry point); see its docstring for the whole run.
"""

from __future__ import annotations

import csv
import io
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tsjnet_sdk.atomic import atomic_path
from tsjnet_sdk.benchmarks.gpu_verify_core import (
    FAIL,
    INFO,
    PASS,
    SKIPPED,
    TOL,
    Ctx,
    LEVELS_480x640,
)
from tsjnet_sdk.benchmarks.gpu_verify_helpers import (
    _device,
    _errors,
    _inputs,
    _kernel,
    _reference64,
    _sync,
    _time_ms,
    _torch_dtype,
)


# ---------------------------------------------------------------------------------------------------
# Section 5: benchmarks
# ---------------------------------------------------------------------------------------------------
def flex_na(q: Any, k: Any, v: Any, ks: int, rpb: Any, compiled: Callable[..., Any] | None = None) -> Any:
    """Neighborhood attention (dilation 1) as torch's flex_attention with a clamp-window mask and an rpb
    score_mod: an independent implementation of the same semantics. q, k, v [B, H, W, heads, D]."""
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    b, h, w, heads, d = q.shape
    length = h * w

    def start(p: Any, n: int) -> Any:
        return (p - ks // 2).clamp(0, max(n - ks, 0))

    def mask_mod(bi: Any, hi: Any, qi: Any, ki: Any) -> Any:
        qy, qx, ky, kx = qi // w, qi % w, ki // w, ki % w
        sy, sx = start(qy, h), start(qx, w)
        return (ky >= sy) & (ky < sy + ks) & (kx >= sx) & (kx < sx + ks)

    def score_mod(score: Any, bi: Any, hi: Any, qi: Any, ki: Any) -> Any:
        if rpb is None:
            return score
        dy = (ki // w - qi // w + ks - 1).clamp(0, 2 * ks - 2)  # clamped: masked pairs are evaluated too
        dx = (ki % w - qi % w + ks - 1).clamp(0, 2 * ks - 2)
        return score + rpb[hi, dy, dx].to(score.dtype)

    block_mask = create_block_mask(mask_mod, None, None, length, length, device=str(q.device))
    flat = lambda t: t.reshape(b, length, heads, d).transpose(1, 2)  # noqa: E731
    out = (compiled or flex_attention)(flat(q), flat(k), flat(v), score_mod=score_mod, block_mask=block_mask)
    return out.transpose(1, 2).reshape(b, h, w, heads, d)


def sdpa_na(q: Any, k: Any, v: Any, ks: int, rpb: Any) -> Any:
    """NA as dense SDPA with an additive [heads, L, L] mask (-inf outside the window, rpb inside)."""
    import torch
    import torch.nn.functional as F

    b, h, w, heads, d = q.shape
    idx = torch.arange(h * w, device=q.device)
    y, x = idx // w, idx % w
    sy, sx = (y - ks // 2).clamp(0, max(h - ks, 0)), (x - ks // 2).clamp(0, max(w - ks, 0))
    inside = (y[None] >= sy[:, None]) & (y[None] < sy[:, None] + ks) & (x[None] >= sx[:, None]) & (x[None] < sx[:, None] + ks)
    bias = torch.zeros(heads, h * w, h * w, device=q.device, dtype=torch.float32)
    if rpb is not None:
        dy = (y[None] - y[:, None] + ks - 1).clamp(0, 2 * ks - 2)
        dx = (x[None] - x[:, None] + ks - 1).clamp(0, 2 * ks - 2)
        bias = rpb.float()[:, dy, dx]
    bias = bias.masked_fill(~inside, float("-inf")).to(q.dtype)
    flat = lambda t: t.reshape(b, h * w, heads, d).transpose(1, 2)  # noqa: E731
    out = F.scaled_dot_product_attention(flat(q), flat(k), flat(v), attn_mask=bias[None])
    return out.transpose(1, 2).reshape(b, h, w, heads, d)


def section_benchmark(ctx: Ctx) -> None:
    device = _device(ctx)
    kernel = _kernel(ctx)
    from tsjnet_sdk.ops._na_reference import neighborhood_attention_2d_reference as reference

    copy_bw = ctx.runner.shared.get("copy_bw_gbs")
    rows: list[dict[str, Any]] = []
    try:
        _benchmark_rows(ctx, device, kernel, reference, copy_bw, rows)
    finally:
        ctx.data("rows", rows)  # also when the budget cut the section short


def _benchmark_rows(
    ctx: Ctx,
    device: Any,
    kernel: Callable[..., Any],
    reference: Callable[..., Any],
    copy_bw: float | None,
    rows: list[dict[str, Any]],
) -> None:
    import torch

    if ctx.dry_run:
        shapes = [(1, 6, 8, 2)]
        flex_shapes = [(1, 6, 8, 2)]
    else:
        shapes = [(1, *lv) for lv in LEVELS_480x640] + [(8, *LEVELS_480x640[0]), (32, *LEVELS_480x640[0])]
        flex_shapes = [(1, *LEVELS_480x640[1]), (1, *LEVELS_480x640[0]), (8, *LEVELS_480x640[0])]

    def add(shape: tuple, dt: str, backend: str, timing: dict[str, float], **extra: Any) -> dict[str, Any]:
        b, h, w, heads = shape
        numel = b * h * w * heads * 32
        seconds = timing["median"] * 1e-3
        gbs = 4 * numel * (4 if dt == "f32" else 2) / seconds / 1e9
        row = {
            "shape": "x".join(map(str, shape)),
            "dtype": dt,
            "backend": backend,
            "us": round(timing["median"] * 1e3, 1),
            "p20_us": round(timing["p20"] * 1e3, 1),
            "p80_us": round(timing["p80"] * 1e3, 1),
            "qh_per_s": b * h * w * heads / seconds,
            "gbs": round(gbs, 1),
            "pct_copy_bw": round(100 * gbs / copy_bw, 1) if copy_bw else None,
            "how": timing["how"],
            **extra,
        }
        rows.append(row)
        _write_csv(ctx.artefact("bench.csv"), rows)
        return row

    for shape in shapes:
        for dt in ("f16", "f32"):
            if not ctx.enough(5, f"bench {shape} {dt}"):
                break
            q, k, v, rpb = _inputs((*shape[:3], shape[3], 32), _torch_dtype(dt), device, 7, torch.float32, seed=3)
            with torch.inference_mode():

                def bench_one(backend: str, fn: Callable[[], Any]) -> None:
                    t = _time_ms(fn, ctx, reps=3 if ctx.dry_run else 20, warmup=1 if ctx.dry_run else 3)
                    row = add(shape, dt, backend, t)
                    ctx.check(f"time {backend} {row['shape']} {dt}", INFO, f"{row['us']} us, {row['gbs']} GB/s")

                ctx.attempt(f"time kernel {shape} {dt}", lambda: bench_one("kernel", lambda: kernel(q, k, v, 7, 1, rpb)))
                if shape[0] <= 8:
                    ctx.attempt(
                        f"time reference {shape} {dt}", lambda: bench_one("reference", lambda: reference(q, k, v, 7, 1, rpb))
                    )
                if shape[1] * shape[2] <= 300 or ctx.dry_run:
                    ctx.attempt(f"sdpa dense mask {shape} {dt}", lambda: _sdpa_row(ctx, q, k, v, rpb, dt, bench_one))
    for shape in flex_shapes:
        if not ctx.enough(30 if not ctx.dry_run else 1, f"flex_attention {shape}"):
            break
        ctx.attempt(f"flex_attention {shape}", lambda shape=shape: _flex_row(ctx, shape, device, add))
    ctx.attempt("host overhead", lambda: _host_overhead(ctx, device, kernel))
    if ctx.dry_run:
        ctx.check("cuda graph replay", SKIPPED, "dry run")
    else:
        ctx.attempt("cuda graph replay", lambda: _graph_replay(ctx, device, kernel))


def _sdpa_row(ctx: Ctx, q: Any, k: Any, v: Any, rpb: Any, dt: str, bench_one: Callable[..., None]) -> None:
    out = sdpa_na(q, k, v, 7, rpb)
    err = _errors(out, _reference64(q, k, v, 7, 1, rpb))
    ctx.check(
        f"sdpa dense-mask NA agrees {dt}", PASS if err["max_abs"] <= TOL[dt] else FAIL, f"max abs {err['max_abs']:.3g}", **err
    )
    bench_one("sdpa-dense-mask", lambda: sdpa_na(q, k, v, 7, rpb))


def _flex_row(ctx: Ctx, shape: tuple, device: Any, add: Callable[..., dict]) -> None:
    import torch
    from torch.nn.attention.flex_attention import flex_attention

    q, k, v, rpb = _inputs(
        (*shape[:3], shape[3], 32), torch.float16 if not ctx.dry_run else torch.float32, device, 7, torch.float32, seed=5
    )
    compiled = None
    t0 = time.monotonic()
    if not ctx.dry_run:
        compiled = torch.compile(flex_attention, dynamic=False)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*flex_attention called without torch.compile.*")  # dry run
        out = flex_na(q, k, v, 7, rpb, compiled)
        _sync()
        compile_s = time.monotonic() - t0
        dt = "f16" if not ctx.dry_run else "f32"
        err = _errors(out, _reference64(q, k, v, 7, 1, rpb))
        ctx.check(
            f"flex_attention NA agrees {'x'.join(map(str, shape))}",
            PASS if err["max_abs"] <= TOL[dt] else FAIL,
            f"max abs {err['max_abs']:.3g} vs the float64 reference (first call incl. compile: {compile_s:.1f} s)",
            compile_s=compile_s,
            **err,
        )
        timing = _time_ms(
            lambda: flex_na(q, k, v, 7, rpb, compiled), ctx, reps=3 if ctx.dry_run else 20, warmup=1 if ctx.dry_run else 3
        )
    add(shape, dt, "flex_attention" + ("" if ctx.dry_run else " (compiled)"), timing, compile_s=round(compile_s, 1))


def _host_overhead(ctx: Ctx, device: Any, kernel: Callable[..., Any]) -> None:
    """Wall time per call of back-to-back launches (no sync) against the GPU time per call."""
    import torch

    n = 20 if ctx.dry_run else 1000
    shape = (1, 6, 8, 2, 32) if ctx.dry_run else (1, *LEVELS_480x640[3], 32)
    q, k, v, rpb = _inputs(shape, torch.float16 if not ctx.dry_run else torch.float32, device, 7, torch.float32, seed=8)
    with torch.inference_mode():
        for _ in range(5):
            kernel(q, k, v, 7, 1, rpb)
        _sync()
        t0 = time.perf_counter()
        for _ in range(n):
            kernel(q, k, v, 7, 1, rpb)
        host_s = time.perf_counter() - t0
        _sync()
        wall_s = time.perf_counter() - t0
    gpu = _time_ms(lambda: kernel(q, k, v, 7, 1, rpb), ctx, reps=20, warmup=2, flush=False)
    data = {
        "calls": n,
        "host_us_per_call": host_s / n * 1e6,
        "wall_us_per_call": wall_s / n * 1e6,
        "gpu_us_per_call": gpu["median"] * 1e3,
    }
    ctx.data("host_overhead", data)
    ctx.check(
        "host overhead per call",
        INFO,
        f"host {data['host_us_per_call']:.1f} us, wall {data['wall_us_per_call']:.1f} us,"
        f" GPU {data['gpu_us_per_call']:.1f} us per call",
        **data,
    )


def _graph_replay(ctx: Ctx, device: Any, kernel: Callable[..., Any]) -> None:
    """54 calls (TSJNet's NA calls per fusion, levels round-robin) captured in a CUDA graph and replayed."""
    import torch

    inputs = [_inputs((1, *LEVELS_480x640[i % 4], 32), torch.float16, device, 7, torch.float32, seed=i) for i in range(54)]
    stream = torch.cuda.Stream(device)
    with torch.inference_mode():
        eager = lambda: [kernel(q, k, v, 7, 1, rpb) for q, k, v, rpb in inputs]  # noqa: E731
        expected = eager()
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):
            eager()  # warm-up on the capture stream
        torch.cuda.current_stream(device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            captured = eager()
        graph.replay()
        torch.cuda.synchronize()
        same = all(torch.equal(a, b) for a, b in zip(captured, expected))
        t_graph = _time_ms(graph.replay, ctx, reps=20, warmup=2, flush=False)
        t_eager = _time_ms(eager, ctx, reps=10, warmup=1, flush=False)
    data = {"graph_ms": t_graph["median"], "eager_ms": t_eager["median"], "identical": same}
    ctx.data("cuda_graph", data)
    ctx.check(
        "cuda graph replay",
        PASS if same else FAIL,
        f"54 calls: graph {data['graph_ms']:.3f} ms vs eager "
        f"{data['eager_ms']:.3f} ms; outputs {'identical' if same else 'DIFFER'}",
        **data,
    )


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())
