"""TSJNet in PyTorch: named configs, the model, checkpoints.

    from tsjnet_sdk.models import create_model
    model = create_model("tsjnet")            # the official architecture, random weights
    fused = model.fuse(ir, vis)               # [B, 1, H, W] floats in [0, 1] -> [B, 1, H, W]

Configs (``tsjnet_sdk.models.config``) and checkpoint metadata readers need no torch, so the runtime
can use them on torch-free devices; names are resolved lazily so that importing this package does
not import torch until a torch-backed name is used.
"""

from __future__ import annotations

import importlib
from typing import Any

from tsjnet_sdk.models.config import TSJNetConfig, get_config, list_configs, register_config

_LAZY = {
    "TSJNet": "tsjnet_sdk.models.tsjnet",
    "TSJNetOutput": "tsjnet_sdk.models.tsjnet",
    "check_input_pair": "tsjnet_sdk.models.tsjnet",
    "CheckpointError": "tsjnet_sdk.models.checkpoint",
    "checkpoint_config": "tsjnet_sdk.models.checkpoint",
    "load_checkpoint": "tsjnet_sdk.models.checkpoint",
    "read_checkpoint_metadata": "tsjnet_sdk.models.checkpoint",
    "save_checkpoint": "tsjnet_sdk.models.checkpoint",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tsjnet_sdk.models' has no attribute {name!r}")


def create_model(name_or_config: str | TSJNetConfig = "tsjnet", **overrides: Any) -> Any:
    """Build a TSJNet (torch) from a registered config name (see :func:`list_configs`) or a config object."""
    import dataclasses

    from tsjnet_sdk.models.tsjnet import TSJNet

    if isinstance(name_or_config, TSJNetConfig):
        cfg = dataclasses.replace(name_or_config, **overrides)
    else:
        cfg = get_config(name_or_config, **overrides)
    return TSJNet(cfg)


__all__ = ["TSJNetConfig", "create_model", "get_config", "list_configs", "register_config", *_LAZY]
