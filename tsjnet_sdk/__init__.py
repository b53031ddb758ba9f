"""tsjnet-sdk: infrared + visible image fusion with TSJNet, from PyTorch to TensorRT.

Importing this package must never import torch: edge devices run ONNX Runtime or TensorRT only.
The torch-based parts (``tsjnet_sdk.models``, ``tsjnet_sdk.ops``, ``tsjnet_sdk.export``,
``tsjnet_sdk.training``) are imported explicitly by whoever needs them.
"""

from __future__ import annotations

import importlib.abc as _abc
import importlib.util as _util
import os as _os
import sys as _sys

from tsjnet_sdk._version import __version__
from tsjnet_sdk.errors import TsjnetError

# The stage folders export/, training/, kernels/ and benchmarks/ live at the repository root and are
# installed as tsjnet_sdk.export, tsjnet_sdk.training, ... (see pyproject's package-dir). When the SDK
# runs straight from a source checkout (PYTHONPATH=<repo>), a finder maps exactly those four names to the
# folders; nothing else of the repository (tests/, the package itself again) becomes importable under it.
_STAGES = ("export", "training", "kernels", "benchmarks")
_repo_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))


class _StageFinder(_abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        package, _, stage = fullname.partition(".")
        if package != __name__ or stage not in _STAGES:
            return None
        folder = _os.path.join(_repo_root, stage)
        return _util.spec_from_file_location(fullname, _os.path.join(folder, "__init__.py"), submodule_search_locations=[folder])


_in_checkout = _os.path.isfile(_os.path.join(_repo_root, "pyproject.toml"))
_installed_stages = _os.path.isdir(_os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "export"))
if _in_checkout and not _installed_stages and not any(isinstance(f, _StageFinder) for f in _sys.meta_path):
    _sys.meta_path.insert(0, _StageFinder())

__all__ = ["Fuser", "TsjnetError", "__version__"]


def __getattr__(name: str):
    # Lazy so that `import tsjnet_sdk` (and `tsjnet --version`) stays light; Fuser itself needs no torch.
    if name == "Fuser":
        from tsjnet_sdk.runtime import Fuser

        return Fuser
    raise AttributeError(f"module 'tsjnet_sdk' has no attribute {name!r}")
