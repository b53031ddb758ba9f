"""Videos and cameras: source strings, timestamp pairing, writers, `tsjnet fuse` on videos, the [video] extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, mean_onnx_model, require_shared_data
from typer.testing import CliRunner

from tsjnet_sdk.cli import app
from tsjnet_sdk.opencv import INSTALL_HINT, MissingExtraError, require_cv2
from tsjnet_sdk.video import Frame, PairingReport, pair_by_time, source_kind

runner = CliRunner()


def test_import_tsjnet_sdk_does_not_import_opencv():
    code = "import sys, tsjnet_sdk; from tsjnet_sdk import Fuser; import tsjnet_sdk.video, tsjnet_sdk.rig; assert 'cv2' not in sys.modules"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 -> ImportError
    with pytest.raises(MissingExtraError) as e:
        require_cv2()
    assert INSTALL_HINT in str(e.value) and "pip install 'tsjnet-sdk[video]'" == INSTALL_HINT
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "spec, kind",
    [
        ("0", "camera"),
        ("12", "camera"),
        ("/dev/video2", "v4l2"),
        ("rtsp://10.0.0.2:554/thermal", "network"),
        ("HTTP://cam/stream.mjpg", "network"),
        ("nvarguscamerasrc ! video/x-raw(memory:NVMM),width=1920,height=1080 ! nvvidconv ! appsink", "gstreamer"),
        ("clips/ir.mp4", "file"),
    ],
)
def test_source_kinds(spec, kind):
    assert source_kind(spec) == kind


def test_existing_paths_are_never_cameras(tmp_path, monkeypatch):
    from tsjnet_sdk.video import is_video_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "0").mkdir()
    assert source_kind("0") == "file" and not is_video_path("0")
    assert is_video_path("1") and is_video_path("a.MP4") and not is_video_path("a.png")


class FakeSource:
    """A source of frames at given timestamps (what pair_by_time needs: fps and iteration)."""

    def __init__(self, times, fps):
        self.times, self.fps = list(times), fps

    def __iter__(self):
        for i, t in enumerate(self.times):
            yield Frame(i, t, np.full((2, 2, 3), i, np.uint8))


def test_equal_rates_pair_one_to_one():
    ir, vis = FakeSource(np.arange(10) / 10, 10), FakeSource(np.arange(10) / 10, 10)
    report = PairingReport(0, "ir")
    pairs = list(pair_by_time(ir, vis, report=report))
    assert [(a.index, b.index) for a, b in pairs] == [(i, i) for i in range(10)]
    assert report.paired == 10 and report.dropped == {"ir": 0, "visible": 0}


def test_faster_visible_stream_is_paired_by_nearest_timestamp():
    ir = FakeSource(np.arange(10) / 9.0, 9.0)  # 9 fps thermal
    vis = FakeSource(np.arange(31) / 30.0 + 0.004, 30.0)  # 30 fps visible, offset 4 ms
    report = PairingReport(0, "ir")
    pairs = list(pair_by_time(ir, vis, report=report))
    assert len(pairs) == 10 and report.reference == "ir"
    for a, b in pairs:
        assert abs(a.time - b.time) <= 0.5 / 30 + 1e-9  # the nearest of a 30 fps stream
    assert [b.index for _, b in pairs] == sorted({b.index for _, b in pairs})  # in order, none twice
    assert report.dropped == {"ir": 0, "visible": 21} and report.read == {"ir": 10, "visible": 31}
    assert "dropped 0 IR and 21 visible" in report.summary()


def test_frames_outside_the_tolerance_are_dropped_and_counted():
    ir = FakeSource([0.0, 0.1, 0.2, 0.3, 0.4], 10)
    vis = FakeSource([0.0, 0.1, 0.25, 0.4], 10)  # one visible frame late, one missing
    report = PairingReport(0, "ir")
    pairs = list(pair_by_time(ir, vis, tolerance_s=0.02, report=report))
    assert [(a.index, b.index) for a, b in pairs] == [(0, 0), (1, 1), (4, 3)]
    assert report.dropped == {"ir": 2, "visible": 1} and report.paired == 3


def test_slower_visible_stream_becomes_the_reference():
    ir, vis = FakeSource(np.arange(20) / 20, 20), FakeSource(np.arange(5) / 5, 5)
    report = PairingReport(0, "ir")
    pairs = list(pair_by_time(ir, vis, report=report))
    assert report.reference == "visible" and len(pairs) == 5
    assert all(a.time == b.time for a, b in pairs)


@pytest.fixture
def real_videos(tmp_path):
    """Tiny IR / visible AVI files built from a real MSRS pair (shifted a little per frame)."""
    cv2 = pytest.importorskip("cv2", reason="the [video] extra (opencv-python-headless) is not installed")
    root = require_shared_data("msrs", "test")
    ir = cv2.resize(cv2.imread(str(root / "ir" / "00055D.png")), (96, 64), interpolation=cv2.INTER_AREA)
    vis = cv2.resize(cv2.imread(str(root / "vi" / "00055D.png")), (96, 64), interpolation=cv2.INTER_AREA)

    def write(name, image, fps, count):
        w = cv2.VideoWriter(str(tmp_path / name), cv2.VideoWriter_fourcc(*"MJPG"), fps, (96, 64))
        for i in range(count):
            w.write(np.roll(image, i, axis=1))
        w.release()
        return tmp_path / name

    return write("ir.avi", ir, 10, 12), write("vis.avi", vis, 10, 12), write("vis20.avi", vis, 20, 24)


def frame_count(path: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_fuse_two_videos_frame_count_in_equals_out(tmp_path, real_videos):
    ir, vis, _ = real_videos
    model = mean_onnx_model(tmp_path / "mean.onnx", ["n", 1, "h", "w"])
    out, frames = tmp_path / "out" / "fused.mp4", tmp_path / "frames"
    result = runner.invoke(app, ["fuse", str(ir), str(vis), "-o", str(out), "-m", str(model), "--frames", str(frames)])
    assert result.exit_code == 0, result.output
    assert frame_count(out) == 12 and len(list(frames.glob("*.png"))) == 12
    assert "fused 12 frames" in result.output and "paired 12 frames by timestamp" in result.output
    assert not list(out.parent.glob(".*partial*"))  # no temporary file left behind


def test_mismatched_rates_are_paired_by_timestamp_and_reported(tmp_path, real_videos):
    ir, _, vis20 = real_videos
    model = mean_onnx_model(tmp_path / "mean.onnx", ["n", 1, "h", "w"])
    out = tmp_path / "fused.avi"
    result = runner.invoke(app, ["fuse", str(ir), str(vis20), "-o", str(out), "-m", str(model)])
    assert result.exit_code == 0, result.output
    assert frame_count(out) == 12
    assert "nearest visible frame within 50.0 ms" in result.output
    assert "read 12 IR + 24 visible; dropped 0 IR and 12 visible frames" in result.output


def test_fused_frames_match_the_image_path(tmp_path, real_videos):
    """The video path fuses exactly what Fuser gives for the decoded frames (order kept)."""
    import cv2

    from tsjnet_sdk import Fuser

    ir, vis, _ = real_videos
    model = mean_onnx_model(tmp_path / "mean.onnx", ["n", 1, "h", "w"])
    frames = tmp_path / "frames"
    result = runner.invoke(
        app,
        [
            "fuse",
            str(ir),
            str(vis),
            "-o",
            str(tmp_path / "f.avi"),
            "-m",
            str(model),
            "--frames",
            str(frames),
            "--max-frames",
            "5",
        ],
    )
    assert result.exit_code == 0, result.output
    fuser = Fuser(model)
    cap_ir, cap_vis = cv2.VideoCapture(str(ir)), cv2.VideoCapture(str(vis))
    for i in range(5):
        a, b = cap_ir.read()[1], cap_vis.read()[1]
        expected = fuser(a, b, bgr=True)[..., ::-1]  # PNG frames are RGB
        assert np.array_equal(cv2.imread(str(frames / f"{i:06d}.png"))[..., ::-1], expected)
    assert len(list(frames.glob("*.png"))) == 5


def test_video_errors_are_one_line(tmp_path, real_videos):
    ir, vis, _ = real_videos
    model = mean_onnx_model(tmp_path / "mean.onnx", ["n", 1, "h", "w"])
    result = runner.invoke(app, ["fuse", str(ir), str(tmp_path / "missing.mp4"), "-m", str(model)])
    assert result.exit_code == 2 and "no such video file" in result.output
    result = runner.invoke(app, ["fuse", str(ir), str(vis), "-o", str(tmp_path / "x.png"), "-m", str(model)])
    assert result.exit_code == 2 and "-o is a video file" in result.output
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    result = runner.invoke(app, ["fuse", str(ir), str(bad), "-m", str(model)])
    assert result.exit_code == 2 and "cannot open" in result.output
    assert "Traceback" not in result.output


def test_fuse_videos_through_a_rig(tmp_path, real_videos):
    from tsjnet_sdk.rig import Rig

    ir, vis, _ = real_videos
    model = mean_onnx_model(tmp_path / "mean.onnx", ["n", 1, "h", "w"])
    rig = Rig(ir_size=(96, 64), visible_size=(96, 64), homography=np.eye(3), crop=(8, 8, 80, 48))
    path = rig.write(tmp_path / "rig.json")
    out = tmp_path / "fused.avi"
    result = runner.invoke(app, ["fuse", str(ir), str(vis), "-o", str(out), "-m", str(model), "--rig", str(path)])
    assert result.exit_code == 0, result.output
    import cv2

    cap = cv2.VideoCapture(str(out))
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (80, 48)
