"""TSJNet: encoder (BRE), LSM branches, fuse layers, decoder (BRD). Spec: shared/design/tsjnet_spec.md §2.

Data flow (training and inference alike):
    base_v, detail_v = Enc(VIS);  base_i, detail_i = Enc(IR)            (one shared encoder)
    fused, att = Dec(BaseFuse(base_i + base_v), DetailFuse(detail_i + detail_v))
    training only: vis_recon = Dec(base_v, detail_v), ir_recon = Dec(base_i, detail_i)  (same decoder)

Fixes relative to the official code (each a bug there, spec §8 / §2.5):
  * any input size: inputs are reflection-padded to a multiple of 32 and outputs cropped back (the
    official net fails unless H, W are multiples of 32 and resizes test images to 512x512);
  * maps smaller than the 7x7 attention window work (the window shrinks, see tsjnet_sdk.ops);
  * the DSM's duplicated conv is computed once; parameters the official code builds but never uses
    (NAT norm/avgpool/conv_head, the DSM's spatial attention: 17,040 in the official config) are not
    built, so the official total of 45,133,055 becomes 45,116,015 (45,065,315 without rpb);
  * the output is the raw sigmoid image; the official inference's per-image min-max stretch is not
    applied (it is a display choice, spec §8.7).
Kept as designed: ReLU6 feature clipping, the ResNeSt quirks, BN that needs batch > 1 in training.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tsjnet_sdk.models.config import MIN_INPUT_SIZE, SIZE_MULTIPLE, TSJNetConfig
from tsjnet_sdk.models.layers import GroupedSpatialAttention, ResNeStTrunk, conv1x1, conv3x3
from tsjnet_sdk.models.lsm import DSMBranch, NATBranch


class Encoder(nn.Module):
    """BRE + LSM: [B, 1, H, W] in [0, 1] -> (base, detail), each [B, feature_dim, H, W]."""

    def __init__(self, cfg: TSJNetConfig) -> None:
        super().__init__()
        self.patch_embed = conv3x3(1, cfg.stem_channels, bias=False)
        self.trunk = ResNeStTrunk(cfg.stem_channels, cfg.trunk_width, cfg.trunk_blocks, cfg.radix)
        widths = (self.trunk.out_channels, *cfg.refine_widths, cfg.feature_dim)
        refine: list[nn.Module] = []
        for i, o in zip(widths[:-1], widths[1:]):
            refine += [conv3x3(i, o), nn.ReLU6(inplace=True)]
        self.refine = nn.Sequential(*refine)  # shared feature S, values in [0, 6]
        self.base = NATBranch(cfg.feature_dim, cfg)
        self.detail = DSMBranch(cfg.feature_dim, cfg)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        shared = self.refine(self.trunk(self.patch_embed(x)))
        return self.base(shared), self.detail(shared)


class Decoder(nn.Module):
    """BRD: (base, detail) [B, F, H, W] each -> (image [B, 1, H, W] in (0, 1), att [B, groups, H, W])."""

    def __init__(self, cfg: TSJNetConfig) -> None:
        super().__init__()
        self.attention = GroupedSpatialAttention(2 * cfg.feature_dim, cfg.attention_groups)
        self.reduce = conv1x1(2 * cfg.feature_dim, cfg.decoder_dim, bias=False)
        self.trunk = ResNeStTrunk(cfg.decoder_dim, cfg.trunk_width, cfg.trunk_blocks, cfg.radix)
        self.head = nn.Sequential(
            conv3x3(self.trunk.out_channels, cfg.decoder_head_width, bias=False),
            nn.LeakyReLU(0.01, inplace=True),
            conv3x3(cfg.decoder_head_width, 1, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, base: Tensor, detail: Tensor) -> tuple[Tensor, Tensor]:
        gated, att = self.attention(torch.cat([base, detail], dim=1))
        return self.head(self.trunk(self.reduce(gated))), att


class TSJNetOutput(NamedTuple):
    """Everything one forward produces; all maps have the input's H x W.

    fused: [B, 1, H, W] in (0, 1). attention: [B, groups, H, W] in (0, 1), from the fused decode
    (the diversity loss uses it). base_*/detail_*: encoder features [B, F, H, W]. ir_recon/vis_recon:
    [B, 1, H, W] decoder reconstructions, only with ``reconstruct=True`` (None otherwise).
    """

    fused: Tensor
    attention: Tensor
    base_ir: Tensor
    detail_ir: Tensor
    base_vis: Tensor
    detail_vis: Tensor
    ir_recon: Tensor | None = None
    vis_recon: Tensor | None = None


class TSJNet(nn.Module):
    """The fusion network. ``forward(ir, vis)`` -> :class:`TSJNetOutput`; ``fuse(ir, vis)`` -> fused only.

    Inputs: IR and visible luminance, float tensors [B, 1, H, W] with values in [0, 1], the same shape,
    H and W >= 32 (any size: padded to a multiple of 32 internally).
    """

    def __init__(self, cfg: TSJNetConfig) -> None:
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.base_fuse = NATBranch(cfg.feature_dim, cfg)
        self.detail_fuse = DSMBranch(cfg.feature_dim, cfg)
        self.decoder = Decoder(cfg)

    def forward(self, ir: Tensor, vis: Tensor, reconstruct: bool = False) -> TSJNetOutput:
        if not torch.compiler.is_compiling() and not torch.jit.is_tracing():
            check_input_pair(ir, vis)
        height, width = ir.shape[-2:]
        pad = _reflect_pad_amounts(height, width)
        ir_p, vis_p = F.pad(ir, pad, mode="reflect"), F.pad(vis, pad, mode="reflect")

        if self.training:
            base_vis, detail_vis = self.encoder(vis_p)
            base_ir, detail_ir = self.encoder(ir_p)
        else:
            # Inference: one encoder pass over both modalities stacked on the batch axis. The encoder is
            # per-sample in eval mode (BatchNorm on running statistics), so the values are the same, and an
            # exported graph holds the encoder once instead of twice (about a third fewer nodes).
            # (slices, not chunk(): chunk exports as an ONNX sequence op, which TensorRT rejects)
            n = vis_p.shape[0]
            base, detail = self.encoder(torch.cat([vis_p, ir_p]))
            base_vis, base_ir, detail_vis, detail_ir = base[:n], base[n:], detail[:n], detail[n:]
        fused, att = self.decoder(self.base_fuse(base_ir + base_vis), self.detail_fuse(detail_ir + detail_vis))
        ir_recon = vis_recon = None
        if reconstruct:
            vis_recon, _ = self.decoder(base_vis, detail_vis)
            ir_recon, _ = self.decoder(base_ir, detail_ir)

        def crop(x: Tensor | None) -> Tensor | None:
            return None if x is None else x[..., pad[2] : pad[2] + height, pad[0] : pad[0] + width]

        return TSJNetOutput(
            fused=crop(fused),
            attention=crop(att),
            base_ir=crop(base_ir),
            detail_ir=crop(detail_ir),
            base_vis=crop(base_vis),
            detail_vis=crop(detail_vis),
            ir_recon=crop(ir_recon),
            vis_recon=crop(vis_recon),
        )

    def fuse(self, ir: Tensor, vis: Tensor) -> Tensor:
        """Fused image only: [B, 1, H, W] in (0, 1)."""
        return self.forward(ir, vis).fused


def _reflect_pad_amounts(height: int, width: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) that bring H, W up to the next multiple of 32, split evenly."""
    pad_h, pad_w = (-height) % SIZE_MULTIPLE, (-width) % SIZE_MULTIPLE
    return (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)


