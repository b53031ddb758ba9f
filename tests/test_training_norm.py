"""The training regime sees brightness: BatchNorm regimes, the balanced loss preset, the decoder's
attention-group usage (review_quality_2026-12 §0; docs/training.md, "Normalisation").

With BatchNorm on batch statistics (the official regime) the encoder normalises each modality's batch
on its own, so the fused image cannot follow a global gain of its inputs and the intensity term can
never be fitted. These tests pin the fix: in the ``frozen`` regime (the default when fine-tuning) the
trainable model's output follows the gain, and a tiny run drives the intensity term down.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from test_training_losses import one_thread  # noqa: F401 - autouse: one torch thread on the shared CPU
from test_training_trainer import make_pairs, tiny_config

from tsjnet_sdk.models import TSJNetOutput, create_model, save_checkpoint
from tsjnet_sdk.training import config_from_dict
from tsjnet_sdk.training.config import ConfigError
from tsjnet_sdk.training.losses import FusionLoss
from tsjnet_sdk.training.trainer import Trainer, attention_groups_in_use, reopen_attention


@pytest.fixture
def init_ckpt(tmp_path):
    """A tsjnet-tiny checkpoint whose running statistics come from real forward passes (as a trained
    checkpoint's would), so that frozen BatchNorm is not the identity."""
    torch.manual_seed(0)
    model = create_model("tsjnet-tiny").train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(2, 1, 64, 64), torch.rand(2, 1, 64, 64))
    path = tmp_path / "init.safetensors"
    save_checkpoint(model.eval(), path)
    return path


SHIPPED = Path(__file__).resolve().parents[1] / "tsjnet_sdk" / "weights" / "tsjnet-edge.safetensors"


def _gain_response(tmp_path: Path, batchnorm: str) -> tuple[float, float]:
    """Mean fused output of the model as the trainer trains it, for a batch and for 0.3 x that batch.
    Starts from the shipped tsjnet-edge weights (a random tiny model's output is nearly constant)."""
    make_pairs(tmp_path / "data", 4)
    cfg = config_from_dict(
        tiny_config(
            tmp_path,
            out=f"run_{batchnorm}",
            run={"max_steps": 1},
            model={"name": "tsjnet-edge", "init": str(SHIPPED), "batchnorm": batchnorm},
            loss={"preset": "balanced"},
        )
    )
    torch.manual_seed(1)
    ir, vis = torch.rand(2, 1, 64, 64) * 0.8 + 0.2, torch.rand(2, 1, 64, 64) * 0.8 + 0.2
    means: list[float] = []

    def probe(trainer: Trainer) -> None:  # runs with the model in the regime the trainer trains it in
        with torch.no_grad():
            means.append(float(trainer.model(ir, vis).fused.mean()))
            means.append(float(trainer.model(0.3 * ir, 0.3 * vis).fused.mean()))

    Trainer(cfg, on_step_end=probe).fit()
    return means[0], means[1]


def test_frozen_batchnorm_output_follows_input_gain(tmp_path):
    full, dark = _gain_response(tmp_path, "auto")  # auto + model.init = frozen
    assert full - dark > 0.02, f"fused mean {full:.4f} -> {dark:.4f} for inputs x0.3: the regime hides brightness"


def test_batch_statistics_regime_hides_input_gain(tmp_path):
    """The defect the frozen regime fixes, kept as a documented property of the official regime."""
    full, dark = _gain_response(tmp_path, "batch")
    assert abs(full - dark) < 0.01, (full, dark)


