"""The one schema of the metadata a tsjnet model file carries (ONNX ``metadata_props`` and the engine header).

Export writes it, every backend and ``tsjnet info`` read it back typed::

    meta = ArtifactMetadata(config_name="tsjnet-edge", config={...}, na_mode="decomposed", precision="fp16", ...)
    onnx_props = meta.to_props()        # {"sdk_version": "0.1.0", "config": "{...json...}", ...}: strings
    header = meta.to_header()           # the engine file's JSON header: the same keys, JSON-typed values
    ArtifactMetadata.from_props(props)  # typed back; a malformed value raises ArtifactMetadataError naming it

Shared keys (both formats): sdk_version, config_name, config, input_convention, colour, na_mode,
precision, kept_float32, shapes, source_checkpoint_sha256; ONNX only: opset; engine only: trt_flavour,
trt_version, strongly_typed, profile, compute_capabilities, inputs, output, source_onnx_sha256,
na_plugin (plugin-NA engines: {implementation: library | qdp, library: file name, library_sha256}). Unknown keys are kept in ``extra`` (newer files stay readable).

Older files stay readable: ONNX files before this schema stored the input convention under ``inputs``
and ``kept_float32`` as ``"all"`` for fp32 exports. Imports only the standard library.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tsjnet_sdk.errors import TsjnetError

#: ONNX metadata_props keys carry this prefix (other tools' props are left alone).
PROP_PREFIX = "tsjnet."
NA_MODES = ("decomposed", "plugin")
PRECISIONS = ("fp32", "fp16", "int8")


class ArtifactMetadataError(TsjnetError, ValueError):
    """A model file's tsjnet metadata is malformed (the message names the key and the fix)."""


@dataclass
class ArtifactMetadata:
    """Typed tsjnet metadata of an ONNX file or an engine. Every field may be None in a file that lacks it."""

    sdk_version: str | None = None
    config_name: str | None = None
    config: dict[str, Any] | None = None  # TSJNetConfig.to_json(), parsed
    input_convention: str | None = None  # what ir / vis / fused are (shapes, ranges)
    colour: str | None = None  # how colour is handled around the graph
    na_mode: str | None = None  # decomposed | plugin
    precision: str | None = None  # fp32 | fp16 (| int8 for quantised files)
    kept_float32: tuple[str, ...] | None = None  # fp16 files: modules kept in float32; () for fp32 files
    shapes: str | None = None  # "dynamic" or "NxCxHxW"
    source_checkpoint_sha256: str | None = None
    opset: int | None = None  # ONNX only
    # engine only
    trt_flavour: str | None = None
    trt_version: str | None = None
    strongly_typed: bool | None = None
    profile: dict[str, list[int]] | None = None  # {min, opt, max}: [N, 1, H, W]
    compute_capabilities: list[str] | None = None
    inputs: list[str] | None = None  # input tensor names
    output: str | None = None
    source_onnx_sha256: str | None = None
    na_plugin: dict[str, Any] | None = None  # plugin-NA engines: {implementation, library, library_sha256}
    extra: dict[str, Any] = field(default_factory=dict)  # keys this SDK does not know (kept, shown by `tsjnet info`)

    # -- writing ----------------------------------------------------------------------------------

    def to_header(self) -> dict[str, Any]:
        """JSON-typed dict (the engine header): fields that are set, plus ``extra``."""
        out: dict[str, Any] = dict(self.extra)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or value is None:
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_props(self) -> dict[str, str]:
        """String dict for ONNX ``metadata_props`` (keys without the ``tsjnet.`` prefix)."""
        out = {}
        for key, value in self.to_header().items():
            if key == "kept_float32":
                out[key] = ",".join(value)
            elif isinstance(value, str):
                out[key] = value
            else:
                out[key] = json.dumps(value, sort_keys=True)
        return out

    # -- reading ----------------------------------------------------------------------------------

    @classmethod
    def from_header(cls, header: Mapping[str, Any], source: str = "engine header") -> ArtifactMetadata:
        """From an engine header (JSON-typed values); checks every known key's type."""
        return cls._build(dict(header), source, from_strings=False)

    @classmethod
    def from_props(cls, props: Mapping[str, str], source: str = "ONNX metadata") -> ArtifactMetadata:
        """From ONNX metadata_props (with or without the ``tsjnet.`` prefix; other props are ignored)."""
        prefixed = any(k.startswith(PROP_PREFIX) for k in props)
        clean = {k.removeprefix(PROP_PREFIX): v for k, v in props.items() if not prefixed or k.startswith(PROP_PREFIX)}
        # Before this schema the ONNX key for the input convention was "inputs" (a sentence, not names).
        if "inputs" in clean and "input_convention" not in clean and not str(clean["inputs"]).startswith("["):
            clean["input_convention"] = clean.pop("inputs")
        if clean.get("kept_float32") == "all":  # old fp32 files: nothing was converted
            clean["kept_float32"] = ""
        return cls._build(clean, source, from_strings=True)

    @classmethod
    def _build(cls, raw: dict[str, Any], source: str, from_strings: bool) -> ArtifactMetadata:
        known = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
        values: dict[str, Any] = {}
        extra = {}
        for key, value in raw.items():
            if key not in known:
                extra[key] = value
                continue
            values[key] = _parse(key, value, source, from_strings)
        meta = cls(**values, extra=extra)
        if meta.na_mode is not None and meta.na_mode not in NA_MODES:
            raise ArtifactMetadataError(
                f"{source}: na_mode {meta.na_mode!r} is not one of {', '.join(NA_MODES)}; re-export the model with this SDK"
            )
        if meta.precision is not None and meta.precision not in PRECISIONS:
            raise ArtifactMetadataError(
                f"{source}: precision {meta.precision!r} is not one of {', '.join(PRECISIONS)}; re-export the model with this SDK"
            )
        return meta

    def as_display(self) -> dict[str, str]:
        """Flat strings for ``tsjnet info`` (config shown by name only; long hashes shortened)."""
        out = {}
        for key, value in self.to_header().items():
            if key == "config":
                continue
            if isinstance(value, str) and key.endswith("sha256") and len(value) == 64:
                value = value[:16] + "..."
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                value = ", ".join(value)
            out[key] = value if isinstance(value, str) else json.dumps(value)
        return out


