"""What machine a benchmark ran on: CPU, cores, memory, GPU and package versions (imports no torch)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
from pathlib import Path
from typing import Any

from tsjnet_sdk.runtime.options import usable_cores

#: distributions whose versions are recorded (read from metadata: nothing is imported)
VERSIONED = (
    "tsjnet-sdk",
    "torch",
    "onnxruntime",
    "onnxruntime-gpu",
    "onnx",
    "onnxslim",
    "numpy",
    "natten",
    "tensorrt",
    "tensorrt_rtx",
    "pillow",
    "scipy",
)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux, else platform's guess)."""
    match = re.search(r"^model name\s*:\s*(.+)$", _read("/proc/cpuinfo"), re.MULTILINE)
    return match.group(1).strip() if match else (platform.processor() or platform.machine())


def memory_gib() -> float | None:
    match = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.MULTILINE)
    return round(int(match.group(1)) / 2**20, 1) if match else None


def gpu_description() -> list[dict[str, Any]]:
    """CUDA GPUs torch can see ([] without torch or without a GPU)."""
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    gpus = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        gpus.append(
            {"name": p.name, "memory_gib": round(p.total_memory / 2**30, 1), "compute_capability": f"{p.major}.{p.minor}"}
        )
    return gpus


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in VERSIONED:
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def describe_machine() -> dict[str, Any]:
    """Everything a results file records about where it was measured."""
    gpus = gpu_description()
    return {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "logical_cpus_host": os.cpu_count(),
        "memory_gib": memory_gib(),
        "gpus": gpus,
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "versions": versions(),
    }


def machine_slug(machine: dict[str, Any]) -> str:
    """A short file-name-safe machine type, e.g. ``amd-epyc-2c`` or ``nvidia-h200``."""
    if machine["gpus"]:
        name = machine["gpus"][0]["name"]
    else:
        name = f"{machine['cpu']}-{machine['cores']}c"
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return re.sub(r"-(cpu|processor|with-radeon-graphics)\b", "", slug)[:48]
