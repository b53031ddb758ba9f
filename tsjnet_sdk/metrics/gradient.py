"""Edge-preservation metrics of Xydeas & Petrovic: Q^{AB/F} (Qabf) and the fusion-artefact
measure N^{AB/F} in Shreyamsha Kumar's modification (Nabf).

Inputs are H x W float arrays on the 0-255 scale. Compute them on 0-255 data: the orientation
test ``Sx == 0`` is exact for integer-valued images but depends on round-off for [0, 1] data.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit

from tsjnet_sdk.metrics._core import cached, check_triplet, sobel_xy

__all__ = ["nabf", "qabf"]


def _sobel_strength_angle_qabf(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Qabf's edge strength and orientation: Sobel by true convolution with zero padding
    (``conv2(I, h, 'same')``), g = sqrt(sx^2 + sy^2), alpha = atan(sy / sx), pi/2 where sx == 0.

    With the reference kernels h3 = [-1 0 1; -2 0 2; -1 0 1] (x) and h1 = [1 2 1; 0 0 0; -1 -2 -1]
    (y), convolution equals correlation with -SOBEL_X and +SOBEL_Y. The sign matters: alpha is
    pinned to +pi/2 where sx == 0 while elsewhere it follows the sign of sy / sx.
    """

    def compute() -> tuple[np.ndarray, np.ndarray]:
        sx, sy = sobel_xy(image, "constant")
        np.negative(sx, out=sx)
        g = np.sqrt(sx * sx + sy * sy)
        zero = sx == 0
        sx[zero] = 1.0
        a = np.arctan(sy / sx)
        a[zero] = math.pi / 2
        return g, a

    return cached("qabf_sobel", (image,), (), compute)


def _qabf_edge_preservation(ga: np.ndarray, aa: np.ndarray, gf: np.ndarray, af: np.ndarray) -> np.ndarray:
    """Q^{XF} map = Q_g * Q_alpha with the sigmoid constants of Xydeas & Petrovic."""
    tg, kg, dg = 0.9994, -15.0, 0.5
    ta, ka, da = 0.9879, -22.0, 0.8
    hi = np.maximum(ga, gf)
    rel = np.minimum(ga, gf)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel /= hi
    # the reference codes (LT, VIFB, CDDFuse) set G = g_F where g_X == g_F (not 1)
    eq = ga == gf
    rel[eq] = gf[eq]
    orient = np.abs(aa - af)
    orient *= -1.0 / (math.pi / 2)
    orient += 1.0
    # T / (1 + e^{k (x - D)}) = T * expit(-k (x - D))
    rel -= dg
    rel *= -kg
    qg = expit(rel, out=rel)
    orient -= da
    orient *= -ka
    qa = expit(orient, out=orient)
    qg *= tg * ta
    qg *= qa
    return qg


def qabf(ir: np.ndarray, vis: np.ndarray, fused: np.ndarray) -> float:
    """Qabf (Xydeas & Petrovic 2000), identical in LT, VIFB and CDDFuse.

    Sobel strength g and orientation alpha of each image (see above); relative strength
    G = min(g_X, g_F) / max(g_X, g_F) (with the reference codes' quirk G = g_F where g_X == g_F),
    relative orientation A = 1 - |alpha_X - alpha_F| / (pi/2);
    Q^{XF} = 0.9994 / (1 + e^{-15 (G - 0.5)}) * 0.9879 / (1 + e^{-22 (A - 0.8)});
    Qabf = sum(Q^{IR,F} g_IR + Q^{VIS,F} g_VIS) / sum(g_IR + g_VIS).

    Args:
        ir, vis, fused: H x W, 0-255, same shape.

    Returns:
        Qabf in [0, 1); higher is better. NaN if both sources are edge-free (0 / 0).
    """
    ir, vis, fused = check_triplet(ir, vis, fused)
    g1, a1 = _sobel_strength_angle_qabf(ir)
    g2, a2 = _sobel_strength_angle_qabf(vis)
    gf, af = _sobel_strength_angle_qabf(fused)
    q1 = _qabf_edge_preservation(g1, a1, gf, af)
    q2 = _qabf_edge_preservation(g2, a2, gf, af)
    den = float(np.sum(g1 + g2))
    if den == 0.0:
        return math.nan
    return float(np.sum(q1 * g1 + q2 * g2)) / den


def _sobel_nabf(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nabf's gradients: Sobel / 8 by correlation on the mirror-extended image (edge pixel not
    repeated); returns (g, alpha) with alpha = atan(gv / gh), 0 where both are 0."""

    def compute() -> tuple[np.ndarray, np.ndarray]:
        gv, gh = sobel_xy(image, "mirror")
        gv /= 8.0
        gh /= 8.0
        g = np.sqrt(gh * gh + gv * gv)
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.arctan(gv / gh)  # gh == 0, gv != 0 -> +-pi/2 (MATLAB atan(+-Inf))
        a[(gv == 0) & (gh == 0)] = 0.0
        return g, a

    return cached("nabf_sobel", (image,), (), compute)


def nabf(ir: np.ndarray, vis: np.ndarray, fused: np.ndarray) -> float:
    """Nabf: fusion artefacts, Shreyamsha Kumar's modification of Petrovic's N^{AB/F}.

    With g, gv, gh from Sobel/8 (mirror borders): relative strength g^{XF} = min/max (0 if either
    is 0); orientation alpha = atan(gv / gh) (0 where both are 0);
    a^{XF} = ||alpha_X - alpha_F| - pi/2| * 2/pi;
    Q^{XF} = sqrt(0.9999 / (1 + e^{-19 (g^{XF} - 0.5)}) * 0.9995 / (1 + e^{-22 (a^{XF} - 0.5)}));
    weights w_X = g_X^1.5 where g_X >= 2, else 0.001;
    Nabf = sum n [(1 - Q^{IR,F}) w_IR + (1 - Q^{VIS,F}) w_VIS] / sum(w_IR + w_VIS), n = 1 where
    g_F exceeds both source strengths, else 0.

    The fused image is the third argument (LT's current driver passes the arguments in the wrong
    order; this follows the definition).

    Args:
        ir, vis, fused: H x W, 0-255, same shape.

    Returns:
        Nabf in [0, 1); lower is better (0 when the fused image adds no stronger edges).
    """
    ir, vis, fused = check_triplet(ir, vis, fused)
    g1, a1 = _sobel_nabf(ir)
    g2, a2 = _sobel_nabf(vis)
    gf, af = _sobel_nabf(fused)
    art = (gf > g1) & (gf > g2)
    total_w = 0.0
    total_n = 0.0
    for gx, ax in ((g1, a1), (g2, a2)):
        strong = gx >= 2.0  # weights g^1.5 above the threshold T_d = 2, else 0.001
        gs = gx[strong]
        total_w += float(np.sum(gs * np.sqrt(gs))) + 0.001 * float(gx.size - gs.size)
        # only artefact pixels (fused edge stronger than both sources) enter the numerator
        g, gfa = gx[art], gf[art]
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.minimum(g, gfa) / np.maximum(g, gfa)
        rel[(g == 0) | (gfa == 0)] = 0.0
        a = np.abs(np.abs(ax[art] - af[art]) - math.pi / 2) * (2.0 / math.pi)
        qg = 0.9999 * expit(19.0 * (rel - 0.5))
        qa = 0.9995 * expit(22.0 * (a - 0.5))
        w = np.where(g >= 2.0, g * np.sqrt(g), 0.001)
        total_n += float(np.sum((1.0 - np.sqrt(qg * qa)) * w))
    return total_n / total_w
