"""Visual information fidelity: the pixel-domain multi-scale VIF of Sheikh & Bovik (VIFp, LIVE
``vifp_mscale.m``) and the fusion VIF of Han et al. 2013 (VIFF, MEFB ``metricsVIF.m``).

Both share one per-scale computation (:func:`_vif_scale_stats`); they differ in the visual-noise
variance and in how scales and sources are pooled. Inputs are H x W float arrays on 0-255.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from tsjnet_sdk.metrics._core import (
    cached,
    check_gray,
    check_same_shape,
    check_triplet,
    combine_sources,
    filter_valid,
    gaussian_window_1d,
)

__all__ = ["HAN_SCALE_WEIGHTS", "vif", "vif_min_size", "vifp_pair", "viff_han"]

_EPS = 1e-10
#: Gaussian windows of the 4 scales: size 2^(5-s)+1, sigma size/5 (MATLAB fspecial).
_WINDOWS = [gaussian_window_1d(2 ** (5 - s) + 1, (2 ** (5 - s) + 1) / 5.0) for s in range(1, 5)]
#: Han et al.'s per-scale weights [1, 0, 0.15, 1] / 2.15.
HAN_SCALE_WEIGHTS = tuple(w / 2.15 for w in (1.0, 0.0, 0.15, 1.0))
_HAN_NOISE = 0.005 * 255.0 * 255.0
_HAN_C = 1e-7


def vif_min_size() -> int:
    """Smallest height/width for which all 4 VIF scales keep at least one pixel (41)."""
    n = 1
    while True:
        m, ok = n, True
        for s, w in enumerate(_WINDOWS):
            if s > 0:
                m = m - w.size + 1
                if m < 1:
                    ok = False
                    break
                m = (m + 1) // 2
            if m - w.size + 1 < 1:
                ok = False
                break
        if ok:
            return n
        n += 1


def _vif_pyramid(image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per scale: (image at that scale, local mean, local variance clamped at 0).

    Scale s uses a Gaussian window of size N = 2^(5-s)+1, sigma N/5, 'valid' filtering; for s > 1
    the image is first filtered with that window and decimated by 2.
    """
    out = []
    for s, w in enumerate(_WINDOWS):
        if s > 0:
            image = filter_valid(image, w)[::2, ::2]
        mu = filter_valid(image, w)
        var = np.maximum(filter_valid(image * image, w) - mu * mu, 0.0)
        out.append((image, mu, var))
    return out


