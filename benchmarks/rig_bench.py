"""Two-camera rig benchmark: registration accuracy, fusion with / without the rig, stream speed and memory.

    python -m tsjnet_sdk.benchmarks.rig_bench [--part registration|fusion|stream|memory|report|all] [--warps 3]

* registration: every pair of msrs/test and roadscene (evaluation sets: measured, nothing tuned on them)
  becomes ``--warps`` synthetic rigs (benchmarks/rig_warps.py: rotation +-4 deg, zoom 0.8-1.2, shifts
  +-30 px, the visible camera at 1.5x or 2x the IR resolution); ``tsjnet calibrate`` (one pair) estimates
  each; the mean corner error (IR pixels) is measured against (a) the synthetic warp, taking the source
  pair as exactly aligned, and (b) the synthetic warp composed with what calibrating the unwarped source
  pair finds (the known warp alone, with the pair's own registration factored out). MSRS pairs all
  come from one rig, so groups of 3 MSRS pairs under one warp are also calibrated together.
* fusion: for the first warp of every pair, the shipped tsjnet-edge fuses the IR frame with the visible
  frame (i) resized to the IR size (no registration), (ii) through the estimated rig, (iii) through the
  true rig; the ``tsjnet quality`` metrics are computed against the IR frame and the *aligned* visible
  content (what the fusion should have combined).
* stream: frames/s of ``Fuser.stream`` against the plain loop (decode, fuse, encode), same run, same
  video files made from real pairs; alternated, median of the rounds.
* memory: RSS while streaming 1,000 frames through ``Fuser.stream`` from video files.

Results: ``benchmarks/results/rig_<part>.json`` per part, merged into ``rig.json`` (every number), ``rig.md``
and ``rig.png`` (written atomically).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Tuple

import numpy as np
import typer

from tsjnet_sdk.atomic import atomic_path, write_bytes_atomic
from tsjnet_sdk.results import data_root, results_dir, write_json

DATASETS = {"msrs": ("msrs", "test"), "roadscene": ("roadscene",)}
METRICS = ("SSIM", "PSNR", "CC", "VIF", "Qabf", "MI", "Qcv", "EN", "SD", "SF", "AG", "MSE")
HIGHER_IS_BETTER = {
    "SSIM": True,
    "PSNR": True,
    "CC": True,
    "VIF": True,
    "Qabf": True,
    "MI": True,
    "Qcv": False,
    "EN": True,
    "SD": True,
    "SF": True,
    "AG": True,
    "MSE": False,
}


def _out_dir() -> Path:
    return results_dir("rig", "benchmarks/results")


def _pairs(name: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    from tsjnet_sdk.imaging import read_image
    from tsjnet_sdk.pairing import pair_folders

    root = data_root().joinpath(*DATASETS[name])
    return [(stem, read_image(i), read_image(v)) for stem, i, v in pair_folders(root / "ir", root / "vi").rows]


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _save(part: str, value: Any) -> None:
    """One file per part (rig_<part>.json: parts may run in separate processes); the report merges them."""
    value = dict(value)
    value["machine"] = {
        "load_average_1min": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(_out_dir() / f"rig_{part}.json", value)


def _stats(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {
        "n": int(a.size),
        "mean": float(a.mean()),
        "median": float(np.median(a)),
        "p90": float(np.percentile(a, 90)),
        "max": float(a.max()),
        "share_le_1.5px": float(np.mean(a <= 1.5)),
        "share_le_3px": float(np.mean(a <= 3.0)),
    }


# -- registration --------------------------------------------------------------------------------------------


def run_registration(warps: int) -> dict[str, Any]:
    from tsjnet_sdk.benchmarks.rig_warps import corner_error, make_rig_pair, truth_given
    from tsjnet_sdk.calibrate import CalibrationError, calibrate

    rows, groups = [], []
    for ds in DATASETS:
        pairs = _pairs(ds)
        rng = np.random.default_rng(2026)
        synthetic_by_warp: dict[int, list[Any]] = {}
        for stem, ir, vis in pairs:
            start = time.perf_counter()
            own = calibrate([(ir, vis)]).rig.homography
            own_err = corner_error(own, np.eye(3), (ir.shape[1], ir.shape[0]))
            for k in range(warps):
                s = make_rig_pair(ir, vis, rng)
                t0 = time.perf_counter()
                try:
                    result = calibrate([(s.ir, s.visible)])
                    h = result.rig.homography
                    err_abs = corner_error(h, s.homography, result.rig.ir_size)
                    err_rel = corner_error(h, truth_given(s, own), result.rig.ir_size)
                    residual = result.residual_px
                except CalibrationError:
                    err_abs = err_rel = residual = float("inf")
                rows.append(
                    {
                        "dataset": ds,
                        "pair": stem,
                        "warp": k,
                        **s.params,
                        "corner_error_px": err_abs,
                        "corner_error_vs_own_px": err_rel,
                        "residual_px": residual,
                        "source_pair_offset_px": own_err,
                        "seconds": time.perf_counter() - t0,
                    }
                )
                synthetic_by_warp.setdefault(k, []).append((stem, s))
            print(
                f"{ds} {stem}: source pair {own_err:.2f} px from identity; warped: "
                + ", ".join(f"{r['corner_error_px']:.2f}/{r['corner_error_vs_own_px']:.2f}" for r in rows[-warps:])
                + f" px ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
        if ds == "msrs":  # one rig, several scenes: calibrate groups of 3 pairs under one warp together
            for k in range(warps):
                for g in range(0, len(pairs) - 2, 3):
                    # the same warp for the 3 pairs: re-draw it with one seed per group
                    rng_g = np.random.default_rng(10_000 + 100 * k + g)
                    state = rng_g.bit_generator.state
                    members = []
                    for _stem, ir, vis in pairs[g : g + 3]:
                        rng_g.bit_generator.state = state
                        members.append(make_rig_pair(ir, vis, rng_g))
                    try:
                        result = calibrate([(m.ir, m.visible) for m in members])
                        err = corner_error(result.rig.homography, members[0].homography, result.rig.ir_size)
                    except CalibrationError:
                        err = float("inf")
                    groups.append(
                        {
                            "dataset": ds,
                            "warp": k,
                            "pairs": [p[0] for p in pairs[g : g + 3]],
                            "corner_error_px": err,
                            "spread_px": result.spread_px,
                        }
                    )
                    print(f"msrs group {g // 3} warp {k}: {err:.2f} px", flush=True)
    summary = {}
    for ds in DATASETS:
        sel = [r for r in rows if r["dataset"] == ds]
        summary[ds] = {
            "vs_synthetic_truth": _stats([r["corner_error_px"] for r in sel]),
            "vs_truth_with_source_registration": _stats([r["corner_error_vs_own_px"] for r in sel]),
            "source_pair_offset": _stats([r["source_pair_offset_px"] for r in sel[::warps]]),
        }
    summary["all"] = {
        "vs_synthetic_truth": _stats([r["corner_error_px"] for r in rows]),
        "vs_truth_with_source_registration": _stats([r["corner_error_vs_own_px"] for r in rows]),
    }
    if groups:
        summary["msrs_groups_of_3"] = {"vs_synthetic_truth": _stats([g["corner_error_px"] for g in groups])}
    out = {"warps_per_pair": warps, "rows": rows, "groups": groups, "summary": summary}
    _save("registration", out)
    return out


# -- fusion quality ------------------------------------------------------------------------------------------


def _open_fuser(rig: Any = None) -> Any:
    from tsjnet_sdk import Fuser
    from tsjnet_sdk.shipped import SHIPPED_WEIGHTS

    return Fuser(SHIPPED_WEIGHTS, backend="torch", device="cpu", rig=rig)


def run_fusion() -> dict[str, Any]:
    import cv2

    from tsjnet_sdk.benchmarks.rig_warps import make_rig_pair
    from tsjnet_sdk.calibrate import CalibrationError, calibrate
    from tsjnet_sdk.metrics import evaluate
    from tsjnet_sdk.rig import Rig

    plain = _open_fuser()
    rows = []
    for ds in DATASETS:
        rng = np.random.default_rng(2026)  # the same first warp per pair as the registration part
        for stem, ir, vis in _pairs(ds):
            s = make_rig_pair(ir, vis, rng)
            ir_size, vis_size = (s.ir.shape[1], s.ir.shape[0]), (s.visible.shape[1], s.visible.shape[0])
            try:
                estimated = calibrate([(s.ir, s.visible)]).rig
            except CalibrationError:
                estimated = None
            truth = Rig(ir_size=ir_size, visible_size=vis_size, homography=s.homography)
            resized = cv2.resize(s.visible, ir_size, interpolation=cv2.INTER_AREA)
            variants = {"no_rig_resized": plain(s.ir, resized)}
            variants["estimated_rig"] = plain(*estimated.apply(s.ir, s.visible)) if estimated else None
            variants["true_rig"] = plain(*truth.apply(s.ir, s.visible))
            row = {"dataset": ds, "pair": stem}
            for name, fused in variants.items():
                if fused is None:
                    row[name] = None
                    continue
                report = evaluate(s.ir, s.visible_truth, fused, metrics=list(METRICS))
                row[name] = {k: float(v) for k, v in report.items()}
            rows.append(row)
            print(f"{ds} {stem}: SSIM " + ", ".join(f"{n} {row[n]['SSIM']:.3f}" for n in variants if row[n]), flush=True)
    summary: dict[str, Any] = {}
    for ds in (*DATASETS, "all"):
        sel = [r for r in rows if ds == "all" or r["dataset"] == ds]
        summary[ds] = {}
        for name in ("no_rig_resized", "estimated_rig", "true_rig"):
            ok = [r[name] for r in sel if r[name]]
            summary[ds][name] = {m: float(np.nanmean([x[m] for x in ok])) for m in METRICS}
            summary[ds][name]["n"] = len(ok)
        wins = [m for m in METRICS if (summary[ds]["estimated_rig"][m] > summary[ds]["no_rig_resized"][m]) == HIGHER_IS_BETTER[m]]
        summary[ds]["estimated_rig_better_on"] = wins
    out = {
        "model": "shipped tsjnet-edge (torch backend, CPU)",
        "rows": rows,
        "summary": summary,
        "reference": "metrics against the IR frame and the aligned visible content on the IR grid",
    }
    _save("fusion", out)
    return out


# -- stream speed and memory ---------------------------------------------------------------------------------


def _make_videos(folder: Path, frames: int, size: tuple[int, int], fps: float = 25.0) -> tuple[Path, Path]:
    """IR and visible AVI (MJPG) files of ``frames`` frames cycling through the MSRS test pairs at ``size``."""
    import cv2

    from tsjnet_sdk.video import VideoWriter

    pairs = [
        (cv2.resize(i, size, interpolation=cv2.INTER_AREA), cv2.resize(v[..., ::-1], size, interpolation=cv2.INTER_AREA))
        for _, i, v in _pairs("msrs")
    ]
    paths = folder / "ir.avi", folder / "vis.avi"
    with VideoWriter(paths[0], fps, size) as w_ir, VideoWriter(paths[1], fps, size) as w_vis:
        for n in range(frames):
            ir, vis = pairs[n % len(pairs)]
            w_ir.write(np.repeat(ir[..., None], 3, axis=2))
            w_vis.write(vis)
    return paths


def _decoded(ir_path: Path, vis_path: Path):
    from tsjnet_sdk.video import open_source, pair_by_time

    for fi, fv in pair_by_time(open_source(ir_path, "IR"), open_source(vis_path, "visible")):
        yield fi.image, fv.image


def run_stream(frames: int, size: tuple[int, int], rounds: int) -> dict[str, Any]:
    from tsjnet_sdk.video import VideoWriter

    fuser = _open_fuser()
    with tempfile.TemporaryDirectory() as tmp:
        ir_path, vis_path = _make_videos(Path(tmp), frames, size)
        for _fused in fuser.stream(_decoded(ir_path, vis_path), bgr=True):  # warm-up (allocations, caches)
            pass
        results: dict[str, list[float]] = {"plain_loop": [], "stream": []}
        for _ in range(rounds):
            for mode in ("plain_loop", "stream"):
                start = time.perf_counter()
                with VideoWriter(Path(tmp) / f"{mode}.avi", 25.0, size) as writer:
                    if mode == "plain_loop":
                        for ir, vis in _decoded(ir_path, vis_path):
                            writer.write(fuser(ir, vis, bgr=True))
                    else:
                        for fused in fuser.stream(_decoded(ir_path, vis_path), bgr=True):
                            writer.write(fused)
                n = writer.frames
                results[mode].append(n / (time.perf_counter() - start))
    plain, stream = float(np.median(results["plain_loop"])), float(np.median(results["stream"]))
    out = {
        "frames": frames,
        "size": list(size),
        "rounds": rounds,
        "model": "shipped tsjnet-edge (torch, CPU)",
        "fps": results,
        "plain_loop_fps": plain,
        "stream_fps": stream,
        "ratio": stream / plain,
        "what": "decode two MJPG AVI files + pair by timestamp + fuse + encode one AVI, per frame",
    }
    _save("stream", out)
    print(
        f"stream {stream:.2f} frames/s vs plain loop {plain:.2f} frames/s: {stream / plain:.2f}x ({rounds} rounds, {frames} frames of {size[0]}x{size[1]})"
    )
    return out


def run_memory(frames: int, size: tuple[int, int], every: int = 50, warmup: int = 100) -> dict[str, Any]:
    from tsjnet_sdk.benchmarks.soak import growth, rss_mb

    fuser = _open_fuser()
    with tempfile.TemporaryDirectory() as tmp:
        ir_path, vis_path = _make_videos(Path(tmp), frames, size)
        samples = [(0, 0.0, rss_mb())]
        start = time.perf_counter()
        for i, _ in enumerate(fuser.stream(_decoded(ir_path, vis_path), bgr=True), 1):
            if i % every == 0:
                samples.append((i, time.perf_counter() - start, rss_mb()))
    out = {
        "frames": frames,
        "size": list(size),
        "samples": samples,
        **growth(samples, warmup),
        "warmup": warmup,
        "model": "shipped tsjnet-edge (torch, CPU)",
    }
    _save("memory", out)
    print(
        f"memory over {frames} frames of {size[0]}x{size[1]}: {out['rss_after_warmup_mb']:.1f} -> {out['rss_end_mb']:.1f} MB "
        f"(growth {out['growth_mb']:+.2f} MB, slope {out['slope_mb_per_1000_frames']:+.2f} MB/1000 frames)"
    )
    return out


# -- report --------------------------------------------------------------------------------------------------


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "inf" if np.isinf(v) else f"{v:.{digits}f}"
    return str(v)


def write_report() -> Path:
    data = {part: _load(_out_dir() / f"rig_{part}.json") for part in ("registration", "fusion", "stream", "memory")}
    data = {k: v for k, v in data.items() if v}
    write_json(_out_dir() / "rig.json", data)
    machines = "; ".join(f"{k}: {v['machine']}" for k, v in data.items())
    lines = [
        "# Two-camera rigs: registration, fusion with / without the rig, stream speed and memory",
        "",
        f"Machines: {machines}. Made by `python -m tsjnet_sdk.benchmarks.rig_bench` "
        "(benchmarks/rig_bench.py; method in its docstring). CPU only: nothing here ran on a GPU.",
        "",
    ]
    reg = data.get("registration")
    if reg:
        lines += [
            "## Registration accuracy (`tsjnet calibrate`, one pair each, affine model)",
            "",
            f"{reg['warps_per_pair']} synthetic warps per pair (rotation +-4 deg, zoom 0.8-1.2, shift +-30 px, visible at "
            "1.5x/2x the IR resolution). Mean corner error over the IR frame's 4 corners, IR pixels.",
            "",
            "| set | against | n | mean | median | p90 | max | <= 1.5 px | <= 3 px |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for ds, s in reg["summary"].items():
            for against, st in s.items():
                if against == "source_pair_offset":
                    continue
                lines.append(
                    f"| {ds} | {against.replace('_', ' ')} | {st['n']} | {_fmt(st['mean'])} | {_fmt(st['median'])} | "
                    f"{_fmt(st['p90'])} | {_fmt(st['max'])} | {st['share_le_1.5px']:.0%} | {st['share_le_3px']:.0%} |"
                )
        lines += [
            "",
            "*vs synthetic truth*: the source pair taken as exactly aligned. *vs truth with source registration*: "
            "the known warp composed with what calibrating the unwarped source pair finds (the source pairs' own "
            "misregistration, median "
            + ", ".join(f"{ds} {_fmt(reg['summary'][ds]['source_pair_offset']['median'])} px" for ds in DATASETS)
            + " from identity by this method, cancels; the two estimates' errors add).",
            "",
        ]
    fus = data.get("fusion")
    if fus:
        lines += [
            "## Fusion quality with and without the rig (first warp of every pair)",
            "",
            f"Model: {fus['model']}; {fus['reference']}.",
            "",
            "| set | variant | n | " + " | ".join(f"{m} {'↑' if HIGHER_IS_BETTER[m] else '↓'}" for m in METRICS) + " |",
            "|---|---|---|" + "---|" * len(METRICS),
        ]
        for ds, s in fus["summary"].items():
            for name in ("no_rig_resized", "estimated_rig", "true_rig"):
                row = s[name]
                lines.append(
                    f"| {ds} | {name.replace('_', ' ')} | {row['n']} | " + " | ".join(_fmt(row[m], 3) for m in METRICS) + " |"
                )
        lines += [
            "",
            "Estimated rig better than no rig on: "
            + "; ".join(
                f"{ds}: {', '.join(s['estimated_rig_better_on'])} ({len(s['estimated_rig_better_on'])}/{len(METRICS)})"
                for ds, s in fus["summary"].items()
            ),
            "",
        ]
    st = data.get("stream")
    if st:
        lines += [
            "## Stream speed (same run)",
            "",
            f"{st['what']}; {st['frames']} frames of {st['size'][0]}x{st['size'][1]}, {st['rounds']} alternating rounds, "
            f"median; {st['model']}.",
            "",
            "| loop | frames/s (median) | rounds |",
            "|---|---|---|",
            f"| plain loop (`fuser(ir, vis)` per frame) | {st['plain_loop_fps']:.2f} | {', '.join(f'{v:.2f}' for v in st['fps']['plain_loop'])} |",
            f"| `Fuser.stream` | {st['stream_fps']:.2f} | {', '.join(f'{v:.2f}' for v in st['fps']['stream'])} |",
            "",
            f"Ratio stream / plain: **{st['ratio']:.2f}x**." + (f" {st['notes']}" if st.get("notes") else ""),
            "",
        ]
    mem = data.get("memory")
    if mem:
        lines += [
            "## Memory over a stream",
            "",
            f"{mem['frames']} frames of {mem['size'][0]}x{mem['size'][1]} from two AVI files through `Fuser.stream` ({mem['model']}): "
            f"RSS {mem['rss_after_warmup_mb']:.1f} MB after {mem['warmup']} warm-up frames, {mem['rss_end_mb']:.1f} MB at the end "
            f"(growth {mem['growth_mb']:+.2f} MB, fitted slope {mem['slope_mb_per_1000_frames']:+.2f} MB / 1000 frames, "
            f"peak {mem['rss_peak_mb']:.1f} MB).",
            "",
        ]
    path = _out_dir() / "rig.md"
    write_bytes_atomic(path, ("\n".join(lines) + "\n").encode())
    if reg:
        draw_chart(data, _out_dir() / "rig.png")
    return path


def draw_chart(data: dict[str, Any], path: Path) -> Path:
    """Corner-error distribution per set (both references) and the memory curve, one PNG."""
    from PIL import Image, ImageDraw

    from tsjnet_sdk.imaging import default_font

    font, bold = default_font(13), default_font(16)
    width, height = 1000, 430
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    d.text((12, 8), "tsjnet calibrate: corner error per warped pair (IR px, log scale)", fill="black", font=bold)
    rows = data["registration"]["rows"]
    left, right, top = 230, 620, 50
    lo, hi = np.log10(0.1), np.log10(300)

    def x_of(v: float) -> float:
        v = min(max(v, 0.1), 300) if np.isfinite(v) else 300
        return left + (right - left) * (np.log10(v) - lo) / (hi - lo)

    series = [(f"{ds}: vs synthetic truth", [r["corner_error_px"] for r in rows if r["dataset"] == ds]) for ds in DATASETS]
    series += [
        (f"{ds}: vs truth + source reg.", [r["corner_error_vs_own_px"] for r in rows if r["dataset"] == ds]) for ds in DATASETS
    ]
    band = 70
    for j, (label, values) in enumerate(series):
        y0 = top + j * band
        d.text((12, y0 + 20), label, fill="#222", font=font)
        d.line([left, y0 + band - 10, right, y0 + band - 10], fill="#ccc")
        rng = np.random.default_rng(j)
        for v in values:
            x, y = x_of(v), y0 + 15 + rng.uniform(0, band - 30)
            d.ellipse([x - 3, y - 3, x + 3, y + 3], fill="#3b6fb6" if v <= 1.5 else "#e07b39")
        med = float(np.median(values))
        d.line([x_of(med), y0 + 8, x_of(med), y0 + band - 12], fill="black", width=2)
        d.text((right + 8, y0 + 20), f"median {med:.2f}, mean {np.mean(values):.2f}", fill="#222", font=font)
    base = top + len(series) * band
    for v in (0.1, 0.5, 1.5, 5, 20, 100):
        d.line([x_of(v), top, x_of(v), base - 10], fill="#eee" if v != 1.5 else "#7a7")
        d.text((x_of(v) - 10, base - 6), f"{v:g}", fill="#444", font=font)
    d.text((left, base + 12), "blue: <= 1.5 px (the target), orange: above; black bar: median", fill="#444", font=font)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return path


def rig_bench_command(
    part: str = typer.Option("all", help="registration | fusion | stream | memory | report | all"),
    warps: int = typer.Option(3, help="Synthetic warps per pair (registration)."),
    stream_frames: int = typer.Option(120, help="Frames per round (stream)."),
    stream_size: Tuple[int, int] = typer.Option((160, 128), help="W H of the stream frames."),
    rounds: int = typer.Option(3, help="Alternating rounds of plain loop and stream."),
    memory_frames: int = typer.Option(1000, help="Frames streamed for the memory curve."),
    memory_size: Tuple[int, int] = typer.Option((64, 48), help="W H of the memory-run frames."),
) -> None:
    """Two-camera rig benchmark: registration accuracy, fusion with / without the rig, stream speed, memory."""
    parts = ("registration", "fusion", "stream", "memory", "report", "all")
    if part not in parts:
        raise typer.BadParameter(f"--part must be one of {', '.join(parts)}")
    if part in ("registration", "all"):
        run_registration(warps)
    if part in ("fusion", "all"):
        run_fusion()
    if part in ("stream", "all"):
        run_stream(stream_frames, tuple(stream_size), rounds)
    if part in ("memory", "all"):
        run_memory(memory_frames, tuple(memory_size))
    print(f"wrote {write_report()}")


def main(argv: list[str] | None = None) -> int:
    """``python -m tsjnet_sdk.benchmarks.rig_bench``: parsed by typer like every ``tsjnet`` command."""
    from tsjnet_sdk.cli_support import run_command

    return run_command(rig_bench_command, argv, "python -m tsjnet_sdk.benchmarks.rig_bench")


if __name__ == "__main__":
    raise SystemExit(main())