def check_input_pair(ir: Tensor, vis: Tensor) -> None:
    """Raise a clear error unless ir and vis are float [B, 1, H, W] tensors of one shape, H, W >= 32."""
    for name, x in (("ir", ir), ("vis", vis)):
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor [B, 1, H, W], got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != 1:
            hint = ""
            if x.dim() < 4:
                hint = " (add the batch/channel dims: x[None, None] for an H x W image)"
            elif x.shape[1] == 3:
                hint = " (pass the visible image's luminance, not RGB)"
            raise ValueError(f"{name} must have shape [B, 1, H, W], got {list(x.shape)}{hint}")
        if not x.is_floating_point():
            raise TypeError(f"{name} has dtype {x.dtype}; the model takes floats in [0, 1] (e.g. x.float() / 255 for uint8)")
    if ir.shape != vis.shape:
        raise ValueError(
            f"ir and vis must have the same shape, got {list(ir.shape)} and {list(vis.shape)}: "
            "register/resize the pair to one size first"
        )
    if ir.dtype != vis.dtype:
        raise TypeError(f"ir and vis must have the same dtype, got {ir.dtype} and {vis.dtype}")
    if min(ir.shape[-2:]) < MIN_INPUT_SIZE:
        raise ValueError(
            f"input {ir.shape[-2]}x{ir.shape[-1]} is too small: TSJNet needs H, W >= {MIN_INPUT_SIZE} "
            "(its attention branch works at 1/32 resolution); upscale the pair"
        )
