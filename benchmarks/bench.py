"""``tsjnet bench``: latency and accuracy of every backend against the PyTorch eager fp32 reference.

One run measures, for each (size, batch) configuration, a list of *rows* (backend + precision +
settings). The first row, PyTorch eager fp32 on the CPU, is the reference: every other row's speed-up
and accuracy are taken against it, measured in the same process and run.

Per row:

* latency, end to end: ``Fuser.fuse_batch`` on uint8 frames (numpy in -> numpy out, pre/post-processing
  included); warm-up calls first, then N timed calls; min/median/p90/p99/mean and frames/s;
* latency, compute only: the time spent inside ``Backend.run`` (float32 [N,1,H,W] in and out, the
  network only) during those same calls, so both come from one set of runs;
* peak resident memory of the process while the row was built and run (Linux ``VmHWM``, reset per
  row), and peak GPU memory where a GPU is used;
* accuracy against the reference on real pairs: max/mean abs error and PSNR of the fused luminance
  (network output, [0, 1]), and the fusion metrics (preset ``paper``) of the row's fused images.

Rows that cannot run here (no GPU, a failed export, torch.compile too slow) are kept in the results
with ``status`` ``skipped``/``failed`` and the reason: nothing is hidden and no number is made up.

Models: a checkpoint (e.g. the shipped trained tsjnet-edge weights, tsjnet_sdk/shipped.py) or a config
name, randomly initialised (seeded) for the configs no trained weights exist for; latency does not
depend on the weights and accuracy against the reference is meaningful either way (same weights in
every row), but fusion metrics of random weights are not (the report says which it was).

Files, one job each: bench_settings (settings, shared names), bench_data (real pairs), bench_artefacts
(ONNX / int8 caching), bench_rows (the rows, built through the public runtime API), bench_timing
(measuring a row), bench_accuracy (against the reference), and this module (the run).
"""

from __future__ import annotations

import gc
import json
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tsjnet_sdk.hashing import file_sha256

from .bench_accuracy import accuracy_vs_reference, fusion_metrics
from .bench_artefacts import ensure_checkpoint
from .bench_data import list_pairs, load_pair
from .bench_rows import ROW_IDS, ROWS, RowContext, RowSpec, select_rows
from .bench_settings import DEFAULT_DATA, REFERENCE_ROW, SCHEMA, BenchSettings, Progress, Shape, _say, parse_size, size_label
from .bench_timing import RawRow, latency_stats, measure_isolated, measure_row
from .machine import describe_machine

# The names `tsjnet bench` and scripts import from here (each defined once, in the module named above).
__all__ = ["DEFAULT_DATA", "REFERENCE_ROW", "ROWS", "ROW_IDS", "SCHEMA", "BenchSettings", "parse_size", "run_bench", "size_label"]


# -- the run ----------------------------------------------------------------------------------------


def _failure(spec: RowSpec, status: str, reason: str) -> dict[str, Any]:
    return {
        "id": spec.id,
        "label": spec.label,
        "backend": spec.backend,
        "precision": spec.precision,
        "device": spec.device,
        "status": status,
        "reason": reason,
    }


def _summarise(spec: RowSpec, raw: RawRow, shape: Shape) -> dict[str, Any]:
    e2e, compute = latency_stats(raw.e2e_s), latency_stats(raw.compute_s)
    return {
        "id": spec.id,
        "label": spec.label,
        "backend": spec.backend,
        "precision": spec.precision,
        "device": spec.device,
        "status": "ok",
        "reason": None,
        "latency": {"end_to_end": e2e, "compute": compute},
        "throughput_fps": shape[0] / (e2e["median_ms"] / 1e3),
        "warmup_s": raw.warmup_s,
        "build_s": raw.build_s,
        "memory": {
            "rss_peak_mib": raw.rss_peak_mib,
            "rss_before_mib": raw.rss_before_mib,
            "rss_peak_scope": raw.rss_scope,
            "gpu_peak_mib": raw.gpu_peak_mib,
        },
        "backend_info": raw.describe,
    }


