"""``tsjnet bench`` inputs: the real pairs each row is timed and compared on, as a camera delivers them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

# -- data -------------------------------------------------------------------------------------------


def list_pairs(data_dir: Path) -> list[tuple[Path, Path]]:
    """(ir, vis) paths of ``data_dir/ir/NAME`` + ``data_dir/vi/NAME`` (tsjnet_sdk.pairing), sorted by name."""
    from tsjnet_sdk.pairing import pair_folders

    ir_dir, vis_dir = Path(data_dir) / "ir", Path(data_dir) / "vi"
    if not ir_dir.is_dir() or not vis_dir.is_dir():
        raise FileNotFoundError(f"{data_dir} needs ir/ and vi/ folders of image pairs (e.g. ../shared/data/msrs/test)")
    pairs = [(ir, vis) for _, ir, vis in pair_folders(ir_dir, vis_dir).rows]
    if not pairs:
        raise FileNotFoundError(f"no ir/vi pairs with matching names in {data_dir}")
    return pairs


def load_pair(paths: tuple[Path, Path], hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A real pair as the camera would deliver it (uint8), resized to (H, W) when its size differs."""
    from PIL import Image

    from tsjnet_sdk.imaging import read_image

    out = []
    for path in paths:
        arr = read_image(path)
        if arr.dtype != np.uint8:
            arr = (arr / 257).round().astype(np.uint8)
        if arr.shape[:2] != hw:
            arr = np.asarray(Image.fromarray(arr).resize((hw[1], hw[0]), Image.BICUBIC))
        out.append(arr)
    return out[0], out[1]


def prepared_inputs(frames: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Network inputs [N, 1, H, W] float32 for the frames (what the Fuser feeds its backend)."""
    from tsjnet_sdk.imaging import prepare_pair

    prepared = [prepare_pair(ir, vis)[:2] for ir, vis in frames]
    return (
        np.stack([p[0] for p in prepared])[:, None].astype(np.float32),
        np.stack([p[1] for p in prepared])[:, None].astype(np.float32),
    )
