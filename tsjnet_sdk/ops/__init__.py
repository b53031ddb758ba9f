"""Torch ops of the SDK (imports torch). The neighborhood-attention op and its backend choice."""

from tsjnet_sdk.ops.neighborhood_attention import (
    BACKENDS,
    auto_cuda_kernel_enabled,
    available_backends,
    describe_gpu_choice,
    get_na_backend,
    na_backend,
    neighborhood_attention_2d,
    onnx_export_mode,
    register_cuda_kernel,
    set_auto_cuda_kernel,
    set_na_backend,
)

__all__ = [
    "BACKENDS",
    "auto_cuda_kernel_enabled",
    "available_backends",
    "describe_gpu_choice",
    "get_na_backend",
    "na_backend",
    "neighborhood_attention_2d",
    "onnx_export_mode",
    "register_cuda_kernel",
    "set_auto_cuda_kernel",
    "set_na_backend",
]
