"""The command-line side of videos, cameras and rigs: ``tsjnet fuse`` on two videos / cameras
(:func:`fuse_streams`) and ``tsjnet calibrate`` (:func:`calibrate_command`)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.console import Console

from tsjnet_sdk.imaging import IMAGE_SUFFIXES


def fuse_streams(
    fuser: Any,
    ir_spec: str,
    vis_spec: str,
    output: Path,
    frames_dir: Optional[Path],
    tolerance_ms: Optional[float],
    max_frames: Optional[int],
    console: Console,
) -> dict[str, Any]:
    """Fuse two videos / cameras into ``output`` (a video) and optionally PNG frames; returns the counts.

    Files: a progress bar; cameras: the live frames/s. Ctrl-C stops and keeps what was written.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from tsjnet_sdk.video import VIDEO_CODECS, FrameWriter, PairingReport, VideoError, VideoWriter, open_source, pair_by_time

    if output.suffix.lower() in IMAGE_SUFFIXES or output.suffix.lower() not in VIDEO_CODECS:
        raise VideoError(
            f"for videos and cameras, -o is a video file ({', '.join(VIDEO_CODECS)}), got {output}; "
            "use --frames DIR for PNG frames"
        )
    if max_frames is not None and max_frames < 1:
        raise VideoError(f"--max-frames must be at least 1, got {max_frames}")
    ir_src = open_source(ir_spec, "IR")
    vis_src = open_source(vis_spec, "visible")
    live = ir_src.live or vis_src.live
    report = PairingReport(0.0, "ir")
    tolerance = None if tolerance_ms is None else tolerance_ms / 1000.0

    def pairs():
        for i, (fi, fv) in enumerate(pair_by_time(ir_src, vis_src, tolerance, report)):
            if max_frames is not None and i >= max_frames:
                return
            yield fi.image, fv.image

    ref_fps = min(f for f in (ir_src.fps, vis_src.fps, 1e9) if f)
    fps = ref_fps if ref_fps < 1e9 else 30.0
    counts = [c for c in (ir_src.frame_count, vis_src.frame_count) if c]
    total = None if live or not counts else min(min(counts), max_frames or 10**12)
    writer: VideoWriter | None = None
    frame_writer = FrameWriter(frames_dir) if frames_dir is not None else None
    done, ok, interrupted = 0, False, False
    start = time.perf_counter()
    columns = (
        [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeRemainingColumn()]
        if total
        else [TextColumn("{task.description}")]
    )
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("fusing", total=total)
            with contextlib.closing(fuser.stream(pairs(), bgr=True)) as fused_frames:
                for fused in fused_frames:
                    if writer is None:
                        writer = VideoWriter(output, fps, (fused.shape[1], fused.shape[0]))
                    writer.write(fused)
                    if frame_writer is not None:
                        frame_writer.write(fused[..., ::-1] if fused.ndim == 3 else fused)
                    done += 1
                    rate = done / max(time.perf_counter() - start, 1e-9)
                    progress.update(task, advance=1, description=f"fusing ({rate:.2f} frames/s)")
        ok = True
    except KeyboardInterrupt:
        ok = interrupted = True  # the frames so far are good: keep them
    finally:
        if writer is not None:
            writer.close(ok=ok)
        ir_src.close()
        vis_src.close()
    elapsed = time.perf_counter() - start
    if done == 0:
        raise VideoError(f"no frame pairs: {report.summary()}")
    stopped = " (stopped by Ctrl-C)" if interrupted else ""
    typer.echo(
        f"fused {done} frames in {elapsed:.1f} s ({done / elapsed:.2f} frames/s) with {fuser.backend} on "
        f"{fuser.device}{stopped} -> {output}" + (f" and {frames_dir}/" if frames_dir else "")
    )
    typer.echo(report.summary())
    return {"frames": done, "seconds": elapsed, "report": report}


