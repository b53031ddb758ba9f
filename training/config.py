"""Training configuration: nested dataclasses read from TOML (or YAML when PyYAML is installed).

This module does not import torch. Every hyper-parameter of the paper's §5.1 is a default here:
Adam lr 1e-3, ReduceLROnPlateau x0.1 after 3 stalled epochs, 40 epochs, batch 2, mixed precision on
GPU, the MultiFacet loss weights alpha1=0.1, alpha2=6, alpha3=1 (preset ``paper``).

Relative paths inside a config file (dataset roots, ``run.out_dir``, ``model.init``, task-network
weights) are resolved against the folder that holds the config file, so a config works from any
working directory. Paths given on the command line (``--out-dir``) are relative to the working
directory as usual.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from tsjnet_sdk.errors import TsjnetError

# Class tables: position = class id in the label files (YOLO ids, segmentation map values).
CLASS_TABLES: dict[str, tuple[str, ...]] = {
    # MSRS detection labels (Lele-3/MSRS-detection-label, YOLO ids 0, 1, 2).
    "msrs-det": ("person", "bicycle", "car"),
    # M3FD detection (VOC XML): one fixed order, TarDAL's loader order (0 People ... 5 Truck).
    "m3fd": ("People", "Car", "Bus", "Lamp", "Motorcycle", "Truck"),
    # MSRS segmentation maps, ids 0..8 (Linfeng-Tang/MSRS visualize.py names).
    "msrs-seg": ("background", "car", "person", "bike", "curve", "car_stop", "guardrail", "color_cone", "bump"),
}


class ConfigError(TsjnetError, ValueError):
    """An invalid training config, with the key and the fix in the message."""


# ----------------------------------------------------------------------------------------------
# Loss presets (docs/training.md explains each term and where the numbers come from).
LOSS_PRESETS: dict[str, dict[str, Any]] = {
    # The paper, eqs. 8-10: L_MFF = 0.1 L_div + L_ssim + 6 MSE(I, I~) + 1 MSE(V, V~), with
    # L_ssim = 1/2 (1 - ssim(F, I)) + 1/2 (1 - ssim(F, V)); I = infrared, V = visible.
    # Detection (eq. 11-12): regression terms only (ROI box regression on foreground, RPN box regression).
    "paper": {
        "ssim": 1.0,
        "ssim_mode": "equal",
        "diversity": 0.1,
        "recon_ir": 6.0,
        "recon_vis": 1.0,
        "intensity": 0.0,
        "gradient": 0.0,
        "intensity_target": "max",
        "blend_beta": 1.0,
        "intensity_sigma": 0.0,
        "gradient_target": "max",
        "gradient_scales": 1,
        "det_terms": ["loss_box_reg", "loss_rpn_box_reg"],
    },
    # The official TSJNet_train.py (spec §3): 20 L_int + 20 L_grad + 10 (1 - gradient-weighted SSIM)
    # + 0.1 L_div + 6 MSE(V, V~) + 1 MSE(I, I~); detection keeps objectness as well.
    "official": {
        "ssim": 10.0,
        "ssim_mode": "gradient_weighted",
        "diversity": 0.1,
        "recon_ir": 1.0,
        "recon_vis": 6.0,
        "intensity": 20.0,
        "gradient": 20.0,
        "intensity_target": "max",
        "blend_beta": 1.0,
        "intensity_sigma": 0.0,
        "gradient_target": "max",
        "gradient_scales": 1,
        "det_terms": ["loss_box_reg", "loss_objectness", "loss_rpn_box_reg"],
    },
    # The project's default for new training (review_quality_2026-12, docs/training.md): an intensity
    # target between the pixel average and the max, T = 0.75 max(I, V) + 0.25 min(I, V) = (avg + max) / 2,
    # the max of the sources' Sobel gradients, and SSIM to both sources. The average minimises the
    # source-averaged MSE exactly and the max maximises contrast; T trades them evenly. No diversity term
    # (it collapses the decoder's attention groups to one) and no reconstruction passes (they never act
    # on F and cost ~30 % of a step).
    "balanced": {
        "ssim": 5.0,
        "ssim_mode": "equal",
        "diversity": 0.0,
        "recon_ir": 0.0,
        "recon_vis": 0.0,
        "intensity": 10.0,
        "gradient": 10.0,
        "intensity_target": "blend",
        "blend_beta": 0.75,
        "intensity_sigma": 0.0,
        "gradient_target": "max",
        "gradient_scales": 1,
        "det_terms": ["loss_box_reg", "loss_rpn_box_reg"],
    },
}
INTENSITY_TARGETS = ("max", "blend")
GRADIENT_TARGETS = ("max", "stronger")
# BatchNorm regimes of the fusion network during training (docs/training.md, "Normalisation"):
#   batch   the official behaviour: batch statistics. The encoder normalises each modality's batch on
#           its own, so the fused image cannot depend on a global gain of either input: brightness is
#           never trained (use it only to reproduce the official code).
#   frozen  running statistics fixed, affine parameters trainable: training computes the function that
#           inference runs (fine-tuning, small batches).
#   warmup  batch statistics for model.batchnorm_warmup_steps (running statistics settle), then frozen:
#           training from scratch.
#   auto    frozen when model.init is given, warmup otherwise.
BATCHNORM_MODES = ("auto", "batch", "frozen", "warmup")
DET_LOSS_TERMS = ("loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg")
SSIM_MODES = ("equal", "gradient_weighted")
# Validation metrics (tsjnet_sdk.metrics keys): the cheap, common ones; the full 'paper' set is ~20x slower.
DEFAULT_VAL_METRICS = ("EN", "SD", "SF", "AG", "SSIM", "PSNR", "Qabf", "VIF")


@dataclass
class DatasetConfig:
    """One root folder of pairs: ROOT/ir/NAME.ext pairs with ROOT/vi/NAME.ext (same stem)."""

    root: str
    name: str | None = None  # default: the root folder's name
    ir: str = "ir"
    vi: str = "vi"
    # Detection labels: folders under root (YOLO .txt or VOC .xml, same stem as the images).
    det_labels: str | None = None  # boxes for the fused image (and I/V unless given below)
    det_labels_ir: str | None = None  # boxes annotated on the IR image (MSRS det_label_ir)
    det_labels_vi: str | None = None  # boxes annotated on the visible image (MSRS det_label_vi)
    det_format: str = "auto"  # yolo | voc | auto (by file suffix)
    det_classes: Union[str, list[str]] = "msrs-det"  # a CLASS_TABLES name or the names in id order
    det_aliases: dict[str, str] = field(default_factory=dict)  # rename classes into the global table
    yolo_image_size: list[int] | None = None  # [W, H] the normalised YOLO coords refer to; default the image's
    # Segmentation labels: class-id PNGs (single channel or palette) under root, same stem.
    seg_labels: str | None = None
    seg_classes: Union[str, list[str]] = "msrs-seg"
    repeat: int = 1  # oversample this dataset (integer factor)

    def display_name(self) -> str:
        return self.name or Path(self.root).name


@dataclass
class DataConfig:
    datasets: list[DatasetConfig] = field(default_factory=list)
    crop_size: Union[int, list[int], None] = 256  # int or [H, W], multiples of 32; None = whole images
    hflip: float = 0.5
    vflip: float = 0.0
    # Random exposure: each modality, with probability gain_prob, is multiplied by its own gain drawn
    # log-uniformly from gain = [lo, hi] (then clipped to [0, 1]). Teaches dark (night) inputs to a
    # network trained on bright pairs; the loss targets are computed from the augmented inputs.
    gain: list[float] | None = None
    gain_prob: float = 0.0
    object_crop_prob: float = 0.5  # chance a crop is placed around a labelled box (det labels only)
    min_box_visibility: float = 0.3  # keep a cropped box if this fraction of its area remains
    min_box_size: float = 2.0  # ... and it is at least this many pixels wide and high
    batch_size: int = 2  # per process; BatchNorm on pooled features needs >= 2
    num_workers: int = 0
    on_error: str = "raise"  # raise | skip (skip bad pairs with a counted warning)
    missing_det_label: str = "empty"  # empty (no objects, YOLO convention) | error


@dataclass
class ValConfig:
    datasets: list[DatasetConfig] = field(default_factory=list)
    fraction: float = 0.0  # hold out this fraction of the training pairs (deterministic)
    every_steps: int = 0  # 0: at the end of every epoch
    max_pairs: int = 8
    crop_size: Union[int, list[int], None] = None  # centre crop; None = whole pairs (any size)
    metrics: str = "auto"  # auto (tsjnet_sdk.metrics 'paper' preset, basic SSIM/PSNR if absent) | basic | none | a metrics preset
    metric_names: list[str] | None = field(default_factory=lambda: list(DEFAULT_VAL_METRICS))  # None = the preset's full set
    monitor: str = "loss"  # the value that selects best.safetensors (loss or a metric name)
    mode: str = "min"  # min | max
    samples: int = 4  # pairs shown in the PNG panel of each validation


@dataclass
class LossConfig:
    preset: str = "balanced"  # balanced | paper | official
    # Term weights; None = the preset's value.
    ssim: float | None = None
    ssim_mode: str | None = None  # equal | gradient_weighted
    diversity: float | None = None  # alpha1
    recon_ir: float | None = None
    recon_vis: float | None = None
    intensity: float | None = None
    gradient: float | None = None
    intensity_target: str | None = None  # max: |F - max(I, V)| | blend: |F - (b max + (1 - b) min)|
    blend_beta: float | None = None  # b of the blend target, in [0, 1] (1 = max, 0.5 = average)
    intensity_sigma: float | None = None  # > 0: intensity term on Gaussian-blurred F and T (base only)
    gradient_target: str | None = None  # max: | |grad F| - max |grad| | | stronger: signed Sobel of the stronger source
    gradient_scales: int | None = None  # gradient term averaged over this many scales (1, 1/2, 1/4, ...)
    det_terms: list[str] | None = None  # torchvision Faster R-CNN loss terms that drive the fusion net
    detection: float = 1.0  # weight of L_det^F in the fusion objective
    segmentation: float = 1.0  # weight of L_seg in the fusion objective

    def resolved(self) -> dict[str, Any]:
        if self.preset not in LOSS_PRESETS:
            raise ConfigError(f"loss.preset must be one of {sorted(LOSS_PRESETS)}, got {self.preset!r}")
        out = dict(LOSS_PRESETS[self.preset])
        for key in (
            "ssim",
            "ssim_mode",
            "diversity",
            "recon_ir",
            "recon_vis",
            "intensity",
            "gradient",
            "intensity_target",
            "blend_beta",
            "intensity_sigma",
            "gradient_target",
            "gradient_scales",
            "det_terms",
        ):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out["detection"], out["segmentation"] = self.detection, self.segmentation
        return out


@dataclass
class OptimConfig:
    lr: float = 1e-3  # paper §5.1 (the official script used 1e-4)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0  # the official script: 0.01 (coupled L2)
    clip_grad_norm: float | None = 1.0  # applied to unscaled gradients; None or 0 = off


@dataclass
class SchedulerConfig:
    name: str = "plateau"  # plateau | none
    factor: float = 0.1
    patience: int = 3
    threshold: float = 1e-4
    min_lr: float = 0.0
    monitor: str = "train_loss"  # train_loss (epoch mean, as the paper) | val (the val monitor)


@dataclass
class DetectionConfig:
    enabled: Union[str, bool] = "auto"  # auto: when any training dataset has detection labels
    weights: str | None = None  # torchvision Faster R-CNN R50-FPN state dict (.pth/.safetensors)
    classes: list[str] | None = None  # global label space; default: the datasets' tables merged
    min_size: int = 800  # GeneralizedRCNNTransform resize (torchvision defaults)
    max_size: int = 1333
    norm: str = "auto"  # frozen_bn | bn | auto (frozen_bn with weights, bn without)
    trainable_backbone_layers: int | None = None  # joint/pretraining: None = 3 with weights, 5 without
    source_terms: Union[str, bool] = "auto"  # compute L_det^I, L_det^V (they train only the detector): auto = when it trains


@dataclass
class SegmentationConfig:
    enabled: Union[str, bool] = "auto"  # auto: when any training dataset has segmentation labels
    weights: str | None = None  # torchvision DeepLabV3 state dict (.pth/.safetensors)
    backbone: str = "resnet101"  # resnet101 | resnet50
    num_classes: int | None = None  # default: the datasets' segmentation table
    ignore_index: int = 255


@dataclass
class TasksConfig:
    mode: str = "frozen"  # frozen | joint (task networks updated with the fusion net)
    pretrain_steps: int = 0  # task-network stage before fusion training (on IR and visible)
    lr: float = 0.01  # SGD for the task networks
    momentum: float = 0.9
    weight_decay: float = 1e-4
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)


@dataclass
class ModelConfig:
    name: str = "tsjnet"  # tsjnet | tsjnet-small | tsjnet-tiny (tsjnet_sdk.models configs)
    overrides: dict[str, Any] = field(default_factory=dict)  # TSJNetConfig fields, e.g. {nat_rpb = false}
    init: str | None = None  # start from these weights (a tsjnet checkpoint)
    batchnorm: str = "auto"  # auto | batch | frozen | warmup (BATCHNORM_MODES above)
    batchnorm_warmup_steps: int = 1000  # warmup: fusion steps with batch statistics before freezing
    reopen_attention: bool = False  # at init: decoder attention gates -> constant ~0.95 (undo a collapse)

    def batchnorm_mode(self) -> str:
        """The regime this run uses: ``auto`` resolved to frozen (fine-tuning) or warmup (from scratch)."""
        if self.batchnorm != "auto":
            return self.batchnorm
        return "frozen" if self.init else "warmup"


@dataclass
class RunConfig:
    out_dir: str = "runs/tsjnet"
    seed: int = 0
    deterministic: bool = True
    device: str = "auto"  # auto | cpu | cuda | cuda:N (torchrun: cuda:LOCAL_RANK)
    epochs: int = 40
    max_steps: int | None = None  # stop after this many fusion steps (overrides epochs)
    amp: Union[str, bool] = "auto"  # auto: on for CUDA, off on CPU
    amp_dtype: str = "float16"  # float16 (with GradScaler) | bfloat16
    log_every: int = 10  # CSV row (means over the interval) every N steps
    checkpoint_every: int = 0  # steps; 0 = at the end of every epoch (and always at the end)
    keep_checkpoints: bool = False  # also keep OUT_DIR/step_N.safetensors at every checkpoint
    progress: Union[str, bool] = "auto"  # rich progress bar: auto = when stderr is a terminal
    tensorboard: Union[str, bool] = "auto"  # auto = when torch.utils.tensorboard is importable
    dist_backend: str = "auto"  # auto: nccl on CUDA, gloo on CPU
    num_threads: int | None = None  # torch CPU threads for this run (None: torch's default); on a
    # CPU shared with other jobs, 1 thread avoids OpenMP stalls


@dataclass
class TrainConfig:
    run: RunConfig = field(default_factory=RunConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    val: ValConfig = field(default_factory=ValConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    tasks: TasksConfig = field(default_factory=TasksConfig)

    # ------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        cfg = _build(cls, data, "")
        cfg.validate()
        return cfg

    def crop_hw(self) -> tuple[int, int] | None:
        return _hw(self.data.crop_size, "data.crop_size")

    def validate(self) -> None:
        """Raise ConfigError with every problem found (values, not files: those are checked when read)."""
        p: list[str] = []
        d, r = self.data, self.run
        if not d.datasets:
            p.append("data.datasets is empty: add at least one [[data.datasets]] with a root folder")
        for key in ("crop_size",):
            try:
                _hw(getattr(d, key), f"data.{key}")
            except ConfigError as e:
                p.append(str(e))
        try:
            _hw(self.val.crop_size, "val.crop_size")
        except ConfigError as e:
            p.append(str(e))
        if d.batch_size < 2:
            p.append(
                f"data.batch_size = {d.batch_size}: TSJNet's BatchNorm on pooled 1x1 features needs batch >= 2 in "
                "training (paper: 2)"
            )
        if d.gain is not None and not (len(d.gain) == 2 and 0 < d.gain[0] <= d.gain[1]):
            p.append(f"data.gain must be [lo, hi] with 0 < lo <= hi, got {d.gain}")
        if d.gain_prob and d.gain is None:
            p.append("data.gain_prob is set but data.gain is not: give the gain range, e.g. gain = [0.2, 1.0]")
        for key in ("hflip", "vflip", "gain_prob", "object_crop_prob", "min_box_visibility"):
            if not 0.0 <= getattr(d, key) <= 1.0:
                p.append(f"data.{key} must be in [0, 1], got {getattr(d, key)}")
        if d.on_error not in ("raise", "skip"):
            p.append(f"data.on_error must be 'raise' or 'skip', got {d.on_error!r}")
        if d.missing_det_label not in ("empty", "error"):
            p.append(f"data.missing_det_label must be 'empty' or 'error', got {d.missing_det_label!r}")
        for ds in [*d.datasets, *self.val.datasets]:
            if ds.det_format not in ("auto", "yolo", "voc"):
                p.append(f"dataset {ds.root}: det_format must be auto, yolo or voc, got {ds.det_format!r}")
            if isinstance(ds.det_classes, str) and ds.det_classes not in CLASS_TABLES:
                p.append(
                    f"dataset {ds.root}: unknown det_classes table {ds.det_classes!r}; known: {sorted(CLASS_TABLES)} or a list of names"
                )
            if isinstance(ds.seg_classes, str) and ds.seg_classes not in CLASS_TABLES:
                p.append(
                    f"dataset {ds.root}: unknown seg_classes table {ds.seg_classes!r}; known: {sorted(CLASS_TABLES)} or a list of names"
                )
            if ds.repeat < 1:
                p.append(f"dataset {ds.root}: repeat must be >= 1")
            if ds.yolo_image_size is not None and len(ds.yolo_image_size) != 2:
                p.append(f"dataset {ds.root}: yolo_image_size must be [W, H]")
        if not 0.0 <= self.val.fraction < 1.0:
            p.append(f"val.fraction must be in [0, 1), got {self.val.fraction}")
        if self.val.mode not in ("min", "max"):
            p.append(f"val.mode must be min or max, got {self.val.mode!r}")
        try:
            lw = self.loss.resolved()
            if lw["ssim_mode"] not in SSIM_MODES:
                p.append(f"loss.ssim_mode must be one of {SSIM_MODES}, got {lw['ssim_mode']!r}")
            if lw["intensity_target"] not in INTENSITY_TARGETS:
                p.append(f"loss.intensity_target must be one of {INTENSITY_TARGETS}, got {lw['intensity_target']!r}")
            if not 0.0 <= float(lw["blend_beta"]) <= 1.0:
                p.append(f"loss.blend_beta must be in [0, 1] (1 = max, 0.5 = average), got {lw['blend_beta']}")
            if lw["gradient_target"] not in GRADIENT_TARGETS:
                p.append(f"loss.gradient_target must be one of {GRADIENT_TARGETS}, got {lw['gradient_target']!r}")
            if not 0.0 <= float(lw["intensity_sigma"]) <= 16.0:
                p.append(f"loss.intensity_sigma must be in [0, 16] pixels (0 = no blur), got {lw['intensity_sigma']}")
            if not 1 <= int(lw["gradient_scales"]) <= 4:
                p.append(f"loss.gradient_scales must be 1 to 4 (1 = full resolution only), got {lw['gradient_scales']}")
            bad = [t for t in lw["det_terms"] if t not in DET_LOSS_TERMS]
            if bad:
                p.append(f"loss.det_terms: unknown {bad}; torchvision Faster R-CNN terms are {list(DET_LOSS_TERMS)}")
        except ConfigError as e:
            p.append(str(e))
        if self.model.batchnorm not in BATCHNORM_MODES:
            p.append(f"model.batchnorm must be one of {BATCHNORM_MODES}, got {self.model.batchnorm!r}")
        if self.model.batchnorm_warmup_steps < 0:
            p.append("model.batchnorm_warmup_steps must be >= 0")
        if self.optim.lr <= 0:
            p.append("optim.lr must be > 0")
        if len(self.optim.betas) != 2:
            p.append("optim.betas must be [beta1, beta2]")
        if self.scheduler.name not in ("plateau", "none"):
            p.append(f"scheduler.name must be plateau or none, got {self.scheduler.name!r}")
        if self.scheduler.monitor not in ("train_loss", "val"):
            p.append(f"scheduler.monitor must be train_loss or val, got {self.scheduler.monitor!r}")
        if self.tasks.mode not in ("frozen", "joint"):
            p.append(f"tasks.mode must be frozen or joint, got {self.tasks.mode!r}")
        if self.tasks.pretrain_steps < 0:
            p.append("tasks.pretrain_steps must be >= 0")
        if self.tasks.segmentation.backbone not in ("resnet101", "resnet50"):
            p.append(f"tasks.segmentation.backbone must be resnet101 or resnet50, got {self.tasks.segmentation.backbone!r}")
        if self.tasks.detection.norm not in ("auto", "frozen_bn", "bn"):
            p.append(f"tasks.detection.norm must be auto, frozen_bn or bn, got {self.tasks.detection.norm!r}")
        for name, v in (
            ("detection.enabled", self.tasks.detection.enabled),
            ("segmentation.enabled", self.tasks.segmentation.enabled),
            ("detection.source_terms", self.tasks.detection.source_terms),
            ("run.amp", r.amp),
            ("run.progress", r.progress),
            ("run.tensorboard", r.tensorboard),
        ):
            if v not in ("auto", True, False):
                p.append(f"{name} must be auto, true or false, got {v!r}")
        if r.amp_dtype not in ("float16", "bfloat16"):
            p.append(f"run.amp_dtype must be float16 or bfloat16, got {r.amp_dtype!r}")
        if r.epochs < 1 and r.max_steps is None:
            p.append("run.epochs must be >= 1 (or set run.max_steps)")
        if r.max_steps is not None and r.max_steps < 0:
            p.append("run.max_steps must be >= 0")
        if r.num_threads is not None and r.num_threads < 1:
            p.append("run.num_threads must be >= 1 (or null for torch's default)")
        if r.log_every < 1:
            p.append("run.log_every must be >= 1")
        if p:
            raise ConfigError("invalid training config:\n  - " + "\n  - ".join(p))


def _hw(value: Any, key: str) -> tuple[int, int] | None:
    """int or [H, W] -> (H, W); each a multiple of 32 and >= 32."""
    if value is None:
        return None
    hw = (value, value) if isinstance(value, int) else tuple(value)
    if len(hw) != 2 or not all(isinstance(v, int) for v in hw):
        raise ConfigError(f"{key} must be an integer or [H, W], got {value!r}")
    if any(v < 32 or v % 32 for v in hw):
        raise ConfigError(
            f"{key} = {value!r}: crops must be multiples of 32 and at least 32 (TSJNet's attention branch "
            "works at 1/32 resolution), e.g. 128, 256 or [480, 640]"
        )
    return (int(hw[0]), int(hw[1]))


# ----------------------------------------------------------------------------------------------
# Building dataclasses from plain dicts, with unknown-key and type errors that name the key.


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'} must be a table/mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = prefix.rstrip(".") or "top level"
        raise ConfigError(f"unknown key(s) {unknown} in [{where}]; valid keys: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _convert(hints[name], value, f"{prefix}{name}")
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]  # type: ignore[misc]
    if missing:
        raise ConfigError(f"missing required key(s) {missing} in [{prefix.rstrip('.') or 'top level'}]")
    return cls(**kwargs)


def _convert(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{key}: {value!r} has the wrong type (expected {_type_name(tp)})")
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key + ".")
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return [_convert(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a table/mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover


def _type_name(tp: Any) -> str:
    return " or ".join("null" if a is type(None) else getattr(a, "__name__", str(a)) for a in typing.get_args(tp))


# ----------------------------------------------------------------------------------------------
# Files and overrides.


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A TOML (.toml) or YAML (.yaml/.yml, needs PyYAML) file -> dict."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover (Python 3.10)
            try:
                import tomli as tomllib
            except ImportError:
                raise ConfigError("reading TOML on Python 3.10 needs the 'tomli' package (pip install tomli)") from None
        try:
            with open(path, "rb") as f:
                return tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: invalid TOML ({e})") from None
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError(f"{path}: YAML configs need PyYAML (pip install pyyaml), or use a .toml config") from None
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: invalid YAML ({e})") from None
        return data or {}
    raise ConfigError(f"{path}: unsupported config format {suffix!r}; use .toml (or .yaml with PyYAML)")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``section.key=value`` (value in TOML syntax; bare words are strings) -> (key path, value)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value (e.g. data.crop_size=128)")
    key, raw = text.split("=", 1)
    keys = [k.strip() for k in key.strip().split(".") if k.strip()]
    if not keys:
        raise ConfigError(f"override {text!r}: empty key")
    raw = raw.strip()
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:  # not a TOML value: take the text as a string
        value = raw
    return keys, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {k} is not a table")
        node[keys[-1]] = value
    return data


def _resolve_paths(cfg: TrainConfig, base: Path) -> None:
    def res(p: str | None) -> str | None:
        if p is None:
            return None
        q = Path(p).expanduser()
        return str(q if q.is_absolute() else (base / q).resolve())

    cfg.run.out_dir = res(cfg.run.out_dir)  # type: ignore[assignment]
    cfg.model.init = res(cfg.model.init)
    cfg.tasks.detection.weights = res(cfg.tasks.detection.weights)
    cfg.tasks.segmentation.weights = res(cfg.tasks.segmentation.weights)
    for ds in [*cfg.data.datasets, *cfg.val.datasets]:
        ds.root = res(ds.root)  # type: ignore[assignment]


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a config file, apply ``section.key=value`` overrides, validate, resolve relative paths."""
    path = Path(path)
    data = apply_overrides(read_config_file(path), list(overrides or []))
    cfg = TrainConfig.from_dict(data)
    _resolve_paths(cfg, path.resolve().parent)
    return cfg


def config_from_dict(data: dict[str, Any], base_dir: str | Path = ".") -> TrainConfig:
    """Like :func:`load_config` for an in-memory dict (relative paths resolved against ``base_dir``)."""
    cfg = TrainConfig.from_dict(json.loads(json.dumps(data)))
    _resolve_paths(cfg, Path(base_dir).resolve())
    return cfg
