"""Classical infrared + visible fusion baselines (numpy/scipy only, no torch), for quality tables and
the demo: pixel average, pixel maximum, and Laplacian-pyramid fusion (Burt & Adelson, 1983).

Every function takes two registered luminance images, float [H, W] arrays with values in [0, 1]
(any size, H, W >= 1), and returns the fused image as a float [H, W] array in [0, 1] of the inputs'
dtype (float32 stays float32; the arithmetic is float64).

    from tsjnet_sdk.baselines import BASELINES
    for name, fuse in BASELINES.items():
        fused = fuse(ir_y, vis_y)

Laplacian pyramid: Gaussian pyramid with the 5-tap binomial filter [1, 4, 6, 4, 1] / 16 (REDUCE =
blur + take every other sample; EXPAND = zero insertion + blur with twice the filter); each level keeps
the detail coefficient of larger magnitude ("max-abs" selection), the coarsest (base) level is the
average of the two. The decomposition reconstructs its input exactly (to float rounding), so two
identical inputs give that input back.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.ndimage import convolve1d

__all__ = [
    "BASELINES",
    "average_fusion",
    "default_levels",
    "gaussian_pyramid",
    "laplacian_pyramid",
    "laplacian_pyramid_fusion",
    "max_fusion",
    "reconstruct",
]

_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
#: the coarsest pyramid level of the automatic depth is at least this many pixels on its short side
MIN_BASE_SIZE = 8
#: and the automatic depth is at most this many levels (deeper levels only blur the base further)
MAX_AUTO_LEVELS = 5


def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.dtype]:
    """Validate a fusion pair; returns both as float64 and the output dtype."""
    a, b = np.asarray(a), np.asarray(b)
    for name, x in (("first image", a), ("second image", b)):
        if x.ndim != 2:
            hint = " (pass the luminance, e.g. tsjnet_sdk.imaging.luma(rgb))" if x.ndim == 3 else ""
            raise ValueError(f"{name} must be an H x W array, got shape {list(x.shape)}{hint}")
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(
                f"{name} has dtype {x.dtype}; the baselines take floats in [0, 1] "
                "(e.g. tsjnet_sdk.imaging.to_unit_float for uint8/uint16)"
            )
        if x.size == 0:
            raise ValueError(f"{name} is empty (shape {list(x.shape)})")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} contains NaN or inf")
    if a.shape != b.shape:
        raise ValueError(f"the images must have the same shape, got {list(a.shape)} and {list(b.shape)}")
    return a.astype(np.float64), b.astype(np.float64), np.result_type(a.dtype, b.dtype)


def _finish(fused: np.ndarray, dtype: np.dtype) -> np.ndarray:
    # Clipping is a no-op for average/max of [0, 1] inputs; the pyramid can overshoot at strong edges.
    return np.clip(fused, 0.0, 1.0).astype(dtype, copy=False)


def average_fusion(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixel average (a + b) / 2. a, b: float [H, W] in [0, 1] -> float [H, W] in [0, 1]."""
    a64, b64, dtype = _check_pair(a, b)
    return _finish(0.5 * (a64 + b64), dtype)


def max_fusion(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixel maximum. a, b: float [H, W] in [0, 1] -> float [H, W] in [0, 1]."""
    a64, b64, dtype = _check_pair(a, b)
    return _finish(np.maximum(a64, b64), dtype)


def _blur(x: np.ndarray, kernel: np.ndarray, mode: str) -> np.ndarray:
    return convolve1d(convolve1d(x, kernel, axis=0, mode=mode), kernel, axis=1, mode=mode)


def _reduce(x: np.ndarray) -> np.ndarray:
    """REDUCE: binomial blur (half-sample symmetric borders) and every other sample: [H, W] -> [ceil(H/2), ceil(W/2)]."""
    return _blur(x, _BINOMIAL, "reflect")[::2, ::2]


def _expand(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """EXPAND: [h, w] -> ``shape`` (<= [2h, 2w]) by zero insertion and a blur with 2 x the binomial filter.

    The coarse map is edge-padded by one sample first, so every output pixel gets the full filter
    support: a constant map expands to exactly that constant (no border ringing), which keeps the
    detail levels of flat images exactly zero.
    """
    padded = np.pad(x, 1, mode="edge")
    up = np.zeros((2 * padded.shape[0], 2 * padded.shape[1]))
    up[::2, ::2] = padded
    up = _blur(up, 2.0 * _BINOMIAL, "constant")
    return up[2 : 2 + shape[0], 2 : 2 + shape[1]]


def default_levels(shape: tuple[int, ...]) -> int:
    """Pyramid depth for an image of ``shape``: halve while the short side stays >= MIN_BASE_SIZE, at most MAX_AUTO_LEVELS."""
    side, levels = min(shape[:2]), 0
    while levels < MAX_AUTO_LEVELS and (side + 1) // 2 >= MIN_BASE_SIZE:
        side = (side + 1) // 2
        levels += 1
    return levels


def gaussian_pyramid(x: np.ndarray, levels: int) -> list[np.ndarray]:
    """[G_0 = x, G_1, ..., G_levels]: float64 maps, each REDUCE of the previous (about half the size)."""
    pyramid = [np.asarray(x, dtype=np.float64)]
    for _ in range(levels):
        pyramid.append(_reduce(pyramid[-1]))
    return pyramid


def laplacian_pyramid(x: np.ndarray, levels: int) -> list[np.ndarray]:
    """[L_0, ..., L_{levels-1}, G_levels]: detail levels L_i = G_i - EXPAND(G_{i+1}) and the base G_levels."""
    gauss = gaussian_pyramid(x, levels)
    details = [g - _expand(coarse, g.shape) for g, coarse in zip(gauss[:-1], gauss[1:])]
    return [*details, gauss[-1]]


def reconstruct(pyramid: list[np.ndarray]) -> np.ndarray:
    """Inverse of :func:`laplacian_pyramid`: collapse [L_0, ..., base] back to a float64 [H, W] image."""
    image = pyramid[-1]
    for detail in reversed(pyramid[:-1]):
        image = detail + _expand(image, detail.shape)
    return image


def laplacian_pyramid_fusion(a: np.ndarray, b: np.ndarray, levels: int | None = None) -> np.ndarray:
    """Laplacian-pyramid fusion: max-abs detail selection, averaged base level.

    Args:
        a, b: float [H, W] in [0, 1], the same shape (any H, W >= 1).
        levels: number of detail levels; None picks :func:`default_levels` (the coarsest level keeps
            >= 8 px on its short side, at most 5 levels). 0 degenerates to the pixel average.

    Returns:
        float [H, W] in [0, 1] (clipped: the pyramid can overshoot at strong edges), the inputs' dtype.
    """
    a64, b64, dtype = _check_pair(a, b)
    if levels is None:
        levels = default_levels(a64.shape)
    if not isinstance(levels, (int, np.integer)) or levels < 0:
        raise ValueError(f"levels must be an int >= 0 (or None for automatic), got {levels!r}")
    pa, pb = laplacian_pyramid(a64, int(levels)), laplacian_pyramid(b64, int(levels))
    # Ties (equal magnitude) keep the first image's coefficient, so identical inputs are exact.
    fused = [np.where(np.abs(la) >= np.abs(lb), la, lb) for la, lb in zip(pa[:-1], pb[:-1])]
    fused.append(0.5 * (pa[-1] + pb[-1]))
    return _finish(reconstruct(fused), dtype)


#: name -> fuse(a, b), in the order the demo and the quality tables show them
BASELINES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "average": average_fusion,
    "max": max_fusion,
    "laplacian": laplacian_pyramid_fusion,
}
