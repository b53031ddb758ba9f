"""``tsjnet quality``: the fusion-quality table of a model against the classical baselines.

Fuses every evaluation pair of ``../shared/data`` (msrs/test, roadscene, tno, m3fd, llvip) with the
model and with the baselines of :mod:`tsjnet_sdk.baselines` (pixel average, pixel max, Laplacian
pyramid), all through :func:`tsjnet_sdk.demo.run_demo` (one colour handling, one metrics call), and
writes ``<stem>.json``, ``<stem>.md`` and ``<stem>.png`` under ``benchmarks/results``:

* per data set, the mean of TSJNet Table 1's six metrics (SSIM, PSNR, MSE, VIF, CC, CV = Qcv) and of
  EN, SD, SF, AG, MI, Qabf, metrics preset ``paper``, for the model and each baseline;
* the paper's own TSJNet row where Table 1 has that data set (its test splits are larger than ours:
  MSRS 362 pairs there, 12 here, so the comparison is indicative only);
* the trade-off check of issue 9 on msrs: how many of the content metrics (VIF, Qabf, EN, SD, SF,
  AG) beat the pixel average, and how many of the fidelity metrics (SSIM, PSNR, CC) beat the max;
* two reference rows that fuse nothing: ``copy-ir`` and ``copy-visible`` (the fused image is one
  input, unchanged). Some metrics reward them (the summed VIF of the CDDFuse evaluator is ~1 for a
  copy), so a number is only meaningful next to them;
* ``<stem>.csv`` beside each table: every pair's value of every metric for every row.

``--convention`` picks the evaluation convention (:data:`CONVENTIONS`, a metrics preset each; several
give one table each): ``paper`` (TSJNet Table 1, averaged over the sources, the default), ``cdd`` (the
CDDFuse evaluator that most IVIF papers print: VIF and SSIM summed over the two sources, MI in nats)
and ``vifb``. The convention is named in every table header and file stem.

    tsjnet quality -m tsjnet_sdk/weights/tsjnet-edge.safetensors --threads 1 --convention paper,cdd
    python -m tsjnet_sdk.benchmarks.quality --help

The fused images and panels of each data set go to ``--work`` (default ``outputs/quality``): they show
data-set images, which the project does not redistribute, so they stay out of the repository.
"""

from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import Any

import typer

from tsjnet_sdk.atomic import atomic_path, write_bytes_atomic
from tsjnet_sdk.cli_support import error_line
from tsjnet_sdk.imaging import default_font
from tsjnet_sdk.results import data_root, results_dir, write_json

DEFAULT_DATA = data_root()
DEFAULT_OUT = results_dir("quality", "benchmarks/results")

#: evaluation set name -> folder under the data root holding ir/ and vi/ (paired by file name)
EVAL_SETS: dict[str, str] = {
    "msrs": "msrs/test",
    "roadscene": "roadscene",
    "tno": "tno",
    "m3fd": "m3fd",
    "llvip": "llvip",
}
TABLE1_METRICS = ("SSIM", "PSNR", "MSE", "VIF", "CC", "Qcv")
OTHER_METRICS = ("EN", "SD", "SF", "AG", "MI", "Qabf")
LOWER_IS_BETTER = {"MSE", "Qcv"}
#: the metric preset of the default table (tsjnet_sdk.metrics; docs/metrics.md says why it matches Table 1)
PRESET = "paper"

#: convention name -> (metrics preset of tsjnet_sdk.metrics, the metrics its table shows, header note)
CONVENTIONS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "paper": (
        "paper",
        (*TABLE1_METRICS, *OTHER_METRICS),
        "TSJNet Table 1 convention: SSIM, PSNR, MSE, VIF and CC averaged over the two sources, 0-255, MI in bits",
    ),
    "cdd": (
        "cdd",
        ("EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "SSIM", "CC", "PSNR", "MSE"),
        "CDDFuse evaluator convention (MMIF-CDDFuse utils/Evaluator.py, used by CDDFuse, EMMA, FILM, DDFM and "
        "others): VIF and SSIM **summed** over the two sources (a copied input scores about 1), MI in nats, "
        "PSNR with peak max(F), AG over M N pixels",
    ),
    "vifb": (
        "vifb",
        ("EN", "MI", "PSNR", "AG", "EI", "Qabf", "SD", "SF", "RMSE", "SSIM", "Qcb", "Qcv", "CE"),
        "VIFB benchmark convention: per RGB channel then averaged, SSIM summed, MI in nats after min-max "
        "normalisation, VIFB's own PSNR and RMSE",
    ),
}
#: rows that fuse nothing (fused image = one input): the floor a fusion method has to clear
COPY_ROWS = ("copy-ir", "copy-visible")

