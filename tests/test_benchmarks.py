"""`tsjnet bench` runs on a tiny config and writes well-formed results (no timing is asserted).

Fast by design: tsjnet-tiny at 96 x 64, 1 warm-up + 2 runs, one accuracy pair, two metrics. The
onnxruntime rows run a hand-made ONNX (fused = mean of the inputs) passed with --onnx, so no export
(tens of seconds) is needed; its accuracy against the reference is poor on purpose, which checks that
such a row is reported as not holding instead of being hidden.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from conftest import mean_onnx_model, require_shared_data
from typer.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


def _mean_onnx(path: Path, height: int, width: int) -> Path:
    """A static 1x1xHxW ONNX with the tsjnet I/O names whose output is (ir + vis) / 2."""
    return mean_onnx_model(path, [1, 1, height, width])


def test_bench_command_writes_results(tmp_path: Path) -> None:
    data = require_shared_data("msrs", "test")
    from tsjnet_sdk.cli import app

    onnx_path = _mean_onnx(tmp_path / "mean.onnx", 64, 96)
    out = tmp_path / "results"
    rows = "torch-eager-fp32,ort-fp32,ort-tuned-fp32,ort-int8-dynamic,tensorrt-fp16"
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "-m",
            "tsjnet-tiny",
            "-s",
            "96x64",
            "--rows",
            rows,
            "--warmup",
            "1",
            "-n",
            "2",
            "--accuracy-pairs",
            "1",
            "--metrics",
            "EN,SSIM",
            "--data",
            str(data),
            "--onnx",
            str(onnx_path),
            "--out",
            str(out),
            "--work-dir",
            str(tmp_path / "work"),
            "--name",
            "tiny",
            "--na-backends",
            "reference",
            "--na-warmup",
            "0",
            "--na-runs",
            "1",
            # One torch thread: on a loaded 2-core machine two OpenMP threads make tiny models ~50x slower.
            "--torch-threads",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)

    doc = json.loads((out / "tiny.json").read_text())  # strict JSON: inf/nan are written as strings
    assert doc["schema"] == "tsjnet-bench/1"
    assert doc["machine"]["cores"] >= 1 and "torch" in doc["machine"]["versions"]
    assert doc["settings"]["runs"] == 2 and doc["settings"]["warmup"] == 1
    (cfg,) = doc["configs"]
    assert (cfg["width"], cfg["height"], cfg["batch"]) == (96, 64, 1)
    by_id = {r["id"]: r for r in cfg["rows"]}
    assert list(by_id) == rows.split(",")

    ref = by_id["torch-eager-fp32"]
    assert ref["status"] == "ok"
    for mode in ("end_to_end", "compute"):
        stats = ref["latency"][mode]
        assert stats["n"] == 2 and 0 < stats["min_ms"] <= stats["median_ms"] <= stats["p99_ms"]
    assert ref["speedup_vs_reference"]["end_to_end"] == pytest.approx(1.0)
    assert ref["accuracy_vs_reference"]["psnr_db"] == "inf" and ref["accuracy_vs_reference"]["holds"]
    assert set(ref["fusion_metrics"]) == {"EN", "SSIM"}
    assert ref["memory"]["rss_peak_mib"] > 0

    for row_id in ("ort-fp32", "ort-tuned-fp32", "ort-int8-dynamic"):
        row = by_id[row_id]
        assert row["status"] == "ok", row.get("reason")
        acc = row["accuracy_vs_reference"]
        assert math.isfinite(acc["psnr_db"]) and acc["holds"] is False  # the mean is not TSJNet
        assert row["speedup_vs_reference"]["end_to_end"] > 0
        assert "EN" in row["fusion_metrics_delta"]

    # The tuned row is the public API: OrtOptions with the optimised-graph cache (what an app passes to Fuser).
    tuned = by_id["ort-tuned-fp32"]["backend_info"]
    assert "cached offline" in tuned["graph_optimization"] and tuned["intra_op_threads"] >= 1
    assert by_id["ort-fp32"]["backend_info"]["intra_op_threads"] == 0  # ORT's own defaults

    gpu = by_id["tensorrt-fp16"]
    if gpu["status"] != "ok":  # no GPU here: kept, with the reason
        assert gpu["status"] in ("skipped", "failed") and gpu["reason"]

    na_rows = doc["na"]["rows"]
    assert [(r["height"], r["width"], r["heads"]) for r in na_rows] == [(120, 160, 2), (60, 80, 4), (30, 40, 8), (15, 20, 16)]
    assert all(r["status"] == "ok" and r["median_ms"] > 0 for r in na_rows)

    markdown = (out / "tiny.md").read_text()
    assert "| torch-eager-fp32 |" in markdown and "tensorrt-fp16" in markdown and "Neighborhood attention" in markdown
    png = (out / "tiny.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_import_does_not_import_torch() -> None:
    import subprocess

    code = "import sys, tsjnet_sdk.cli, tsjnet_sdk.benchmarks.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
