"""Video files and cameras in, fused video or frames out (OpenCV, the optional ``[video]`` extra).

* :func:`open_source` turns a source string into a :class:`VideoSource`: a file (``ir.mp4``), a camera
  index (``0``), a V4L2 device (``/dev/video0``), a network stream (``rtsp://...``, ``http://...``) or a
  GStreamer pipeline (any string with ``!``, e.g. on a Jetson ``nvarguscamerasrc ! ... ! appsink``).
* :func:`pair_by_time` pairs two sources' frames by timestamp: each frame of the slower stream gets
  the nearest frame of the other within a tolerance (default: half the slower stream's frame period);
  frames left over are dropped and counted in :class:`PairingReport`.
* :class:`VideoWriter` writes frames to a video file atomically; :class:`FrameWriter` to numbered PNGs.

Timestamps: files use the frame index / the container's frame rate (exact, repeatable); live sources
use the time each frame arrived (one monotonic clock for all sources), since camera clocks are not shared.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tsjnet_sdk.errors import TsjnetError
from tsjnet_sdk.opencv import require_cv2

#: Output video containers and the codec each is written with (extension point: add a row).
VIDEO_CODECS = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v", ".mov": "mp4v"}
VIDEO_SUFFIXES = tuple(VIDEO_CODECS) + (".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".ts")
NETWORK_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


class VideoError(TsjnetError, ValueError):
    """A source that cannot be opened or read, or an output that cannot be written; the message says why."""


@dataclass
class Frame:
    """One decoded frame: its index in the source, its timestamp (seconds) and the image (H x W x 3 BGR)."""

    index: int
    time: float
    image: np.ndarray


def source_kind(spec: str) -> str:
    """What a source string names: ``camera`` (an index), ``v4l2``, ``network``, ``gstreamer`` or ``file``
    (an existing path is always a file or folder, even when its name is a number)."""
    if spec.isdigit() and not Path(spec).exists():
        return "camera"
    if spec.startswith("/dev/video"):
        return "v4l2"
    if spec.lower().startswith(NETWORK_PREFIXES):
        return "network"
    if "!" in spec:
        return "gstreamer"
    return "file"


def is_video_path(path: str | os.PathLike) -> bool:
    """True for a path with a video suffix (.mp4, .avi, ...) or a camera / stream source string; False
    for folders and images."""
    text = str(path)
    if Path(text).is_dir():
        return False
    return source_kind(text) != "file" or Path(text).suffix.lower() in VIDEO_SUFFIXES


class VideoSource:
    """Frames of one video file or camera (OpenCV ``VideoCapture``); iterate for :class:`Frame` objects.

    Attributes: ``kind`` (see :func:`source_kind`), ``live`` (a camera or stream: no end, wall-clock
    timestamps), ``fps`` (the stream's declared rate, or None), ``frame_count`` (files; None when unknown),
    ``size`` (W, H).
    """

    def __init__(self, spec: str | os.PathLike, name: str = "source") -> None:
        cv2 = require_cv2()
        self.spec, self.name = str(spec), name
        self.kind = source_kind(self.spec)
        self.live = self.kind != "file"
        if self.kind == "file" and not Path(self.spec).is_file():
            raise VideoError(f"{name}: {self.spec}: no such video file")
        if self.kind == "camera":
            self._cap = cv2.VideoCapture(int(self.spec))
        elif self.kind == "gstreamer":
            self._cap = cv2.VideoCapture(self.spec, cv2.CAP_GSTREAMER)
        else:
            self._cap = cv2.VideoCapture(self.spec)
        if not self._cap.isOpened():
            hint = {
                "file": "not a video OpenCV can decode (unknown container/codec or a corrupt file)",
                "camera": "no camera with that index (list them with v4l2-ctl --list-devices)",
                "v4l2": "the device is missing or busy (another program holds it?)",
                "network": "the stream did not answer (URL, credentials, network)",
                "gstreamer": "this OpenCV build has no GStreamer (pip wheels lack it; on a Jetson use the system "
                "OpenCV: python3 -m venv --system-site-packages) or the pipeline is wrong",
            }[self.kind]
            raise VideoError(f"{name}: cannot open {self.spec}: {hint}")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0 < fps < 1000 else None
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if (not self.live and count > 0) else None
        self.size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.read_count = 0

    def __iter__(self) -> Iterator[Frame]:
        period = 1.0 / self.fps if self.fps else 1.0 / 30
        while True:
            ok, image = self._cap.read()
            if not ok or image is None:
                return
            t = time.monotonic() if self.live else self.read_count * period
            yield Frame(self.read_count, t, image)
            self.read_count += 1

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(spec: str | os.PathLike, name: str = "source") -> VideoSource:
    """A :class:`VideoSource` for a file path, camera index, V4L2 path, network URL or GStreamer pipeline."""
    return VideoSource(spec, name)


@dataclass
class PairingReport:
    """How two streams were paired: counts read, paired and dropped per stream, and the rule used."""

    tolerance_s: float
    reference: str
    read: dict[str, int] = field(default_factory=lambda: {"ir": 0, "visible": 0})
    paired: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: {"ir": 0, "visible": 0})
    max_offset_s: float = 0.0

    def summary(self) -> str:
        other = "visible" if self.reference == "ir" else "ir"
        text = (
            f"paired {self.paired} frames by timestamp (each {self.reference} frame with the nearest {other} frame "
            f"within {self.tolerance_s * 1000:.1f} ms; largest offset {self.max_offset_s * 1000:.1f} ms); read "
            f"{self.read['ir']} IR + {self.read['visible']} visible"
        )
        if any(self.dropped.values()):
            text += f"; dropped {self.dropped['ir']} IR and {self.dropped['visible']} visible frames"
        return text


def pair_by_time(
    ir: VideoSource, visible: VideoSource, tolerance_s: float | None = None, report: PairingReport | None = None
) -> Iterator[tuple[Frame, Frame]]:
    """Pairs (IR frame, visible frame) matched by timestamp; see the module docstring for the rule.

    The stream with the lower declared rate is the reference (IR when equal or unknown): each of its
    frames is paired with the nearest unused frame of the other stream if it is within ``tolerance_s``
    (default half the reference's frame period), else dropped. Counts go to ``report`` as they happen.
    """
    ref_is_ir = not (ir.fps and visible.fps and visible.fps < ir.fps)
    ref_src, other_src = (ir, visible) if ref_is_ir else (visible, ir)
    ref_name, other_name = ("ir", "visible") if ref_is_ir else ("visible", "ir")
    period = 1.0 / ref_src.fps if ref_src.fps else 1.0 / 30
    tol = 0.5 * period if tolerance_s is None else float(tolerance_s)
    if report is None:
        report = PairingReport(tol, ref_name)
    report.tolerance_s, report.reference = tol, ref_name
    others = iter(other_src)
    pending: list[Frame] = []  # frames of the other stream not yet used, in time order
    exhausted = False

    def pull() -> bool:
        nonlocal exhausted
        if exhausted:
            return False
        frame = next(others, None)
        if frame is None:
            exhausted = True
            return False
        report.read[other_name] += 1
        pending.append(frame)
        return True

    for ref in ref_src:
        report.read[ref_name] += 1
        # read the other stream until a frame is later than this one (or it ends)
        while (not pending or pending[-1].time <= ref.time) and pull():
            pass
        # frames too old for this (and so every later) reference frame are dropped
        while pending and pending[0].time < ref.time - tol:
            pending.pop(0)
            report.dropped[other_name] += 1
        best = min(pending, key=lambda f: abs(f.time - ref.time), default=None)
        if best is None or abs(best.time - ref.time) > tol:
            report.dropped[ref_name] += 1
            continue
        # frames before the chosen one can no longer be nearest to a later reference frame
        while pending[0] is not best:
            pending.pop(0)
            report.dropped[other_name] += 1
        pending.pop(0)
        report.paired += 1
        report.max_offset_s = max(report.max_offset_s, abs(best.time - ref.time))
        yield (ref, best) if ref_is_ir else (best, ref)
    # what the other stream still holds was never paired
    while pull():
        pass
    report.dropped[other_name] += len(pending)


class VideoWriter:
    """Writes H x W x 3 uint8 BGR frames to a video file; the file takes its name only when closed
    without an error (atomic, like every SDK output). Codec by suffix: :data:`VIDEO_CODECS`."""

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int]) -> None:
        cv2 = require_cv2()
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_CODECS:
            raise VideoError(f"{self.path}: unsupported video format {suffix!r}; use one of {', '.join(VIDEO_CODECS)}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # a hidden temporary name with the real suffix (OpenCV picks the container from it)
        self._tmp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.partial{suffix}")
        self.size, self.frames = size, 0
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*VIDEO_CODECS[suffix]), float(fps), size)
        if not self._writer.isOpened():
            self._tmp.unlink(missing_ok=True)
            raise VideoError(
                f"{self.path}: cannot write this video (codec {VIDEO_CODECS[suffix]} unavailable in this OpenCV build)"
            )

    def write(self, frame: np.ndarray) -> None:
        if frame.ndim == 2:
            frame = np.repeat(frame[..., None], 3, axis=2)
        if (frame.shape[1], frame.shape[0]) != self.size:
            raise VideoError(
                f"{self.path}: frame {frame.shape[1]}x{frame.shape[0]} differs from the video's {self.size[0]}x{self.size[1]}"
            )
        if frame.dtype != np.uint8:
            from tsjnet_sdk.imaging import from_unit_float, to_unit_float

            frame = from_unit_float(to_unit_float(frame, "fused frame"), np.uint8)
        self._writer.write(np.ascontiguousarray(frame))
        self.frames += 1

    def close(self, ok: bool = True) -> None:
        """Finish the file; with ``ok`` False (an error) the partial file is removed."""
        self._writer.release()
        if ok:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        self.close(ok=exc_type is None)


class FrameWriter:
    """Writes frames as ``DIR/000000.png``, ``000001.png``, ... (each atomically)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.frames = 0

    def write(self, frame_rgb: np.ndarray) -> None:
        from tsjnet_sdk.imaging import write_image

        write_image(self.folder / f"{self.frames:06d}.png", frame_rgb)
        self.frames += 1
