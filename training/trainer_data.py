"""Trainer data set-up: dataset scan, train/val split, loaders and samplers, the validation metric."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import torch

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
from tsjnet_sdk.training.trainer_common import TrainingError


class DataSetupMixin:
    """Datasets, loaders and the validation metric function (a part of :class:`~tsjnet_sdk.training.trainer.Trainer`)."""

    def _setup_data(self) -> None:
        cfg, d = self.cfg, self.cfg.data
        det_cfg, seg_cfg = cfg.tasks.detection, cfg.tasks.segmentation
        records, repeats, report = self._scan_train_data()
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
        self._setup_loader(records, repeats)
        self._setup_val(held)

    def _scan_train_data(self) -> tuple[list, list[int], ScanReport]:
        """Scan every training dataset (the label spaces first): (records, repeats, report)."""
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
        return records, repeats, report

    def _setup_loader(self, records: list, repeats: list[int]) -> None:
        """The training set, its sampler and DataLoader, ``batches_per_epoch``."""
        cfg, d = self.cfg, self.cfg.data
        seg_cfg = cfg.tasks.segmentation
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

    def _setup_val(self, held: list) -> None:
        cfg, d = self.cfg, self.cfg.data
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


# ----------------------------------------------------------------------------------------------


def _val_crop(cfg: TrainConfig) -> tuple[int, int] | None:
    from tsjnet_sdk.training.config import _hw

    return _hw(cfg.val.crop_size, "val.crop_size")


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
