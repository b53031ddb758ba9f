"""Estimating a rig (tsjnet_sdk/rig.py) from IR/visible pairs of one scene: ``tsjnet calibrate``.

Cross-modal registration: infrared and visible intensities are unrelated (a warm person is bright in
IR and dark in visible), but their *edges* coincide. Both frames become gradient-magnitude images
(sign-free, so reversed contrast does not matter), and OpenCV's ECC alignment (``cv2.findTransformECC``,
invariant to gain and offset) finds the homography between them, coarse to fine:

1. a coarse search over rotation and scale (phase correlation gives the shift of each candidate) at
   ~1/8 resolution: ECC only converges from a start within a few pixels;
2. ECC with an affine model on the coarse pyramid levels, then a full homography on the finer ones.

With several pairs (of one rig), each is aligned on its own and the rig takes the per-corner median of
the estimates (a pair with few shared edges cannot pull it). The residual is measured on the aligned gradient images: the median shift
that phase correlation still finds between patches (IR pixels; ~0.1-0.3 px on a well-aligned pair is
noise); with several pairs also the spread of the per-pair estimates (mean corner distance).

``--checkerboard COLSxROWS``: the robust option for scenes without shared edges: a checkerboard that
shows in both cameras (heated, or printed on a material with a different emissivity); its inner
corners are detected in both frames and fitted with RANSAC (residual: the RMS reprojection error).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from tsjnet_sdk.errors import TsjnetError
from tsjnet_sdk.imaging import as_gray, to_unit_float
from tsjnet_sdk.opencv import require_cv2
from tsjnet_sdk.rig import Rig

# Method settings, in one place. Chosen on the training pairs (../shared/data/train), never on evaluation sets.
WORK_SIZE = 640  # the IR frame is aligned at most this wide/high (finer adds time, not accuracy)
COARSE_SIZE = 160  # longest side of the coarsest pyramid level (the start search runs there)
ROTATIONS_DEG = tuple(np.arange(-8.0, 8.01, 2.0))  # start search: visible camera roll relative to IR
SCALES = tuple(np.exp(np.linspace(np.log(0.7), np.log(1.4), 11)))  # and relative zoom (after the size ratio)
MODELS = ("affine", "homography")
AFFINE_LEVELS = 2  # the coarsest levels fit an affine model, the finer ones a full homography
ECC_ITERATIONS, ECC_EPS = 200, 1e-6
LEVEL_BLUR = 1.0  # Gaussian blur (pixels of the level) of each gradient pyramid level: widens ECC's reach
LOCAL_NORM_SIGMA = 8.0  # edge strength is normalised over this neighbourhood (pixels of the work grid)
STARTS = 8  # the best few starts of the coarse search are each refined; the best result is kept
CLAHE_CLIP = 2.0  # contrast equalisation of both frames before their gradients
BLUR_SIGMA = 1.0  # Gaussian blur (pixels of the level) before the gradient: tames noise and JPEG blocks


class CalibrationError(TsjnetError, ValueError):
    """Calibration failed (too few edges, no convergence, mismatched frames); the message says what to try."""


@dataclass
class PairFit:
    """One pair's alignment: homography visible -> IR (full-resolution pixels) and its ECC correlation."""

    homography: np.ndarray
    correlation: float
    residual_px: float


@dataclass
class Calibration:
    """Result of :func:`calibrate`: the rig and what was measured on the way."""

    rig: Rig
    pairs: list[PairFit] = field(default_factory=list)
    residual_px: float = float("nan")
    spread_px: float | None = None


def _grey(image: np.ndarray, name: str) -> np.ndarray:
    """Grey float32 in [0, 1], contrast-equalised (CLAHE): a night visible frame's edges are as faint
    as its pixels, and equalising brings them up to the IR frame's."""
    cv2 = require_cv2()
    grey = as_gray(to_unit_float(image, name), name)
    u8 = np.clip(grey * 255 + 0.5, 0, 255).astype(np.uint8)
    clahe = cv2.createCLAHE(clipLimit=CLAHE_CLIP, tileGridSize=(8, 8))
    return clahe.apply(u8).astype(np.float32) / 255