#: Published CDD-convention rows on MSRS (the papers' 361-pair test split; ours has 12 pairs), collected in
#: ../shared/design/anchors_2026-12.md §1.2: CDDFuse's own row (its paper's figure) and the copy-an-input
#: rows of Zirconium233/HybridFusion figure/ivf.png. The copy rows validate the convention: our copy
#: rows on our pairs should land near them (the residual is printed under the table).
PUBLISHED_CDD: dict[str, dict[str, dict[str, float]]] = {
    "msrs": {
        "CDDFuse, its paper (361 pairs)": {
            "EN": 6.70,
            "SD": 43.38,
            "SF": 11.56,
            "MI": 3.47,
            "SCD": 1.62,
            "VIF": 1.05,
            "Qabf": 0.69,
            "SSIM": 1.00,
        },
        "copy-visible, HybridFusion fig. (361 pairs)": {"VIF": 1.044, "Qabf": 0.650},
        "copy-ir, HybridFusion fig. (361 pairs)": {"VIF": 1.028},
    },
    "roadscene": {
        "copy-visible, HybridFusion fig.": {"VIF": 1.040},
        "copy-ir, HybridFusion fig.": {"VIF": 1.061},
    },
}

#: TSJNet's own row of Table 1 (Jie et al.), per data set, on the paper's test splits
#: (MSRS 362, M3FD 300, RoadScene 221, LLVIP 3463 pairs); CV is our Qcv. TNO is not in the table.
PAPER_TSJNET: dict[str, dict[str, float]] = {
    "msrs": {"SSIM": 0.69, "PSNR": 18.13, "MSE": 1502.60, "VIF": 0.45, "CC": 0.62, "Qcv": 344.20},
    "m3fd": {"SSIM": 0.70, "PSNR": 14.63, "MSE": 2714.86, "VIF": 0.33, "CC": 0.53, "Qcv": 524.41},
    "roadscene": {"SSIM": 0.70, "PSNR": 14.52, "MSE": 2544.58, "VIF": 0.33, "CC": 0.64, "Qcv": 516.82},
    "llvip": {"SSIM": 0.64, "PSNR": 15.97, "MSE": 1697.69, "VIF": 0.37, "CC": 0.67, "Qcv": 457.46},
}

#: issue 9's acceptance on msrs: content carried from both sources (beat the pixel average on at least
#: 5 of these) and fidelity to both sources (beat the max on at least 2 of these)
CONTENT_METRICS = ("VIF", "Qabf", "EN", "SD", "SF", "AG")
FIDELITY_METRICS = ("SSIM", "PSNR", "CC")
CONTENT_NEEDED, FIDELITY_NEEDED = 5, 2


def better(metric: str, a: float, b: float) -> bool:
    """Whether value ``a`` of ``metric`` is strictly better than ``b`` (direction from the metric)."""
    return a < b if metric in LOWER_IS_BETTER else a > b


def trade_off(mean: dict[str, dict[str, float]], network: str = "tsjnet") -> dict[str, Any]:
    """The acceptance check on one data set's means {method: {metric: value}}.

    Returns ``content_wins`` / ``fidelity_wins`` (the metrics won), their counts and ``holds``.
    """
    net = mean[network]
    content = [m for m in CONTENT_METRICS if better(m, net[m], mean["average"][m])]
    fidelity = [m for m in FIDELITY_METRICS if better(m, net[m], mean["max"][m])]
    return {
        "content_vs_average": content,
        "fidelity_vs_max": fidelity,
        "content_needed": CONTENT_NEEDED,
        "fidelity_needed": FIDELITY_NEEDED,
        "holds": len(content) >= CONTENT_NEEDED and len(fidelity) >= FIDELITY_NEEDED,
    }


