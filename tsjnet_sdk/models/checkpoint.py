"""Checkpoints: safetensors weights with the model config in the file's metadata, written atomically.

A checkpoint alone rebuilds its model: ``load_checkpoint(path)`` reads the config from the metadata,
builds the model and loads the weights strictly. Training state (optimizer, scheduler, ...) is the
training package's business and lives in its own files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsjnet_sdk._version import __version__
from tsjnet_sdk.atomic import atomic_path
from tsjnet_sdk.errors import TsjnetError
from tsjnet_sdk.models.config import TSJNetConfig

if TYPE_CHECKING:  # torch is imported only by the functions that need it: metadata readers run without it
    import torch

FORMAT = "tsjnet-checkpoint"
FORMAT_VERSION = "1"


class CheckpointError(TsjnetError, ValueError):
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
    from safetensors.torch import save

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
    # Serialized in memory and written from Python: safetensors' own file writer replaces the path it
    # is given (so the atomic temporary file could not be tested for a full disk) and reports I/O
    # errors as generic SafetensorError.
    blob = save(tensors, metadata=metadata)
    with atomic_path(path) as tmp:
        tmp.write_bytes(blob)
    return path


def _read_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file (tensor names, dtypes, shapes, offsets and metadata)."""
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
            header = json.loads(f.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise CheckpointError(f"{path}: corrupt safetensors header ({e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (not a JSON object)")
    return header


def read_checkpoint_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a checkpoint without loading its tensors (no torch needed)."""
    path = Path(path)
    meta = _read_header(path).get("__metadata__") or {}
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: a safetensors file but not a tsjnet checkpoint (no tsjnet config in its metadata)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {meta.get('format_version')!r}, this SDK reads {FORMAT_VERSION!r}; "
            "upgrade tsjnet-sdk"
        )
    return meta


def checkpoint_config(path: str | os.PathLike) -> TSJNetConfig:
    """The model config stored in a checkpoint (no torch needed); CheckpointError when it is not valid."""
    text = read_checkpoint_metadata(path).get("config")
    try:
        if not isinstance(text, str):
            raise TypeError(f"config is {type(text).__name__}, not a JSON string")
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError("config is not a JSON object")
        return TSJNetConfig.from_dict(data)
    except Exception as e:  # noqa: BLE001 - any malformed config (types, values, JSON) is the file's fault
        raise CheckpointError(f"{path}: the model config in this checkpoint is not valid ({type(e).__name__}: {e})") from None


def _stored_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for name, entry in _read_header(path).items():
        if name != "__metadata__":
            shape = entry.get("shape") if isinstance(entry, dict) else None
            if not isinstance(shape, list):
                raise CheckpointError(f"{path}: corrupt safetensors header (tensor {name!r} has no shape)")
            shapes[name] = tuple(shape)
    return shapes


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the model stored in ``path`` and load its weights strictly; returned in eval mode.

    Refused with CheckpointError naming the problem: a corrupt or truncated file, tensors that do not
    fit the stored config (a checkpoint of another config; checked against the header before the weights
    are read), and weights with NaN or inf.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from tsjnet_sdk.models.tsjnet import TSJNet

    path = Path(path)
    cfg = checkpoint_config(path)
    # The config's tensor shapes against the file's header, before the weights are read.
    try:
        model = TSJNet(cfg)
    except Exception as e:  # noqa: BLE001 - a config that validates but cannot build a network
        raise CheckpointError(f"{path}: config {cfg.name!r} cannot build a model ({type(e).__name__}: {e})") from None
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    stored = _stored_shapes(path)
    missing, unexpected = sorted(expected.keys() - stored.keys()), sorted(stored.keys() - expected.keys())
    wrong = sorted(k for k in expected.keys() & stored.keys() if expected[k] != stored[k])
    if missing or unexpected or wrong:
        detail = "; ".join(
            part
            for part in (
                f"missing {missing[:5]}" if missing else "",
                f"unexpected {unexpected[:5]}" if unexpected else "",
                ", ".join(f"{k} is {list(stored[k])} (config wants {list(expected[k])})" for k in wrong[:3]),
            )
            if part
        )
        raise CheckpointError(
            f"{path}: weights do not match config {cfg.name!r} ({detail}); the weights belong to another config, or "
            "the file was edited or written by an incompatible SDK"
        )
    try:
        state = load_file(str(path), device=str(device))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path}: cannot read weights ({e}); the file is corrupt or truncated") from None
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(
            f"{path}: weights contain NaN or inf ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); the file is "
            "corrupt, or training diverged: use an earlier checkpoint"
        )
    model = model.to(device)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:  # dtype/shape surprises the header check did not catch
        raise CheckpointError(f"{path}: weights do not fit config {cfg.name!r} ({str(e).splitlines()[0]})") from None
    return model.eval()
