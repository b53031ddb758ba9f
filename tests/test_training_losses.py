"""Losses: MultiFacet fusion loss (presets), diversity loss, and the detection / segmentation drivers
with real MSRS detection labels and synthetic segmentation masks (small images, ResNet-50 backbones)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_msssim import ssim as ref_ssim

from tsjnet_sdk.models import TSJNetOutput, create_model
from tsjnet_sdk.training.config import CLASS_TABLES, DatasetConfig
from tsjnet_sdk.training.data import AugmentConfig, FusionPairDataset, collate, scan_dataset
from tsjnet_sdk.training.losses import FusionLoss, detection_objective, diversity_loss, segmentation_loss, sobel_gradient
from tsjnet_sdk.training.tasks import (
    TaskWeightsError,
    build_detector,
    build_segmenter,
    detector_inputs,
    load_task_weights,
    segmenter_forward,
    set_trainable,
)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def need_shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs the real data at {path} (../shared/data beside the checkout); not present here")
    return path


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # the test machines' 2 cores are shared: one torch thread avoids OpenMP stalls under contention
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def fake_out(fused, att=None, ir_recon=None, vis_recon=None):
    b, _, h, w = fused.shape
    att = att if att is not None else torch.full((b, 8, h, w), 0.5)
    z = torch.zeros(b, 4, h, w)
    return TSJNetOutput(fused, att, z, z, z, z, ir_recon, vis_recon)


# ----------------------------------------------------------------------------------------------
# Fusion loss


def test_diversity_loss_values():
    one_hot = torch.zeros(1, 8, 4, 4)
    one_hot[:, 3] = 1.0  # one group fully on at every pixel
    assert diversity_loss(one_hot).item() == pytest.approx(0 + 1 / 8)
    assert diversity_loss(torch.full((2, 8, 4, 4), 0.5)).item() == pytest.approx(0.5 + 0.5)
    assert diversity_loss(torch.zeros(1, 8, 4, 4)).item() == pytest.approx(1.0)  # all-off is penalised


def test_paper_preset_terms():
    torch.manual_seed(0)
    ir, vis = torch.rand(2, 1, 48, 48), torch.rand(2, 1, 48, 48)
    fused = (ir + vis) / 2
    out = fake_out(fused, ir_recon=ir + 0.1, vis_recon=vis - 0.2)
    loss = FusionLoss("paper")
    total, terms = loss(ir, vis, out)
    exp_ssim = 0.5 * (1 - ref_ssim(fused, ir, data_range=1.0)) + 0.5 * (1 - ref_ssim(fused, vis, data_range=1.0))
    assert terms["ssim"].item() == pytest.approx(exp_ssim.item(), rel=1e-5)
    assert terms["recon_ir"].item() == pytest.approx(0.01, rel=1e-4)
    assert terms["recon_vis"].item() == pytest.approx(0.04, rel=1e-4)
    assert terms["diversity"].item() == pytest.approx(1.0)
    assert set(terms) == {"ssim", "diversity", "recon_ir", "recon_vis"}
    # eq. 10: alpha1 = 0.1 (diversity), alpha2 = 6 (infrared reconstruction), alpha3 = 1 (visible)
    assert total.item() == pytest.approx(exp_ssim.item() + 0.1 * 1.0 + 6 * 0.01 + 1 * 0.04, rel=1e-5)
    # identical images and perfect reconstructions: only the diversity term is left
    total, _ = loss(ir, ir, fake_out(ir.clone(), ir_recon=ir, vis_recon=ir))
    assert total.item() == pytest.approx(0.1, abs=1e-5)
    with pytest.raises(ValueError, match="reconstruct=True"):
        loss(ir, vis, fake_out(fused))


def test_official_preset_terms():
    ir = torch.zeros(1, 1, 40, 40)
    ir[..., 10:30, 10:30] = 0.8  # IR with edges
    vis = torch.zeros(1, 1, 40, 40)  # black visible: no Sobel energy (zero padding)
    fused = torch.full((1, 1, 40, 40), 0.5)
    loss = FusionLoss("official")
    assert loss.weights == {
        "ssim": 10.0,
        "diversity": 0.1,
        "recon_ir": 1.0,
        "recon_vis": 6.0,
        "intensity": 20.0,
        "gradient": 20.0,
    }
    total, t = loss(ir, vis, fake_out(fused, ir_recon=ir, vis_recon=vis))
    assert t["intensity"].item() == pytest.approx((fused - torch.maximum(ir, vis)).abs().mean().item())
    # the visible image has no Sobel energy, so the SSIM weight is all on the IR image
    assert t["ssim"].item() == pytest.approx(1 - ref_ssim(ir, fused, data_range=1.0).item(), rel=1e-5)
    assert t["gradient"].item() == pytest.approx((sobel_gradient(fused) - sobel_gradient(ir)).abs().mean().item(), rel=1e-5)
    # Sobel energy |Kx * x| + |Ky * x|: a horizontal ramp of slope 1/px gives 8 inside (|2+1+1|*... = 8)
    ramp = torch.arange(10.0).expand(1, 1, 10, 10).contiguous()
    assert sobel_gradient(ramp)[0, 0, 2:-2, 2:-2].unique().tolist() == [8.0]
    expected = 10 * t["ssim"] + 0.1 * t["diversity"] + 20 * t["intensity"] + 20 * t["gradient"]
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)
    # weights can be overridden term by term
    assert FusionLoss("paper", intensity=2.0).weights["intensity"] == 2.0


def test_fusion_loss_drives_the_model():
    torch.manual_seed(0)
    model = create_model("tsjnet-tiny").train()
    ir, vis = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    total, _ = FusionLoss("paper")(ir, vis, model(ir, vis, reconstruct=True))
    total.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0


def test_segmentation_loss_ignore_index():
    logits = torch.randn(2, 9, 8, 8, requires_grad=True)
    labels = torch.randint(0, 9, (2, 8, 8))
    labels[0, :4] = 255
    ce = segmentation_loss(logits, labels, 255)
    mask = labels != 255
    manual = -torch.log_softmax(logits, 1).gather(1, labels.clamp_max(8)[:, None])[:, 0][mask].mean()
    assert ce.item() == pytest.approx(manual.item(), rel=1e-5)
    all_ignored = segmentation_loss(logits, torch.full((2, 8, 8), 255), 255)
    assert all_ignored.item() == 0.0 and all_ignored.requires_grad
    with pytest.raises(TypeError, match="int64"):
        segmentation_loss(logits, labels.float(), 255)


# ----------------------------------------------------------------------------------------------
# Task networks (small inputs: ResNet-50 backbones, detector resize 96 px)


@pytest.fixture(scope="module")
def msrs_batch():
    root = need_shared("msrs", "test")
    ds = DatasetConfig(root=str(root), det_labels="det_label", det_labels_ir="det_label_ir", det_labels_vi="det_label_vi")
    recs = [r for r in scan_dataset(ds, list(CLASS_TABLES["msrs-det"]), None, 255) if r.name in ("00004N", "00055D")]
    data = FusionPairDataset(recs, AugmentConfig(crop=(96, 128), hflip=0.5, object_crop_prob=1.0), seed=1)
    batch = collate([data[0], data[1]])
    assert all(len(d["fused"]["boxes"]) for d in batch["det"]), "object crops keep at least one box"
    return batch


@pytest.mark.slow
def test_detection_loss_with_real_msrs_labels(msrs_batch):
    torch.manual_seed(0)
    model = create_model("tsjnet-tiny").train()
    det = build_detector(3, min_size=96, max_size=128, norm="bn", trainable_backbone_layers=5)
    set_trainable(det, False)  # frozen driver
    out = model(msrs_batch["ir"], msrs_batch["vis"], reconstruct=True)
    targets = [d["fused"] for d in msrs_batch["det"]]
    assert all(t["labels"].min() >= 1 and t["labels"].max() <= 3 for t in targets)  # 0 = background
    losses = det(detector_inputs(out.fused), targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    paper = detection_objective(losses, ["loss_box_reg", "loss_rpn_box_reg"])  # eq. 12: regression only
    assert paper.item() == pytest.approx((losses["loss_box_reg"] + losses["loss_rpn_box_reg"]).item())
    assert paper.item() > 0
    paper.backward()
    assert all(p.grad is None for p in det.parameters())  # frozen: nothing accumulates in the detector
    enc_grad = sum(float(p.grad.abs().sum()) for p in model.parameters() if p.grad is not None)
    assert enc_grad > 0  # the fused term drives the fusion network
    # u >= 1: images without foreground objects give no box-regression loss
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}] * 2
    with torch.no_grad():
        neg = det(detector_inputs(out.fused.detach()), empty)
    assert neg["loss_box_reg"].item() == 0.0 and neg["loss_rpn_box_reg"].item() == 0.0


@pytest.mark.slow
def test_segmentation_loss_with_synthetic_masks(tmp_path):
    # synthetic MSRS-style label maps (uint8 ids 0..8, 255 = ignore) read through the dataset
    rng = np.random.default_rng(0)
    root = tmp_path / "msrs_like"
    for sub in ("ir", "vi", "seg"):
        (root / sub).mkdir(parents=True)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)).save(root / "ir" / f"{name}.png")
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(root / "vi" / f"{name}.png")
        mask = np.zeros((64, 64), np.uint8)
        mask[10:30, 5:40] = 1  # car
        mask[35:60, 20:28] = 2  # person
        mask[0:4] = 255  # unlabelled
        Image.fromarray(mask).save(root / "seg" / f"{name}.png")
    recs = scan_dataset(DatasetConfig(root=str(root), seg_labels="seg"), [], 9, 255)
    batch = collate([FusionPairDataset(recs, AugmentConfig(crop=(64, 64)))[i] for i in range(2)])
    labels = torch.stack(batch["seg"])
    assert set(torch.unique(labels).tolist()) == {0, 1, 2, 255}  # class ids survive loading
    torch.manual_seed(0)
    model = create_model("tsjnet-tiny").train()
    seg = build_segmenter(len(CLASS_TABLES["msrs-seg"]), "resnet50")
    set_trainable(seg, False)
    out = model(batch["ir"], batch["vis"], reconstruct=True)
    logits = segmenter_forward(seg, out.fused)
    assert logits.shape == (2, 9, 64, 64)
    ce = segmentation_loss(logits, labels, 255)
    assert 0 < ce.item() < 20
    ce.backward()
    assert sum(float(p.grad.abs().sum()) for p in model.parameters() if p.grad is not None) > 0
    assert all(p.grad is None for p in seg.parameters())


@pytest.mark.slow
def test_task_weights_loading(tmp_path):
    coco_like = build_detector(90, min_size=64, max_size=64)  # a COCO-sized box predictor (91 outputs)
    torch.save({"model": coco_like.state_dict()}, tmp_path / "det.pth")
    det = build_detector(3, min_size=64, max_size=64)
    notes = load_task_weights(det, tmp_path / "det.pth", "detector")
    assert any("re-initialised" in n and "box_predictor" in n for n in notes)
    torch.testing.assert_close(det.backbone.body.conv1.weight, coco_like.backbone.body.conv1.weight)
    assert det.roi_heads.box_predictor.cls_score.out_features == 4
    seg = build_segmenter(9, "resnet50")
    torch.save(seg.state_dict(), tmp_path / "seg.pth")
    with pytest.raises(TaskWeightsError, match="match"):
        load_task_weights(det, tmp_path / "seg.pth", "detector")
