"""Checkpoint selection on a run's validation pairs (never on an evaluation set).

``tsjnet select CONFIG`` scores the classical
baselines (pixel average, pixel max, Laplacian pyramid) on the same validation pairs that the run's
``val_log.csv`` was computed on, then applies one rule (review_quality_2026-12 §5): among the validated
checkpoints whose validation PSNR beats the max's, take the one with the highest VIF + Qabf; if none beats
the max, the one with the highest PSNR. It writes ``OUT_DIR/selection.json`` and prints the table.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from tsjnet_sdk.atomic import write_bytes_atomic
from tsjnet_sdk.baselines import average_fusion, laplacian_pyramid_fusion, max_fusion
from tsjnet_sdk.training.config import TrainConfig

BASELINES = {"average": average_fusion, "max": max_fusion, "laplacian": laplacian_pyramid_fusion}


def baseline_scores(cfg: TrainConfig) -> dict[str, dict[str, float]]:
    """Mean validation metrics of each classical baseline on the run's validation pairs (values in the
    units of ``val_log.csv``: the trainer's own metric function on float images in [0, 1])."""
    import torch

    from tsjnet_sdk.training.trainer import Trainer

    trainer = Trainer(cfg)
    trainer.device = torch.device("cpu")
    trainer._setup_data()  # the very pairs, crops and metric function the run validates with
    if trainer.val_set is None or trainer._metric_fn is None:
        raise ValueError("this config has no validation pairs or metrics: set val.fraction or val.datasets")
    sums: dict[str, dict[str, list[float]]] = {name: {} for name in BASELINES}
    for i in range(len(trainer.val_set)):
        s = trainer.val_set[i]
        ir, vis = s["ir"][0].numpy(), s["vis"][0].numpy()
        for name, fuse in BASELINES.items():
            fused = np.clip(fuse(ir, vis), 0, 1).astype(np.float32)
            for k, v in trainer._metric_fn(ir, vis, fused).items():
                sums[name].setdefault(k, []).append(v)
    return {name: {k: float(np.nanmean(v)) for k, v in m.items()} for name, m in sums.items()}


def select_checkpoint(val_rows: list[dict[str, Any]], baselines: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The rule of the module docstring over ``val_log.csv`` rows (dicts with step, PSNR, VIF, Qabf)."""
    rows = [r for r in val_rows if all(math.isfinite(float(r.get(k, "nan"))) for k in ("PSNR", "VIF", "Qabf"))]
    if not rows:
        raise ValueError("no validation row has PSNR, VIF and Qabf")
    bar = baselines["max"]["PSNR"]
    eligible = [r for r in rows if float(r["PSNR"]) > bar]
    if eligible:
        best = max(eligible, key=lambda r: float(r["VIF"]) + float(r["Qabf"]))
        why = f"highest VIF + Qabf among {len(eligible)} checkpoint(s) with val PSNR above the max's {bar:.2f} dB"
    else:
        best = max(rows, key=lambda r: float(r["PSNR"]))
        why = f"no checkpoint beats the max's val PSNR {bar:.2f} dB: highest PSNR"
    return {"step": int(float(best["step"])), "rule": why, "row": {k: float(v) for k, v in best.items()}}


def main(config: str, out_dir: str | None = None) -> dict[str, Any]:
    """Score baselines, choose a checkpoint of the run, write OUT_DIR/selection.json; returns its content."""
    import csv

    from tsjnet_sdk.training.config import load_config

    cfg = load_config(config)
    run_dir = Path(out_dir or cfg.run.out_dir)
    with open(run_dir / "val_log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    base = baseline_scores(cfg)
    choice = select_checkpoint(rows, base)
    result = {
        "config": str(config),
        "baselines": base,
        "choice": choice,
        "checkpoint": str(run_dir / f"step_{choice['step']:07d}.safetensors"),
    }
    write_bytes_atomic(run_dir / "selection.json", json.dumps(result, indent=2).encode())
    keys = ("SSIM", "PSNR", "VIF", "Qabf", "SD", "SF", "AG", "EN")
    print("| on the validation pairs | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name, m in base.items():
        print(f"| {name} | " + " | ".join(f"{m.get(k, math.nan):.4g}" for k in keys) + " |")
    for r in rows:
        print(f"| step {int(float(r['step']))} | " + " | ".join(f"{float(r.get(k, 'nan')):.4g}" for k in keys) + " |")
    print(f"chosen: step {choice['step']} ({choice['rule']}) -> {result['checkpoint']}")
    return result
