"""The shipped weights and which model is used when none is given: the one place that decides.

Rule (``tsjnet fuse`` / ``demo`` / ``quality`` and :func:`tsjnet_sdk.demo.run_demo`): an explicit model
path; else the trained ``tsjnet-edge`` weights shipped inside the package (:data:`SHIPPED_WEIGHTS`,
model card ``tsjnet_sdk/weights/README.md``); else (a stripped install without them) a randomly
initialised ``tsjnet-edge`` (seed 0), which callers announce loudly: its output is not a real fusion.
Imports no torch unless the random fallback is built.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: Trained tsjnet-edge weights shipped inside the package (float16 safetensors, ~5.6 MB; model card next to it).
SHIPPED_WEIGHTS = Path(__file__).resolve().parent / "weights" / "tsjnet-edge.safetensors"
#: Config (and seed) used when there is neither a model nor the shipped weights.
FALLBACK_CONFIG = "tsjnet-edge"
FALLBACK_SEED = 0


def missing_weights_warning() -> str:
    return (
        f"the shipped weights {SHIPPED_WEIGHTS} are missing (reinstall tsjnet-sdk) and no model was given: using a "
        f"RANDOMLY INITIALISED {FALLBACK_CONFIG} (seed {FALLBACK_SEED}); its output is NOT a real fusion"
    )


def resolve_model(model: str | os.PathLike | None = None) -> tuple[Any, str, bool]:
    """(what to give ``Fuser``, a description, whether the weights are trained), by the rule above.

    An explicit path is taken to be trained (it cannot be told); a missing one raises FileNotFoundError.
    The random fallback does not change the caller's global torch RNG state.
    """
    if model is not None:
        path = Path(model)
        if not path.exists():
            raise FileNotFoundError(f"model {path} does not exist")
        return path, str(path), True
    if SHIPPED_WEIGHTS.exists():
        return SHIPPED_WEIGHTS, f"shipped weights {SHIPPED_WEIGHTS.name}", True
    import torch

    from tsjnet_sdk.models import create_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(FALLBACK_SEED)
        net = create_model(FALLBACK_CONFIG).eval()
    return net, f"{FALLBACK_CONFIG} with random weights (seed {FALLBACK_SEED})", False
