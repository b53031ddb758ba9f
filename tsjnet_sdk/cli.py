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
    default_path_command,
    detail_energy_command,
    flops_command,
    gpu_verify_command,
    int8_bench_command,
    metrics_speed_command,
    onnx_rows_command,
    report_command,
    soak_command,
)
from tsjnet_sdk.benchmarks.quality import quality_command
from tsjnet_sdk.cli_support import error_line, run_app
from tsjnet_sdk.demo import demo_command
from tsjnet_sdk.export.cli import export_command
from tsjnet_sdk.kernels.cli import build_kernels_command
from tsjnet_sdk.metrics.cli import eval_command
from tsjnet_sdk.runtime.backends import BACKEND_NAMES
from tsjnet_sdk.runtime.options import FLAG_HELP, options_from_flags
from tsjnet_sdk.training.cli import plot_command, select_command, ship_command, train_command
from tsjnet_sdk.video_cli import calibrate_command

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


def entry_point() -> None:
    """The ``tsjnet`` console script: the app, with a missing optional package reported in one line."""
    run_app(app, console)


def _fail(message: str, code: int = 2) -> typer.Exit:
    error_line(console, message)
    return typer.Exit(code)


def error_text(e: BaseException) -> str:
    """An exception's message as users should read it (KeyError's str() adds quotes; others stay whole)."""
    return str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)


def _open_fuser(
    model: Optional[Path],
    config: Optional[str],
    seed: int,
    backend: str,
    device: str,
    gray: bool,
    tile: Optional[int],
    options: Optional[list] = None,
    allow_foreign_model: bool = False,
    rig: Optional[Path] = None,
):
    """A Fuser for --model (a file or a shipped model's name); else for a randomly initialised --config;
    else for the default shipped model (tsjnet_sdk/shipped.py decides which file and backend)."""
    from tsjnet_sdk import shipped
    from tsjnet_sdk.runtime import BackendUnavailable, Fuser, ModelFileError

    try:
        if config is None:
            what, description, trained = shipped.resolve_model(None if model is None else str(model), backend, device)
            if trained:
                console.print(f"model: {description}", highlight=False, markup=False)
            else:
                error_line(console, shipped.missing_weights_warning(), "warning", "yellow")
            return Fuser(
                what,
                backend=backend,
                device=device,
                gray=gray,
                tile=tile,
                options=options,
                allow_foreign_model=allow_foreign_model,
                rig=rig,
            )
        import torch

        from tsjnet_sdk.models import create_model

        torch.manual_seed(seed)
        console.print(
            f"[yellow]warning:[/yellow] no --model given: config {config!r} with RANDOM weights (seed {seed}); "
            "the output is not a real fusion"
        )
        return Fuser(create_model(config).eval(), backend=backend, device=device, gray=gray, tile=tile, options=options, rig=rig)
    except (ModelFileError, BackendUnavailable, FileNotFoundError, ValueError, KeyError, ImportError) as e:
        raise _fail(error_text(e)) from None