def _vif_scale_stats(ref: np.ndarray, dist: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per scale: (g, sigma_ref^2, sigma_v^2) maps after LIVE's clamps (eps = 1e-10).

    Shared by VIFp and Han's VIFF; each image's pyramid is computed once per evaluation.
    """
    return cached("vif_stats", (ref, dist), (), lambda: _vif_scale_stats_impl(ref, dist))


def _vif_scale_stats_impl(ref: np.ndarray, dist: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    pr = cached("vif_pyramid", (ref,), (), lambda: _vif_pyramid(ref))
    pd = cached("vif_pyramid", (dist,), (), lambda: _vif_pyramid(dist))
    out = []
    for w, (r, mu1, s1), (d, mu2, s2) in zip(_WINDOWS, pr, pd):
        s12 = filter_valid(r * d, w) - mu1 * mu2
        g = s12 / (s1 + _EPS)
        sv = s2 - g * s12
        low1 = s1 < _EPS
        g[low1] = 0.0
        sv[low1] = s2[low1]
        s1 = np.where(low1, 0.0, s1)
        low2 = s2 < _EPS
        g[low2] = 0.0
        sv[low2] = 0.0
        neg = g < 0
        sv[neg] = s2[neg]
        g[neg] = 0.0
        np.maximum(sv, _EPS, out=sv)
        out.append((g, s1, sv))
    return out


def _check_vif_size(shape: tuple[int, ...]) -> None:
    need = vif_min_size()
    if min(shape) < need:
        raise ValueError(f"VIF needs images of at least {need} x {need} pixels (4 scales), got {shape}")


def _vifp(stats: list[tuple[np.ndarray, np.ndarray, np.ndarray]], sigma_nsq: float, undefined: float) -> float:
    num = 0.0
    den = 0.0
    for g, s1, sv in stats:
        num += float(np.sum(np.log10(1.0 + g * g * s1 / (sv + sigma_nsq))))
        den += float(np.sum(np.log10(1.0 + s1 / sigma_nsq)))
    if den == 0.0:
        return undefined
    return num / den


def vifp_pair(ref: np.ndarray, dist: np.ndarray, *, sigma_nsq: float = 2.0, undefined: float = math.nan) -> float:
    """Multi-scale pixel-domain VIF of ``dist`` against reference ``ref`` (LIVE ``vifp_mscale``).

    VIFp = sum_s sum log10(1 + g^2 s_ref^2 / (s_v^2 + sigma_n^2)) / sum_s sum log10(1 + s_ref^2 / sigma_n^2),
    pooled once over the 4 scales, sigma_n^2 = 2 on the 0-255 scale.

    Args:
        ref, dist: H x W, 0-255, same shape, at least :func:`vif_min_size` (41) pixels each way.
        sigma_nsq: visual noise variance (2 for LIVE VIFp).
        undefined: value returned when the reference has no variance at any scale (0 / 0); CDDFuse
            returns 1.0 there.

    Returns:
        VIFp >= 0 (1 for identical images; can exceed 1 for contrast-enhanced images).
    """
    ref = check_gray(ref, "ref")
    dist = check_gray(dist, "dist")
    check_same_shape([ref, dist], ["ref", "dist"])
    _check_vif_size(ref.shape)
    return _vifp(_vif_scale_stats(ref, dist), sigma_nsq, undefined)


def vif(
    ir: np.ndarray,
    vis: np.ndarray,
    fused: np.ndarray,
    *,
    combine: Literal["avg", "sum"] = "avg",
    undefined: float = math.nan,
) -> float:
    """VIF of a fusion: VIFp(IR -> F) and VIFp(VIS -> F) (:func:`vifp_pair`, sigma_n^2 = 2)
    combined by ``combine`` ('avg': the ``paper`` preset; 'sum': LT and CDDFuse's "VIFF")."""
    ir, vis, fused = check_triplet(ir, vis, fused)
    _check_vif_size(fused.shape)
    a = _vifp(_vif_scale_stats(ir, fused), 2.0, undefined)
    b = _vifp(_vif_scale_stats(vis, fused), 2.0, undefined)
    return combine_sources(a, b, combine)


def viff_han(ir: np.ndarray, vis: np.ndarray, fused: np.ndarray) -> float:
    """VIFF of Han, Cai, Cao & Xu (Information Fusion 14(2), 2013), as in the authors' code.

    Per scale the VIFp maps of both sources are computed with visual noise sigma_n^2 = 0.005 * 255^2;
    at each pixel the source with the **smaller** g is taken (the code's choice, ties -> VIS),
    F_s = sum(VID + C) / sum(VIND + C) with C = 1e-7 per pixel, and
    VIFF = sum_s w_s F_s with w = [1, 0, 0.15, 1] / 2.15.

    Args:
        ir, vis, fused: H x W, 0-255, same shape, at least :func:`vif_min_size` pixels each way.

    Returns:
        VIFF >= 0 (about 0.5 for typical IVIF results; 1 for a fused image equal to both sources).
    """
    ir, vis, fused = check_triplet(ir, vis, fused)
    _check_vif_size(fused.shape)
    st1 = _vif_scale_stats(ir, fused)
    st2 = _vif_scale_stats(vis, fused)
    total = 0.0
    for (g1, s11, sv1), (g2, s12, sv2), w in zip(st1, st2, HAN_SCALE_WEIGHTS):
        pick1 = g1 < g2
        g = np.where(pick1, g1, g2)
        s1 = np.where(pick1, s11, s12)
        sv = np.where(pick1, sv1, sv2)
        vid = np.log10(1.0 + g * g * s1 / (sv + _HAN_NOISE))
        vind = np.log10(1.0 + s1 / _HAN_NOISE)
        total += w * float(np.sum(vid + _HAN_C)) / float(np.sum(vind + _HAN_C))
    return total