def gradient_image(grey: np.ndarray, sigma: float = BLUR_SIGMA) -> np.ndarray:
    """H x W float32 grey -> H x W float32 gradient magnitude (Sobel on a Gaussian-blurred image)."""
    cv2 = require_cv2()
    blurred = cv2.GaussianBlur(grey, (0, 0), sigma) if sigma > 0 else grey
    gx = cv2.Sobel(blurred, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(blurred, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = cv2.magnitude(gx, gy)
    # Divided by the local edge level: an edge counts by being an edge, not by its contrast, which differs
    # between the two cameras (the sky line dominates a visible frame, warm bodies an IR frame).
    local = cv2.GaussianBlur(magnitude, (0, 0), LOCAL_NORM_SIGMA)
    return (magnitude / (local + 0.05 * float(magnitude.mean()) + 1e-6)).astype(np.float32)


def _resize(grey: np.ndarray, factor: float) -> np.ndarray:
    cv2 = require_cv2()
    h, w = grey.shape
    size = (max(8, round(w * factor)), max(8, round(h * factor)))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)


def _scaling(fx: float, fy: float) -> np.ndarray:
    """3x3 that scales pixel-centre coordinates by (fx, fy) (a resize of the image by those factors)."""
    return np.array([[fx, 0, 0.5 * fx - 0.5], [0, fy, 0.5 * fy - 0.5], [0, 0, 1]], dtype=np.float64)


def _level(grey: np.ndarray, factor: float) -> np.ndarray:
    """A pyramid level: the grey frame resized by ``factor``, its gradient image, blurred by LEVEL_BLUR."""
    cv2 = require_cv2()
    out = gradient_image(_resize(grey, factor) if factor != 1 else grey)
    return cv2.GaussianBlur(out, (0, 0), LEVEL_BLUR) if LEVEL_BLUR > 0 else out


def _similarity(angle_deg: float, scale: float, centre: tuple[float, float]) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    c, s = scale * np.cos(a), scale * np.sin(a)
    cx, cy = centre
    return np.array([[c, -s, cx - c * cx + s * cy], [s, c, cy - s * cx - c * cy], [0, 0, 1]], dtype=np.float64)


def _ecc(template: np.ndarray, image: np.ndarray, warp: np.ndarray, model: int) -> tuple[np.ndarray, float]:
    """One ECC run: warp (3x3, template -> image pixels) refined; (warp, correlation), or raises cv2.error.

    Only template pixels that land inside the image count (OpenCV's rule).
    """
    cv2 = require_cv2()
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, ECC_ITERATIONS, ECC_EPS)
    w = warp.astype(np.float32) if model == cv2.MOTION_HOMOGRAPHY else warp[:2].astype(np.float32)
    corr, w = cv2.findTransformECC(template, image, w, model, criteria, None, 5)
    out = np.eye(3)
    out[: w.shape[0]] = w
    return out / out[2, 2], float(corr)


