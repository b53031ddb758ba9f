"""``tsjnet build-kernels``: the typer command for kernels/build.py (also ``python -m tsjnet_sdk.kernels.build``).

Imports nothing heavy at module level (``import tsjnet_sdk.cli`` must stay light)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

# Kept in step with build.PROFILES / build.TARGETS (tests/test_cli_commands.py checks it) so that this
# module does not import build.py just to show the help.
PROFILES = ("full", "ci", "tsjnet")
TARGETS = ("sm_86", "sm_87", "sm_89", "sm_90", "sm_120")


def build_kernels_command(
    out: Optional[Path] = typer.Option(
        None, "--out", help="Output folder (default: $TSJNET_KERNELS_DIR or ~/.cache/tsjnet_sdk/kernels/<source hash>)."
    ),
    profile: str = typer.Option("full", "--profile", help=f"Build profile: {' | '.join(PROFILES)}."),
    targets: str = typer.Option(",".join(TARGETS), "--targets", help="Comma-separated sm_XY list."),
    jobs: Optional[int] = typer.Option(None, "--jobs", help="Parallel compiler processes (default: CPU count)."),
    no_plugin: bool = typer.Option(False, "--no-plugin", help="Skip the TensorRT plugin PTX."),
) -> None:
    """Compile the CUDA neighborhood-attention kernel (PTX + cubins per GPU target, plugin PTX) with nvcc."""
    from tsjnet_sdk.kernels.build import KernelBuildError, build

    if profile not in PROFILES:
        typer.echo(f"error: --profile must be one of {', '.join(PROFILES)}, got {profile!r}", err=True)
        raise typer.Exit(2)
    try:
        build(out, profile, [t.strip() for t in targets.split(",") if t.strip()], jobs, plugin=not no_plugin)
    except KernelBuildError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
