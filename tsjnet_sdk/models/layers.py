"""Building blocks shared by the encoder and the decoder: ResNeSt trunk, layer norms, drop path,
grouped spatial attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def conv3x3(in_ch: int, out_ch: int, bias: bool = True, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=bias)


def conv1x1(in_ch: int, out_ch: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 1, bias=bias)


# Numerically sensitive ops run in float32 whatever the model's dtype (an fp16 export or fp16 eager
# inference), and the result returns to that dtype. For float32 models these casts are no-ops and do
# not appear in an exported graph. (Layer norms and nn.Sigmoid modules get the same treatment in
# tsjnet_sdk.export.precision; neighborhood attention computes in float32 by itself.)
def softmax_float32(x: Tensor, dim: int) -> Tensor:
    return x.float().softmax(dim=dim).to(x.dtype)


def sigmoid_float32(x: Tensor) -> Tensor:
    return torch.sigmoid(x.float()).to(x.dtype)


def mean_float32(x: Tensor, dims: tuple[int, ...], keepdim: bool = False) -> Tensor:
    return x.float().mean(dim=dims, keepdim=keepdim).to(x.dtype)


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel dim of a channels-first map [B, C, H, W] (Restormer "WithBias")."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch per sample in training."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: Tensor) -> Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class SplitAttention(nn.Module):
    """ResNeSt split-attention conv (cardinality 1) as in the official TSJNet code.

    Quirk kept from the official code (spec §2.1): fc2 is followed by BN + ReLU, so the radix logits
    are >= 0 before the softmax. Needs batch > 1 in training (BN on 1x1 pooled features).
    """

    def __init__(self, channels: int, radix: int = 2, reduction: int = 4, min_inter: int = 32) -> None:
        super().__init__()
        self.radix = radix
        inter = max(min_inter, channels * radix // reduction)
        self.radix_conv = nn.Sequential(
            nn.Conv2d(channels, channels * radix, 3, padding=1, groups=radix),
            nn.BatchNorm2d(channels * radix),
            nn.ReLU(inplace=True),
        )
        self.fc1 = nn.Sequential(conv1x1(channels, inter, bias=False), nn.BatchNorm2d(inter), nn.ReLU(inplace=True))
        self.fc2 = nn.Sequential(
            conv1x1(inter, channels * radix, bias=False), nn.BatchNorm2d(channels * radix), nn.ReLU(inplace=True)
        )

    def forward(self, x: Tensor) -> Tensor:
        y = self.radix_conv(x)
        c = y.shape[1] // self.radix
        # Slices, not chunk(): chunk exports as an ONNX sequence (SplitToSequence), which TensorRT rejects.
        splits = [y[:, r * c : (r + 1) * c] for r in range(self.radix)]  # radix x [B, C, H, W]
        gap = mean_float32(sum(splits), (2, 3), keepdim=True)  # [B, C, 1, 1]
        logits = self.fc2(self.fc1(gap))  # [B, radix*C, 1, 1], radix-major
        weights = softmax_float32(logits.unflatten(1, (self.radix, -1)), dim=1)  # softmax over radix
        return sum(split * weights[:, r] for r, split in enumerate(splits))


class ResNeStBottleneck(nn.Module):
    """Bottleneck: 1x1 -> split-attention 3x3 -> 1x1 (x4), residual. Stride 1 everywhere.

    Quirk kept (spec §2.1): the projection shortcut starts with a 3x3 stride-1 max-pool.
    """

    expansion = 4

    def __init__(self, in_ch: int, width: int, radix: int) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Sequential(conv1x1(in_ch, width), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.conv2 = SplitAttention(width, radix=radix)
        self.conv3 = nn.Sequential(conv1x1(width, out_ch), nn.BatchNorm2d(out_ch))
        self.shortcut: nn.Module = nn.Identity()
        if in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.MaxPool2d(3, stride=1, padding=1), conv1x1(in_ch, out_ch, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.shortcut(x) + self.conv3(self.conv2(self.conv1(x))))


class ResNeStTrunk(nn.Module):
    """Deep stem (3 convs, full resolution) + ``blocks`` bottlenecks: [B, in, H, W] -> [B, 4*width, H, W]."""

    def __init__(self, in_ch: int, width: int, blocks: int, radix: int) -> None:
        super().__init__()
        half = width // 2

        def conv_bn_relu(i: int, o: int) -> list[nn.Module]:
            return [conv3x3(i, o), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

        self.stem = nn.Sequential(*conv_bn_relu(in_ch, half), *conv_bn_relu(half, half), *conv_bn_relu(half, width))
        self.blocks = nn.Sequential(*[ResNeStBottleneck(width if i == 0 else width * 4, width, radix) for i in range(blocks)])
        self.out_channels = width * ResNeStBottleneck.expansion

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(self.stem(x))


class GroupedSpatialAttention(nn.Module):
    """The decoder's "meta-learning / data-agnostic spatial attention" (spec §2.4).

    Channels are split into ``groups``; each group gets its own sigmoid map from a 1x1 conv of that
    group and is multiplied by it. Implemented as one grouped 1x1 conv (same parameters as the official
    per-group convs). Returns the gated map [B, C, H, W] and the maps [B, groups, H, W] in (0, 1).
    """

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.groups = groups
        self.to_maps = nn.Conv2d(channels, groups, 1, groups=groups)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        maps = sigmoid_float32(self.to_maps(x))  # [B, G, H, W]
        gated = x.unflatten(1, (self.groups, -1)) * maps.unsqueeze(2)  # [B, G, C/G, H, W]
        return gated.flatten(1, 2), maps
