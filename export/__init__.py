"""tsjnet_sdk.export: checkpoint -> ONNX -> TensorRT engine (``tsjnet export``).

    from tsjnet_sdk.export import export_onnx, build_engine
    export_onnx("model.safetensors", "model.onnx")                  # fp32, decomposed NA, dynamic N/H/W
    export_onnx("model.safetensors", "model_fp16.onnx", fp16=True)
    build_engine("model.safetensors", "model.engine", fp16=True)     # tensorrt or tensorrt_rtx

Modules: onnx_export (graph, metadata, checks), precision (fp16 preparation), parity (onnxruntime vs
PyTorch), ort_plugin_op (run ``--na plugin`` graphs on CPU), engine_export (TensorRT), cli.
Names resolve lazily so that the CLI can import this package without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "export_onnx": "tsjnet_sdk.export.onnx_export",
    "ExportError": "tsjnet_sdk.export.onnx_export",
    "ExportResult": "tsjnet_sdk.export.onnx_export",
    "DEFAULT_OPSET": "tsjnet_sdk.export.onnx_export",
    "build_engine": "tsjnet_sdk.export.engine_export",
    "check_parity": "tsjnet_sdk.export.parity",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tsjnet_sdk.export' has no attribute {name!r}")
