"""GPU verification section 2: correctness (kernel vs float64 reference; PTX vs cubin).

Split out of benchmarks/gpu_verify.py (the entry point); see its docstring for the whole run.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tsjnet_sdk.benchmarks.gpu_verify_core import (
    CUT,
    FAIL,
    PASS,
    REPO_ROOT,
    SKIPPED,
    TOL,
    Ctx,
    LEVELS_480x640,
)
from tsjnet_sdk.benchmarks.gpu_verify_helpers import (
    _binding,
    _device,
    _errors,
    _inputs,
    _kernel,
    _reference64,
    _run_text,
    _sync,
    _torch_dtype,
    _write_text,
)


# ---------------------------------------------------------------------------------------------------
# Section 2: correctness
# ---------------------------------------------------------------------------------------------------
def _compare(
    ctx: Ctx, name: str, dtype: str, run: Callable[[], Any], ref: Callable[[], Any], mask: Any = None, expect_finite: bool = True
) -> None:
    """Run the kernel and the float64 reference, record max errors against TOL[dtype]."""
    import torch

    out = run()
    _sync()
    expected = ref()
    finite = bool(torch.isfinite(out if mask is None else out[mask]).all())
    err = _errors(out, expected, mask)
    ok = err["max_abs"] <= TOL[dtype] and (finite or not expect_finite)  # NaN errors compare False: a fail
    ctx.check(
        name,
        PASS if ok else FAIL,
        f"max abs {err['max_abs']:.3g} (tol {TOL[dtype]}), max rel {err['max_rel']:.3g}{'' if finite else ', NON-FINITE output'}",
        **err,
        finite=finite,
    )


def _case_list(ctx: Ctx) -> dict[str, list]:
    """Shapes per case family; tiny ones for the dry run."""
    from tsjnet_sdk.kernels import spec

    if ctx.dry_run:
        return {"instances": [("f32", 7, 32), ("f16", 3, 8)], "odd_shape": (1, 5, 9, 2), "levels": [(6, 8, 2)], "batches": (1,)}
    return {"instances": list(spec.FULL_MATRIX), "odd_shape": (1, 13, 37, 2), "levels": list(LEVELS_480x640), "batches": (1, 2)}


def section_correctness(ctx: Ctx) -> None:
    import torch

    if ctx.dry_run:
        ctx.check("pytest tests/test_kernels_gpu.py", SKIPPED, "dry run")
    elif ctx.enough(20, "pytest tests/test_kernels_gpu.py"):
        ctx.attempt("pytest tests/test_kernels_gpu.py", lambda: _pytest_gpu(ctx))
    device = _device(ctx)
    kernel = _kernel(ctx)
    cases = _case_list(ctx)
    # (a) every compiled instance on one odd shape, dilation 2, rpb of the same dtype
    b, h, w, heads = cases["odd_shape"]
    for seed, (dt, ks, d) in enumerate(cases["instances"]):
        dtype = _torch_dtype(dt)
        q, k, v, rpb = _inputs((b, h, w, heads, d), dtype, device, ks, dtype, seed=seed)
        ctx.attempt(
            f"instance {dt} k{ks} d{d}",
            lambda q=q, k=k, v=v, rpb=rpb, ks=ks, dt=dt: _compare(
                ctx,
                f"instance {dt} k{ks} d{d}",
                dt,
                lambda: kernel(q, k, v, ks, 2, rpb),
                lambda: _reference64(q, k, v, ks, 2, rpb),
            ),
        )
    # (b) TSJNet's levels at 480x640: fp32 (rpb fp32) and fp16 q/k/v with an fp32 rpb (autocast's mix)
    for bsz in cases["batches"]:
        for lh, lw, lheads in cases["levels"]:
            for dt in ("f32", "f16"):
                q, k, v, rpb = _inputs((bsz, lh, lw, lheads, 32), _torch_dtype(dt), device, 7, torch.float32, seed=lh + bsz)
                label = f"level {lh}x{lw}x{lheads} B{bsz} {dt}"
                ctx.attempt(
                    label,
                    lambda q=q, k=k, v=v, rpb=rpb, dt=dt, label=label: _compare(
                        ctx, label, dt, lambda: kernel(q, k, v, 7, 1, rpb), lambda: _reference64(q, k, v, 7, 1, rpb)
                    ),
                )
    # (c) windows larger than the map or its dilation groups
    edge = [((1, 11, 13, 2, 32), 7, 3), ((1, 1, 1, 2, 32), 7, 1), ((1, 5, 4, 2, 32), 7, 1), ((1, 6, 35, 1, 32), 13, 2)]
    for shape, ks, dil in edge:
        for dt in ("f32", "f16"):
            q, k, v, rpb = _inputs(shape, _torch_dtype(dt), device, ks, _torch_dtype(dt), seed=sum(shape))
            label = f"small map {shape[1]}x{shape[2]} k{ks} dil{dil} {dt}"
            ctx.attempt(
                label,
                lambda q=q, k=k, v=v, rpb=rpb, ks=ks, dil=dil, dt=dt, label=label: _compare(
                    ctx, label, dt, lambda: kernel(q, k, v, ks, dil, rpb), lambda: _reference64(q, k, v, ks, dil, rpb)
                ),
            )
    # (d) layouts: packed-qkv views, a misaligned view (must be copied, not fault), a permuted input
    ctx.attempt("layouts", lambda: _layout_cases(ctx, device, kernel))
    # (e) grid limit: B * heads = 65535 on a 1x1 map
    if ctx.dry_run:
        ctx.check("grid z = 65535", SKIPPED, "dry run")
    else:

        def grid_limit() -> None:
            q, k, v, _ = _inputs((65535, 1, 1, 1, 32), torch.float16, device, 7, None, seed=9)
            _compare(
                ctx,
                "grid z = 65535 (B 65535, 1x1 map)",
                "f16",
                lambda: kernel(q, k, v, 7, 1),
                lambda: _reference64(q, k, v, 7, 1, None),
            )

        ctx.attempt("grid z = 65535", grid_limit)
    # (f) non-finite probes of review K1 / K2 (fixed: must stay finite where the reference is)
    ctx.attempt("K1 inf in V outside a window", lambda: _probe_k1(ctx, device, kernel))
    ctx.attempt("K2 window row all -inf", lambda: _probe_k2(ctx, device, kernel))
    # (g) the PTX path (driver JIT) against the cubin
    if ctx.dry_run:
        ctx.check("ptx vs cubin", SKIPPED, "dry run")
    elif ctx.enough(10, "ptx vs cubin"):
        ctx.attempt("ptx vs cubin", lambda: _ptx_vs_cubin(ctx, device))


def _pytest_gpu(ctx: Ctx) -> None:
    import importlib.util

    test = REPO_ROOT / "tests" / "test_kernels_gpu.py"
    if not test.is_file():
        ctx.check("pytest tests/test_kernels_gpu.py", SKIPPED, f"{test} not in this checkout")
        return
    if importlib.util.find_spec("pytest") is None:
        ctx.check("pytest tests/test_kernels_gpu.py", SKIPPED, "pytest not installed (the cases below cover the same ground)")
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    rc, text = _run_text(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(test)], min(90.0, ctx.left() - 5), env
    )
    _write_text(ctx.artefact("pytest.txt"), text)
    summary = [line for line in text.splitlines() if " passed" in line or " failed" in line or " error" in line]
    ctx.check(
        "pytest tests/test_kernels_gpu.py",
        PASS if rc == 0 else (CUT if rc == 124 else FAIL),
        (summary[-1] if summary else f"exit {rc}").strip("= "),
        exit_code=rc,
    )


def _layout_cases(ctx: Ctx, device: Any, kernel: Callable[..., Any]) -> None:
    import torch

    for dt in ("f32", "f16"):
        dtype = _torch_dtype(dt)
        g = torch.Generator().manual_seed(2)
        packed = torch.randn(2, 10, 37, 3, 2, 32, generator=g).to(device=device, dtype=dtype)
        q, k, v = packed.unbind(3)
        _compare(ctx, f"packed qkv views {dt}", dt, lambda: kernel(q, k, v, 7, 1), lambda: _reference64(q, k, v, 7, 1, None))
        flat = torch.randn(3, 1 + 1 * 9 * 11 * 2 * 32, generator=g).to(device=device, dtype=dtype)
        mis = [flat[i, 1:].view(1, 9, 11, 2, 32) for i in range(3)]  # storage offset 1 element: not 16-byte aligned
        _compare(ctx, f"misaligned view {dt}", dt, lambda: kernel(*mis, 7, 1), lambda: _reference64(*mis, 7, 1, None))
        perm = [torch.randn(1, 12, 9, 2, 32, generator=g).to(device=device, dtype=dtype).transpose(1, 2) for _ in range(3)]
        _compare(
            ctx, f"permuted (non-contiguous) input {dt}", dt, lambda: kernel(*perm, 7, 1), lambda: _reference64(*perm, 7, 1, None)
        )


def _probe_k1(ctx: Ctx, device: Any, kernel: Callable[..., Any]) -> None:
    import torch

    for dt in ("f32", "f16"):
        q, k, v, _ = _inputs((1, 16, 20, 1, 32), _torch_dtype(dt), device, 7, None, seed=11)
        v[0, 12, 5, 0, 3] = float("inf")
        ref = _reference64(q, k, v, 7, 1, None)
        finite = torch.isfinite(ref).all(dim=-1).all(dim=-1)  # [B, H, W]
        out = kernel(q, k, v, 7, 1)
        _sync()
        leaked = int((finite & ~torch.isfinite(out).all(dim=-1).all(dim=-1)).sum())
        err = _errors(out, ref, finite[..., None, None].expand_as(ref))
        ok = leaked == 0 and err["max_abs"] <= TOL[dt]
        ctx.check(
            f"K1 inf in V outside a window {dt}",
            PASS if ok else FAIL,
            f"{leaked} queries made non-finite by a value outside their window; max abs {err['max_abs']:.3g}",
            leaked=leaked,
            **err,
        )


def _probe_k2(ctx: Ctx, device: Any, kernel: Callable[..., Any]) -> None:
    for dt in ("f32", "f16"):
        q, k, v, rpb = _inputs((1, 12, 12, 1, 32), _torch_dtype(dt), device, 7, _torch_dtype(dt), seed=12)
        rpb[0, 3, :] = float("-inf")
        _compare(
            ctx, f"K2 window row all -inf {dt}", dt, lambda: kernel(q, k, v, 7, 1, rpb), lambda: _reference64(q, k, v, 7, 1, rpb)
        )


@contextlib.contextmanager
def _forced_image(tb: Any, image: Callable[[tuple], tuple[Path, str]]) -> Iterator[None]:
    """Make the binding load ``image(instance)`` instead of its own choice (fresh function cache inside)."""
    saved = (tb.ensure_image, tb._functions, tb._failures)
    tb.ensure_image = lambda cc, instance, out_dir=None: image(instance)
    tb._functions, tb._failures = {}, {}
    try:
        yield
    finally:
        tb.ensure_image, tb._functions, tb._failures = saved


def _ptx_vs_cubin(ctx: Ctx, device: Any) -> None:
    """TSJNet's instances through the oldest PTX available (sm_86 if built: JIT by the driver) vs the cubin."""
    import torch

    from tsjnet_sdk.kernels import build, spec

    tb = _binding()
    cc = torch.cuda.get_device_capability(device)
    out_dir = build.default_out_dir()

    def oldest_ptx(instance: tuple) -> tuple[Path, str]:
        for target in build.TARGETS:  # oldest first
            found = build.find_image(build._cc_of(target), instance, out_dir)
            if found is not None and tuple(build._cc_of(target)) <= tuple(cc):
                return found[0].with_suffix(".ptx"), "ptx"
        raise RuntimeError(f"no PTX for {instance} in {out_dir}")

    for dt, ks, d in spec.TSJNET_INSTANCES:
        dtype = _torch_dtype(dt)
        q, k, v, rpb = _inputs((1, 30, 40, 8, d), dtype, device, ks, torch.float32, seed=21)
        cubin_path, kind = build.ensure_image(cc, (dt, ks, d), out_dir)
        if kind != "cubin":
            ctx.check(f"ptx vs cubin {dt} k{ks} d{d}", SKIPPED, f"no cubin for this GPU in {out_dir} (only {cubin_path})")
            continue
        a = tb.na2d_cuda(q, k, v, ks, 1, rpb)
        ptx_path = oldest_ptx((dt, ks, d))[0]
        t0 = time.monotonic()
        with _forced_image(tb, oldest_ptx):
            b = tb.na2d_cuda(q, k, v, ks, 1, rpb)
            torch.cuda.synchronize()
        jit_s = time.monotonic() - t0
        diff = float((a.double() - b.double()).abs().max())
        ok = diff <= (1e-6 if dt == "f32" else 1e-3)
        ctx.check(
            f"ptx vs cubin {dt} k{ks} d{d}",
            PASS if ok else FAIL,
            f"{ptx_path.parent.name} PTX (JIT {jit_s:.1f} s) vs {cubin_path.parent.name} {kind}: max diff {diff:.3g}",
            max_abs=diff,
            jit_s=jit_s,
            ptx=str(ptx_path),
            image=str(cubin_path),
            image_kind=kind,
        )
