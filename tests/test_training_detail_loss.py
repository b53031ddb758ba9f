"""The detail-keeping loss options of tsjnet-edge v3 (issue 24; training/configs/edge_v3.toml):
``gradient_target = "stronger"`` (the signed Sobel response of the source with the stronger gradient),
``gradient_scales`` and ``intensity_sigma``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_training_losses import one_thread  # noqa: F401 - autouse: one torch thread on the shared CPU
from test_training_trainer import make_pairs, tiny_config

from tsjnet_sdk.models import TSJNetOutput
from tsjnet_sdk.training import config_from_dict
from tsjnet_sdk.training.config import ConfigError, load_config
from tsjnet_sdk.training.losses import FusionLoss, gaussian_blur, sobel_xy, stronger_source_gradient

REPO = Path(__file__).resolve().parents[1]


def _out(fused: torch.Tensor) -> TSJNetOutput:
    b, _, h, w = fused.shape
    return TSJNetOutput(fused, torch.full((b, 8, h, w), 0.5), *(torch.zeros(b, 4, h, w),) * 4)


def _only_gradient(target: str, scales: int = 1) -> FusionLoss:
    return FusionLoss("balanced", ssim=0.0, intensity=0.0, gradient=1.0, gradient_target=target, gradient_scales=scales)


def _edges() -> tuple[torch.Tensor, torch.Tensor]:
    """IR: a vertical step in the left half; VIS: a horizontal step in the right half."""
    ir = torch.full((1, 1, 32, 32), 0.3)
    ir[..., :, 8:16] = 0.7
    vis = torch.full((1, 1, 32, 32), 0.4)
    vis[..., 16:, 16:] = 0.9
    return ir, vis


def test_stronger_target_takes_each_pixel_from_the_source_with_the_larger_gradient() -> None:
    ir, vis = _edges()
    target = stronger_source_gradient(ir, vis)
    g_ir, g_vis = sobel_xy(ir), sobel_xy(vis)
    assert torch.allclose(target[..., 4:28, 6:10], g_ir[..., 4:28, 6:10], atol=1e-6)  # IR's edge region
    assert torch.allclose(target[..., 14:18, 20:28], g_vis[..., 14:18, 20:28], atol=1e-6)  # VIS's edge region
    assert target[..., 14:18, 20:28].abs().sum() > 0 and target[..., 4:28, 6:10].abs().sum() > 0


def test_stronger_target_sees_edge_polarity_the_magnitude_target_does_not() -> None:
    # F = the IR image with its contrast inverted: every gradient magnitude matches, every sign is wrong.
    # (A bright square on 0, inverted to a dark one, so that the zero-padded border adds no edges; the
    # loss is defined for any values.)
    ir = torch.zeros(1, 1, 32, 32)
    ir[..., 10:22, 10:22] = 0.6
    vis = torch.zeros_like(ir)  # only IR has edges
    inverted = -ir
    magnitude = _only_gradient("max")(ir, vis, _out(inverted))[1]["gradient"].item()
    signed = _only_gradient("stronger")(ir, vis, _out(inverted))[1]["gradient"].item()
    exact = _only_gradient("stronger")(ir, vis, _out(ir.clone()))[1]["gradient"].item()
    assert magnitude == pytest.approx(0.0, abs=1e-7)  # the magnitude-only term cannot tell them apart
    assert signed > 0.05 and exact == pytest.approx(0.0, abs=1e-7)


def test_more_gradient_scales_ask_for_coarse_detail_too() -> None:
    # A fused image that keeps IR's fine texture but loses its coarse step: the 1-scale term barely
    # notices (Sobel at full resolution sees the step only at its two columns); coarser scales do.
    ir, _ = _edges()
    vis = torch.full_like(ir, 0.5)
    texture = 0.05 * torch.sin(torch.arange(32.0) * 2.5).view(1, 1, 1, 32).expand(1, 1, 32, 32)
    ir = ir + texture
    fused = 0.5 + texture.clone()
    one = _only_gradient("stronger", 1)(ir, vis, _out(fused))[1]["gradient"].item()
    three = _only_gradient("stronger", 3)(ir, vis, _out(fused))[1]["gradient"].item()
    assert three > 1.2 * one


def test_blurred_intensity_sets_the_base_and_leaves_fine_detail_alone() -> None:
    ir, vis = torch.full((1, 1, 32, 32), 0.2), torch.full((1, 1, 32, 32), 0.6)
    checker = 0.1 * ((torch.arange(32).view(-1, 1) + torch.arange(32).view(1, -1)) % 2 * 2 - 1).float()
    loss = FusionLoss("balanced", ssim=0.0, gradient=0.0, intensity=1.0, blend_beta=0.5)
    target = loss.intensity_target_of(ir, vis)  # 0.4 everywhere
    plain = loss(ir, vis, _out(target + checker))[1]["intensity"].item()
    blurred = FusionLoss("balanced", ssim=0.0, gradient=0.0, intensity=1.0, blend_beta=0.5, intensity_sigma=2.0)
    assert plain == pytest.approx(0.1, abs=1e-6)
    assert blurred(ir, vis, _out(target + checker))[1]["intensity"].item() < 0.01
    assert blurred(ir, vis, _out(target + 0.1))[1]["intensity"].item() == pytest.approx(0.1, abs=1e-5)  # brightness still counts
    assert torch.equal(gaussian_blur(ir, 0.0), ir)


def test_loss_option_config_errors_and_the_v3_config(tmp_path: Path) -> None:
    make_pairs(tmp_path / "data", 2)
    with pytest.raises(ConfigError, match="gradient_target"):
        config_from_dict(tiny_config(tmp_path, loss={"gradient_target": "mean"}))
    with pytest.raises(ConfigError, match="gradient_scales"):
        config_from_dict(tiny_config(tmp_path, loss={"gradient_scales": 0}))
    with pytest.raises(ConfigError, match="intensity_sigma"):
        config_from_dict(tiny_config(tmp_path, loss={"intensity_sigma": -1.0}))
    lw = load_config(REPO / "training" / "configs" / "edge_v3.toml").loss.resolved()
    assert (lw["gradient_target"], lw["gradient_scales"], lw["intensity_sigma"]) == ("stronger", 3, 2.0)
    assert load_config(REPO / "training" / "configs" / "edge_balanced.toml").loss.resolved()["gradient_target"] == "max"
