"""The shipped tsjnet-edge weights (tsjnet_sdk/weights/): what they are, that they are trained, that
the committed quality table was measured on exactly this file, and that a wheel carries them."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tsjnet_sdk.demo import run_demo
from tsjnet_sdk.hashing import file_sha256
from tsjnet_sdk.models.checkpoint import checkpoint_config, read_checkpoint_metadata
from tsjnet_sdk.shipped import SHIPPED_WEIGHTS

REPO_ROOT = Path(__file__).resolve().parents[1]
QUALITY_TABLE = REPO_ROOT / "benchmarks" / "results" / "quality_tsjnet-edge.json"

pytestmark = pytest.mark.skipif(not SHIPPED_WEIGHTS.exists(), reason=f"no shipped weights at {SHIPPED_WEIGHTS}")


def test_shipped_file_is_a_small_tsjnet_edge_checkpoint() -> None:
    cfg = checkpoint_config(SHIPPED_WEIGHTS)
    meta = read_checkpoint_metadata(SHIPPED_WEIGHTS)
    assert cfg.name == "tsjnet-edge"
    assert meta["stored_dtype"] == "float16"  # half the bytes; the model card gives the cost
    assert SHIPPED_WEIGHTS.stat().st_size < 8 * 2**20
    assert int(meta["training_step"]) > 0 and meta["training_config"].endswith("edge_balanced.toml")


def test_quality_table_was_measured_on_the_shipped_file() -> None:
    table = json.loads(QUALITY_TABLE.read_text())
    assert table["model_sha256"] == file_sha256(SHIPPED_WEIGHTS), (
        "benchmarks/results/quality_tsjnet-edge.* describe other weights: rerun `tsjnet quality` after changing "
        "tsjnet_sdk/weights/tsjnet-edge.safetensors"
    )
    assert table["preset"] == "paper" and "msrs" in table["datasets"]


def test_demo_uses_the_shipped_weights_and_they_fuse(tmp_path: Path) -> None:
    import torch

    torch.set_num_threads(1)
    summary = run_demo(out_dir=tmp_path, count=1, size=(120, 160), quiet=True, real=False)
    assert summary["trained"] and "shipped tsjnet-edge" in summary["model"]
    net, average, maximum = (summary["mean"][m] for m in ("tsjnet", "average", "max"))
    # A trained fusion carries the sources' contrast and edges, which the pixel average halves; random
    # weights give an almost flat image (SD 0.45, EN 0.86 on these scenes). Measured with the shipped
    # weights at this size: SD 27.7 vs 20.6, SF 8.6 vs 7.8, EN 6.41 vs 6.00, PSNR 17.95 vs the max's 16.02.
    assert net["SD"] > 1.2 * average["SD"] and net["SF"] > average["SF"] and net["EN"] > average["EN"]
    assert net["PSNR"] > maximum["PSNR"] + 1.0  # closer to both sources than the max: the balanced target
    # Its brightness sits between the average and the max (measured 66.9 between 55.0 and 78.5), not above
    # the max as the previous weights' did on day scenes.
    from tsjnet_sdk.benchmarks.quality import brightness

    b = brightness(summary)["all"]
    assert b["average"] < b["tsjnet"] < b["max"], b
    fused = summary["pairs"][0]["images"]["tsjnet"]
    assert Path(fused).exists()


@pytest.mark.slow
def test_wheel_carries_the_weights_and_model_card(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO_ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("tsjnet_sdk-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "tsjnet_sdk/weights/tsjnet-edge.safetensors" in names and "tsjnet_sdk/weights/README.md" in names
    with zipfile.ZipFile(wheel) as z:
        assert (
            np.frombuffer(z.read("tsjnet_sdk/weights/tsjnet-edge.safetensors"), np.uint8).size == SHIPPED_WEIGHTS.stat().st_size
        )
