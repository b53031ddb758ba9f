"""PyTorch backend: runs a checkpoint (or an in-memory TSJNet) eagerly."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from tsjnet_sdk.runtime.backends.base import Backend, BackendUnavailable
from tsjnet_sdk.runtime.options import TorchOptions

_FORK_LOCK = threading.Lock()


def torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def resolve_torch_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendUnavailable(f"device {device!r} requested but torch sees no CUDA GPU; use device='cpu'")
    return device


class TorchBackend(Backend):
    name = "torch"
    thread_safe = True  # eval-mode inference_mode forward mutates no module state

    def __init__(self, path: Path | None, device: str = "auto", model: Any = None, options: TorchOptions | None = None) -> None:
        if not torch_available():
            raise BackendUnavailable(
                "the torch backend needs PyTorch: pip install 'tsjnet-sdk[torch]', or export the checkpoint to ONNX "
                "(`tsjnet export CKPT --format onnx`) and run that with onnxruntime"
            )
        import torch

        from tsjnet_sdk.models import load_checkpoint
        from tsjnet_sdk.ops.neighborhood_attention import auto_cuda_kernel_enabled, check_default_backend

        # $TSJNET_NA_BACKEND and $TSJNET_NA_KERNEL: refused now, not as a traceback at the first frame.
        check_default_backend()
        auto_cuda_kernel_enabled()

        super().__init__(path, resolve_torch_device(device))
        self.options = options or TorchOptions()
        # TorchOptions(threads=N) sets torch's process-wide count; close() gives the previous one back.
        self._threads_before = torch.get_num_threads() if self.options.threads is not None else None
        if self.options.threads is not None:
            torch.set_num_threads(self.options.threads)
        if self.options.dtype != "fp32" and not self.device.startswith("cuda"):
            raise BackendUnavailable(
                f"TorchOptions(dtype={self.options.dtype!r}) runs on CUDA only (half precision is slower than fp32 on "
                "the CPU); use device='cuda' or dtype='fp32'"
            )
        self._dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.options.dtype]
        self.model = (model if model is not None else load_checkpoint(path)).to(self.device, self._dtype).eval()
        self._torch = torch

    def close(self) -> None:
        if self._threads_before is not None:
            self._torch.set_num_threads(self._threads_before)
            self._threads_before = None

    def run(self, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
        torch = self._torch
        if self.forked():
            self._enter_forked_child()
        with torch.inference_mode():
            # float32 in and out; the network itself runs in the options' dtype.
            fused = self.model.fuse(
                torch.from_numpy(ir).to(self.device, self._dtype), torch.from_numpy(vis).to(self.device, self._dtype)
            )
        return fused.float().cpu().numpy()

    def _enter_forked_child(self) -> None:
        """First use in a child forked after this backend ran: torch's intra-op thread pool (OpenMP) did not
        survive the fork, and the next parallel operator would wait forever for its threads. One thread
        avoids the pool (measured: the child hung > 100 s on a 64 x 64 frame without it, 0.14 s with it).
        CUDA state cannot be inherited at all."""
        with _FORK_LOCK:
            if not self.forked():
                return
            if self.device.startswith("cuda"):
                raise self.fork_error("CUDA cannot be used in a forked child")
            self._torch.set_num_threads(1)
            self.created_in_pid = os.getpid()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "config": self.model.config.name, "precision": self.options.dtype}