def _correlation(template: np.ndarray, image: np.ndarray, warp: np.ndarray) -> float:
    """ECC correlation of ``template`` with ``image`` warped onto it by ``warp`` (template -> image)."""
    cv2 = require_cv2()
    h, w = template.shape
    warped = cv2.warpPerspective(image, warp, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    mask = cv2.warpPerspective(np.ones_like(image, dtype=np.uint8), warp, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
    if mask.sum() < 0.1 * mask.size:
        return -1.0
    return float(cv2.computeECC(template, warped, mask))


def _phase_correlate(a: np.ndarray, b: np.ndarray, window: np.ndarray) -> tuple[tuple[float, float], float]:
    """cv2.phaseCorrelate on copies: OpenCV 5.0 multiplies its inputs by the window in place."""
    cv2 = require_cv2()
    return cv2.phaseCorrelate(np.array(a, np.float32), np.array(b, np.float32), window)


def _coarse_starts(template: np.ndarray, image: np.ndarray, count: int) -> list[np.ndarray]:
    """The ``count`` best similarity starts (template -> image pixels) over the rotation x scale grid; the
    shift of each candidate comes from phase correlation of the gradient images."""
    cv2 = require_cv2()
    h, w = template.shape
    centre = ((image.shape[1] - 1) / 2, (image.shape[0] - 1) / 2)
    window = cv2.createHanningWindow((w, h), cv2.CV_32F)
    scored = []
    for angle in ROTATIONS_DEG:
        for scale in SCALES:
            # candidate: template pixel -> image pixel = rotate/scale about the image centre, then shift
            base = _similarity(angle, 1.0 / scale, centre) @ np.array(
                [[1, 0, centre[0] - (w - 1) / 2], [0, 1, centre[1] - (h - 1) / 2], [0, 0, 1]], dtype=np.float64
            )
            warped = cv2.warpPerspective(image, base, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
            (dx, dy), _ = _phase_correlate(template, warped, window)
            cand = base @ np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], dtype=np.float64)
            scored.append((_correlation(template, image, cand), len(scored), cand))
    scored.sort(key=lambda t: (-t[0], t[1]))
    return [cand for _, _, cand in scored[:count]]


def _patch_residual(template: np.ndarray, aligned: np.ndarray, grid: int = 4) -> float:
    """Median shift (pixels) phase correlation finds between grid x grid patches of two aligned
    gradient images; patches with few edges are skipped. NaN when no patch has edges."""
    cv2 = require_cv2()
    h, w = template.shape
    ph, pw = h // grid, w // grid
    if min(ph, pw) < 16:
        return float("nan")
    window = cv2.createHanningWindow((pw, ph), cv2.CV_32F)
    level = np.percentile(template, 90)
    shifts = []
    for gy in range(grid):
        for gx in range(grid):
            a = template[gy * ph : (gy + 1) * ph, gx * pw : (gx + 1) * pw]
            b = aligned[gy * ph : (gy + 1) * ph, gx * pw : (gx + 1) * pw]
            if np.mean(a > level) < 0.03 or np.count_nonzero(b) < 0.5 * b.size:
                continue
            (dx, dy), response = _phase_correlate(a, b, window)
            if response > 0.05:
                shifts.append(float(np.hypot(dx, dy)))
    return float(np.median(shifts)) if shifts else float("nan")


def align_pair(ir: np.ndarray, visible: np.ndarray, start: np.ndarray | None = None, model: str = "affine") -> PairFit:
    """Homography visible -> IR for one pair (full-resolution pixels), by gradient ECC, coarse to fine.

    Args:
        ir: IR frame, H x W (or x1/x3), uint8 / uint16 / float in [0, 1].
        visible: visible frame of the same scene, any size, grey or colour.
        start: a visible -> IR homography to start from (e.g. another pair's); None: the coarse search.
        model: ``affine`` (6 parameters: rotation, zoom, shear, shift; side-by-side cameras with parallel axes,
            the stable default) or ``homography`` (8: adds perspective, for cameras that are not parallel;
            across modalities it needs several pairs with edges everywhere, see docs/rig.md).
    """
    cv2 = require_cv2()
    if model not in MODELS:
        raise CalibrationError(f"unknown model {model!r}: use one of {', '.join(MODELS)}")
    ir_g, vis_g = _grey(ir, "ir"), _grey(visible, "visible")
    if min(ir_g.shape) < 32 or min(vis_g.shape) < 32:
        raise CalibrationError("frames must be at least 32 x 32 pixels to calibrate")
    # Work grids: IR at most WORK_SIZE; visible resized to about the IR's pixel size (its zoom is unknown
    # until aligned, so the frames' size ratio stands in).
    f_ir = min(1.0, WORK_SIZE / max(ir_g.shape))
    f_vis = f_ir * min(ir_g.shape[1] / vis_g.shape[1], ir_g.shape[0] / vis_g.shape[0])
    levels = max(1, int(np.ceil(np.log2(max(ir_g.shape) * f_ir / COARSE_SIZE))) + 1)
    # Each level: the grey frame resized, then its normalised gradient, lightly blurred.
    pyramid = [(_level(ir_g, f_ir * 2.0**-lv), _level(vis_g, f_vis * 2.0**-lv)) for lv in range(levels)]
    # full-res IR -> work IR, full-res visible -> work visible
    s_ir, s_vis = _scaling(f_ir, f_ir), _scaling(f_vis, f_vis)
    k = 2.0 ** -(levels - 1)
    top_ir, top_vis = _scaling(k, k) @ s_ir, _scaling(k, k) @ s_vis
    if start is not None:  # visible -> IR (full res) as IR -> visible on the coarsest level
        starts = [top_vis @ np.linalg.inv(start) @ np.linalg.inv(top_ir)]
    else:
        starts = _coarse_starts(*pyramid[-1], STARTS)
    best: tuple[float, np.ndarray] | None = None
    for warp in starts:
        refined = _refine(pyramid, warp, model)
        if refined is None:
            continue
        tmpl, img = pyramid[0]
        score = _correlation(tmpl, img, refined)
        if best is None or score > best[0]:
            best = (score, refined)
    if best is None:
        raise CalibrationError(
            "the alignment did not converge: the pair shares too few edges (a textured scene with structure "
            "at several depths works best), or try --checkerboard"
        )
    corr, warp = best
    tmpl, img = pyramid[0]
    aligned = cv2.warpPerspective(img, warp, tmpl.shape[::-1], flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    residual = _patch_residual(tmpl, aligned) / f_ir
    vis_to_ir = np.linalg.inv(s_ir) @ np.linalg.inv(warp) @ s_vis
    return PairFit(vis_to_ir / vis_to_ir[2, 2], corr, residual)


def _refine(pyramid: list[tuple[np.ndarray, np.ndarray]], warp: np.ndarray, model: str) -> np.ndarray | None:
    """ECC from the coarsest pyramid level to the finest, starting at ``warp`` (template -> image pixels on
    the coarsest level); the finest level's warp, or None when no level converged."""
    cv2 = require_cv2()
    levels = len(pyramid)
    up = _scaling(2.0, 2.0)
    converged = False
    warp = warp.copy()
    for level in range(levels - 1, -1, -1):
        if level < levels - 1:  # the coarser level's warp on this level's grids
            warp = up @ warp @ np.linalg.inv(up)
        full = model == "homography" and not (level >= levels - AFFINE_LEVELS and levels > AFFINE_LEVELS)
        motion = cv2.MOTION_HOMOGRAPHY if full else cv2.MOTION_AFFINE
        if motion == cv2.MOTION_AFFINE:
            warp[2] = (0, 0, 1)  # affine levels keep the last row fixed
        try:
            warp, _ = _ecc(*pyramid[level], warp, motion)
            converged = True
        except cv2.error:
            pass  # keep the coarser estimate and go on refining
    return warp if converged else None


def corner_distance(h1: np.ndarray, h2: np.ndarray, visible_size: tuple[int, int]) -> float:
    """Mean distance (IR pixels) between where two visible -> IR homographies put the visible frame's corners."""
    w, h = visible_size
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [w - 1, h - 1, 1], [0, h - 1, 1]], dtype=np.float64).T
    a, b = h1 @ corners, h2 @ corners
    return float(np.mean(np.hypot(a[0] / a[2] - b[0] / b[2], a[1] / a[2] - b[1] / b[2])))


