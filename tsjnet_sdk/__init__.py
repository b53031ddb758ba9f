"""tsjnet-sdk: infrared + visible image fusion with TSJNet, from PyTorch to TensorRT.

Importing this package must never import torch: edge devices run ONNX Runtime or TensorRT only.
The torch-based parts (``tsjnet_sdk.models``, ``tsjnet_sdk.ops``, ``tsjnet_sdk.export``,
``tsjnet_sdk.training``) are imported explicitly by whoever needs them.
"""

from __future__ import annotations

import os as _os

from tsjnet_sdk._version import __version__

# The stage folders export/, training/, kernels/ and benchmarks/ live at the repository root and are
# installed as tsjnet_sdk.export, tsjnet_sdk.training, ... (see pyproject's package-dir). When the SDK
# runs straight from a source checkout (PYTHONPATH=<repo>), let the same names resolve to those folders.
_repo_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isfile(_os.path.join(_repo_root, "pyproject.toml")) and _repo_root not in __path__:
    __path__.append(_repo_root)

__all__ = ["Fuser", "__version__"]


def __getattr__(name: str):
    # Lazy so that `import tsjnet_sdk` (and `tsjnet --version`) stays light; Fuser itself needs no torch.
    if name == "Fuser":
        from tsjnet_sdk.runtime import Fuser

        return Fuser
    raise AttributeError(f"module 'tsjnet_sdk' has no attribute {name!r}")
