"""Where a TSJNet's compute goes: FLOPs per module and per top-level part, at a given input size.

    tsjnet flops                                       # tsjnet vs tsjnet-edge at 640x480
    tsjnet flops --config tsjnet-small --height 256 --width 256
    tsjnet flops --write benchmarks/results/flops.md   (python -m tsjnet_sdk.benchmarks.flops: the same)

    from tsjnet_sdk.benchmarks.flops import count_flops
    report = count_flops("tsjnet", 480, 640)   # FlopReport; report.total, report.groups()

How it counts. The model is built on the CPU, moved to the ``meta`` device (no storage, no arithmetic)
and run once on a meta input of the requested size, so even the full model at 640x480 costs a few
seconds instead of a minute of real compute. Forward hooks read each layer's real input/output shapes
and count multiply-adds analytically; FLOPs = 2 x multiply-adds (the usual convention):

* ``Conv2d``: out.numel() * (C_in / groups) * kh * kw;
* ``ConvTranspose2d``: in.numel() * (C_out / groups) * kh * kw;
* ``Linear``: in.numel() * out_features;
* neighborhood attention (``NeighborhoodAttention2D``, the op ``tsjnet_sdk.ops.neighborhood_attention_2d``):
  q.k logits and the attention-weighted sum of v, each B * H * W * C * (window area) multiply-adds,
  with the window shrunk to the map when the map (per dilation group) is smaller than k x k, as the op
  does. Its qkv and proj linears are counted by their own hooks.

Not counted: norms, activations, softmax, pooling, the rpb add and element-wise sums (all O(C) per pixel
against O(C^2) for the layers above: about 1 % of the total for these configs).

One forward is one fusion: the shared encoder runs twice (IR and visible), the fuse layers and the
decoder once (no training reconstructions).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

#: Top-level parts of a TSJNet, as (label, module-name prefixes); first match wins.
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("encoder trunk", ("encoder.patch_embed", "encoder.trunk")),
    ("refine", ("encoder.refine",)),
    ("NAT branch", ("encoder.base",)),
    ("DSM", ("encoder.detail",)),
    ("fuse layers", ("base_fuse", "detail_fuse")),
    ("decoder trunk", ("decoder.attention", "decoder.reduce", "decoder.trunk")),
    ("head", ("decoder.head",)),
)
GROUP_LABELS: tuple[str, ...] = tuple(label for label, _ in GROUPS)


def group_of(module_name: str) -> str:
    """The top-level part (a :data:`GROUP_LABELS` entry) a module name belongs to."""
    for label, prefixes in GROUPS:
        if any(module_name == p or module_name.startswith(p + ".") for p in prefixes):
            return label
    raise KeyError(f"module {module_name!r} belongs to no TSJNet part in GROUPS")


@dataclass
class FlopReport:
    """FLOPs of one fusion forward of one config at one input size.

    ``flops``: FLOPs per counted layer, keyed by module name (neighborhood-attention cores as
    ``<attn module>.na``); a layer called twice (the shared encoder) holds the sum of both calls.
    ``shapes``: a short description of each layer's (last) call, for reading the top-cost list.
    """

    config: str
    height: int
    width: int
    params: int
    flops: dict[str, int] = field(default_factory=dict)
    shapes: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.flops.values())

    @property
    def gflops(self) -> float:
        return self.total / 1e9

    def groups(self) -> dict[str, int]:
        """FLOPs per top-level part, in :data:`GROUP_LABELS` order."""
        out = dict.fromkeys(GROUP_LABELS, 0)
        for name, value in self.flops.items():
            out[group_of(name)] += value
        return out

    def top(self, n: int = 10) -> list[tuple[str, int]]:
        """The ``n`` most expensive layers, most expensive first."""
        return sorted(self.flops.items(), key=lambda kv: -kv[1])[:n]

    def full_resolution_share(self) -> float:
        """Fraction of the FLOPs spent in layers whose output has the input's full H x W."""
        full = sum(v for k, v in self.flops.items() if self.shapes.get(k, "").endswith(f"@{self._padded()}"))
        return full / self.total if self.total else 0.0

    def _padded(self) -> str:
        from tsjnet_sdk.models.config import SIZE_MULTIPLE

        def up(n: int) -> int:
            return math.ceil(n / SIZE_MULTIPLE) * SIZE_MULTIPLE

        return f"{up(self.height)}x{up(self.width)}"


