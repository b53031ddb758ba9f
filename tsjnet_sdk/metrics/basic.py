"""Intensity and gradient statistics and reference-based errors: SD, SF, AG, EI, MSE, RMSE, PSNR,
CC, SCD.

All functions take H x W float arrays on the 0-255 scale. "Sources" are the IR and visible
images; where a metric compares the fused image with each source, how the two per-source values
are combined is part of its definition (documented per function).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from tsjnet_sdk.metrics._core import cached, check_gray, check_triplet, sobel_xy

__all__ = [
    "average_gradient",
    "correlation_coefficient",
    "edge_intensity",
    "mse",
    "psnr",
    "rmse",
    "scd",
    "spatial_frequency",
    "standard_deviation",
]


def _dot(v: np.ndarray) -> float:
    """Sum of squares of a 1-D array. ``einsum`` rather than ``np.dot``: BLAS may split a dot
    product over threads, which stalls on a busy machine and gains nothing at these sizes."""
    return float(np.einsum("i,i->", v, v))


def standard_deviation(image: np.ndarray) -> float:
    """SD: population standard deviation sqrt(mean((F - mean F)^2)) on 0-255 (VIFB calls it
    "Variance"). Constant image: 0. Range [0, 127.5]."""
    image = check_gray(image, "image")
    return float(np.std(image))


def spatial_frequency(image: np.ndarray, *, normalization: Literal["differences", "pixels"] = "differences") -> float:
    """SF = sqrt(RF^2 + CF^2) with RF^2, CF^2 the summed squared horizontal / vertical neighbour
    differences divided by

    * the number of differences, M (N-1) and (M-1) N (``normalization="differences"``: LT,
      CDDFuse), or
    * the pixel count M N (``"pixels"``: VIFB).

    Constant image: 0.
    """
    image = check_gray(image, "image")
    dh = (image[:, 1:] - image[:, :-1]).ravel()
    dv = (image[1:, :] - image[:-1, :]).ravel()
    if normalization == "differences":
        rf2 = _dot(dh) / dh.size
        cf2 = _dot(dv) / dv.size
    elif normalization == "pixels":
        rf2 = _dot(dh) / image.size
        cf2 = _dot(dv) / image.size
    else:
        raise ValueError(f"SF normalization must be 'differences' or 'pixels', got {normalization!r}")
    return math.sqrt(rf2 + cf2)


def average_gradient(image: np.ndarray, *, denominator: Literal["interior", "pixels"] = "interior") -> float:
    """AG = sum sqrt((Gx^2 + Gy^2) / 2) / D, with Gx, Gy central differences (one-sided at the
    borders; MATLAB ``gradient`` = ``numpy.gradient``) and D = (M-1)(N-1) (``"interior"``: LT,
    VIFB) or M N (``"pixels"``: CDDFuse, 0.4 % smaller at 640 x 480). Constant image: 0.
    """
    image = check_gray(image, "image")
    gy, gx = np.gradient(image)
    s = float(np.sqrt((gx * gx + gy * gy) / 2.0).sum())
    m, n = image.shape
    if denominator == "interior":
        return s / ((m - 1) * (n - 1))
    if denominator == "pixels":
        return s / (m * n)
    raise ValueError(f"AG denominator must be 'interior' or 'pixels', got {denominator!r}")


def edge_intensity(image: np.ndarray) -> float:
    """EI (VIFB ``Edge_intensity``): mean Sobel gradient magnitude sqrt(Sx^2 + Sy^2), Sobel by
    correlation with replicated borders (MATLAB ``imfilter(F, fspecial('sobel'), 'replicate')``).
    Constant image: 0."""
    image = check_gray(image, "image")
    sx, sy = sobel_xy(image, "nearest")
    return float(np.sqrt(sx * sx + sy * sy).mean())


def _sq_sum(x: np.ndarray, f: np.ndarray) -> float:
    """Sum of squared differences (shared by MSE, RMSE and PSNR within one evaluation)."""

    def compute() -> float:
        d = (f - x).ravel()
        return _dot(d)

    return cached("sq_sum", (x, f), (), compute)


def _mse_pair(x: np.ndarray, f: np.ndarray) -> float:
    return _sq_sum(x, f) / x.size


def mse(ir: np.ndarray, vis: np.ndarray, fused: np.ndarray) -> float:
    """MSE = (mean((F - IR)^2) + mean((F - VIS)^2)) / 2 on the 0-255 scale (CDDFuse; TSJNet's
    table). Identical images: 0. Lower is better."""
    ir, vis, fused = check_triplet(ir, vis, fused)
    return (_mse_pair(ir, fused) + _mse_pair(vis, fused)) / 2.0


def _vifb_rmse_pair(x: np.ndarray, f: np.ndarray) -> float:
    return math.sqrt(_sq_sum(x, f)) / x.size


def rmse(ir: np.ndarray, vis: np.ndarray, fused: np.ndarray, *, variant: Literal["standard", "vifb"] = "standard") -> float:
    """RMSE, averaged over the two sources.

    * ``"standard"``: (sqrt(mean((F-IR)^2)) + sqrt(mean((F-VIS)^2))) / 2, on 0-255.
    * ``"vifb"``: VIFB's ``Rmse``: (||F-IR||_F + ||F-VIS||_F) / (2 M N), the Frobenius norm divided by
      the pixel count (not a root-mean-square; values ~0.03-0.2 for 8-bit images).
    """
    ir, vis, fused = check_triplet(ir, vis, fused)
    if variant == "standard":
        return (math.sqrt(_mse_pair(ir, fused)) + math.sqrt(_mse_pair(vis, fused))) / 2.0
    if variant == "vifb":
        return (_vifb_rmse_pair(ir, fused) + _vifb_rmse_pair(vis, fused)) / 2.0
    raise ValueError(f"RMSE variant must be 'standard' or 'vifb', got {variant!r}")


def psnr(
    ir: np.ndarray,
    vis: np.ndarray,
    fused: np.ndarray,
    *,
    peak: Literal["255", "fused_max"] = "255",
    error: Literal["mse", "vifb_rmse"] = "mse",
) -> float:
    """PSNR = 10 log10(P^2 / E) in dB.

    * ``error="mse"``: E = :func:`mse` (0-255 scale, averaged over the sources) -- CDDFuse, TSJNet;
      values ~13-19 dB for IVIF.
    * ``error="vifb_rmse"``: E = :func:`rmse` with ``variant="vifb"``, i.e. VIFB's
      20 log10(255 / sqrt(Rmse)); values ~53-62 dB.
    * ``peak="255"``: P = 255; ``peak="fused_max"``: P = max(F) (CDDFuse's code; equal to 255 for
      min-max normalised outputs).

    Identical images: +inf.
    """
    ir, vis, fused = check_triplet(ir, vis, fused)
    if error == "mse":
        e = (_mse_pair(ir, fused) + _mse_pair(vis, fused)) / 2.0
    elif error == "vifb_rmse":
        e = (_vifb_rmse_pair(ir, fused) + _vifb_rmse_pair(vis, fused)) / 2.0
    else:
        raise ValueError(f"PSNR error must be 'mse' or 'vifb_rmse', got {error!r}")
    if peak == "255":
        p = 255.0
    elif peak == "fused_max":
        p = float(fused.max())
    else:
        raise ValueError(f"PSNR peak must be '255' or 'fused_max', got {peak!r}")
    if e == 0.0:
        return math.inf
    if p == 0.0:
        return -math.inf
    return 10.0 * math.log10(p * p / e)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation over all pixels; NaN when either image is constant."""
    dx = x - x.mean()
    dy = y - y.mean()
    den = math.sqrt(float(np.sum(dx * dx)) * float(np.sum(dy * dy)))
    if den == 0.0:
        return math.nan
    return float(np.sum(dx * dy)) / den


def correlation_coefficient(ir: np.ndarray, vis: np.ndarray, fused: np.ndarray) -> float:
    """CC = (r(IR, F) + r(VIS, F)) / 2, r the Pearson correlation over all pixels (LT, CDDFuse,
    TSJNet). Range [-1, 1]; NaN if the fused image or a source is constant."""
    ir, vis, fused = check_triplet(ir, vis, fused)
    return (_pearson(ir, fused) + _pearson(vis, fused)) / 2.0


def scd(ir: np.ndarray, vis: np.ndarray, fused: np.ndarray) -> float:
    """SCD (Aslantas & Bendes 2015) = r(F - VIS, IR) + r(F - IR, VIS). Range [-2, 2]; NaN when a
    difference image or a source is constant (e.g. F equal to a source)."""
    ir, vis, fused = check_triplet(ir, vis, fused)
    return _pearson(fused - vis, ir) + _pearson(fused - ir, vis)