@pytest.mark.slow
def test_tiny_overfit_drives_the_intensity_term_down(tmp_path, init_ckpt):
    """One fixed batch (two whole 64x64 pairs, no flips, no gains) and the intensity term alone:
    the trainable model must fit the blend target."""
    make_pairs(tmp_path / "data", 2, size=(64, 64))
    cfg = config_from_dict(
        tiny_config(
            tmp_path,
            run={"max_steps": 30, "checkpoint_every": 0},
            model={"init": str(init_ckpt)},
            data={"crop_size": 64, "hflip": 0.0},
            loss={"preset": "balanced", "ssim": 0.0, "gradient": 0.0},
            optim={"lr": 1e-3},
            scheduler={"name": "none"},
        )
    )
    summary = Trainer(cfg).fit()
    with open(Path(summary["out_dir"]) / "train_log.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("intensity")]
    first = sum(float(r["intensity"]) for r in rows[:3]) / 3
    last = sum(float(r["intensity"]) for r in rows[-3:]) / 3
    assert last < 0.6 * first, f"intensity term {first:.4f} -> {last:.4f}: the model cannot fit brightness"
    assert "recon_ir" not in rows[0]  # balanced: no reconstruction passes, no reconstruction columns


def test_warmup_regime_freezes_after_the_warmup_steps(tmp_path):
    make_pairs(tmp_path / "data", 4)
    cfg = config_from_dict(tiny_config(tmp_path, run={"max_steps": 3}, model={"batchnorm": "auto", "batchnorm_warmup_steps": 2}))
    assert cfg.model.batchnorm_mode() == "warmup"  # auto without model.init
    seen: list[bool] = []

    def probe(trainer: Trainer) -> None:
        trainer._train_mode()  # the mode the next step trains in
        bns = [m for m in trainer.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        seen.append(any(m.training for m in bns))

    Trainer(cfg, on_step_end=probe).fit()
    assert seen == [True, False, False]  # after step 1: still batch statistics; from step 2 on: frozen


def test_blend_intensity_target_and_reconstruction_switch():
    ir = torch.tensor([[[[0.2, 0.8]]]]).expand(1, 1, 32, 2).contiguous()
    vis = torch.tensor([[[[0.6, 0.4]]]]).expand(1, 1, 32, 2).contiguous()
    fused = torch.zeros_like(ir)
    out = TSJNetOutput(fused, torch.full((1, 8, 32, 2), 0.5), *(torch.zeros(1, 4, 32, 2),) * 4)
    balanced = FusionLoss("balanced")
    assert balanced.intensity_target == "blend" and balanced.blend_beta == 0.75
    assert not balanced.needs_reconstruction and FusionLoss("paper").needs_reconstruction
    target = balanced.intensity_target_of(ir, vis)
    assert torch.allclose(target[0, 0, 0], torch.tensor([0.75 * 0.6 + 0.25 * 0.2, 0.75 * 0.8 + 0.25 * 0.4]))
    _, terms = balanced(ir, vis, out)
    assert terms["intensity"].item() == pytest.approx(float(target.mean()), abs=1e-6)
    as_max = FusionLoss("balanced", intensity_target="max")
    assert torch.equal(as_max.intensity_target_of(ir, vis), torch.maximum(ir, vis))


def test_attention_group_usage_and_reopening():
    att = torch.zeros(2, 8, 16, 16)
    att[:, 1] = 0.9998
    att[:, 7] = 0.09
    assert attention_groups_in_use(att).item() == 1.0  # the collapse the review measured
    model = create_model("tsjnet-tiny").eval()
    reopen_attention(model)
    with torch.no_grad():
        maps = model(torch.rand(1, 1, 64, 64), torch.rand(1, 1, 64, 64)).attention
    assert maps.min() > 0.94 and attention_groups_in_use(maps).item() == maps.shape[1]


def test_batchnorm_and_loss_config_errors(tmp_path):
    make_pairs(tmp_path / "data", 2)
    with pytest.raises(ConfigError, match="model.batchnorm"):
        config_from_dict(tiny_config(tmp_path, model={"batchnorm": "train"}))
    with pytest.raises(ConfigError, match="blend_beta"):
        config_from_dict(tiny_config(tmp_path, loss={"preset": "balanced", "blend_beta": 1.5}))
    with pytest.raises(ConfigError, match="intensity_target"):
        config_from_dict(tiny_config(tmp_path, loss={"intensity_target": "mean"}))
    assert config_from_dict(tiny_config(tmp_path)).loss.preset == "balanced"  # the default for new configs
