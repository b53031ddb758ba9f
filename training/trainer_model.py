"""Trainer model set-up: the fusion network and loss, the BatchNorm regime, the task networks, optimisers
and scheduler (DDP wrapping included).
"""

from __future__ import annotations

import torch
from torch import nn

from tsjnet_sdk.training.losses import FusionLoss
from tsjnet_sdk.training.tasks import (
    build_detector,
    build_segmenter,
    freeze_untrainable_detector_layers,
    load_task_weights,
    set_trainable,
)
from tsjnet_sdk.training.trainer_common import FUSION_TERMS, TrainingError, _unwrap, reopen_attention


class ModelSetupMixin:
    """Model, BatchNorm regime, task networks, optimisers (a part of :class:`~tsjnet_sdk.training.trainer.Trainer`)."""

    def _setup_model(self) -> None:
        from tsjnet_sdk.models import create_model, load_checkpoint

        mc = self.cfg.model
        if mc.init:
            model = load_checkpoint(mc.init)
            if model.config.name != mc.name:
                raise TrainingError(f"model.init {mc.init} holds config {model.config.name!r} but model.name is {mc.name!r}")
            self.log(f"model: {mc.name} initialised from {mc.init}")
        else:
            model = create_model(mc.name, **mc.overrides)
            self.log(f"model: {mc.name} ({sum(p.numel() for p in model.parameters()):,} parameters), random init")
        self.model = model.to(self.device).train()
        self.loss_weights = self.cfg.loss.resolved()
        lw = self.loss_weights
        self.fusion_loss = FusionLoss(
            self.cfg.loss.preset,
            **{k: lw[k] for k in FUSION_TERMS},
            ssim_mode=lw["ssim_mode"],
            intensity_target=lw["intensity_target"],
            blend_beta=lw["blend_beta"],
            intensity_sigma=lw["intensity_sigma"],
            gradient_target=lw["gradient_target"],
            gradient_scales=lw["gradient_scales"],
        )
        active = ", ".join(f"{k} x{v:g}" for k, v in self.fusion_loss.weights.items() if v)
        target = "max(I, V)" if lw["intensity_target"] == "max" else f"{lw['blend_beta']:g} max + {1 - lw['blend_beta']:g} min"
        if lw["intensity_sigma"]:
            target += f", blurred sigma {lw['intensity_sigma']:g}"
        target += f"; gradient target {lw['gradient_target']} over {lw['gradient_scales']} scale(s)"
        self.log(
            f"loss: preset {self.cfg.loss.preset!r}: {active} (ssim {self.fusion_loss.ssim_mode}, intensity target {target}"
            f"{'' if self.fusion_loss.needs_reconstruction else ', no reconstruction passes'})"
        )
        if mc.reopen_attention:
            reopen_attention(self.model)
            self.log("model: decoder attention gates reopened (1x1 weights 0, bias +3: every group ~0.95)")
        self.bn_mode = mc.batchnorm_mode()
        self.log(
            f"model: BatchNorm {self.bn_mode}"
            + (f" (batch statistics for {mc.batchnorm_warmup_steps} steps, then frozen)" if self.bn_mode == "warmup" else "")
        )

    def _bn_frozen_now(self) -> bool:
        """Whether the fusion network's BatchNorm layers use their running statistics at this step."""
        if self.bn_mode == "frozen":
            return True
        if self.bn_mode == "warmup":
            return self.pos["step"] >= self.cfg.model.batchnorm_warmup_steps
        return False

    def _train_mode(self) -> None:
        """model.train(), then BatchNorm back to eval (running statistics) when the regime says so;
        the affine parameters stay trainable, DropPath stays in training mode."""
        self.model.train()
        if self._bn_frozen_now():
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def _setup_tasks(self) -> None:
        t = self.cfg.tasks
        self.joint = t.mode == "joint"
        self.detector: nn.Module | None = None
        self.segmenter: nn.Module | None = None
        self.det_trained = self.seg_trained = False
        trains_tasks = self.joint or t.pretrain_steps > 0
        if self.det_enabled:
            dc = t.detection
            norm = dc.norm if dc.norm != "auto" else ("frozen_bn" if dc.weights else "bn")
            layers = dc.trainable_backbone_layers if dc.trainable_backbone_layers is not None else (3 if dc.weights else 5)
            det = build_detector(len(self.det_classes), dc.min_size, dc.max_size, norm, layers)
            if dc.weights:
                for note in load_task_weights(det, dc.weights, "detector"):
                    self.log(note)
            elif not trains_tasks:
                self.log(
                    "WARNING: the detector has random weights and is not trained in this run (no "
                    "tasks.detection.weights, tasks.pretrain_steps = 0, tasks.mode = 'frozen'): its loss is noise"
                )
            self.detector = det.to(self.device)
            self._det_layers = layers
            self.det_source_terms = dc.source_terms is True or (dc.source_terms == "auto" and trains_tasks)
            self.log(
                f"detection: Faster R-CNN R50-FPN, {len(self.det_classes)} classes {self.det_classes}, "
                f"{norm}, resize {dc.min_size}/{dc.max_size}, fusion terms {self.loss_weights['det_terms']} "
                f"x{self.loss_weights['detection']:g}, {t.mode}"
            )
        if self.seg_enabled:
            sc = t.segmentation
            seg = build_segmenter(self.seg_num_classes, sc.backbone)
            if sc.weights:
                for note in load_task_weights(seg, sc.weights, "segmenter"):
                    self.log(note)
            elif not trains_tasks:
                self.log("WARNING: the segmenter has random weights and is not trained in this run: its loss is noise")
            self.segmenter = seg.to(self.device)
            self.log(
                f"segmentation: DeepLabV3 {sc.backbone}, {self.seg_num_classes} classes, ignore index "
                f"{sc.ignore_index}, x{self.loss_weights['segmentation']:g}, {t.mode}"
            )
        self._set_task_modes(training_tasks=self.pos["stage"] == "tasks" or self.joint)

    def _set_task_modes(self, training_tasks: bool) -> None:
        if self.detector is not None:
            set_trainable(_unwrap(self.detector), training_tasks)
            if training_tasks:
                freeze_untrainable_detector_layers(_unwrap(self.detector), self._det_layers)
        if self.segmenter is not None:
            set_trainable(_unwrap(self.segmenter), training_tasks)

    def _task_params(self) -> list[nn.Parameter]:
        params: list[nn.Parameter] = []
        for net in (self.detector, self.segmenter):
            if net is not None:
                params += [p for p in _unwrap(net).parameters() if p.requires_grad]
        return params

    def _setup_optim(self) -> None:
        o, s, t = self.cfg.optim, self.cfg.scheduler, self.cfg.tasks
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay
        )
        self.scheduler = None
        if s.name == "plateau":
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer,
                mode="min" if s.monitor == "train_loss" else self.cfg.val.mode,
                factor=s.factor,
                patience=s.patience,
                threshold=s.threshold,
                min_lr=s.min_lr,
            )
        self.task_optimizer = None
        if (self.detector is not None or self.segmenter is not None) and (self.joint or t.pretrain_steps > 0):
            self._set_task_modes(True)
            params = self._task_params()
            self.task_optimizer = torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
            self.det_trained = self.detector is not None
            self.seg_trained = self.segmenter is not None
            self._set_task_modes(training_tasks=self.pos["stage"] == "tasks" or self.joint)
        # DDP after the optimizers hold the parameters (DDP keeps the same parameter tensors)
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model_ddp: nn.Module = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
            if self.task_optimizer is not None and (self.pos["stage"] == "tasks" or self.joint):
                if self.detector is not None:
                    self.detector = nn.parallel.DistributedDataParallel(self.detector, device_ids=ids)
                if self.segmenter is not None:
                    self.segmenter = nn.parallel.DistributedDataParallel(self.segmenter, device_ids=ids)
        else:
            self.model_ddp = self.model
