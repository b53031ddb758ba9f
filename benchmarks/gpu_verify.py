"""One GPU verification run: everything GPU-side of the SDK checked in one go (at most ~8 minutes).

    python scripts/gpu_verify.py [--out DIR] [--kernels-dir DIR] [--deadline 450] [--only a,b] [--dry-run]
    tsjnet gpu-verify ...                      (same options)

Sections, in order, each with a time budget (a section that would overrun is cut off and marked
``cut``; the others still run). Budgets are caps; the whole run also stops at ``--deadline`` seconds:

  ``environment``   GPU, driver, versions, kernel, gVisor/Firecracker; measured device copy bandwidth.
  ``kernel_images`` every (dtype, k, head_dim) instance has an image for this GPU (prebuilt from
                    ``--kernels-dir``/``$TSJNET_KERNELS_DIR``, else compiled once with nvcc); per TSJNet
                    entry point: image kind, registers, local memory, static smem, blocks per SM.
  ``correctness``   tests/test_kernels_gpu.py (pytest), then the kernel against a float64 reference on
                    every compiled instance, TSJNet's level shapes at 480x640 (B 1 and 2; fp32, and fp16
                    q/k/v with an fp32 rpb), dilation with groups smaller than the window, 1x1 maps,
                    packed-qkv views, a misaligned and a permuted input, B*heads = 65535, the K1/K2
                    non-finite probes, and the PTX (driver JIT) path against the cubin.
  ``sanitizer``     compute-sanitizer memcheck / racecheck / synccheck over ``--sanitize-cases`` (a
                    child process), when compute-sanitizer is present and allowed to attach.
  ``model``         tsjnet (random init) and tsjnet-edge (shipped weights) at 1x1x480x640, eager fp32 and
                    fp16 autocast, NA by the reference vs by the kernel: latency and output difference.
  ``benchmark``     the kernel vs the PyTorch reference vs a compiled ``flex_attention`` NA mask (and a
                    dense-mask SDPA at the smallest level) at TSJNet's shapes, B 1 and batched; host
                    overhead per call; a CUDA-graph replay of 54 calls.
  ``deployment``    where installed: ONNX Runtime's CUDA / TensorRT providers and TensorRT engines
                    (decomposed and plugin NA) against torch.

Output (``--out``, default benchmarks/results/): ``gpu_verify_<machine>.json`` (all results, a verdict
per check and per section, an overall verdict) and ``gpu_verify_<machine>.md``, both rewritten
atomically after every section, plus ``gpu_verify_<machine>_pytest.txt``, ``..._sanitizer_<tool>.txt``
and ``..._bench.csv``.

Verdicts: ``pass`` / ``fail`` (a check's criterion), ``error`` (the check or section raised; the message
is recorded), ``skipped`` (not applicable here, with the reason), ``info`` (a measurement only), ``cut``
(time budget). A section's verdict is its worst check. ``gate`` is ``pass`` only when every *gating*
section (kernel_images, correctness, sanitizer, model) passed (the sanitizer may be ``skipped`` when the
tool is absent or cannot attach, which the report says); that is the condition for lifting the opt-in
gate of ``auto`` (``TSJNET_NA_KERNEL=cuda``, see tsjnet_sdk/ops/neighborhood_attention.py), and the exit
code is 0 only then. ``overall`` is stricter: also no fail/error in benchmark or deployment.

``--dry-run`` runs the same plumbing on the CPU (tiny shapes; the reference stands in for the kernel,
no compute-sanitizer, no compile) so that the test suite can check sections, budgets, verdicts and the
written files without a GPU. A dry run verifies nothing about the GPU and says so in its report.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as _dt
import io
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsjnet_sdk import results as _results
from tsjnet_sdk.atomic import atomic_path
from tsjnet_sdk.shipped import SHIPPED_WEIGHTS

# The script runs from a source checkout (it runs tests/ and scripts/ from there); an installed package
# without one looks in the working directory.
REPO_ROOT = _results.REPO_ROOT or Path.cwd()

PASS, FAIL, ERROR, SKIPPED, INFO, CUT = "pass", "fail", "error", "skipped", "info", "cut"
#: worst first: a section's verdict is the first of these that any of its checks has
SEVERITY = (FAIL, ERROR, CUT, PASS, INFO, SKIPPED)
#: sections whose pass is required to lift the opt-in gate of ``auto``
GATING = ("kernel_images", "correctness", "sanitizer", "model")
TOL = {"f32": 1e-4, "f16": 2e-2}
MODEL_TOL = {"fp32": 1e-3, "fp16": 1e-2}
#: TSJNet's NAT levels for a 480 x 640 frame: (H, W, heads), head_dim 32, kernel 7, rpb
LEVELS_480x640 = ((120, 160, 2), (60, 80, 4), (30, 40, 8), (15, 20, 16))
DEFAULT_DEADLINE_S = 450.0
SANITIZER_TOOLS = ("memcheck", "racecheck", "synccheck")
MAX_LOG_BYTES = 200_000


class SectionTimeout(Exception):
    """Raised (by SIGALRM) inside a section that ran past its budget."""


# ---------------------------------------------------------------------------------------------------
# Run bookkeeping
# ---------------------------------------------------------------------------------------------------
@dataclass
class Section:
    """One section: ``fn(ctx)`` records checks through ``ctx``; ``budget_s`` caps its wall time."""

    name: str
    budget_s: float
    fn: Callable[[Ctx], None]
    title: str = ""


@dataclass
class Ctx:
    """What a section sees: options, its own record, its time left, and ``check``/``data``/``log``."""

    runner: Verifier
    record: dict[str, Any]
    ends_at: float

    @property
    def dry_run(self) -> bool:
        return self.runner.dry_run

    @property
    def out_dir(self) -> Path:
        return self.runner.out_dir

    def left(self) -> float:
        """Seconds left in this section's budget."""
        return self.ends_at - time.monotonic()

    def enough(self, seconds: float, what: str) -> bool:
        """False (and a ``cut`` check for ``what``) when fewer than ``seconds`` remain."""
        if self.left() >= seconds:
            return True
        self.check(what, CUT, f"not started: {self.left():.0f} s left in the section's budget, ~{seconds:.0f} s needed")
        return False

    def check(self, name: str, verdict: str, message: str = "", **data: Any) -> dict[str, Any]:
        """Record one check (verdict one of pass/fail/error/skipped/info/cut) with its measured data."""
        if verdict not in SEVERITY:
            raise ValueError(f"unknown verdict {verdict!r}")
        entry = {"name": name, "verdict": verdict, "message": message, **_jsonable(data)}
        self.record["checks"].append(entry)
        self.log(f"  [{verdict:>7}] {name}{': ' + message if message else ''}")
        return entry

    def attempt(self, name: str, fn: Callable[[], None]) -> None:
        """Run ``fn``; an exception becomes an ``error`` check named ``name`` (the section goes on).

        A :class:`SectionTimeout` is not caught: the budget ends the whole section.
        """
        try:
            fn()
        except SectionTimeout:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded as the check's verdict
            self.check(name, ERROR, _one_line(exc), traceback=traceback.format_exc(limit=6)[-2000:])

    def data(self, key: str, value: Any) -> None:
        self.record["data"][key] = _jsonable(value)

    def log(self, line: str) -> None:
        self.runner.log(line)

    def artefact(self, suffix: str) -> Path:
        """Path of a side file of this run (``<stem>_<suffix>`` in the output folder)."""
        return self.out_dir / f"{self.runner.stem}_{suffix}"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


