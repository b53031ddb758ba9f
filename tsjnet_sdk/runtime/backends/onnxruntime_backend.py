"""ONNX Runtime backend: runs an ONNX file from `tsjnet export` with the best execution provider present."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tsjnet_sdk.hashing import file_sha256
from tsjnet_sdk.runtime.artifacts import require_tsjnet_metadata
from tsjnet_sdk.runtime.backends.base import Backend, BackendUnavailable
from tsjnet_sdk.runtime.options import OrtOptions

# Preferred order; the first one installed (and allowed by the device) wins.
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
CPU_PROVIDER = "CPUExecutionProvider"
CUSTOM_NODE_DOMAIN = "tsjnet"


def onnxruntime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def choose_providers(device: str, preferred: Sequence[str] | None = None) -> list[str]:
    """Execution providers for ``device`` (auto | cpu | cuda[:i]), best first, CPU always last.

    ``preferred`` (OrtOptions.providers) replaces the automatic order; every name must be installed.
    """
    import onnxruntime as ort

    available = ort.get_available_providers()
    if preferred is not None:
        missing = [p for p in preferred if p not in available]
        if missing:
            raise BackendUnavailable(
                f"execution provider(s) {', '.join(missing)} not in this onnxruntime (it has {', '.join(available)}); "
                "install onnxruntime-gpu for CUDA/TensorRT, or drop them from OrtOptions.providers"
            )
        return list(preferred)
    gpu = [p for p in GPU_PROVIDERS if p in available]
    if device.startswith("cuda") and not gpu:
        raise BackendUnavailable(
            f"device {device!r} requested but this onnxruntime has no CUDA/TensorRT provider (it has "
            f"{', '.join(available)}); install onnxruntime-gpu or use device='cpu'"
        )
    return ([] if device == "cpu" else gpu) + [CPU_PROVIDER]


def provider_options_for(providers: Sequence[str], options: OrtOptions, device: str) -> list[dict[str, str]]:
    """ORT provider options, one dict per provider (device id, TensorRT EP fp16 / engine cache, user's own)."""
    device_id = device.split(":")[1] if device.startswith("cuda:") else None
    out = []
    for name in providers:
        opts: dict[str, str] = {}
        if device_id is not None and name in GPU_PROVIDERS:
            opts["device_id"] = device_id
        if name == "TensorrtExecutionProvider":
            if options.trt_fp16:
                opts["trt_fp16_enable"] = "True"
            if options.trt_engine_cache is not None:
                Path(options.trt_engine_cache).expanduser().mkdir(parents=True, exist_ok=True)
                opts["trt_engine_cache_enable"] = "True"
                opts["trt_engine_cache_path"] = str(Path(options.trt_engine_cache).expanduser())
        opts.update({str(k): str(v) for k, v in options.provider_options.get(name, {}).items()})
        out.append(opts)
    return out


def session_options(options: OrtOptions, level: str | None = None) -> Any:
    """An ``ort.SessionOptions`` from ``options`` (``level`` overrides the graph optimisation level)."""
    import onnxruntime as ort

    levels = {
        "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    opts = ort.SessionOptions()
    opts.graph_optimization_level = levels[level or options.graph_optimization]
    opts.intra_op_num_threads = options.threads()
    opts.inter_op_num_threads = options.inter_op_threads
    opts.execution_mode = (
        ort.ExecutionMode.ORT_SEQUENTIAL if options.execution_mode == "sequential" else ort.ExecutionMode.ORT_PARALLEL
    )
    if options.denormal_as_zero:
        opts.add_session_config_entry("session.set_denormal_as_zero", "1")
    opts.enable_mem_pattern = options.memory_pattern
    opts.enable_cpu_mem_arena = options.cpu_arena
    return opts


def _cpu_name() -> str:
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()}"


#: Metadata key appended to a cached optimised graph: the SHA-256 of the model it was built from.
CACHE_SOURCE_KEY = "ortopt_source_sha256"


def optimized_model(path: Path, options: OrtOptions, providers: Sequence[str], rebuild: bool = False) -> tuple[Path, str]:
    """(the cached ORT-optimised graph of ``path``, the SHA-256 of ``path``) in ``options.optimized_model_cache``;
    built now when missing, damaged or ``rebuild``.

    Keyed by the model's SHA-256, the ORT version, the optimisation level, the providers and the CPU:
    an optimised graph is specific to all of them. The graph carries the source model's SHA-256 in its
    own metadata (``CACHE_SOURCE_KEY``, checked by :func:`open_session` after loading), and a record
    beside it (``.json``) holds the SHA-256 of the source and of the graph file: an empty, truncated or
    replaced cache, or one of a different model under this name, is rebuilt, never run in place of
    this model. Both files are written under temporary names and renamed.
    """
    import hashlib
    import json
    import os

    import onnxruntime as ort

    from tsjnet_sdk.atomic import atomic_path, write_bytes_atomic

    source_sha = file_sha256(path)
    # ORT's "all" level bakes CPU-specific layouts (NCHWc) into the saved graph: the CPU is in the key too.
    key = hashlib.sha256(
        f"{source_sha}|{ort.__version__}|{options.graph_optimization}|{','.join(providers)}|{_cpu_name()}".encode()
    ).hexdigest()[:16]
    cache_dir = options.cache_dir()
    assert cache_dir is not None
    out = cache_dir / f"{path.stem}.ortopt-{key}.onnx"
    record = out.with_suffix(".json")
    if not rebuild and cache_is_valid(out, record, source_sha):
        return out, source_sha
    cache_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        opts = session_options(options)
        opts.optimized_model_filepath = os.fspath(tmp)
        opts.log_severity_level = 3  # the "hardware specific optimizations" warning: the key covers it
        ort.InferenceSession(str(path), opts, providers=list(providers))
        with open(tmp, "ab") as f:  # protobuf merges a field appended to a message: one more metadata_props entry
            f.write(_metadata_prop(CACHE_SOURCE_KEY, source_sha))
    facts = {
        "source_model": path.name,
        "source_sha256": source_sha,
        "cache_sha256": file_sha256(out),
        "onnxruntime": ort.__version__,
    }
    write_bytes_atomic(record, json.dumps(facts, indent=1).encode())
    return out, source_sha


def _metadata_prop(key: str, value: str) -> bytes:
    """The protobuf bytes of one ``ModelProto.metadata_props`` entry (field 14: StringStringEntryProto)."""

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            byte, n = n & 0x7F, n >> 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)

    def field(number: int, payload: bytes) -> bytes:  # wire type 2: length-delimited
        return varint(number << 3 | 2) + varint(len(payload)) + payload

    return field(14, field(1, key.encode()) + field(2, value.encode()))


