"""Information-theoretic metrics: EN, CE, MI and FMI.

All functions take H x W float arrays on the 0-255 scale (see :mod:`tsjnet_sdk.metrics._core`).
Histograms use the 256 grey levels 0..255; an image is turned into levels either by rounding to
the nearest level (``binning="round"``, CDDFuse, LT) or by truncation (``binning="floor"``,
VIFB). The two agree on integer-valued images, which is what 8-bit files give.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from tsjnet_sdk.metrics._core import cached, check_gray, check_same_shape, check_triplet, minmax_rescale_255

__all__ = ["cross_entropy", "entropy", "fmi", "mutual_information", "mutual_information_pair"]

Binning = Literal["round", "floor"]


def _levels(image: np.ndarray, binning: Binning) -> np.ndarray:
    """Integer grey levels 0..255 of a 0-255 image."""

    def compute() -> np.ndarray:
        if binning == "round":
            lv = np.rint(image)
        elif binning == "floor":
            lv = np.floor(image)
        else:
            raise ValueError(f"binning must be 'round' or 'floor', got {binning!r}")
        return np.clip(lv, 0, 255).astype(np.intp)

    return cached("levels", (image,), (binning,), compute)


def _hist(image: np.ndarray, binning: Binning) -> np.ndarray:
    """Normalised 256-bin histogram of the image's levels."""

    def compute() -> np.ndarray:
        lv = _levels(image, binning)
        return np.bincount(lv.ravel(), minlength=256).astype(np.float64) / lv.size

    return cached("hist", (image,), (binning,), compute)


def _entropy_of(p: np.ndarray, base: float) -> float:
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum() / math.log(base))


def entropy(image: np.ndarray, *, base: float = 2.0, binning: Binning = "round") -> float:
    """EN: Shannon entropy of the 256-bin grey-level histogram.

    EN = -sum_l p_l log(p_l) / log(base), p = histogram of ``binning``-ed levels / pixel count.

    Args:
        image: H x W, 0-255.
        base: logarithm base (2 = bits, every toolbox; e = nats).
        binning: 'round' (CDDFuse) or 'floor' (VIFB).

    Returns:
        Entropy in [0, log_base(256)] (0..8 bits). Constant image: 0.
    """
    image = check_gray(image, "image")
    return _entropy_of(_hist(image, binning), base)


def cross_entropy(ir: np.ndarray, vis: np.ndarray, fused: np.ndarray, *, base: float = 2.0, binning: Binning = "round") -> float:
    """CE (VIFB ``Cross_entropy``): average over the two sources of the relative entropy
    sum_l p_X(l) log(p_X(l) / p_F(l)), summed over levels where both histograms are non-zero.

    Lower is better; 0 when the fused image has the same histogram as both sources.

    Args:
        ir, vis, fused: H x W, 0-255, same shape.
        base: logarithm base (VIFB: 2).
        binning: how values become levels (see :func:`entropy`).
    """
    ir, vis, fused = check_triplet(ir, vis, fused)
    pf = _hist(fused, binning)
    out = 0.0
    for src in (ir, vis):
        px = _hist(src, binning)
        both = (px > 0) & (pf > 0)
        out += float((px[both] * np.log(px[both] / pf[both])).sum() / math.log(base))
    return out / 2.0


def mutual_information_pair(
    x: np.ndarray, f: np.ndarray, *, base: float = 2.0, normalize: bool = False, binning: Binning = "round"
) -> float:
    """MI(X, F) = H(X) + H(F) - H(X, F) from the 256 x 256 joint grey-level histogram.

    Args:
        x, f: H x W, 0-255, same shape.
        base: 2 (bits, LT) or e (nats, CDDFuse via scikit-learn, VIFB).
        normalize: min-max rescale each image to [0, 255] and round half away from zero first
            (VIFB ``metricsMutinf``); a constant image becomes all zeros.
        binning: level binning when ``normalize`` is False.
    """
    x = check_gray(x, "x")
    f = check_gray(f, "f")
    check_same_shape([x, f], ["x", "f"])
    return _mi(x, f, base, normalize, binning)


