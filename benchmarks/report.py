"""Render bench results: console table (rich), JSON, markdown and a PNG latency chart (drawn with PIL,
so that no plotting library is needed)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from tsjnet_sdk.atomic import atomic_path, write_bytes_atomic
from tsjnet_sdk.results import write_json

from .machine import machine_slug

#: fusion metrics shown in the markdown table (the JSON has the full set)
SHOWN_METRICS = ("EN", "SD", "SF", "MI", "VIF", "Qabf", "SSIM")


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        if math.isnan(value):
            return "nan"
        return f"{value:.{digits}f}"
    return str(value)


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1e3:.2f} s" if value >= 10_000 else f"{value:.1f}"


def results_stem(results: dict[str, Any]) -> str:
    """``<machine>_<date>_<model>``: results of one machine type, day and model sit side by side."""
    day = results["created"][:10]
    model = (results.get("model") or {}).get("name") or "na"
    return f"{machine_slug(results['machine'])}_{day}_{re.sub(r'[^A-Za-z0-9.-]+', '-', model)}"


def _machine_line(machine: dict[str, Any]) -> str:
    gpus = ", ".join(g["name"] for g in machine["gpus"]) or "no GPU"
    v = machine["versions"]
    return f"{machine['cpu']}, {machine['cores']} usable cores, {_fmt(machine['memory_gib'], 1)} GiB RAM, {gpus}; " + ", ".join(
        f"{k} {v[k]}" for k in ("python", "tsjnet-sdk", "torch", "onnxruntime", "numpy", "natten") if k in v
    )


def _row_cells(row: dict[str, Any]) -> list[str]:
    if row["status"] != "ok":
        return [row["id"], row["status"].upper(), "", "", "", "", "", "", "", "", row.get("reason") or ""]
    e2e, comp = row["latency"]["end_to_end"], row["latency"]["compute"]
    speed = row.get("speedup_vs_reference") or {}
    acc = row.get("accuracy_vs_reference") or {}
    mem = row["memory"]
    return [
        row["id"],
        _ms(e2e["median_ms"]),
        _ms(e2e["p90_ms"]),
        _ms(comp["median_ms"]),
        _fmt(speed.get("end_to_end")) + "x" if speed else "-",
        _fmt(row["throughput_fps"], 3),
        _fmt(acc.get("psnr_db"), 1) if acc else "-",
        _fmt(_snr(acc), 1) if acc else "-",
        _fmt(acc.get("max_abs"), 5) if acc else "-",
        _fmt(mem.get("rss_peak_mib"), 0),
        "" if not acc else ("accuracy holds" if acc.get("holds") else "ACCURACY DOES NOT HOLD"),
    ]


def _snr(acc: dict[str, Any]) -> float | None:
    """SNR of the row's output against the reference's variation, in dB (results of older runs lack it,
    and their reference_std too: then None)."""
    value = acc.get("snr_db")
    if value is None and acc.get("reference_std") is not None and acc.get("psnr_db") is not None:
        # Runs before snr_db was recorded: the same quantity from what they did record
        # (PSNR = -10 log10 MSE with peak 1, so SNR = PSNR + 20 log10 std over the same pixels).
        psnr, std = float(acc["psnr_db"]), float(acc["reference_std"])
        return psnr + 20 * math.log10(std) if std > 0 else None
    return float(value) if value is not None else None


HEADERS = [
    "row",
    "e2e median ms",
    "e2e p90 ms",
    "compute median ms",
    "speed-up",
    "frames/s",
    "PSNR dB",
    "SNR dB",
    "max abs",
    "peak RSS MiB",
    "note",
]


def print_console(results: dict[str, Any], console: Any = None) -> None:
    """The results as rich tables, one per (size, batch)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    for cfg in results.get("configs", []):
        table = Table(
            title=f"{results['model']['name']} {cfg['size']} batch {cfg['batch']}  "
            f"(warm-up {results['settings']['warmup']}, {results['settings']['runs']} runs)"
        )
        for h in HEADERS:
            table.add_column(h, overflow="fold")
        for row in cfg["rows"]:
            table.add_row(*_row_cells(row), style=None if row["status"] == "ok" else "dim")
        console.print(table)
    if results.get("na"):
        table = Table(title="neighborhood attention op (B=1, head_dim 32, kernel 7)")
        for h in ("backend", "rpb", "map", "heads", "median ms", "runs", "max abs vs ref", "note"):
            table.add_column(h, overflow="fold")
        for r in results["na"]["rows"]:
            table.add_row(
                r["backend"],
                str(r["rpb"]),
                f"{r['height']}x{r['width']}",
                str(r["heads"]),
                _ms(r.get("median_ms")),
                str(r.get("runs", "")),
                _fmt(r.get("max_abs_vs_reference"), 6),
                r.get("reason") or "",
            )
        console.print(table)


def _random_init(results: dict[str, Any]) -> bool:
    """Whether the benchmarked checkpoint is a seeded random init (bench.ensure_checkpoint's note)."""
    return "random init" in str(results.get("model", {}).get("weights", ""))