def _jsonable(value: Any) -> Any:
    """Plain JSON values (non-finite floats as None; tuples as lists; unknown objects as str)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    try:
        number = float(value)  # numpy / torch scalars
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else None


def section_verdict(checks: Sequence[dict[str, Any]]) -> str:
    """The worst verdict among ``checks`` (``skipped`` when there are none)."""
    found = {c["verdict"] for c in checks}
    for verdict in SEVERITY:
        if verdict in found:
            return verdict
    return SKIPPED


def overall_verdict(sections: dict[str, dict[str, Any]], dry_run: bool, gating_only: bool = False) -> str:
    """``pass`` only if every gating section passed (sanitizer may be skipped) and, unless ``gating_only``,
    no other section failed or errored; else fail / error / incomplete."""
    verdicts = {name: s["verdict"] for name, s in sections.items() if not gating_only or name in GATING}
    if any(v == FAIL for v in verdicts.values()):
        return FAIL
    if any(v == ERROR for v in verdicts.values()):
        return ERROR
    for name in GATING:
        v = verdicts.get(name)
        if v == PASS or (name == "sanitizer" and v == SKIPPED):
            continue
        return "incomplete"
    return PASS


class Verifier:
    """Runs sections under a global deadline and writes the JSON + markdown after each one."""

    def __init__(
        self,
        out_dir: str | os.PathLike | None = None,
        *,
        deadline_s: float = DEFAULT_DEADLINE_S,
        dry_run: bool = False,
        kernels_dir: str | os.PathLike | None = None,
        sections: Sequence[Section] | None = None,
        only: Sequence[str] | None = None,
        stem: str | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.out_dir = Path(out_dir) if out_dir is not None else _results.results_dir("gpu_verify", "benchmarks/results")
        self.deadline_s = float(deadline_s)
        self.dry_run = dry_run
        self.kernels_dir = Path(kernels_dir).resolve() if kernels_dir is not None else None
        self.sections = list(sections) if sections is not None else default_sections()
        names = [s.name for s in self.sections]
        if only:
            unknown = sorted(set(only) - set(names))
            if unknown:
                raise ValueError(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(names)}")
            self.sections = [s for s in self.sections if s.name in only]
        self._print = log or (lambda line: print(line, flush=True))
        self.stem = stem or f"gpu_verify_{'dry-run' if dry_run else _machine_slug()}"
        self.shared: dict[str, Any] = {}  # results one section hands to a later one (e.g. copy bandwidth)
        self.report: dict[str, Any] = {}

    def log(self, line: str) -> None:
        self._print(line)

    @property
    def json_path(self) -> Path:
        return self.out_dir / f"{self.stem}.json"

    @property
    def md_path(self) -> Path:
        return self.out_dir / f"{self.stem}.md"

    def run(self) -> dict[str, Any]:
        """Run every section; returns the report (also written to :attr:`json_path` / :attr:`md_path`)."""
        if self.kernels_dir is not None:
            os.environ["TSJNET_KERNELS_DIR"] = str(self.kernels_dir)  # read by kernels/build.default_out_dir
        started = time.monotonic()
        self.report = {
            "tool": "tsjnet gpu-verify",
            "format": 1,
            "dry_run": self.dry_run,
            "started_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "deadline_s": self.deadline_s,
            "kernels_dir": str(self.kernels_dir) if self.kernels_dir else None,
            "argv": sys.argv,
            "sections": {},
            "overall": "incomplete",
        }
        try:
            from tsjnet_sdk._version import __version__

            self.report["sdk_version"] = __version__
        except ImportError:  # pragma: no cover - the package is importable whenever this module is
            pass
        for section in self.sections:
            record = {
                "title": section.title,
                "verdict": SKIPPED,
                "budget_s": section.budget_s,
                "elapsed_s": 0.0,
                "cut_off": False,
                "error": None,
                "checks": [],
                "data": {},
            }
            self.report["sections"][section.name] = record
            left_total = self.deadline_s - (time.monotonic() - started)
            budget = min(section.budget_s, left_total - 2.0)  # 2 s kept for the final write
            if budget < 1.0:
                record.update(verdict=CUT, cut_off=True, error="not started: the run's deadline was reached")
                self.log(f"== {section.name}: not started (deadline)")
                self._write(started)
                continue
            self.log(f"== {section.name} (budget {budget:.0f} s)")
            self._run_section(section, record, budget)
            self.log(f"== {section.name}: {record['verdict']} in {record['elapsed_s']:.1f} s")
            self._write(started)
        self._write(started, final=True)
        return self.report

    def _run_section(self, section: Section, record: dict[str, Any], budget: float) -> None:
        t0 = time.monotonic()
        ctx = Ctx(self, record, t0 + budget)
        with _alarm(budget):
            try:
                section.fn(ctx)
            except SectionTimeout:
                record["cut_off"] = True
                record["error"] = f"cut off after its budget of {budget:.0f} s"
                ctx.check("time budget", CUT, record["error"])
            except Exception as exc:  # noqa: BLE001 - one section's failure never stops the run
                record["error"] = _one_line(exc)
                ctx.check("section", ERROR, record["error"], traceback=traceback.format_exc(limit=8)[-3000:])
        record["elapsed_s"] = round(time.monotonic() - t0, 2)
        record["verdict"] = section_verdict(record["checks"])

    def _write(self, started: float, final: bool = False) -> None:
        self.report["elapsed_s"] = round(time.monotonic() - started, 1)
        self.report["finished"] = final
        self.report["overall"] = overall_verdict(self.report["sections"], self.dry_run)
        # what lifting the opt-in gate of `auto` needs: the gating sections alone
        self.report["gate"] = overall_verdict(self.report["sections"], self.dry_run, gating_only=True)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.json_path) as tmp:
            tmp.write_text(json.dumps(_jsonable(self.report), indent=1))
        with atomic_path(self.md_path) as tmp:
            tmp.write_text(render_markdown(self.report))


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """Raise SectionTimeout in the main thread after ``seconds`` (no-op off the main thread / without SIGALRM)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def fire(signum: int, frame: Any) -> None:
        raise SectionTimeout()

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def render_markdown(report: dict[str, Any]) -> str:
    """A short human summary: overall verdict, one row per section, the checks that did not pass."""
    lines = [f"# GPU verification: **{report['overall']}** (gate sections: **{report.get('gate')}**)", ""]
    if report.get("dry_run"):
        lines += ["> DRY RUN on the CPU: the plumbing ran; nothing about the GPU was verified.", ""]
    env = report["sections"].get("environment", {}).get("data", {})
    if env.get("gpu"):
        lines.append(
            f"GPU: {env['gpu'].get('name')} (sm_{env['gpu'].get('cc')}), driver {env.get('driver', '?')}, "
            f"torch {env.get('versions', {}).get('torch', '?')}"
        )
    if env.get("copy_bandwidth_gbs"):
        lines.append(f"Measured copy bandwidth: {env['copy_bandwidth_gbs']:.0f} GB/s")
    lines += [
        f"Started {report.get('started_utc')}, {report.get('elapsed_s')} s of a {report.get('deadline_s')} s deadline.",
        "",
        "| section | verdict | s | checks (pass/fail/error/skip/cut) | note |",
        "|---|---|---|---|---|",
    ]
    for name, sec in report["sections"].items():
        counts = {v: sum(c["verdict"] == v for c in sec["checks"]) for v in SEVERITY}
        lines.append(
            f"| {name} | {sec['verdict']} | {sec['elapsed_s']} | {counts[PASS]}/{counts[FAIL]}/{counts[ERROR]}/"
            f"{counts[SKIPPED]}/{counts[CUT]} | {(sec.get('error') or '')[:120]} |"
        )
    bad = [(n, c) for n, s in report["sections"].items() for c in s["checks"] if c["verdict"] in (FAIL, ERROR, CUT)]
    if bad:
        lines += ["", "## Not passing", ""]
        lines += [f"* {n} / {c['name']}: **{c['verdict']}** {c.get('message', '')[:300]}" for n, c in bad[:40]]
    tables = (
        (
            "benchmark",
            "NA timings (median us, L2 flushed)",
            (
                ("shape", "shape"),
                ("dtype", "dtype"),
                ("backend", "backend"),
                ("us", "us"),
                ("GB/s", "gbs"),
                ("% copy bw", "pct_copy_bw"),
            ),
        ),
        (
            "model",
            "Whole model (1x1x480x640)",
            (
                ("model", "model"),
                ("precision", "precision"),
                ("NA", "na"),
                ("ms", "ms"),
                ("max abs diff vs reference NA", "max_abs_diff"),
                ("kernel calls", "kernel_calls"),
            ),
        ),
    )
    for section, title, columns in tables:
        rows = report["sections"].get(section, {}).get("data", {}).get("rows", [])
        if rows:
            lines += ["", f"## {title}", "", "| " + " | ".join(h for h, _ in columns) + " |", "|---" * len(columns) + "|"]
            lines += ["| " + " | ".join(str(row.get(key, "")) for _, key in columns) + " |" for row in rows]
    lines += ["", f"Gate: `auto` may use the CUDA kernel once `gate` is pass (sections {', '.join(GATING)}).", ""]
    return "\n".join(lines)


