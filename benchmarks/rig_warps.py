"""Synthetic two-camera rigs built from aligned real pairs, with a known visible -> IR homography.

From an aligned pair (W x H): the *IR camera* sees the central crop (a margin of MARGIN on each side);
the *visible camera* sees a quadrilateral of the original scene: the IR crop rotated by a few degrees,
zoomed by 1 / scale (0.8-1.2) and shifted by tens of pixels (TILT_PX > 0 adds a perspective tilt),
rendered at another resolution (1.5x or 2x the IR frame). Its view stays inside the original picture (rejection
sampling), so no artificial black borders appear. The truth is the homography between the two, if the
source pair was exactly aligned; :func:`truth_given` composes it with the source pair's own mapping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MARGIN = 0.15
ROTATION_DEG = 4.0  # uniform in [-4, 4] degrees
SCALE_RANGE = (0.8, 1.2)  # relative zoom of the visible camera
SHIFT_PX = 30.0  # uniform in [-30, 30] pixels (of the original pair), each axis
TILT_PX = 0.0  # perspective: each corner moved by up to this fraction of the width (0: affine warps)
RESOLUTIONS = (1.5, 2.0)  # visible frame size / IR frame size


@dataclass
class SyntheticRig:
    ir: np.ndarray  # IR camera frame (the crop)
    visible: np.ndarray  # visible camera frame (warped, other resolution)
    visible_truth: np.ndarray  # the aligned visible content on the IR grid (for fusion metrics)
    homography: np.ndarray  # true visible -> IR (pixels)
    params: dict


def ir_corners(size: tuple[int, int]) -> np.ndarray:
    w, h = size
    return np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float64)


def corner_error(estimate: np.ndarray, truth: np.ndarray, ir_size: tuple[int, int]) -> float:
    """Mean distance (IR pixels) over the IR frame's 4 corners between where they land under
    estimate o truth^-1 and where they are: 0 for a perfect estimate."""
    c = np.c_[ir_corners(ir_size), np.ones(4)].T
    p = estimate @ np.linalg.inv(truth) @ c
    return float(np.mean(np.hypot(p[0] / p[2] - c[0], p[1] / p[2] - c[1])))


def truth_given(synthetic: SyntheticRig, original: np.ndarray) -> np.ndarray:
    """The true visible -> IR homography of a synthetic rig when the source pair itself was not exactly
    aligned but related by ``original`` (its own visible -> IR homography, e.g. estimated on it)."""
    mx, my = synthetic.params["margin_px"]
    shift = np.array([[1, 0, mx], [0, 1, my], [0, 0, 1]], dtype=np.float64)
    out = np.linalg.inv(shift) @ original @ shift @ synthetic.homography
    return out / out[2, 2]


def make_rig_pair(ir: np.ndarray, vis: np.ndarray, rng: np.random.Generator) -> SyntheticRig:
    """One synthetic rig from an aligned pair (see the module docstring); ``rng`` draws the warp."""
    import cv2

    h, w = ir.shape[:2]
    mx, my = round(w * MARGIN), round(h * MARGIN)
    ir_cam = np.ascontiguousarray(ir[my : h - my, mx : w - mx])
    vis_truth = np.ascontiguousarray(vis[my : h - my, mx : w - mx])
    wi, hi = ir_cam.shape[1], ir_cam.shape[0]
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    crop = ir_corners((wi, hi)) + [mx, my]
    for _ in range(1000):
        angle = rng.uniform(-ROTATION_DEG, ROTATION_DEG)
        scale = rng.uniform(*SCALE_RANGE)
        shift = rng.uniform(-SHIFT_PX, SHIFT_PX, 2)
        tilt = rng.uniform(-TILT_PX, TILT_PX, (4, 2)) * w
        a = np.deg2rad(angle)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) / scale
        quad = (crop - centre) @ rot.T + centre + shift + tilt
        if quad.min() >= 0 and (quad[:, 0] <= w - 1).all() and (quad[:, 1] <= h - 1).all():
            break
    else:  # pragma: no cover - the ranges above always admit a warp
        raise RuntimeError("no synthetic warp fits inside the picture")
    res = float(rng.choice(RESOLUTIONS))
    wv, hv = round(wi * res), round(hi * res)
    # original pixel -> visible camera pixel
    to_vis = cv2.getPerspectiveTransform(quad.astype(np.float32), ir_corners((wv, hv)).astype(np.float32))
    vis_cam = cv2.warpPerspective(vis, to_vis, (wv, hv), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    truth = np.array([[1, 0, -mx], [0, 1, -my], [0, 0, 1]], dtype=np.float64) @ np.linalg.inv(to_vis)
    params = {
        "margin_px": [mx, my],
        "rotation_deg": round(angle, 3),
        "scale": round(scale, 4),
        "shift_px": [round(float(s), 2) for s in shift],
        "tilt_px_max": round(float(np.abs(tilt).max()), 2),
        "visible_size": [wv, hv],
        "ir_size": [wi, hi],
    }
    return SyntheticRig(ir_cam, vis_cam, vis_truth, truth / truth[2, 2], params)
