"""scripts/gpu_verify.py / tsjnet_sdk.benchmarks.gpu_verify without a GPU: sections, budgets, verdicts,
the written JSON + markdown, and (slow) the whole ``--dry-run`` on the CPU.

The GPU checks themselves only run on a GPU machine (see kernels/README.md, "GPU verification").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tsjnet_sdk.benchmarks import gpu_verify as gv

REPO = Path(__file__).resolve().parents[1]


def _sections(record: list[str]) -> list[gv.Section]:
    def ok(ctx: gv.Ctx) -> None:
        record.append("ok")
        ctx.check("a passing check", gv.PASS, "fine", value=1.5)
        ctx.check("a measurement", gv.INFO, "", nan=float("nan"))

    def slow(ctx: gv.Ctx) -> None:
        ctx.check("before the hang", gv.PASS)
        time.sleep(30)  # the budget (1 s) must cut this off
        record.append("slow finished")

    def broken(ctx: gv.Ctx) -> None:
        ctx.attempt("one case", lambda: 1 / 0)  # recorded as an error, the section goes on
        ctx.check("after the error", gv.PASS)
        raise RuntimeError("the whole section fell over")

    def failing(ctx: gv.Ctx) -> None:
        record.append("failing ran")
        ctx.check("a wrong number", gv.FAIL, "max abs 0.5 > 1e-4")

    return [
        gv.Section("environment", 10, ok),
        gv.Section("correctness", 1, slow),
        gv.Section("sanitizer", 10, broken),
        gv.Section("model", 10, failing),
    ]


def test_a_slow_or_broken_section_does_not_stop_the_others(tmp_path):
    record: list[str] = []
    runner = gv.Verifier(tmp_path, sections=_sections(record), stem="t", log=lambda line: None)
    t0 = time.monotonic()
    report = runner.run()
    assert time.monotonic() - t0 < 10, "the slow section was not cut off at its budget"
    assert record == ["ok", "failing ran"]
    sec = report["sections"]
    assert [sec[n]["verdict"] for n in ("environment", "correctness", "sanitizer", "model")] == [
        gv.PASS,
        gv.CUT,
        gv.ERROR,
        gv.FAIL,
    ]
    assert sec["correctness"]["cut_off"] and "budget" in sec["correctness"]["error"]
    assert [c["verdict"] for c in sec["sanitizer"]["checks"]] == [gv.ERROR, gv.PASS, gv.ERROR]
    assert "ZeroDivisionError" in sec["sanitizer"]["checks"][0]["message"]
    assert "the whole section fell over" in sec["sanitizer"]["error"]
    assert report["overall"] == gv.FAIL and report["gate"] == gv.FAIL and report["finished"] is True
    # written atomically: exactly the two files, valid JSON (NaN became null), markdown naming the failures
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json", "t.md"]
    on_disk = json.loads((tmp_path / "t.json").read_text())
    assert on_disk["sections"]["environment"]["checks"][1]["nan"] is None
    md = (tmp_path / "t.md").read_text()
    assert "**fail**" in md and "a wrong number" in md and "| correctness | cut |" in md


def test_the_run_deadline_leaves_later_sections_not_started(tmp_path):
    def sleepy(ctx: gv.Ctx) -> None:
        time.sleep(10)

    sections = [gv.Section("environment", 60, sleepy), gv.Section("correctness", 60, lambda ctx: None)]
    report = gv.Verifier(tmp_path, sections=sections, deadline_s=4, stem="t", log=lambda line: None).run()
    assert report["sections"]["environment"]["verdict"] == gv.CUT
    assert report["sections"]["correctness"]["verdict"] == gv.CUT
    assert "deadline" in report["sections"]["correctness"]["error"]
    assert report["overall"] == "incomplete"


def test_overall_verdict_needs_every_gating_section():
    passing = {name: {"verdict": gv.PASS} for name in gv.GATING}
    assert gv.overall_verdict(passing, dry_run=False) == gv.PASS
    assert gv.overall_verdict({**passing, "sanitizer": {"verdict": gv.SKIPPED}}, False) == gv.PASS  # tool absent
    assert gv.overall_verdict({**passing, "model": {"verdict": gv.SKIPPED}}, False) == "incomplete"
    assert gv.overall_verdict({**passing, "benchmark": {"verdict": gv.ERROR}}, False) == gv.ERROR
    assert gv.overall_verdict({**passing, "benchmark": {"verdict": gv.FAIL}}, False, gating_only=True) == gv.PASS
    assert gv.overall_verdict({**passing, "correctness": {"verdict": gv.CUT}}, False) == "incomplete"
    assert gv.section_verdict([{"verdict": gv.INFO}, {"verdict": gv.PASS}]) == gv.PASS
    assert gv.section_verdict([{"verdict": gv.SKIPPED}]) == gv.SKIPPED
    assert gv.section_verdict([]) == gv.SKIPPED


def test_unknown_section_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown section.*nonsense.*choose from"):
        gv.Verifier(tmp_path, only=["nonsense"], stem="t")


def test_dense_mask_na_matches_the_reference():
    """sdpa_na (one of the benchmark's baselines) implements the same window rule, incl. maps < window."""
    torch = pytest.importorskip("torch")
    from tsjnet_sdk.ops._na_reference import neighborhood_attention_2d_reference

    g = torch.Generator().manual_seed(0)
    for shape in ((1, 9, 11, 2, 8), (2, 5, 4, 1, 8)):
        q, k, v = (torch.randn(shape, generator=g) for _ in range(3))
        rpb = torch.randn(shape[3], 13, 13, generator=g)
        err = (gv.sdpa_na(q, k, v, 7, rpb) - neighborhood_attention_2d_reference(q, k, v, 7, 1, rpb)).abs().max()
        assert err < 1e-5


def test_script_runs_from_a_plain_checkout(tmp_path):
    """scripts/gpu_verify.py needs no install: it imports this checkout's package (no torch for --help)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gpu_verify.py"), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "--kernels-dir" in done.stdout and "--dry-run" in done.stdout and "--deadline" in done.stdout


@pytest.mark.slow
def test_dry_run_end_to_end(tmp_path):
    """Every real section in its --dry-run form on the CPU: nothing errors, the files are written."""
    pytest.importorskip("torch")
    report = gv.run(tmp_path, dry_run=True, log=lambda line: None)
    assert list(report["sections"]) == [s.name for s in gv.default_sections()]
    for name, sec in report["sections"].items():
        assert sec["verdict"] in (gv.PASS, gv.INFO, gv.SKIPPED), (name, sec["error"], sec["checks"])
    checks = {c["name"] for sec in report["sections"].values() for c in sec["checks"]}
    assert {
        "K1 inf in V outside a window f32",
        "K2 window row all -inf f16",
        "sanitize-cases child (no sanitizer: dry run)",
        "tsjnet-tiny fp32: kernel vs reference NA",
    } <= checks
    assert any(name.startswith("flex_attention NA agrees") for name in checks)
    assert report["overall"] == "incomplete"  # a dry run can never lift the gate
    stem = "gpu_verify_dry-run"
    for suffix in (".json", ".md", "_bench.csv", "_sanitizer_dry-run.txt"):
        assert (tmp_path / f"{stem}{suffix}").is_file(), suffix
    assert "DRY RUN" in (tmp_path / f"{stem}.md").read_text()
    assert json.loads((tmp_path / f"{stem}.json").read_text())["dry_run"] is True


def test_cli_subcommand_passes_options_through(tmp_path):
    from typer.testing import CliRunner

    from tsjnet_sdk.cli import app

    result = CliRunner().invoke(app, ["gpu-verify", "--only", "nonsense", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert not list(tmp_path.iterdir())  # refused before anything ran or was written


@pytest.mark.parametrize(
    "line,clean",
    [
        ("========= ERROR SUMMARY: 0 errors", True),
        ("========= ERROR SUMMARY: 10 errors", False),
        ("========= RACECHECK SUMMARY: 0 hazards displayed (0 errors, 0 warnings)", True),
        ("========= RACECHECK SUMMARY: 10 hazards displayed (10 errors, 0 warnings)", False),  # "0 hazard" is in it
        ("========= RACECHECK SUMMARY: 20 hazards displayed (0 errors, 20 warnings)", False),
        ("========= ERROR SUMMARY: 1 error", False),
    ],
)
def test_sanitizer_summary_counts_are_read_as_numbers(line, clean):
    assert gv.sanitizer_summary_clean([line]) is clean


def test_sanitizer_device_not_supported_is_skipped_even_with_a_summary():
    # gVisor-sandboxed GPUs: compute-sanitizer cannot attach, says so, and may still print a summary.
    text = (
        "========= COMPUTE-SANITIZER\n========= Error: Device not supported\n"
        "========= Error: unspecified launch failure (error 999)\n========= ERROR SUMMARY: 1 error\n"
    )
    verdict, _ = gv.classify_sanitizer_run(9, text, timeout=60)
    assert verdict == gv.SKIPPED


@pytest.mark.parametrize(
    "rc,text,want",
    [
        (0, "case 1 ok\n========= ERROR SUMMARY: 0 errors\n", gv.PASS),
        (9, "========= Invalid __global__ read\n========= ERROR SUMMARY: 2 errors\n", gv.FAIL),
        (124, "partial\n[timed out]", gv.CUT),
        (1, "compute-sanitizer: unable to attach (permission denied)\n", gv.SKIPPED),
    ],
)
def test_sanitizer_run_classification(rc, text, want):
    assert gv.classify_sanitizer_run(rc, text, timeout=60)[0] == want


def test_a_timed_out_command_leaves_no_child_running(tmp_path):
    # compute-sanitizer runs a python child; a timeout must end the whole process group, not just the tool.
    pid_file = tmp_path / "child.pid"
    script = (
        f"import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"open({str(pid_file)!r}, 'w').write(str(p.pid)); p.wait()"
    )
    rc, _ = gv._run_text([sys.executable, "-c", script], timeout=3)
    assert rc == 124
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.1)
    assert not _alive(child), "the grandchild outlived the timeout"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its orphaned parent) counts as gone
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def test_each_sanitizer_tool_gets_about_a_minute_of_its_section():
    # Each tool starts python, imports torch and initialises CUDA under instrumentation: ~35 s was too
    # little, and a tool cut off leaves the gating section unpassable.
    budget = next(s.budget_s for s in gv.default_sections() if s.name == "sanitizer")
    left = budget
    for i in range(len(gv.SANITIZER_TOOLS)):
        timeout = gv.sanitizer_tool_timeout(left, len(gv.SANITIZER_TOOLS) - i)
        assert timeout >= 55, (i, timeout)
        left -= timeout
