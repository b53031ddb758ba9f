"""The tsjnet engine file: a small self-describing header in front of a serialized TensorRT engine.

Layout (all integers little-endian)::

    bytes 0..7    magic  b"TSJNTRT\\x00"
    bytes 8..11   uint32 header format version (FORMAT_VERSION)
    bytes 12..15  uint32 n = length of the JSON metadata
    bytes 16..    n bytes of UTF-8 JSON metadata, then the engine bytes to the end of the file

Same idea as Ultralytics' engine header (length + JSON + engine), plus a magic and a version so that
a loader can tell a tsjnet engine from a bare trtexec plan and from a newer header it cannot read.

A bare engine (built with ``trtexec`` from a tsjnet ONNX) is accepted with a sidecar beside it,
``<engine>.tsjnet.json`` (:func:`sidecar_path`, written by ``tsjnet export MODEL.onnx --sidecar-for ENGINE``):
the same metadata as a header, plus the engine file's SHA-256, so a sidecar never describes another file.

Metadata keys written by ``tsjnet export --format engine``: sdk_version, config_name, trt_flavour
(``tensorrt`` | ``tensorrt_rtx``), trt_version, precision, na_mode, profile ({min, opt, max} as
[N, 1, H, W]), na_plugin (``--na plugin`` only: {implementation: ``library`` | ``qdp``, library: file
name, library_sha256}; the runtime loads a library with that hash before deserialising), compute_capability ("8.9") or compute_capabilities for RTX builds, source_onnx_sha256,
input/output names. Imports nothing beyond the standard library: the runtime reads headers on
machines without TensorRT.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

from tsjnet_sdk.atomic import atomic_path
from tsjnet_sdk.errors import TsjnetError
from tsjnet_sdk.hashing import file_sha256

ENGINE_MAGIC = b"TSJNTRT\x00"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sII")  # magic, format version, JSON length
_MAX_HEADER = 1 << 20  # a header above 1 MiB is not one of ours
SIDECAR_SUFFIX = ".tsjnet.json"


class EngineFileError(TsjnetError, ValueError):
    """An engine file that is not a tsjnet engine, is truncated, or has a header this SDK cannot read."""


class EngineIncompatibleError(TsjnetError, RuntimeError):
    """A valid tsjnet engine built for another TensorRT version / flavour or another GPU."""


def write_engine_file(path: str | os.PathLike, metadata: dict[str, Any], engine: bytes) -> Path:
    """Write header + engine atomically (a crash never leaves a half engine at ``path``)."""
    if not engine:
        raise ValueError("refusing to write an empty engine")
    blob = json.dumps(metadata, sort_keys=True).encode()
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(_PREFIX.pack(ENGINE_MAGIC, FORMAT_VERSION, len(blob)))
            f.write(blob)
            f.write(engine)
    return Path(path)


def sidecar_path(engine: str | os.PathLike) -> Path:
    """Where the metadata of a bare (trtexec) engine lives: ``<engine>.tsjnet.json``."""
    return Path(str(engine) + SIDECAR_SUFFIX)


def write_sidecar(engine: str | os.PathLike, metadata: dict[str, Any]) -> Path:
    """Write the sidecar of a bare engine file atomically, bound to the engine by its SHA-256."""
    engine = Path(engine)
    if not engine.is_file():
        raise EngineFileError(f"{engine}: engine file not found")
    if has_header(engine):
        raise EngineFileError(f"{engine} already has a tsjnet header; it needs no sidecar")
    record = {**metadata, "engine_sha256": file_sha256(engine), "header_source": "sidecar"}
    path = sidecar_path(engine)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path


def has_header(path: str | os.PathLike) -> bool:
    with open(path, "rb") as f:
        return f.read(len(ENGINE_MAGIC)) == ENGINE_MAGIC


def _read_sidecar(path: Path) -> dict[str, Any]:
    """The metadata of a bare engine from its sidecar, or EngineFileError with the command that makes one."""
    side = sidecar_path(path)
    if not side.is_file():
        raise EngineFileError(
            f"{path}: not a tsjnet engine (no tsjnet header) and no sidecar {side.name} beside it. If you built it with "
            f"trtexec from a tsjnet ONNX file, describe it with: tsjnet export MODEL.onnx --sidecar-for {path} ; or build "
            "engines with `tsjnet export MODEL --format engine`"
        )
    try:
        meta = json.loads(side.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise EngineFileError(f"{side}: corrupt sidecar (not JSON); write it again with --sidecar-for") from None
    if not isinstance(meta, dict) or "engine_sha256" not in meta:
        raise EngineFileError(
            f"{side}: not a tsjnet sidecar; write it again with `tsjnet export MODEL.onnx --sidecar-for {path}`"
        )
    if meta["engine_sha256"] != file_sha256(path):
        raise EngineFileError(
            f"{side} describes another engine (SHA-256 differs from {path.name}, rebuilt since?): write it again with "
            f"`tsjnet export MODEL.onnx --sidecar-for {path}`"
        )
    meta["header_version"] = 0
    return meta


def _read_prefix(f: Any, path: Path) -> dict[str, Any]:
    head = f.read(_PREFIX.size)
    if len(head) < _PREFIX.size or not head.startswith(ENGINE_MAGIC):
        raise EngineFileError(
            f"{path}: not a tsjnet engine (no tsjnet header): build engines with `tsjnet export MODEL --format engine`"
        )
    _, version, length = _PREFIX.unpack(head)
    if version > FORMAT_VERSION:
        raise EngineFileError(
            f"{path}: engine header version {version} is newer than this SDK reads ({FORMAT_VERSION}); "
            "upgrade tsjnet-sdk or rebuild the engine with this one"
        )
    if length > _MAX_HEADER:
        raise EngineFileError(f"{path}: corrupt engine header (metadata length {length})")
    blob = f.read(length)
    if len(blob) != length:
        raise EngineFileError(f"{path}: truncated engine file (header cut short); rebuild or copy it again")
    try:
        meta = json.loads(blob)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise EngineFileError(f"{path}: corrupt engine header (metadata is not JSON)") from None
    if not isinstance(meta, dict):
        raise EngineFileError(f"{path}: corrupt engine header (metadata is not an object)")
    meta["header_version"] = version
    return meta


def read_engine_header(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a tsjnet engine file (header, or sidecar for a bare engine), without loading the engine."""
    path = Path(path)
    if not has_header(path):
        meta = _read_sidecar(path)
        meta["engine_bytes"] = path.stat().st_size
        return meta
    with open(path, "rb") as f:
        meta = _read_prefix(f, path)
        start = f.tell()
    meta["engine_bytes"] = path.stat().st_size - start
    if meta["engine_bytes"] <= 0:
        raise EngineFileError(f"{path}: truncated engine file (no engine after the header)")
    return meta


