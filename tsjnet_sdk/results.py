"""Results files: where they go, where the data is, and how JSON is written (one rule for NaN / inf).

* :func:`write_json`: strict JSON, atomically. NaN (an undefined value, e.g. MS-SSIM of a small image)
  becomes ``null``; +/-inf (a real extreme, e.g. the PSNR of two identical outputs) becomes the string
  ``"inf"`` / ``"-inf"``. Every results file of the SDK (demo, ``tsjnet quality``, ``tsjnet bench``)
  follows it, so one reader handles them all.
* :func:`data_root`: ``$TSJNET_DATA``, else ``../shared/data`` beside a source checkout, else ``./data``.
* :func:`results_dir`: a command's default output folder: inside a source checkout, the repository's
  own folder for it (e.g. ``benchmarks/results``, committed with the code); in an installed package,
  ``./tsjnet-results/<name>`` under the current folder. Never the installed package's folder
  (read-only for many users, and wiped by the next upgrade).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from tsjnet_sdk.atomic import write_bytes_atomic

_PACKAGE = Path(__file__).resolve().parent
#: The source checkout this SDK runs from, or None when it is an installed package.
REPO_ROOT: Path | None = _PACKAGE.parent if (_PACKAGE.parent / "pyproject.toml").is_file() else None


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN -> None and +/-inf -> "inf" / "-inf", at any depth of dicts, lists and tuples."""
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
        return obj
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    """Write ``obj`` as strict JSON (see :func:`json_safe`) to ``path`` atomically; returns the path."""
    text = json.dumps(json_safe(obj), indent=indent, allow_nan=False) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"))


def data_root() -> Path:
    """The folder holding the data sets (msrs/, roadscene/, tno/, ...): see the module docstring."""
    if os.environ.get("TSJNET_DATA"):
        return Path(os.environ["TSJNET_DATA"]).expanduser()
    if REPO_ROOT is not None:
        return REPO_ROOT.parent / "shared" / "data"
    return Path("data")


def results_dir(name: str, checkout_folder: str) -> Path:
    """Default output folder of a command: ``REPO_ROOT/checkout_folder`` in a source checkout, else
    ``./tsjnet-results/name``."""
    if REPO_ROOT is not None:
        return REPO_ROOT / checkout_folder
    return Path("tsjnet-results") / name
