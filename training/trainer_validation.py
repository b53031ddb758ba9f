"""Trainer validation: the validation pass, sample panels, best-value tracking and ``best.safetensors``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from tsjnet_sdk.training.trainer_common import attention_groups_in_use


class ValidationMixin:
    """Validation and the best checkpoint (a part of :class:`~tsjnet_sdk.training.trainer.Trainer`)."""

    # ------------------------------------------------------------------------------------------
    # validation

    @torch.no_grad()
    def _validate(self, step: int) -> dict[str, float] | None:
        result: dict[str, float] | None = None
        if self.dist.main:
            model = self.model
            model.eval()
            sums: dict[str, list[float]] = {}
            panels = []
            for i in range(len(self.val_set)):
                s = self.val_set[i]
                ir, vis = s["ir"][None].to(self.device), s["vis"][None].to(self.device)
                with self._autocast():
                    out = model(ir, vis, reconstruct=self.fusion_loss.needs_reconstruction)
                loss, terms = self.fusion_loss(ir, vis, out)
                sums.setdefault("loss", []).append(float(loss))
                sums.setdefault("att_groups", []).append(float(attention_groups_in_use(out.attention)))
                fused = out.fused.float().clamp(0, 1)[0, 0].cpu().numpy()
                irn, visn = s["ir"][0].numpy(), s["vis"][0].numpy()
                if self._metric_fn is not None:
                    for k, val in self._metric_fn(irn, visn, fused).items():
                        sums.setdefault(k, []).append(val)
                if len(panels) < self.cfg.val.samples:
                    panels.append((irn, visn, fused))
            self._train_mode()
            result = {k: float(np.nanmean(v)) if not all(math.isnan(x) for x in v) else math.nan for k, v in sums.items()}
            self.val_rows.append({"step": step, **result})
            shown = ", ".join(f"{k} {val:.4g}" for k, val in result.items())
            self.log(f"validation at step {step}: {shown}")
            if panels:
                _write_panel(self.out_dir / "samples" / f"step_{step:07d}.png", panels)
            self._update_best(step, result.get(self.cfg.val.monitor))
        if self.dist.enabled:
            box = [result]
            dist.broadcast_object_list(box, src=0)
            result = box[0]
            self.pos["best"], self.pos["best_step"] = self._broadcast((self.pos["best"], self.pos["best_step"]))
        return result

    def _broadcast(self, obj: Any) -> Any:
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def _better(self, value: float) -> bool:
        best = self.pos["best"]
        if value is None or not math.isfinite(value):
            return False
        return best is None or (value < best if self.cfg.val.mode == "min" else value > best)

    def _update_best(self, step: int, value: float | None) -> None:
        if value is None:
            if self.cfg.val.monitor != "loss":
                self.log(f"WARNING: val.monitor {self.cfg.val.monitor!r} is not among the validation values")
            return
        if self._better(value):
            self.pos["best"], self.pos["best_step"] = value, step
            self._save_best(step, value)

    def _update_best_from_train(self, step: int, value: float) -> None:
        # without a validation set, best = the lowest epoch-mean training loss (or the run's last partial epoch)
        if self.dist.main and self._better_train(value):
            self.pos["best"], self.pos["best_step"] = value, step
            self._save_best(step, value)
        if self.dist.enabled:
            self.pos["best"], self.pos["best_step"] = self._broadcast((self.pos["best"], self.pos["best_step"]))

    def _better_train(self, value: float) -> bool:
        best = self.pos["best"]
        return math.isfinite(value) and (best is None or value < best)

    def _save_best(self, step: int, value: float) -> None:
        from tsjnet_sdk.models import save_checkpoint

        save_checkpoint(
            self.model,
            self.out_dir / "best.safetensors",
            extra_metadata={
                "training_step": str(step),
                "monitor": self.cfg.val.monitor if self.val_set else "train_loss",
                "monitor_value": f"{value:.6g}",
                "kind": "best",
            },
        )


# ----------------------------------------------------------------------------------------------


def _write_panel(path: Path, panels: list[tuple[np.ndarray, np.ndarray, np.ndarray]], height: int = 192) -> None:
    """Rows of IR | visible | fused, each scaled to ``height`` px, as one grey PNG."""
    from PIL import Image

    from tsjnet_sdk.imaging import from_unit_float, write_image

    rows, gap = [], 4
    for trio in panels:
        ims = []
        for a in trio:
            im = Image.fromarray(from_unit_float(a))
            w = max(1, round(im.width * height / im.height))
            ims.append(np.asarray(im.resize((w, height), Image.BILINEAR)))
        sep = np.full((height, gap), 255, np.uint8)
        rows.append(np.concatenate([ims[0], sep, ims[1], sep, ims[2]], axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1])), constant_values=255) for r in rows]
    sep = np.full((gap, width), 255, np.uint8)
    canvas = np.concatenate([x for r in rows for x in (r, sep)][:-1], axis=0)
    write_image(path, canvas)
