"""ONNX artefacts side by side: file size, node count, latency, peak RSS and agreement with torch eager.

    tsjnet bench-onnx CHECKPOINT NAME=MODEL.onnx [NAME=MODEL.onnx ...] [--size 480 640] [--reps 3] [--out FILE.md]

Each row runs in its own process (so that its peak RSS is its own), one after the other in one run:
torch eager fp32 (the reference), then every ONNX file in ONNX Runtime on the CPU (1 thread, ORT's
defaults otherwise; ``NAME:lowmem=...`` turns the CPU arena and the memory pattern off, ``NAME:noarena``
and ``NAME:nopattern`` one of them). Input: one
random pair (seed 0) of the given size; the timing is the median of ``--reps`` calls after one warm-up.
Ratios are only meaningful within one run (the machine may be shared).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _child(kind: str, path: str, height: int, width: int, reps: int, out_npy: str) -> None:
    """One row (runs in a subprocess): prints a JSON line with median ms and peak RSS."""
    rng = np.random.default_rng(0)
    ir, vis = (rng.random((1, 1, height, width), dtype=np.float32) for _ in range(2))
    if kind == "torch":
        import torch

        from tsjnet_sdk.models.checkpoint import load_checkpoint

        torch.set_num_threads(1)
        model = load_checkpoint(path).eval()

        def run() -> np.ndarray:
            with torch.no_grad():
                return model.fuse(torch.from_numpy(ir), torch.from_numpy(vis)).numpy()
    else:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        # memory settings: lowmem = no CPU arena and no memory pattern; noarena / nopattern = one of them
        so.enable_cpu_mem_arena = kind not in ("lowmem", "noarena")
        so.enable_mem_pattern = kind not in ("lowmem", "nopattern")
        session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

        def run() -> np.ndarray:
            return session.run(None, {"ir": ir, "vis": vis})[0]

    out = run()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1e3)
    from tsjnet_sdk.atomic import atomic_path

    with atomic_path(out_npy) as tmp, open(tmp, "wb") as f:
        np.save(f, out)
    print(
        json.dumps(
            {"median_ms": float(np.median(times)), "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        )
    )


def _nodes(path: str) -> int:
    import onnx

    return len(onnx.load(path, load_external_data=False).graph.node)


def run_rows(
    checkpoint: str, specs: Sequence[str], height: int = 480, width: int = 640, reps: int = 3, out: Path | None = None
) -> list[dict]:
    """Run torch eager and each ``NAME[:MODE]=MODEL.onnx`` row; print and return the rows; write a table to ``out``."""
    rows = [("torch-eager-fp32", "torch", checkpoint)]
    for spec in specs:
        name, path = spec.split("=", 1)
        name, _, mode = name.partition(":")
        rows.append((name, mode or "onnx", path))
    results, reference = [], None
    for name, kind, path in rows:
        npy = f"/tmp/tsjnet_rows_{os.getpid()}_{len(results)}.npy"
        code = (
            f"from tsjnet_sdk.benchmarks.onnx_artefact_rows import _child; "
            f"_child({kind!r}, {str(path)!r}, {height}, {width}, {reps}, {npy!r})"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        output = np.load(npy)
        os.unlink(npy)
        reference = output if reference is None else reference
        mse = float(np.mean((output.astype(np.float64) - reference) ** 2))
        row.update(
            name=name,
            path=str(path),
            psnr_db=float("inf") if mse == 0 else 10 * np.log10(1 / mse),
            size_mb=os.path.getsize(path) / 1e6,
            nodes=_nodes(path) if kind != "torch" else None,
        )
        results.append(row)
        print(json.dumps(row), flush=True)
    base = results[0]["median_ms"]
    lines = [
        "| row | file MB | nodes | median ms | vs torch eager | peak RSS MiB | PSNR vs torch dB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['size_mb']:.1f} | {r['nodes'] if r['nodes'] is not None else '-'} | "
            f"{r['median_ms']:.0f} | {base / r['median_ms']:.2f}x | {r['peak_rss_mib']:.0f} | {r['psnr_db']:.1f} |"
        )
    table = "\n".join(lines)
    print(table)
    if out is not None:
        from tsjnet_sdk.atomic import atomic_path

        with atomic_path(out) as tmp:
            tmp.write_text(
                f"{height}x{width}, 1 thread, median of {reps} calls, one run, rows one after "
                f"the other in their own processes.\n\n{table}\n"
            )
    return results
