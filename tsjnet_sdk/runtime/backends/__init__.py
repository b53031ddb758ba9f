"""Backends, one per file with the same interface, and the one place that picks among them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tsjnet_sdk.runtime.artifacts import CHECKPOINT, ENGINE, ONNX, detect_kind
from tsjnet_sdk.runtime.backends.base import Backend, BackendUnavailable
from tsjnet_sdk.runtime.options import BackendOptions, OptionError, check_device, check_flag, options_for

BACKEND_NAMES = ("auto", "torch", "onnxruntime", "tensorrt")
# Which backends can execute which artefact: a checkpoint needs torch, ONNX runs in onnxruntime,
# an engine in TensorRT. (To run a checkpoint elsewhere, export it first.)
RUNS = {CHECKPOINT: "torch", ONNX: "onnxruntime", ENGINE: "tensorrt"}


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
    wanted = RUNS[kind] if backend == "auto" else backend
    if wanted != RUNS[kind]:
        fix = {
            CHECKPOINT: f"export it first: tsjnet export {path} --format {'onnx' if wanted == 'onnxruntime' else 'engine'}",
            ONNX: "use backend='onnxruntime', or build an engine / use the checkpoint",
            ENGINE: "use backend='tensorrt' (engines run only in TensorRT)",
        }[kind]
        raise BackendUnavailable(f"{path} is a {kind}; the {wanted} backend cannot run it: {fix}")
    if wanted == "torch":
        from tsjnet_sdk.runtime.backends.torch_backend import TorchBackend

        return TorchBackend(path, device, options=options_for("torch", options))
    if wanted == "onnxruntime":
        from tsjnet_sdk.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, device, options=options_for("onnxruntime", options),
                                  allow_foreign_model=allow_foreign_model)
    from tsjnet_sdk.runtime.backends.tensorrt_backend import TensorRTBackend

    return TensorRTBackend(path, device, options=options_for("tensorrt", options), allow_foreign_model=allow_foreign_model)


__all__ = ["BACKEND_NAMES", "Backend", "BackendUnavailable", "open_backend"]
