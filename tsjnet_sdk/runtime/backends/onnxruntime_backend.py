"""ONNX Runtime backend: runs an ONNX file from `tsjnet export` with the best execution provider present."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tsjnet_sdk.hashing import file_sha256
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
    opts.execution_mode = (ort.ExecutionMode.ORT_SEQUENTIAL if options.execution_mode == "sequential"
                           else ort.ExecutionMode.ORT_PARALLEL)
    if options.denormal_as_zero:
        opts.add_session_config_entry("session.set_denormal_as_zero", "1")
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


def optimized_model(path: Path, options: OrtOptions, providers: Sequence[str]) -> Path:
    """The cached ORT-optimised graph of ``path`` (built now if missing) in ``options.optimized_model_cache``.

    Keyed by the model's SHA-256, the ORT version, the optimisation level and the providers: an
    optimised graph is specific to all of them. Written under a temporary name and renamed, so a
    crash never leaves a half file that a later session would load.
    """
    import hashlib
    import os

    import onnxruntime as ort

    from tsjnet_sdk.atomic import atomic_path

    # ORT's "all" level bakes CPU-specific layouts (NCHWc) into the saved graph: the CPU is in the key too.
    key = hashlib.sha256(
        f"{file_sha256(path)}|{ort.__version__}|{options.graph_optimization}|{','.join(providers)}|{_cpu_name()}".encode()
    ).hexdigest()[:16]
    cache_dir = options.cache_dir()
    assert cache_dir is not None
    out = cache_dir / f"{path.stem}.ortopt-{key}.onnx"
    if not out.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            opts = session_options(options)
            opts.optimized_model_filepath = os.fspath(tmp)
            opts.log_severity_level = 3  # the "hardware specific optimizations" warning: the key covers it
            ort.InferenceSession(str(path), opts, providers=list(providers))
    return out


def static_shape_of(session: Any) -> tuple[int, int, int] | None:
    """(N, H, W) of a session whose input ``ir`` has a fixed shape, else None."""
    shape = session.get_inputs()[0].shape
    return tuple(shape[i] for i in (0, 2, 3)) if all(isinstance(shape[i], int) for i in (0, 2, 3)) else None


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    thread_safe = True  # InferenceSession.run is documented thread-safe

    def __init__(self, path: Path, device: str = "auto", options: OrtOptions | None = None) -> None:
        if not onnxruntime_available():
            raise BackendUnavailable("the onnxruntime backend needs onnxruntime: pip install 'tsjnet-sdk[onnx]'")
        import onnxruntime as ort

        options = options or OrtOptions()
        providers = choose_providers(device, options.providers)
        provider_opts = provider_options_for(providers, options, device)
        self.options = options
        try:
            if options.cache_dir() is not None and options.graph_optimization != "disabled":
                # The saved graph is already optimised: basic passes only, so nothing is redone at load.
                load_path, opts = optimized_model(path, options, providers), session_options(options, "basic")
            else:
                load_path, opts = path, session_options(options)
            self.session = ort.InferenceSession(str(load_path), opts, providers=providers, provider_options=provider_opts)
        except Exception as e:  # noqa: BLE001 - ORT raises its own exception types
            message = str(e)
            if CUSTOM_NODE_DOMAIN in message or "NeighborhoodAttention2D" in message:
                raise BackendUnavailable(
                    f"{path}: this ONNX uses the tsjnet NeighborhoodAttention2D custom node (exported with --na plugin, "
                    "for TensorRT); export with --na decomposed to run it in ONNX Runtime"
                ) from None
            raise BackendUnavailable(f"{path}: ONNX Runtime cannot load this model ({message.splitlines()[0]})") from None
        names = {i.name for i in self.session.get_inputs()}
        if names != {"ir", "vis"}:
            raise BackendUnavailable(f"{path}: inputs are {sorted(names)}, expected 'ir' and 'vis' (a tsjnet export)")
        self.provider = self.session.get_providers()[0]
        super().__init__(path, "cuda" if self.provider in GPU_PROVIDERS else "cpu")
        from tsjnet_sdk.artifact_metadata import ArtifactMetadata, ArtifactMetadataError

        try:
            self.metadata = ArtifactMetadata.from_props(self.session.get_modelmeta().custom_metadata_map, f"{path}")
        except ArtifactMetadataError as e:
            raise BackendUnavailable(str(e)) from None
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
