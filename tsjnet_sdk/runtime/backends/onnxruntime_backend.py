"""ONNX Runtime backend: runs an ONNX file from `tsjnet export` with the best execution provider present."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tsjnet_sdk.runtime.backends.base import Backend, BackendUnavailable

# Preferred order; the first one installed (and allowed by the device) wins.
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
CPU_PROVIDER = "CPUExecutionProvider"
CUSTOM_NODE_DOMAIN = "tsjnet"


def onnxruntime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def choose_providers(device: str) -> list[str]:
    """Execution providers for ``device`` (auto | cpu | cuda[:i]), best first, CPU always last."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    gpu = [p for p in GPU_PROVIDERS if p in available]
    if device.startswith("cuda") and not gpu:
        raise BackendUnavailable(
            f"device {device!r} requested but this onnxruntime has no CUDA/TensorRT provider (it has "
            f"{', '.join(available)}); install onnxruntime-gpu or use device='cpu'"
        )
    return ([] if device == "cpu" else gpu) + [CPU_PROVIDER]


def static_shape_of(session: Any) -> tuple[int, int, int] | None:
    """(N, H, W) of a session whose input ``ir`` has a fixed shape, else None."""
    shape = session.get_inputs()[0].shape
    return tuple(shape[i] for i in (0, 2, 3)) if all(isinstance(shape[i], int) for i in (0, 2, 3)) else None


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    thread_safe = True  # InferenceSession.run is documented thread-safe

    def __init__(self, path: Path, device: str = "auto", threads: int | None = None) -> None:
        if not onnxruntime_available():
            raise BackendUnavailable("the onnxruntime backend needs onnxruntime: pip install 'tsjnet-sdk[onnx]'")
        import onnxruntime as ort

        providers = choose_providers(device)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers)
        except Exception as e:  # noqa: BLE001 - ORT raises its own exception types
            message = str(e)
            if CUSTOM_NODE_DOMAIN in message or "NeighborhoodAttention2D" in message:
                raise BackendUnavailable(
                    f"{path}: this ONNX uses the tsjnet NeighborhoodAttention2D custom node (exported with --na plugin, "
                    "for TensorRT); export with --na decomposed to run it in ONNX Runtime"
                ) from None
            raise BackendUnavailable(f"{path}: ONNX Runtime cannot load this model ({message.splitlines()[0]})") from None
        names = {i.name for i in self.session.get_inputs()}
        if names != {"ir", "vis"}:
            raise BackendUnavailable(f"{path}: inputs are {sorted(names)}, expected 'ir' and 'vis' (a tsjnet export)")
        self.provider = self.session.get_providers()[0]
        super().__init__(path, "cuda" if self.provider in GPU_PROVIDERS else "cpu")
        self.metadata = {
            k[len("tsjnet."):]: v for k, v in self.session.get_modelmeta().custom_metadata_map.items() if k.startswith("tsjnet.")
        }
        self._static = static_shape_of(self.session)

    def run(self, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
        (fused,) = self.session.run(["fused"], {"ir": ir, "vis": vis})
        return fused.astype(np.float32, copy=False)

    @property
    def static_shape(self) -> tuple[int, int, int] | None:
        return self._static

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "provider": self.provider,
            "config": self.metadata.get("config_name"),
            "precision": self.metadata.get("precision"),
            "na_mode": self.metadata.get("na_mode"),
        }
