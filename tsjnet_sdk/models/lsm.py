"""LSM (a.k.a. MDM): the two feature branches applied to the shared feature S.

* NAT branch ("base" features, ``BaseFeatureExtraction`` in the official code): a whole NAT-mini
  backbone, downsampling by 32 and upsampling back with transposed convs, added to its input.
* DSM branch ("detail" features, ``DetailFeatureExtraction``): a local conv path with a residual
  "COA" unit plus a dual-pooling channel-attention path.

The same classes serve as the fuse layers (separate instances).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tsjnet_sdk.models.config import TSJNetConfig
from tsjnet_sdk.models.layers import ChannelLayerNorm, DropPath, conv1x1, conv3x3, mean_float32
from tsjnet_sdk.ops import neighborhood_attention_2d


class NeighborhoodAttention2D(nn.Module):
    """Multi-head 2-D neighborhood attention on channels-last maps [B, H, W, C] (NATTEN <= 0.15 layout
    of parameters: qkv, rpb [heads, 2k-1, 2k-1], proj)."""

    def __init__(self, dim: int, num_heads: int, kernel_size: int, dilation: int = 1, rpb: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.qkv = nn.Linear(dim, dim * 3)
        self.rpb = nn.Parameter(torch.zeros(num_heads, 2 * kernel_size - 1, 2 * kernel_size - 1)) if rpb else None
        if self.rpb is not None:
            nn.init.trunc_normal_(self.rpb, std=0.02)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        qkv = self.qkv(x).unflatten(-1, (3, self.num_heads, -1))  # [B, H, W, 3, heads, D]
        # Indexing, not unbind(): unbind exports as an ONNX sequence op, which TensorRT rejects.
        q, k, v = qkv[:, :, :, 0], qkv[:, :, :, 1], qkv[:, :, :, 2]
        out = neighborhood_attention_2d(q, k, v, self.kernel_size, self.dilation, self.rpb)
        return self.proj(out.flatten(-2))

    def extra_repr(self) -> str:
        return f"heads={self.num_heads}, kernel_size={self.kernel_size}, dilation={self.dilation}"


class NATLayer(nn.Module):
    """Pre-norm transformer layer: x + NA(LN(x)), then x + MLP(LN(x)); channels-last."""

    def __init__(self, dim: int, heads: int, cfg: TSJNetConfig, dilation: int, drop_path: float) -> None:
        super().__init__()
        hidden = int(dim * cfg.nat_mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = NeighborhoodAttention2D(dim, heads, cfg.nat_kernel_size, dilation, rpb=cfg.nat_rpb)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class NATMini(nn.Module):
    """NAT backbone with an upsampling head: [B, C, H, W] -> [B, C, H, W] in [0, 6], H and W multiples of 32.

    Tokenizer (/4) -> 4 levels of NATLayers with conv downsamplers (/2 each, 3 of them) -> conv head ->
    3 transposed convs (x4, x4, x2) -> ReLU6. No skip connections (official design, spec §2.2).
    The official code also builds an unused final norm, avgpool and conv_head; they are not built here.
    """

    def __init__(self, channels: int, cfg: TSJNetConfig) -> None:
        super().__init__()
        embed = cfg.nat_embed_dim
        self.tokenizer = nn.Sequential(conv3x3(channels, embed // 2, stride=2), conv3x3(embed // 2, embed, stride=2))
        self.tokenizer_norm = nn.LayerNorm(embed)
        rates = torch.linspace(0, cfg.drop_path_rate, sum(cfg.nat_depths)).tolist()
        self.levels = nn.ModuleList()
        self.downsamplers = nn.ModuleList()
        layer_index = 0
        for level, (depth, heads, dilation) in enumerate(zip(cfg.nat_depths, cfg.nat_heads, cfg.nat_dilations)):
            dim = embed * 2**level
            layers = [NATLayer(dim, heads, cfg, dilation, rates[layer_index + i]) for i in range(depth)]
            layer_index += depth
            self.levels.append(nn.Sequential(*layers))
            if level < len(cfg.nat_depths) - 1:
                self.downsamplers.append(
                    nn.ModuleDict({"conv": conv3x3(dim, 2 * dim, bias=False, stride=2), "norm": nn.LayerNorm(2 * dim)})
                )
        top = embed * 2 ** (len(cfg.nat_depths) - 1)
        self.head = nn.Sequential(
            conv3x3(top, 2 * channels),
            nn.ReLU6(inplace=True),
            conv3x3(2 * channels, channels),
            nn.ReLU6(inplace=True),
            nn.ConvTranspose2d(channels, channels, 4, stride=4, bias=False),
            nn.ConvTranspose2d(channels, channels, 4, stride=4, bias=False),
            nn.ConvTranspose2d(channels, channels, 2, stride=2, bias=False),
            nn.ReLU6(inplace=True),
        )
        self.apply(_init_nat_weights)

    def forward(self, x: Tensor) -> Tensor:
        x = self.tokenizer_norm(self.tokenizer(x).permute(0, 2, 3, 1))  # channels-last from here
        for level, layers in enumerate(self.levels):
            x = layers(x)
            if level < len(self.downsamplers):
                down = self.downsamplers[level]
                x = down["norm"](down["conv"](x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))
        return self.head(x.permute(0, 3, 1, 2))


def _init_nat_weights(m: nn.Module) -> None:
    # NAT's init: trunc-normal linears, unit LayerNorms; convs keep PyTorch defaults.
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class NATBranch(nn.Module):
    """Base features: S + NATMini(LN_c(S)); [B, C, H, W] -> [B, C, H, W]."""

    def __init__(self, channels: int, cfg: TSJNetConfig) -> None:
        super().__init__()
        self.norm = ChannelLayerNorm(channels)
        self.nat = NATMini(channels, cfg)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.nat(self.norm(x))


class DSMBranch(nn.Module):
    """Detail features: local(x) + channel_attention_path(x); [B, C, H, W] -> [B, C, H, W], H, W even.

    Deviations from the official code, same function: its channel-attention path runs the same 3x3
    conv twice on the same input (computed once here), and its unused SpatialAttention is not built.
    """

    def __init__(self, channels: int, cfg: TSJNetConfig) -> None:
        super().__init__()
        c = channels
        self.local_in = nn.Sequential(conv3x3(c, c, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.coa = conv1x1(c, c)  # residual "COA" unit: f + ReLU(1x1(f))
        self.local_out = nn.Sequential(
            conv3x3(c, c, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
            nn.Dropout2d(cfg.dsm_dropout),
            conv1x1(c, c),
        )
        self.pool_conv = conv3x3(c, c)
        self.channel_fc = nn.Sequential(
            nn.Linear(c, c // cfg.dsm_reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(c // cfg.dsm_reduction, c, bias=False),
            nn.Sigmoid(),
        )
        self.upsample = nn.ConvTranspose2d(c, c, 2, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        f = self.local_in(x)
        local = self.local_out(f + F.relu(self.coa(f)))
        t = F.leaky_relu(self.pool_conv(x), 0.2)
        pooled = F.max_pool2d(t, 2, 2, ceil_mode=True) + F.avg_pool2d(t, 2, 2, ceil_mode=True)
        weights = self.channel_fc(mean_float32(pooled, (2, 3)))  # [B, C]
        return local + self.upsample(pooled * weights[:, :, None, None])
