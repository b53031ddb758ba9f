"""The ``tsjnet`` command line (typer). Heavy imports (torch) happen inside the commands that need them,
so ``tsjnet --version`` and the metrics commands start fast and work without torch."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from tsjnet_sdk._version import __version__
from tsjnet_sdk.metrics.cli import eval_command

app = typer.Typer(
    name="tsjnet",
    help="TSJNet infrared + visible image fusion SDK.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"tsjnet-sdk {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Optional[bool] = typer.Option(  # noqa: UP007 (typer needs Optional on 3.10)
        None, "--version", callback=_version_callback, is_eager=True, help="Print the SDK version and exit."
    ),
) -> None:
    """TSJNet infrared + visible image fusion SDK."""


@app.command()
def fuse(
    ir: Path = typer.Argument(..., help="Infrared image (8/16-bit grey, or grey stored as RGB)."),
    vis: Path = typer.Argument(..., help="Visible image (RGB or grey), same size as the IR image."),
    output: Path = typer.Option(Path("fused.png"), "-o", "--output", help="Output image (.png, .jpg, .tif)."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", "-c", help="Model checkpoint (.safetensors)."),  # noqa: UP007
    config: str = typer.Option("tsjnet", help="Named config to build when no checkpoint is given (random weights)."),
    gray: bool = typer.Option(False, "--gray", help="Write the fused luminance only, even for a colour visible image."),
    seed: int = typer.Option(0, help="Seed for random weights (without --checkpoint)."),
) -> None:
    """Fuse one IR/visible pair with the PyTorch model and write the fused image."""
    from tsjnet_sdk.imaging import ImageError, compose_output, from_unit_float, prepare_pair, read_image, write_image

    try:
        ir_y, vis_y, chroma = prepare_pair(read_image(ir), read_image(vis))
    except ImageError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None

    import torch

    from tsjnet_sdk.models import CheckpointError, create_model, load_checkpoint

    if checkpoint is not None:
        try:
            model = load_checkpoint(checkpoint)
        except (CheckpointError, FileNotFoundError) as e:
            console.print(f"[red]error:[/red] {e}")
            raise typer.Exit(2) from None
        source = f"checkpoint {checkpoint}"
    else:
        torch.manual_seed(seed)
        model = create_model(config).eval()
        source = f"config {config!r} with RANDOM weights (seed {seed}): no trained checkpoint given, the image is not a real fusion"
        console.print(f"[yellow]warning:[/yellow] {source}")

    n_params = sum(p.numel() for p in model.parameters())
    console.print(f"model: {model.config.name} ({n_params:,} parameters), input {ir_y.shape[1]}x{ir_y.shape[0]}")
    start = time.perf_counter()
    with console.status("fusing..."), torch.inference_mode():
        fused = model.fuse(torch.from_numpy(ir_y)[None, None], torch.from_numpy(vis_y)[None, None])[0, 0].numpy()
    elapsed = time.perf_counter() - start
    image = compose_output(fused, None if gray else chroma)
    write_image(output, from_unit_float(image))
    typer.echo(f"wrote {output} ({image.shape[1]}x{image.shape[0]}, {'colour' if image.ndim == 3 else 'grey'}) "
               f"in {elapsed:.1f} s from {source.split(':')[0]}")


app.command("eval")(eval_command)


if __name__ == "__main__":
    app()
