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
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import random
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from tsjnet_sdk.atomic import write_bytes_atomic
from tsjnet_sdk.errors import TsjnetError
from tsjnet_sdk.training.config import TrainConfig
from tsjnet_sdk.training.data import (
    AugmentConfig,
    FusionPairDataset,
    ScanReport,
    collate,
    detection_label_space,
    has_det_labels,
    holdout_split,
    make_sampler,
    scan_dataset,
    segmentation_classes,
)
from tsjnet_sdk.training.losses import FusionLoss, detection_objective, segmentation_loss
from tsjnet_sdk.training.tasks import (
    build_detector,
    build_segmenter,
    detector_inputs,
    freeze_untrainable_detector_layers,
    load_task_weights,
    save_task_weights,
    segmenter_forward,
    set_trainable,
)

STATE_FORMAT = "tsjnet-train-state"
STATE_VERSION = 1
FUSION_TERMS = ("ssim", "diversity", "recon_ir", "recon_vis", "intensity", "gradient")
# Changing these between a run and its resume changes the trajectory: warn.
_RESUME_SENSITIVE = ("model", "data", "loss", "optim", "scheduler", "tasks", "run.seed", "run.amp", "run.amp_dtype")


class TrainingError(TsjnetError, RuntimeError):
    """Training cannot go on (non-finite losses, an unusable resume state, ...)."""


# ----------------------------------------------------------------------------------------------
# Small helpers


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


def attention_groups_in_use(att: Tensor, threshold: float = 0.1) -> Tensor:
    """How many of the decoder's attention groups pass their channels on: groups whose map
    [B, G, H, W] averages above ``threshold``. A collapsed decoder (one group ~1, the rest ~0) gives 1-2
    of 8 and gates most fused channels to zero."""
    return (att.float().mean(dim=(0, 2, 3)) > threshold).sum().float()


def reopen_attention(model: nn.Module) -> None:
    """Set the decoder's grouped 1x1 attention conv to weight 0, bias +3: every group's map becomes
    sigmoid(3) ~ 0.95 everywhere, so all fused channels pass again and training re-learns the gates."""
    conv = _unwrap(model).decoder.attention.to_maps
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.fill_(3.0)


def _unwrap(m: nn.Module) -> nn.Module:
    return m.module if isinstance(m, nn.parallel.DistributedDataParallel) else m


@contextlib.contextmanager
def _bn_eval(net: nn.Module, active: bool):
    """BatchNorm in eval for one forward (a trainable DeepLab's ASPP pooling BN cannot take batch 1)."""
    if not active:
        yield
        return
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    for m in bns:
        m.eval()
    try:
        yield
    finally:
        for m in bns:
            m.train()


class _Dist:
    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.owns_group = False

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def init(self, backend: str) -> None:
        if self.enabled and not dist.is_initialized():
            dist.init_process_group(backend=backend)
            self.owns_group = True

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False


# ----------------------------------------------------------------------------------------------


