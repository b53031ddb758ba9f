"""`tsjnet quality` (tsjnet_sdk.benchmarks.quality): the trade-off rule, the report files, and a real
run on two RoadScene pairs (skipped without ../shared/data)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import require_shared_data

from tsjnet_sdk.benchmarks import quality
from tsjnet_sdk.benchmarks.quality import CONTENT_METRICS, run_quality, trade_off, write_results
from tsjnet_sdk.imaging import read_image

ALL = (*quality.TABLE1_METRICS, *quality.OTHER_METRICS)


def _means(net: dict[str, float]) -> dict[str, dict[str, float]]:
    average = {m: 1.0 for m in ALL}
    maximum = {m: 1.0 for m in ALL}
    return {"tsjnet": {**average, **net}, "average": average, "max": maximum, "laplacian": dict(average)}


def test_trade_off_counts_each_side_against_its_baseline() -> None:
    # wins on all content metrics but VIF, and on SSIM + CC; a tie (PSNR = 1.0) is not a win
    net = {m: 2.0 for m in CONTENT_METRICS if m != "VIF"} | {"VIF": 0.5, "SSIM": 1.1, "CC": 1.2, "PSNR": 1.0}
    t = trade_off(_means(net))
    assert t["content_vs_average"] == [m for m in CONTENT_METRICS if m != "VIF"]
    assert t["fidelity_vs_max"] == ["SSIM", "CC"]
    assert t["holds"]
    t = trade_off(_means(net | {"CC": 0.9}))
    assert t["fidelity_vs_max"] == ["SSIM"] and not t["holds"]


def test_lower_is_better_metrics_compare_the_other_way() -> None:
    assert quality.better("MSE", 1.0, 2.0) and not quality.better("MSE", 2.0, 1.0)
    assert quality.better("Qcv", 10.0, 20.0) and quality.better("SSIM", 0.8, 0.7)


def test_report_files_and_markdown(tmp_path: Path) -> None:
    mean = _means({m: 2.0 for m in ALL} | {"MSE": 0.5})
    results = {
        "created": "2026-12-01T00:00:00+00:00",
        "model": "x/edge.safetensors",
        "model_sha256": "ab" * 32,
        "preset": "paper",
        "data_root": "d",
        "backend": "torch on cpu",
        "skipped": {"tno": "not found"},
        "datasets": {
            "msrs": {"folder": "d/msrs/test", "pairs": 3, "mean": mean, "fuse_seconds_median": 1.5, "trade_off": trade_off(mean)}
        },
    }
    paths = write_results(results, tmp_path, "q")
    md = paths["md"].read_text()
    assert "TSJNet, paper Table 1 | 0.690 | 18.13 | 1502.6" in md  # the paper's MSRS row
    assert "**holds**" in md and "tno: not evaluated (not found)" in md
    assert "| tsjnet (this model) | **2.000** |" in md  # best SSIM in bold
    assert json.loads(paths["json"].read_text())["datasets"]["msrs"]["trade_off"]["holds"] is True
    chart = read_image(paths["png"])
    assert chart.ndim == 3 and chart.shape[1] >= 1000
    assert sorted(os.listdir(tmp_path)) == ["q.json", "q.md", "q.png"]  # nothing half-written left behind


def test_unknown_dataset_is_an_error(tiny_checkpoint: Path) -> None:
    with pytest.raises(ValueError, match="unknown data set"):
        run_quality(tiny_checkpoint, datasets=["msrs", "kaist"])


def test_missing_dataset_folder_is_skipped_with_the_reason(tiny_checkpoint: Path, tmp_path: Path) -> None:
    results = run_quality(tiny_checkpoint, data_root=tmp_path, datasets=["tno"], work_dir=tmp_path / "w", say=lambda s: None)
    assert results["datasets"] == {} and "not found" in results["skipped"]["tno"]


def test_real_run_on_two_roadscene_pairs(tiny_checkpoint: Path, tmp_path: Path) -> None:
    src = require_shared_data("roadscene")
    names = sorted(p.name for p in (src / "ir").iterdir())[:2]
    root = tmp_path / "data" / "roadscene"
    for sub in ("ir", "vi"):
        (root / sub).mkdir(parents=True)
        for n in names:
            (root / sub / n).symlink_to(src / sub / n)
    results = run_quality(
        tiny_checkpoint,
        data_root=tmp_path / "data",
        datasets=["roadscene"],
        work_dir=tmp_path / "w",
        threads=1,
        say=lambda s: None,
    )
    ds = results["datasets"]["roadscene"]
    assert ds["pairs"] == 2 and set(ds["mean"]) == {"tsjnet", "average", "max", "laplacian", *quality.COPY_ROWS}
    assert all(math.isfinite(ds["mean"][m][k]) for m in ds["mean"] for k in ALL)
    # the average baseline minimises the mean of the two MSEs, whatever the network does
    assert ds["mean"]["average"]["MSE"] <= min(ds["mean"][m]["MSE"] for m in ds["mean"])
    assert len(results["model_sha256"]) == 64
    assert np.isfinite(ds["fuse_seconds_median"])


def test_brightness_reports_day_scenes_against_the_max(tmp_path: Path) -> None:
    from tsjnet_sdk.imaging import write_image

    levels = {
        "tsjnet": {"00001D": 120, "00002N": 40},
        "average": {"00001D": 80, "00002N": 20},
        "max": {"00001D": 110, "00002N": 50},
    }
    pairs = []
    for name in ("00001D", "00002N"):
        images = {}
        for method, by_name in levels.items():
            path = tmp_path / method / f"{name}.png"
            write_image(path, np.full((8, 8, 3), by_name[name], np.uint8))  # grey RGB: luma = the level
            images[method] = str(path)
        pairs.append({"name": name, "images": images})
    b = quality.brightness({"pairs": pairs})
    assert b["all"]["tsjnet"] == pytest.approx(80.0, abs=0.01) and b["day_pairs"] == 1
    assert b["day"]["tsjnet"] == pytest.approx(120.0, abs=0.01) and b["day_not_above_max"] is False
    assert "day" not in quality.brightness({"pairs": pairs[1:]})  # no day scenes: no day check
