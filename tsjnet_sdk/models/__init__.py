"""TSJNet in PyTorch (imports torch): named configs, the model, checkpoints.

    from tsjnet_sdk.models import create_model
    model = create_model("tsjnet")            # the official architecture, random weights
    fused = model.fuse(ir, vis)               # [B, 1, H, W] floats in [0, 1] -> [B, 1, H, W]
"""

from __future__ import annotations

from typing import Any

from tsjnet_sdk.models.checkpoint import (
    CheckpointError,
    checkpoint_config,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
)
from tsjnet_sdk.models.config import TSJNetConfig, get_config, list_configs, register_config
from tsjnet_sdk.models.tsjnet import TSJNet, TSJNetOutput, check_input_pair


def create_model(name_or_config: str | TSJNetConfig = "tsjnet", **overrides: Any) -> TSJNet:
    """Build a TSJNet from a registered config name (see :func:`list_configs`) or a config object."""
    if isinstance(name_or_config, TSJNetConfig):
        import dataclasses

        cfg = dataclasses.replace(name_or_config, **overrides)
    else:
        cfg = get_config(name_or_config, **overrides)
    return TSJNet(cfg)


__all__ = [
    "CheckpointError",
    "TSJNet",
    "TSJNetConfig",
    "TSJNetOutput",
    "check_input_pair",
    "checkpoint_config",
    "create_model",
    "get_config",
    "list_configs",
    "load_checkpoint",
    "read_checkpoint_metadata",
    "register_config",
    "save_checkpoint",
]
