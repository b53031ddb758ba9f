"""tsjnet_sdk.training: the TSJNet training pipeline (fusion loss + detection/segmentation drivers).

    from tsjnet_sdk.training import load_config, train
    summary = train(load_config("training/configs/tiny_cpu.toml"))

``tsjnet train CONFIG`` / ``python -m tsjnet_sdk.training CONFIG`` on the command line; torchrun for
several processes. Importing this package does not import torch (the config layer is torch-free);
``train``/``Trainer`` import it on first use. Method, presets and fixes: docs/training.md.
"""

from __future__ import annotations

from typing import Any

from tsjnet_sdk.training.config import ConfigError, TrainConfig, config_from_dict, load_config

__all__ = ["ConfigError", "TrainConfig", "Trainer", "config_from_dict", "load_config", "train"]


def __getattr__(name: str) -> Any:
    if name in ("Trainer", "train"):
        from tsjnet_sdk.training import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'tsjnet_sdk.training' has no attribute {name!r}")
