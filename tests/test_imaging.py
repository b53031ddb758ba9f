"""Image I/O and colour conversion (numpy + Pillow)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tsjnet_sdk.imaging import (
    ImageError,
    compose_output,
    from_unit_float,
    prepare_pair,
    read_image,
    rgb_to_ycbcr,
    to_unit_float,
    write_image,
    ycbcr_to_rgb,
)


def test_ycbcr_round_trip_and_known_values():
    rng = np.random.default_rng(0)
    rgb = rng.random((7, 9, 3))
    assert np.allclose(ycbcr_to_rgb(*rgb_to_ycbcr(rgb)), rgb, atol=1e-12)
    y, cb, cr = rgb_to_ycbcr(np.array([[[1.0, 0.0, 0.0]]]))  # pure red
    assert np.allclose([y[0, 0], cb[0, 0], cr[0, 0]], [0.299, 0.5 - 0.299 / 1.772, 1.0])
    grey = np.full((2, 2, 3), 0.3)
    _, cb, cr = rgb_to_ycbcr(grey)
    assert np.allclose(cb, 0.5) and np.allclose(cr, 0.5)


def test_read_write_8_and_16_bit(tmp_path):
    img16 = (np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    write_image(tmp_path / "t16.png", img16)
    back = read_image(tmp_path / "t16.png")
    assert back.dtype == np.uint16 and np.array_equal(back, img16)
    rgb = np.random.default_rng(1).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    write_image(tmp_path / "c.png", rgb)
    assert np.array_equal(read_image(tmp_path / "c.png"), rgb)
    assert to_unit_float(img16).max() <= 1.0 and to_unit_float(img16).dtype == np.float32


def test_bad_images_give_clear_errors(tmp_path):
    with pytest.raises(ImageError, match="no such image"):
        read_image(tmp_path / "nope.png")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(ImageError, match="not a readable image"):
        read_image(junk)
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(good)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        read_image(cut)
    with pytest.raises(ImageError, match=r"must be in \[0, 1\]"):
        to_unit_float(np.full((4, 4), 3.0))
    with pytest.raises(ImageError, match="dtype int64"):
        to_unit_float(np.zeros((4, 4), dtype=np.int64))
    with pytest.raises(ImageError, match="unsupported output format"):
        write_image(tmp_path / "x.gif", np.zeros((4, 4), np.uint8))


def test_prepare_pair_and_compose_keep_visible_chroma():
    rng = np.random.default_rng(2)
    vis = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    ir = np.repeat(rng.integers(0, 256, (20, 30, 1), dtype=np.uint8), 3, axis=2)  # grey stored as RGB
    ir_y, vis_y, chroma = prepare_pair(ir, vis)
    assert ir_y.shape == vis_y.shape == (20, 30) and ir_y.dtype == np.float32
    assert np.allclose(ir_y, ir[..., 0] / 255.0, atol=1e-6)
    fused = compose_output(vis_y, chroma)  # fusing with Y unchanged gives back the visible image
    assert np.abs(from_unit_float(fused).astype(int) - vis.astype(int)).max() <= 1
    _, _, none = prepare_pair(ir, vis[..., 0])
    assert none is None
    with pytest.raises(ImageError, match="registered to the same size"):
        prepare_pair(ir[:10], vis)
