"""Trainer checkpoints: ``last.safetensors`` / ``last.state.pt`` writing, and exact resume from a state file."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from tsjnet_sdk.atomic import write_bytes_atomic
from tsjnet_sdk.training.tasks import save_task_weights
from tsjnet_sdk.training.trainer_common import _RESUME_SENSITIVE, STATE_FORMAT, STATE_VERSION, TrainingError, _unwrap
from tsjnet_sdk.training.trainer_logging import _num, _read_csv


class CheckpointMixin:
    """Checkpoints and resume (a part of :class:`~tsjnet_sdk.training.trainer.Trainer`)."""

    # ------------------------------------------------------------------------------------------
    # checkpoints

    def _checkpoint(self, final: bool) -> None:
        from tsjnet_sdk.models import save_checkpoint

        rng = _rng_state()
        if self.dist.enabled:
            gathered: list[Any] = [None] * self.dist.world
            dist.all_gather_object(gathered, rng)
        else:
            gathered = [rng]
        if self.dist.main:
            step = self.pos["step"]
            save_checkpoint(
                self.model,
                self.out_dir / "last.safetensors",
                extra_metadata={"training_step": str(step), "stage": self.pos["stage"], "kind": "last"},
            )
            if self.cfg.run.keep_checkpoints:  # every checkpoint kept, for selection on validation (training/select.py)
                save_checkpoint(
                    self.model,
                    self.out_dir / f"step_{step:07d}.safetensors",
                    extra_metadata={"training_step": str(step), "stage": self.pos["stage"], "kind": "step"},
                )
            state = {
                "format": STATE_FORMAT,
                "version": STATE_VERSION,
                "config": self.cfg.to_dict(),
                "model_config": self.model.config.to_dict(),
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "scaler": self.scaler.state_dict(),
                "task_optimizer": self.task_optimizer.state_dict() if self.task_optimizer is not None else None,
                "detector": _unwrap(self.detector).state_dict() if self.det_trained else None,
                "segmenter": _unwrap(self.segmenter).state_dict() if self.seg_trained else None,
                "progress": dict(self.pos),
                "rng": gathered,
                "world_size": self.dist.world,
            }
            buf = io.BytesIO()
            torch.save(state, buf)
            write_bytes_atomic(self.out_dir / "last.state.pt", buf.getvalue())
            meta = {"classes": json.dumps(self.det_classes), "arch": "fasterrcnn_resnet50_fpn"}
            if self.det_trained:
                save_task_weights(_unwrap(self.detector), self.out_dir / "detector.safetensors", meta)
            if self.seg_trained:
                save_task_weights(
                    _unwrap(self.segmenter),
                    self.out_dir / "segmenter.safetensors",
                    {"arch": f"deeplabv3_{self.cfg.tasks.segmentation.backbone}", "num_classes": self.seg_num_classes},
                )
            self._flush_logs()
        self.dist.barrier()

    def _read_state(self, path: Path) -> dict[str, Any]:
        if not path.is_file():
            raise TrainingError(f"cannot resume: {path} not found (was the run started with this out_dir?)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unpickling failure: named in TrainingError
            raise TrainingError(f"cannot resume: {path} is not a readable training state ({e})") from None
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise TrainingError(f"cannot resume: {path} is not a tsjnet training state")
        state["path"] = str(path)
        return state

    def _apply_state(self, state: dict[str, Any]) -> None:
        path = state["path"]
        if state["model_config"] != self.model.config.to_dict():
            raise TrainingError(
                f"cannot resume: {path} holds model config {state['model_config'].get('name')!r} with "
                "different fields than this config's model"
            )
        old, new = _flatten(state["config"]), _flatten(self.cfg.to_dict())
        changed = sorted(
            k
            for k in set(old) | set(new)
            if old.get(k) != new.get(k) and any(k == s or k.startswith(s + ".") for s in _RESUME_SENSITIVE)
        )
        if changed:
            self.log(
                f"WARNING: resuming with a changed config ({', '.join(changed[:8])}"
                f"{'...' if len(changed) > 8 else ''}): the run will not match an uninterrupted one"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.task_optimizer is not None and state["task_optimizer"] is not None:
            self.task_optimizer.load_state_dict(state["task_optimizer"])
        if state.get("detector") is not None and self.detector is not None:
            _unwrap(self.detector).load_state_dict(state["detector"])
        if state.get("segmenter") is not None and self.segmenter is not None:
            _unwrap(self.segmenter).load_state_dict(state["segmenter"])
        self.pos.update(state["progress"])
        rngs = state["rng"]
        if state["world_size"] == self.dist.world:
            _set_rng_state(rngs[self.dist.rank])
        else:
            self.log(
                f"WARNING: the state was saved by {state['world_size']} process(es), resuming with "
                f"{self.dist.world}: random streams restart (data order is still exact)"
            )
            torch.manual_seed(self.cfg.run.seed + self.dist.rank + 7919 * self.pos["step"])
        self._set_task_modes(self.pos["stage"] == "tasks" or self.joint)
        # logs: keep what was written up to the resumed position
        if self.dist.main:
            self.train_rows = [
                r
                for r in _read_csv(self.out_dir / "train_log.csv")
                if (r["stage"] == "fusion" and int(r["step"]) <= self.pos["step"])
                or (r["stage"] == "tasks" and int(r["step"]) <= self.pos["task_step"])
            ]
            self.val_rows = [r for r in _read_csv(self.out_dir / "val_log.csv") if int(r["step"]) <= self.pos["step"]]
            for rows in (self.train_rows, self.val_rows):
                for r in rows:
                    for k, v in r.items():
                        if k != "stage":
                            r[k] = _num(v)
        where = f"task step {self.pos['task_step']}" if self.pos["stage"] == "tasks" else f"step {self.pos['step']}"
        self.log(f"resumed from {path} at {where} (epoch {self.pos['epoch']}, batch {self.pos['batch']})")


# ----------------------------------------------------------------------------------------------


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": (
            np_state[0],
            torch.from_numpy(np_state[1].astype(np.int64)),
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        ),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and k not in ("overrides", "det_aliases"):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