@app.command()
def fuse(
    ir: str = typer.Argument(
        ...,
        help="Infrared image, a folder of them (paired with VIS by file name), a video file, "
        "or a camera: index (0), V4L2 path (/dev/video0), rtsp:// URL or GStreamer pipeline.",
    ),
    vis: str = typer.Argument(
        ..., help="Visible image (RGB or grey, same size as IR unless --rig), a folder, a video or a camera."
    ),
    output: Optional[Path] = typer.Option(
        None,
        "-o",
        "--output",
        help="Output image (default fused.png), output folder for folders (default fused/), "
        "or output video for videos/cameras (default fused.mp4).",
    ),
    model: Optional[Path] = typer.Option(
        None,
        "--model",
        "-m",
        help="Checkpoint, ONNX file, engine or shipped model name (default: the shipped tsjnet-edge, "
        "on ONNX Runtime when installed).",
    ),
    config: Optional[str] = typer.Option(
        None, help="Named config with RANDOM weights instead of a model (e.g. tsjnet, to time the faithful model)."
    ),
    backend: str = typer.Option("auto", help=" | ".join(BACKEND_NAMES) + "."),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N."),
    gray: bool = typer.Option(False, "--gray", help="Write the fused luminance only, even for colour visible images."),
    tile: Optional[int] = typer.Option(None, help="Fuse in overlapping tiles of this size (large frames)."),
    seed: int = typer.Option(0, help="Seed for the random weights (without --model)."),
    threads: Optional[int] = typer.Option(None, help=FLAG_HELP["threads"]),
    ort_threads: Optional[int] = typer.Option(None, help=FLAG_HELP["ort_threads"]),
    ort_cache: Optional[Path] = typer.Option(None, help=FLAG_HELP["ort_cache"]),
    providers: Optional[str] = typer.Option(None, help=FLAG_HELP["providers"]),
    trt_ep_fp16: bool = typer.Option(False, "--trt-ep-fp16", help=FLAG_HELP["trt_ep_fp16"]),
    trt_ep_cache: Optional[Path] = typer.Option(None, help=FLAG_HELP["trt_ep_cache"]),
    dtype: str = typer.Option("fp32", help=FLAG_HELP["dtype"]),
    allow_foreign_model: bool = typer.Option(
        False,
        "--allow-foreign-model",
        help="Run an ONNX file or engine without tsjnet metadata (your own ir/vis -> fused graph).",
    ),
    rig: Optional[Path] = typer.Option(
        None, "--rig", help="Rig file from tsjnet calibrate: registers unaligned cameras (docs/rig.md)."
    ),
    frames: Optional[Path] = typer.Option(
        None, "--frames", help="Videos/cameras: also write every fused frame as PNG into this folder."
    ),
    sync_tolerance: Optional[float] = typer.Option(
        None,
        "--sync-tolerance",
        help="Videos/cameras: pair frames whose timestamps differ by at most this many ms "
        "(default: half the slower stream's frame period).",
    ),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", help="Videos/cameras: stop after this many fused frames."),
) -> None:
    """Fuse an IR/visible pair, two folders of pairs, or two videos / cameras, and write the fused result."""
    from rich.progress import Progress

    from tsjnet_sdk.atomic import DiskFullError
    from tsjnet_sdk.imaging import ImageError, check_output_path, write_image
    from tsjnet_sdk.output_paths import output_file_problem, output_folder_problem
    from tsjnet_sdk.rig import RigError
    from tsjnet_sdk.runtime import ModelOutputError
    from tsjnet_sdk.video import is_video_path

    try:
        options = options_from_flags(threads, ort_threads, ort_cache, providers, trt_ep_fp16, trt_ep_cache, dtype)
    except ValueError as e:
        raise _fail(str(e)) from None
    if is_video_path(ir) or is_video_path(vis):
        from tsjnet_sdk.video_cli import fuse_streams

        fuser = _open_fuser(model, config, seed, backend, device, gray, tile, options, allow_foreign_model, rig)
        console.print(repr(fuser), markup=False, highlight=False)
        try:
            fuse_streams(fuser, ir, vis, output or Path("fused.mp4"), frames, sync_tolerance, max_frames, console)
        except (ValueError, OSError, ImportError, RuntimeError) as e:  # VideoError, ImageError, RigError, disk full, no OpenCV
            raise _fail(str(e)) from None
        return
    ir, vis = Path(ir), Path(vis)

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
        problem = output_folder_problem(out_dir, (ir, vis))
        jobs = [(name, i, v, out_dir / f"{name}.png") for name, i, v in pairs]
    else:
        unpaired, jobs = [], [(ir.stem, ir, vis, output or Path("fused.png"))]
        try:
            check_output_path(jobs[0][3])
            problem = output_file_problem(jobs[0][3], (ir, vis))
        except ImageError as e:
            problem = str(e)
    if problem:  # found before any model loads or pair is fused
        raise _fail(problem)

    fuser = _open_fuser(model, config, seed, backend, device, gray, tile, options, allow_foreign_model, rig)
    console.print(repr(fuser), markup=False, highlight=False)
    failures: list[str] = []
    start = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("fusing", total=len(jobs))
        for name, ir_path, vis_path, out_path in jobs:
            try:
                write_image(out_path, fuser(ir_path, vis_path))
            except (DiskFullError, ModelOutputError, RuntimeError) as e:  # the same for every pair: stop now
                raise _fail(f"{name}: {e}") from None
            except (ImageError, RigError, ValueError, OSError) as e:  # this pair only (a bad file, an unwritable output)
                failures.append(f"{name}: {e}")
                error_line(console, f"{name}: {e}", "skipped")
            progress.advance(task)
    elapsed = time.perf_counter() - start
    done = len(jobs) - len(failures)
    where = jobs[0][3] if not folders else jobs[0][3].parent
    typer.echo(f"fused {done}/{len(jobs)} pair(s) in {elapsed:.1f} s with {fuser.backend} on {fuser.device} -> {where}")
    for name in unpaired:
        typer.echo(f"unpaired: {name}")
    if failures:
        typer.echo(f"failed {len(failures)} pair(s):")
        for line in failures:
            typer.echo(f"  {line}")
        raise typer.Exit(1)


@app.command()
def info(model: Path = typer.Argument(..., help="Checkpoint, ONNX file, engine, or a shipped model's name.")) -> None:
    """Say what a model file is: kind, config, precision, NA mode, shapes, metadata."""
    from rich.table import Table

    from tsjnet_sdk import shipped
    from tsjnet_sdk.runtime import ModelFileError, inspect_artifact

    files = shipped.SHIPPED_MODELS[str(model)].files() if shipped.is_shipped_name(str(model)) else []
    if files:  # a shipped name: list its files, describe the last (the ONNX, whose metadata says most)
        typer.echo(f"{model}: {', '.join(str(p) for p in files)}")
        model = files[-1]
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
        None,
        "--trt-include",
        help="Folder holding NvInferRuntime.h (default: $TSJNET_TRT_INCLUDE, $TRT_INCLUDE_DIR, "
        "$TENSORRT_ROOT/include, /usr/include/<arch>-linux-gnu, ...).",
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


# User commands: what people who fuse, deploy, evaluate or train run.
app.command("calibrate")(calibrate_command)
app.command("eval")(eval_command)
app.command("export")(export_command)
app.command("bench")(bench_command)
app.command("quality")(quality_command)
app.command("demo")(demo_command)
app.command("train")(train_command)
app.command("select")(select_command)

# Developer commands live in one group, `tsjnet dev ...`, so that `tsjnet --help` lists the user's tasks.
dev_app = typer.Typer(
    name="dev", help="Developer tools: kernels, GPU verification, profiling, reports, shipping weights.", no_args_is_help=True
)
DEV_COMMANDS = {
    "build-kernels": build_kernels_command,
    "gpu-verify": gpu_verify_command,
    "ship": ship_command,
    "plot-log": plot_command,
    "bench-report": report_command,
    "bench-metrics": metrics_speed_command,
    "bench-default": default_path_command,
    "bench-onnx": onnx_rows_command,
    "detail-energy": detail_energy_command,
    "bench-int8": int8_bench_command,
    "flops": flops_command,
    "soak": soak_command,
}
for _name, _command in DEV_COMMANDS.items():
    dev_app.command(_name)(_command)
    app.command(_name, hidden=True)(_command)  # the earlier top-level spelling keeps working, unlisted
app.add_typer(dev_app)


if __name__ == "__main__":
    entry_point()