_STR = (
    "sdk_version",
    "config_name",
    "input_convention",
    "colour",
    "na_mode",
    "precision",
    "shapes",
    "source_checkpoint_sha256",
    "trt_flavour",
    "trt_version",
    "output",
    "source_onnx_sha256",
)


def _parse(key: str, value: Any, source: str, from_strings: bool) -> Any:
    def bad(expected: str) -> ArtifactMetadataError:
        return ArtifactMetadataError(
            f"{source}: key {key!r} should be {expected}, got {value!r}; the file was written by another tool or "
            "damaged: re-export it with `tsjnet export`"
        )

    if key in _STR:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if key == "kept_float32":
        if isinstance(value, str):
            return tuple(v for v in value.split(",") if v)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise bad("a comma-separated list of module names")
    if from_strings and isinstance(value, str):
        try:
            value = int(value) if key == "opset" else json.loads(value)
        except ValueError:
            raise bad("JSON" if key != "opset" else "a whole number") from None
    if key == "config":
        if not isinstance(value, dict):
            raise bad("a JSON object (the model config)")
        return value
    if key == "opset":
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad("a whole number")
        return value
    if key == "strongly_typed":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if key == "profile":
        if not (
            isinstance(value, dict) and all(isinstance(v, list) and all(isinstance(i, int) for i in v) for v in value.values())
        ):
            raise bad("{min, opt, max} lists of whole numbers")
        return value
    if key == "na_plugin":
        if not (
            isinstance(value, dict)
            and value.get("implementation") in ("library", "qdp")
            and all(isinstance(value.get(k), (str, type(None))) for k in ("library", "library_sha256"))
        ):
            raise bad("{implementation: library | qdp, library, library_sha256}")
        return value
    if key in ("compute_capabilities", "inputs"):
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise bad("a list of strings")
        return value
    raise AssertionError(f"unhandled metadata key {key}")  # every known field is handled above