def _machine_slug() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            name = torch.cuda.get_device_name(0)
        else:
            name = platform.node() or "cpu"
    except Exception:  # noqa: BLE001
        name = platform.node() or "machine"
    slug = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return slug[:40] or "machine"


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


# ---------------------------------------------------------------------------------------------------
# Section 1: kernel images
# ---------------------------------------------------------------------------------------------------
def section_kernel_images(ctx: Ctx) -> None:
    from tsjnet_sdk.kernels import build, spec

    out = build.default_out_dir()
    ctx.data("kernels_dir", str(out))
    ctx.data("source_hash", build.source_hash())
    manifest = out / "manifest.json"
    if manifest.is_file():
        with contextlib.suppress(ValueError, OSError):
            m = json.loads(manifest.read_text())
            ctx.data("manifest", {k: m.get(k) for k in ("profile", "source_hash", "nvcc", "targets", "seconds_total")})
    if ctx.dry_run:
        cc = (9, 0)
        found = {i: build.find_image(cc, i, out) for i in spec.TSJNET_INSTANCES}
        ctx.check(
            "image lookup",
            INFO,
            f"dry run: sm_90 images found for {sum(v is not None for v in found.values())}"
            f"/{len(found)} TSJNet instances in {out}",
        )
        ctx.check("images for every instance", SKIPPED, "dry run: no GPU")
        return
    import torch

    device = _device(ctx)
    cc = torch.cuda.get_device_capability(device)
    target = f"sm_{cc[0]}{cc[1]}"
    missing = [i for i in spec.FULL_MATRIX if build.find_image(cc, i, out) is None]
    if missing:
        if build.find_nvcc() is None:
            ctx.check(
                "images for every instance",
                FAIL,
                f"{len(missing)} instances have no image for {target} in {out} "
                "and nvcc is absent: pass --kernels-dir with a full build",
            )
        elif ctx.enough(40, "compile missing instances"):
            t0 = time.monotonic()
            build.compile_module(out, target, missing, name="na2d_verify")
            ctx.data("compiled", {"target": target, "instances": len(missing), "seconds": time.monotonic() - t0})
            missing = [i for i in spec.FULL_MATRIX if build.find_image(cc, i, out) is None]
    if not missing:
        kinds = {"{}_k{}_d{}".format(*i): build.find_image(cc, i, out)[1] for i in spec.FULL_MATRIX}  # type: ignore[index]
        ctx.data("image_kinds", kinds)
        ctx.check(
            "images for every instance",
            PASS,
            f"{len(kinds)} instances: "
            f"{sum(k == 'cubin' for k in kinds.values())} cubin, {sum(k == 'ptx' for k in kinds.values())} ptx",
        )
    tb = _binding()
    driver = tb._driver()
    attrs = {}
    for dtype, ks, d in spec.TSJNET_INSTANCES:
        for rpb in (False, True):
            name = spec.entry_name(dtype, ks, d, rpb)

            def one(name: str = name, dtype: str = dtype, ks: int = ks, d: int = d, rpb: bool = rpb) -> None:
                fn = tb._function(device.index, dtype, ks, d, rpb)
                a = driver.CUfunction_attribute
                get = lambda attr: tb._check(driver, driver.cuFuncGetAttribute(attr, fn), "cuFuncGetAttribute")  # noqa: E731
                threads = spec.kernel_config(dtype, ks, d).threads
                occ = tb._check(
                    driver,
                    driver.cuOccupancyMaxActiveBlocksPerMultiprocessor(fn, threads, 0),
                    "cuOccupancyMaxActiveBlocksPerMultiprocessor",
                )
                attrs[name] = {
                    "registers": get(a.CU_FUNC_ATTRIBUTE_NUM_REGS),
                    "local_bytes": get(a.CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES),
                    "static_smem": get(a.CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES),
                    "threads": threads,
                    "blocks_per_sm": occ,
                    "image": build.find_image(cc, (dtype, ks, d), out)[1],
                }  # type: ignore[index]
                ok = attrs[name]["local_bytes"] == 0 and occ >= 1
                ctx.check(f"load {name}", PASS if ok else FAIL, f"{attrs[name]}")

            ctx.attempt(f"load {name}", one)
    ctx.data("entry_attributes", attrs)


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


