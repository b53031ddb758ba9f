"""Classical baselines (tsjnet_sdk.baselines): exactness, known small cases, input errors."""

from __future__ import annotations

import numpy as np
import pytest

from tsjnet_sdk.baselines import (
    BASELINES,
    average_fusion,
    default_levels,
    laplacian_pyramid,
    laplacian_pyramid_fusion,
    max_fusion,
    reconstruct,
)


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w))


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (37, 50), (64, 96)])
@pytest.mark.parametrize("name", list(BASELINES))
def test_identical_inputs_give_the_input(name: str, shape: tuple[int, int]) -> None:
    x = _image(*shape)
    out = BASELINES[name](x, x.copy())
    assert out.shape == shape and out.dtype == np.float64
    np.testing.assert_allclose(out, x, atol=1e-6 if name == "laplacian" else 0)


@pytest.mark.parametrize("levels", [0, 1, 3, 6])
def test_pyramid_reconstructs_exactly(levels: int) -> None:
    x = _image(33, 47, seed=1)  # odd sizes: every level has an odd side at some point
    pyramid = laplacian_pyramid(x, levels)
    assert len(pyramid) == levels + 1
    np.testing.assert_allclose(reconstruct(pyramid), x, atol=1e-12)


def test_average_and_max_known_values() -> None:
    a = np.array([[0.0, 1.0], [0.25, 0.5]])
    b = np.array([[1.0, 1.0], [0.75, 0.0]])
    np.testing.assert_array_equal(average_fusion(a, b), [[0.5, 1.0], [0.5, 0.25]])
    np.testing.assert_array_equal(max_fusion(a, b), [[1.0, 1.0], [0.75, 0.5]])


def test_laplacian_of_two_flat_images_is_their_average() -> None:
    # Flat images have all-zero detail levels (EXPAND keeps constants exact), leaving the averaged base.
    a, b = np.full((40, 30), 0.2), np.full((40, 30), 0.6)
    np.testing.assert_allclose(laplacian_pyramid_fusion(a, b), np.full((40, 30), 0.4), atol=1e-12)
    np.testing.assert_allclose(laplacian_pyramid_fusion(a, b, levels=0), np.full((40, 30), 0.4), atol=1e-12)


def test_laplacian_keeps_the_details_of_the_textured_input() -> None:
    # Against a flat image every detail coefficient of the textured one wins the max-abs selection;
    # only the base is averaged, so fused = a + EXPAND^n((c - base_a) / 2) = a + (c - low_a) / 2.
    a = 0.3 + 0.4 * _image(32, 48, seed=2)
    c = 0.5
    levels = 2
    fused = laplacian_pyramid_fusion(a, np.full_like(a, c), levels=levels)
    low_a = reconstruct([np.zeros_like(d) for d in laplacian_pyramid(a, levels)[:-1]] + [laplacian_pyramid(a, levels)[-1]])
    np.testing.assert_allclose(fused, np.clip(a + (c - low_a) / 2, 0, 1), atol=1e-12)
    # and it is sharper than the average, which halves the texture
    assert np.std(np.diff(fused, axis=1)) > 1.5 * np.std(np.diff(average_fusion(a, np.full_like(a, c)), axis=1))


def test_laplacian_picks_the_stronger_edge_and_stays_in_range() -> None:
    a = np.zeros((32, 32))
    a[:, 16:] = 1.0  # hard step: the pyramid overshoots, output is clipped
    b = np.full((32, 32), 0.5)
    b[:, 16:] = 0.6  # weak step in the same place
    fused = laplacian_pyramid_fusion(a, b)
    assert 0.0 <= fused.min() and fused.max() <= 1.0
    # the fine levels take a's full step, only the base is averaged: a larger jump than the average's 0.55
    avg = average_fusion(a, b)
    assert fused[:, 20].mean() - fused[:, 11].mean() > avg[:, 20].mean() - avg[:, 11].mean() + 0.05


def test_dtype_is_kept() -> None:
    x = _image(16, 16).astype(np.float32)
    for fuse in BASELINES.values():
        assert fuse(x, x).dtype == np.float32


def test_default_levels() -> None:
    assert default_levels((480, 640)) == 5
    assert default_levels((32, 32)) == 2  # 32 -> 16 -> 8
    assert default_levels((7, 100)) == 0


@pytest.mark.parametrize("name", list(BASELINES))
def test_input_errors(name: str) -> None:
    fuse = BASELINES[name]
    x = _image(8, 8)
    with pytest.raises(ValueError, match="same shape"):
        fuse(x, _image(8, 9))
    with pytest.raises(ValueError, match="H x W"):
        fuse(np.stack([x] * 3, axis=-1), np.stack([x] * 3, axis=-1))
    with pytest.raises(TypeError, match="dtype uint8"):
        fuse((x * 255).astype(np.uint8), x)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fuse(x, bad)


def test_laplacian_rejects_bad_levels() -> None:
    x = _image(8, 8)
    with pytest.raises(ValueError, match="levels"):
        laplacian_pyramid_fusion(x, x, levels=-1)