def _median_homography(homographies: list[np.ndarray], visible_size: tuple[int, int]) -> np.ndarray:
    """The homography through the per-corner median of where ``homographies`` put the visible frame's corners."""
    cv2 = require_cv2()
    w, h = visible_size
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [w - 1, h - 1, 1], [0, h - 1, 1]], dtype=np.float64).T
    mapped = []
    for hom in homographies:
        p = hom @ corners
        mapped.append((p[:2] / p[2]).T)
    target = np.median(np.stack(mapped), axis=0)
    out = cv2.getPerspectiveTransform(corners[:2].T.astype(np.float32), target.astype(np.float32)).astype(np.float64)
    return out / out[2, 2]


def calibrate(
    pairs: list[tuple[np.ndarray, np.ndarray]], model: str = "affine", checkerboard: tuple[int, int] | None = None
) -> Calibration:
    """Estimate the rig from IR/visible pairs of the same rig (all IR frames one size, all visible one size).

    ``model``: ``affine`` or ``homography`` (see :func:`align_pair`); ``checkerboard``: (cols, rows) inner
    corners to fit detected checkerboard corners instead of edges.

    Returns a :class:`Calibration` (the rig, per-pair fits, the residual in IR pixels and, with several
    pairs, the spread of the per-pair estimates).
    """
    if not pairs:
        raise CalibrationError("calibration needs at least one IR/visible pair")
    ir_size = (pairs[0][0].shape[1], pairs[0][0].shape[0])
    vis_size = (pairs[0][1].shape[1], pairs[0][1].shape[0])
    for i, (ir, vis) in enumerate(pairs):
        if (ir.shape[1], ir.shape[0]) != ir_size or (vis.shape[1], vis.shape[0]) != vis_size:
            raise CalibrationError(
                f"pair {i + 1}: the frames are {ir.shape[1]}x{ir.shape[0]} (IR) and {vis.shape[1]}x{vis.shape[0]} (visible), "
                f"but pair 1 is {ir_size[0]}x{ir_size[1]} and {vis_size[0]}x{vis_size[1]}: all pairs must come from one rig"
            )
    if checkerboard is not None:
        return _calibrate_checkerboard(pairs, checkerboard, ir_size, vis_size)
    fits: list[PairFit] = []
    for ir, vis in pairs:
        fits.append(align_pair(ir, vis, model=model))
    if len(fits) == 1:
        homography, spread = fits[0].homography, None
    else:
        # Several pairs of one rig: each pair's estimate errs on its own (its scene's edges), so the rig takes
        # the median of where the estimates put the visible frame's corners (an outlier pair cannot pull it).
        homography = _median_homography([f.homography for f in fits], vis_size)
        spread = float(np.mean([corner_distance(f.homography, homography, vis_size) for f in fits]))
    residuals = [f.residual_px for f in fits if np.isfinite(f.residual_px)]
    residual = float(np.median(residuals)) if residuals else float("nan")
    info = _info(f"gradient-ecc-{model}", len(pairs), residual, spread)
    rig = Rig(ir_size=ir_size, visible_size=vis_size, homography=homography, calibration=info)
    return Calibration(rig=rig, pairs=fits, residual_px=residual, spread_px=spread)