def _pairs_from_args(paths: List[Path]) -> list[tuple[str, Path, Path]]:
    from tsjnet_sdk.pairing import pair_folders

    if len(paths) == 2 and paths[0].is_dir() and paths[1].is_dir():
        return list(pair_folders(paths[0], paths[1]).rows)
    if len(paths) % 2:
        raise ValueError(f"give IR VIS image pairs (an even number of files) or two folders, got {len(paths)} paths")
    return [(paths[i].stem, paths[i], paths[i + 1]) for i in range(0, len(paths), 2)]


def calibrate_command(
    images: List[Path] = typer.Argument(
        ..., help="IR VIS [IR VIS ...]: pairs of images of one scene from the two cameras (or two folders paired by file name)."
    ),
    output: Path = typer.Option(Path("rig.json"), "-o", "--output", help="Rig file to write (JSON)."),
    model: str = typer.Option("affine", help="affine (parallel cameras; the stable default) | homography (adds perspective)."),
    checkerboard: Optional[str] = typer.Option(
        None, help="COLSxROWS inner corners of a checkerboard seen by both cameras (e.g. 9x6): corner-based fit instead of edges."
    ),
    scale: float = typer.Option(1.0, help="Output scale relative to the IR frame (2: fuse at twice the IR resolution)."),
    crop: Optional[str] = typer.Option(None, help="Output crop x,y,w,h in IR pixels (e.g. where both cameras see)."),
) -> None:
    """Estimate a two-camera rig (visible -> IR mapping) from IR/visible pairs and save it (docs/rig.md)."""
    from tsjnet_sdk.calibrate import CalibrationError, calibrate
    from tsjnet_sdk.imaging import ImageError, read_image
    from tsjnet_sdk.opencv import MissingExtraError
    from tsjnet_sdk.pairing import PairingError
    from tsjnet_sdk.rig import Rig, RigError

    console = Console(stderr=True, soft_wrap=True)

    def fail(message: str) -> typer.Exit:
        from tsjnet_sdk.cli_support import error_line

        error_line(console, message)
        return typer.Exit(2)

    try:
        pattern = None
        if checkerboard is not None:
            try:
                cols, rows = (int(v) for v in checkerboard.lower().split("x"))
            except ValueError:
                raise ValueError(f"--checkerboard must be COLSxROWS (inner corners), e.g. 9x6, got {checkerboard!r}") from None
            pattern = (cols, rows)
        crop_box = None
        if crop is not None:
            try:
                crop_box = tuple(int(v) for v in crop.split(","))
            except ValueError:
                raise ValueError(f"--crop must be x,y,w,h in IR pixels, got {crop!r}") from None
        named = _pairs_from_args(images)
        if not named:
            raise ValueError("no pairs found")
        pairs = [(read_image(i), read_image(v)) for _, i, v in named]
        start = time.perf_counter()
        result = calibrate(pairs, model=model, checkerboard=pattern)
        rig = result.rig
        if crop_box is not None or scale != 1.0:
            rig = Rig(
                ir_size=rig.ir_size,
                visible_size=rig.visible_size,
                homography=rig.homography,
                crop=crop_box,
                scale=scale,
                calibration=rig.calibration,
            )
        rig.write(output)
    except (CalibrationError, RigError, ImageError, PairingError, MissingExtraError, ValueError) as e:
        raise fail(str(e)) from None
    for (name, _, _), fit in zip(named, result.pairs):
        typer.echo(f"  {name}: ECC correlation {fit.correlation:.3f}, residual {fit.residual_px:.2f} px")
    spread = f", spread of the per-pair estimates {result.spread_px:.2f} px" if result.spread_px is not None else ""
    typer.echo(
        f"rig {rig.visible_size[0]}x{rig.visible_size[1]} visible -> {rig.ir_size[0]}x{rig.ir_size[1]} IR "
        f"({rig.calibration['method']}, {len(pairs)} pair(s), {time.perf_counter() - start:.1f} s): residual "
        f"{result.residual_px:.2f} px{spread} -> {output}"
    )
