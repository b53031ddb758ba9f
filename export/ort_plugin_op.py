"""Run a ``--na plugin`` ONNX graph on CPU: onnxruntime-extensions Python custom ops that implement
``tsjnet::NeighborhoodAttention2D`` with the PyTorch reference op.

This is a test and parity path (the production implementation of the node is the TensorRT plugin
of kernels/). onnxruntime-extensions registers Python ops in its own domain with a fixed input list and float32
only (its Python API aborts the process on float16), so an in-memory copy of the graph is rewritten:
domain -> ``ai.onnx.contrib``, op type -> the variant with or without rpb, and fp16 nodes get Cast
nodes to float32 and back around them (the reference computes in float32 anyway).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from tsjnet_sdk import na_node

CONTRIB_DOMAIN = "ai.onnx.contrib"
_registered = False


def _variant(with_rpb: bool) -> str:
    return f"{na_node.OP_TYPE}{'_rpb' if with_rpb else ''}"


def _run_reference(q: np.ndarray, k: np.ndarray, v: np.ndarray, rpb: np.ndarray | None, attrs: dict[str, Any]) -> np.ndarray:
    import torch

    from tsjnet_sdk.ops._na_reference import neighborhood_attention_2d_reference

    t = [torch.from_numpy(np.ascontiguousarray(x)) for x in (q, k, v)]
    bias = None if rpb is None else torch.from_numpy(np.ascontiguousarray(rpb))
    out = neighborhood_attention_2d_reference(*t, int(attrs["kernel_size"]), int(attrs["dilation"]), bias, float(attrs["scale"]))
    return out.numpy()


def register_reference_ops() -> None:
    """Register the two Python custom ops (with / without rpb) once per process."""
    global _registered
    if _registered:
        return
    from onnxruntime_extensions import PyCustomOpDef, onnx_op

    attrs = {"kernel_size": PyCustomOpDef.dt_int64, "dilation": PyCustomOpDef.dt_int64, "scale": PyCustomOpDef.dt_float}
    f32 = PyCustomOpDef.dt_float

    @onnx_op(op_type=_variant(False), inputs=[f32] * 3, outputs=[f32], attrs=attrs)
    def _plain(q, k, v, **kw):
        return _run_reference(q, k, v, None, kw)

    @onnx_op(op_type=_variant(True), inputs=[f32] * 4, outputs=[f32], attrs=attrs)
    def _with_rpb(q, k, v, rpb, **kw):
        return _run_reference(q, k, v, rpb, kw)

    _registered = True


def rewrite_for_reference_ops(model: Any) -> int:
    """Point every NA node of ``model`` (an onnx.ModelProto, edited in place) at the Python ops; returns the count."""
    import onnx

    types = {vi.name: vi.type.tensor_type.elem_type for vi in list(model.graph.value_info) + list(model.graph.input)}
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    types.update({vi.name: vi.type.tensor_type.elem_type for vi in inferred.graph.value_info})
    from onnx import TensorProto, helper

    count = 0
    nodes = []
    for node in model.graph.node:
        if node.domain == na_node.DOMAIN and node.op_type == na_node.OP_TYPE:
            count += 1
            node.op_type = _variant(len(node.input) > 3 and bool(node.input[3]))
            node.domain = CONTRIB_DOMAIN
            if types.get(node.input[0], TensorProto.FLOAT) == TensorProto.FLOAT16:
                for i, name in enumerate(list(node.input)):
                    up = f"{name}__na_f32_{count}"
                    nodes.append(helper.make_node("Cast", [name], [up], to=TensorProto.FLOAT))
                    node.input[i] = up
                out = node.output[0]
                node.output[0] = f"{out}__na_f32"
                nodes += [node, helper.make_node("Cast", [node.output[0]], [out], to=TensorProto.FLOAT16)]
                continue
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    if not any(o.domain == CONTRIB_DOMAIN for o in model.opset_import):
        model.opset_import.add(domain=CONTRIB_DOMAIN, version=1)
    return count


def plugin_session(path: str | os.PathLike) -> Any:
    """An onnxruntime CPU session for a ``--na plugin`` graph, NA nodes run by the reference op."""
    import onnx
    import onnxruntime as ort
    from onnxruntime_extensions import get_library_path

    register_reference_ops()
    model = onnx.load(str(path))
    if rewrite_for_reference_ops(model) == 0:
        raise ValueError(f"{path}: no {na_node.QUALIFIED_NAME} node found (not a --na plugin export)")
    opts = ort.SessionOptions()
    opts.register_custom_ops_library(get_library_path())
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
