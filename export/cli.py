"""``tsjnet export``: checkpoint / ONNX / shipped model -> ONNX or TensorRT engine (imports torch only when it runs
an export from a checkpoint)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from tsjnet_sdk.cli_support import error_line
from tsjnet_sdk.export.common import DEFAULT_MAX_HW, DEFAULT_MIN_HW, DEFAULT_OPT_HW
from tsjnet_sdk.export.formats import FORMATS, ExportOptions

console = Console(stderr=True, soft_wrap=True)


def _source_path(model: str, format: str, fp16: bool) -> Path:
    """A model file, or a shipped model's name (``tsjnet-edge``): for engines its ONNX (fp16 ONNX with --fp16:
    float32 where precision matters, and what strongly typed TensorRT needs), so the device needs no torch;
    for ONNX exports its checkpoint."""
    from tsjnet_sdk import shipped

    if shipped.is_shipped_name(model):
        files = shipped.SHIPPED_MODELS[model]
        if format != "engine":
            return files.checkpoint
        return files.onnx_fp16 if fp16 and files.onnx_fp16.exists() else files.onnx
    return Path(model)


def export_command(
    model: str = typer.Argument(
        ..., help="Checkpoint (.safetensors), tsjnet ONNX file, or a shipped model's name (tsjnet-edge)."
    ),
    format: str = typer.Option("onnx", "--format", "-f", help=" | ".join(FORMATS) + " (export/formats.py)."),
    output: Optional[Path] = typer.Option(
        None, "-o", "--output", help="Output file (default: <name>[_fp16].<format> in the current folder)."
    ),
    fp16: bool = typer.Option(False, "--fp16", help="FP16 (I/O stays float32; softmax/norms/sigmoid in float32)."),
    na: Optional[str] = typer.Option(
        None,
        "--na",
        help="decomposed (standard ONNX ops) | plugin (custom node for the TensorRT plugin); default decomposed, "
        "or the ONNX's own mode.",
    ),
    static: Optional[tuple[int, int]] = typer.Option(None, "--static", help="ONNX: fixed H W instead of dynamic shapes."),
    batch: int = typer.Option(1, "--batch", help="ONNX --static: fixed batch size. Engine: maximum batch of the profile."),
    opset: Optional[int] = typer.Option(None, "--opset", help="ONNX opset (18..23; default 18). Checkpoints only."),
    simplify: bool = typer.Option(True, "--simplify/--no-simplify", help="Simplify the graph with onnxslim."),
    parity: bool = typer.Option(True, "--parity/--no-parity", help="Check the export against the PyTorch model (checkpoints)."),
    parity_pair: Optional[tuple[Path, Path]] = typer.Option(
        None, "--parity-pair", help="IR VIS images for the parity check (default: built-in scene)."
    ),
    min_hw: tuple[int, int] = typer.Option(DEFAULT_MIN_HW, "--min", help="Engine profile: smallest H W."),
    opt_hw: tuple[int, int] = typer.Option(DEFAULT_OPT_HW, "--opt", help="Engine profile: H W to optimise for."),
    max_hw: tuple[int, int] = typer.Option(DEFAULT_MAX_HW, "--max", help="Engine profile: largest H W."),
    workspace: Optional[float] = typer.Option(None, "--workspace", help="Engine: builder workspace in GiB."),
    trt: Optional[str] = typer.Option(None, "--trt", help="Engine: tensorrt | tensorrt_rtx (default: the installed one)."),
    compute_capability: Optional[str] = typer.Option(None, "--compute-capability", help="tensorrt_rtx: targets, e.g. 8.6,8.9."),
    timing_cache: Optional[Path] = typer.Option(None, "--timing-cache", help="Engine: timing cache file, reused across builds."),
    plugin_lib: Optional[Path] = typer.Option(
        None,
        "--plugin-lib",
        help="Engine, --na plugin: compiled plugin library (tsjnet build-plugin; default $TSJNET_TRT_PLUGIN).",
    ),
    sidecar_for: Optional[Path] = typer.Option(
        None,
        "--sidecar-for",
        help="Describe an engine built outside tsjnet (trtexec) from this ONNX: writes ENGINE.tsjnet.json (add --fp16 if built with --fp16).",
    ),
) -> None:
    """Export a model to ONNX or to a TensorRT engine, with a parity report; engines build from ONNX without torch."""
    if format not in FORMATS:
        error_line(console, f"unknown --format {format!r}; choose {' or '.join(FORMATS)}")
        raise typer.Exit(2)
    from tsjnet_sdk.export.common import ExportError

    def say(line: str) -> None:
        console.print(line, highlight=False, markup=False)

    source = _source_path(model, "engine" if sidecar_for is not None else format, fp16 and sidecar_for is None)
    try:
        if sidecar_for is not None:
            from tsjnet_sdk.export.sidecar import write_engine_sidecar

            typer.echo(f"wrote {write_engine_sidecar(sidecar_for, source, fp16=fp16)}")
            return
        options = ExportOptions(
            fp16=fp16,
            na=na,
            static=static,
            batch=batch,
            opset=opset,
            simplify=simplify,
            parity=parity,
            parity_pair=parity_pair,
            min_hw=min_hw,
            opt_hw=opt_hw,
            max_hw=max_hw,
            workspace_gb=workspace,
            trt=trt,
            compute_capabilities=tuple(compute_capability.split(",")) if compute_capability else None,
            timing_cache=timing_cache,
            plugin_lib=plugin_lib,
        )
        result = FORMATS[format].run(source, output, options, say)
    except ImportError as e:
        error_line(
            console,
            f"exporting from a checkpoint needs the export extras ({e.name} missing): pip install "
            "'tsjnet-sdk[export]' (engines from an ONNX file need only TensorRT)",
        )
        raise typer.Exit(2) from None
    except ExportError as e:
        error_line(console, e)
        raise typer.Exit(2) from None
    if result.parity is not None:
        p = result.parity
        typer.echo(
            f"parity of {FORMATS[format].parity_subject} vs PyTorch ({p['input']}): max abs error {p['max_abs_error']:.2e}, "
            f"mean {p['mean_abs_error']:.2e}, PSNR {p['psnr_db']:.1f} dB (floor {p['psnr_floor_db']:.0f} dB) -> {result.parity_path}"
        )
    elif format == "engine":
        typer.echo("parity: not checked here (the engine runs on a GPU only; the source ONNX's own report still applies)")
    typer.echo(f"exported {result.path}")
