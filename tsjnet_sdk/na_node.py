"""The contract of the custom ONNX node ``tsjnet::NeighborhoodAttention2D`` (``--na plugin`` exports).

One place, imported by the exporter (which writes the node), the onnxruntime-extensions test op
(which runs it on CPU) and the TensorRT plugin (which implements it), so that they cannot disagree.
Imports nothing heavy.

Node:
    domain ``tsjnet``, op_type ``NeighborhoodAttention2D``, opset version 1 of that domain.
Inputs:
    q, k, v: [B, H, W, heads, head_dim], float32 or float16 (all three the same), contiguous;
    rpb (optional 4th input): [heads, 2k-1, 2k-1], float32 or the q dtype.
Attributes:
    kernel_size (int, odd >= 1), dilation (int >= 1), scale (float, the logit scale; head_dim ** -0.5).
Output:
    [B, H, W, heads, head_dim], q's dtype.
Semantics: exactly ``tsjnet_sdk.ops.neighborhood_attention_2d`` (NATTEN's border rule, dilation
groups, windows that shrink to maps smaller than the window, rpb indexed at (key - query)/d + k - 1).
"""

from __future__ import annotations

DOMAIN = "tsjnet"
OP_TYPE = "NeighborhoodAttention2D"
DOMAIN_VERSION = 1
QUALIFIED_NAME = f"{DOMAIN}::{OP_TYPE}"  # the form torch.onnx.ops.symbolic and tensorrt.plugin use
ATTRIBUTES = ("kernel_size", "dilation", "scale")
INPUTS = ("q", "k", "v")
OPTIONAL_INPUTS = ("rpb",)
OUTPUTS = ("out",)
