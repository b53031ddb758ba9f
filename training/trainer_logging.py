"""Trainer logging: per-step records, ``train_log.csv`` / ``val_log.csv``, TensorBoard, the progress bar."""

from __future__ import annotations

import contextlib
import csv
import io
import math
import sys
import time
from pathlib import Path
from typing import Any

from tsjnet_sdk.atomic import write_bytes_atomic


class LoggingMixin:
    """Step records, CSV logs, TensorBoard and progress (a part of :class:`~tsjnet_sdk.training.trainer.Trainer`)."""

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


# ----------------------------------------------------------------------------------------------


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