def _info(method: str, count: int, residual: float, spread: float | None, **extra: Any) -> dict[str, Any]:
    from tsjnet_sdk._version import __version__

    info = {
        "method": method,
        "pairs": count,
        "residual_px": round(residual, 3) if np.isfinite(residual) else None,
        "spread_px": round(spread, 3) if spread is not None else None,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sdk_version": __version__,
    }
    info.update(extra)
    return info


def find_checkerboard(image: np.ndarray, pattern: tuple[int, int], name: str) -> np.ndarray:
    """Inner corners (N x 2, sub-pixel) of a COLS x ROWS checkerboard in an image, or CalibrationError."""
    cv2 = require_cv2()
    grey = np.clip(_grey(image, name) * 255, 0, 255).astype(np.uint8)
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
    found, corners = cv2.findChessboardCorners(grey, pattern, flags=flags)
    if not found:
        found, corners = cv2.findChessboardCorners(255 - grey, pattern, flags=flags)
    if not found:
        raise CalibrationError(f"no {pattern[0]}x{pattern[1]} checkerboard (inner corners) found in the {name} frame")
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_MAX_ITER, 40, 1e-3)
    corners = cv2.cornerSubPix(grey, corners, (5, 5), (-1, -1), criteria)
    return corners.reshape(-1, 2).astype(np.float64)


def _calibrate_checkerboard(
    pairs: list[tuple[np.ndarray, np.ndarray]], pattern: tuple[int, int], ir_size: tuple[int, int], vis_size: tuple[int, int]
) -> Calibration:
    cv2 = require_cv2()
    src, dst = [], []
    for ir, vis in pairs:
        ir_pts, vis_pts = find_checkerboard(ir, pattern, "IR"), find_checkerboard(vis, pattern, "visible")
        # The detector may start the corner order at either end when the contrast differs (a heated board
        # is bright where the print is dark), and both orders fit a homography exactly: the two cameras of a
        # rig stand upright, so keep the order whose mapping turns the board least.
        best = None
        for cand in (vis_pts, vis_pts[::-1]):
            h, _ = cv2.findHomography(cand, ir_pts, 0)
            if h is None:
                continue
            turn = abs(np.arctan2(h[1, 0] - h[0, 1], h[0, 0] + h[1, 1]))
            if best is None or turn < best[0]:
                best = (turn, cand)
        src.append(best[1])
        dst.append(ir_pts)
    src_all, dst_all = np.concatenate(src), np.concatenate(dst)
    h, _ = cv2.findHomography(src_all, dst_all, cv2.RANSAC, 2.0)
    if h is None:
        raise CalibrationError("the checkerboard corners do not fit a homography")
    rms = _reprojection_rms(h, src_all, dst_all)
    info = _info("checkerboard", len(pairs), rms, None, pattern=list(pattern))
    rig = Rig(ir_size=ir_size, visible_size=vis_size, homography=h, calibration=info)
    return Calibration(rig=rig, pairs=[PairFit(h, float("nan"), rms)], residual_px=rms)


def _reprojection_rms(h: np.ndarray, src: np.ndarray, dst: np.ndarray) -> float:
    p = h @ np.c_[src, np.ones(len(src))].T
    return float(np.sqrt(np.mean((p[0] / p[2] - dst[:, 0]) ** 2 + (p[1] / p[2] - dst[:, 1]) ** 2)))
