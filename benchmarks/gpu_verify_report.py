"""The GPU verification's human report (benchmarks/gpu_verify.py): markdown summary, machine slug.

Split out of benchmarks/gpu_verify.py (the entry point); see its docstring for the whole run.
"""

from __future__ import annotations

import platform
from typing import Any

from tsjnet_sdk.benchmarks.gpu_verify_core import (
    CUT,
    ERROR,
    FAIL,
    GATING,
    PASS,
    SEVERITY,
    SKIPPED,
)


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