def cache_is_valid(cache: Path, record: Path, source_sha: str) -> bool:
    """Whether the record beside ``cache`` says it is the intact graph of the model whose SHA-256 is ``source_sha``."""
    import json

    try:
        facts = json.loads(record.read_text())
        return (
            isinstance(facts, dict)
            and facts.get("source_sha256") == source_sha
            and cache.is_file()
            and facts.get("cache_sha256") == file_sha256(cache)
        )
    except (OSError, ValueError):
        return False


def open_session(path: Path, options: OrtOptions, providers: Sequence[str], provider_opts: list[dict[str, str]]) -> Any:
    """An ``InferenceSession`` for ``path``: from the verified optimised-graph cache when ``options`` has one
    (rebuilt once when ORT cannot load it or it was built from another model), else from ``path`` itself."""
    import onnxruntime as ort

    if options.cache_dir() is None or options.graph_optimization == "disabled":
        return ort.InferenceSession(str(path), session_options(options), providers=providers, provider_options=provider_opts)
    # The saved graph is already optimised: basic passes only, so nothing is redone at load.
    opts = session_options(options, "basic")
    for rebuild in (False, True):
        cached, source_sha = optimized_model(path, options, providers, rebuild=rebuild)
        try:
            session = ort.InferenceSession(str(cached), opts, providers=providers, provider_options=provider_opts)
        except Exception:  # noqa: BLE001 - ORT's own types; e.g. a graph another ORT build wrote: rebuild it
            if rebuild:
                raise
            continue
        if session.get_modelmeta().custom_metadata_map.get(CACHE_SOURCE_KEY) == source_sha:
            return session
    raise BackendUnavailable(
        f"{path}: the optimised graph rebuilt in {options.cache_dir()} does not verify; "
        "delete that folder, or run without OrtOptions(optimized_model_cache=...)"
    )


