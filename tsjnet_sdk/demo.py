"""``tsjnet demo``: fuse sample pairs with TSJNet and the classical baselines, write the images, side-by-side
panels and the quality metrics, and say where they are.

    tsjnet demo                                   # 3 procedural night scenes (tsjnet_sdk.samples), 640x480,
                                                  # plus 3 real pairs when the data root has them (below)
    tsjnet demo --ir ir.png --vis vis.png         # one pair of your own
    tsjnet demo --ir ir_dir/ --vis vi_dir/        # folders, paired by file name
    tsjnet demo --model my.safetensors            # any checkpoint / ONNX / engine the Fuser opens

    from tsjnet_sdk.demo import run_demo
    summary = run_demo(count=1, size=(240, 320))  # dict: paths, metrics, timings

Model: the rule of :mod:`tsjnet_sdk.shipped`: ``--model`` if given; else the shipped trained
``tsjnet-edge`` weights; else (a stripped install) a randomly initialised ``tsjnet-edge`` (seed 0), with
a loud warning that the output is not a real fusion.

Real pairs: no real infrared/visible pairs ship with the SDK. The public sets the project uses (MSRS,
RoadScene, TNO, M3FD, LLVIP) either carry no licence file, are non-commercial (LLVIP), or are used here
under the project's research-only terms (``../shared/data/README.md``), and no package on PyPI carries
such pairs. So without ``--ir/--vis`` the demo adds :data:`REAL_SAMPLES` from the data root
(``$TSJNET_DATA``, else ``../shared/data`` beside a source checkout: :func:`tsjnet_sdk.results.data_root`)
when they are there, and says where it looked when they are not.

Output folder (default ``outputs/demo``)::

    inputs/ir/<name>.png, inputs/vis/<name>.png      (built-in runs: the inputs themselves)
    tsjnet/<name>.png                                the network's fusion (visible chroma, fused luminance)
    average/, max/, laplacian/<name>.png             the classical baselines (same colour handling)
    panels/<name>.png                                IR | visible | TSJNet / average | max | Laplacian
    metrics.csv, metrics.json                        tsjnet_sdk.metrics preset 'paper', per pair and mean

The folder layout lets ``tsjnet eval inputs/ir inputs/vis tsjnet`` re-score any method afterwards.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from tsjnet_sdk import shipped
from tsjnet_sdk.atomic import write_bytes_atomic
from tsjnet_sdk.baselines import BASELINES
from tsjnet_sdk.cli_support import error_line
from tsjnet_sdk.errors import TsjnetError
from tsjnet_sdk.imaging import (
    IMAGE_SUFFIXES,
    ImageError,
    compose_output,
    default_font,
    from_unit_float,
    prepare_pair,
    read_image,
    write_image,
)
from tsjnet_sdk.pairing import PairingError, pair_folders
from tsjnet_sdk.results import write_json
from tsjnet_sdk.runtime.backends import BACKEND_NAMES
from tsjnet_sdk.runtime.options import FLAG_HELP, options_from_flags, options_with_threads

#: Metric preset of the demo's quality table (tsjnet_sdk.metrics).
PRESET = "paper"
#: The network's method name in the outputs, then the baselines in their table order.
NETWORK = "tsjnet"
METHODS = (NETWORK, *BASELINES)
#: Metrics shown in the printed summary (all of the preset's go to the CSV/JSON).
SUMMARY_METRICS = ("EN", "SD", "SF", "AG", "MI", "VIF", "Qabf", "SSIM")

_console = Console(stderr=True, soft_wrap=True)

Pair = tuple[str, np.ndarray, np.ndarray]  # (name, ir H x W [x C], visible H x W x 3 or H x W)
# Real pairs shown by the built-in run when the data root has them: (folder under the data root, stem).
# A night and a day street scene (MSRS) and the classic TNO scene: what the edge model is used for.
REAL_SAMPLES: tuple[tuple[str, str], ...] = (("msrs/test", "00004N"), ("msrs/test", "00055D"), ("tno", "01"))


def real_sample_pairs(root: str | os.PathLike | None = None) -> tuple[list[Pair], Path]:
    """The :data:`REAL_SAMPLES` found under ``root`` (default :func:`tsjnet_sdk.results.data_root`), named
    ``<set>_<stem>``, and the root looked in. Missing files are left out (an empty list without data)."""
    from tsjnet_sdk.results import data_root

    def image_named(folder: Path, stem: str) -> Path | None:
        return next((p for ext in IMAGE_SUFFIXES if (p := folder / f"{stem}{ext}").is_file()), None)

    base = Path(root) if root is not None else data_root()
    pairs: list[Pair] = []
    for folder, stem in REAL_SAMPLES:
        ir_path, vis_path = image_named(base / folder / "ir", stem), image_named(base / folder / "vi", stem)
        if ir_path is not None and vis_path is not None:
            pairs.append((f"{folder.split('/')[0]}_{stem}", read_image(ir_path), read_image(vis_path)))
    return pairs, base


class DemoError(TsjnetError, ValueError):
    """Bad demo inputs (paths, pairing, sizes), with a message for the user."""


# -- inputs ---------------------------------------------------------------------------------------


def load_pairs(
    ir: str | os.PathLike | None, vis: str | os.PathLike | None, count: int, size: tuple[int, int], real: bool = True
) -> tuple[list[Pair], bool]:
    """The demo's pairs and whether they are the built-in ones (their inputs are written too).

    ``ir``/``vis`` both None: ``count`` procedural night scenes of ``size`` (H, W), plus the real pairs of
    :func:`real_sample_pairs` when ``real`` and the data root has them. Both files: that pair.
    Both folders: every pair of files with the same stem (names on one side only are reported and
    skipped). Images keep their own size and dtype.
    """
    if ir is None and vis is None:
        from tsjnet_sdk.samples import sample_pairs

        if count < 1:
            raise DemoError(f"--count must be >= 1, got {count}")
        height, width = size
        if min(height, width) < 32:
            raise DemoError(f"the demo scenes need H, W >= 32, got {height}x{width}")
        pairs = sample_pairs(count, height, width)
        if real:
            found, where = real_sample_pairs()
            if found:
                _console.print(f"[dim]real pairs: {', '.join(n for n, _, _ in found)} from {where}[/dim]")
            else:
                _console.print(
                    f"[dim]real pairs: none found under {where} (set TSJNET_DATA to a folder with "
                    "msrs/test/{ir,vi} or tno/{ir,vi}); none ship with the SDK (licences)[/dim]"
                )
            pairs += found
        return pairs, True
    if ir is None or vis is None:
        raise DemoError("give both --ir and --vis (or neither, for the built-in scenes)")
    ir_path, vis_path = Path(ir), Path(vis)
    for p in (ir_path, vis_path):
        if not p.exists():
            raise DemoError(f"{p} does not exist")
    if ir_path.is_dir() != vis_path.is_dir():
        raise DemoError(f"--ir and --vis must both be files or both be folders ({ir_path}, {vis_path})")
    if not ir_path.is_dir():
        return [(ir_path.stem, read_image(ir_path), read_image(vis_path))], False
    try:
        matched = pair_folders(ir_path, vis_path)
    except PairingError as e:
        raise DemoError(str(e)) from None
    if not matched.rows:
        raise DemoError(f"no pairs: no image file names in common between {ir_path} and {vis_path}")
    for label in matched.unpaired_labels(("ir", "visible")):
        error_line(_console, label, "unpaired, skipped", "yellow")
    return [(name, read_image(i), read_image(v)) for name, i, v in matched.rows], False


# -- model ----------------------------------------------------------------------------------------


def resolve_model(model: str | os.PathLike | None, backend: str = "auto", device: str = "auto") -> tuple[Any, str, bool]:
    """(what to give Fuser, a description, whether the weights are trained): the rule of
    :mod:`tsjnet_sdk.shipped`, with the demo's errors and its loud warning for random weights."""
    try:
        net, description, trained = shipped.resolve_model(model, backend, device)
    except FileNotFoundError:
        raise DemoError(f"--model {model} does not exist") from None
    if not trained:
        _console.print(
            f"[bold yellow]WARNING:[/bold yellow] {shipped.missing_weights_warning()}. The baselines and metrics are real."
        )
    return net, description, trained