def brightness(summary: dict[str, Any], methods: tuple[str, ...] = ("tsjnet", "average", "max")) -> dict[str, Any]:
    """Mean BT.601 luma (0-255) of each method's written fused images: over all pairs, and over the day
    scenes (MSRS names ending in ``D``) when there are any. The acceptance asks the model's day-scene
    mean not to exceed the max's (the previous weights were brighter than max(IR, VIS))."""
    import numpy as np

    from tsjnet_sdk.imaging import luma as bt601_luma
    from tsjnet_sdk.imaging import read_image

    def luma(path: str) -> float:
        img = read_image(path).astype(np.float64)
        return float((bt601_luma(img) if img.ndim == 3 and img.shape[2] == 3 else img).mean())

    values = {m: {p["name"]: luma(p["images"][m]) for p in summary["pairs"]} for m in methods}
    day = [p["name"] for p in summary["pairs"] if p["name"].endswith("D")]
    out: dict[str, Any] = {"all": {m: float(np.mean(list(v.values()))) for m, v in values.items()}}
    if day:
        out["day"] = {m: float(np.mean([values[m][n] for n in day])) for m in methods}
        out["day_pairs"] = len(day)
        out["day_not_above_max"] = out["day"]["tsjnet"] <= out["day"]["max"]
    return out


def score_rows(folder: Path, summary: dict[str, Any], convention: str) -> dict[str, dict[str, dict[str, float]]]:
    """{pair: {row: {metric: value}}} under ``convention`` for the methods the demo wrote (their fused
    files in ``summary``) and the two copy rows, on the pairs of ``folder`` (read as the demo reads them)."""
    from tsjnet_sdk.demo import load_pairs
    from tsjnet_sdk.imaging import read_image
    from tsjnet_sdk.metrics import evaluate_many

    preset, metrics, _ = CONVENTIONS[convention]
    files = {p["name"]: p["images"] for p in summary["pairs"]}
    # The demo already scored its methods in its own preset: those rows are reused, not recomputed.
    reuse = summary.get("preset") == preset
    pairs, _ = load_pairs(folder / "ir", folder / "vi", 0, (0, 0), real=False)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, ir, vis in pairs:
        methods = [] if reuse else list(files[name])
        images = [read_image(files[name][m]) for m in methods] + [ir, vis]  # copy-ir, copy-visible: the inputs
        reports = evaluate_many(ir, vis, images, preset, metrics=list(metrics))
        rows = {m: {k: float(summary["metrics"][name][m][k]) for k in metrics} for m in files[name]} if reuse else {}
        rows.update({row: {k: float(v) for k, v in r.items()} for row, r in zip([*methods, *COPY_ROWS], reports)})
        out[name] = rows
    return out


