"""Run bookkeeping of the GPU verification (benchmarks/gpu_verify.py): verdicts, constants, sections, the
context a section records its checks through.

Split out of benchmarks/gpu_verify.py (the entry point); see its docstring for the whole run.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsjnet_sdk import results as _results

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

    runner: Verifier  # noqa: F821 - gpu_verify.Verifier, not imported here (it imports this module)
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
