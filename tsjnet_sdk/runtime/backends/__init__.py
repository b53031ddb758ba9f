"""Backends, one per file with the same interface, and the one place that picks among them.

Adding a backend is one file here (a :class:`Backend` subclass) plus one row in :data:`BACKENDS`; the CLI's
``--backend`` choices, ``tsjnet doctor`` and the dispatch below read the table.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsjnet_sdk.runtime.artifacts import CHECKPOINT, ENGINE, ONNX, detect_kind
from tsjnet_sdk.runtime.backends.base import Backend, BackendUnavailable
from tsjnet_sdk.runtime.options import BackendOptions, OptionError, check_device, check_flag, options_for


@dataclass(frozen=True)
class BackendSpec:
    """One row of the backend table."""

    name: str  # backend="..." and --backend
    runs: str  # the model-file kind it executes (tsjnet_sdk.runtime.artifacts)
    module: str  # the file of its Backend subclass, in this package
    cls: str
    export_format: str | None  # `tsjnet export --format` that makes its file from a checkpoint (None: the checkpoint itself)
    checks_metadata: bool  # takes allow_foreign_model: its files may lack tsjnet metadata
    summary: str  # one line for docs and `tsjnet doctor`


#: The backends, one row each. A checkpoint runs on torch, an ONNX file on ONNX Runtime, an engine on TensorRT;
#: to run a checkpoint elsewhere, export it first.
BACKENDS: tuple[BackendSpec, ...] = (
    BackendSpec(
        "torch",
        CHECKPOINT,
        "torch_backend",
        "TorchBackend",
        None,
        False,
        "PyTorch: checkpoints (.safetensors), CPU or CUDA; the reference",
    ),
    BackendSpec(
        "onnxruntime",
        ONNX,
        "onnxruntime_backend",
        "OnnxRuntimeBackend",
        "onnx",
        True,
        "ONNX Runtime: ONNX files from tsjnet export, CPU (default path) or its CUDA/TensorRT providers",
    ),
    BackendSpec(
        "tensorrt",
        ENGINE,
        "tensorrt_backend",
        "TensorRTBackend",
        "engine",
        True,
        "TensorRT / TensorRT-RTX: tsjnet engines (or trtexec engines with a sidecar), NVIDIA GPUs",
    ),
)
BACKEND_NAMES = ("auto", *(spec.name for spec in BACKENDS))
SPECS = {spec.name: spec for spec in BACKENDS}
RUNS = {spec.runs: spec.name for spec in BACKENDS}


def open_backend(
    model: str | os.PathLike | Any = None,
    backend: str = "auto",
    device: str = "auto",
    options: BackendOptions | Sequence[BackendOptions] | None = None,
    allow_foreign_model: bool = False,
) -> Backend:
    """Load ``model`` (checkpoint / ONNX / engine path, a shipped model's name, None for the default
    shipped model, or an in-memory TSJNet) on the right backend.

    Shipped names (and None) resolve to a file in tsjnet_sdk/shipped.py (ONNX on onnxruntime when it is
    installed, else the checkpoint on torch).

    ``auto`` picks the backend that fits the artefact (the fastest installed one for it); an explicit
    backend that cannot run the artefact raises with the fix (e.g. export the checkpoint first).
    ``options``: an OrtOptions / TorchOptions / TensorRTOptions (tsjnet_sdk.runtime.options), or a
    list with one per backend; the chosen backend takes its own (a lone object of another backend's
    type raises, rather than being ignored). ``allow_foreign_model``: run an ONNX file or engine that has
    no tsjnet metadata (refused by default: nothing proves it is a TSJNet fusion model).
    """
    if not isinstance(backend, str) or backend not in BACKEND_NAMES:
        raise OptionError(f"unknown backend {backend!r}; choose one of {', '.join(BACKEND_NAMES)}")
    check_device(device)
    check_flag("allow_foreign_model", allow_foreign_model)
    from tsjnet_sdk import shipped

    if shipped.is_shipped_name(model):
        try:
            choice = shipped.choose_file(model, backend, device)
        except shipped.ShippedModelError as e:
            raise BackendUnavailable(str(e)) from None
        model, backend = choice.path, choice.backend
    if not isinstance(model, (str, os.PathLike)):
        if backend not in ("auto", "torch"):
            raise ValueError(f"an in-memory model runs on the torch backend only, not {backend!r}")
        from tsjnet_sdk.runtime.backends.torch_backend import TorchBackend

        return TorchBackend(None, device, model=model, options=options_for("torch", options))

    path = Path(model)
    kind = detect_kind(path)
    spec = SPECS[RUNS[kind] if backend == "auto" else backend]
    if spec.runs != kind:
        fix = (
            f"export it first: tsjnet export {path} --format {spec.export_format}"
            if kind == CHECKPOINT and spec.export_format
            else f"use backend='{RUNS[kind]}' ({kind} files run only there), or the checkpoint"
        )
        raise BackendUnavailable(f"{path} is a {kind}; the {spec.name} backend cannot run it: {fix}")
    backend_class = getattr(importlib.import_module(f"{__name__}.{spec.module}"), spec.cls)
    extra = {"allow_foreign_model": allow_foreign_model} if spec.checks_metadata else {}
    return backend_class(path, device, options=options_for(spec.name, options), **extra)


__all__ = ["BACKENDS", "BACKEND_NAMES", "Backend", "BackendSpec", "BackendUnavailable", "open_backend"]