def count_flops(config: str | object = "tsjnet", height: int = 480, width: int = 640, batch: int = 1) -> FlopReport:
    """Count the FLOPs of one fusion forward of ``config`` (a name or a TSJNetConfig) on [batch, 1, H, W].

    Runs on the ``meta`` device: no real arithmetic, a few seconds even for the full model at 640x480.
    """
    import torch
    from torch import nn

    from tsjnet_sdk.models import create_model
    from tsjnet_sdk.models.lsm import NeighborhoodAttention2D

    # Built on the CPU, then moved: construction calls .tolist() (drop-path rates), which meta tensors
    # cannot do. Building even the 45 M-parameter model takes under a second.
    model = create_model(config).eval().to("meta")
    report = FlopReport(config=model.config.name, height=height, width=width, params=sum(p.numel() for p in model.parameters()))
    counts: dict[str, int] = defaultdict(int)

    def hook_for(name: str, module: nn.Module):
        def hook(mod: nn.Module, inputs: tuple, output) -> None:
            x = inputs[0]
            if isinstance(mod, nn.ConvTranspose2d):
                kh, kw = mod.kernel_size
                macs = x.numel() * (mod.out_channels // mod.groups) * kh * kw
                where = f"{mod.in_channels}->{mod.out_channels} T{kh}x{kw}@{output.shape[-2]}x{output.shape[-1]}"
            elif isinstance(mod, nn.Conv2d):
                kh, kw = mod.kernel_size
                macs = output.numel() * (mod.in_channels // mod.groups) * kh * kw
                g = f" g{mod.groups}" if mod.groups > 1 else ""
                where = f"{mod.in_channels}->{mod.out_channels} {kh}x{kw}{g}@{output.shape[-2]}x{output.shape[-1]}"
            elif isinstance(mod, nn.Linear):
                macs = x.numel() * mod.out_features
                where = f"{mod.in_features}->{mod.out_features} linear@{'x'.join(map(str, x.shape[1:-1]))}"
            else:
                raise TypeError(type(mod).__name__)
            counts[name] += 2 * macs
            report.shapes[name] = where

        return hook

    def na_hook_for(name: str):
        def hook(mod: NeighborhoodAttention2D, inputs: tuple, output) -> None:
            b, h, w, c = inputs[0].shape  # channels-last [B, H, W, C]
            d, k = mod.dilation, mod.kernel_size
            # The op shrinks the window to the dilation group when the group is smaller than k.
            window = min(k, math.ceil(h / d)) * min(k, math.ceil(w / d))
            macs = 2 * b * h * w * c * window  # q.k logits + weighted sum of v
            counts[f"{name}.na"] += 2 * macs
            report.shapes[f"{name}.na"] = f"NA {mod.num_heads}h k{k} window {window}@{h}x{w}"

        return hook

    handles = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            handles.append(module.register_forward_hook(hook_for(name, module)))
        elif isinstance(module, NeighborhoodAttention2D):
            handles.append(module.register_forward_hook(na_hook_for(name)))
    try:
        x = torch.zeros(batch, 1, height, width, device="meta")
        with torch.no_grad():
            model(x, x)
    finally:
        for handle in handles:
            handle.remove()
    report.flops = dict(counts)
    return report


def _fmt_params(n: int) -> str:
    return f"{n / 1e6:.2f} M"


def markdown_table(reports: Sequence[FlopReport], top: int = 8) -> str:
    """A markdown summary: totals, the per-part breakdown side by side, and each config's top layers."""
    ref = reports[0]
    lines = [
        f"FLOPs of one fusion forward (IR + visible -> fused) at {ref.width}x{ref.height} (W x H), batch 1; "
        "FLOPs = 2 x multiply-adds of convolutions, linears and neighborhood attention "
        "(`tsjnet flops`).",
        "",
        "| config | params | GFLOPs | vs " + ref.config + " | full-res layers |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in reports:
        lines.append(
            f"| {r.config} | {_fmt_params(r.params)} | {r.gflops:,.1f} | 1/{ref.total / r.total:.1f} | "
            f"{100 * r.full_resolution_share():.0f} % |"
        )
    lines += ["", "Per part, GFLOPs (share of that config's total):", ""]
    lines.append("| part | " + " | ".join(r.config for r in reports) + " |")
    lines.append("|---|" + "---:|" * len(reports))
    groups = [r.groups() for r in reports]
    for label in GROUP_LABELS:
        cells = [f"{g[label] / 1e9:,.2f} ({100 * g[label] / r.total:.1f} %)" for g, r in zip(groups, reports)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for r in reports:
        lines += ["", f"Most expensive layers of {r.config}:", "", "| layer | shape | GFLOPs | share |", "|---|---|---:|---:|"]
        for name, value in r.top(top):
            lines.append(f"| `{name}` | {r.shapes.get(name, '')} | {value / 1e9:,.2f} | {100 * value / r.total:.1f} % |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    # `python -m tsjnet_sdk.benchmarks.flops`: the same command as `tsjnet flops`. The CLI is imported only here:
    # the command-line layer imports this module, never the reverse (tests/test_import_graph.py).
    from tsjnet_sdk.benchmarks.cli import flops_command
    from tsjnet_sdk.cli_support import run_command

    raise SystemExit(run_command(flops_command, None, "python -m tsjnet_sdk.benchmarks.flops"))