def read_engine_file(path: str | os.PathLike) -> tuple[dict[str, Any], bytes]:
    """(metadata, serialized engine bytes) of a tsjnet engine file, or of a bare engine with its sidecar."""
    path = Path(path)
    if not has_header(path):
        return _read_sidecar(path), path.read_bytes()
    with open(path, "rb") as f:
        meta = _read_prefix(f, path)
        engine = f.read()
    if not engine:
        raise EngineFileError(f"{path}: truncated engine file (no engine after the header)")
    return meta, engine


def check_engine_compatible(header: dict[str, Any], flavour: str, trt_version: str, capability: tuple[int, int] | None) -> None:
    """Raise EngineIncompatibleError naming the mismatch and the fix, instead of letting TensorRT crash.

    Engines are tied to the TensorRT flavour and exact version they were built with, and (non-RTX) to
    the GPU's compute capability. ``capability`` None skips the GPU check (no GPU to compare with).
    """
    built_flavour, built_version = header.get("trt_flavour"), header.get("trt_version")
    if built_flavour and built_flavour != flavour:
        raise EngineIncompatibleError(
            f"engine was built with {built_flavour}, this process runs {flavour}; rebuild it here with `tsjnet export`"
        )
    if built_version and built_version != trt_version:
        raise EngineIncompatibleError(
            f"engine was built with {flavour} {built_version}, this machine has {trt_version}; TensorRT engines are "
            "tied to their TensorRT version: rebuild it here with `tsjnet export CHECKPOINT --format engine`"
        )
    if capability is None:
        return
    have = f"{capability[0]}.{capability[1]}"
    targets = header.get("compute_capabilities") or ([header["compute_capability"]] if header.get("compute_capability") else [])
    if targets and have not in targets:
        raise EngineIncompatibleError(
            f"engine was built for compute capability {', '.join(targets)}, this GPU is {have}; rebuild it on (or for) this GPU"
        )