# ---------------------------------------------------------------------------------------------------
# Section 6: deployment runtimes (ONNX Runtime GPU providers, TensorRT engines), where installed
# ---------------------------------------------------------------------------------------------------
def section_deployment(ctx: Ctx) -> None:
    try:
        import onnxruntime as ort

        providers = ort.get_available_providers()
    except ImportError:
        providers = []
    ctx.data("onnxruntime_providers", providers)
    gpu_eps = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in providers]
    trt = None
    for name in ("tensorrt",):
        with contextlib.suppress(ImportError):
            trt = __import__(name)
    ctx.data("tensorrt", getattr(trt, "__version__", None))
    if ctx.dry_run:
        ctx.check("onnxruntime gpu providers", SKIPPED, f"dry run (available here: {', '.join(providers) or 'none'})")
        ctx.check("tensorrt engines", SKIPPED, f"dry run (tensorrt {'present' if trt else 'absent'})")
        return
    if not gpu_eps and trt is None:
        ctx.check("onnxruntime gpu providers", SKIPPED, f"none installed (available: {', '.join(providers) or 'no onnxruntime'})")
        ctx.check("tensorrt engines", SKIPPED, "tensorrt not installed")
        return
    tmp = ctx.out_dir / f"{ctx.runner.stem}_deploy_tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        weights = SHIPPED_WEIGHTS
        reference = _torch_reference_fused(weights)
        if gpu_eps:
            ctx.attempt("onnxruntime gpu providers", lambda: _ort_rows(ctx, weights, tmp, gpu_eps, reference))
        else:
            ctx.check("onnxruntime gpu providers", SKIPPED, f"not installed (available: {', '.join(providers)})")
        if trt is None:
            ctx.check("tensorrt engines", SKIPPED, "tensorrt not installed")
        else:
            for na in ("decomposed", "plugin"):
                if ctx.enough(40, f"tensorrt engine na={na}"):
                    ctx.attempt(f"tensorrt engine na={na}", lambda na=na: _trt_row(ctx, weights, tmp, na, reference))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _pair() -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(1)
    return (rng.random((480, 640), dtype=np.float32), rng.random((480, 640), dtype=np.float32))


