"""``tsjnet bench``: latency and accuracy of every backend against the PyTorch reference.

Imports neither torch nor onnxruntime at import time (the CLI must start fast on torch-free
devices); everything heavy is imported inside the command.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer

from tsjnet_sdk.cli_support import error_line
from tsjnet_sdk.results import results_dir

#: benchmarks/results in a source checkout, ./tsjnet-results/bench for an installed package
DEFAULT_OUT = results_dir("bench", "benchmarks/results")


def _split(values: Optional[list[str]]) -> list[str]:
    """Options given repeatedly and/or comma-separated -> one flat list."""
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def bench_command(
    model: str = typer.Option(
        "tsjnet",
        "--model",
        "-m",
        help="checkpoint (e.g. the shipped tsjnet_sdk/weights/tsjnet-edge.safetensors) or a config name (random init, seeded)",
    ),
    size: Optional[list[str]] = typer.Option(
        None, "--size", "-s", help="W x H, repeatable (default 640x480; also e.g. 512x512, 1024x768)"
    ),
    batch: Optional[list[str]] = typer.Option(None, "--batch", "-b", help="batch sizes, repeatable (default 1)"),
    rows: Optional[list[str]] = typer.Option(
        None,
        "--rows",
        "-r",
        help="row ids, comma-separated (default: all; GPU rows are skipped "
        "without a GPU). 'none' runs only the NA micro-benchmark",
    ),
    warmup: int = typer.Option(3, help="warm-up calls per row"),
    runs: int = typer.Option(20, "--runs", "-n", help="timed calls per row"),
    accuracy_pairs: int = typer.Option(4, help="real pairs each row is compared on against the reference"),
    calib_pairs: int = typer.Option(4, help="real pairs for static int8 calibration (disjoint from accuracy pairs)"),
    metrics: Optional[str] = typer.Option(None, help="fusion metrics, comma-separated (default: the preset's set)"),
    psnr_threshold: float = typer.Option(40.0, help="a row's accuracy holds at or above this PSNR (dB) vs reference"),
    snr_threshold: float = typer.Option(20.0, help="... and at or above this SNR (dB): error vs the reference's spread"),
    data: Optional[Path] = typer.Option(None, help="folder with ir/ and vi/ pairs (default ../shared/data/msrs/test)"),
    onnx: Optional[Path] = typer.Option(None, help="use this fp32 ONNX for the onnxruntime rows instead of exporting"),
    engine: Optional[Path] = typer.Option(None, help="use this engine for the TensorRT rows instead of building"),
    out: Path = typer.Option(DEFAULT_OUT, "--out", "-o", help="results folder"),
    work_dir: Optional[Path] = typer.Option(None, help="cache of checkpoints/exports (default ~/.cache/tsjnet-bench)"),
    name: Optional[str] = typer.Option(None, help="results file stem (default <machine>_<date>_<model>)"),
    seed: int = typer.Option(0, help="random-init seed"),
    ort_threads: Optional[int] = typer.Option(None, help="intra-op threads of the tuned ORT row (default: cores)"),
    torch_threads: Optional[int] = typer.Option(None, help="torch.set_num_threads (default: torch's choice)"),
    compile_timeout: float = typer.Option(600.0, help="seconds allowed for the torch.compile row (then: failed)"),
    row_timeout: float = typer.Option(3600.0, help="seconds allowed for other subprocess rows (int8 static)"),
    na: bool = typer.Option(True, "--na/--no-na", help="also run the neighborhood-attention micro-benchmark"),
    na_backends: str = typer.Option("reference,natten,cuda", help="NA implementations to time"),
    na_warmup: int = typer.Option(2, help="warm-up calls per NA shape (reference / cuda; natten on a CPU: none)"),
    na_runs: int = typer.Option(10, help="timed runs per NA shape (reference / cuda)"),
    natten_runs: int = typer.Option(1, help="timed runs per NA shape for natten on a CPU (it is slow there)"),
) -> None:
    """Latency and accuracy of every backend against the PyTorch reference (see benchmarks/README.md)."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from tsjnet_sdk.benchmarks.bench import DEFAULT_DATA, ROW_IDS, BenchSettings, parse_size, run_bench
    from tsjnet_sdk.benchmarks.report import print_console, write_results

    console = Console()
    if not console.is_terminal:  # logs and CI: rich would assume 80 columns and fold every cell
        console = Console(width=170)
    row_ids = _split(rows)
    only_na = row_ids == ["none"]
    try:
        settings = BenchSettings(
            model=model,
            sizes=tuple(parse_size(s) for s in (_split(size) or ["640x480"])),
            batches=tuple(int(b) for b in (_split(batch) or ["1"])),
            rows=tuple(row_ids) if row_ids and not only_na else None,
            warmup=warmup,
            runs=runs,
            accuracy_pairs=accuracy_pairs,
            calib_pairs=calib_pairs,
            metrics=tuple(_split([metrics])) if metrics else None,
            psnr_threshold_db=psnr_threshold,
            snr_threshold_db=snr_threshold,
            data_dir=data or DEFAULT_DATA,
            onnx=onnx,
            engine=engine,
            seed=seed,
            ort_threads=ort_threads,
            torch_threads=torch_threads,
            compile_timeout_s=compile_timeout,
            row_timeout_s=row_timeout,
        )
        if work_dir is not None:
            settings.work_dir = work_dir
        unknown = sorted(set(row_ids) - set(ROW_IDS) - {"none"})
        if unknown:
            raise ValueError(f"unknown rows {unknown}; choose from {', '.join(ROW_IDS)}")
        if runs < 1 and not only_na:
            raise ValueError("--runs must be at least 1")
    except ValueError as e:
        error_line(console, e)
        raise typer.Exit(2) from None

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def say(message: str) -> None:
            bar.update(task, description=message)

        def row_done(row: dict) -> None:
            if row["status"] == "ok":
                median = row["latency"]["end_to_end"]["median_ms"]
                ratio = (row.get("speedup_vs_reference") or {}).get("end_to_end")
                psnr = (row.get("accuracy_vs_reference") or {}).get("psnr_db")
                extra = (f", {ratio:.2f}x" if ratio else "") + (f", PSNR {psnr:.1f} dB" if psnr is not None else "")
                bar.console.print(f"[green]ok[/green] [{row['config']}] {row['id']}: {median:.1f} ms median{extra}")
            else:
                error_line(bar.console, f"[{row['config']}] {row['id']}: {row['reason']}", row["status"], "yellow")

        if only_na:
            from tsjnet_sdk.benchmarks.bench import SCHEMA
            from tsjnet_sdk.benchmarks.machine import describe_machine

            started = time.time()
            results = {
                "schema": SCHEMA,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                "machine": describe_machine(),
                "model": {"name": None},
                "settings": {"warmup": warmup, "runs": na_runs, "natten_runs": natten_runs},
                "configs": [],
                "notes": [],
            }
        else:
            results = run_bench(settings, progress=say, on_row=row_done)
        if na:
            from tsjnet_sdk.benchmarks.na_bench import run_na_bench

            results["na"] = run_na_bench(
                _split([na_backends]), warmup=na_warmup, runs=na_runs, natten_runs=natten_runs, progress=say
            )
        if only_na:
            results["duration_s"] = time.time() - started
    print_console(results, console)
    stem = name or None
    if only_na and stem is None:
        from tsjnet_sdk.benchmarks.report import results_stem

        stem = results_stem(results)
    paths = write_results(results, out, stem)
    for kind, path in paths.items():
        console.print(f"{kind}: {path}")


