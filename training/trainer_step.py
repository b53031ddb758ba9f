"""Trainer steps: one fusion step, one task-network step, the optimiser update and the loss reduction."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from tsjnet_sdk.training.losses import detection_objective, segmentation_loss
from tsjnet_sdk.training.tasks import detector_inputs, segmenter_forward
from tsjnet_sdk.training.trainer_common import FUSION_TERMS, TrainingError, _bn_eval, _unwrap, attention_groups_in_use


class StepMixin:
    """One training step of either stage (a part of :class:`~tsjnet_sdk.training.trainer.Trainer`)."""

    # ------------------------------------------------------------------------------------------
    def total_steps(self) -> int:
        r = self.cfg.run
        return r.max_steps if r.max_steps is not None else r.epochs * self.batches_per_epoch

    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype, enabled=self.amp)

    def _to_dev_targets(self, dets: list, mod: str, idx: list[int]) -> list[dict[str, Tensor]]:
        return [{k: v.to(self.device) for k, v in dets[i][mod].items()} for i in idx]

    def _det_losses(self, images: Tensor, dets: list, mod: str, idx: list[int], dummy: bool) -> dict[str, Tensor]:
        """Faster R-CNN losses on images[idx]; ``dummy``: all images with empty targets (x0), so every
        DDP rank runs the same networks even without labels in its batch."""
        if dummy:
            idx = list(range(images.shape[0]))
            targets = [
                {"boxes": torch.zeros(0, 4, device=self.device), "labels": torch.zeros(0, dtype=torch.int64, device=self.device)}
                for _ in idx
            ]
        else:
            targets = self._to_dev_targets(dets, mod, idx)
        with self._autocast():
            losses = self.detector(detector_inputs(images[idx]), targets)
        return {k: v.float() * (0.0 if dummy else 1.0) for k, v in losses.items()}

    def _seg_loss(self, images: Tensor, segs: list, idx: list[int], dummy: bool) -> Tensor:
        ignore = self.cfg.tasks.segmentation.ignore_index
        if dummy:
            idx = list(range(images.shape[0]))
            labels = torch.full((len(idx), *images.shape[-2:]), ignore, dtype=torch.int64, device=self.device)
        else:
            labels = torch.stack([segs[i] for i in idx]).to(self.device)
        net = self.segmenter
        with _bn_eval(_unwrap(net), len(idx) < 2 and _unwrap(net).training), self._autocast():
            logits = segmenter_forward(net, images[idx])
        return segmentation_loss(logits, labels, ignore)

    def _fusion_step(self, batch: dict[str, Any]) -> dict[str, float]:
        ir, vis = batch["ir"].to(self.device, non_blocking=True), batch["vis"].to(self.device, non_blocking=True)
        lw = self.loss_weights
        self._train_mode()
        with self._autocast():
            out = self.model_ddp(ir, vis, reconstruct=self.fusion_loss.needs_reconstruction)
        total, terms = self.fusion_loss(ir, vis, out)
        logs: dict[str, Tensor] = {k: v.detach() for k, v in terms.items()}
        logs["att_groups"] = attention_groups_in_use(out.attention.detach())
        logs["fusion"] = total.detach()
        j_f: Tensor = total
        j_t: Tensor | None = None
        force = self.joint and self.dist.enabled  # every rank must run the DDP-wrapped task networks
        if self.detector is not None:
            idx = [i for i, d in enumerate(batch["det"]) if d is not None]
            if idx or force:
                ld = self._det_losses(out.fused, batch["det"], "fused", idx, dummy=not idx)
                det_f = detection_objective(ld, lw["det_terms"])
                j_f = j_f + lw["detection"] * det_f
                if idx:
                    logs["det_fused"] = det_f.detach()
                if self.joint:
                    j_t = sum(ld.values())
                if self.det_source_terms:
                    for mod, img in (("ir", ir), ("vi", vis)):
                        with torch.no_grad() if not self.joint else contextlib.nullcontext():
                            ls = self._det_losses(img, batch["det"], mod, idx, dummy=not idx)
                        if idx:
                            logs[f"det_{mod}"] = detection_objective(ls, lw["det_terms"]).detach()
                        if self.joint:
                            j_t = j_t + sum(ls.values())
        if self.segmenter is not None:
            idx = [i for i, s in enumerate(batch["seg"]) if s is not None]
            if idx or force:
                ce = self._seg_loss(out.fused, batch["seg"], idx, dummy=not idx)
                j_f = j_f + lw["segmentation"] * ce
                if idx:
                    logs["seg"] = ce.detach()
                if self.joint:
                    j_t = ce if j_t is None else j_t + ce
        logs["loss"] = j_f.detach()

        self.optimizer.zero_grad(set_to_none=True)
        if self.task_optimizer is not None:
            self.task_optimizer.zero_grad(set_to_none=True)
        if j_t is not None:
            fusion_params = [p for p in self.model.parameters() if p.requires_grad]
            self.scaler.scale(j_f).backward(inputs=fusion_params, retain_graph=True)
            self.scaler.scale(j_t).backward(inputs=self._task_params())
        else:
            self.scaler.scale(j_f).backward()
        values = self._reduce_logs(logs)
        opts = [(self.optimizer, list(self.model.parameters()))]
        if j_t is not None:
            opts.append((self.task_optimizer, self._task_params()))
        self._optimizer_step(opts, finite=math.isfinite(values["loss"]))
        return values

    def _task_step(self, batch: dict[str, Any]) -> dict[str, float]:
        ir, vis = batch["ir"].to(self.device), batch["vis"].to(self.device)
        logs: dict[str, Tensor] = {}
        j: Tensor | None = None
        force = self.dist.enabled
        if self.detector is not None:
            idx = [i for i, d in enumerate(batch["det"]) if d is not None]
            if idx or force:
                det_total = 0.0
                for mod, img in (("ir", ir), ("vi", vis)):
                    ld = self._det_losses(img, batch["det"], mod, idx, dummy=not idx)
                    det_total = det_total + sum(ld.values())
                j = det_total
                if idx:
                    logs["task_det"] = det_total.detach()
        if self.segmenter is not None:
            idx = [i for i, s in enumerate(batch["seg"]) if s is not None]
            if idx or force:
                ce = self._seg_loss(ir, batch["seg"], idx, not idx) + self._seg_loss(vis, batch["seg"], idx, not idx)
                j = ce if j is None else j + ce
                if idx:
                    logs["task_seg"] = ce.detach()
        self.task_optimizer.zero_grad(set_to_none=True)
        if j is not None:
            logs["task_loss"] = j.detach()
            self.scaler.scale(j).backward()
        else:
            logs["task_loss"] = torch.zeros((), device=self.device)
        values = self._reduce_logs(logs)
        if j is not None:
            self._optimizer_step([(self.task_optimizer, self._task_params())], finite=math.isfinite(values["task_loss"]))
        return values

    def _optimizer_step(self, opts: list[tuple[torch.optim.Optimizer, list[nn.Parameter]]], finite: bool) -> None:
        clip = self.cfg.optim.clip_grad_norm
        if not finite and not self.scaler.is_enabled():
            self._bad_steps += 1
            self.pos["skipped_steps"] += 1
            for opt, _ in opts:
                opt.zero_grad(set_to_none=True)
            if self._bad_steps >= 5:
                raise TrainingError("5 consecutive steps with a non-finite loss: lower optim.lr or check the data")
            return
        self._bad_steps = 0
        for opt, params in opts:
            self.scaler.unscale_(opt)  # unscale first: clip the true gradient (spec §8.4)
            if clip:
                torch.nn.utils.clip_grad_norm_(params, clip)
        for opt, _ in opts:
            self.scaler.step(opt)
        self.scaler.update()

    def _reduce_logs(self, logs: dict[str, Tensor]) -> dict[str, float]:
        """Mean of each logged value over the ranks that have it (one all_reduce)."""
        if not self.dist.enabled:
            return {k: float(v) for k, v in logs.items()}
        keys = sorted(self._log_keys)
        buf = torch.zeros(2 * len(keys), dtype=torch.float64, device=self.device)
        for i, k in enumerate(keys):
            if k in logs:
                buf[2 * i] = logs[k].double()
                buf[2 * i + 1] = 1.0
        dist.all_reduce(buf)
        return {k: float(buf[2 * i] / buf[2 * i + 1]) for i, k in enumerate(keys) if buf[2 * i + 1] > 0}

    @property
    def _log_keys(self) -> list[str]:
        keys = ["loss", "fusion", *[k for k in FUSION_TERMS if self.fusion_loss.weights[k]], "att_groups"]
        if self.detector is not None:
            keys += ["det_fused", "det_ir", "det_vi", "task_det"]
        if self.segmenter is not None:
            keys += ["seg", "task_seg"]
        return keys + ["task_loss"]
