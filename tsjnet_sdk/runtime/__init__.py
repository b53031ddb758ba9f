"""The runtime: `Fuser` and the backends it runs on. Imports no torch."""

from tsjnet_sdk.runtime.artifacts import ArtifactInfo, ModelFileError, detect_kind, inspect_artifact
from tsjnet_sdk.runtime.backends import BACKEND_NAMES, BackendUnavailable, open_backend
from tsjnet_sdk.runtime.backends.base import Backend
from tsjnet_sdk.runtime.fuser import Fuser, ModelOutputError
from tsjnet_sdk.runtime.options import OrtOptions, TensorRTOptions, TorchOptions

__all__ = [
    "BACKEND_NAMES",
    "ArtifactInfo",
    "Backend",
    "BackendUnavailable",
    "Fuser",
    "ModelFileError",
    "ModelOutputError",
    "OrtOptions",
    "TensorRTOptions",
    "TorchOptions",
    "detect_kind",
    "inspect_artifact",
    "open_backend",
]
