"""int8 against fp32, side by side: ``tsjnet dev bench-int8``.

Quantizes the shipped fp32 ONNX (export/int8.py, calibrated on the training pool), then fuses the MSRS
evaluation pairs with both files on ONNX Runtime (1 thread, alternating per pair) and reports the speed
ratio and the fusion-metric change (paper convention). The evaluation pairs only measure; nothing is tuned
on them. Writes ``int8_tsjnet-edge.{json,md}`` to benchmarks/results/ (a checkout) or ./tsjnet-results/bench/.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tsjnet_sdk.atomic import write_bytes_atomic
from tsjnet_sdk.results import data_root, results_dir, write_json

METRICS = ("SSIM", "PSNR", "CC", "VIF", "Qabf", "EN", "SD", "SF", "AG")


def run_int8_bench(data: Path | None = None, calibration_pairs_count: int = 24, out: Path | None = None) -> dict[str, Any]:
    from tsjnet_sdk import Fuser, shipped
    from tsjnet_sdk.export.int8 import calibration_pairs, quantize_int8
    from tsjnet_sdk.imaging import read_image
    from tsjnet_sdk.metrics import evaluate
    from tsjnet_sdk.pairing import pair_folders
    from tsjnet_sdk.runtime import OrtOptions

    root = Path(data) if data is not None else data_root()
    pairs = pair_folders(root / "msrs" / "test" / "ir", root / "msrs" / "test" / "vi").rows
    with tempfile.TemporaryDirectory(prefix="tsjnet-int8-bench-") as tmpdir:
        t = time.perf_counter()
        calib = calibration_pairs(root / "train", limit=calibration_pairs_count)
        int8_path = quantize_int8(shipped.SHIPPED_ONNX, Path(tmpdir) / "tsjnet-edge_int8.onnx", calib)
        quantize_s = time.perf_counter() - t
        fusers = {
            "fp32": Fuser(shipped.SHIPPED_ONNX, options=OrtOptions(intra_op_threads=1)),
            "int8": Fuser(int8_path, options=OrtOptions(intra_op_threads=1)),
        }
        sizes = {"fp32": shipped.SHIPPED_ONNX.stat().st_size, "int8": int8_path.stat().st_size}
        seconds: dict[str, list[float]] = {k: [] for k in fusers}
        scores: dict[str, dict[str, list[float]]] = {k: {m: [] for m in METRICS} for k in fusers}
        for name, ir_path, vis_path in pairs:
            ir, vis = read_image(ir_path), read_image(vis_path)
            for key, fuser in fusers.items():
                if not seconds[key]:
                    fuser(ir, vis)  # warm-up, once per path
                t = time.perf_counter()
                fused = fuser(ir, vis)
                seconds[key].append(time.perf_counter() - t)
                report = evaluate(ir, vis, fused, "paper", metrics=METRICS)
                for m in METRICS:
                    scores[key][m].append(float(report[m]))
            print(f"{name}: fp32 {seconds['fp32'][-1] * 1e3:.0f} ms, int8 {seconds['int8'][-1] * 1e3:.0f} ms", flush=True)
    means = {k: {m: float(np.mean(v)) for m, v in s.items()} for k, s in scores.items()}
    medians = {k: float(np.median(v) * 1e3) for k, v in seconds.items()}
    results = {
        "what": "int8 (QDQ Conv) vs fp32 ONNX of the shipped tsjnet-edge, ONNX Runtime CPU, 1 thread, alternating",
        "pairs": len(pairs),
        "calibration": f"{len(calib)} training-pool pairs",
        "quantize_s": quantize_s,
        "size_bytes": sizes,
        "median_ms": medians,
        "speedup_int8_vs_fp32": medians["fp32"] / medians["int8"],
        "metrics": means,
        "delta": {m: means["int8"][m] - means["fp32"][m] for m in METRICS},
    }
    out = out or results_dir("bench", "benchmarks/results")
    write_json(out / "int8_tsjnet-edge.json", results)
    write_bytes_atomic(out / "int8_tsjnet-edge.md", to_markdown(results).encode())
    print(to_markdown(results))
    return results


def to_markdown(r: dict[str, Any]) -> str:
    lines = [
        "# int8 vs fp32 (tsjnet-edge, ONNX Runtime CPU, one run)",
        "",
        f"{r['what']}; MSRS evaluation pairs: {r['pairs']} (measurement only); calibration: {r['calibration']}.",
        "",
        "| file | size MB | median ms | " + " | ".join(METRICS) + " |",
        "|---|---|---|" + "---|" * len(METRICS),
    ]
    for key in ("fp32", "int8"):
        cells = " | ".join(f"{r['metrics'][key][m]:.4g}" for m in METRICS)
        lines.append(f"| {key} | {r['size_bytes'][key] / 1e6:.1f} | {r['median_ms'][key]:.0f} | {cells} |")
    delta = " | ".join(f"{r['delta'][m]:+.4f}" for m in METRICS)
    lines += [
        f"| int8 - fp32 | | | {delta} |",
        "",
        f"**int8: {r['speedup_int8_vs_fp32']:.2f}x fp32** (ratio of medians). Acceptance (issue 20): >= 1.5x, SSIM within "
        f"0.01 (here {r['delta']['SSIM']:+.4f}), PSNR within 0.3 dB (here {r['delta']['PSNR']:+.2f}).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    # `python -m tsjnet_sdk.benchmarks.int8_bench` = `tsjnet dev bench-int8`; the CLI is imported only here.
    from tsjnet_sdk.benchmarks.cli import int8_bench_command
    from tsjnet_sdk.cli_support import run_command

    raise SystemExit(run_command(int8_bench_command, None, "python -m tsjnet_sdk.benchmarks.int8_bench"))