def _fused_tol(out: Any) -> float:
    """Allowed max abs difference of a Fuser output against torch: 2 grey levels for uint8, else 1e-2."""
    return 2.0 if str(out.dtype) == "uint8" else 1e-2


def _torch_reference_fused(weights: Path) -> Any:
    from tsjnet_sdk.runtime import Fuser

    ir, vis = _pair()
    with contextlib.suppress(Exception):
        from tsjnet_sdk.ops import na_backend

        with na_backend("reference"):
            return Fuser(weights, backend="torch", device="cuda").fuse(ir, vis)
    return Fuser(weights, backend="torch").fuse(ir, vis)


def _ort_rows(ctx: Ctx, weights: Path, tmp: Path, eps: list[str], reference: Any) -> None:
    import numpy as np

    from tsjnet_sdk.export.onnx_export import export_onnx
    from tsjnet_sdk.runtime import Fuser

    onnx_path = tmp / "edge.onnx"
    export_onnx(weights, onnx_path, na="decomposed", parity=False)
    ir, vis = _pair()
    for ep in eps:
        fuser = Fuser(onnx_path, backend="onnxruntime", device="cuda")
        out = fuser.fuse(ir, vis)
        t0 = time.perf_counter()
        for _ in range(5):
            fuser.fuse(ir, vis)
        ms = (time.perf_counter() - t0) / 5 * 1e3
        diff = float(np.abs(out.astype(np.float64) - reference.astype(np.float64)).max())
        ctx.check(
            f"onnxruntime {ep}",
            PASS if diff <= _fused_tol(out) else FAIL,
            f"max abs diff vs torch {diff:.3g} (output scale of the Fuser), {ms:.1f} ms per fuse incl. I/O",
            max_abs=diff,
            ms=ms,
        )


