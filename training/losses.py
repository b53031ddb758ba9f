"""Losses: the MultiFacet fusion loss (paper eqs. 8-10, presets ``paper`` and ``official``), the
detection loss (eqs. 11-12) and the segmentation loss (eq. 13).

All losses are computed in float32 (autocast outputs are cast up), on images in [0, 1].
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pytorch_msssim import ssim as _ssim
from torch import Tensor, nn

from tsjnet_sdk.training.config import LOSS_PRESETS

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
_SOBEL_Y = torch.tensor([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]])


def sobel_gradient(x: Tensor) -> Tensor:
    """|Sobel_x * x| + |Sobel_y * x| per pixel, zero padding (the official loss_vif's gradient); [B, 1, H, W]."""
    k = torch.stack([_SOBEL_X, _SOBEL_Y])[:, None].to(x)
    g = F.conv2d(x, k, padding=1)
    return g.abs().sum(dim=1, keepdim=True)


def sobel_xy(x: Tensor) -> Tensor:
    """Signed Sobel responses [B, 2, H, W] (x then y) of [B, 1, H, W] images, zero padding."""
    k = torch.stack([_SOBEL_X, _SOBEL_Y])[:, None].to(x)
    return F.conv2d(x, k, padding=1)


def stronger_source_gradient(ir: Tensor, vis: Tensor) -> Tensor:
    """Signed Sobel responses [B, 2, H, W] of the source whose gradient magnitude (|Sx| + |Sy|) is the
    larger at each pixel (ties: infrared). Unlike max(|grad I|, |grad V|), this target fixes the direction
    and polarity of the edge, i.e. it asks F to carry that source's detail, not just as much detail."""
    g_ir, g_vis = sobel_xy(ir), sobel_xy(vis)
    take_ir = g_ir.abs().sum(dim=1, keepdim=True) >= g_vis.abs().sum(dim=1, keepdim=True)
    return torch.where(take_ir, g_ir, g_vis)


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of [B, 1, H, W] (radius 3 sigma, reflect padding); sigma 0 returns x."""
    if sigma <= 0:
        return x
    r = max(1, int(round(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))


def ssim(x: Tensor, y: Tensor) -> Tensor:
    """Mean SSIM of [B, 1, H, W] images in [0, 1] (pytorch-msssim: Gaussian 11x11, sigma 1.5, K = 0.01, 0.03)."""
    return _ssim(x, y, data_range=1.0, size_average=True)


def diversity_loss(att: Tensor) -> Tensor:
    """Eq. 9 on the decoder's attention maps att [B, G, H, W] in (0, 1), with the official code's sign.

    mean over pixels of (1 - max over the G maps) + mean of all maps: low when, at every pixel, one
    map is high and the others low, i.e. the groups attend to different places. (Eq. 9 as printed
    has a leading minus on the first term, which would drive every map to 0; the official code and
    the erudite-FGVC source it comes from use +, as here.)
    """
    att = att.float()
    return (1.0 - att.amax(dim=1)).mean() + att.mean()


class FusionLoss(nn.Module):
    """MultiFacet fusion loss. ``forward(ir, vis, out)`` -> (total, {term: value}) with ``out`` a
    :class:`~tsjnet_sdk.models.TSJNetOutput` from ``model(ir, vis, reconstruct=True)``.

    Terms (each multiplied by its weight; a weight 0 skips the term):
      ssim       eq. 8, equal: 1/2 (1 - ssim(F, I)) + 1/2 (1 - ssim(F, V));
                 gradient_weighted (official): 1 - (w_V ssim(V, F) + w_I ssim(I, F)), w from mean Sobel energy
      diversity  eq. 9 on the fused decode's attention maps (alpha1)
      recon_ir   MSE(I, I~), the decoder's IR reconstruction   (paper alpha2 = 6; official 1)
      recon_vis  MSE(V, V~), the decoder's visible reconstruction (paper alpha3 = 1; official 6)
      intensity  mean |F - T|, T = max(I, V) (intensity_target "max", official, weight 20) or
                 T = b max(I, V) + (1 - b) min(I, V) ("blend", preset balanced, b = blend_beta 0.75);
                 with intensity_sigma > 0 both sides are Gaussian-blurred first, so the term sets the
                 base (brightness) and leaves the fine detail to the gradient term
      gradient   gradient_target "max": mean | |grad F| - max(|grad I|, |grad V|) | (official 20,
                 balanced 10; magnitudes only); "stronger": mean over x, y of |S F - S_s| with S_s the
                 signed Sobel response of the source with the stronger gradient at each pixel;
                 gradient_scales N > 1 averages the term over N scales (1, 1/2, ... average pooling)

    ``needs_reconstruction`` says whether the model must run its two reconstruction decodes.
    """

    TERMS = ("ssim", "diversity", "recon_ir", "recon_vis", "intensity", "gradient")

    def __init__(self, preset: str = "paper", **weights: Any) -> None:
        super().__init__()
        cfg = dict(LOSS_PRESETS[preset])
        cfg.update({k: v for k, v in weights.items() if v is not None})
        self.weights = {t: float(cfg[t]) for t in self.TERMS}
        self.ssim_mode = cfg["ssim_mode"]
        self.intensity_target = cfg.get("intensity_target", "max")
        self.blend_beta = float(cfg.get("blend_beta", 1.0))
        self.intensity_sigma = float(cfg.get("intensity_sigma", 0.0))
        self.gradient_target = cfg.get("gradient_target", "max")
        self.gradient_scales = int(cfg.get("gradient_scales", 1))

    @property
    def needs_reconstruction(self) -> bool:
        return bool(self.weights["recon_ir"] or self.weights["recon_vis"])

    def intensity_target_of(self, ir: Tensor, vis: Tensor) -> Tensor:
        """The intensity term's target [B, 1, H, W] in [0, 1]."""
        hi = torch.maximum(ir, vis)
        if self.intensity_target == "max":
            return hi
        return self.blend_beta * hi + (1.0 - self.blend_beta) * torch.minimum(ir, vis)

    def forward(self, ir: Tensor, vis: Tensor, out: Any) -> tuple[Tensor, dict[str, Tensor]]:
        ir, vis, fused = ir.float(), vis.float(), out.fused.float()
        w = self.weights
        terms: dict[str, Tensor] = {}
        if w["ssim"]:
            if self.ssim_mode == "equal":
                terms["ssim"] = 0.5 * (1 - ssim(fused, ir)) + 0.5 * (1 - ssim(fused, vis))
            else:
                g_ir, g_vis = sobel_gradient(ir).mean(), sobel_gradient(vis).mean()
                w_vis = g_vis / (g_vis + g_ir).clamp_min(1e-12)
                terms["ssim"] = 1 - (w_vis * ssim(vis, fused) + (1 - w_vis) * ssim(ir, fused))
        if w["diversity"]:
            terms["diversity"] = diversity_loss(out.attention)
        if w["recon_ir"] or w["recon_vis"]:
            if out.ir_recon is None or out.vis_recon is None:
                raise ValueError("the reconstruction terms need model(ir, vis, reconstruct=True)")
            if w["recon_ir"]:
                terms["recon_ir"] = F.mse_loss(out.ir_recon.float(), ir)
            if w["recon_vis"]:
                terms["recon_vis"] = F.mse_loss(out.vis_recon.float(), vis)
        if w["intensity"]:
            target = self.intensity_target_of(ir, vis)
            sigma = self.intensity_sigma
            terms["intensity"] = (gaussian_blur(fused, sigma) - gaussian_blur(target, sigma)).abs().mean()
        if w["gradient"]:
            terms["gradient"] = (
                sum(
                    self._gradient_term(*(F.avg_pool2d(x, 2**s) if s else x for x in (ir, vis, fused)))
                    for s in range(self.gradient_scales)
                )
                / self.gradient_scales
            )
        total = sum(w[k] * v for k, v in terms.items())
        return total, terms  # type: ignore[return-value]

    def _gradient_term(self, ir: Tensor, vis: Tensor, fused: Tensor) -> Tensor:
        """The gradient term at one scale (gradient_scales > 1 repeats it on 2x, 4x, ... average-pooled
        images, so that mid-scale detail, which a 3x3 Sobel at full resolution hardly sees, is asked for too)."""
        if self.gradient_target == "stronger":
            return (sobel_xy(fused) - stronger_source_gradient(ir, vis)).abs().sum(dim=1).mean()
        target = torch.maximum(sobel_gradient(ir), sobel_gradient(vis))
        return (sobel_gradient(fused) - target).abs().mean()


def detection_objective(loss_dict: dict[str, Tensor], terms: list[str] | tuple[str, ...]) -> Tensor:
    """Eq. 12: the chosen torchvision Faster R-CNN terms summed. ``loss_box_reg`` is torchvision's
    ROI box regression, counted only for proposals matched to a foreground class (u >= 1: its
    ``fastrcnn_loss`` indexes positives only) and normalised by the sampled proposals;
    ``loss_rpn_box_reg`` the RPN's, over positive anchors. (torchvision uses smooth-L1 with beta 1/9,
    L1 beyond 0.11 px in the encoded space; the paper says L1.)"""
    return sum(loss_dict[t].float() for t in terms)  # type: ignore[return-value]


def segmentation_loss(logits: Tensor, labels: Tensor, ignore_index: int = 255) -> Tensor:
    """Eq. 13: pixel-wise cross-entropy of logits [B, C, H, W] against int64 class ids [B, H, W];
    pixels equal to ``ignore_index`` do not count. Zero (with a graph) when every pixel is ignored."""
    if labels.dtype != torch.int64:
        raise TypeError(f"segmentation labels must be int64 class ids, got {labels.dtype}")
    valid = labels != ignore_index
    if not bool(valid.any()):
        return logits.float().sum() * 0.0
    return F.cross_entropy(logits.float(), labels, ignore_index=ignore_index)
