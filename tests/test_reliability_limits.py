"""Hostile sizes: images whose headers claim absurd sizes are refused from the header, before pixel
memory is allocated; the limit is configurable in one place; tiling bounds memory."""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from tsjnet_sdk import Fuser
from tsjnet_sdk.imaging import MAX_PIXELS, MAX_PIXELS_ENV, ImageError, pixel_limit, read_image, write_image

sys.path.insert(0, str(Path(__file__).resolve().parent / "fuzz"))
from make_seeds import png_header_only


def test_huge_png_header_is_refused_without_allocating(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(100_000, 100_000))  # 10^10 pixels claimed, 68 bytes on disk
    assert path.stat().st_size < 100
    tracemalloc.start()
    try:
        with pytest.raises(ImageError, match=r"header claims 10000\.0 Mpx is above the limit of 67\.1 Mpx"):
            read_image(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000  # a decoded frame would be 10 GB
    # 16-bit and RGB headers too, and through Fuser (paths).
    path16 = tmp_path / "bomb16.png"
    path16.write_bytes(png_header_only(70_000, 70_000, bit_depth=16))
    with pytest.raises(ImageError, match="refusing to decode"):
        read_image(path16)
    rgb = tmp_path / "bomb_rgb.png"
    rgb.write_bytes(png_header_only(9000, 9000, colour=2))
    from tsjnet_sdk.runtime.fuser import load_frame  # what Fuser does with a path

    with pytest.raises(ImageError, match="9000x9000"):
        load_frame(rgb, "visible")


def test_limit_is_configurable_in_one_place(tmp_path, monkeypatch):
    import tsjnet_sdk.imaging as imaging

    frame = np.zeros((100, 200), np.uint8)
    write_image(tmp_path / "f.png", frame)
    assert pixel_limit() == MAX_PIXELS == 8192 * 8192
    assert read_image(tmp_path / "f.png").shape == (100, 200)
    with pytest.raises(ImageError, match="200x100"):
        read_image(tmp_path / "f.png", max_pixels=19_999)
    monkeypatch.setenv(MAX_PIXELS_ENV, "10000")
    assert pixel_limit() == 10_000
    with pytest.raises(ImageError, match=MAX_PIXELS_ENV):
        read_image(tmp_path / "f.png")
    assert pixel_limit(20_000) == 20_000  # an explicit argument wins over the environment
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ImageError, match="not an integer"):
        pixel_limit()
    monkeypatch.delenv(MAX_PIXELS_ENV)
    monkeypatch.setattr(imaging, "MAX_PIXELS", 5000)
    assert pixel_limit() == 5000


class _Echo:
    """A backend stub: returns the visible input (enough to test what Fuser does around the network)."""

    name, device, path, static_shape, thread_safe = "stub", "cpu", None, None, True

    def __init__(self):
        self.calls = []

    def run(self, ir, vis):
        self.calls.append(ir.shape)
        return vis.copy()

    def describe(self):
        return {"backend": "stub"}

    def close(self):
        pass


def test_fuser_applies_the_limit_to_arrays_and_pil_images(monkeypatch):
    from PIL import Image

    import tsjnet_sdk.runtime.fuser as fuser_mod

    monkeypatch.setattr(fuser_mod, "open_backend", lambda *a, **k: _Echo())
    fuser = Fuser("unused", max_pixels=64 * 64)
    ok = np.zeros((64, 64), np.uint8)
    assert fuser(ok, ok).shape == (64, 64)
    big = np.zeros((65, 64), np.uint8)
    with pytest.raises(ImageError, match="ir: 64x65"):
        fuser(big, big)
    with pytest.raises(ImageError, match="visible: 64x65"):
        fuser(ok[:65], Image.fromarray(big))


def test_tiled_memory_is_bounded_by_the_frame_not_the_network(monkeypatch):
    """Tiled runs hand the backend tiles only (its activations are bounded by the tile), and the
    Fuser's own working memory stays below 100 bytes a pixel of the frame (docs/reliability.md)."""
    import tsjnet_sdk.runtime.fuser as fuser_mod

    backend = _Echo()
    monkeypatch.setattr(fuser_mod, "open_backend", lambda *a, **k: backend)
    fuser = Fuser("unused", tile=64, tile_overlap=16)
    h, w = 600, 800
    ir = np.zeros((h, w), np.uint8)
    vis = np.full((h, w, 3), 128, np.uint8)
    tracemalloc.start()
    try:
        out = fuser(ir, vis)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape == vis.shape
    assert set(backend.calls) == {(1, 1, 64, 64)}  # never more than one tile per backend call
    assert peak < 100 * h * w, f"{peak / (h * w):.1f} bytes a pixel"


def test_tsjnet_fuse_skips_a_hostile_header(tmp_path):
    from typer.testing import CliRunner

    from tsjnet_sdk.cli import app

    bomb = tmp_path / "ir.png"
    bomb.write_bytes(png_header_only(100_000, 100_000))
    vis = write_image(tmp_path / "vis.png", np.zeros((32, 32, 3), np.uint8))
    result = CliRunner().invoke(app, ["fuse", str(bomb), str(vis), "-o", str(tmp_path / "f.png"), "--config", "tsjnet-tiny"])
    assert result.exit_code == 1, result.output
    assert "above the limit" in " ".join(result.output.split())
    assert not (tmp_path / "f.png").exists()
