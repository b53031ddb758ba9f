"""FP16 preparation of a TSJNet for export: half weights and activations, float32 where it matters.

TensorRT >= 11 and TensorRT-RTX are strongly typed (no FP16 builder flag), so the precision has to be
in the graph itself. We convert in PyTorch, before export, rather than rewriting the ONNX graph:
the exporter then types every tensor consistently.

Kept in float32 (inputs cast up, outputs cast back to fp16):
  * layer norms (``nn.LayerNorm``: mean/variance over 64..512 channels);
  * ``nn.Sigmoid`` modules (the DSM channel gate and the final output sigmoid);
  * in the model code itself (tsjnet_sdk.models.layers): the split-attention softmax and its global
    average pool, the decoder's spatial-attention sigmoid, the DSM's mean pooling;
  * neighborhood attention: logits, softmax and the weighted sum (the op computes in float32 for
    fp16 inputs; the plugin kernel does the same);
  * the graph's inputs and output stay float32 (cast at the edges).
"""

from __future__ import annotations

import copy

from torch import Tensor, nn

# What metadata and the parity report say was kept in float32.
KEPT_FLOAT32 = (
    "io",
    "layer_norm",
    "sigmoid",
    "softmax",
    "mean_pooling",
    "neighborhood_attention_accumulation",
)


class Float32Island(nn.Module):
    """Runs ``module`` in float32 on a half-precision input and returns half precision."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module.float()

    def forward(self, x: Tensor) -> Tensor:
        return self.module(x.float()).to(x.dtype)


def _wrap_sensitive(parent: nn.Module) -> None:
    for name, child in parent.named_children():
        if isinstance(child, (nn.LayerNorm, nn.Sigmoid)):
            setattr(parent, name, Float32Island(child))
        else:
            _wrap_sensitive(child)


def to_fp16(model: nn.Module) -> nn.Module:
    """A half-precision copy of ``model`` (eval mode) with the float32 islands above; ``model`` is untouched."""
    half = copy.deepcopy(model).eval().half()
    _wrap_sensitive(half)
    return half
