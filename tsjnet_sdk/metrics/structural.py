"""Structural similarity: SSIM (Wang et al. 2004) and MS-SSIM (Wang, Simoncelli & Bovik 2003).

Inputs are H x W float arrays on the 0-255 scale.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage

from tsjnet_sdk.metrics._core import (
    cached,
    check_gray,
    check_same_shape,
    check_triplet,
    combine_sources,
    filter_valid,
    gaussian_window_1d,
)

__all__ = ["MS_SSIM_WEIGHTS", "ms_ssim", "ms_ssim_pair", "ms_ssim_min_size", "ssim", "ssim_pair"]

SsimWindow = Literal["gaussian11", "uniform7"]
Combine = Literal["avg", "sum"]

#: Wang et al. 2003 per-scale exponents (5 scales).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

_GAUSS11 = gaussian_window_1d(11, 1.5)


def _local_moments(x: np.ndarray, window: SsimWindow) -> tuple[np.ndarray, np.ndarray]:
    """(local mean, local mean of x^2) for the SSIM window, before any crop."""
    if window == "gaussian11":
        return filter_valid(x, _GAUSS11), filter_valid(x * x, _GAUSS11)
    if window == "uniform7":
        return ndimage.uniform_filter(x, size=7, mode="reflect"), ndimage.uniform_filter(x * x, size=7, mode="reflect")
    raise ValueError(f"SSIM window must be 'gaussian11' or 'uniform7', got {window!r}")


def _ssim_means(x: np.ndarray, y: np.ndarray, window: SsimWindow, data_range: float, k1: float, k2: float) -> tuple[float, float]:
    """(mean SSIM, mean contrast-structure term) over the SSIM map."""
    return cached("ssim_means", (x, y), (window, data_range, k1, k2), lambda: _ssim_means_impl(x, y, window, data_range, k1, k2))


def _ssim_means_impl(
    x: np.ndarray, y: np.ndarray, window: SsimWindow, data_range: float, k1: float, k2: float
) -> tuple[float, float]:
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    mx, exx = cached("ssim_moments", (x,), (window,), lambda: _local_moments(x, window))
    my, eyy = cached("ssim_moments", (y,), (window,), lambda: _local_moments(y, window))
    if window == "gaussian11":
        # Wang's reference code: 11x11 Gaussian (sigma 1.5), 'valid' region, population moments
        exy = filter_valid(x * y, _GAUSS11)
        norm = 1.0
    else:
        # scikit-image's defaults: 7x7 mean filter with reflected borders, sample covariance
        # (N/(N-1)), then a 3-pixel border cropped from the map
        size, pad = 7, 3
        if min(x.shape) < size:
            raise ValueError(f"SSIM with a 7x7 window needs images of at least 7 x 7, got {x.shape}")
        norm = size * size / (size * size - 1.0)
        exy = ndimage.uniform_filter(x * y, size=size, mode="reflect")
        crop = (slice(pad, -pad), slice(pad, -pad))
        mx, my, exx, eyy, exy = (a[crop] for a in (mx, my, exx, eyy, exy))
    # luminance (2 mx my + C1) / (mx^2 + my^2 + C1); contrast-structure
    # (2 sxy + C2) / (sxx + syy + C2) with sxx = norm (exx - mx^2), sxy = norm (exy - mx my)
    mxy = mx * my
    msq = mx * mx
    msq += my * my
    cs = exy - mxy
    cs *= 2.0 * norm
    cs += c2
    den = exx + eyy
    den -= msq
    den *= norm
    den += c2
    cs /= den
    mean_cs = float(np.mean(cs))
    mxy *= 2.0
    mxy += c1
    msq += c1
    mxy /= msq  # luminance term
    mxy *= cs
    return float(np.mean(mxy)), mean_cs


def ssim_pair(
    x: np.ndarray,
    y: np.ndarray,
    *,
    window: SsimWindow = "gaussian11",
    data_range: float = 255.0,
    k1: float = 0.01,
    k2: float = 0.03,
) -> float:
    """Mean SSIM between two grey images.

    SSIM map = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2)),
    C1 = (k1 L)^2, C2 = (k2 L)^2 with L = ``data_range``.

    Args:
        x, y: H x W, 0-255, same shape (at least 11 x 11 for 'gaussian11').
        window: 'gaussian11' -- 11 x 11 Gaussian, sigma 1.5, 'valid' map, population moments
            (Wang's reference code, VIFB); 'uniform7' -- scikit-image's default 7 x 7 mean
            window, sample covariance, 3-pixel crop (CDDFuse).
        data_range: L. 255 is correct for 0-255 data; CDDFuse's evaluator effectively used 2
            (scikit-image 0.19 took the range of the float dtype, (-1, 1)).

    Returns:
        Mean SSIM in [-1, 1]; 1 for identical images.
    """
    x = check_gray(x, "x")
    y = check_gray(y, "y")
    check_same_shape([x, y], ["x", "y"])
    if window == "gaussian11" and min(x.shape) < 11:
        raise ValueError(f"SSIM with the 11x11 Gaussian window needs images of at least 11 x 11, got {x.shape}")
    return _ssim_means(x, y, window, data_range, k1, k2)[0]


def ssim(
    ir: np.ndarray,
    vis: np.ndarray,
    fused: np.ndarray,
    *,
    window: SsimWindow = "gaussian11",
    data_range: float = 255.0,
    combine: Combine = "avg",
) -> float:
    """SSIM of the fused image against both sources: SSIM(IR, F) and SSIM(VIS, F) combined by
    ``combine`` ('avg': LT, TSJNet's table; 'sum': VIFB, CDDFuse). See :func:`ssim_pair`."""
    ir, vis, fused = check_triplet(ir, vis, fused)
    a = ssim_pair(ir, fused, window=window, data_range=data_range)
    b = ssim_pair(vis, fused, window=window, data_range=data_range)
    return combine_sources(a, b, combine)


def _downsample2(x: np.ndarray) -> np.ndarray:
    """2x2 mean then keep every other pixel; odd sizes repeat the last row/column
    (``imfilter(x, ones(2)/4, 'symmetric')`` then ``x(1:2:end, 1:2:end)``)."""
    h, w = x.shape
    if h % 2 or w % 2:
        x = np.pad(x, ((0, h % 2), (0, w % 2)), mode="edge")
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def ms_ssim_min_size(levels: int = 5, window: int = 11) -> int:
    """Smallest height/width for which every MS-SSIM scale still holds one ``window`` x ``window``
    patch."""
    n = window
    for _ in range(levels - 1):
        n = 2 * n - 1
    return n


def ms_ssim_pair(x: np.ndarray, y: np.ndarray, *, data_range: float = 255.0) -> float:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik 2003; Wang's ``msssim.m``), 5 scales.

    At scales 1-4 the mean contrast-structure term cs_j, at scale 5 the full mean SSIM s_5 (11 x
    11 Gaussian, 'valid', C1/C2 from ``data_range``); between scales a 2 x 2 mean and decimation
    by 2. MS-SSIM = prod_j max(cs_j, 0)^w_j * max(s_5, 0)^w_5 with w = :data:`MS_SSIM_WEIGHTS`
    (negative terms are clamped to 0, as pytorch-msssim does, instead of producing complex
    numbers). This is the standard MS-SSIM, **not** LT's "MS_SSIM" (MEF-SSIM of the source stack).

    Args:
        x, y: H x W, 0-255, same shape, each side at least :func:`ms_ssim_min_size` (161) pixels.

    Returns:
        MS-SSIM in [0, 1]; 1 for identical images.
    """
    x = check_gray(x, "x")
    y = check_gray(y, "y")
    check_same_shape([x, y], ["x", "y"])
    need = ms_ssim_min_size()
    if min(x.shape) < need:
        raise ValueError(
            f"MS-SSIM needs images of at least {need} x {need} pixels (5 scales of an 11x11 window), "
            f"got {x.shape}; use SSIM for smaller images"
        )
    out = 1.0
    for level, w in enumerate(MS_SSIM_WEIGHTS):
        mean_ssim, mean_cs = _ssim_means(x, y, "gaussian11", data_range, 0.01, 0.03)
        if level < len(MS_SSIM_WEIGHTS) - 1:
            out *= max(mean_cs, 0.0) ** w
            x, y = _downsample2(x), _downsample2(y)
        else:
            out *= max(mean_ssim, 0.0) ** w
    return out


def ms_ssim(ir: np.ndarray, vis: np.ndarray, fused: np.ndarray, *, data_range: float = 255.0, combine: Combine = "avg") -> float:
    """MS-SSIM of the fused image against both sources, combined by ``combine`` ('avg' or 'sum').
    See :func:`ms_ssim_pair`."""
    ir, vis, fused = check_triplet(ir, vis, fused)
    a = ms_ssim_pair(ir, fused, data_range=data_range)
    b = ms_ssim_pair(vis, fused, data_range=data_range)
    return combine_sources(a, b, combine)
