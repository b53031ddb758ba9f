"""``tsjnet eval``: fusion-quality metrics of a folder of fused images.

:func:`eval_command` is a plain typer command function; the application registers it with
``app.command("eval")(eval_command)``. No torch import.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import NoReturn, Optional

import typer

from tsjnet_sdk.cli_support import error_line

__all__ = ["eval_command"]


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.4f}" if abs(v) < 1000 else f"{v:.2f}"


def eval_command(
    ir: Path = typer.Option(..., "--ir", help="Folder of infrared source images."),
    vis: Path = typer.Option(..., "--vis", help="Folder of visible source images."),
    fused: Path = typer.Option(..., "--fused", help="Folder of fused images, matched to the sources by file name."),
    preset: str = typer.Option("paper", "--preset", help="Metric conventions: paper (TSJNet Table 1, default), vifb, cdd."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="CSV to write (default: <fused>/metrics_<preset>.csv)."),
    metrics: Optional[str] = typer.Option(
        None, "--metrics", help="Comma-separated subset of metrics (e.g. SSIM,PSNR,Qcv); default: the preset's set."
    ),
) -> None:
    """Fusion-quality metrics per image (CSV with a final MEAN row) and dataset means."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from tsjnet_sdk.metrics.evaluate import resolve_metrics
    from tsjnet_sdk.metrics.folder import evaluate_folders, match_triples
    from tsjnet_sdk.metrics.presets import METRIC_INFO, get_preset

    out = Console()
    err = Console(stderr=True)

    def fail(message: str) -> NoReturn:
        error_line(err, message)
        raise typer.Exit(2)

    try:
        p = get_preset(preset)
        keys = resolve_metrics(metrics, p)
    except ValueError as e:
        fail(str(e))
    for label, folder in (("--ir", ir), ("--vis", vis), ("--fused", fused)):
        if not folder.is_dir():
            fail(f"{label} {folder}: not a folder")
    try:
        matched, unmatched = match_triples(ir, vis, fused)
    except ValueError as e:
        fail(str(e))
    for label, names in unmatched.items():
        if names:
            shown = ", ".join(names[:10]) + (f", ... ({len(names) - 10} more)" if len(names) > 10 else "")
            error_line(err, f"{len(names)} image(s) only in the {label} folder: {shown}", "unmatched", "yellow")
    if not matched:
        fail("no image name is present in all three folders; pairs are matched by file name without suffix")

    csv_path = output if output is not None else fused / f"metrics_{p.name}.csv"
    err.print(f"evaluating {len(matched)} image(s) with the [bold]{p.name}[/bold] preset: {p.description}")
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
    ) as progress:
        task = progress.add_task("metrics", total=len(matched))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                report = evaluate_folders(ir, vis, fused, p, metrics=keys, progress=lambda _name: progress.advance(task))
            except ValueError as e:
                fail(str(e))
    for message in dict.fromkeys(str(w.message) for w in caught):
        error_line(err, message, "warning", "yellow")
    report.write_csv(csv_path)

    means = report.means
    table = Table(title=f"Dataset means, preset '{p.name}' ({len(report.rows)} images)")
    table.add_column("metric")
    table.add_column("mean", justify="right")
    table.add_column("better")
    for k in keys:
        table.add_row(k, _fmt(means[k]), "higher" if METRIC_INFO[k][1] else "lower")
    out.print(table)
    out.print(f"per-image values ({p.name} preset): {csv_path}")