def _trt_row(ctx: Ctx, weights: Path, tmp: Path, na: str, reference: Any) -> None:
    import numpy as np

    from tsjnet_sdk.runtime import Fuser

    engine = tmp / f"edge_{na}.engine"
    rc, text = _run_text(
        [
            sys.executable,
            "-m",
            "tsjnet_sdk.cli",
            "export",
            str(weights),
            "--format",
            "engine",
            "--na",
            na,
            "-o",
            str(engine),
            "--no-parity",
            "--max",
            "480",
            "640",
        ],
        ctx.left() - 10,
    )
    if rc != 0:
        ctx.check(
            f"tensorrt engine na={na}",
            FAIL if na == "decomposed" else SKIPPED,
            f"export exit {rc}: {text.strip().splitlines()[-1][:300] if text.strip() else ''}",
        )
        return
    ir, vis = _pair()
    fuser = Fuser(engine, backend="tensorrt")
    out = fuser.fuse(ir, vis)
    diff = float(np.abs(out.astype(np.float64) - reference.astype(np.float64)).max())
    ctx.check(
        f"tensorrt engine na={na}", PASS if diff <= _fused_tol(out) else FAIL, f"max abs diff vs torch {diff:.3g}", max_abs=diff
    )


# ---------------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------------
def default_sections() -> list[Section]:
    """The sections in run order (gating ones first, so that a short deadline cuts the benchmarks)."""
    return [
        Section("environment", 30, section_environment, "GPU, driver, versions, copy bandwidth"),
        Section("kernel_images", 90, section_kernel_images, "an image per instance; registers, smem, occupancy"),
        Section("correctness", 100, section_correctness, "kernel vs float64 reference; PTX vs cubin"),
        Section("sanitizer", 190, section_sanitizer, "compute-sanitizer memcheck / racecheck / synccheck"),
        Section("model", 90, section_model, "tsjnet / tsjnet-edge with reference NA vs the kernel"),
        Section("benchmark", 90, section_benchmark, "kernel vs reference vs flex_attention; host overhead; graphs"),
        Section("deployment", 60, section_deployment, "onnxruntime GPU providers, TensorRT engines"),
    ]


