"""What every export path shares, without torch: the graph's contract, options checks, results, output paths.

Engine builds from an existing ONNX file (``tsjnet export model.onnx --format engine``) import only this
module and TensorRT, so a Jetson builds engines without torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tsjnet_sdk.errors import TsjnetError
from tsjnet_sdk.models.config import MIN_INPUT_SIZE

# torch's dynamo exporter emits opset 18 natively (others go through the ONNX version converter);
# 18 is accepted by onnxruntime >= 1.14 and by every TensorRT 10.x / 11.x parser and TensorRT-RTX,
# including JetPack 6's TensorRT 10.3. 18..23: what this onnx/onnxruntime pair runs.
DEFAULT_OPSET = 18
SUPPORTED_OPSETS = range(18, 24)
NA_MODES = ("decomposed", "plugin")
INPUT_NAMES = ("ir", "vis")
OUTPUT_NAME = "fused"
# (H, W) of an engine's default optimisation profile. 32 is the model's minimum; 480x640 the usual thermal
# camera; 720x1280 keeps the faithful model's full-resolution 512-channel activations within a 16 GB GPU.
DEFAULT_MIN_HW, DEFAULT_OPT_HW, DEFAULT_MAX_HW = (32, 32), (480, 640), (720, 1280)

Progress = Callable[[str], None]


class ExportError(TsjnetError, RuntimeError):
    """An export that cannot be done; the message is one line naming the reason and the fix."""


@dataclass
class ExportResult:
    """What an export wrote: the artefact, its metadata and (if run) the parity report and its JSON."""

    path: Path
    metadata: dict[str, str]
    parity: dict[str, Any] | None = None
    parity_path: Path | None = None
    timings_s: dict[str, float] = field(default_factory=dict)


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def check_export_options(na: str, opset: int, static: tuple[int, int, int] | None) -> None:
    """Raise ExportError for options that cannot work, before any slow step."""
    if na not in NA_MODES:
        raise ExportError(f"unknown --na mode {na!r}; choose one of {', '.join(NA_MODES)}")
    if opset not in SUPPORTED_OPSETS:
        raise ExportError(
            f"opset {opset} is not supported; choose {SUPPORTED_OPSETS.start}..{SUPPORTED_OPSETS.stop - 1} "
            f"(default {DEFAULT_OPSET})"
        )
    if static is not None:
        n, h, w = static
        if n < 1 or min(h, w) < MIN_INPUT_SIZE:
            raise ExportError(f"--static needs N >= 1 and H, W >= {MIN_INPUT_SIZE}, got N={n}, H={h}, W={w}")


def default_output_path(source: str | os.PathLike, tags: str, suffix: str) -> Path:
    """``<source stem><tags><suffix>`` in the current folder: exports never write beside their source,
    which may be inside an installed package (the shipped models are)."""
    return Path.cwd() / f"{Path(source).stem}{tags}{suffix}"


def tsjnet_onnx_metadata(path: Path) -> dict[str, str]:
    """The tsjnet metadata of an ONNX file, or ExportError when it has none (not made by ``tsjnet export``)."""
    from tsjnet_sdk.runtime.artifacts import ModelFileError, read_onnx_metadata

    try:
        meta = read_onnx_metadata(path)
    except ModelFileError as e:
        raise ExportError(str(e)) from None
    if "config_name" not in meta:
        raise ExportError(f"{path} has no tsjnet metadata (not made by `tsjnet export`): export the checkpoint instead")
    return meta
