"""Human-perception-inspired metrics of Z. Liu's toolbox: Q_CV (Chen & Varshney 2007) and Q_CB
(Chen & Blum 2009), as implemented in ``metricChen.m`` / ``metricChenBlum.m`` and copied into
VIFB and MEFB.

Both first rescale each image independently to [0, 255] and round (``normalize1``), and filter
in the frequency domain with a contrast-sensitivity function on MATLAB's ``freqspace`` grid.
Inputs are H x W float arrays on 0-255.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from tsjnet_sdk.metrics._core import (
    block_reduce_sum,
    cached,
    check_triplet,
    filter_frequency,
    freq_radius,
    minmax_rescale_255,
    sobel_xy,
)

__all__ = ["qcb", "qcv"]


def _mannos_sakrison(r: np.ndarray) -> np.ndarray:
    """Mannos-Sakrison CSF 2.6 (0.0192 + 0.144 r) exp(-(0.144 r)^1.1)."""
    return 2.6 * (0.0192 + 0.144 * r) * np.exp(-((0.144 * r) ** 1.1))


def qcv(
    ir: np.ndarray,
    vis: np.ndarray,
    fused: np.ndarray,
    *,
    alpha: float = 5.0,
    window: int = 16,
    viewing_divisor: float = 8.0,
) -> float:
    """Q_CV, the Chen-Varshney metric (Information Fusion 8(2), 2007), Z. Liu's implementation.

    1. Each image is min-max rescaled to [0, 255] and rounded (a constant image becomes zeros).
    2. Edge strength G_X = sqrt(Sx^2 + Sy^2), 3x3 Sobel by correlation with zero padding.
    3. Saliency per non-overlapping ``window`` x ``window`` block (partial blocks zero-padded):
       lambda_X = sum G_X^alpha.
    4. D_X = X - F is filtered with the Mannos-Sakrison CSF on the ``freqspace`` grid with
       u = (N / ``viewing_divisor``) f_x, v = (M / ``viewing_divisor``) f_y (Liu's "length 3").
    5. d_X = mean of the filtered D_X^2 per block (mean over the zero-padded block).
    6. Q_CV = sum(lambda_IR d_IR + lambda_VIS d_VIS) / sum(lambda_IR + lambda_VIS).

    Args:
        ir, vis, fused: H x W, 0-255, same shape.
        alpha: saliency exponent (5 in VIFB/MEFB/Liu; the paper lists 1, 2, 3, 4, 5, 10, 15).
        window: block size (16).
        viewing_divisor: 8 ("length 3"; 2 and 4 are Liu's other viewing distances).

    Returns:
        Q_CV >= 0, **lower is better** (0 for a fused image equal to both sources); typical IVIF
        values 10^2-10^3. NaN when both sources are constant.
    """
    ir, vis, fused = check_triplet(ir, vis, fused)
    shape = fused.shape

    def csf_filtered(x: np.ndarray) -> np.ndarray:
        # the CSF filter is linear: filter(X - F) = filter(X) - filter(F), each image filtered once
        csf = _csf_response(shape, viewing_divisor)
        return cached("qcv_csf", (x,), (viewing_divisor,), lambda: filter_frequency(minmax_rescale_255(x), csf))

    def saliency(x: np.ndarray) -> np.ndarray:
        def compute() -> np.ndarray:
            sx, sy = sobel_xy(minmax_rescale_255(x), "constant")
            g = np.sqrt(sx * sx + sy * sy)
            return block_reduce_sum(g**alpha, window)

        return cached("qcv_saliency", (x,), (alpha, window), compute)

    ff = csf_filtered(fused)
    num = 0.0
    den = 0.0
    for x in (ir, vis):
        lam = saliency(x)
        d = csf_filtered(x) - ff
        dblk = block_reduce_sum(d * d, window) / (window * window)
        num += float(np.sum(lam * dblk))
        den += float(np.sum(lam))
    if den == 0.0:
        return math.nan
    return num / den


@functools.lru_cache(maxsize=8)
def _csf_response(shape: tuple[int, int], viewing_divisor: float) -> np.ndarray:
    out = _mannos_sakrison(freq_radius(shape, shape[0] / viewing_divisor, shape[1] / viewing_divisor))
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=8)
def _dog_response(shape: tuple[int, int]) -> np.ndarray:
    r = freq_radius(shape, shape[0] / 30.0, shape[1] / 30.0)
    out = np.exp(-((r / 15.3870) ** 2)) - 0.7622 * np.exp(-((r / 1.3456) ** 2))
    out.setflags(write=False)
    return out


def _gauss31(sigma: float) -> np.ndarray:
    """1-D factor of Liu's un-normalised 31 x 31 Gaussian exp(-(x^2+y^2)/(2 s^2)) / (2 pi s^2)."""
    x = np.arange(-15, 16, dtype=np.float64)
    return np.exp(-(x * x) / (2.0 * sigma * sigma)) / math.sqrt(2.0 * math.pi * sigma * sigma)


_G1 = _gauss31(2.0)
_G2 = _gauss31(4.0)


def _filter31_pair(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``filter2(G, image, 'same')`` (zero padding) for Liu's sigma-2 and sigma-4 31 x 31 Gaussians,
    by linear convolution through one zero-padded real FFT (the kernels are symmetric)."""
    from scipy import fft as sfft

    h, w = image.shape
    ph = sfft.next_fast_len(h + 30, real=True)
    pw = sfft.next_fast_len(w + 30, real=True)
    spec = sfft.rfft2(image, s=(ph, pw))
    out = []
    for k in (_G1, _G2):
        kern = sfft.fft(k, n=ph)[:, None] * sfft.rfft(k, n=pw)[None, :]
        full = sfft.irfft2(spec * kern, s=(ph, pw))
        out.append(full[15 : 15 + h, 15 : 15 + w])
    return out[0], out[1]


def qcb(ir: np.ndarray, vis: np.ndarray, fused: np.ndarray) -> float:
    """Q_CB, the Chen-Blum metric (Image and Vision Computing 27, 2009), Z. Liu's implementation.

    1. Each image is min-max rescaled to [0, 255] and rounded.
    2. Contrast-sensitivity filtering in the frequency domain with the DoG
       S(r) = exp(-(r/15.3870)^2) - 0.7622 exp(-(r/1.3456)^2), u = (N/30) f_x, v = (M/30) f_y.
    3. Local contrast C = (G_2 * I) / (G_4 * I) - 1 with un-normalised 31 x 31 Gaussians of
       sigma 2 and 4 (zero padding), |C|, and the masked contrast C' = |C|^3 / (|C|^2 + 1e-4).
    4. Preservation Q_XF = min(C'_X, C'_F) / max(C'_X, C'_F); saliency
       lambda_X = C'_X^2 / (C'_IR^2 + C'_VIS^2).
    5. Q_CB = mean(lambda_IR Q_IR,F + lambda_VIS Q_VIS,F).

    Where both contrasts of a ratio are 0 the ratio is taken as 1, and equal-zero saliencies as
    1/2 (the MATLAB code returns NaN there; it does not happen on natural images).

    Args:
        ir, vis, fused: H x W, 0-255, same shape.

    Returns:
        Q_CB in [0, 1]; higher is better (1 when F equals both sources).
    """
    ir, vis, fused = check_triplet(ir, vis, fused)
    shape = fused.shape

    def masked_contrast(x: np.ndarray) -> np.ndarray:
        def compute() -> np.ndarray:
            y = filter_frequency(minmax_rescale_255(x), _dog_response(shape))
            b1, b2 = _filter31_pair(y)
            with np.errstate(divide="ignore", invalid="ignore"):
                c = np.divide(b1, b2, out=b1)
            c -= 1.0
            np.abs(c, out=c)
            c[~np.isfinite(c)] = 0.0
            c2 = c * c
            c *= c2  # |C|^3
            c2 += 1e-4
            c /= c2
            return c

        return cached("qcb_contrast", (x,), (), compute)

    c1, c2, cf = masked_contrast(ir), masked_contrast(vis), masked_contrast(fused)

    def ratio(cx: np.ndarray) -> np.ndarray:
        lo = np.minimum(cx, cf)
        hi = np.maximum(cx, cf)
        with np.errstate(divide="ignore", invalid="ignore"):
            lo /= hi
        lo[hi == 0] = 1.0
        return lo

    # saliency-weighted preservation (C'_IR^2 Q_IR,F + C'_VIS^2 Q_VIS,F) / (C'_IR^2 + C'_VIS^2)
    r1, r2 = ratio(c1), ratio(c2)
    a1 = c1 * c1
    a2 = c2 * c2
    s = a1 + a2
    a1 *= r1
    a2 *= r2
    a1 += a2
    zero = s == 0
    s[zero] = 1.0
    a1[zero] = 0.5 * (r1[zero] + r2[zero])
    a1 /= s
    return float(np.mean(a1))