def run(
    out_dir: str | os.PathLike | None = None,
    *,
    deadline_s: float = DEFAULT_DEADLINE_S,
    dry_run: bool = False,
    kernels_dir: str | os.PathLike | None = None,
    only: Sequence[str] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the verification; returns the report dict (written as JSON + markdown into ``out_dir``)."""
    verifier = Verifier(out_dir, deadline_s=deadline_s, dry_run=dry_run, kernels_dir=kernels_dir, only=only, log=log)
    report = verifier.run()
    verifier.log(f"overall: {report['overall']}, gate: {report['gate']} -> {verifier.json_path}, {verifier.md_path}")
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpu_verify", description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: benchmarks/results)")
    parser.add_argument(
        "--kernels-dir",
        type=Path,
        default=None,
        help="prebuilt kernel folder (python -m tsjnet_sdk.kernels.build --out DIR); else "
        "$TSJNET_KERNELS_DIR or the default cache, compiled with nvcc if missing",
    )
    parser.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE_S, help="whole-run limit in seconds")
    parser.add_argument("--only", default=None, help="comma-separated section names")
    parser.add_argument("--dry-run", action="store_true", help="CPU only: exercise the plumbing, verify nothing")
    parser.add_argument("--sanitize-cases", action="store_true", help=argparse.SUPPRESS)  # the sanitizer's child
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.kernels_dir is not None:
        os.environ["TSJNET_KERNELS_DIR"] = str(args.kernels_dir.resolve())
    if args.sanitize_cases:
        return sanitize_cases(dry_run=args.dry_run)
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    try:
        report = run(args.out, deadline_s=args.deadline, dry_run=args.dry_run, kernels_dir=args.kernels_dir, only=only)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if report["gate"] == PASS or args.dry_run else 1


if __name__ == "__main__":
    sys.exit(main())