class Trainer:
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

    def _setup_data(self) -> None:
        cfg, d = self.cfg, self.cfg.data
        det_cfg, seg_cfg = cfg.tasks.detection, cfg.tasks.segmentation
        self.det_classes = detection_label_space(d.datasets, det_cfg.classes)
        seg_table = segmentation_classes(d.datasets)
        self.seg_num_classes = seg_cfg.num_classes or (len(seg_table) if seg_table else None)
        report = ScanReport()
        records, repeats = [], []
        for ds in d.datasets:
            before = report.pairs
            recs = scan_dataset(
                ds, self.det_classes, self.seg_num_classes, seg_cfg.ignore_index, d.on_error, d.missing_det_label, report
            )
            records += recs
            repeats += [ds.repeat] * len(recs)
            labels = [k for k, v in (("detection", has_det_labels(ds)), ("segmentation", bool(ds.seg_labels))) if v]
            self.log(
                f"dataset {ds.display_name()}: {report.pairs - before} pairs from {ds.root}; labels: "
                f"{', '.join(labels) if labels else 'none (trains with the fusion loss only)'}"
            )
        held: list = []
        if cfg.val.fraction > 0:
            keep = holdout_split(records, cfg.val.fraction, cfg.run.seed)[0]
            kept = {id(x) for x in keep}
            held = [x for x in records if id(x) not in kept]
            repeats = [rp for x, rp in zip(records, repeats) if id(x) in kept]
            records = keep
        for line in report.lines():
            self.log(f"  train data: {line}")
        if report.skipped:
            warnings.warn(
                f"skipped {sum(report.skipped.values())} training pair(s) (data.on_error = 'skip'); see the log", stacklevel=2
            )
        need = d.batch_size * self.dist.world
        if len(records) < need:
            raise TrainingError(f"{len(records)} training pair(s), fewer than one global batch ({need})")
        self.report = report

        self.det_enabled = det_cfg.enabled is True or (det_cfg.enabled == "auto" and bool(report.det_datasets))
        self.seg_enabled = seg_cfg.enabled is True or (seg_cfg.enabled == "auto" and bool(report.seg_datasets))
        if self.det_enabled and not self.det_classes:
            raise TrainingError("tasks.detection.enabled = true but no dataset has detection labels or classes")
        if self.seg_enabled and not self.seg_num_classes:
            raise TrainingError(
                "tasks.segmentation.enabled = true but no dataset has segmentation labels (or set tasks.segmentation.num_classes)"
            )
        if not report.det_datasets and not report.seg_datasets:
            self.log("no detection or segmentation labels in the training data: fusion loss only")

        aug = AugmentConfig(
            crop=cfg.crop_hw(),
            hflip=d.hflip,
            vflip=d.vflip,
            gain=tuple(d.gain) if d.gain is not None else None,
            gain_prob=d.gain_prob,
            object_crop_prob=d.object_crop_prob,
            min_box_visibility=d.min_box_visibility,
            min_box_size=d.min_box_size,
            ignore_index=seg_cfg.ignore_index,
        )
        self.train_set = FusionPairDataset(records, aug, seed=cfg.run.seed, on_error=d.on_error, repeat=repeats)
        self.sampler = make_sampler(self.train_set, self.dist.world, self.dist.rank, True, cfg.run.seed, d.batch_size)
        self.loader = torch.utils.data.DataLoader(
            self.train_set,
            batch_size=d.batch_size,
            sampler=self.sampler,
            num_workers=d.num_workers,
            collate_fn=collate,
            drop_last=True,
            pin_memory=self.device.type == "cuda",
            persistent_workers=d.num_workers > 0,
            # its own generator: creating an iterator (every epoch, and on resume mid-epoch) must not draw
            # from the global RNG, or a resumed run's dropout stream would differ from an uninterrupted one
            generator=torch.Generator().manual_seed(cfg.run.seed),
        )
        self.batches_per_epoch = self.sampler.batches_per_epoch()
        if self.batches_per_epoch < 1:
            raise TrainingError("the training set is too small for one batch per process")

        # validation pairs: val datasets (labels not needed) and/or the held-out fraction
        import dataclasses as dc

        val_records = list(held)
        vreport = ScanReport()
        for ds in cfg.val.datasets:
            plain = dc.replace(ds, det_labels=None, det_labels_ir=None, det_labels_vi=None, seg_labels=None)
            val_records += scan_dataset(plain, [], None, 255, d.on_error, "empty", vreport)
        val_records = val_records[: cfg.val.max_pairs] if cfg.val.max_pairs else val_records
        self.val_set = None
        if val_records:
            self.val_set = FusionPairDataset(val_records, AugmentConfig(crop=_val_crop(cfg), center=True, hflip=0, vflip=0))
            self.log(
                f"validation: {len(val_records)} pair(s), every "
                f"{str(cfg.val.every_steps) + ' steps' if cfg.val.every_steps else 'epoch'}; metrics: {self._metrics_desc()}"
            )
        else:
            self.log("validation: none (no val.datasets and val.fraction = 0): best.safetensors follows the training loss")

    def _metrics_desc(self) -> str:
        self._metric_fn, desc = _metric_function(self.cfg.val.metrics, self.cfg.val.metric_names)
        return desc

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
    # logging

    def _record(self, stage: str, step: int, values: dict[str, float], dt: float, total: int) -> None:
        self.step_times.append(dt)
        for k, val in values.items():
            self._interval.setdefault(k, []).append(val)
        self._interval_time += dt
        self._interval_steps += 1
        if self._progress_bar is not None:
            self._progress_bar.update(
                self._progress_task,
                completed=step,
                total=total,
                description=f"{stage} loss {values.get('loss', values.get('task_loss', float('nan'))):.4f}",
            )
        if step % self.cfg.run.log_every and step != total:
            return
        row: dict[str, Any] = {
            "stage": stage,
            "step": step,
            "epoch": self.pos["epoch" if stage == "fusion" else "task_epoch"],
            "lr": self.optimizer.param_groups[0]["lr"],
            "task_lr": self.task_optimizer.param_groups[0]["lr"] if self.task_optimizer else "",
            "sec_per_step": self._interval_time / max(1, self._interval_steps),
        }
        for k in self._log_keys:
            vals = [x for x in self._interval.get(k, []) if math.isfinite(x)]
            row[k] = sum(vals) / len(vals) if vals else ""
        self._interval, self._interval_time, self._interval_steps = {}, 0.0, 0
        if not self.dist.main:
            return
        self.train_rows.append(row)
        main_key = "loss" if stage == "fusion" else "task_loss"
        parts = [f"{k} {row[k]:.4f}" for k in self._log_keys if k not in (main_key, "task_loss") and row.get(k) != ""]
        if self._progress_bar is None:
            self.console.print(
                f"{stage} step {step}/{total}  {main_key} {row[main_key] if row[main_key] == '' else format(row[main_key], '.5f')}  "
                f"({', '.join(parts)})  lr {row['lr' if stage == 'fusion' else 'task_lr']:.3g}  {row['sec_per_step']:.2f} s/step",
                markup=False,
                highlight=False,
            )
        if self._tb is not None:
            for k in self._log_keys:
                if row.get(k) != "":
                    self._tb.add_scalar(f"{stage}/{k}", row[k], step)
            self._tb.add_scalar(f"{stage}/lr", row["lr"], step)
        if time.monotonic() - self._last_flush > 60:
            self._flush_logs()

    def _flush_logs(self) -> None:
        if not self.dist.main:
            return
        cols = ["stage", "step", "epoch", "lr", "task_lr", "sec_per_step", *self._log_keys]
        _write_csv(self.out_dir / "train_log.csv", cols, self.train_rows)
        if self.val_rows:
            vcols = list(dict.fromkeys(k for row in self.val_rows for k in row))
            _write_csv(self.out_dir / "val_log.csv", vcols, self.val_rows)
        write_bytes_atomic(self.out_dir / "log.txt", ("\n".join(self.messages) + "\n").encode())
        self._last_flush = time.monotonic()

    def _open_tensorboard(self) -> None:
        self._tb = None
        want = self.cfg.run.tensorboard
        if not self.dist.main or want is False:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception:  # noqa: BLE001 - tensorboard absent or broken: CSV logs only, said below
            if want is True:
                self.log("WARNING: run.tensorboard = true but tensorboard is not installed (pip install tensorboard); CSV only")
            return
        self._tb = SummaryWriter(str(self.out_dir / "tensorboard"))

    @contextlib.contextmanager
    def _progress(self):
        want = self.cfg.run.progress
        show = self.dist.main and (want is True or (want == "auto" and sys.stderr.isatty()))
        self._progress_bar = None
        if not show:
            yield None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        ) as progress:
            self._progress_task = progress.add_task("training", total=self.total_steps())
            yield progress

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


