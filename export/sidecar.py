"""``tsjnet export MODEL.onnx --sidecar-for ENGINE``: describe an engine built outside tsjnet (``trtexec``).

The runtime opens a bare engine only with this sidecar beside it (tsjnet_sdk/engine_format.py): the ONNX's
tsjnet metadata (config, conventions, NA mode) plus what is known of the engine. What trtexec chose
(precision, profile, TensorRT version) is not in the ONNX, so it is recorded as unknown; TensorRT itself
refuses an engine of another version when it deserialises it. Needs no torch and no TensorRT.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from tsjnet_sdk._version import __version__
from tsjnet_sdk.artifact_metadata import ArtifactMetadata
from tsjnet_sdk.engine_format import EngineFileError, write_sidecar
from tsjnet_sdk.export.common import INPUT_NAMES, OUTPUT_NAME, ExportError, tsjnet_onnx_metadata
from tsjnet_sdk.hashing import file_sha256


def write_engine_sidecar(engine: str | os.PathLike, onnx_path: str | os.PathLike, fp16: bool = False) -> Path:
    """Write ``<engine>.tsjnet.json`` from the tsjnet ONNX the engine was built from; returns its path.

    ``fp16``: the engine was built with ``trtexec --fp16`` (recorded as its precision; the ONNX says fp32).
    """
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file() or onnx_path.suffix.lower() != ".onnx":
        raise ExportError(f"--sidecar-for needs the tsjnet ONNX file the engine was built from, got {onnx_path}")
    onnx_meta = ArtifactMetadata.from_props(tsjnet_onnx_metadata(onnx_path))
    meta = dataclasses.replace(
        onnx_meta,
        precision="fp16" if fp16 else onnx_meta.precision,
        sdk_version=__version__,
        trt_flavour="tensorrt",
        inputs=list(INPUT_NAMES),
        output=OUTPUT_NAME,
        source_onnx_sha256=file_sha256(onnx_path),
    ).to_header()
    try:
        return write_sidecar(engine, meta)
    except EngineFileError as e:
        raise ExportError(str(e)) from None
