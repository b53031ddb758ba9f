"""Micro-benchmark of the neighborhood-attention op alone (``tsjnet_sdk.ops.neighborhood_attention_2d``).

Shapes: TSJNet's four NAT stages for one 640 x 480 input (B = 1): maps 120x160 / 60x80 / 30x40 / 15x20
with 2 / 4 / 8 / 16 heads, head_dim 32, kernel 7, dilation 1, with the relative position bias.

Implementations: ``reference`` (pure PyTorch, any device), ``natten`` (NATTEN 0.21; it has no rpb, so
it is timed on the same shapes *without* rpb, next to a reference row without rpb, and compared with
that), ``cuda`` (the SDK's kernel, CUDA only). On a CPU NATTEN has only its slow flex backend (~9 s for
the 60x80 stage), so its repeats are limited and it can be left out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: (height, width, heads) of TSJNet's NAT stages for a 640 x 480 frame (strides 4, 8, 16, 32)
STAGES_640x480: tuple[tuple[int, int, int], ...] = ((120, 160, 2), (60, 80, 4), (30, 40, 8), (15, 20, 16))
HEAD_DIM = 32
KERNEL = 7


def stages_for(height: int, width: int, heads: Sequence[int] = (2, 4, 8, 16)) -> list[tuple[int, int, int]]:
    """NAT stage shapes for an H x W input (TSJNet's patch embedding has stride 4, then 2 per level)."""
    return [(math.ceil(height / 4 / 2**i), math.ceil(width / 4 / 2**i), h) for i, h in enumerate(heads)]


def run_na_bench(
    backends: Sequence[str] = ("reference", "natten", "cuda"),
    stages: Sequence[tuple[int, int, int]] = STAGES_640x480,
    warmup: int = 2,
    runs: int = 10,
    natten_runs: int = 1,
    head_dim: int = HEAD_DIM,
    kernel_size: int = KERNEL,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Time the op per (backend, rpb, stage); rows that cannot run are kept with the reason."""
    import torch

    from tsjnet_sdk.ops import available_backends, neighborhood_attention_2d

    with_cuda = torch.cuda.is_available()
    device = "cuda" if with_cuda else "cpu"
    present = available_backends()
    # natten cannot apply an rpb: its rows run without, so a reference row without rpb is their baseline.
    variants: list[tuple[str, bool]] = [("reference", True)]
    if "natten" in backends:
        variants += [("reference", False), ("natten", False)]
    if "cuda" in backends:
        variants += [("cuda", True)]
    rows = []
    gen = torch.Generator().manual_seed(seed)
    for height, width, heads in stages:
        shape = (1, height, width, heads, head_dim)
        q, k, v = (torch.randn(shape, generator=gen).to(device) for _ in range(3))
        rpb = (torch.randn(heads, 2 * kernel_size - 1, 2 * kernel_size - 1, generator=gen) * 0.1).to(device)
        baselines: dict[bool, torch.Tensor] = {}
        for backend, use_rpb in variants:
            row: dict[str, Any] = {
                "backend": backend,
                "rpb": use_rpb,
                "height": height,
                "width": width,
                "heads": heads,
                "head_dim": head_dim,
                "kernel": kernel_size,
                "device": device,
            }
            rows.append(row)
            if backend not in present or (backend == "cuda" and not with_cuda):
                row.update(
                    status="skipped",
                    reason=("no CUDA GPU here" if backend == "cuda" and not with_cuda else f"{backend} is not available here"),
                )
                continue
            n_warm, n_runs = (0, natten_runs) if backend == "natten" and device == "cpu" else (warmup, runs)
            if progress:
                progress(f"NA {backend}{' +rpb' if use_rpb else ''} {height}x{width}x{heads}: {n_warm}+{n_runs} runs")

            def call() -> torch.Tensor:
                out = neighborhood_attention_2d(q, k, v, kernel_size, rpb=rpb if use_rpb else None, backend=backend)
                if with_cuda:
                    torch.cuda.synchronize()
                return out

            try:
                with torch.inference_mode():
                    for _ in range(n_warm):
                        call()
                    times = []
                    for _ in range(n_runs):
                        t = time.perf_counter()
                        out = call()
                        times.append(time.perf_counter() - t)
            except Exception as e:  # noqa: BLE001 - reported as the row's failure
                row.update(status="failed", reason=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
                continue
            ms = np.asarray(times) * 1e3
            row.update(
                status="ok",
                runs=n_runs,
                warmup=n_warm,
                min_ms=float(ms.min()),
                median_ms=float(np.median(ms)),
                mean_ms=float(ms.mean()),
            )
            if backend == "reference":
                baselines[use_rpb] = out
            elif use_rpb in baselines:
                row["max_abs_vs_reference"] = float((out.float() - baselines[use_rpb].float()).abs().max())
    return {
        "stages": [list(s) for s in stages],
        "head_dim": head_dim,
        "kernel": kernel_size,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "rows": rows,
    }
