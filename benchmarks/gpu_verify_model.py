"""GPU verification section 4: the whole model with reference NA vs the kernel.

Split out of benchmarks/gpu_verify.py (the entry point); see its docstring for the whole run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from tsjnet_sdk.benchmarks.gpu_verify_core import (
    FAIL,
    MODEL_TOL,
    PASS,
    Ctx,
)
from tsjnet_sdk.benchmarks.gpu_verify_helpers import (
    _binding,
    _device,
    _time_ms,
)
from tsjnet_sdk.shipped import SHIPPED_WEIGHTS


# ---------------------------------------------------------------------------------------------------
# Section 4: the whole model
# ---------------------------------------------------------------------------------------------------
def section_model(ctx: Ctx) -> None:
    import torch

    from tsjnet_sdk.ops import na_backend

    device = _device(ctx)
    size = (64, 64) if ctx.dry_run else (480, 640)
    configs = ["tsjnet-tiny"] if ctx.dry_run else ["tsjnet", "tsjnet-edge"]
    precisions = ["fp32"] if ctx.dry_run else ["fp32", "fp16"]
    rows: list[dict[str, Any]] = []
    counter = {"calls": 0}
    restore = None
    if not ctx.dry_run:
        tb = _binding()
        original = tb.na2d_cuda

        def counting(*a: Any, **kw: Any) -> Any:
            counter["calls"] += 1
            return original(*a, **kw)

        tb.na2d_cuda, restore = counting, (tb, original)
    try:
        for name in configs:
            if not ctx.enough(15, f"model {name}"):
                continue
            torch.manual_seed(0)
            model, source = _model_for(name, device)
            g = torch.Generator().manual_seed(1)
            ir, vis = (torch.rand(1, 1, *size, generator=g).to(device) for _ in range(2))
            for precision in precisions:
                outs = {}
                for na in ("reference", "cuda"):
                    label = f"{name} {precision} NA={na}"

                    def one(na: str = na, label: str = label, precision: str = precision) -> None:
                        backend = "reference" if (ctx.dry_run and na == "cuda") else na  # dry: stand-in
                        counter["calls"] = 0
                        with torch.inference_mode(), na_backend(backend), _autocast(device, precision):
                            fn = lambda: model(ir, vis).fused  # noqa: E731
                            outs[na] = fn().float()
                            calls = counter["calls"]
                            timing = _time_ms(fn, ctx, reps=1 if ctx.dry_run else 10, warmup=0 if ctx.dry_run else 3, flush=False)
                        row = {
                            "model": name,
                            "weights": source,
                            "precision": precision,
                            "na": na,
                            "ms": round(timing["median"], 3),
                            "kernel_calls": calls,
                        }
                        rows.append(row)
                        ref_ms = next(
                            (
                                r["ms"]
                                for r in rows
                                if r["model"] == name and r["precision"] == precision and r["na"] == "reference"
                            ),
                            None,
                        )
                        if na == "cuda" and "reference" in outs:
                            diff = float((outs["cuda"] - outs["reference"]).abs().max())
                            row["max_abs_diff"] = diff
                            used = ctx.dry_run or calls > 0
                            ok = diff <= MODEL_TOL[precision] and bool(torch.isfinite(outs["cuda"]).all()) and used
                            ctx.check(
                                f"{name} {precision}: kernel vs reference NA",
                                PASS if ok else FAIL,
                                f"max abs diff {diff:.3g} (tol {MODEL_TOL[precision]}), {calls} kernel calls, "
                                f"{row['ms']} ms vs {ref_ms} ms",
                                max_abs_diff=diff,
                                kernel_calls=calls,
                            )

                    ctx.attempt(label, one)
            model = None  # free the GPU memory before the next config
    finally:
        ctx.data("rows", rows)  # also when the budget cut the section short
        if restore is not None:
            restore[0].na2d_cuda = restore[1]


def _model_for(name: str, device: Any) -> tuple[Any, str]:
    """tsjnet-edge: the shipped weights when readable; other configs (or without safetensors): random init."""
    from tsjnet_sdk.models import create_model

    if name == "tsjnet-edge":
        weights = SHIPPED_WEIGHTS
        with contextlib.suppress(Exception):
            from tsjnet_sdk.models import load_checkpoint

            return load_checkpoint(weights, device=str(device)).eval(), "shipped"
    return create_model(name).to(device).eval(), "random init (seed 0)"


@contextlib.contextmanager
def _autocast(device: Any, precision: str) -> Iterator[None]:
    import torch

    if precision == "fp16":
        with torch.autocast(device_type=device.type, dtype=torch.float16):
            yield
    else:
        yield
