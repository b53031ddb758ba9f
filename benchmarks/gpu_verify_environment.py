"""GPU verification section 0: environment (GPU, driver, versions, copy bandwidth).

Split out of benchmarks/gpu_verify.py (the entry point); see its docstring for the whole run.
"""

from __future__ import annotations

import contextlib
import platform
from typing import Any

from tsjnet_sdk.benchmarks.gpu_verify_core import (
    INFO,
    PASS,
    SKIPPED,
    Ctx,
)
from tsjnet_sdk.benchmarks.gpu_verify_helpers import (
    _device,
    _run_text,
    _time_ms,
    _which,
)


# ---------------------------------------------------------------------------------------------------
# Section 0: environment
# ---------------------------------------------------------------------------------------------------
def section_environment(ctx: Ctx) -> None:
    import torch

    from tsjnet_sdk.benchmarks.machine import describe_machine

    machine = describe_machine()
    ctx.data("machine", machine)
    ctx.data(
        "versions",
        {
            **machine["versions"],
            "torch_cuda": torch.version.cuda,
            "triton": _dist_version("triton"),
            "cuda-bindings": _dist_version("cuda-bindings"),
        },
    )
    ctx.data("kernel", platform.release())
    sandbox = "gVisor" if "gvisor" in _run_text(["dmesg"], 5)[1].lower() else None
    ctx.data("sandbox_hint", sandbox or "unknown (not gVisor by dmesg)")
    tools = {t: _which(t) for t in ("nvidia-smi", "nvcc", "ptxas", "compute-sanitizer", "cuobjdump")}
    ctx.data("tools", tools)
    if tools["nvidia-smi"]:
        rc, text = _run_text(
            [
                tools["nvidia-smi"],
                "--query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem,memory.total,power.limit",
                "--format=csv,noheader",
            ],
            15,
        )
        ctx.data("nvidia_smi", text.strip())
    if ctx.dry_run:
        ctx.check("gpu", SKIPPED, "dry run: no GPU used")
        _copy_bandwidth(ctx, torch.device("cpu"), 32 << 20)
        return
    device = _device(ctx)
    props = torch.cuda.get_device_properties(device)
    gpu = {
        "name": props.name,
        "cc": f"{props.major}{props.minor}",
        "sms": props.multi_processor_count,
        "memory_gib": round(props.total_memory / 2**30, 1),
    }
    ctx.data("gpu", gpu)
    with contextlib.suppress(Exception):
        from cuda.bindings import driver

        driver.cuInit(0)
        err, version = driver.cuDriverGetVersion()
        ctx.data("driver", f"CUDA {version // 1000}.{version % 1000 // 10}")
    ctx.check("gpu", PASS, f"{props.name} sm_{props.major}{props.minor}, {props.multi_processor_count} SMs")
    _copy_bandwidth(ctx, device, 1 << 30)


def _dist_version(dist: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _copy_bandwidth(ctx: Ctx, device: Any, nbytes: int) -> None:
    """Device-to-device copy: GB/s counting read + write (the ceiling every NA % refers to)."""
    import torch

    src = torch.empty(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    timing = _time_ms(lambda: dst.copy_(src), ctx, reps=10, warmup=2, flush=False)
    gbs = 2 * nbytes / (timing["median"] * 1e-3) / 1e9
    ctx.runner.shared["copy_bw_gbs"] = gbs
    ctx.data("copy_bandwidth_gbs", gbs)
    ctx.data("copy_bandwidth_how", f"{nbytes >> 20} MiB copy_ on {device}, {timing['how']}, read+write counted")
    ctx.check("copy bandwidth", INFO, f"{gbs:.0f} GB/s ({device})")
