"""The two-camera rig file: how a visible camera's frames map onto the infrared camera's frames.

A real rig has a thermal camera (e.g. 640x512) beside a visible one (e.g. 1920x1080) with another
field of view; the network needs the two pixel-aligned and the same size. The rig holds that mapping,
estimated once (``tsjnet calibrate``, tsjnet_sdk/calibrate.py) and applied to every pair
(``Fuser(rig=...)``, ``tsjnet fuse --rig``):

* ``homography``: 3x3, a visible pixel (x, y, 1) -> the IR pixel it shows (pixel centres at integers);
* ``crop`` (optional): the region [x, y, w, h] of the IR frame to output (e.g. where both cameras see);
* ``scale`` (optional, default 1): output pixels per IR pixel (2: fuse at twice the IR resolution);
* ``camera_matrix`` + ``distortion`` (optional): the visible lens (OpenCV's model, k1 k2 p1 p2 [k3 ...]),
  removed before the homography.

The output grid is the IR frame (cropped, scaled); the visible frame is resampled onto it once per
pair with one precomputed ``cv2.remap`` (bilinear; visible pixels outside its field of view are 0).
The file is JSON, versioned (``"format": "tsjnet-rig", "version": 1``), written atomically::

    {"format": "tsjnet-rig", "version": 1, "ir_size": [640, 512], "visible_size": [1920, 1080],
     "homography_visible_to_ir": [[0.33, 0.0, 4.1], [0.0, 0.33, -2.0], [0.0, 0.0, 1.0]],
     "output": {"crop": null, "scale": 1.0}, "visible_distortion": null,
     "calibration": {"method": "gradient-ecc", "pairs": 3, "residual_px": 0.6, ...}}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tsjnet_sdk.errors import TsjnetError
from tsjnet_sdk.opencv import require_cv2

RIG_FORMAT = "tsjnet-rig"
RIG_VERSION = 1


class RigError(TsjnetError, ValueError):
    """A rig file or rig that cannot be used, or frames that do not fit it; the message names the fix."""


def _size(value: Any, name: str) -> tuple[int, int]:
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value)):
        raise RigError(f"{name} must be [width, height] in pixels (two positive integers), got {value!r}")
    return int(value[0]), int(value[1])


def _matrix(value: Any, shape: tuple[int, int], name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise RigError(f"{name} must be a {shape[0]}x{shape[1]} list of numbers, got {value!r}") from None
    if arr.shape != shape or not np.isfinite(arr).all():
        raise RigError(f"{name} must be a {shape[0]}x{shape[1]} list of finite numbers, got shape {arr.shape}")
    return arr


@dataclass
class Rig:
    """Visible -> IR mapping of a two-camera rig; see the module docstring. Sizes are (width, height)."""

    ir_size: tuple[int, int]
    visible_size: tuple[int, int]
    homography: np.ndarray
    crop: tuple[int, int, int, int] | None = None
    scale: float = 1.0
    camera_matrix: np.ndarray | None = None
    distortion: tuple[float, ...] | None = None
    calibration: dict[str, Any] = field(default_factory=dict)
    _maps: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.ir_size = _size(list(self.ir_size), "ir_size")
        self.visible_size = _size(list(self.visible_size), "visible_size")
        self.homography = _matrix(self.homography, (3, 3), "homography_visible_to_ir")
        if abs(np.linalg.det(self.homography)) < 1e-12:
            raise RigError("homography_visible_to_ir is singular (determinant 0): recalibrate the rig (tsjnet calibrate)")
        self.homography = self.homography / self.homography[2, 2]
        if self.crop is not None:
            crop = tuple(self.crop)
            if len(crop) != 4 or not all(isinstance(v, int) for v in crop):
                raise RigError(f"output crop must be [x, y, width, height] in IR pixels (integers), got {self.crop!r}")
            x, y, w, h = crop
            if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > self.ir_size[0] or y + h > self.ir_size[1]:
                raise RigError(f"output crop {list(crop)} is not inside the {self.ir_size[0]}x{self.ir_size[1]} IR frame")
            self.crop = (x, y, w, h)
        if not (isinstance(self.scale, (int, float)) and 0.05 <= float(self.scale) <= 8):
            raise RigError(f"output scale must be a number in [0.05, 8], got {self.scale!r}")
        self.scale = float(self.scale)
        if (self.camera_matrix is None) != (self.distortion is None):
            raise RigError("visible_distortion needs both camera_matrix (3x3) and coefficients")
        if self.camera_matrix is not None:
            self.camera_matrix = _matrix(self.camera_matrix, (3, 3), "visible_distortion.camera_matrix")
            coeffs = tuple(float(c) for c in self.distortion)
            if len(coeffs) not in (4, 5, 8, 12, 14):
                raise RigError(f"visible_distortion.coefficients: OpenCV takes 4, 5, 8, 12 or 14 numbers, got {len(coeffs)}")
            self.distortion = coeffs

    # -- geometry -----------------------------------------------------------------------------------

    @property
    def output_size(self) -> tuple[int, int]:
        """(width, height) of the registered pair."""
        w, h = self.crop[2:] if self.crop is not None else self.ir_size
        return max(1, round(w * self.scale)), max(1, round(h * self.scale))

    def ir_to_output(self) -> np.ndarray:
        """3x3: IR pixel -> output pixel (the crop's shift, then the scale, about pixel centres)."""
        x0, y0 = self.crop[:2] if self.crop is not None else (0, 0)
        s = self.scale
        # Pixel centres: output pixel centre u maps to IR (u + 0.5) / s - 0.5 + x0.
        return np.array([[s, 0, s * (0.5 - x0) - 0.5], [0, s, s * (0.5 - y0) - 0.5], [0, 0, 1]], dtype=np.float64)

    def visible_to_output(self) -> np.ndarray:
        """3x3: undistorted visible pixel -> output pixel."""
        return self.ir_to_output() @ self.homography

    def _remap_tables(self) -> tuple[Any, Any, Any]:
        """Precomputed cv2.remap tables (output pixel -> source pixel) for the visible and the IR frame."""
        if self._maps is None:
            cv2 = require_cv2()
            out_w, out_h = self.output_size
            xs, ys = np.meshgrid(np.arange(out_w, dtype=np.float64), np.arange(out_h, dtype=np.float64))
            pts = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
            src = np.linalg.inv(self.visible_to_output()) @ pts
            with np.errstate(divide="ignore", invalid="ignore"):
                vx, vy = src[0] / src[2], src[1] / src[2]
            if self.camera_matrix is not None:
                # undistorted pixel -> normalised ray -> the raw (distorted) pixel the lens put it at
                k = self.camera_matrix
                rays = np.stack([(vx - k[0, 2]) / k[0, 0], (vy - k[1, 2]) / k[1, 1], np.ones_like(vx)], axis=1)
                raw, _ = cv2.projectPoints(rays.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), k, np.asarray(self.distortion))
                vx, vy = raw[:, 0, 0], raw[:, 0, 1]
            vis_map = np.nan_to_num(np.stack([vx, vy], axis=1).reshape(out_h, out_w, 2), nan=-1e6).astype(np.float32)
            ir_map = None
            if self.crop is not None or self.scale != 1.0:
                ir_src = np.linalg.inv(self.ir_to_output()) @ pts
                ir_map = ir_src[:2].T.reshape(out_h, out_w, 2).astype(np.float32)
                ir_map = cv2.convertMaps(ir_map, None, cv2.CV_16SC2)
            self._maps = (cv2, cv2.convertMaps(vis_map, None, cv2.CV_16SC2), ir_map)
        return self._maps

    def check_sizes(self, ir_shape: tuple[int, ...], vis_shape: tuple[int, ...]) -> None:
        """RigError unless the frames have the sizes the rig was calibrated for."""
        for name, shape, want in (("IR", ir_shape, self.ir_size), ("visible", vis_shape, self.visible_size)):
            got = (shape[1], shape[0])
            if got != want:
                raise RigError(
                    f"the {name} frame is {got[0]}x{got[1]} but the rig was calibrated for {want[0]}x{want[1]} (W x H): "
                    "use the camera modes of the calibration, or recalibrate (tsjnet calibrate)"
                )

    def apply(self, ir: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Register one pair: (IR H x W [x C], visible h x w [x C]) -> both on the output grid, dtypes kept.

        IR is cropped/scaled only when the rig says so; the visible frame is undistorted and warped
        (bilinear). Visible pixels outside the visible camera's view are 0.
        """
        self.check_sizes(ir.shape, visible.shape)
        cv2, (vis_a, vis_b), ir_maps = self._remap_tables()
        out_vis = cv2.remap(np.ascontiguousarray(visible), vis_a, vis_b, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        if visible.ndim == 3 and out_vis.ndim == 2:
            out_vis = out_vis[..., None]
        out_ir = ir
        if ir_maps is not None:
            out_ir = cv2.remap(
                np.ascontiguousarray(ir), ir_maps[0], ir_maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
            if ir.ndim == 3 and out_ir.ndim == 2:
                out_ir = out_ir[..., None]
        return out_ir, out_vis

    # -- file ---------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        distortion = None
        if self.camera_matrix is not None:
            distortion = {"camera_matrix": self.camera_matrix.tolist(), "coefficients": list(self.distortion)}
        return {
            "format": RIG_FORMAT,
            "version": RIG_VERSION,
            "ir_size": list(self.ir_size),
            "visible_size": list(self.visible_size),
            "homography_visible_to_ir": [[float(f"{v:.10g}") for v in row] for row in self.homography],
            "output": {"crop": list(self.crop) if self.crop is not None else None, "scale": self.scale},
            "visible_distortion": distortion,
            "calibration": self.calibration,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "rig") -> Rig:
        if not isinstance(data, dict) or data.get("format") != RIG_FORMAT:
            raise RigError(f'{source}: not a tsjnet rig file (no "format": "{RIG_FORMAT}"); make one with tsjnet calibrate')
        version = data.get("version")
        if not isinstance(version, int) or version < 1:
            raise RigError(f"{source}: bad rig version {version!r}")
        if version > RIG_VERSION:
            raise RigError(f"{source}: rig version {version} is newer than this SDK reads ({RIG_VERSION}); upgrade tsjnet-sdk")
        for key in ("ir_size", "visible_size", "homography_visible_to_ir"):
            if key not in data:
                raise RigError(f"{source}: missing {key!r}")
        output = data.get("output") or {}
        distortion = data.get("visible_distortion") or {}
        if not isinstance(output, dict) or not isinstance(distortion, dict):
            raise RigError(f"{source}: 'output' and 'visible_distortion' must be objects (or null)")
        try:
            return cls(
                ir_size=data["ir_size"],
                visible_size=data["visible_size"],
                homography=data["homography_visible_to_ir"],
                crop=output.get("crop"),
                scale=output.get("scale", 1.0),
                camera_matrix=distortion.get("camera_matrix"),
                distortion=distortion.get("coefficients"),
                calibration=dict(data.get("calibration") or {}),
            )
        except RigError as e:
            raise RigError(f"{source}: {e}") from None
        except (TypeError, ValueError) as e:
            raise RigError(f"{source}: {e}") from None

    def write(self, path: str | os.PathLike) -> Path:
        """Write the rig as JSON, atomically (the previous file stays until the new one is complete)."""
        from tsjnet_sdk.results import write_json

        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Rig:
        path = Path(path)
        if not path.is_file():
            raise RigError(f"{path}: no such rig file (make one with: tsjnet calibrate IR VIS -o {path.name})")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RigError(f"{path}: not valid JSON ({e}); make a new rig with tsjnet calibrate") from None
        return cls.from_dict(data, str(path))


def as_rig(rig: Rig | str | os.PathLike | None) -> Rig | None:
    """A Rig, a rig file path or None -> Rig or None."""
    if rig is None or isinstance(rig, Rig):
        return rig
    if isinstance(rig, (str, os.PathLike)):
        return Rig.load(rig)
    raise RigError(f"rig must be a Rig or the path of a rig file, got {type(rig).__name__}")