def to_markdown(results: dict[str, Any]) -> str:
    """A human-readable results page (what benchmarks/results/*.md hold)."""
    s = results["settings"]
    model = results["model"]
    out = [f"# tsjnet bench: {model['name'] or 'NA op'} on {results['machine']['cpu']}", ""]
    out += [
        f"- date: {results['created']} (run took {results['duration_s'] / 60:.1f} min)",
        f"- machine: {_machine_line(results['machine'])}",
    ]
    if model.get("checkpoint"):
        out += [
            f"- model: `{model['name']}`, checkpoint `{model['checkpoint']}` (sha256 {model['checkpoint_sha256'][:16]}...), "
            f"weights: {model['weights']}. "
            + (
                "Random-init weights: latency does not depend on the weights and the errors against the "
                "reference are meaningful (same weights in every row), but the fusion metrics of an untrained "
                "network say nothing about fusion quality."
                if _random_init(results)
                else "Fusion quality of these weights: `tsjnet quality` (benchmarks/results/quality_*.md)."
            ),
            f"- timing: {s['warmup']} warm-up call(s), then {s['runs']} timed call(s) per row; reference row "
            f"`{s['reference']}`; speed-up = reference median / row median, same run; torch threads "
            f"{s.get('torch_threads')}; load average (1/5/15 min) at start / end: "
            f"{s.get('load_average_start_end')}",
            f"- accuracy: {s['accuracy_pairs']} real pair(s) from `{Path(s['data']).parent.name}/{Path(s['data']).name}`"
            + (
                "; the random-init networks' fused luminance is almost flat (`reference_std` in the JSON: the "
                "reference output's standard deviation in [0, 1] units), so PSNR (peak 1) flatters every row; "
                "SNR = the reference's variance over the error's mean square, in dB, does not. "
                if _random_init(results)
                else "; SNR = the reference output's variance over the error's mean square, in dB. "
            )
            + (
                f"Accuracy holds at PSNR >= {s['psnr_threshold_db']} dB and SNR >= {s['snr_threshold_db']} dB"
                if "snr_threshold_db" in s
                else f"Accuracy holds at PSNR >= {s['psnr_threshold_db']} dB (this run predates the SNR criterion; "
                "its SNR column is derived from the recorded psnr_db and reference_std)"
            )
            + "; int8 static calibration pairs: "
            f"{', '.join(s['calibration_pairs']) or '-'}",
        ]
    out += [f"- {note}" for note in results.get("notes", [])]
    for cfg in results.get("configs", []):
        out += ["", f"## {cfg['size']}, batch {cfg['batch']}", "", f"Accuracy pairs: {', '.join(cfg['accuracy_pairs'])}", ""]
        out += ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
        out += ["| " + " | ".join(c.replace("|", "/") for c in _row_cells(r)) + " |" for r in cfg["rows"]]
        with_metrics = [r for r in cfg["rows"] if r.get("fusion_metrics")]
        if with_metrics:
            keys = [k for k in SHOWN_METRICS if k in with_metrics[0]["fusion_metrics"]]
            out += [
                "",
                f"Fusion metrics (preset `{s['metrics_preset']}`, mean over the accuracy pairs; full set in the JSON):",
                "",
                "| row | " + " | ".join(keys) + " |",
                "|---|" + "---|" * len(keys),
            ]
            out += [
                "| " + r["id"] + " | " + " | ".join(_fmt(r["fusion_metrics"][k], 4) for k in keys) + " |" for r in with_metrics
            ]
        details = [r for r in cfg["rows"] if r["status"] == "ok"]
        out += [
            "",
            "<details><summary>latency details (ms) and backend settings</summary>",
            "",
            "| row | e2e min | e2e median | e2e p90 | e2e p99 | e2e mean | compute min | compute median | "
            "compute p99 | speed-up compute | first warm-up s | build s |",
            "|" + "---|" * 12,
        ]
        for r in details:
            e, c = r["latency"]["end_to_end"], r["latency"]["compute"]
            sp = (r.get("speedup_vs_reference") or {}).get("compute")
            warm = r["warmup_s"][0] if r["warmup_s"] else None
            out.append(
                f"| {r['id']} | {_ms(e['min_ms'])} | {_ms(e['median_ms'])} | {_ms(e['p90_ms'])} | "
                f"{_ms(e['p99_ms'])} | {_ms(e['mean_ms'])} | {_ms(c['min_ms'])} | {_ms(c['median_ms'])} | "
                f"{_ms(c['p99_ms'])} | {_fmt(sp)}x | {_fmt(warm, 1)} | {_fmt(r['build_s'], 1)} |"
            )
        out += [""] + [
            f"- `{r['id']}`: " + ", ".join(f"{k}={v}" for k, v in r["backend_info"].items() if v is not None and k != "model")
            for r in details
        ]
        out += ["", "</details>"]
    if results.get("na"):
        na = results["na"]
        out += [
            "",
            f"## Neighborhood attention op alone ({na['device']})",
            "",
            f"B=1, head_dim {na['head_dim']}, kernel {na['kernel']}, dilation 1; TSJNet's NAT stage shapes for a "
            "640x480 frame. NATTEN 0.21 has no relative position bias, so it is timed without rpb next to a "
            "reference row without rpb, and compared with that.",
            "",
            "| backend | rpb | map (H x W) | heads | median ms | min ms | runs | max abs vs reference | note |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in na["rows"]:
            out.append(
                f"| {r['backend']} | {r['rpb']} | {r['height']}x{r['width']} | {r['heads']} | "
                f"{_ms(r.get('median_ms'))} | {_ms(r.get('min_ms'))} | {r.get('runs', '-')} | "
                f"{_fmt(r.get('max_abs_vs_reference'), 6)} | {r.get('status')}{': ' + r['reason'] if r.get('reason') else ''} |"
            )
    return "\n".join(out) + "\n"


def draw_chart(results: dict[str, Any], path: Path) -> Path:
    """Horizontal latency bars (end-to-end median) per row with the speed-up against the reference;
    rows that failed or were skipped are listed with their reason. One panel per (size, batch)."""
    from PIL import Image, ImageDraw

    from tsjnet_sdk.imaging import default_font

    font, bold = default_font(14), default_font(16)
    width, label_w, bar_h, pad = 1000, 300, 22, 12
    panels = results.get("configs", [])
    heights = [40 + len(c["rows"]) * (bar_h + 6) + 20 for c in panels]
    img = Image.new("RGB", (width, 60 + sum(heights) + 30), "white")
    d = ImageDraw.Draw(img)
    title = f"tsjnet bench: {results['model']['name']} on {results['machine']['cpu']} ({results['machine']['cores']} cores)"
    d.text((pad, pad), title, fill="black", font=bold)
    d.text(
        (pad, pad + 22),
        f"{results['created'][:10]}  end-to-end median latency (Fuser, numpy in/out); ratio = speed-up vs PyTorch eager fp32",
        fill="#444",
        font=font,
    )
    y = 60
    colours = {"torch": "#e07b39", "onnxruntime": "#3b6fb6", "tensorrt": "#4c9a2a"}
    for cfg, h in zip(panels, heights):
        d.text((pad, y), f"{cfg['size']}, batch {cfg['batch']}", fill="black", font=bold)
        ok = [r for r in cfg["rows"] if r["status"] == "ok"]
        longest = max((r["latency"]["end_to_end"]["median_ms"] for r in ok), default=1.0)
        bar_max = width - label_w - 2 * pad - 170
        ry = y + 28
        for r in cfg["rows"]:
            d.text((pad, ry + 3), r["id"], fill="black", font=font)
            x0 = pad + label_w
            if r["status"] == "ok":
                ms = r["latency"]["end_to_end"]["median_ms"]
                length = max(2, int(bar_max * ms / longest))
                d.rectangle([x0, ry, x0 + length, ry + bar_h], fill=colours.get(r["backend"], "#888"))
                ratio = (r.get("speedup_vs_reference") or {}).get("end_to_end")
                text = _ms(ms) + ("" if ms >= 10_000 else " ms") + (f"  {ratio:.2f}x" if ratio is not None else "")
                acc = r.get("accuracy_vs_reference")
                if acc and not acc.get("holds"):
                    text += "  (accuracy fails)"
                d.text((x0 + length + 6, ry + 3), text, fill="black", font=font)
            else:
                d.text((x0, ry + 3), f"{r['status']}: {(r.get('reason') or '')[:80]}", fill="#999", font=font)
            ry += bar_h + 6
        y += h
    weights = "random-init weights" if _random_init(results) else f"weights {results['model'].get('checkpoint')}"
    d.text((pad, y + 4), f"{weights}; see the JSON for all statistics.", fill="#444", font=font)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return path


def write_results(results: dict[str, Any], out_dir: Path, stem: str | None = None) -> dict[str, Path]:
    """Write ``<stem>.json``, ``<stem>.md`` and (with model rows) ``<stem>.png`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = stem or results_stem(results)
    paths = {"json": out_dir / f"{stem}.json", "markdown": out_dir / f"{stem}.md"}
    write_json(paths["json"], results, indent=1)
    write_bytes_atomic(paths["markdown"], to_markdown(results).encode("utf-8"))
    if results.get("configs"):
        paths["png"] = draw_chart(results, out_dir / f"{stem}.png")
    return paths


def rerender(json_path: str | Path) -> Path:
    """Re-render ``<stem>.md`` (and ``<stem>.png``) beside saved results, atomically; returns the markdown path."""
    path = Path(json_path)
    results = json.loads(path.read_text())
    markdown = path.with_suffix(".md")
    write_bytes_atomic(markdown, to_markdown(results).encode("utf-8"))
    if results.get("configs"):
        draw_chart(results, path.with_suffix(".png"))
    return markdown


if __name__ == "__main__":
    # `python -m tsjnet_sdk.benchmarks.report FILE.json`: the same command as `tsjnet bench-report`. The CLI is imported only here:
    # the command-line layer imports this module, never the reverse (tests/test_import_graph.py).
    from tsjnet_sdk.benchmarks.cli import report_command
    from tsjnet_sdk.cli_support import run_command

    raise SystemExit(run_command(report_command, None, "python -m tsjnet_sdk.benchmarks.report"))
