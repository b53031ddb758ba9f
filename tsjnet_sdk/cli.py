"""The ``tsjnet`` command line (typer). Heavy imports (torch) happen inside the commands that need them,
so ``tsjnet --version`` and the metrics commands start fast and work without torch."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from tsjnet_sdk._version import __version__
from tsjnet_sdk.benchmarks.cli import (
    bench_command,
    flops_command,
    gpu_verify_command,
    metrics_speed_command,
    onnx_rows_command,
    report_command,
    soak_command,
)
from tsjnet_sdk.benchmarks.quality import quality_command
from tsjnet_sdk.demo import demo_command
from tsjnet_sdk.export.cli import export_command
from tsjnet_sdk.kernels.cli import build_kernels_command
from tsjnet_sdk.metrics.cli import eval_command
from tsjnet_sdk.runtime.options import FLAG_HELP, options_from_flags
from tsjnet_sdk.training.cli import plot_command, select_command, ship_command, train_command

app = typer.Typer(
    name="tsjnet",
    help="TSJNet infrared + visible image fusion SDK.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"tsjnet-sdk {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version_callback, is_eager=True, help="Print the SDK version and exit."
    ),
) -> None:
    """TSJNet infrared + visible image fusion SDK."""


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _open_fuser(model: Optional[Path], config: Optional[str], seed: int, backend: str, device: str, gray: bool, tile: Optional[int],
                options: Optional[list] = None):
    """A Fuser for --model; else for a randomly initialised --config; else for the shipped tsjnet-edge
    weights (or, when a stripped install lacks them, a random tsjnet-edge with a warning)."""
    from tsjnet_sdk import shipped
    from tsjnet_sdk.runtime import BackendUnavailable, Fuser, ModelFileError

    try:
        if model is None and config is None:
            net, _, trained = shipped.resolve_model(None)
            if trained:
                console.print(f"model: the shipped trained {shipped.FALLBACK_CONFIG} weights ({shipped.SHIPPED_WEIGHTS.name})")
            else:
                console.print(f"[yellow]warning:[/yellow] {shipped.missing_weights_warning()}")
            return Fuser(net, backend=backend, device=device, gray=gray, tile=tile, options=options)
        if model is not None:
            return Fuser(model, backend=backend, device=device, gray=gray, tile=tile, options=options)
        import torch

        from tsjnet_sdk.models import create_model

        torch.manual_seed(seed)
        console.print(
            f"[yellow]warning:[/yellow] no --model given: config {config!r} with RANDOM weights (seed {seed}); "
            "the output is not a real fusion"
        )
        return Fuser(create_model(config).eval(), backend=backend, device=device, gray=gray, tile=tile, options=options)
    except (ModelFileError, BackendUnavailable, FileNotFoundError, ValueError, KeyError) as e:
        raise _fail(str(e).strip("'\"")) from None


@app.command()
def fuse(
    ir: Path = typer.Argument(..., help="Infrared image, or a folder of them (paired with VIS by file name)."),
    vis: Path = typer.Argument(..., help="Visible image (RGB or grey, same size as IR), or a folder."),
    output: Optional[Path] = typer.Option(
        None, "-o", "--output", help="Output image (default fused.png), or output folder for folders (default fused/)."
    ),
    model: Optional[Path] = typer.Option(
        None, "--model", "-m", help="Checkpoint, ONNX file or engine (default: the shipped trained tsjnet-edge weights)."
    ),
    config: Optional[str] = typer.Option(
        None, help="Named config with RANDOM weights instead of a model (e.g. tsjnet, to time the faithful model)."
    ),
    backend: str = typer.Option("auto", help="auto | torch | onnxruntime | tensorrt."),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N."),
    gray: bool = typer.Option(False, "--gray", help="Write the fused luminance only, even for colour visible images."),
    tile: Optional[int] = typer.Option(None, help="Fuse in overlapping tiles of this size (large frames)."),
    seed: int = typer.Option(0, help="Seed for the random weights (without --model)."),
    ort_threads: Optional[int] = typer.Option(None, help=FLAG_HELP["ort_threads"]),
    ort_cache: Optional[Path] = typer.Option(None, help=FLAG_HELP["ort_cache"]),
    providers: Optional[str] = typer.Option(None, help=FLAG_HELP["providers"]),
    trt_ep_fp16: bool = typer.Option(False, "--trt-ep-fp16", help=FLAG_HELP["trt_ep_fp16"]),
    trt_ep_cache: Optional[Path] = typer.Option(None, help=FLAG_HELP["trt_ep_cache"]),
    dtype: str = typer.Option("fp32", help=FLAG_HELP["dtype"]),
) -> None:
    """Fuse an IR/visible pair, or two folders of pairs, and write the fused images."""
    from rich.progress import Progress

    from tsjnet_sdk.imaging import IMAGE_SUFFIXES, ImageError, write_image

    folders = ir.is_dir() or vis.is_dir()
    if folders and not (ir.is_dir() and vis.is_dir()):
        raise _fail(f"IR and VIS must both be files or both be folders ({ir}, {vis})")
    if folders:
        from tsjnet_sdk.pairing import PairingError, pair_folders

        try:
            matched = pair_folders(ir, vis)
        except PairingError as e:
            raise _fail(str(e)) from None
        pairs, unpaired = matched.rows, matched.unpaired_labels(("ir", "visible"))
        if not pairs:
            raise _fail(f"no pairs: no file names in common between {ir} and {vis}")
        out_dir = output or Path("fused")
        if out_dir.suffix.lower() in IMAGE_SUFFIXES:
            raise _fail(f"for folders, --output is a folder, got the file name {out_dir}")
        jobs = [(name, i, v, out_dir / f"{name}.png") for name, i, v in pairs]
    else:
        unpaired, jobs = [], [(ir.stem, ir, vis, output or Path("fused.png"))]

    try:
        options = options_from_flags(ort_threads, ort_cache, providers, trt_ep_fp16, trt_ep_cache, dtype)
    except ValueError as e:
        raise _fail(str(e)) from None
    fuser = _open_fuser(model, config, seed, backend, device, gray, tile, options)
    console.print(f"{fuser!r}")
    failures: list[str] = []
    start = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("fusing", total=len(jobs))
        for name, ir_path, vis_path, out_path in jobs:
            try:
                write_image(out_path, fuser(ir_path, vis_path))
            except ImageError as e:
                failures.append(f"{name}: {e}")
                console.print(f"[red]skipped[/red] {name}: {e}")
            except (OSError, RuntimeError) as e:  # full disk (DiskFullError), corrupt weights (ModelOutputError)
                raise _fail(f"{name}: {e}") from None
            progress.advance(task)
    elapsed = time.perf_counter() - start
    done = len(jobs) - len(failures)
    where = jobs[0][3] if not folders else jobs[0][3].parent
    typer.echo(f"fused {done}/{len(jobs)} pair(s) in {elapsed:.1f} s with {fuser.backend} on {fuser.device} -> {where}")
    for name in unpaired:
        typer.echo(f"unpaired: {name}")
    if failures:
        raise typer.Exit(1)


@app.command()
def info(model: Path = typer.Argument(..., help="Checkpoint, ONNX file or engine.")) -> None:
    """Say what a model file is: kind, config, precision, NA mode, shapes, metadata."""
    from rich.table import Table

    from tsjnet_sdk.runtime import ModelFileError, inspect_artifact

    try:
        art = inspect_artifact(model)
    except (ModelFileError, FileNotFoundError, ValueError) as e:
        raise _fail(str(e)) from None
    table = Table(title=f"{model} ({art.kind})", show_header=False)
    table.add_row("kind", art.kind)
    table.add_row("config", str(art.config_name))
    for key, value in sorted(art.metadata.items()):
        if key != "config":
            table.add_row(key, str(value))
    Console().print(table)


@app.command()
def doctor() -> None:
    """Versions of everything the SDK can use, and what each backend would do on this machine."""
    from tsjnet_sdk.runtime.doctor import collect_report

    for section, rows in collect_report().items():
        typer.echo(f"[{section}]")
        for key, value in rows.items():
            typer.echo(f"  {key:<22} {value}")


@app.command("build-plugin")
def build_plugin_command(
    output: Optional[Path] = typer.Option(
        None, "-o", "--output", help="Library path (default $TSJNET_TRT_PLUGIN, else ~/.cache/tsjnet_sdk/trt_plugin/)."
    ),
    trt_include: Optional[Path] = typer.Option(
        None, "--trt-include", help="Folder holding NvInferRuntime.h (default: $TSJNET_TRT_INCLUDE, $TRT_INCLUDE_DIR, "
        "$TENSORRT_ROOT/include, /usr/include/<arch>-linux-gnu, ...)."
    ),
    arch: Optional[list[str]] = typer.Option(
        None, "--arch", help="GPU target, repeatable: sm_87 (Orin), sm_86/sm_89 (RTX 30/40), sm_90 (default: this GPU)."
    ),
    tsjnet_only: bool = typer.Option(False, "--tsjnet-only", help="Only TSJNet's kernels (kernel 7, head_dim 32): faster build."),
) -> None:
    """Compile the TensorRT NA plugin library (TensorRT >= 10.0, e.g. JetPack 6.1/6.2) for --na plugin engines."""
    from tsjnet_sdk.kernels.build_plugin import PluginBuildError, build_plugin

    console.print("compiling the TensorRT plugin library (nvcc; about a minute per GPU target for all kernels)")
    try:
        path = build_plugin(output, trt_include=trt_include, archs=arch, tsjnet_only=tsjnet_only, verbose=True)
    except PluginBuildError as e:
        raise _fail(str(e)) from None
    from tsjnet_sdk.hashing import file_sha256

    typer.echo(f"built {path} (sha256 {file_sha256(path)[:16]}...)")


app.command("eval")(eval_command)
app.command("export")(export_command)
app.command("bench")(bench_command)
app.command("gpu-verify")(gpu_verify_command)
app.command("quality")(quality_command)
app.command("demo")(demo_command)
app.command("train")(train_command)
app.command("select")(select_command)
app.command("ship")(ship_command)
app.command("plot-log")(plot_command)
app.command("bench-report")(report_command)
app.command("flops")(flops_command)
app.command("bench-metrics")(metrics_speed_command)
app.command("soak")(soak_command)
app.command("bench-onnx")(onnx_rows_command)
app.command("build-kernels")(build_kernels_command)


if __name__ == "__main__":
    app()