def _mi(x: np.ndarray, f: np.ndarray, base: float, normalize: bool, binning: Binning) -> float:
    if normalize:
        lx = cached("minmax_levels", (x,), (), lambda: minmax_rescale_255(x).astype(np.intp))
        lf = cached("minmax_levels", (f,), (), lambda: minmax_rescale_255(f).astype(np.intp))
    else:
        lx, lf = _levels(x, binning), _levels(f, binning)
    joint = np.bincount((lx * 256 + lf).ravel(), minlength=256 * 256).astype(np.float64) / lx.size
    pxy = joint.reshape(256, 256)
    return _entropy_of(pxy.sum(1), base) + _entropy_of(pxy.sum(0), base) - _entropy_of(joint, base)


def mutual_information(
    ir: np.ndarray,
    vis: np.ndarray,
    fused: np.ndarray,
    *,
    base: float = 2.0,
    normalize: bool = False,
    binning: Binning = "round",
) -> float:
    """MI: MI(IR, F) + MI(VIS, F) (sum over the two sources in every toolbox).

    Args:
        ir, vis, fused: H x W, 0-255, same shape.
        base, normalize, binning: see :func:`mutual_information_pair`.

    Returns:
        Non-negative; at most 2 log_base(256). Constant fused image: 0.
    """
    ir, vis, fused = check_triplet(ir, vis, fused)
    return _mi(ir, fused, base, normalize, binning) + _mi(vis, fused, base, normalize, binning)


# ------------------------------------------------------------------------------------------------
# FMI (Haghighat & Razian's fast FMI)
# ------------------------------------------------------------------------------------------------

FmiFeature = Literal["none", "gradient"]


def _fmi_features(image: np.ndarray, feature: FmiFeature) -> np.ndarray:
    if feature == "none":
        return image
    if feature == "gradient":
        # MATLAB ``gradient(im)`` with one output: the derivative along the columns
        return np.gradient(image, axis=1)
    raise ValueError(f"FMI feature must be 'none' or 'gradient', got {feature!r}")


def _patches(image: np.ndarray, w: int) -> np.ndarray:
    """All w x w windows (interior positions) as columns: (w*w, P), the w*w elements of a window in
    MATLAB column-major order (row index fastest)."""
    h, wd = image.shape
    rows = [image[r : h - w + 1 + r, c : wd - w + 1 + c].ravel() for c in range(w) for r in range(w)]
    return np.stack(rows)


def _minmax_cols(p: np.ndarray) -> np.ndarray:
    """Min-max normalise each column to [0, 1]; a flat column becomes all ones."""
    lo = p.min(axis=0)
    span = p.max(axis=0) - lo
    flat = span == 0
    out = (p - lo) / np.where(flat, 1.0, span)
    out[:, flat] = 1.0
    return out


def _xlog2x(v: np.ndarray) -> np.ndarray:
    """-v log2|v| elementwise, 0 where v == 0 (MATLAB's real(-p log2 p) for p of either sign)."""
    a = np.abs(v)
    nz = a > 0
    return np.where(nz, -v * np.log2(np.where(nz, a, 1.0)), 0.0)


def _wsum(w: np.ndarray, p: np.ndarray) -> np.ndarray:
    """sum_i w_i p[i, :] (``einsum``, not BLAS: no thread start-up for these small products)."""
    return np.einsum("i,ij->j", w, p)


