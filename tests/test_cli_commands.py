"""One command-line style: every user command is a `tsjnet` sub-command; `python -m` modules are thin wrappers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tsjnet_sdk.cli import app

runner = CliRunner()
MODULES = {
    "tsjnet_sdk.kernels.build": "build-kernels",
    "tsjnet_sdk.benchmarks.report": "bench-report",
    "tsjnet_sdk.benchmarks.flops": "flops",
    "tsjnet_sdk.benchmarks.bench_metrics": "bench-metrics",
    "tsjnet_sdk.training.ship": "ship",
    "tsjnet_sdk.training.plot": "plot-log",
}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_entry_points_wrap_the_subcommand(module: str) -> None:
    sub = runner.invoke(app, [MODULES[module], "--help"])
    assert sub.exit_code == 0, sub.output
    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    # One function renders both helps: the same summary line and the same options.
    def options(text: str) -> set[str]:
        return {w.strip(",.") for w in text.split() if w.startswith("--")}

    assert options(sub.output) == options(done.stdout)
    summary = " ".join(sub.output.split("[OPTIONS]")[1].split()[:4])
    assert len(summary) > 10 and summary in " ".join(done.stdout.split())


def test_shipped_code_has_no_own_argument_parsing() -> None:
    root = Path(__file__).resolve().parents[1]
    offenders = [
        str(p.relative_to(root))
        for folder in ("tsjnet_sdk", "export", "kernels", "training", "benchmarks")
        for p in (root / folder).rglob("*.py")
        if "import argparse" in p.read_text() or "sys.argv" in p.read_text()
    ]
    # The GPU verification runs from a plain checkout on a bare GPU image (standard library + torch, no
    # typer): its own parser stays; `tsjnet gpu-verify` wraps it.
    assert offenders == ["benchmarks/gpu_verify.py"]


def test_kernel_cli_lists_match_build() -> None:
    from tsjnet_sdk.kernels import build, cli

    assert cli.PROFILES == build.PROFILES and cli.TARGETS == build.TARGETS


def test_bench_report_rerenders_atomically(tmp_path: Path) -> None:
    from tsjnet_sdk.benchmarks.machine import describe_machine

    doc = {
        "schema": "tsjnet-bench/1",
        "created": "2026-12-01T00:00:00Z",
        "duration_s": 1.0,
        "machine": describe_machine(),
        "model": {"name": None},
        "settings": {"warmup": 1, "runs": 1},
        "configs": [],
        "notes": [],
    }
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    result = runner.invoke(app, ["bench-report", str(path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r.md").read_text().startswith("# tsjnet bench")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.md"]  # no temporary files left


def test_help_lists_user_commands_and_groups_developer_tools() -> None:
    from typer.testing import CliRunner

    from tsjnet_sdk.cli import DEV_COMMANDS, app

    runner = CliRunner()
    top = runner.invoke(app, ["--help"], terminal_width=200).output
    dev = runner.invoke(app, ["dev", "--help"], terminal_width=200).output
    listed = lambda text: {line.split()[1] for line in text.splitlines() if line.startswith("│ ") and len(line.split()) > 2}  # noqa: E731
    assert {"fuse", "export", "info", "doctor", "demo", "dev"} <= listed(top)
    assert not set(DEV_COMMANDS) & listed(top) and set(DEV_COMMANDS) <= listed(dev)
    # the earlier spelling still runs (unlisted)
    assert runner.invoke(app, ["bench-report", "--help"]).exit_code == 0