def gpu_verify_command(
    out: Optional[Path] = typer.Option(None, "--out", help="output folder (default benchmarks/results)"),
    kernels_dir: Optional[Path] = typer.Option(
        None, "--kernels-dir", help="prebuilt kernels (python -m tsjnet_sdk.kernels.build --out DIR); else built with nvcc"
    ),
    deadline: float = typer.Option(450.0, "--deadline", help="whole-run limit in seconds"),
    only: Optional[str] = typer.Option(None, "--only", help="comma-separated sections (default: all)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="CPU only: run the plumbing, verify nothing"),
) -> None:
    """Verify the GPU side (NA kernel, model, runtimes) on this machine in one run of <= ~8 min.

    Same as ``python scripts/gpu_verify.py``; see tsjnet_sdk/benchmarks/gpu_verify.py.
    """
    from tsjnet_sdk.benchmarks.gpu_verify import main

    argv = [
        *(["--out", str(out)] if out else []),
        *(["--kernels-dir", str(kernels_dir)] if kernels_dir else []),
        "--deadline",
        str(deadline),
        *(["--only", only] if only else []),
        *(["--dry-run"] if dry_run else []),
    ]
    code = main(argv)
    if code:
        raise typer.Exit(code)


def report_command(
    results: List[Path] = typer.Argument(..., help="Results JSON file(s) written by `tsjnet bench`."),
) -> None:
    """Re-render the markdown and PNG of saved `tsjnet bench` results (atomically, next to each JSON)."""
    from tsjnet_sdk.benchmarks.report import rerender

    for path in results:
        typer.echo(f"rendered {rerender(path)}")


def flops_command(
    config: Optional[List[str]] = typer.Option(
        None, "--config", help="Config name, repeatable (default tsjnet and tsjnet-edge)."
    ),
    height: int = typer.Option(480, help="Input height."),
    width: int = typer.Option(640, help="Input width."),
    top: int = typer.Option(8, help="Most expensive layers listed per config."),
    write: Optional[Path] = typer.Option(None, help="Also write the markdown table to this file."),
) -> None:
    """FLOPs of one fusion forward per module and per part (counted on the meta device, seconds)."""
    import torch

    from tsjnet_sdk.atomic import write_bytes_atomic
    from tsjnet_sdk.benchmarks.flops import count_flops, markdown_table

    torch.set_num_threads(1)  # meta tensors do no arithmetic; threads would only add start-up cost
    reports = [count_flops(name, height, width) for name in (config or ["tsjnet", "tsjnet-edge"])]
    text = markdown_table(reports, top)
    typer.echo(text, nl=False)
    if write:
        write_bytes_atomic(write, text.encode("utf-8"))
        typer.echo(f"wrote {write}")


def onnx_rows_command(
    checkpoint: str = typer.Argument(..., help="tsjnet checkpoint (.safetensors): the torch eager reference row."),
    rows: List[str] = typer.Argument(..., help="NAME=MODEL.onnx, or NAME:lowmem|noarena|nopattern=MODEL.onnx."),
    size: tuple[int, int] = typer.Option((480, 640), "--size", help="Input H W."),
    reps: int = typer.Option(3, help="Timed calls per row (median), after one warm-up."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the markdown table here."),
) -> None:
    """ONNX artefacts side by side: file size, nodes, ms, peak RSS, PSNR vs torch eager (each row its own process)."""
    from tsjnet_sdk.benchmarks.onnx_artefact_rows import run_rows

    run_rows(checkpoint, rows, size[0], size[1], reps, out)


def metrics_speed_command(
    repeat: int = typer.Option(3, help="Best of N runs."),
    pair: str = typer.Option("00004N", help="MSRS test pair name."),
    presets: str = typer.Option("paper,vifb,cdd", help="Metric presets, comma-separated."),
) -> None:
    """Time the fusion-quality metrics on one 640 x 480 MSRS triple, per preset and per metric."""
    from tsjnet_sdk.benchmarks.bench_metrics import time_metrics

    time_metrics(repeat, pair, [p for p in presets.split(",") if p])


def default_path_command(
    threads: int = typer.Option(1, help="CPU threads for both paths."),
    runs: int = typer.Option(10, help="Timed runs of each path (alternating)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output folder (default: the results folder)."),
) -> None:
    """The default path (Fuser(): the shipped ONNX on ONNX Runtime) against torch eager, side by side at 640x480."""
    from tsjnet_sdk.benchmarks.default_path import run_and_write

    run_and_write(threads, runs, output)


def detail_energy_command(
    config: Path = typer.Argument(..., help="Training config whose validation pairs are measured."),
    model: Path = typer.Option(..., "--model", "-m", help="Checkpoint to measure."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write the JSON here."),
) -> None:
    """Per-scale detail energy of a model vs the sources and the Laplacian pyramid, and which loss term binds."""
    from tsjnet_sdk.benchmarks.detail_energy import detail_energy

    detail_energy(str(config), str(model), str(out) if out else None)


def int8_bench_command(
    data: Optional[Path] = typer.Option(None, help="Data root (default $TSJNET_DATA or ../shared/data)."),
    calibration: int = typer.Option(24, help="Training-pool pairs for the int8 calibration."),
) -> None:
    """int8 (QDQ convolutions, calibrated on the training pool) against fp32 on the MSRS pairs: speed and metrics."""
    from tsjnet_sdk.benchmarks.int8_bench import run_int8_bench

    run_int8_bench(data, calibration)


def soak_command(
    frames: int = typer.Option(10_000, help="Frames to stream."),
    size: int = typer.Option(64, help="Square frame size (>= 32)."),
    config: str = typer.Option("tsjnet-tiny", help="Random-weight config when no --model is given."),
    model: Optional[str] = typer.Option(None, help="Checkpoint / ONNX file to run instead."),
    backend: str = typer.Option("onnxruntime", help="torch | onnxruntime."),
    every: int = typer.Option(100, help="Record RSS every N frames."),
    warmup: int = typer.Option(200, help="Frames before the memory baseline."),
    out: Optional[Path] = typer.Option(None, help="JSON path (the PNG goes beside it)."),
) -> None:
    """Soak: stream frames through one Fuser and record resident memory over time (docs/reliability.md)."""
    from tsjnet_sdk.benchmarks.soak import run_soak

    if backend not in ("torch", "onnxruntime"):
        typer.echo(f"error: --backend must be torch or onnxruntime, got {backend!r}", err=True)
        raise typer.Exit(2)
    run_soak(frames, size, config, model, backend, every, warmup, out)
