"""The TSJNet trainer: fusion network + optional detection/segmentation drivers, one process or many
(torchrun: DistributedDataParallel + DistributedSampler), exact resume.

Per fusion step (paper eq. 7):
    out   = TSJNet(I, V, reconstruct=True)
    J_f   = L_MFF(I, V, out) + w_det * L_det^F(F) + w_seg * L_seg(F)          -> fusion network
    J_t   = sum of all Faster R-CNN terms on I, V and F + L_seg(F)             -> task networks (joint mode)
L_det^F keeps the preset's regression terms (eq. 12); L_det^I and L_det^V do not depend on the fusion
network, so they only matter when the detector trains (joint mode or the task stage). With
``tasks.mode = "joint"`` the two objectives are back-propagated separately
(``backward(inputs=...)``), so the detector's classification terms train the detector but never the
fusion network.

AMP (CUDA): autocast + GradScaler; gradients are unscaled *before* clipping (the official script
clipped scaled gradients, spec §8.4).

Files in ``run.out_dir``: ``last.safetensors`` / ``best.safetensors`` (tsjnet checkpoints:
``load_checkpoint``, the runtime and export read them), ``last.state.pt`` (everything needed to
resume: model, optimizers, scheduler, scaler, RNG of every rank, data position), ``train_log.csv``,
``val_log.csv``, ``samples/step_*.png``, ``config.json``, ``log.txt``, and ``detector.safetensors`` /
``segmenter.safetensors`` when this run trained them. Every file is written atomically.

Layout: this module holds :class:`Trainer` (construction, device/seed set-up, the stage loops, the summary) and
``train``; the Trainer takes the rest of its methods from one mixin per job: ``trainer_data`` (datasets, loaders,
validation metric), ``trainer_model`` (model, BatchNorm regime, task networks, optimisers), ``trainer_step`` (one
step of either stage), ``trainer_logging`` (records, CSV logs, TensorBoard, progress), ``trainer_validation``
(validation, best checkpoint) and ``trainer_checkpoint`` (checkpoints, resume); ``trainer_common`` holds the
shared constants and helpers.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tsjnet_sdk.atomic import write_bytes_atomic
from tsjnet_sdk.training.config import TrainConfig
from tsjnet_sdk.training.trainer_checkpoint import CheckpointMixin
from tsjnet_sdk.training.trainer_common import (
    FUSION_TERMS,
    STATE_FORMAT,
    STATE_VERSION,
    TrainingError,
    _Dist,
    _unwrap,
    attention_groups_in_use,
    reopen_attention,
)
from tsjnet_sdk.training.trainer_data import DataSetupMixin
from tsjnet_sdk.training.trainer_logging import LoggingMixin
from tsjnet_sdk.training.trainer_model import ModelSetupMixin
from tsjnet_sdk.training.trainer_step import StepMixin
from tsjnet_sdk.training.trainer_validation import ValidationMixin

# Names other modules and tests import from here (the pieces now live in the trainer_* modules).
__all__ = [
    "FUSION_TERMS",
    "STATE_FORMAT",
    "STATE_VERSION",
    "Trainer",
    "TrainingError",
    "attention_groups_in_use",
    "reopen_attention",
    "train",
]


# ----------------------------------------------------------------------------------------------


class Trainer(DataSetupMixin, ModelSetupMixin, StepMixin, LoggingMixin, ValidationMixin, CheckpointMixin):
    """Train TSJNet from a :class:`TrainConfig`. ``Trainer(cfg).fit()`` -> summary dict.

    ``resume``: a ``*.state.pt`` file (or True for ``run.out_dir/last.state.pt``) to continue from.
    ``on_step_end``: optional callable(trainer) after every step's bookkeeping (tests, notebooks).
    ``console``: a rich Console for messages (default: stderr).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        resume: str | os.PathLike | bool | None = None,
        on_step_end: Callable[[Trainer], None] | None = None,
        console: Any = None,
    ) -> None:
        self.cfg = cfg
        self.out_dir = Path(cfg.run.out_dir)
        self.resume = resume
        self.on_step_end = on_step_end
        self.dist = _Dist()
        if console is None:
            from rich.console import Console

            console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.console = console
        self.messages: list[str] = []
        self.pos: dict[str, Any] = {
            "stage": "tasks" if cfg.tasks.pretrain_steps > 0 else "fusion",
            "task_step": 0,
            "task_epoch": 0,
            "task_batch": 0,
            "step": 0,
            "epoch": 0,
            "batch": 0,
            "epoch_loss_sum": 0.0,
            "epoch_loss_count": 0,
            "best": None,
            "best_step": None,
            "skipped_steps": 0,
        }
        self.train_rows: list[dict[str, Any]] = []
        self.val_rows: list[dict[str, Any]] = []
        self._interval: dict[str, list[float]] = {}
        self._interval_time = 0.0
        self._interval_steps = 0
        self._bad_steps = 0
        self._last_flush = time.monotonic()
        self.step_times: list[float] = []

    # ------------------------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        if self.dist.main:
            self.messages.append(msg)
            self.console.print(msg, markup=False, highlight=False)

    # ------------------------------------------------------------------------------------------
    def _setup(self) -> None:
        cfg = self.cfg
        r = cfg.run
        cuda = torch.cuda.is_available()
        if r.device == "auto":
            dev = f"cuda:{self.dist.local_rank}" if cuda else "cpu"
        elif r.device == "cuda" and self.dist.enabled:
            dev = f"cuda:{self.dist.local_rank}"
        else:
            dev = r.device
        self.device = torch.device(dev)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        backend = r.dist_backend if r.dist_backend != "auto" else ("nccl" if self.device.type == "cuda" else "gloo")
        self.dist.init(backend)

        if r.num_threads is not None:
            self._threads_before = torch.get_num_threads()
            torch.set_num_threads(r.num_threads)
        torch.manual_seed(r.seed)
        random.seed(r.seed)
        np.random.seed(r.seed % 2**32)
        if r.deterministic:
            self._determinism_before = (
                torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(),
            )
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

        self.amp = (r.amp is True) or (r.amp == "auto" and self.device.type == "cuda")
        self.amp_dtype = torch.float16 if r.amp_dtype == "float16" else torch.bfloat16
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.amp and self.device.type == "cuda" and self.amp_dtype == torch.float16
        )

        self.log(
            f"tsjnet train: device {self.device}, {self.dist.world} process(es)"
            f"{' (' + backend + ')' if self.dist.enabled else ''}, AMP {'on (' + r.amp_dtype + ')' if self.amp else 'off'}, "
            f"seed {r.seed}, out_dir {self.out_dir}"
        )
        self._setup_data()
        self._setup_model()
        self._setup_tasks()
        self._setup_optim()
        # per-rank randomness (dropout, drop path, detector sampling) after identical initialisation
        torch.manual_seed(r.seed + self.dist.rank)

    # ------------------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        try:
            state = None
            if self.resume:
                state = self._read_state(self.out_dir / "last.state.pt" if self.resume is True else Path(self.resume))
                self.pos["stage"] = state["progress"]["stage"]  # decides which networks train (and get DDP)
            self._setup()
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if state is not None:
                self._apply_state(state)
            if self.pos["stage"] == "tasks" and self.task_optimizer is None:
                self.log("no task networks in this run (no labels): skipping the task stage")
                self.pos["stage"] = "fusion"
            if self.dist.main:
                write_bytes_atomic(self.out_dir / "config.json", json.dumps(self.cfg.to_dict(), indent=2).encode())
            self._open_tensorboard()
            with self._progress() as progress:
                self._progress_bar = progress
                if self.pos["stage"] == "tasks":
                    self._run_task_stage()
                self._run_fusion_stage()
            return self._summary()
        finally:
            self._close()

    def _close(self) -> None:
        if getattr(self, "_threads_before", None) is not None:  # leave the process as we found it
            torch.set_num_threads(self._threads_before)
        if getattr(self, "_determinism_before", None) is not None:
            enabled, warn_only = self._determinism_before
            torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
        tb = getattr(self, "_tb", None)
        if tb is not None:
            tb.close()
        self.dist.close()

    def _run_task_stage(self) -> None:
        total = self.cfg.tasks.pretrain_steps
        self.log(f"stage 1: training the task networks for {total} steps (fusion network untouched)")
        self._set_task_modes(True)
        seed_offset = 1_000_003  # a different shuffle from the fusion epochs
        while self.pos["task_step"] < total:
            self.sampler.set_position(seed_offset + self.pos["task_epoch"], self.pos["task_batch"])
            for batch in self.loader:
                t0 = time.perf_counter()
                values = self._task_step(batch)
                self.pos["task_step"] += 1
                self.pos["task_batch"] += 1
                if self.pos["task_batch"] >= self.batches_per_epoch:
                    self.pos["task_epoch"] += 1
                    self.pos["task_batch"] = 0
                self._record("tasks", self.pos["task_step"], values, time.perf_counter() - t0, total)
                done = self.pos["task_step"] >= total
                if done:
                    self.pos["stage"] = "fusion"
                    self._set_task_modes(self.joint)
                    self._checkpoint(final=False)
                elif self.cfg.run.checkpoint_every and self.pos["task_step"] % self.cfg.run.checkpoint_every == 0:
                    self._checkpoint(final=False)
                if self.on_step_end is not None:
                    self.on_step_end(self)
                if done:
                    break
        self.pos["stage"] = "fusion"
        if not self.joint:  # frozen from here on: drop the DDP wrappers (no gradients to reduce)
            self.detector = _unwrap(self.detector) if self.detector is not None else None
            self.segmenter = _unwrap(self.segmenter) if self.segmenter is not None else None
        self._set_task_modes(self.joint)

    def _run_fusion_stage(self) -> None:
        total = self.total_steps()
        r, v = self.cfg.run, self.cfg.val
        if self.pos["step"] == 0:
            self.log(
                f"training the fusion network: {total} steps ({self.batches_per_epoch} per epoch, "
                f"batch {self.cfg.data.batch_size} x {self.dist.world} process(es))"
            )
        else:
            self.log(f"resuming the fusion stage at step {self.pos['step']}/{total}")
        while self.pos["step"] < total:
            self.sampler.set_position(self.pos["epoch"], self.pos["batch"])
            for batch in self.loader:
                t0 = time.perf_counter()
                values = self._fusion_step(batch)
                step = self.pos["step"] = self.pos["step"] + 1
                self.pos["batch"] += 1
                if math.isfinite(values["loss"]):
                    self.pos["epoch_loss_sum"] += values["loss"]
                    self.pos["epoch_loss_count"] += 1
                self._record("fusion", step, values, time.perf_counter() - t0, total)
                epoch_end = self.pos["batch"] >= self.batches_per_epoch
                last = step >= total
                val_result = None
                if self.val_set is not None and (
                    (v.every_steps and step % v.every_steps == 0) or (not v.every_steps and epoch_end) or last
                ):
                    val_result = self._validate(step)
                count = self.pos["epoch_loss_count"]
                mean = self.pos["epoch_loss_sum"] / count if count else math.nan
                if epoch_end:
                    self.log(f"epoch {self.pos['epoch'] + 1} done: mean loss {mean:.5f}")
                    self._scheduler_step(mean, val_result)
                    self.pos["epoch"] += 1
                    self.pos["batch"] = 0
                    self.pos["epoch_loss_sum"], self.pos["epoch_loss_count"] = 0.0, 0
                if self.val_set is None and (epoch_end or last):
                    self._update_best_from_train(step, mean)
                if last or (r.checkpoint_every and step % r.checkpoint_every == 0) or (not r.checkpoint_every and epoch_end):
                    self._checkpoint(final=last)
                if self.on_step_end is not None:
                    self.on_step_end(self)
                if last or epoch_end:
                    break
        if total == 0:
            self._checkpoint(final=True)

    def _scheduler_step(self, train_mean: float, val_result: dict[str, float] | None) -> None:
        if self.scheduler is None:
            return
        if self.cfg.scheduler.monitor == "val":
            if val_result is None or self.cfg.val.monitor not in val_result:
                return
            value = val_result[self.cfg.val.monitor]
        else:
            value = train_mean
        before = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step(value)
        after = self.optimizer.param_groups[0]["lr"]
        if after != before:
            self.log(f"learning rate {before:g} -> {after:g} (no improvement for {self.cfg.scheduler.patience} epochs)")

    # ------------------------------------------------------------------------------------------
    def _summary(self) -> dict[str, Any]:
        rows = [r for r in self.train_rows if r["stage"] == "fusion" and r.get("loss", "") != ""]
        times = self.step_times[1:] or self.step_times
        return {
            "rank": self.dist.rank,
            "steps": self.pos["step"],
            "task_steps": self.pos["task_step"],
            "epochs_completed": self.pos["epoch"],
            "first_loss": rows[0]["loss"] if rows else None,
            "last_loss": rows[-1]["loss"] if rows else None,
            "best": self.pos["best"],
            "best_step": self.pos["best_step"],
            "sec_per_step": float(np.mean(times)) if times else None,
            "skipped_steps": self.pos["skipped_steps"],
            "out_dir": str(self.out_dir),
            "last": str(self.out_dir / "last.safetensors"),
            "best_checkpoint": str(self.out_dir / "best.safetensors") if (self.out_dir / "best.safetensors").exists() else None,
        }


def train(cfg: TrainConfig, resume: str | os.PathLike | bool | None = None, **kwargs: Any) -> dict[str, Any]:
    """Train with ``cfg``; returns the summary dict (see :class:`Trainer`)."""
    return Trainer(cfg, resume=resume, **kwargs).fit()
