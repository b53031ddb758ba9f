"""`tsjnet doctor`: what is installed and what each backend would do here. Imports nothing heavy
unless it is installed, and never fails: every probe reports its error as text."""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
import sys
from typing import Any


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _probe(fn: Any) -> str:
    try:
        return str(fn())
    except Exception as e:  # noqa: BLE001 - a doctor reports, it does not crash
        return f"unavailable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"


def na_plugin_status() -> str:
    """What ``--na plugin`` engines would use with the installed ``tensorrt``, or why they cannot run."""
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError:
        return "--na plugin engines: unavailable (needs tensorrt; tensorrt_rtx takes no plugins)"
    from tsjnet_sdk.kernels.trt_plugin import PluginUnavailable
    from tsjnet_sdk.kernels.trt_plugin_lib import choose_plugin

    try:
        choice = choose_plugin(str(getattr(trt, "__version__", "0")))
    except PluginUnavailable as e:
        return f"--na plugin engines: unavailable ({e})"
    if choice.implementation == "qdp":
        return "--na plugin engines: Python AOT plugin (tensorrt.plugin), or a library given by $TSJNET_TRT_PLUGIN"
    return f"--na plugin engines: plugin library {choice.library} (sha256 {choice.sha256[:12]}...)"


def collect_report() -> dict[str, dict[str, str]]:
    from tsjnet_sdk._version import __version__
    from tsjnet_sdk.tensorrt_env import FLAVOURS, gpu_compute_capability

    versions = {
        "tsjnet-sdk": __version__,
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
    }
    for dist in (
        "numpy",
        "torch",
        "torchvision",
        "onnxruntime",
        "onnxruntime-gpu",
        "onnx",
        "natten",
        "tensorrt",
        "tensorrt-rtx",
        "cuda-bindings",
    ):
        versions[dist] = _version(dist)

    def gpu() -> str:
        cc = gpu_compute_capability()
        if cc is None:
            return "none found (no NVIDIA driver/GPU visible to cuda-python)"
        from cuda.bindings import runtime as cudart

        _, props = cudart.cudaGetDeviceProperties(0)
        return f"{props.name.decode(errors='replace').strip(chr(0))} (compute capability {cc[0]}.{cc[1]})"

    def ort_providers() -> str:
        import onnxruntime as ort

        from tsjnet_sdk.runtime.backends.onnxruntime_backend import choose_providers

        return f"runs ONNX files on {choose_providers('auto')[0]} (available: {', '.join(ort.get_available_providers())})"

    def torch_plan() -> str:
        import torch

        from tsjnet_sdk.ops import available_backends

        device = "cuda" if torch.cuda.is_available() else "cpu"
        return f"runs checkpoints on {device}; NA implementations here: {', '.join(available_backends())}"

    def na_gpu_plan() -> str:
        from tsjnet_sdk.ops import describe_gpu_choice

        name, why = describe_gpu_choice(rpb=True)  # TSJNet's attention uses a relative position bias
        return f"{name} ({why})"

    def trt_plan() -> str:
        found = []
        for name in FLAVOURS:
            try:
                found.append(f"{name} {importlib.import_module(name).__version__}")
            except ImportError:
                continue
        if not found:
            return "not installed: engines cannot run here"
        plugin = na_plugin_status()
        if gpu_compute_capability() is None:
            return f"{', '.join(found)} installed, but no GPU: engines can be built (tensorrt_rtx) but not run; {plugin}"
        return f"runs engines with {', '.join(found)}; {plugin}"

    def default_model() -> str:
        from tsjnet_sdk import shipped

        return shipped.choose_file().describe()

    return {
        "versions": versions,
        "hardware": {"gpu": _probe(gpu)},
        "default model": {"Fuser() / tsjnet fuse without -m": _probe(default_model)},
        "backends": {
            "torch": _probe(torch_plan),
            "na on a gpu": _probe(na_gpu_plan),
            "onnxruntime": _probe(ort_providers),
            "tensorrt": _probe(trt_plan),
        },
    }
