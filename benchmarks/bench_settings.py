"""``tsjnet bench`` settings: what one run measures, and the names every bench module shares."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tsjnet_sdk.results import data_root

SCHEMA = "tsjnet-bench/1"
REFERENCE_ROW = "torch-eager-fp32"
DEFAULT_SIZES = ("640x480",)
DEFAULT_DATA = data_root() / "msrs" / "test"

Progress = Callable[[str], None]
Shape = tuple[int, int, int]  # (N, H, W)


# -- settings ---------------------------------------------------------------------------------------


@dataclass
class BenchSettings:
    """Everything one bench run needs; picklable (isolated rows get a copy in a subprocess)."""

    model: str = "tsjnet"  # config name (random init) or checkpoint path
    sizes: tuple[tuple[int, int], ...] = ((480, 640),)  # (H, W)
    batches: tuple[int, ...] = (1,)
    rows: tuple[str, ...] | None = None  # None: every row (GPU rows are skipped without a GPU)
    warmup: int = 3
    runs: int = 20
    accuracy_pairs: int = 4  # real pairs each row is compared on (the first N are also timed)
    calib_pairs: int = 4  # pairs for static int8 calibration (disjoint from accuracy pairs)
    metrics: tuple[str, ...] | None = None  # fusion metrics (None: the paper preset's full set)
    metrics_preset: str = "paper"
    psnr_threshold_db: float = 40.0  # a row's accuracy "holds" at or above this PSNR vs the reference
    snr_threshold_db: float = 20.0  # ... and this SNR (error vs the reference's own variation)
    data_dir: Path = DEFAULT_DATA
    work_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tsjnet-bench"
    )
    onnx: Path | None = None  # a given fp32 ONNX (used instead of exporting)
    engine: Path | None = None  # a given TensorRT engine
    seed: int = 0
    ort_threads: int | None = None  # tuned row: intra-op threads (None: the SDK default, usable cores)
    compile_timeout_s: float = 600.0  # torch.compile row: build + warm-up + runs, in a subprocess
    row_timeout_s: float = 3600.0  # other isolated rows (int8 static: quantisation + runs)
    torch_threads: int | None = None


def parse_size(text: str) -> tuple[int, int]:
    """``640x480`` (W x H, like camera resolutions) -> (H, W)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size must be WIDTHxHEIGHT like 640x480, got {text!r}") from None
    if min(width, height) < 32:
        raise ValueError(f"size {text}: TSJNet needs H, W >= 32")
    return height, width


def size_label(hw: tuple[int, int]) -> str:
    return f"{hw[1]}x{hw[0]}"


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)
