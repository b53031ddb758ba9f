"""Parity of an exported artefact with the PyTorch model (Polygraphy-style, with image metrics).

The reference is the PyTorch fp32 model on CPU; the artefact runs in onnxruntime on the same
pre-processed pair (``--na plugin`` graphs through the onnxruntime-extensions reference op).
Errors are measured on the fused luminance in [0, 1]: max / mean absolute error and PSNR (peak 1).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

FP32_PSNR_DB, FP16_PSNR_DB = 60.0, 40.0


def psnr_db(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    """PSNR of two arrays in [0, peak]; inf when identical."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak**2 / mse)


def error_stats(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    diff = np.abs(np.asarray(reference, np.float64) - np.asarray(candidate, np.float64))
    return {"max_abs_error": float(diff.max()), "mean_abs_error": float(diff.mean()), "psnr_db": psnr_db(reference, candidate)}


def parity_inputs(
    pair: tuple[str | os.PathLike, str | os.PathLike] | None, static: tuple[int, int, int] | None
) -> tuple[np.ndarray, np.ndarray, str]:
    """(ir, vis) float32 [N, 1, H, W] in [0, 1] and a name for the report.

    A given pair is read and pre-processed like the runtime does; otherwise the built-in night scene
    (tsjnet_sdk.samples) at 256 x 320. For a static shape the pair is centre-cropped / reflect-padded
    to H x W and repeated N times.
    """
    from tsjnet_sdk.imaging import prepare_pair, read_image

    if pair is not None:
        ir_y, vis_y, _ = prepare_pair(read_image(pair[0]), read_image(pair[1]))
        name = f"{Path(pair[0]).name} + {Path(pair[1]).name}"
    else:
        from tsjnet_sdk.samples import night_scene

        ir_y, vis_y, _ = prepare_pair(*night_scene(256, 320, seed=0))
        name = "built-in night scene 320x256 (seed 0)"
    n = 1
    if static is not None:
        n, h, w = static
        ir_y, vis_y = (_fit(x, h, w) for x in (ir_y, vis_y))
    ir = np.ascontiguousarray(np.broadcast_to(ir_y[None, None], (n, 1, *ir_y.shape)), np.float32)
    vis = np.ascontiguousarray(np.broadcast_to(vis_y[None, None], (n, 1, *vis_y.shape)), np.float32)
    return ir, vis, name


def _fit(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Centre-crop, then reflect-pad, an H x W image to h x w."""
    top, left = max(0, (img.shape[0] - h) // 2), max(0, (img.shape[1] - w) // 2)
    img = img[top : top + h, left : left + w]
    pad_h, pad_w = h - img.shape[0], w - img.shape[1]
    if pad_h or pad_w:
        img = np.pad(img, ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)), mode="reflect")
    return img


def onnx_session(path: str | os.PathLike, na: str) -> Any:
    """An onnxruntime CPU session for an exported graph of either NA mode."""
    if na == "plugin":
        from tsjnet_sdk.export.ort_plugin_op import plugin_session

        return plugin_session(path)
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def check_parity(
    model: nn.Module,
    onnx_path: str | os.PathLike,
    *,
    na: str = "decomposed",
    fp16: bool = False,
    static: tuple[int, int, int] | None = None,
    pair: tuple[str | os.PathLike, str | os.PathLike] | None = None,
) -> dict[str, Any]:
    """Run the exported graph and the PyTorch fp32 model on one pair; the report (JSON-ready)."""
    ir, vis, name = parity_inputs(pair, static)
    with torch.inference_mode():
        reference = model.float().eval().fuse(torch.from_numpy(ir.copy()), torch.from_numpy(vis.copy())).numpy()
    (candidate,) = onnx_session(onnx_path, na).run(["fused"], {"ir": ir, "vis": vis})
    floor = FP16_PSNR_DB if fp16 else FP32_PSNR_DB
    stats = error_stats(reference, candidate)
    return {
        "reference": "PyTorch fp32 (CPU)",
        "runtime": "onnxruntime CPU" + (" + reference NA custom op" if na == "plugin" else ""),
        "input": name,
        "shape": list(ir.shape),
        **stats,
        "psnr_floor_db": floor,
        "passed": bool(stats["psnr_db"] >= floor),
    }
