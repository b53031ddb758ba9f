"""``tsjnet train CONFIG``: the typer command (registered by tsjnet_sdk.cli as ``app.command("train")``).

Imports no torch at module level: ``import tsjnet_sdk.cli`` must stay light; torch is imported inside
the command. Also runnable as ``python -m tsjnet_sdk.training CONFIG`` (what torchrun launches)::

    torchrun --nproc_per_node 4 -m tsjnet_sdk.training training/configs/tsjnet_paper.toml
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from tsjnet_sdk.cli_support import error_line


def train_command(
    config: Path = typer.Argument(..., help="Training config (.toml, or .yaml with PyYAML); see training/configs/."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in the config's out_dir from last.state.pt."),
    resume_from: Optional[Path] = typer.Option(
        None, "--resume-from", help="Continue from this training state file (*.state.pt)."
    ),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", "-o", help="Override run.out_dir."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Override run.max_steps."),
    device: Optional[str] = typer.Option(None, "--device", help="Override run.device (auto, cpu, cuda, cuda:N)."),
    set_: Optional[List[str]] = typer.Option(
        None,
        "--set",
        help="Override any config value: section.key=value (TOML syntax), e.g. --set data.crop_size=128. Repeatable.",
    ),
) -> None:
    """Train TSJNet (fusion + detection/segmentation drivers) from a config; one process or torchrun."""
    from rich.console import Console

    from tsjnet_sdk.training.config import ConfigError, load_config

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    overrides = list(set_ or [])
    if max_steps is not None:
        overrides.append(f"run.max_steps={max_steps}")
    if device is not None:
        overrides.append(f'run.device="{device}"')
    try:
        cfg = load_config(config, overrides)
    except ConfigError as e:
        error_line(console, e)
        raise typer.Exit(2) from None
    if out_dir is not None:
        cfg.run.out_dir = str(out_dir.resolve())
    if resume and resume_from is not None:
        console.print("[red]error:[/red] give --resume or --resume-from, not both")
        raise typer.Exit(2)

    from tsjnet_sdk.imaging import ImageError
    from tsjnet_sdk.training.data import DataError
    from tsjnet_sdk.training.tasks import TaskWeightsError
    from tsjnet_sdk.training.trainer import Trainer, TrainingError

    try:
        summary = Trainer(cfg, resume=resume_from or resume or None, console=console).fit()
    except (DataError, ImageError, TrainingError, TaskWeightsError, FileNotFoundError) as e:
        error_line(console, e)
        raise typer.Exit(1) from None
    if summary.get("rank", 0) != 0:  # torchrun: one summary line, from rank 0
        return
    if summary.get("first_loss") is not None:
        typer.echo(
            f"trained {summary['steps']} step(s): loss {summary['first_loss']:.5f} -> {summary['last_loss']:.5f}, "
            f"{summary['sec_per_step']:.2f} s/step; checkpoint {summary['last']}"
        )
    else:
        typer.echo(f"done: {summary['steps']} step(s); checkpoint {summary['last']}")


def select_command(
    config: Path = typer.Argument(..., help="The run's training config (its out_dir holds val_log.csv and step_N.safetensors)."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", "-o", help="Override run.out_dir."),
) -> None:
    """Choose a checkpoint of a run on its validation pairs, next to the classical baselines' scores."""
    from tsjnet_sdk.training.config import ConfigError
    from tsjnet_sdk.training.select import main

    try:
        main(str(config), str(out_dir) if out_dir else None)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None


def ship_command(
    checkpoint: Path = typer.Argument(..., help="A checkpoint written by `tsjnet train`."),
    config: Path = typer.Argument(..., help="The training config of that run (recorded in the metadata)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output file (default: the package's shipped weights)."),
) -> None:
    """Turn a training checkpoint into the SDK's shipped weights (float16, provenance in the metadata)."""
    from tsjnet_sdk.hashing import file_sha256
    from tsjnet_sdk.shipped import SHIPPED_WEIGHTS
    from tsjnet_sdk.training.ship import ship

    try:
        path = ship(checkpoint, config, out or SHIPPED_WEIGHTS)
    except (FileNotFoundError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB, sha256 {file_sha256(path)})")


def plot_command(
    log: Path = typer.Argument(..., help="A training log (train_log.csv)."),
    out: Path = typer.Argument(..., help="The PNG to write."),
) -> None:
    """Plot the loss curves of a training log."""
    from tsjnet_sdk.training.plot import PLOTTED, plot_curves, read_curves

    curves = read_curves(log)
    plot_curves(curves, out, title=f"{log}", keys=[k for k in PLOTTED if k in curves])
    typer.echo(f"wrote {out}")