# ----------------------------------------------------------------------------------------------


def _val_crop(cfg: TrainConfig) -> tuple[int, int] | None:
    from tsjnet_sdk.training.config import _hw

    return _hw(cfg.val.crop_size, "val.crop_size")


def _num(v: str) -> Any:
    if v == "":
        return ""
    try:
        f = float(v)
    except ValueError:
        return v
    return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() else f


def _write_csv(path: Path, cols: list[str], rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    write_bytes_atomic(path, buf.getvalue().encode())


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _metric_function(kind: str, names: list[str] | None) -> tuple[Callable | None, str]:
    """(fn(ir, vis, fused) on [0, 1] H x W -> {name: value}, description)."""
    if kind == "none":
        return None, "none (fusion loss only)"
    if kind != "basic":
        try:
            from tsjnet_sdk.metrics import evaluate
        except ImportError:
            if kind != "auto":
                raise TrainingError(f"val.metrics = {kind!r} needs tsjnet_sdk.metrics, which is not importable") from None
        else:
            preset = "paper" if kind == "auto" else kind

            def fn(ir: np.ndarray, vis: np.ndarray, fused: np.ndarray) -> dict[str, float]:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    rep = evaluate(ir * 255.0, vis * 255.0, fused.astype(np.float64) * 255.0, preset, metrics=names)
                return {k: float(v) for k, v in rep.items()}

            return fn, f"tsjnet_sdk.metrics preset {preset!r} ({', '.join(names) if names else 'all'})"

    def basic(ir: np.ndarray, vis: np.ndarray, fused: np.ndarray) -> dict[str, float]:
        from tsjnet_sdk.training.losses import ssim

        t = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None] for a in (ir, vis, fused)]
        mse = (float(((t[2] - t[0]) ** 2).mean()) + float(((t[2] - t[1]) ** 2).mean())) / 2
        return {"SSIM": (float(ssim(t[2], t[0])) + float(ssim(t[2], t[1]))) / 2, "PSNR": 10 * math.log10(1.0 / max(mse, 1e-12))}

    return basic, "basic SSIM/PSNR (averaged over the two sources)"


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


def train(cfg: TrainConfig, resume: str | os.PathLike | bool | None = None, **kwargs: Any) -> dict[str, Any]:
    """Train with ``cfg``; returns the summary dict (see :class:`Trainer`)."""
    return Trainer(cfg, resume=resume, **kwargs).fit()
