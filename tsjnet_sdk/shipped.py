"""The shipped models and which file runs when a model is named or none is given: the one place that decides.

Each shipped model is a set of files in ``tsjnet_sdk/weights/`` (model card: its README.md):

* ``<name>.safetensors``: the trained weights (float16), for the torch backend and as the export source;
* ``<name>.onnx``: the same network as ONNX (fp32, dynamic N/H/W, standard ops), for ONNX Runtime and for
  building TensorRT engines on the device (``tsjnet export <name> --format engine``), no torch needed;
* ``<name>_fp16.onnx``: fp16 inside, float32 I/O (``tsjnet export <name> --format engine --fp16`` builds from it);
  each ONNX has its parity report against the PyTorch model beside it (``<stem>.parity.json``).

Rule for ``Fuser()``, ``Fuser("tsjnet-edge")``, ``tsjnet fuse`` / ``demo`` / ``quality`` without a model
(:func:`choose_file`): the ONNX file through ONNX Runtime when onnxruntime is installed (the fastest
measured CPU path: benchmarks/results/default_path.md), else the checkpoint through torch, else an error
naming the extra to install. ``backend="torch"`` / ``"onnxruntime"`` pick that backend's file.
A path that exists always wins over a shipped name. Without any shipped file (a stripped install),
:func:`resolve_model` builds a randomly initialised ``tsjnet-edge`` (seed 0), which callers announce
loudly: its output is not a real fusion. Imports no torch unless the torch path is taken.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsjnet_sdk.errors import TsjnetError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class ShippedModel:
    """The files of one shipped model (see the module docstring)."""

    name: str

    @property
    def checkpoint(self) -> Path:
        return WEIGHTS_DIR / f"{self.name}.safetensors"

    @property
    def onnx(self) -> Path:
        return WEIGHTS_DIR / f"{self.name}.onnx"

    @property
    def onnx_fp16(self) -> Path:
        """fp16 inside, float32 I/O: what strongly typed TensorRT (11, RTX) builds fp16 engines from."""
        return WEIGHTS_DIR / f"{self.name}_fp16.onnx"

    @property
    def parity_report(self) -> Path:
        return WEIGHTS_DIR / f"{self.name}.parity.json"

    def files(self) -> list[Path]:
        return [p for p in (self.checkpoint, self.onnx) if p.exists()]


#: The shipped models by name (one row each).
SHIPPED_MODELS: dict[str, ShippedModel] = {"tsjnet-edge": ShippedModel("tsjnet-edge")}
#: The model used when none is given.
DEFAULT_MODEL = "tsjnet-edge"
#: Trained tsjnet-edge weights shipped inside the package (float16 safetensors, ~5.6 MB).
SHIPPED_WEIGHTS = SHIPPED_MODELS[DEFAULT_MODEL].checkpoint
#: The same network as fp32 ONNX (dynamic shapes, decomposed NA), runnable without torch.
SHIPPED_ONNX = SHIPPED_MODELS[DEFAULT_MODEL].onnx
#: Config (and seed) used when there is neither a model nor any shipped file.
FALLBACK_CONFIG = "tsjnet-edge"
FALLBACK_SEED = 0

ONNX_EXTRA_HINT = "pip install 'tsjnet-sdk[onnx]'"
TORCH_EXTRA_HINT = "pip install 'tsjnet-sdk[torch]'"


class ShippedModelError(TsjnetError, ValueError):
    """A shipped model cannot be run here (unknown name, no runtime installed, file missing)."""


@dataclass(frozen=True)
class ModelChoice:
    """Which file of a shipped model runs, on which backend, and why (``tsjnet doctor`` prints it)."""

    name: str
    path: Path
    backend: str
    why: str

    def describe(self) -> str:
        return f"{self.name}: {self.path.name} on {self.backend} ({self.why})"


def is_shipped_name(model: Any) -> bool:
    """True for ``None`` and a shipped model's name that is not also an existing path."""
    if model is None:
        return True
    return isinstance(model, str) and model in SHIPPED_MODELS and not Path(model).exists()


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _ort_has_cuda() -> bool:
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def choose_file(name: str | None = None, backend: str = "auto", device: str = "auto") -> ModelChoice:
    """The file of shipped model ``name`` (default :data:`DEFAULT_MODEL`) that runs on ``backend`` here.

    Raises ShippedModelError with the fix: unknown name, the backend's runtime not installed, its file
    missing, or ``tensorrt`` (engines are built on the device: ``tsjnet export NAME --format engine``).
    """
    name = DEFAULT_MODEL if name is None else name
    if name not in SHIPPED_MODELS:
        raise ShippedModelError(f"unknown model name {name!r}: give a model file, or one of {', '.join(SHIPPED_MODELS)}")
    model = SHIPPED_MODELS[name]
    if backend == "tensorrt":
        raise ShippedModelError(
            f"TensorRT engines are built on the device that runs them: tsjnet export {name} --format engine --fp16, "
            f"then Fuser('{name}_fp16.engine')"
        )
    onnx_ok = model.onnx.exists()
    ckpt_ok = model.checkpoint.exists()
    if backend == "onnxruntime" or (backend == "auto" and onnx_ok and _importable("onnxruntime")):
        if not onnx_ok:
            raise ShippedModelError(f"the shipped {model.onnx} is missing: reinstall tsjnet-sdk")
        if not _importable("onnxruntime"):
            raise ShippedModelError(f"running {name} on onnxruntime needs ONNX Runtime: {ONNX_EXTRA_HINT}")
        cuda_wanted = device.startswith("cuda")
        if backend == "auto" and cuda_wanted and not _ort_has_cuda() and ckpt_ok and _importable("torch"):
            return ModelChoice(
                name,
                model.checkpoint,
                "torch",
                f"device {device} asked for and this onnxruntime has no CUDA provider; torch runs the checkpoint",
            )
        return ModelChoice(
            name,
            model.onnx,
            "onnxruntime",
            "ONNX Runtime is installed: the fastest measured CPU path (benchmarks/results/default_path.md)",
        )
    if backend in ("auto", "torch"):
        if not ckpt_ok:
            raise ShippedModelError(f"the shipped {model.checkpoint} is missing: reinstall tsjnet-sdk")
        if not _importable("torch"):
            hint = ONNX_EXTRA_HINT if backend == "auto" else TORCH_EXTRA_HINT
            raise ShippedModelError(f"no runtime for {name}: neither onnxruntime nor torch is installed: {hint}")
        why = (
            "backend torch asked for"
            if backend == "torch"
            else (f"onnxruntime is not installed, so torch runs the checkpoint ({ONNX_EXTRA_HINT} for the faster path)")
        )
        return ModelChoice(name, model.checkpoint, "torch", why)
    raise ShippedModelError(f"unknown backend {backend!r} for a shipped model")


