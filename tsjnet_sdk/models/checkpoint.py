"""Checkpoints: safetensors weights with the model config in the file's metadata, written atomically.

A checkpoint alone rebuilds its model: ``load_checkpoint(path)`` reads the config from the metadata,
builds the model and loads the weights strictly. Training state (optimizer, scheduler, ...) is the
training package's business and lives in its own files.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsjnet_sdk._version import __version__
from tsjnet_sdk.atomic import atomic_path
from tsjnet_sdk.models.config import TSJNetConfig

if TYPE_CHECKING:  # torch is imported only by the functions that need it: metadata readers run without it
    import torch

FORMAT = "tsjnet-checkpoint"
FORMAT_VERSION = "1"


class CheckpointError(ValueError):
    """A file that is not a usable tsjnet checkpoint."""


def save_checkpoint(
    model: torch.nn.Module,
    path: str | os.PathLike,
    extra_metadata: dict[str, str] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``model``'s weights and config to ``path`` (.safetensors) atomically; returns the path.

    ``dtype`` (e.g. ``torch.float16``) stores the floating-point tensors in that type to halve the file
    (integer buffers such as BatchNorm's step count keep theirs); :func:`load_checkpoint` always builds a
    float32 model, so the stored type only rounds the weights once.
    """
    from safetensors.torch import save_file

    config: TSJNetConfig = model.config  # type: ignore[assignment]
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "sdk_version": __version__,
        "config": config.to_json(),
        **(extra_metadata or {}),
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if dtype is not None:
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating-point type (e.g. torch.float16), got {dtype}")
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
        metadata["stored_dtype"] = str(dtype).removeprefix("torch.")
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def read_checkpoint_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a checkpoint without loading its tensors (no torch needed)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: too short to be a safetensors checkpoint (file truncated?)")
        header_len = int.from_bytes(head, "little")
        if header_len <= 0 or header_len > 100_000_000 or header_len > path.stat().st_size - 8:
            raise CheckpointError(
                f"{path}: not a safetensors checkpoint (bad header); tsjnet checkpoints are written by "
                "save_checkpoint / `tsjnet train`"
            )
        try:
            header: dict[str, Any] = json.loads(f.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CheckpointError(f"{path}: corrupt safetensors header ({e})") from None
    meta = header.get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: a safetensors file but not a tsjnet checkpoint (no tsjnet config in its metadata)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {meta.get('format_version')!r}, this SDK reads {FORMAT_VERSION!r}; "
            "upgrade tsjnet-sdk"
        )
    return meta


def checkpoint_config(path: str | os.PathLike) -> TSJNetConfig:
    """The model config stored in a checkpoint (no torch needed)."""
    return TSJNetConfig.from_json(read_checkpoint_metadata(path)["config"])


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the model stored in ``path`` and load its weights strictly; returned in eval mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from tsjnet_sdk.models.tsjnet import TSJNet

    cfg = checkpoint_config(path)
    try:
        state = load_file(str(path), device=str(device))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path}: cannot read weights ({e}); the file is corrupt or truncated") from None
    model = TSJNet(cfg).to(device)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not match config {cfg.name!r} (missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}); the file was edited or written by an incompatible SDK"
        )
    return model.eval()
