"""GPU verification section 3: compute-sanitizer runs (the child's cases) and their parsers.

Split out of benchmarks/gpu_verify.py (the entry point); see its docstring for the whole run.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence

from tsjnet_sdk.benchmarks.gpu_verify_core import (
    CUT,
    FAIL,
    PASS,
    REPO_ROOT,
    SANITIZER_TOOLS,
    SKIPPED,
    TOL,
    Ctx,
)
from tsjnet_sdk.benchmarks.gpu_verify_helpers import (
    _binding,
    _reference64,
    _run_text,
    _torch_dtype,
    _which,
    _write_text,
)

# ---------------------------------------------------------------------------------------------------
# Section 3: compute-sanitizer
# ---------------------------------------------------------------------------------------------------
SANITIZE_CASES = [  # (shape, kernel, dilation, dtype, rpb, packed view)
    ((1, 9, 11, 2, 32), 7, 1, "f32", True, False),  # borders
    ((1, 5, 4, 2, 32), 7, 1, "f16", True, False),  # map smaller than the window
    ((1, 14, 40, 1, 32), 7, 2, "f16", False, False),  # dilation, two column tiles
    ((1, 8, 33, 1, 64), 7, 1, "f32", True, False),  # head_dim 64: 1 row per warp
    ((2, 10, 37, 2, 32), 7, 1, "f16", False, True),  # strided views of a packed qkv
    ((1, 6, 35, 1, 16), 13, 2, "f32", True, False),  # shrinking rows, k 13
]


def sanitize_cases(dry_run: bool = False) -> int:
    """The child of the sanitizer section: tiny launches checked against the CPU reference; 0 when all pass."""
    import torch

    from tsjnet_sdk.ops._na_reference import neighborhood_attention_2d_reference

    device = torch.device("cpu" if dry_run else "cuda")
    kernel = neighborhood_attention_2d_reference if dry_run else _binding().na2d_cuda
    failures = 0
    for i, (shape, ks, dil, dt, with_rpb, packed) in enumerate(SANITIZE_CASES):
        dtype = _torch_dtype(dt)
        g = torch.Generator().manual_seed(i)
        if packed:
            q, k, v = torch.randn(shape[0], shape[1], shape[2], 3, shape[3], shape[4], generator=g).to(device, dtype).unbind(3)
        else:
            q, k, v = (torch.randn(shape, generator=g).to(device, dtype) for _ in range(3))
        rpb = torch.randn(shape[3], 2 * ks - 1, 2 * ks - 1, generator=g).to(device, dtype) if with_rpb else None
        out = kernel(q, k, v, ks, dil, rpb)
        if not dry_run:
            torch.cuda.synchronize()
        ref = _reference64(*(t.cpu() for t in (q, k, v)), ks, dil, None if rpb is None else rpb.cpu())
        err = float((out.cpu().double() - ref).abs().max())
        ok = err <= TOL[dt] and bool(torch.isfinite(out).all())
        failures += not ok
        print(
            f"case {i} {shape} k{ks} dil{dil} {dt} rpb={with_rpb} packed={packed}: max abs {err:.3g} {'ok' if ok else 'FAIL'}",
            flush=True,
        )
    return 1 if failures else 0


def _child_cmd(extra: Sequence[str]) -> list[str]:
    script = REPO_ROOT / "scripts" / "gpu_verify.py"
    if script.is_file():
        return [sys.executable, str(script), *extra]
    return [sys.executable, "-m", "tsjnet_sdk.benchmarks.gpu_verify", *extra]


def section_sanitizer(ctx: Ctx) -> None:
    env = {
        **os.environ,
        "PYTORCH_NO_CUDA_MEMORY_CACHING": "1",  # else OOB inside pooled blocks is invisible
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    if ctx.runner.kernels_dir is not None:
        env["TSJNET_KERNELS_DIR"] = str(ctx.runner.kernels_dir)
    if ctx.dry_run:
        rc, text = _run_text(_child_cmd(["--sanitize-cases", "--dry-run"]), min(120.0, ctx.left() - 2), env)
        _write_text(ctx.artefact("sanitizer_dry-run.txt"), text)
        ctx.check("sanitize-cases child (no sanitizer: dry run)", PASS if rc == 0 else FAIL, f"exit {rc}", exit_code=rc)
        return
    tool = _which("compute-sanitizer")
    if tool is None:
        ctx.check("compute-sanitizer", SKIPPED, "compute-sanitizer not found (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin)")
        return
    flags = {
        "memcheck": ["--tool", "memcheck", "--leak-check", "no"],
        "racecheck": ["--tool", "racecheck", "--racecheck-report", "all"],
        "synccheck": ["--tool", "synccheck"],
    }
    for i, name in enumerate(SANITIZER_TOOLS):
        timeout = sanitizer_tool_timeout(ctx.left(), len(SANITIZER_TOOLS) - i)
        if not ctx.enough(15, f"compute-sanitizer {name}"):
            continue
        # only our kernels are checked (torch's own kernels would be slow and not ours to judge)
        cmd = [tool, *flags[name], "--kernel-name", "kns=na2d_fwd", "--error-exitcode", "9", *_child_cmd(["--sanitize-cases"])]
        rc, text = _run_text(cmd, timeout, env)
        if (
            rc != 0
            and not any(key in text for key in ("ERROR SUMMARY", "RACECHECK SUMMARY"))
            and ("kernel-name" in text or "nrecognized" in text or "nknown option" in text or "nvalid" in text)
        ):
            cmd = [c for c in cmd if c not in ("--kernel-name", "kns=na2d_fwd")]  # an older compute-sanitizer
            rc, text = _run_text(cmd, timeout, env)
        _write_text(ctx.artefact(f"sanitizer_{name}.txt"), " ".join(cmd) + "\n" + text)
        verdict, message = classify_sanitizer_run(rc, text, timeout)
        ctx.check(f"compute-sanitizer {name}", verdict, message, exit_code=rc)


def sanitizer_tool_timeout(left_s: float, tools_left: int) -> float:
    """Seconds for the next compute-sanitizer tool: an even share of what is left of the section, at most 90."""
    return min(90.0, (left_s - 3) / tools_left)


def classify_sanitizer_run(rc: int, text: str, timeout: float) -> tuple[str, str]:
    """(verdict, message) of one compute-sanitizer run from its exit code and output.

    A device the tool cannot instrument (sandboxed GPUs say "Device not supported", then error 999) is
    SKIPPED even when a summary follows: nothing was checked, so it is neither a pass nor a failure.
    """
    summary = [line for line in text.splitlines() if "ERROR SUMMARY" in line or "RACECHECK SUMMARY" in line]
    lowered = text.lower()
    if rc == 124:
        return CUT, f"timed out after {timeout:.0f} s"
    if rc != 0 and ("device not supported" in lowered or "error 999" in lowered):
        return SKIPPED, f"the tool cannot instrument this device (exit {rc}): {_last_line(text)}"
    if rc != 0 and ("unable to" in lowered or "not supported" in lowered or "permission" in lowered) and not summary:
        return SKIPPED, f"cannot attach here (exit {rc}): {_last_line(text)}"
    clean = rc == 0 and sanitizer_summary_clean(summary) if summary else rc == 0
    return (PASS if clean else FAIL), "; ".join(s.strip() for s in summary) or f"exit {rc}"


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1][:200] if text.strip() else ""


def sanitizer_summary_clean(summary: list[str]) -> bool:
    """Whether every compute-sanitizer summary line reports nothing found.

    The count right after ``SUMMARY:`` is read as a number ("ERROR SUMMARY: 0 errors", "RACECHECK SUMMARY:
    0 hazards displayed (...)"); a substring test would take "10 hazards" for "0 hazard".
    """
    counts = [re.search(r"SUMMARY:\s*(\d+)\s", line) for line in summary]
    return all(match is not None and int(match.group(1)) == 0 for match in counts)
