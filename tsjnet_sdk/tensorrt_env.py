"""Where TensorRT is found, and what the installed TensorRT can do: the one place that imports it.

Runtime (tensorrt_backend), export (engine builds), kernels (plugin registration and builds) and
``tsjnet doctor`` all ask here, so none of them imports another for TensorRT facts. Imports TensorRT and
cuda-python only when a function is called.
"""

from __future__ import annotations

import importlib
from typing import Any

from tsjnet_sdk.runtime.backends.base import BackendUnavailable

FLAVOURS = ("tensorrt", "tensorrt_rtx")
#: Flavours that load custom plugins: TensorRT-RTX has no plugin API (the one statement of that rule).
PLUGIN_FLAVOURS = ("tensorrt",)
NO_PLUGINS = (
    "TensorRT-RTX (tensorrt_rtx) takes no custom plugins, so the NeighborhoodAttention2D plugin (--na plugin) "
    "cannot be used with it: export with --na decomposed (standard ONNX ops, same result)"
)


def plugins_supported(flavour: str) -> bool:
    """Whether engines of this TensorRT flavour can use the tsjnet NA plugin."""
    return flavour in PLUGIN_FLAVOURS


def tensorrt_installed() -> list[str]:
    """The TensorRT flavours whose module is installed (found, not imported: cheap, no CUDA start-up)."""
    import importlib.util

    return [name for name in FLAVOURS if importlib.util.find_spec(name) is not None]


INSTALL_HINT = (
    "Jetson: JetPack's python3-libnvinfer; servers: pip install tensorrt (NVIDIA's index); "
    "RTX GPUs: pip install 'tsjnet-sdk[tensorrt-rtx]'"
)


def import_tensorrt(flavour: str | None = None, purpose: str = "running a TensorRT engine") -> Any:
    """Import TensorRT: the given flavour, or the first of ``tensorrt`` / ``tensorrt_rtx`` installed.

    The one place that finds TensorRT, for the runtime and for ``tsjnet export --format engine``.
    PyPI's ``tensorrt`` stub imports but has no API, so it counts as not installed.
    """
    if flavour is not None and flavour not in FLAVOURS:
        raise BackendUnavailable(f"unknown TensorRT flavour {flavour!r}; choose one of {', '.join(FLAVOURS)}")
    for name in [flavour] if flavour else FLAVOURS:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "Builder"):
            return module
    wanted = flavour or " or ".join(FLAVOURS)
    raise BackendUnavailable(f"{purpose} needs TensorRT ({wanted}), which is not installed: {INSTALL_HINT}")


def _cuda_check(result: tuple, what: str) -> Any:
    err, *values = result
    if int(err) != 0:
        raise BackendUnavailable(f"CUDA call {what} failed with error {int(err)} ({err!r})")
    return values[0] if len(values) == 1 else values


def gpu_compute_capability(device_index: int = 0) -> tuple[int, int] | None:
    """(major, minor) of a GPU through cuda-python, or None when no GPU/driver is usable."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        return None
    try:
        count = _cuda_check(cudart.cudaGetDeviceCount(), "cudaGetDeviceCount")
        if count <= device_index:
            return None
        props = _cuda_check(cudart.cudaGetDeviceProperties(device_index), "cudaGetDeviceProperties")
        return int(props.major), int(props.minor)
    except (BackendUnavailable, RuntimeError):
        return None
