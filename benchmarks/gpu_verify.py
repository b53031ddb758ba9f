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

This file is the entry point (the verifier, the sections' order, the command line); the rest lives beside it,
one job a file, standard library + torch only: ``gpu_verify_core`` (verdicts, constants, ``Section``,
``Ctx``), ``gpu_verify_helpers`` (devices, kernel, references, timing, child processes),
``gpu_verify_report`` (markdown), and one file per section: ``gpu_verify_environment``,
``gpu_verify_kernel_images``, ``gpu_verify_correctness``, ``gpu_verify_sanitizer``, ``gpu_verify_model``,
``gpu_verify_benchmark``, ``gpu_verify_deployment``. Every name defined here before that split is still
importable from here.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tsjnet_sdk import results as _results
from tsjnet_sdk.atomic import atomic_path
from tsjnet_sdk.benchmarks.gpu_verify_benchmark import (
    _benchmark_rows,
    _flex_row,
    _graph_replay,
    _host_overhead,
    _sdpa_row,
    _write_csv,
    flex_na,
    sdpa_na,
    section_benchmark,
)
from tsjnet_sdk.benchmarks.gpu_verify_core import (
    CUT,
    DEFAULT_DEADLINE_S,
    ERROR,
    FAIL,
    GATING,
    INFO,
    MAX_LOG_BYTES,
    MODEL_TOL,
    PASS,
    REPO_ROOT,
    SANITIZER_TOOLS,
    SEVERITY,
    SKIPPED,
    TOL,
    Ctx,
    LEVELS_480x640,
    Section,
    SectionTimeout,
    _jsonable,
    _one_line,
    overall_verdict,
    section_verdict,
)
from tsjnet_sdk.benchmarks.gpu_verify_correctness import (
    _case_list,
    _compare,
    _forced_image,
    _layout_cases,
    _probe_k1,
    _probe_k2,
    _ptx_vs_cubin,
    _pytest_gpu,
    section_correctness,
)
from tsjnet_sdk.benchmarks.gpu_verify_deployment import (
    _fused_tol,
    _ort_rows,
    _pair,
    _torch_reference_fused,
    _trt_row,
    section_deployment,
)
from tsjnet_sdk.benchmarks.gpu_verify_environment import (
    _copy_bandwidth,
    _dist_version,
    section_environment,
)
from tsjnet_sdk.benchmarks.gpu_verify_helpers import (
    _binding,
    _device,
    _errors,
    _inputs,
    _kernel,
    _kill_group,
    _reference64,
    _run_text,
    _sync,
    _time_ms,
    _torch_dtype,
    _which,
    _write_text,
)
from tsjnet_sdk.benchmarks.gpu_verify_kernel_images import (
    section_kernel_images,
)
from tsjnet_sdk.benchmarks.gpu_verify_model import (
    _autocast,
    _model_for,
    section_model,
)
from tsjnet_sdk.benchmarks.gpu_verify_report import (
    _machine_slug,
    render_markdown,
)
from tsjnet_sdk.benchmarks.gpu_verify_sanitizer import (
    SANITIZE_CASES,
    _child_cmd,
    _last_line,
    classify_sanitizer_run,
    sanitize_cases,
    sanitizer_summary_clean,
    sanitizer_tool_timeout,
    section_sanitizer,
)

# Re-exported: every name this module defined before the split stays importable from it.
__all__ = [
    "REPO_ROOT",
    "PASS",
    "FAIL",
    "ERROR",
    "SKIPPED",
    "INFO",
    "CUT",
    "SEVERITY",
    "GATING",
    "TOL",
    "MODEL_TOL",
    "LEVELS_480x640",
    "DEFAULT_DEADLINE_S",
    "SANITIZER_TOOLS",
    "MAX_LOG_BYTES",
    "SectionTimeout",
    "Section",
    "Ctx",
    "_one_line",
    "_jsonable",
    "section_verdict",
    "overall_verdict",
    "Verifier",
    "_alarm",
    "render_markdown",
    "_machine_slug",
    "_device",
    "_binding",
    "_kernel",
    "_reference64",
    "_sync",
    "_errors",
    "_inputs",
    "_torch_dtype",
    "_time_ms",
    "_which",
    "_run_text",
    "_kill_group",
    "_write_text",
    "section_environment",
    "_dist_version",
    "_copy_bandwidth",
    "section_kernel_images",
    "_compare",
    "_case_list",
    "section_correctness",
    "_pytest_gpu",
    "_layout_cases",
    "_probe_k1",
    "_probe_k2",
    "_forced_image",
    "_ptx_vs_cubin",
    "SANITIZE_CASES",
    "sanitize_cases",
    "_child_cmd",
    "section_sanitizer",
    "sanitizer_tool_timeout",
    "classify_sanitizer_run",
    "_last_line",
    "sanitizer_summary_clean",
    "section_model",
    "_model_for",
    "_autocast",
    "flex_na",
    "sdpa_na",
    "section_benchmark",
    "_benchmark_rows",
    "_sdpa_row",
    "_flex_row",
    "_host_overhead",
    "_graph_replay",
    "_write_csv",
    "section_deployment",
    "_pair",
    "_fused_tol",
    "_torch_reference_fused",
    "_ort_rows",
    "_trt_row",
    "default_sections",
    "run",
    "build_parser",
    "main",
]


# ---------------------------------------------------------------------------------------------------
# Run bookkeeping: sections under a deadline, the JSON + markdown rewritten after each
# ---------------------------------------------------------------------------------------------------
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
