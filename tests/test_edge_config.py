"""tsjnet-edge: the issue's budget (<= 5 M params, <= 1/20 of tsjnet's FLOPs at 640x480), its NAT
constraints (head_dim 32, kernel 7, rpb), a CPU forward; and the FLOP counter it is measured with."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from tsjnet_sdk.benchmarks.flops import GROUP_LABELS, count_flops, markdown_table
from tsjnet_sdk.models import create_model, get_config

EDGE_MAX_PARAMS = 5_000_000
EDGE_MAX_FLOP_FRACTION = 1 / 20


@pytest.fixture(scope="module")
def reports_640x480():
    torch.set_num_threads(1)
    # meta-device counts: a few seconds for both, no real 640x480 forward
    return count_flops("tsjnet", 480, 640), count_flops("tsjnet-edge", 480, 640)


def test_edge_budget(reports_640x480) -> None:
    full, edge = reports_640x480
    assert full.params == 45_116_015  # the counter sees the whole official model
    assert edge.params <= EDGE_MAX_PARAMS
    assert edge.params == sum(p.numel() for p in create_model("tsjnet-edge").parameters())
    assert edge.total <= EDGE_MAX_FLOP_FRACTION * full.total
    # the design aims well under the budget (docs/edge.md): keep it there
    assert edge.total <= full.total / 40


def test_full_model_cost_is_full_resolution_convs(reports_640x480) -> None:
    # The measurement the edge widths rest on: the full-resolution 512-channel 3x3 convs dominate.
    full, _ = reports_640x480
    assert full.top(1)[0][0] == "encoder.refine.0"
    assert full.flops["encoder.refine.0"] == 2 * 2 * (480 * 640) * 256 * 512 * 9  # two encoder calls
    assert full.flops["encoder.refine.0"] + full.flops["decoder.head.0"] > 0.5 * full.total
    assert full.full_resolution_share() > 0.9
    assert set(full.groups()) == set(GROUP_LABELS) and sum(full.groups().values()) == full.total


def test_edge_nat_keeps_the_kernel_layout() -> None:
    cfg = get_config("tsjnet-edge")
    for level, heads in enumerate(cfg.nat_heads):
        assert cfg.nat_embed_dim * 2**level // heads == 32, f"level {level}: head_dim must stay 32"
    assert cfg.nat_kernel_size == 7 and cfg.nat_rpb


def test_counter_matches_torch_flop_counter() -> None:
    # On a real (small) forward, torch's FlopCounterMode must agree exactly with the analytic hooks for
    # every part without neighborhood attention (the NA reference op is not built from matmuls that
    # FlopCounterMode sees, which is why NA is counted analytically).
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = create_model("tsjnet-tiny").eval()
    x = torch.rand(1, 1, 64, 96)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, x)
    theirs = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    ours = count_flops("tsjnet-tiny", 64, 96).groups()
    assert ours["refine"] == theirs["TSJNet.encoder.refine"]
    assert ours["DSM"] == theirs["TSJNet.encoder.detail"]
    assert ours["head"] == theirs["TSJNet.decoder.head"]
    assert ours["encoder trunk"] == theirs["TSJNet.encoder.trunk"] + theirs["TSJNet.encoder.patch_embed"]


def test_neighborhood_attention_count() -> None:
    # tsjnet-tiny at 64x96: NAT level 0 is a 16x24 map with C = 8 and a full 7x7 window; level 3 is a
    # 2x3 map, where the op's window shrinks to the whole map (6 keys).
    report = count_flops("tsjnet-tiny", 64, 96)
    calls = 2  # the shared encoder's NAT branch runs for IR and visible
    assert report.flops["encoder.base.nat.levels.0.0.attn.na"] == calls * 2 * 2 * (16 * 24) * 8 * 49
    assert report.flops["encoder.base.nat.levels.3.0.attn.na"] == calls * 2 * 2 * (2 * 3) * 64 * 6


def test_markdown_table(reports_640x480) -> None:
    text = markdown_table(list(reports_640x480))
    assert "| tsjnet-edge |" in text and "encoder.refine.0" in text
    for label in GROUP_LABELS:
        assert f"| {label} |" in text


def test_edge_forward_on_cpu() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = create_model("tsjnet-edge").eval()
    ir, vis = torch.rand(1, 1, 64, 96), torch.rand(1, 1, 64, 96)
    with torch.no_grad():
        out = model(ir, vis)
    assert out.fused.shape == (1, 1, 64, 96)
    assert torch.isfinite(out.fused).all() and 0 <= out.fused.min() and out.fused.max() <= 1
    assert out.attention.shape == (1, 8, 64, 96)
