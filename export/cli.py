"""``tsjnet export``: checkpoint -> ONNX or TensorRT engine (imports torch only when it runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

console = Console(stderr=True, soft_wrap=True)


def export_command(
    checkpoint: Path = typer.Argument(..., help="tsjnet checkpoint (.safetensors)."),
    format: str = typer.Option("onnx", "--format", "-f", help="onnx | engine."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output file (default beside the checkpoint)."),
    fp16: bool = typer.Option(False, "--fp16", help="FP16 (I/O stays float32; softmax/norms/sigmoid in float32)."),
    na: str = typer.Option("decomposed", "--na", help="decomposed (standard ONNX ops) | plugin (custom node for the TensorRT plugin)."),
    static: Optional[tuple[int, int]] = typer.Option(None, "--static", help="ONNX: fixed H W instead of dynamic shapes."),
    batch: int = typer.Option(1, "--batch", help="ONNX --static: fixed batch size. Engine: maximum batch of the profile."),
    opset: int = typer.Option(18, "--opset", help="ONNX opset (18..23)."),
    simplify: bool = typer.Option(True, "--simplify/--no-simplify", help="Simplify the graph with onnxslim."),
    parity: bool = typer.Option(True, "--parity/--no-parity", help="Check the export against the PyTorch model."),
    parity_pair: Optional[tuple[Path, Path]] = typer.Option(None, "--parity-pair", help="IR VIS images for the parity check (default: built-in scene)."),
    min_hw: tuple[int, int] = typer.Option((32, 32), "--min", help="Engine profile: smallest H W."),
    opt_hw: tuple[int, int] = typer.Option((480, 640), "--opt", help="Engine profile: H W to optimise for."),
    max_hw: tuple[int, int] = typer.Option((720, 1280), "--max", help="Engine profile: largest H W."),
    workspace: Optional[float] = typer.Option(None, "--workspace", help="Engine: builder workspace in GiB."),
    trt: Optional[str] = typer.Option(None, "--trt", help="Engine: tensorrt | tensorrt_rtx (default: the installed one)."),
    compute_capability: Optional[str] = typer.Option(None, "--compute-capability", help="tensorrt_rtx: targets, e.g. 8.6,8.9."),
    timing_cache: Optional[Path] = typer.Option(None, "--timing-cache", help="Engine: timing cache file, reused across builds."),
    plugin_lib: Optional[Path] = typer.Option(
        None, "--plugin-lib", help="Engine, --na plugin: compiled plugin library (tsjnet build-plugin; default $TSJNET_TRT_PLUGIN)."
    ),
) -> None:
    """Export a checkpoint to ONNX or to a TensorRT engine, with a parity report."""
    if format not in ("onnx", "engine"):
        console.print(f"[red]error:[/red] unknown --format {format!r}; choose onnx or engine")
        raise typer.Exit(2)
    try:
        from tsjnet_sdk.export.onnx_export import ExportError
    except ImportError as e:
        console.print(f"[red]error:[/red] export needs the export extras ({e.name} missing): pip install 'tsjnet-sdk[export]'")
        raise typer.Exit(2) from None

    def say(line: str) -> None:
        console.print(line, highlight=False)

    try:
        if format == "onnx":
            from tsjnet_sdk.export.onnx_export import export_onnx

            result = export_onnx(
                checkpoint, output, na=na, fp16=fp16, static=(batch, *static) if static else None, opset=opset,
                simplify=simplify, parity=parity, parity_pair=parity_pair, progress=say,
            )
        else:
            from tsjnet_sdk.export.engine_export import build_engine

            result = build_engine(
                checkpoint, output, fp16=fp16, na=na, min_shape=(1, *min_hw), opt_shape=(1, *opt_hw),
                max_shape=(batch, *max_hw), workspace_gb=workspace, flavour=trt,
                compute_capabilities=compute_capability.split(",") if compute_capability else None,
                timing_cache=timing_cache, plugin_library=plugin_lib, opset=opset, parity=parity, parity_pair=parity_pair, progress=say,
            )
    except ExportError as e:
        console.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    if result.parity is not None:
        p = result.parity
        typer.echo(
            f"parity vs PyTorch ({p['input']}): max abs error {p['max_abs_error']:.2e}, mean {p['mean_abs_error']:.2e}, "
            f"PSNR {p['psnr_db']:.1f} dB (floor {p['psnr_floor_db']:.0f} dB) -> {result.parity_path}"
        )
    typer.echo(f"exported {result.path}")