def check_io(session: Any, path: Path) -> None:
    """Refuse an ONNX graph whose inputs / output are not TSJNet's: float32 ``ir`` and ``vis`` [N, 1, H, W]
    in, one float ``fused`` [N, 1, H, W] out; the message names what the file has."""

    def describe(args: Any) -> str:
        return ", ".join(f"{a.name} {a.type} {list(a.shape)}" for a in args)

    try:  # ORT decodes names and dimension names as UTF-8 only when asked (a corrupt file raises here)
        inputs, outputs = session.get_inputs(), session.get_outputs()
        for arg in [*inputs, *outputs]:
            arg.name, arg.type, arg.shape  # noqa: B018 - read once to surface decoding errors
    except (UnicodeDecodeError, RuntimeError, ValueError) as e:
        raise BackendUnavailable(f"{path}: cannot read the graph's inputs and outputs ({e}); the file is corrupt") from None
    expected = "inputs 'ir' and 'vis' (tensor(float) [N, 1, H, W]) and one output 'fused' (tensor(float) [N, 1, H, W])"
    problem = None
    if sorted(i.name for i in inputs) != ["ir", "vis"]:
        problem = f"inputs are {sorted(i.name for i in inputs)}"
    elif [o.name for o in outputs] != ["fused"]:
        problem = f"outputs are {[o.name for o in outputs]}"
    else:
        for arg in [*inputs, *outputs]:
            if arg.type != "tensor(float)":
                problem = (
                    f"{arg.name} is {arg.type} (tsjnet exports keep float32 inputs and output, also for fp16 "
                    "weights: re-export with `tsjnet export --fp16`)"
                )
            elif len(arg.shape) != 4:
                problem = f"{arg.name} has rank {len(arg.shape)} {list(arg.shape)}"
            elif isinstance(arg.shape[1], int) and arg.shape[1] != 1:
                problem = f"{arg.name} has {arg.shape[1]} channels"
            if problem:
                break
    if problem:
        raise BackendUnavailable(
            f"{path}: not a TSJNet graph: {problem}; expected {expected} (has: {describe(inputs)} -> {describe(outputs)})"
        )


def static_shape_of(session: Any) -> tuple[int, int, int] | None:
    """(N, H, W) of a session whose input ``ir`` has a fixed shape, else None."""
    shape = session.get_inputs()[0].shape
    return tuple(shape[i] for i in (0, 2, 3)) if all(isinstance(shape[i], int) for i in (0, 2, 3)) else None


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    thread_safe = True  # InferenceSession.run is documented thread-safe

    def __init__(
        self, path: Path, device: str = "auto", options: OrtOptions | None = None, allow_foreign_model: bool = False
    ) -> None:
        if not onnxruntime_available():
            raise BackendUnavailable("the onnxruntime backend needs onnxruntime: pip install 'tsjnet-sdk[onnx]'")

        options = options or OrtOptions()
        providers = choose_providers(device, options.providers)
        provider_opts = provider_options_for(providers, options, device)
        self.options = options
        try:
            self.session = open_session(path, options, providers, provider_opts)
        except Exception as e:  # noqa: BLE001 - ORT raises its own exception types
            message = str(e)
            if CUSTOM_NODE_DOMAIN in message or "NeighborhoodAttention2D" in message:
                raise BackendUnavailable(
                    f"{path}: this ONNX uses the tsjnet NeighborhoodAttention2D custom node (exported with --na plugin, "
                    "for TensorRT); export with --na decomposed to run it in ONNX Runtime"
                ) from None
            raise BackendUnavailable(f"{path}: ONNX Runtime cannot load this model ({message.splitlines()[0]})") from None
        check_io(self.session, path)
        self.provider = self.session.get_providers()[0]
        super().__init__(path, "cuda" if self.provider in GPU_PROVIDERS else "cpu")
        from tsjnet_sdk.artifact_metadata import ArtifactMetadata, ArtifactMetadataError

        try:
            self.metadata = ArtifactMetadata.from_props(self.session.get_modelmeta().custom_metadata_map, f"{path}")
        except ArtifactMetadataError as e:
            raise BackendUnavailable(str(e)) from None
        require_tsjnet_metadata(self.metadata, path, allow_foreign_model)
        self._static = static_shape_of(self.session)

    def run(self, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
        (fused,) = self.session.run(["fused"], {"ir": ir, "vis": vis})
        return fused.astype(np.float32, copy=False)

    @property
    def static_shape(self) -> tuple[int, int, int] | None:
        return self._static

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "provider": self.provider,
            "config": self.metadata.config_name,
            "precision": self.metadata.precision,
            "na_mode": self.metadata.na_mode,
            "intra_op_threads": self.options.threads(),
            "execution_mode": self.options.execution_mode,
            "graph_optimization": self.options.graph_optimization
            + (", cached offline" if self.options.cache_dir() is not None else ""),
            "denormal_as_zero": self.options.denormal_as_zero,
        }

    def close(self) -> None:
        self.session = None  # frees the session (and its memory arena) now, not at garbage collection
