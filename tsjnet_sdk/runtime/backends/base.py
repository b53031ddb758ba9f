"""The interface every backend implements (Polygraphy style: load, run, describe).

Backends only execute the network. Everything around it (reading frames, colour, padding for tiles,
batching, output format) is done once, in tsjnet_sdk.runtime.fuser, for all of them.
"""

from __future__ import annotations

import abc
import os
from pathlib import Path
from typing import Any

import numpy as np

from tsjnet_sdk.errors import TsjnetError


class BackendUnavailable(TsjnetError, RuntimeError):
    """The backend cannot run here (package missing, no GPU, wrong artefact); the message says the fix."""


class Backend(abc.ABC):
    """Runs the fusion network on batches.

    ``run`` takes IR and visible luminance as float32 [N, 1, H, W] in [0, 1] and returns the fused
    luminance float32 [N, 1, H, W] in [0, 1]. H, W >= 32; any size unless ``static_shape`` says otherwise.
    """

    name: str = "?"
    # True when run() may be called from several threads at once (e.g. onnxruntime sessions); False
    # makes Fuser serialize calls with a lock (the safe default, e.g. TensorRT execution contexts).
    thread_safe: bool = False

    def __init__(self, path: Path | None, device: str) -> None:
        self.path = path
        self.device = device
        self.created_in_pid = os.getpid()  # a different pid at run time: this object crossed an os.fork()

    def forked(self) -> bool:
        """Whether this backend is being used in a child process forked after it was created."""
        return os.getpid() != self.created_in_pid

    def fork_error(self, why: str) -> BackendUnavailable:
        """The error for a backend that cannot run in a forked child (``why``: what does not survive a fork)."""
        return BackendUnavailable(
            f"this {self.name} Fuser was created before os.fork() and {why}, so it cannot run in the child: create "
            "the Fuser in the child process, or start workers with multiprocessing's 'spawn' (or 'forkserver') method"
        )

    @abc.abstractmethod
    def run(self, ir: np.ndarray, vis: np.ndarray) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]:
        """Human-readable facts: backend, device, model file, precision, provider... (for repr, `tsjnet info`)."""
        return {"backend": self.name, "device": self.device, "model": str(self.path) if self.path else None}

    @property
    def static_shape(self) -> tuple[int, int, int] | None:
        """(N, H, W) when the artefact accepts only one input shape, else None."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release device resources (sessions, buffers)."""
