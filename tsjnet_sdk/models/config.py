"""TSJNet model configurations: one dataclass, small named factories (timm style).

This module does not import torch, so the runtime can read a checkpoint's or an artefact's config
without it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# The NAT branch downsamples by 4 (tokenizer) and 2 per later level, and its head upsamples by a fixed
# 4 * 4 * 2 = 32 with transposed convolutions, so the topology is fixed at four NAT levels.
NAT_LEVELS = 4
SIZE_MULTIPLE = 32
# Below this the 32x-downsampled NAT path has less than one pixel of real content per side.
MIN_INPUT_SIZE = SIZE_MULTIPLE


@dataclass(frozen=True)
class TSJNetConfig:
    """Widths and depths of a TSJNet. Defaults are the official architecture (spec §2).

    Every variant has the same topology: BRE encoder (ResNeSt trunk + refinement convs), LSM = NAT
    branch + DSM branch, separate fuse layers, BRD decoder with grouped spatial attention.
    """

    name: str = "tsjnet"
    # Encoder (BRE)
    stem_channels: int = 3  # patch_embed: 1 -> 3 channels, 3x3, no bias
    trunk_width: int = 128  # ResNeSt stem output and bottleneck group width; blocks output 4x this
    trunk_blocks: int = 2  # split-attention bottlenecks per ResNeSt trunk
    radix: int = 2  # split-attention radix (cardinality is 1 in TSJNet)
    refine_widths: tuple[int, ...] = (256, 128)  # 3x3 ReLU6 convs from 4*trunk_width down to feature_dim
    feature_dim: int = 64  # shared feature S and the base/detail features
    # LSM branch 1: NAT-mini
    nat_embed_dim: int = 64
    nat_depths: tuple[int, ...] = (3, 4, 6, 5)
    nat_heads: tuple[int, ...] = (2, 4, 8, 16)
    nat_kernel_size: int = 7
    nat_dilations: tuple[int, ...] = (1, 1, 1, 1)
    nat_mlp_ratio: float = 3.0
    nat_rpb: bool = True  # relative position bias (NATTEN <= 0.15, which the paper's code ran on)
    drop_path_rate: float = 0.2  # stochastic depth, linear from 0 over all NAT layers
    # LSM branch 2: DSM
    dsm_reduction: int = 2  # channel-attention reduction ratio
    dsm_dropout: float = 0.1  # Dropout2d before the last 1x1 conv of the local path
    # Decoder (BRD)
    attention_groups: int = 8  # spatial-attention groups; att maps are [B, groups, H, W]
    decoder_dim: int = 32  # 1x1 reduction before the decoder's ResNeSt trunk
    decoder_head_width: int = 256  # 3x3 conv between the trunk and the 1-channel output

    def __post_init__(self) -> None:
        # JSON round trips turn tuples into lists; normalise so configs compare equal.
        for f in ("refine_widths", "nat_depths", "nat_heads", "nat_dilations"):
            object.__setattr__(self, f, tuple(getattr(self, f)))
        problems = []
        for f in ("nat_depths", "nat_heads", "nat_dilations"):
            if len(getattr(self, f)) != NAT_LEVELS:
                problems.append(f"{f} needs {NAT_LEVELS} entries (one per NAT level), got {getattr(self, f)}")
        for level, heads in enumerate(self.nat_heads):
            dim = self.nat_embed_dim * 2**level
            if dim % heads:
                problems.append(f"NAT level {level}: dim {dim} is not divisible by {heads} heads")
        if self.nat_kernel_size % 2 == 0:
            problems.append(f"nat_kernel_size must be odd, got {self.nat_kernel_size}")
        if (2 * self.feature_dim) % self.attention_groups:
            problems.append(f"2*feature_dim ({2 * self.feature_dim}) must be divisible by attention_groups")
        if self.trunk_width % 2 or self.trunk_width % self.radix:
            problems.append(f"trunk_width must be even and divisible by radix, got {self.trunk_width}")
        if self.nat_embed_dim % 2:
            problems.append(f"nat_embed_dim must be even, got {self.nat_embed_dim}")
        if problems:
            raise ValueError("invalid TSJNetConfig: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TSJNetConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"config has unknown fields {unknown}: it was written by a newer tsjnet-sdk; upgrade the SDK")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> TSJNetConfig:
        return cls.from_dict(json.loads(text))


_CONFIGS: dict[str, Callable[[], TSJNetConfig]] = {}


def register_config(fn: Callable[[], TSJNetConfig]) -> Callable[[], TSJNetConfig]:
    """Register a named config factory; the config's ``name`` is its registry key."""
    _CONFIGS[fn().name] = fn
    return fn