def _pdf_stats(x: np.ndarray, f: np.ndarray):
    """PDFs of the columns, Pearson correlation c of the two PDFs, and the population SDs of the
    window-index distributions (as the reference code computes them)."""
    n = x.shape[0]
    px = x / x.sum(axis=0)
    pf = f / f.sum(axis=0)
    dx = px - px.mean(axis=0)
    df = pf - pf.mean(axis=0)
    sxy = (dx * df).sum(axis=0)
    denom = np.sqrt((dx * dx).sum(axis=0) * (df * df).sum(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(sxy == 0, 0.0, sxy / np.where(denom == 0, 1.0, denom))
    idx = np.arange(1, n + 1, dtype=np.float64)
    sdx = np.sqrt(np.maximum(_wsum(idx * idx, px) - _wsum(idx, px) ** 2, 0.0))
    sdf = np.sqrt(np.maximum(_wsum(idx * idx, pf) - _wsum(idx, pf) ** 2, 0.0))
    return px, pf, c, sdx, sdf


_TINY = 1e-300


def _log2_safe(v: np.ndarray) -> np.ndarray:
    """log2(|v| + 1e-300): log2|v| for every non-zero value that occurs here (>= 1e-30), and a
    finite number where v == 0, so that v * log2 v evaluates to 0 there."""
    a = np.abs(v)
    a += _TINY
    return np.log2(a, out=a)


def _cumsum0(p: np.ndarray) -> np.ndarray:
    """(n+1, P): row 0 zeros, row i the sum of rows < i of p (row-wise loop: fast for small n)."""
    out = np.empty((p.shape[0] + 1, p.shape[1]))
    out[0] = 0.0
    for r in range(p.shape[0]):
        np.add(out[r], p[r], out=out[r + 1])
    return out


class _PdfSide:
    """Per-window quantities of one image's patches (n, P) that do not depend on the other image. ``pdf`` and ``log`` have n + 1 rows, the last repeating row n - 1, so that a
    gather index of n (reached only through round-off at the last breakpoint) reads the last cell."""

    def __init__(self, p: np.ndarray) -> None:
        # min-max normalising a patch and dividing by its sum is dividing (x - min) by its sum:
        # the patch's range cancels; a flat patch (all ones after normalisation) is uniform
        n = p.shape[0]
        pdf = np.empty((n + 1, p.shape[1]))
        d = np.subtract(p, p.min(axis=0), out=pdf[:n])
        tot = d.sum(axis=0)
        flat = tot == 0
        tot[flat] = 1.0
        d /= tot
        d[:, flat] = 1.0 / n
        pdf[n] = pdf[n - 1]
        self.pdf = pdf
        self.log = _log2_safe(pdf)
        self.h = -(pdf[:n] * self.log[:n]).sum(axis=0)
        self.csum = _cumsum0(pdf[:n])
        # mean from the sequential sum, as MATLAB computes it: for a flat patch (uniform PDF) the
        # round-off of that sum decides the reference code's Pearson correlation (two flat
        # patches get c = 1 and FMI 1), so it is reproduced rather than "improved"
        self.centred = pdf[:n] - self.csum[n] / n
        self.ss = (self.centred * self.centred).sum(axis=0)
        idx = np.arange(1, n + 1, dtype=np.float64)
        self.sd = np.sqrt(np.maximum(_wsum(idx * idx, pdf[:n]) - _wsum(idx, pdf[:n]) ** 2, 0.0))


def _fmi_cols(x: np.ndarray, f: np.ndarray, fside: _PdfSide | None = None) -> np.ndarray:
    """Normalised feature MI of each column pair of patches (raw or min-max normalised).

    Reference algorithm (per window, n = window^2 cells per PDF): joint(i, j) =
    k * mass_bound(i, j) + (1 - k) * pf_i px_j over all n^2 cells, mass_bound the 2-D difference
    of min(Cf_i, Cx_j) (c >= 0) or max(Cf_i + Cx_j - 1, 0) (c < 0), k = c / corr(bound). Computed
    here exactly in O(n) cells per window: the bound's mass lies on at most 2n cells, found by
    merging the two sorted CDFs (for c < 0 the source PDF is reversed, which turns the lower
    bound into the upper one); the entropy of the product part over all n^2 cells has the closed
    form -(1-k) log2|1-k| + (1-k)(H_f + H_x), and only the bound's cells are corrected.
    :func:`_fmi_cols_reference` is the direct form (cross-checked in the tests).
    """
    fs = fside if fside is not None else _PdfSide(f)
    xs = _PdfSide(x)
    n, ncol = x.shape
    sxy = (xs.centred * fs.centred).sum(axis=0)
    denom = np.sqrt(xs.ss * fs.ss)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(sxy == 0, 0.0, sxy / np.where(denom == 0, 1.0, denom))
    neg = c < 0
    # lower bound of (f, x) = upper bound of (f, reversed x): reverse the source PDF where c < 0
    if neg.any():
        # select per column without branching: pxe = px + neg * (reversed px - px)
        negf = neg.astype(np.float64)
        pxe = np.empty_like(xs.pdf)
        lpxe = np.empty_like(xs.log)
        for dst, src in ((pxe, xs.pdf), (lpxe, xs.log)):
            np.subtract(src[n - 1 :: -1], src[:n], out=dst[:n])
            dst[:n] *= negf
            dst[:n] += src[:n]
            dst[n] = dst[n - 1]
    else:
        pxe, lpxe = xs.pdf, xs.log
    cf0 = fs.csum  # cf0[i] = Cf_{i-1}; cf0[1:] = Cf
    cx0 = _cumsum0(pxe[:n])
    cf, cxe = cf0[1:], cx0[1:]

    # Merge the two CDFs (ties: fused breakpoints first). The segment ending at Cf_i lies in cell
    # (i, j_f[i]), j_f[i] = #{Cx_l < Cf_i}; the one ending at Cx_j in cell (i_x[j], j),
    # i_x[j] = #{Cf_l <= Cx_j}. A segment starts at the previous breakpoint of either CDF.
    j_f = (cxe[None, :, :] < cf[:, None, :]).sum(axis=1, dtype=np.int8)
    i_x = (cf[None, :, :] <= cxe[:, None, :]).sum(axis=1, dtype=np.int8)
    col = np.arange(ncol)
    gj = j_f.astype(np.intp)
    gj *= ncol
    gj += col  # flat gather indices into (n+1, P) arrays
    gi = i_x.astype(np.intp)
    gi *= ncol
    gi += col
    seg_f = np.maximum(cf0[:-1], np.take(cx0, gj))
    np.subtract(cf, seg_f, out=seg_f)
    seg_x = np.maximum(cx0[:-1], np.take(cf0, gi))
    np.subtract(cxe, seg_x, out=seg_x)

    # correlation of the bound distribution: sum_ij H(i, j) - sum_i Cf_i * sum_j Cx_j, with
    # H the bound's joint CDF. With S[m] = sum_{l<m} Cxe_l and j = j_f[i]:
    #   upper bound  sum_j min(Cf_i, Cxe_j)          = S[j] + (n - j) Cf_i
    #   lower bound  sum_j max(Cf_i + Cx_j - 1, 0)   = (1 + j) Cf_i - S[j]   (since 1 - Cx_j = Cxe_{n-2-j})
    s_at_j = np.take(_cumsum0(cxe), gj)
    jf = j_f.astype(np.float64)
    h_up = (n - jf) * cf
    h_up += s_at_j
    if neg.any():
        h_lo = (1.0 + jf) * cf
        h_lo -= s_at_j
        h_sum = np.where(neg, h_lo.sum(axis=0), h_up.sum(axis=0))
    else:
        h_sum = h_up.sum(axis=0)
    ramp = np.arange(n, 0, -1, dtype=np.float64)  # sum_i C_i = sum_l (n - l) p_l
    cov = h_sum - _wsum(ramp, fs.pdf[:n]) * _wsum(ramp, xs.pdf[:n])
    degenerate = (xs.sd == 0) | (fs.sd == 0) | (~neg & (c == 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr_bound = cov / (fs.sd * xs.sd)
        k = np.where(degenerate, 0.0, c / np.where(degenerate | (corr_bound == 0), 1.0, corr_bound))

    one_k = 1.0 - k
    l1k = _log2_safe(one_k)
    joint = one_k * (fs.h + xs.h - l1k)
    for seg, o, lo in (
        (seg_f, fs.pdf[:n] * np.take(pxe, gj), fs.log[:n] + np.take(lpxe, gj)),
        (seg_x, np.take(fs.pdf, gi) * pxe[:n], np.take(fs.log, gi) + lpxe[:n]),
    ):
        o *= one_k  # product part (1-k) pf_i px_j of the cell
        q = k * seg
        q += o
        # -q log2|q| + (1-k) o log2(|1-k| o): the cell's entropy minus its product-only entropy
        lo += l1k
        lo *= o
        q *= _log2_safe(q)
        lo -= q
        joint += lo.sum(axis=0)

    hsum = xs.h + fs.h
    mi = hsum - joint
    return np.where((mi == 0) | (hsum == 0), 0.0, 2.0 * mi / np.where(hsum == 0, 1.0, hsum))


def _fmi_cols_reference(x: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Direct O(n^2)-per-window form of :func:`_fmi_cols`, literally the reference algorithm
    (used by the tests as a cross-check)."""
    px, pf, c, sdx, sdf = _pdf_stats(x, f)
    cx = np.cumsum(px, axis=0)
    cf = np.cumsum(pf, axis=0)
    cfi = cf[:, None, :]
    cxj = cx[None, :, :]
    pos = c >= 0
    bound = np.where(pos, np.minimum(cfi, cxj), np.maximum(cfi + cxj - 1.0, 0.0))
    cov = (bound - cfi * cxj).sum(axis=(0, 1))
    degenerate = (sdx == 0) | (sdf == 0) | (pos & (c == 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(degenerate, 0.0, c / (cov / (sdf * sdx)))
    mass = np.diff(np.diff(bound, axis=0, prepend=0.0), axis=1, prepend=0.0)
    jpdf = k * mass + (1.0 - k) * (pf[:, None, :] * px[None, :, :])
    joint = _xlog2x(jpdf).sum(axis=(0, 1))
    hx = _xlog2x(px).sum(axis=0)
    hf = _xlog2x(pf).sum(axis=0)
    mi = hx + hf - joint
    hsum = hx + hf
    return np.where((mi == 0) | (hsum == 0), 0.0, 2.0 * mi / np.where(hsum == 0, 1.0, hsum))


def fmi(
    ir: np.ndarray,
    vis: np.ndarray,
    fused: np.ndarray,
    *,
    feature: FmiFeature = "none",
    window: int = 3,
    chunk: int = 8192,
) -> float:
    """FMI: fast feature mutual information (Haghighat & Razian 2014), as in the authors' code
    (LT ``analysis_fmi``, MEFB ``metricsFMI``).

    For every ``window`` x ``window`` window (interior positions only): the source and fused
    feature patches are compared; identical patches score 1. Otherwise each patch is min-max
    normalised (a flat patch becomes all ones), divided by its sum to give a PDF over the
    window's pixels (column-major order), and the joint PDF is Nelsen's mixture
    ``phi * bound + (1 - phi) * product`` of the Frechet bound (upper bound when the Pearson
    correlation c of the two PDFs is >= 0, lower bound otherwise) and the independent product,
    with ``phi = c / corr(bound)``. The window score is 2 MI / (H_X + H_F) in bits (0 when MI is
    0); the map holds the average of the IR and VIS scores and FMI is the map's mean.

    Quirk kept from the reference code: the fused patch is normalised in place while scoring
    the IR patch, so the VIS "identical patch" test compares the raw VIS patch with the
    normalised fused patch unless the IR patch was identical to the fused one.

    Args:
        ir, vis, fused: H x W, 0-255, same shape, at least ``window`` pixels each way.
        feature: 'none' (raw pixels) or 'gradient' (MATLAB ``gradient``: column derivative).
            The reference code's default feature, MATLAB ``edge`` (thinned Sobel edges), is not
            implemented.
        window: odd window size (3 in all published results).
        chunk: windows processed per vectorised batch (memory ~ chunk * window^4 bytes).

    Returns:
        FMI in [0, 1] (1 for a fused image identical to both sources).
    """
    ir, vis, fused = check_triplet(ir, vis, fused)
    if window < 2 or window % 2 == 0:
        raise ValueError(f"FMI window must be an odd size >= 3, got {window}")
    if min(fused.shape) < window:
        raise ValueError(f"FMI needs images of at least {window} x {window} pixels, got {fused.shape}")
    a = _patches(_fmi_features(ir, feature), window)
    b = _patches(_fmi_features(vis, feature), window)
    f = _patches(_fmi_features(fused, feature), window)
    total = 0.0
    for s in range(0, a.shape[1], chunk):
        ac, bc, fc = a[:, s : s + chunk], b[:, s : s + chunk], f[:, s : s + chunk]
        same_a = np.all(ac == fc, axis=0)
        fside = _PdfSide(fc)
        fmi_a = np.where(same_a, 1.0, _fmi_cols(ac, fc, fside))
        # The reference code compares the VIS patch with the fused patch as it left it: raw where
        # the IR patch was identical, min-max normalised (values in [0, 1]) elsewhere. Only VIS
        # patches with values in [0, 1] can equal a normalised patch.
        same_b = same_a & np.all(bc == fc, axis=0)
        cand = ~same_a & (bc.max(axis=0) <= 1.0) & (bc.min(axis=0) >= 0.0)
        if cand.any():
            same_b[cand] = np.all(bc[:, cand] == _minmax_cols(fc[:, cand]), axis=0)
        fmi_b = np.where(same_b, 1.0, _fmi_cols(bc, fc, fside))
        total += float(((fmi_a + fmi_b) * 0.5).sum())
    return total / a.shape[1]
