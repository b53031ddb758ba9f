"""What kind of model file is this? One place that tells checkpoints, ONNX files and engines apart
(by content, not only by suffix), without importing torch, onnx or TensorRT."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tsjnet_sdk.artifact_metadata import ArtifactMetadata, ArtifactMetadataError
from tsjnet_sdk.errors import TsjnetError

CHECKPOINT, ONNX, ENGINE = "checkpoint", "onnx", "engine"
KINDS = (CHECKPOINT, ONNX, ENGINE)


class ModelFileError(TsjnetError, ValueError):
    """A model file that is missing, of unknown kind, or unreadable."""


@dataclass
class ArtifactInfo:
    """What a model file is. ``metadata`` holds the tsjnet metadata of the artefact (config, precision, ...)
    as display values; ``typed`` the parsed ArtifactMetadata of an ONNX file or engine (None for checkpoints)."""

    path: Path
    kind: str
    metadata: dict[str, Any] = field(default_factory=dict)
    typed: ArtifactMetadata | None = None

    @property
    def config_name(self) -> str | None:
        if self.typed is not None and self.typed.config_name:
            return self.typed.config_name
        cfg = self.metadata.get("config")
        if isinstance(cfg, str):
            try:
                cfg = json.loads(cfg)
            except json.JSONDecodeError:
                return None
        return cfg.get("name") if isinstance(cfg, dict) else self.metadata.get("config_name")


def require_tsjnet_metadata(metadata: ArtifactMetadata, path: str | os.PathLike, allow_foreign_model: bool) -> None:
    """Refuse an ONNX file or engine without tsjnet metadata (``sdk_version`` and the config name) unless
    the user opted in with ``allow_foreign_model=True`` (``--allow-foreign-model``).

    Any graph with inputs named ``ir``/``vis`` would otherwise run as if it were TSJNet (a graph that
    returns a 1 x 1 mean loaded fine); files from ``tsjnet export`` always carry the metadata.
    """
    if allow_foreign_model or (metadata.sdk_version and (metadata.config_name or metadata.config)):
        return
    raise ModelFileError(
        f"{path}: no tsjnet metadata (sdk_version, config_name), so nothing says this is a TSJNet fusion model; "
        "export models with `tsjnet export`, or, to run your own ir/vis -> fused graph, pass "
        "Fuser(..., allow_foreign_model=True) (CLI: --allow-foreign-model)"
    )


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    header_len = int.from_bytes(head[:8], "little")
    return 0 < header_len <= size - 8 and head[8:9] == b"{"


def _looks_like_onnx(head: bytes) -> bool:
    # An ONNX ModelProto starts with field 1 (ir_version, varint: tag 0x08) in every exporter we know.
    return head[:1] == b"\x08"


def detect_kind(path: str | os.PathLike) -> str:
    """``checkpoint``, ``onnx`` or ``engine``; raises ModelFileError naming the file and the fix."""
    from tsjnet_sdk.engine_format import ENGINE_MAGIC, sidecar_path

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    with open(path, "rb") as f:
        head = f.read(16)
    size = path.stat().st_size
    if head.startswith(ENGINE_MAGIC) or sidecar_path(path).is_file():
        return ENGINE  # a tsjnet engine, or a bare (trtexec) engine described by its sidecar
    if _looks_like_safetensors(head, size):
        return CHECKPOINT
    if _looks_like_onnx(head) and path.suffix.lower() == ".onnx":
        return ONNX
    if path.suffix.lower() in (".engine", ".plan", ".trt"):
        raise ModelFileError(
            f"{path}: a bare TensorRT engine without the tsjnet header or sidecar (or a corrupt file). If you built it "
            f"with trtexec from a tsjnet ONNX file, describe it with: tsjnet export MODEL.onnx --sidecar-for {path} ; or "
            "build engines with `tsjnet export MODEL --format engine`"
        )
    raise ModelFileError(
        f"{path}: unknown model file kind; expected a tsjnet checkpoint (.safetensors), an ONNX file from "
        "`tsjnet export` (.onnx) or a tsjnet engine (.engine)"
    )


def inspect_artifact(path: str | os.PathLike) -> ArtifactInfo:
    """Kind and tsjnet metadata of a model file. ONNX metadata needs onnxruntime (or onnx)."""
    path = Path(path)
    kind = detect_kind(path)
    if kind == CHECKPOINT:
        from tsjnet_sdk.models.checkpoint import read_checkpoint_metadata

        return ArtifactInfo(path=path, kind=kind, metadata=dict(read_checkpoint_metadata(path)))
    try:
        if kind == ENGINE:
            from tsjnet_sdk.engine_format import read_engine_header

            header = dict(read_engine_header(path))
            # Facts about the file, not metadata written by export: shown, not parsed into the schema.
            facts = {k: header.pop(k) for k in ("header_version", "engine_bytes") if k in header}
            typed = ArtifactMetadata.from_header(header, str(path))
        else:
            facts, typed = {}, ArtifactMetadata.from_props(read_onnx_metadata(path), str(path))
    except ArtifactMetadataError as e:
        raise ModelFileError(str(e)) from None
    return ArtifactInfo(path=path, kind=kind, metadata={**typed.as_display(), **facts}, typed=typed)


def read_onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``tsjnet.*`` metadata_props of an ONNX file, keys without the prefix."""
    try:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            props = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
        except Exception:  # noqa: BLE001 - e.g. a plugin-mode graph ORT cannot instantiate; fall back to onnx
            props = _onnx_props(path)
    except ImportError:
        props = _onnx_props(path)
    props = {_text(k): _text(v) for k, v in props.items()}
    return {k[len("tsjnet.") :]: v for k, v in props.items() if k.startswith("tsjnet.")}


def _text(value: str | bytes) -> str:
    # protobuf hands back bytes for a string field that is not valid UTF-8 (a corrupt file).
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _onnx_props(path: str | os.PathLike) -> dict[str, str]:
    try:
        import onnx
    except ImportError:
        raise ModelFileError(f"{path}: reading ONNX metadata needs onnxruntime or onnx: pip install 'tsjnet-sdk[onnx]'") from None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf raises many types
        raise ModelFileError(f"{path}: corrupt ONNX file ({e})") from None
    return {p.key: p.value for p in model.metadata_props}