def _load_average() -> list[float] | None:
    """1/5/15-minute load averages: other work on the machine slows every row (recorded, not corrected)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def run_bench(
    settings: BenchSettings, progress: Progress | None = None, on_row: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Run every selected row at every (size, batch); returns the results document (see ``SCHEMA``)."""
    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    started = time.time()
    load_start = _load_average()
    checkpoint = ensure_checkpoint(settings, progress)
    from tsjnet_sdk.models import read_checkpoint_metadata

    meta = read_checkpoint_metadata(checkpoint)
    specs = select_rows(settings.rows)
    pairs = list_pairs(settings.data_dir)
    n_acc = max(settings.accuracy_pairs, max(settings.batches))
    acc_paths = pairs[:n_acc]
    calib_paths = pairs[n_acc : n_acc + settings.calib_pairs] or pairs[: settings.calib_pairs]
    configs = []
    for hw in settings.sizes:
        acc_frames = [load_pair(p, hw) for p in acc_paths]
        calib_frames = [load_pair(p, hw) for p in calib_paths]
        ctx = RowContext(settings, checkpoint, calib_frames, progress)
        for b_index, batch in enumerate(settings.batches):
            shape = (batch, hw[0], hw[1])
            # Accuracy frames in chunks of exactly `batch` (fixed-shape files take N frames per call); the
            # count is rounded down to whole chunks, at least one.
            n_chunks = max(1, len(acc_frames) // batch)
            chunks = [acc_frames[i * batch : (i + 1) * batch] for i in range(n_chunks)]
            used = [f for c in chunks for f in c]
            label = f"{size_label(hw)} batch {batch}"
            rows: list[dict[str, Any]] = []
            reference: RawRow | None = None
            ref_metrics: dict[str, float] | None = None
            for spec in specs:
                reason = spec.unavailable(settings)
                if reason:
                    row = _failure(spec, "skipped", reason)
                else:
                    _say(progress, f"[{label}] {spec.id}: building")
                    try:
                        if spec.isolate:
                            raw = measure_isolated(
                                spec, ctx, shape, chunks, settings.warmup, settings.runs, getattr(settings, spec.timeout_setting)
                            )
                        else:
                            raw = measure_row(spec, ctx, shape, chunks, settings.warmup, settings.runs)
                    except Exception as e:  # noqa: BLE001 - a failing row is reported, the bench goes on
                        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
                        row = _failure(spec, "failed", f"{type(e).__name__}: {message}"[:500])
                    else:
                        row = _summarise(spec, raw, shape)
                        if spec.id == REFERENCE_ROW:
                            reference = raw
                        if reference is not None:
                            ref_e2e = float(np.median(reference.e2e_s))
                            ref_compute = float(np.median(reference.compute_s))
                            row["speedup_vs_reference"] = {
                                "end_to_end": ref_e2e / row["latency"]["end_to_end"]["median_ms"] * 1e3,
                                "compute": ref_compute / row["latency"]["compute"]["median_ms"] * 1e3,
                            }
                            acc = accuracy_vs_reference(raw.outputs_y, reference.outputs_y, raw.outputs, reference.outputs)
                            acc["holds"] = (
                                acc["psnr_db"] >= settings.psnr_threshold_db and acc["snr_db"] >= settings.snr_threshold_db
                            )
                            row["accuracy_vs_reference"] = acc
                        if b_index == 0:  # fusion metrics do not depend on the batch size
                            _say(progress, f"[{label}] {spec.id}: fusion metrics ({settings.metrics_preset})")
                            row["fusion_metrics"] = fusion_metrics(used, raw.outputs, settings.metrics_preset, settings.metrics)
                            if spec.id == REFERENCE_ROW:
                                ref_metrics = row["fusion_metrics"]
                            elif ref_metrics is not None:
                                row["fusion_metrics_delta"] = {
                                    k: v - ref_metrics[k] for k, v in row["fusion_metrics"].items() if k in ref_metrics
                                }
                        del raw
                        gc.collect()
                rows.append(row)
                if on_row is not None:
                    on_row({**row, "config": label})
            configs.append(
                {
                    "size": size_label(hw),
                    "height": hw[0],
                    "width": hw[1],
                    "batch": batch,
                    "rows": rows,
                    "accuracy_pairs": [p[0].name for p in acc_paths[: len(used)]],
                }
            )
    return {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": time.time() - started,
        "machine": describe_machine(),
        "model": {
            "name": json.loads(meta["config"]).get("name") if "config" in meta else None,
            "checkpoint": checkpoint.name,
            "checkpoint_sha256": file_sha256(checkpoint),
            "weights": meta.get("note", "as given"),
        },
        "settings": {
            "warmup": settings.warmup,
            "runs": settings.runs,
            "sizes": [size_label(s) for s in settings.sizes],
            "batches": list(settings.batches),
            "rows": [s.id for s in specs],
            "reference": REFERENCE_ROW,
            "data": str(settings.data_dir),
            "accuracy_pairs": settings.accuracy_pairs,
            "calibration_pairs": [p[0].name for p in calib_paths],
            "metrics_preset": settings.metrics_preset,
            "psnr_threshold_db": settings.psnr_threshold_db,
            "snr_threshold_db": settings.snr_threshold_db,
            "seed": settings.seed,
            "torch_threads": settings.torch_threads or _torch_threads(),
            "compile_timeout_s": settings.compile_timeout_s,
            "row_timeout_s": settings.row_timeout_s,
            "load_average_start_end": [load_start, _load_average()],
        },
        "configs": configs,
        "notes": [
            "end_to_end: Fuser.fuse_batch on uint8 frames (numpy in -> numpy out, pre/post-processing included); "
            "compute: time inside Backend.run (float32 [N,1,H,W] in and out) during the same calls.",
            "speed-ups are the reference row's median over this row's median, measured in the same run.",
            "accuracy: the fused luminance ([0,1]) against the reference's on the accuracy pairs; PSNR peak 1.",
            "ONNX files are static-shape exports (decomposed NA) at the benchmarked (N, H, W).",
        ],
    }
