"""The export formats, one row each: ``tsjnet export --format`` choices, help, dispatch and docs read this table.

Adding a format is one file (a module with ``export_from_options(source, output, options, progress)``
returning an ExportResult) plus one row in :data:`EXPORT_FORMATS`. Imports nothing heavy.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path

from tsjnet_sdk.export.common import DEFAULT_MAX_HW, DEFAULT_MIN_HW, DEFAULT_OPT_HW, ExportResult, Progress


@dataclass(frozen=True)
class ExportOptions:
    """What the command line (or a caller) asks of any export; each format reads the fields it uses."""

    fp16: bool = False
    na: str | None = None  # None: decomposed for checkpoints, the ONNX's own mode for ONNX sources
    static: tuple[int, int] | None = None  # ONNX: fixed H, W
    batch: int = 1  # ONNX --static: fixed N; engines: the profile's largest N
    opset: int | None = None
    simplify: bool = True
    parity: bool = True
    parity_pair: tuple[Path, Path] | None = None
    min_hw: tuple[int, int] = DEFAULT_MIN_HW
    opt_hw: tuple[int, int] = DEFAULT_OPT_HW
    max_hw: tuple[int, int] = DEFAULT_MAX_HW
    workspace_gb: float | None = None
    trt: str | None = None
    compute_capabilities: tuple[str, ...] | None = None
    timing_cache: Path | None = None
    plugin_lib: Path | None = None


@dataclass(frozen=True)
class ExportFormat:
    """One row of the format table."""

    name: str  # --format
    suffix: str  # the artefact's file suffix
    module: str  # tsjnet_sdk.export.<module> holds export_from_options
    needs: str  # what must be installed
    parity_subject: str  # what a parity report of this format compared
    summary: str

    def run(
        self,
        source: str | os.PathLike,
        output: str | os.PathLike | None,
        options: ExportOptions,
        progress: Progress | None = None,
    ) -> ExportResult:
        module = importlib.import_module(f"tsjnet_sdk.export.{self.module}")
        return module.export_from_options(source, output, options, progress)


EXPORT_FORMATS: tuple[ExportFormat, ...] = (
    ExportFormat(
        "onnx",
        ".onnx",
        "onnx_export",
        "torch and onnx: the [export] extra",
        "this ONNX",
        "ONNX (fp32 or fp16, decomposed or plugin NA, dynamic or static shapes), parity-checked against PyTorch",
    ),
    ExportFormat(
        "engine",
        ".engine",
        "engine_export",
        "TensorRT (and the [export] extra from a checkpoint)",
        "the ONNX this engine was built from",
        "TensorRT engine with a tsjnet header, built from a checkpoint or a tsjnet ONNX on the device that runs it",
    ),
)
FORMATS = {f.name: f for f in EXPORT_FORMATS}