def list_configs() -> list[str]:
    return sorted(_CONFIGS)


def get_config(name: str, **overrides: Any) -> TSJNetConfig:
    """The named config, with optional field overrides (e.g. ``nat_rpb=False``)."""
    if name not in _CONFIGS:
        raise KeyError(f"unknown TSJNet config {name!r}; available: {', '.join(list_configs())}")
    return dataclasses.replace(_CONFIGS[name](), **overrides)


@register_config
def tsjnet() -> TSJNetConfig:
    """The official TSJNet (45,116,015 used parameters with rpb; spec §6)."""
    return TSJNetConfig()


@register_config
def tsjnet_tiny() -> TSJNetConfig:
    """Same topology at toy widths (~0.2 M params): unit tests and smoke runs."""
    return TSJNetConfig(
        name="tsjnet-tiny",
        trunk_width=8,
        trunk_blocks=2,
        refine_widths=(16,),
        feature_dim=8,
        nat_embed_dim=8,
        nat_depths=(1, 1, 1, 1),
        nat_heads=(1, 1, 2, 2),
        drop_path_rate=0.0,
        dsm_reduction=2,
        decoder_dim=8,
        decoder_head_width=8,
    )


@register_config
def tsjnet_small() -> TSJNetConfig:
    """Same topology at a quarter of the official widths and shallow NAT: fast CPU experiments."""
    return TSJNetConfig(
        name="tsjnet-small",
        trunk_width=32,
        refine_widths=(64, 32),
        feature_dim=16,
        nat_embed_dim=32,
        nat_depths=(1, 1, 2, 1),
        nat_heads=(1, 2, 4, 8),
        drop_path_rate=0.1,
        decoder_dim=16,
        decoder_head_width=64,
    )


@register_config
def tsjnet_edge() -> TSJNetConfig:
    """Same topology scaled for edge devices: 2.8 M params, ~1/49 of tsjnet's FLOPs at 640x480.

    Widths follow the FLOP measurement (benchmarks/flops.py, docs/edge.md): 97 % of tsjnet's compute is
    full-resolution convolutions (the 512->256 refine and head 3x3 convs alone are 51 %), so the
    full-resolution widths shrink 4-8x (trunk 128 -> 16, refine (256, 128) -> (32,), features 64 -> 16,
    head 256 -> 32) while the NAT branch, which runs at 1/4 to 1/32 resolution and costs ~2 %, keeps
    head_dim 32 (heads = dim / 32, the CUDA kernel's main instantiation), kernel 7 and rpb, and only
    gets shallower (its deep levels hold most of the parameters, not the FLOPs).
    """
    return TSJNetConfig(
        name="tsjnet-edge",
        trunk_width=16,
        trunk_blocks=2,
        refine_widths=(32,),
        feature_dim=16,
        nat_embed_dim=32,
        nat_depths=(2, 2, 2, 1),
        nat_heads=(1, 2, 4, 8),  # dims 32, 64, 128, 256 -> head_dim 32 at every level
        nat_kernel_size=7,
        nat_mlp_ratio=2.0,
        nat_rpb=True,
        drop_path_rate=0.1,
        decoder_dim=16,
        decoder_head_width=32,
    )