# -- panels ---------------------------------------------------------------------------------------


def make_panel(tiles: list[tuple[str, np.ndarray]], columns: int = 3) -> np.ndarray:
    """Labelled grid of same-size uint8 images (H x W grey or H x W x 3 RGB) -> uint8 RGB panel.

    Tiles fill rows left to right; each gets a black label bar above it.
    """
    from PIL import Image, ImageDraw

    height, width = tiles[0][1].shape[:2]
    font_px = max(10, min(24, height // 20))
    bar = font_px + 8
    rows = math.ceil(len(tiles) / columns)
    panel = Image.new("RGB", (columns * width, rows * (height + bar)), (0, 0, 0))
    draw = ImageDraw.Draw(panel)
    font = default_font(font_px)
    for i, (label, image) in enumerate(tiles):
        if image.shape[:2] != (height, width):
            raise ValueError(f"panel tile {label!r} is {image.shape[:2]}, expected {(height, width)}")
        x, y = (i % columns) * width, (i // columns) * (height + bar)
        rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
        panel.paste(Image.fromarray(np.ascontiguousarray(rgb)), (x, y + bar))
        draw.text((x + 4, y + 4), label, fill=(255, 255, 255), font=font)
    return np.asarray(panel)


# -- metrics files --------------------------------------------------------------------------------


def _write_text(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def _mean_metrics(per_pair: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per method, the mean of each metric over the pairs (NaN where a pair's value is undefined)."""
    out: dict[str, dict[str, float]] = {}
    for method in METHODS:
        rows = [pair[method] for pair in per_pair.values()]
        out[method] = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
    return out


def write_metrics(
    out_dir: Path, per_pair: dict[str, dict[str, dict[str, float]]], mean: dict[str, dict[str, float]], info: dict[str, Any]
) -> tuple[Path, Path]:
    """metrics.csv (one row per pair and method, then 'mean' rows) and metrics.json; returns both paths."""
    keys = list(next(iter(next(iter(per_pair.values())).values())))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["pair", "method", *keys])
    for name, methods in [*per_pair.items(), ("mean", mean)]:
        for method in METHODS:
            writer.writerow([name, method, *(f"{methods[method][k]:.6g}" for k in keys)])
    csv_path, json_path = out_dir / "metrics.csv", out_dir / "metrics.json"
    _write_text(csv_path, buffer.getvalue())

    doc = {
        **info,
        "preset": PRESET,
        "methods": list(METHODS),
        "note": "undefined values (e.g. MS_SSIM below 161 px) are null",
        "pairs": per_pair,
        "mean": mean,
    }
    write_json(json_path, doc)
    return csv_path, json_path


# -- the demo -------------------------------------------------------------------------------------


def run_demo(
    model: str | os.PathLike | None = None,
    ir: str | os.PathLike | None = None,
    vis: str | os.PathLike | None = None,
    out_dir: str | os.PathLike = "outputs/demo",
    count: int = 3,
    size: tuple[int, int] = (480, 640),
    *,
    backend: str = "auto",
    device: str = "auto",
    threads: int | None = None,
    quiet: bool = False,
    options: Any = None,
    real: bool = True,
) -> dict[str, Any]:
    """Fuse the demo pairs with TSJNet (via :class:`tsjnet_sdk.Fuser`) and the baselines; write images,
    panels and metrics under ``out_dir``.

    Args:
        model: checkpoint / ONNX / engine path; None: shipped weights, else random tsjnet-edge (warned).
        ir, vis: image files or folders (paired by stem); both None: ``count`` procedural scenes of
            ``size`` = (H, W), plus the real pairs of :func:`real_sample_pairs` when ``real``.
        backend, device, options: passed to :class:`~tsjnet_sdk.Fuser` (options: OrtOptions /
            TorchOptions / TensorRTOptions or a list of them, tsjnet_sdk.runtime.options).
        threads: CPU threads for the backend (ONNX Runtime intra-op threads, or PyTorch's process-wide
            setting), where ``options`` leave them unset; None: the backend's default. On a machine whose
            cores are busy with other work, 1 can be several times faster (threads waiting on each other).
        quiet: do not print the summary table (the model warning and errors still go to stderr).

    Returns:
        dict with ``out_dir``, ``model``, ``trained``, ``preset``, ``pairs`` (per pair: ``name``, ``images``
        {method: path}, ``panel``), ``metrics`` {pair: {method: {metric: value}}}, ``mean``
        {method: {metric: value}}, ``metrics_csv``, ``metrics_json``, ``seconds`` {fuse, baselines,
        metrics, total} and ``fuse_seconds_per_pair``.
    """
    if threads is not None and threads < 1:
        raise DemoError(f"threads must be >= 1, got {threads}")
    return _run_demo(model, ir, vis, out_dir, count, size, backend, device, quiet, options, real, threads)


def _run_demo(
    model: str | os.PathLike | None,
    ir: str | os.PathLike | None,
    vis: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    count: int,
    size: tuple[int, int],
    backend: str,
    device: str,
    quiet: bool,
    options: Any = None,
    real: bool = True,
    threads: int | None = None,
) -> dict[str, Any]:
    from tsjnet_sdk.metrics import evaluate_many
    from tsjnet_sdk.runtime import Fuser

    start = time.perf_counter()
    out = Path(out_dir)
    pairs, procedural = load_pairs(ir, vis, count, size, real)
    net, model_desc, trained = resolve_model(model, backend, device)
    if threads is not None:
        options = options_with_threads(options, threads)
    fuser = Fuser(net, backend=backend, device=device, options=options)
    seconds = {"fuse": 0.0, "baselines": 0.0, "metrics": 0.0}
    fuse_times: list[float] = []
    results: list[dict[str, Any]] = []
    per_pair: dict[str, dict[str, dict[str, float]]] = {}
    size_notes: set[str] = set()
    network_label = "TSJNet" if trained else "TSJNet (RANDOM weights)"

    with Progress(console=_console, transient=True) as progress:
        task = progress.add_task(f"fusing {len(pairs)} pair(s)", total=len(pairs))
        for name, ir_img, vis_img in pairs:
            progress.update(task, description=f"{name}: {network_label}")
            t0 = time.perf_counter()
            try:
                fused = fuser(ir_img, vis_img)
                if fused.ndim == 3 and fused.shape[2] == 1:
                    fused = fused[..., 0]  # H x W x 1 grey visible in: write and score it as H x W
            except ImageError as e:
                raise DemoError(f"{name}: {e}") from None
            fuse_times.append(time.perf_counter() - t0)

            progress.update(task, description=f"{name}: baselines")
            t0 = time.perf_counter()
            # The baselines fuse the same luminance the network sees and get the same visible chroma back,
            # so all methods are compared under one colour handling.
            ir_y, vis_y, chroma = prepare_pair(ir_img, vis_img)
            images = {NETWORK: fused}
            for method, fuse in BASELINES.items():
                images[method] = from_unit_float(compose_output(fuse(ir_y, vis_y), chroma), np.uint8)
            seconds["baselines"] += time.perf_counter() - t0

            progress.update(task, description=f"{name}: metrics ({PRESET})")
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", RuntimeWarning)
                reports = evaluate_many(ir_img, vis_img, [images[m] for m in METHODS], PRESET)
            size_notes.update(str(w.message) for w in caught)
            per_pair[name] = {m: dict(r) for m, r in zip(METHODS, reports)}
            seconds["metrics"] += time.perf_counter() - t0

            paths = {m: write_image(out / m / f"{name}.png", img) for m, img in images.items()}
            if procedural:
                write_image(out / "inputs" / "ir" / f"{name}.png", ir_img)
                write_image(out / "inputs" / "vis" / f"{name}.png", vis_img)
            display_ir = ir_img if ir_img.dtype == np.uint8 else from_unit_float(ir_y, np.uint8)
            display_vis = vis_img if vis_img.dtype == np.uint8 else from_unit_float(compose_output(vis_y, chroma), np.uint8)
            panel = make_panel(
                [
                    ("IR", display_ir if display_ir.ndim == 2 or display_ir.shape[2] == 3 else display_ir[..., 0]),
                    ("visible", display_vis if display_vis.ndim == 2 or display_vis.shape[2] == 3 else display_vis[..., 0]),
                    (network_label, _as_uint8(images[NETWORK])),
                    ("average", images["average"]),
                    ("max", images["max"]),
                    ("Laplacian pyramid", images["laplacian"]),
                ]
            )
            panel_path = write_image(out / "panels" / f"{name}.png", panel)
            results.append({"name": name, "images": {m: str(p) for m, p in paths.items()}, "panel": str(panel_path)})
            progress.advance(task)
    info = {"model": model_desc, "trained": trained, "backend": fuser.backend, "device": fuser.device}
    fuser.close()  # also gives torch back the thread count it had before --threads
    seconds["fuse"] = sum(fuse_times)

    mean = _mean_metrics(per_pair)
    csv_path, json_path = write_metrics(out, per_pair, mean, info)
    seconds["total"] = time.perf_counter() - start
    summary = {
        "out_dir": str(out),
        **info,
        "preset": PRESET,
        "pairs": results,
        "metrics": per_pair,
        "mean": mean,
        "metrics_csv": str(csv_path),
        "metrics_json": str(json_path),
        "seconds": seconds,
        "fuse_seconds_per_pair": fuse_times,
        "notes": sorted(size_notes),
    }
    if not quiet:
        print_summary(summary)
    return summary


def _as_uint8(image: np.ndarray) -> np.ndarray:
    """Fuser output in the visible input's dtype -> uint8 for the panel."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image // 257).astype(np.uint8)
    return from_unit_float(image, np.uint8)


def print_summary(summary: dict[str, Any]) -> None:
    """The mean metrics table and where everything is, on stdout."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)  # piped/logged: rich's 80-column default would wrap the table
    first = next(iter(summary["mean"].values()))
    shown = [k for k in SUMMARY_METRICS if k in first]
    table = Table(title=f"mean over {len(summary['pairs'])} pair(s), metrics preset '{summary['preset']}'")
    table.add_column("method")
    for key in shown:
        table.add_column(key, justify="right")
    for method, values in summary["mean"].items():
        label = method if method != NETWORK or summary["trained"] else f"{method} (RANDOM weights)"
        table.add_row(label, *(f"{values[k]:.4g}" for k in shown))
    console.print(table)
    for note in summary["notes"]:
        console.print(f"[dim]note: {note}[/dim]")
    s = summary["seconds"]
    per_pair = ", ".join(f"{t:.2f}" for t in summary["fuse_seconds_per_pair"])
    console.print(
        f"model: {summary['model']} ({summary['backend']} on {summary['device']}); "
        f"fuse {s['fuse']:.1f} s ({per_pair} s per pair), baselines {s['baselines']:.1f} s, "
        f"metrics {s['metrics']:.1f} s, total {s['total']:.1f} s"
    )
    out = summary["out_dir"]
    console.print(f"fused images: {out}/{{{','.join(METHODS)}}}/")
    console.print(f"panels:       {out}/panels/ ({', '.join(Path(p['panel']).name for p in summary['pairs'])})")
    console.print(f"metrics:      {summary['metrics_csv']}, {summary['metrics_json']}")
    if not summary["trained"]:
        console.print(
            "[bold yellow]reminder:[/bold yellow] the tsjnet output above comes from RANDOM weights, not a trained model"
        )


def demo_command(
    ir: Optional[Path] = typer.Option(
        None, "--ir", help="Infrared image or folder (with --vis); default: built-in night scenes."
    ),
    vis: Optional[Path] = typer.Option(None, "--vis", help="Visible image or folder, paired with --ir by file name."),
    model: Optional[Path] = typer.Option(
        None, "--model", "-m", help="Checkpoint, ONNX file or engine; default: the shipped weights, else random tsjnet-edge."
    ),
    out_dir: Path = typer.Option(Path("outputs/demo"), "--out", "-o", help="Output folder."),
    count: int = typer.Option(3, help="Number of built-in scenes (without --ir/--vis)."),
    real: bool = typer.Option(
        True,
        "--real/--no-real",
        help="Without --ir/--vis: add real pairs from the data root ($TSJNET_DATA or ../shared/data) when present.",
    ),
    height: int = typer.Option(480, help="Height of the built-in scenes."),
    width: int = typer.Option(640, help="Width of the built-in scenes."),
    backend: str = typer.Option("auto", help=" | ".join(BACKEND_NAMES) + "."),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N."),
    threads: Optional[int] = typer.Option(None, help=FLAG_HELP["threads"] + " 1 is often faster on a CPU busy with other work."),
    ort_threads: Optional[int] = typer.Option(None, help=FLAG_HELP["ort_threads"]),
    ort_cache: Optional[Path] = typer.Option(None, help=FLAG_HELP["ort_cache"]),
    providers: Optional[str] = typer.Option(None, help=FLAG_HELP["providers"]),
    trt_ep_fp16: bool = typer.Option(False, "--trt-ep-fp16", help=FLAG_HELP["trt_ep_fp16"]),
    trt_ep_cache: Optional[Path] = typer.Option(None, help=FLAG_HELP["trt_ep_cache"]),
    dtype: str = typer.Option("fp32", help=FLAG_HELP["dtype"]),
) -> None:
    """Fuse sample pairs with TSJNet and classical baselines; write images, panels and metrics."""
    from tsjnet_sdk.runtime import BackendUnavailable, ModelFileError

    if out_dir.exists() and not out_dir.is_dir():
        error_line(_console, f"--out {out_dir} is a file; it takes a folder (created if missing): choose another")
        raise typer.Exit(2)
    try:
        options = options_from_flags(threads, ort_threads, ort_cache, providers, trt_ep_fp16, trt_ep_cache, dtype)
        run_demo(model, ir, vis, out_dir, count, (height, width), backend=backend, device=device, options=options, real=real)
    except (DemoError, ImageError, OSError, ValueError, BackendUnavailable, ModelFileError) as e:
        error_line(_console, e)
        raise typer.Exit(2) from None