def mean_rows(per_pair: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """{row: {metric: mean over the pairs}} (NaN where some pair's value is undefined)."""
    import numpy as np

    first = next(iter(per_pair.values()))
    return {row: {k: float(np.mean([p[row][k] for p in per_pair.values()])) for k in first[row]} for row in first}


def run_quality(
    model: str | Path,
    data_root: str | Path = DEFAULT_DATA,
    datasets: tuple[str, ...] | list[str] = tuple(EVAL_SETS),
    work_dir: str | Path = "outputs/quality",
    threads: int | None = None,
    say: Any = print,
    conventions: tuple[str, ...] | list[str] = ("paper",),
) -> dict[str, Any]:
    """Fuse and score every pair of ``datasets`` under ``data_root``; returns the results document of
    the first convention, with the other conventions' documents under ``"conventions"`` (name ->
    document of the same shape; :func:`write_results` writes each to its own files). Every document has per data set ``mean`` and ``per_pair`` rows: the model
    (``tsjnet``), the baselines and :data:`COPY_ROWS`.

    Data sets whose folder is missing are listed under ``skipped`` (with the reason) instead of failing,
    so a partial copy of the data still gives a table.
    """
    from tsjnet_sdk.demo import run_demo
    from tsjnet_sdk.hashing import file_sha256

    root = Path(data_root)
    unknown = [d for d in datasets if d not in EVAL_SETS]
    if unknown:
        raise ValueError(f"unknown data set(s) {unknown}; choose from {list(EVAL_SETS)}")
    bad = [c for c in conventions if c not in CONVENTIONS]
    if bad or not conventions:
        raise ValueError(f"unknown convention(s) {bad or conventions}; choose from {list(CONVENTIONS)}")
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    docs: dict[str, dict[str, Any]] = {
        c: {
            "created": created,
            "model": str(model),
            "model_sha256": file_sha256(model),
            "convention": c,
            "preset": CONVENTIONS[c][0],
            "convention_note": CONVENTIONS[c][2],
            "data_root": str(root),
            "datasets": {},
            "skipped": {},
        }
        for c in conventions
    }
    for name in datasets:
        folder = root / EVAL_SETS[name]
        if not (folder / "ir").is_dir() or not (folder / "vi").is_dir():
            why = f"{folder}/ir and {folder}/vi not found"
            for doc in docs.values():
                doc["skipped"][name] = why
            say(f"{name}: skipped ({why})")
            continue
        say(f"{name}: fusing and scoring {folder} ...")
        summary = run_demo(model, folder / "ir", folder / "vi", Path(work_dir) / name, threads=threads, quiet=True)
        per_pair_s = summary["fuse_seconds_per_pair"]
        light = brightness(summary)
        for c, doc in docs.items():
            say(f"{name}: scoring under convention {c!r} ...")
            per_pair = score_rows(folder, summary, c)
            mean = mean_rows(per_pair)
            doc["model_description"] = summary["model"]
            doc["backend"] = f"{summary['backend']} on {summary['device']}"
            entry = {
                "folder": str(folder),
                "pairs": len(summary["pairs"]),
                "mean": mean,
                "per_pair": per_pair,
                "fuse_seconds_median": sorted(per_pair_s)[len(per_pair_s) // 2],
                "brightness": light,
            }
            if c == "paper":  # the acceptance rule is stated in this convention
                entry["trade_off"] = trade_off(mean)
            doc["datasets"][name] = entry
        say(f"{name}: {len(summary['pairs'])} pairs, {summary['seconds']['total']:.0f} s")
    first = docs[conventions[0]]
    first["conventions"] = {c: d for c, d in docs.items() if c != conventions[0]}
    return first


def merge_results(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """``a`` with the data sets (and skipped sets) of ``b`` added, convention by convention; both from
    :func:`run_quality` with the same model and conventions."""
    for doc, more in ((a, b), *((a["conventions"][c], d) for c, d in b.get("conventions", {}).items())):
        doc["datasets"].update(more["datasets"])
        doc["skipped"].update(more["skipped"])
        for key in ("model_description", "backend"):
            if key in more:
                doc[key] = more[key]
    return a


# -- report ---------------------------------------------------------------------------------------


def _fmt(metric: str, value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    if metric in ("MSE", "Qcv"):
        return f"{value:.1f}"
    if metric in ("PSNR", "SD", "SF"):
        return f"{value:.2f}"
    return f"{value:.3f}"


def _label(method: str) -> str:
    if method == "tsjnet":
        return "tsjnet (this model)"
    if method in COPY_ROWS:
        return f"{method} (reference: no fusion)"
    return method


def to_markdown(results: dict[str, Any]) -> str:
    from tsjnet_sdk.metrics import METRIC_INFO

    convention = results.get("convention", "paper")
    _, metrics, note = CONVENTIONS[convention]
    arrows = {m: "↑" if METRIC_INFO[m][1] else "↓" for m in metrics}
    lines = [
        f"# Fusion quality, convention `{convention}`: {results.get('model_description', results['model'])}",
        "",
        f"Model file SHA-256 `{results['model_sha256']}`.",
        "",
        f"**Convention `{convention}`** (metrics preset `{results['preset']}`, tsjnet_sdk.metrics, docs/metrics.md): "
        f"{results.get('convention_note', note)}.",
        "",
        f"`tsjnet quality --convention {convention}` ({results['created'][:10]}, {results.get('backend', '')}); "
        "means over each data set's pairs (every pair's values: the .csv beside this file). **Bold**: best of the "
        "four fusion methods of this run; the copy-ir / copy-visible rows return one input unchanged and are "
        "references, not methods: a fusion result should clear them on the metrics that reward both sources.",
        "",
    ]
    if convention == "paper":
        lines += [
            "CV is Qcv. The paper rows are TSJNet's own Table 1 figures on the paper's (larger) test splits, so they "
            "are indicative, not a like-for-like comparison.",
            "",
            "Read the table whole: the pixel average is the exact minimiser of MSE(F, IR) + MSE(F, VIS), so it "
            "wins MSE and PSNR and scores high on SSIM and CC by construction while carrying little contrast "
            "(SD, SF, AG, Qabf); the max keeps the brighter source everywhere.",
            "",
        ]
    elif convention == "cdd":
        lines += [
            "Published rows (italic) are means over the papers' 361-pair MSRS test split (ours: the pairs counted "
            "in the heading), from ../shared/design/anchors_2026-12.md §1.2. Our copy rows against the published "
            "copy rows are the check of this convention: the residual is listed under each table.",
            "",
        ]
    for name, ds in results["datasets"].items():
        mean = ds["mean"]
        lines += [f"## {name} ({ds['pairs']} pairs, `{ds['folder']}`), convention `{convention}`", ""]
        lines.append("| method | " + " | ".join(f"{m} {arrows[m]}" for m in metrics) + " |")
        lines.append("|---|" + "---|" * len(metrics))
        best = {}
        for m in metrics:
            values = [
                (mean[k][m], k) for k in mean if k not in COPY_ROWS and mean[k].get(m) is not None and math.isfinite(mean[k][m])
            ]
            if values:
                best[m] = (min if arrows[m] == "↓" else max)(values)[1]
        for method, values in mean.items():
            cells = []
            for m in metrics:
                text = _fmt(m, values.get(m))
                cells.append(f"**{text}**" if best.get(m) == method else text)
            lines.append(f"| {_label(method)} | " + " | ".join(cells) + " |")
        paper = PAPER_TSJNET.get(name) if convention == "paper" else None
        if paper:
            lines.append("| TSJNet, paper Table 1 | " + " | ".join(_fmt(m, paper.get(m)) for m in metrics) + " |")
        published = PUBLISHED_CDD.get(name, {}) if convention == "cdd" else {}
        for row, values in published.items():
            lines.append(f"| *{row}* | " + " | ".join(_fmt(m, values.get(m)) if m in values else "" for m in metrics) + " |")
        residuals = [
            f"{row.split(',')[0]} {m}: ours {mean[row.split(',')[0]][m]:.3f} vs published {v:.3f} "
            f"({mean[row.split(',')[0]][m] - v:+.3f})"
            for row, values in published.items()
            if row.split(",")[0] in mean
            for m, v in values.items()
            if m in mean[row.split(",")[0]]
        ]
        if residuals:
            lines += ["", "Check against the published copy rows (different pair counts): " + "; ".join(residuals) + "."]
        t = ds.get("trade_off")
        lines.append("")
        if t:
            lines.append(
                f"Trade-off: beats the pixel average on {len(t['content_vs_average'])} of {len(CONTENT_METRICS)} content "
                f"metrics ({', '.join(t['content_vs_average']) or 'none'}; needs {t['content_needed']}), beats the max on "
                f"{len(t['fidelity_vs_max'])} of {len(FIDELITY_METRICS)} fidelity metrics "
                f"({', '.join(t['fidelity_vs_max']) or 'none'}; needs {t['fidelity_needed']}): "
                f"**{'holds' if t['holds'] else 'does not hold'}**. Median fusion time "
                f"{ds['fuse_seconds_median']:.2f} s per pair."
            )
            lines.append("")
        b = ds.get("brightness")
        if b and convention == "paper":
            line = "Mean brightness (BT.601 luma, 0-255): " + ", ".join(f"{m} {v:.1f}" for m, v in b["all"].items())
            if "day" in b:
                line += (
                    f"; day scenes ({b['day_pairs']}): "
                    + ", ".join(f"{m} {v:.1f}" for m, v in b["day"].items())
                    + f": the model is **{'not above' if b['day_not_above_max'] else 'above'}** the max"
                )
            lines += [line + ".", ""]
    for name, why in results["skipped"].items():
        lines.append(f"* {name}: not evaluated ({why})")
    for note in results.get("notes", []):
        lines.append(f"* {note}")
    return "\n".join(lines).rstrip() + "\n"


def to_csv(results: dict[str, Any]) -> str:
    """Every pair's value of every metric for every row: dataset, pair, method, then the convention's metrics."""
    import csv
    import io

    metrics = CONVENTIONS[results.get("convention", "paper")][1]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["convention", "dataset", "pair", "method", *metrics])
    for name, ds in results["datasets"].items():
        for pair, rows in ds.get("per_pair", {}).items():
            for method, values in rows.items():
                writer.writerow(
                    [
                        results.get("convention", "paper"),
                        name,
                        pair,
                        method,
                        *(f"{values[m]:.6g}" if m in values else "" for m in metrics),
                    ]
                )
    return buffer.getvalue()


def draw_chart(results: dict[str, Any], path: Path) -> Path:
    """One panel per data set: each method's score relative to the pixel average (1 = average; for MSE
    and Qcv the inverse ratio, so right of 1 is always better), per metric, as horizontal bars."""
    from PIL import Image, ImageDraw

    font, bold = default_font(13), default_font(16)
    metrics = (*TABLE1_METRICS, *OTHER_METRICS)
    colours = {"tsjnet": "#d1495b", "max": "#3b6fb6", "laplacian": "#4c9a2a"}
    others = ("tsjnet", "max", "laplacian")  # the average is the reference line
    datasets = list(results["datasets"].items())
    col_w, bar_h, pad, label_w = 330, 5, 12, 60
    row_h = bar_h * len(others) + 6
    panel_h = 30 + row_h * len(metrics) + 10
    columns = min(len(datasets), 3) or 1
    rows = math.ceil(len(datasets) / columns) if datasets else 1
    width, top = max(pad * 2 + columns * col_w, 1000), 90
    img = Image.new("RGB", (width, top + rows * panel_h + 30), "white")
    d = ImageDraw.Draw(img)
    d.text((pad, pad), f"Fusion quality relative to the pixel average: {Path(results['model']).name}", fill="black", font=bold)
    legend_x = pad
    for m in others:
        d.rectangle([legend_x, 40, legend_x + 12, 52], fill=colours[m])
        d.text((legend_x + 16, 39), "tsjnet (this model)" if m == "tsjnet" else m, fill="black", font=font)
        legend_x += 150
    d.text(
        (pad, 60),
        "grey line: the pixel average (= 1); a bar right of it is better than the average "
        "(MSE and CV inverted: average / value); clipped at 3x",
        fill="#444",
        font=font,
    )
    scale_max = 3.0
    for i, (name, ds) in enumerate(datasets):
        x0 = pad + (i % columns) * col_w
        y0 = top + (i // columns) * panel_h
        d.text((x0, y0), f"{name} ({ds['pairs']} pairs)", fill="black", font=bold)
        bar_x, bar_w = x0 + label_w, col_w - label_w - 20
        one = bar_x + int(bar_w / scale_max)
        mean = ds["mean"]
        for j, metric in enumerate(metrics):
            y = y0 + 30 + j * row_h
            d.text((x0, y), metric, fill="black", font=font)
            ref = mean["average"].get(metric)
            for k, method in enumerate(others):
                v = mean[method].get(metric)
                if v is None or ref is None or not (math.isfinite(v) and math.isfinite(ref)) or v == 0 or ref == 0:
                    continue
                ratio = ref / v if metric in LOWER_IS_BETTER else v / ref
                length = int(bar_w * min(max(ratio, 0.0), scale_max) / scale_max)
                d.rectangle([bar_x, y + k * bar_h, bar_x + max(1, length), y + (k + 1) * bar_h - 1], fill=colours[method])
        d.line([one, y0 + 28, one, y0 + 30 + len(metrics) * row_h], fill="#777", width=1)
    d.text(
        (pad, top + rows * panel_h + 5),
        f"metrics preset '{results['preset']}'; numbers in the .md/.json next to this file",
        fill="#444",
        font=font,
    )
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return path


def write_results(results: dict[str, Any], out_dir: Path, stem: str) -> dict[str, Path]:
    """``stem``.json/.md/.csv/.png for the document's own convention (the chart for ``paper`` only), then
    ``stem``_<convention>.json/.md/.csv for each document under ``"conventions"``; returns every path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    others = results.get("conventions", {})
    own = {k: v for k, v in results.items() if k != "conventions"}
    paths = {"json": out_dir / f"{stem}.json", "md": out_dir / f"{stem}.md"}
    write_json(paths["json"], own)
    write_bytes_atomic(paths["md"], to_markdown(own).encode("utf-8"))
    if any("per_pair" in ds for ds in own["datasets"].values()):
        paths["csv"] = out_dir / f"{stem}.csv"
        write_bytes_atomic(paths["csv"], to_csv(own).encode("utf-8"))
    if own.get("convention", "paper") == "paper":
        paths["png"] = out_dir / f"{stem}.png"
        draw_chart(own, paths["png"])
    for convention, doc in others.items():
        for kind, path in write_results(doc, out_dir, f"{stem}_{convention}").items():
            paths[f"{convention}_{kind}"] = path
    return paths


# -- command --------------------------------------------------------------------------------------


def quality_command(
    model: Path | None = typer.Option(
        None, "--model", "-m", help="checkpoint / ONNX / engine (default: the shipped tsjnet-edge weights)"
    ),
    data: Path = typer.Option(DEFAULT_DATA, help="data root holding msrs/test, roadscene, tno, m3fd, llvip"),
    datasets: str = typer.Option(",".join(EVAL_SETS), help="comma-separated evaluation sets"),
    out: Path = typer.Option(DEFAULT_OUT, "--out", "-o", help="folder of the table (.md, .json, .png)"),
    name: str | None = typer.Option(None, help="results file stem (default quality_<model file stem>)"),
    work: Path = typer.Option(Path("outputs/quality"), help="fused images and panels (data-set images: not for the repo)"),
    threads: int | None = typer.Option(None, help="PyTorch CPU threads (1 is often fastest on a busy CPU)"),
    convention: str = typer.Option(
        "paper",
        help=f"comma-separated evaluation conventions, one table each ({', '.join(CONVENTIONS)}); the first "
        "gets the plain file stem, the others <stem>_<convention>",
    ),
) -> None:
    """Fusion-quality table (Table 1 metrics + EN, SD, SF, AG, MI, Qabf) of a model vs classical baselines."""
    from rich.console import Console

    from tsjnet_sdk.runtime import BackendUnavailable
    from tsjnet_sdk.shipped import SHIPPED_WEIGHTS

    console = Console(stderr=True, soft_wrap=True)
    if model is None:
        if not SHIPPED_WEIGHTS.exists():
            error_line(console, f"no --model given and no shipped weights at {SHIPPED_WEIGHTS}")
            raise typer.Exit(2)
        model = SHIPPED_WEIGHTS
    if not model.exists():
        error_line(console, f"--model {model} does not exist")
        raise typer.Exit(2)
    chosen = [d.strip() for d in datasets.split(",") if d.strip()]
    conventions = [c.strip().lower() for c in convention.split(",") if c.strip()]
    # One data set at a time, the tables rewritten after each: a long run stopped early (a busy CPU,
    # LLVIP's large frames last) still leaves the sets it finished.
    results: dict[str, Any] | None = None
    paths: dict[str, Path] = {}
    for ds in chosen:
        try:
            part = run_quality(model, data, [ds], work, threads=threads, say=console.print, conventions=conventions)
        except (ValueError, BackendUnavailable) as e:
            error_line(console, e)
            raise typer.Exit(2) from None
        results = part if results is None else merge_results(results, part)
        if results["datasets"]:
            paths = write_results(results, out, name or f"quality_{model.stem}")
    if results is None or not results["datasets"]:
        error_line(console, f"none of {chosen} found under {data} (see --data)")
        raise typer.Exit(2)
    for ds_name, ds in results["datasets"].items():
        t = ds.get("trade_off")
        if not t:
            continue
        console.print(
            f"{ds_name}: content wins vs average {len(t['content_vs_average'])}/{len(CONTENT_METRICS)}, "
            f"fidelity wins vs max {len(t['fidelity_vs_max'])}/{len(FIDELITY_METRICS)}: "
            f"{'holds' if t['holds'] else 'does not hold'}"
        )
    console.print("written: " + ", ".join(str(p) for p in paths.values()))


def main() -> None:
    typer.run(quality_command)


if __name__ == "__main__":
    main()
