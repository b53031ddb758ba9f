"""TensorRT backend: runs a tsjnet engine file (header + serialized engine) with `tensorrt` or
`tensorrt_rtx`, memory through cuda-python (one stream, pinned host buffers reused across calls).

Needs an NVIDIA GPU; on other machines loading fails with a clear BackendUnavailable. Engines built with
``--na plugin`` need their NA plugin registered before deserialisation: the compiled library recorded in
the header (given as ``plugin_library``, or ``$TSJNET_TRT_PLUGIN``, or at ``tsjnet build-plugin``'s
default location; its SHA-256 must match the header) or the Python AOT plugin. A missing or different
library makes the backend unavailable with the reason, before TensorRT sees the engine.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import numpy as np

from tsjnet_sdk.artifact_metadata import ArtifactMetadata, ArtifactMetadataError
from tsjnet_sdk.runtime.artifacts import require_tsjnet_metadata
from tsjnet_sdk.runtime.backends.base import Backend, BackendUnavailable
from tsjnet_sdk.runtime.options import TensorRTOptions

# TensorRT lookup and facts live in one leaf module shared with export and kernels (no import cycle).
from tsjnet_sdk.tensorrt_env import (  # noqa: F401 - re-exported: the backend's public names
    FLAVOURS,
    INSTALL_HINT,
    NO_PLUGINS,
    PLUGIN_FLAVOURS,
    _cuda_check,
    gpu_compute_capability,
    import_tensorrt,
    plugins_supported,
    tensorrt_installed,
)


def prepare_plugin(trt: Any, header: dict[str, Any], path: Path, library: str | Path | None = None) -> Path | None:
    """Register the NA plugin an engine needs (none for ``--na decomposed``); the library loaded, if any.

    Raises:
        BackendUnavailable: the plugin cannot be provided (library missing, a different build of it,
            TensorRT refused it, or the AOT plugin unavailable), with the reason and the fix.
    """
    if header.get("na_mode") != "plugin":
        return None
    try:
        from tsjnet_sdk.kernels.trt_plugin import PluginUnavailable, register_na_plugin
        from tsjnet_sdk.kernels.trt_plugin_lib import load_library, runtime_library
    except ImportError:
        raise BackendUnavailable(
            f"{path}: the engine uses the tsjnet NeighborhoodAttention2D plugin, whose support (tsjnet_sdk.kernels) "
            "is not in this install; reinstall tsjnet-sdk, or rebuild the engine with --na decomposed"
        ) from None
    plugin = header.get("na_plugin") or {"implementation": "qdp"}  # engines from before the library: QDP
    try:
        if plugin.get("implementation") == "library":
            lib = runtime_library(plugin, library)
            load_library(trt, lib)
            return lib
        register_na_plugin(header.get("trt_flavour"))
        return None
    except PluginUnavailable as e:
        raise BackendUnavailable(f"{path}: NA plugin unavailable: {e}") from None


class _DeviceBuffer:
    """A device allocation and a pinned host mirror, grown on demand and reused."""

    def __init__(self, cudart: Any) -> None:
        self.cudart, self.nbytes, self.device_ptr, self.host_ptr = cudart, 0, 0, 0

    def ensure(self, nbytes: int) -> None:
        if nbytes <= self.nbytes:
            return
        self.free()
        self.device_ptr = _cuda_check(self.cudart.cudaMalloc(nbytes), "cudaMalloc")
        self.host_ptr = _cuda_check(self.cudart.cudaMallocHost(nbytes), "cudaMallocHost")
        self.nbytes = nbytes

    def host_array(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        count = int(np.prod(shape))
        raw = (ctypes.c_byte * (count * np.dtype(dtype).itemsize)).from_address(int(self.host_ptr))
        return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape)

    def free(self) -> None:
        if self.nbytes:
            self.cudart.cudaFree(self.device_ptr)
            self.cudart.cudaFreeHost(self.host_ptr)
            self.nbytes = 0


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(
        self,
        path: Path,
        device: str = "auto",
        options: TensorRTOptions | None = None,
        plugin_library: str | Path | None = None,
        allow_foreign_model: bool = False,
    ) -> None:
        from tsjnet_sdk.engine_format import EngineIncompatibleError, check_engine_compatible, read_engine_file

        if device == "cpu":
            raise BackendUnavailable("TensorRT engines run on NVIDIA GPUs only; use an ONNX file for device='cpu'")
        self.options = options or TensorRTOptions()
        plugin_library = plugin_library or self.options.plugin_library
        header, engine_bytes = read_engine_file(path)
        try:  # before TensorRT is imported: an engine without tsjnet metadata is refused on any machine
            require_tsjnet_metadata(ArtifactMetadata.from_header(header, str(path)), path, allow_foreign_model)
        except ArtifactMetadataError as e:
            raise BackendUnavailable(str(e)) from None
        flavour = header.get("trt_flavour")
        trt = import_tensorrt(flavour)
        # Version first (needs no GPU), then the GPU itself and its compute capability.
        try:
            check_engine_compatible(header, flavour, trt.__version__, None)
            # The plugin before the GPU: a missing library is reported on any machine.
            self.plugin_library = prepare_plugin(trt, header, path, plugin_library)
            capability = gpu_compute_capability(int(device.split(":")[1]) if ":" in device else 0)
            if capability is None:
                raise BackendUnavailable(f"{path}: no usable NVIDIA GPU/driver found; TensorRT engines need one")
            check_engine_compatible(header, flavour, trt.__version__, capability)
        except EngineIncompatibleError as e:
            raise BackendUnavailable(f"{path}: {e}") from None
        from cuda.bindings import runtime as cudart

        super().__init__(path, device if device != "auto" else "cuda")
        self.header = header
        self.metadata = ArtifactMetadata.from_header(header, str(path))
        self.cudart = cudart
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise BackendUnavailable(f"{path}: TensorRT could not deserialize the engine (see the TensorRT log above)")
        self.context = self.engine.create_execution_context()
        self.stream = _cuda_check(cudart.cudaStreamCreate(), "cudaStreamCreate")
        if self.options.profile_index:
            if self.options.profile_index >= self.engine.num_optimization_profiles:
                raise BackendUnavailable(
                    f"{path}: TensorRTOptions(profile_index={self.options.profile_index}) but the engine has "
                    f"{self.engine.num_optimization_profiles} optimisation profile(s)"
                )
            self.context.set_optimization_profile_async(self.options.profile_index, int(self.stream))
        self.buffers = {name: _DeviceBuffer(cudart) for name in ("ir", "vis", "fused")}
        self.trt_version = trt.__version__

    def run(self, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
        if self.forked():
            raise self.fork_error("its CUDA context, stream and buffers do not exist in a forked child")
        cudart, stream = self.cudart, self.stream
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for name, array in (("ir", ir), ("vis", vis)):
            buf = self.buffers[name]
            buf.ensure(array.nbytes)
            buf.host_array(array.shape, np.float32)[...] = array
            _cuda_check(cudart.cudaMemcpyAsync(buf.device_ptr, buf.host_ptr, array.nbytes, h2d, stream), "cudaMemcpyAsync")
            if not self.context.set_input_shape(name, tuple(array.shape)):
                raise ValueError(
                    f"input shape {tuple(array.shape)} is outside the engine's profile {self.header.get('profile')}; "
                    "rebuild with wider --min/--max or use tiling (tile=...)"
                )
            self.context.set_tensor_address(name, int(buf.device_ptr))
        out = self.buffers["fused"]
        out.ensure(ir.nbytes)
        self.context.set_tensor_address("fused", int(out.device_ptr))
        if not self.context.execute_async_v3(int(stream)):
            raise RuntimeError("TensorRT execution failed (see the TensorRT log above)")
        _cuda_check(cudart.cudaMemcpyAsync(out.host_ptr, out.device_ptr, ir.nbytes, d2h, stream), "cudaMemcpyAsync")
        _cuda_check(cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize")
        return out.host_array(ir.shape, np.float32).copy()

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "trt": f"{self.header.get('trt_flavour')} {self.trt_version}",
            "precision": self.metadata.precision,
            "na_mode": self.metadata.na_mode,
            **({"na_plugin": str(self.plugin_library)} if self.plugin_library else {}),
            "profile": self.metadata.profile,
        }

    def close(self) -> None:
        for buf in self.buffers.values():
            buf.free()
        self.cudart.cudaStreamDestroy(self.stream)