def missing_weights_warning() -> str:
    return (
        f"the shipped model files in {WEIGHTS_DIR} are missing (reinstall tsjnet-sdk) and no model was given: using a "
        f"RANDOMLY INITIALISED {FALLBACK_CONFIG} (seed {FALLBACK_SEED}); its output is NOT a real fusion"
    )


def resolve_model(model: str | os.PathLike | None = None, backend: str = "auto", device: str = "auto") -> tuple[Any, str, bool]:
    """(what to give ``Fuser``, a description, whether the weights are trained), by the rule above.

    An explicit path is taken to be trained (it cannot be told); a missing one raises FileNotFoundError.
    The random fallback does not change the caller's global torch RNG state.
    """
    if model is not None and not is_shipped_name(model):
        path = Path(model)
        if not path.exists():
            raise FileNotFoundError(f"model {path} does not exist (shipped models: {', '.join(SHIPPED_MODELS)})")
        return path, str(path), True
    name = DEFAULT_MODEL if model is None else str(model)
    if SHIPPED_MODELS[name].files():
        choice = choose_file(name, backend, device)
        return choice.path, f"shipped {choice.name} ({choice.path.name} on {choice.backend})", True
    import torch

    from tsjnet_sdk.models import create_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(FALLBACK_SEED)
        net = create_model(FALLBACK_CONFIG).eval()
    return net, f"{FALLBACK_CONFIG} with random weights (seed {FALLBACK_SEED})", False
