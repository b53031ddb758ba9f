"""The default path against torch, side by side in one run: ``tsjnet bench-default``.

What a user gets from ``Fuser()`` / ``tsjnet fuse`` without ``-m`` (the shipped ONNX on ONNX Runtime) against
the shipped checkpoint on torch eager, on one 640x480 built-in pair, with the same CPU threads. The two are
timed in alternation (ABAB...) so that load from other work on a shared machine falls on both alike; the
result is the ratio of medians, and both outputs are compared (PSNR of the uint8 images). Writes
``default_path.{json,md}`` to benchmarks/results/ (a checkout) or ./tsjnet-results/bench/.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from tsjnet_sdk.atomic import write_bytes_atomic
from tsjnet_sdk.benchmarks.bench_timing import latency_stats
from tsjnet_sdk.benchmarks.machine import cpu_model, versions
from tsjnet_sdk.results import results_dir, write_json


def run(threads: int, runs: int, size: tuple[int, int] = (480, 640)) -> dict[str, Any]:
    """Time the default Fuser and the torch Fuser in alternation; returns the results dict."""
    from tsjnet_sdk import Fuser, shipped
    from tsjnet_sdk.runtime import OrtOptions, TorchOptions
    from tsjnet_sdk.samples import night_scene

    ir, vis = night_scene(*size, seed=0)
    fusers = {
        "default (Fuser())": Fuser(options=OrtOptions(intra_op_threads=threads)),
        "torch eager (shipped checkpoint)": Fuser(
            shipped.SHIPPED_WEIGHTS, backend="torch", options=TorchOptions(threads=threads)
        ),
    }
    outputs = {name: fuser(ir, vis) for name, fuser in fusers.items()}  # warm-up, and the outputs compared
    seconds: dict[str, list[float]] = {name: [] for name in fusers}
    for i in range(runs):
        for name, fuser in fusers.items():
            t = time.perf_counter()
            fuser(ir, vis)
            seconds[name].append(time.perf_counter() - t)
        print(f"run {i + 1}/{runs}: " + ", ".join(f"{n} {s[-1] * 1e3:.0f} ms" for n, s in seconds.items()), flush=True)
    default, reference = list(fusers)
    diff = outputs[default].astype(np.float64) - outputs[reference].astype(np.float64)
    mse = float(np.mean(diff**2))
    rows = [
        {"path": name, "backend": f.backend, "model": Path(f.describe()["model"]).name, **latency_stats(seconds[name])}
        for name, f in fusers.items()
    ]
    return {
        "what": "default path vs torch eager, same threads, alternating runs",
        "machine": {"cpu": cpu_model(), "versions": versions()},
        "size": list(size),
        "threads": threads,
        "runs": runs,
        "rows": rows,
        "speedup_default_vs_torch": rows[1]["median_ms"] / rows[0]["median_ms"],
        "output_psnr_db": float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse),
    }


def to_markdown(results: dict[str, Any]) -> str:
    h, w = results["size"]
    lines = [
        "# Default path vs torch (one run, alternating)",
        "",
        f"{results['machine']['cpu']}; {w}x{h} built-in pair; {results['threads']} thread(s); {results['runs']} timed runs each "
        "(after one warm-up), in alternation.",
        "",
        "| path | backend | model file | median ms | min ms | p90 ms |",
        "|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['path']} | {r['backend']} | {r['model']} | {r['median_ms']:.0f} | {r['min_ms']:.0f} | {r['p90_ms']:.0f} |"
        )
    lines += [
        "",
        f"**Default path: {results['speedup_default_vs_torch']:.2f}x torch eager** (ratio of medians); "
        f"outputs agree to {results['output_psnr_db']:.1f} dB PSNR (uint8 images).",
        "",
    ]
    return "\n".join(lines)


def run_and_write(threads: int = 1, runs: int = 10, output: Path | None = None) -> dict[str, Any]:
    """Run, write ``default_path.{json,md}`` (benchmarks/results/ in a checkout) and print the table."""
    results = run(threads, runs)
    out = output or results_dir("bench", "benchmarks/results")
    write_json(out / "default_path.json", results)
    write_bytes_atomic(out / "default_path.md", to_markdown(results).encode())
    print(to_markdown(results))
    return results


if __name__ == "__main__":
    # `python -m tsjnet_sdk.benchmarks.default_path` = `tsjnet bench-default`; the CLI is imported only here.
    from tsjnet_sdk.benchmarks.cli import default_path_command
    from tsjnet_sdk.cli_support import run_command

    raise SystemExit(run_command(default_path_command, None, "python -m tsjnet_sdk.benchmarks.default_path"))
