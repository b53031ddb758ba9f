"""GPU verification section 6: deployment runtimes (ONNX Runtime GPU providers, TensorRT engines).

Split out of benchmarks/gpu_verify.py (the entry point); see its docstring for the whole run.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from tsjnet_sdk.benchmarks.gpu_verify_core import (
    FAIL,
    PASS,
    SKIPPED,
    Ctx,
)
from tsjnet_sdk.benchmarks.gpu_verify_helpers import (
    _run_text,
)
from tsjnet_sdk.shipped import SHIPPED_WEIGHTS


# ---------------------------------------------------------------------------------------------------
# Section 6: deployment runtimes (ONNX Runtime GPU providers, TensorRT engines), where installed
# ---------------------------------------------------------------------------------------------------
def section_deployment(ctx: Ctx) -> None:
    try:
        import onnxruntime as ort

        providers = ort.get_available_providers()
    except ImportError:
        providers = []
    ctx.data("onnxruntime_providers", providers)
    gpu_eps = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in providers]
    trt = None
    for name in ("tensorrt",):
        with contextlib.suppress(ImportError):
            trt = __import__(name)
    ctx.data("tensorrt", getattr(trt, "__version__", None))
    if ctx.dry_run:
        ctx.check("onnxruntime gpu providers", SKIPPED, f"dry run (available here: {', '.join(providers) or 'none'})")
        ctx.check("tensorrt engines", SKIPPED, f"dry run (tensorrt {'present' if trt else 'absent'})")
        return
    if not gpu_eps and trt is None:
        ctx.check("onnxruntime gpu providers", SKIPPED, f"none installed (available: {', '.join(providers) or 'no onnxruntime'})")
        ctx.check("tensorrt engines", SKIPPED, "tensorrt not installed")
        return
    tmp = ctx.out_dir / f"{ctx.runner.stem}_deploy_tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        weights = SHIPPED_WEIGHTS
        reference = _torch_reference_fused(weights)
        if gpu_eps:
            ctx.attempt("onnxruntime gpu providers", lambda: _ort_rows(ctx, weights, tmp, gpu_eps, reference))
        else:
            ctx.check("onnxruntime gpu providers", SKIPPED, f"not installed (available: {', '.join(providers)})")
        if trt is None:
            ctx.check("tensorrt engines", SKIPPED, "tensorrt not installed")
        else:
            for na in ("decomposed", "plugin"):
                if ctx.enough(40, f"tensorrt engine na={na}"):
                    ctx.attempt(f"tensorrt engine na={na}", lambda na=na: _trt_row(ctx, weights, tmp, na, reference))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _pair() -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(1)
    return (rng.random((480, 640), dtype=np.float32), rng.random((480, 640), dtype=np.float32))


def _fused_tol(out: Any) -> float:
    """Allowed max abs difference of a Fuser output against torch: 2 grey levels for uint8, else 1e-2."""
    return 2.0 if str(out.dtype) == "uint8" else 1e-2


def _torch_reference_fused(weights: Path) -> Any:
    from tsjnet_sdk.runtime import Fuser

    ir, vis = _pair()
    with contextlib.suppress(Exception):
        from tsjnet_sdk.ops import na_backend

        with na_backend("reference"):
            return Fuser(weights, backend="torch", device="cuda").fuse(ir, vis)
    return Fuser(weights, backend="torch").fuse(ir, vis)


def _ort_rows(ctx: Ctx, weights: Path, tmp: Path, eps: list[str], reference: Any) -> None:
    import numpy as np

    from tsjnet_sdk.export.onnx_export import export_onnx
    from tsjnet_sdk.runtime import Fuser

    onnx_path = tmp / "edge.onnx"
    export_onnx(weights, onnx_path, na="decomposed", parity=False)
    ir, vis = _pair()
    for ep in eps:
        fuser = Fuser(onnx_path, backend="onnxruntime", device="cuda")
        out = fuser.fuse(ir, vis)
        t0 = time.perf_counter()
        for _ in range(5):
            fuser.fuse(ir, vis)
        ms = (time.perf_counter() - t0) / 5 * 1e3
        diff = float(np.abs(out.astype(np.float64) - reference.astype(np.float64)).max())
        ctx.check(
            f"onnxruntime {ep}",
            PASS if diff <= _fused_tol(out) else FAIL,
            f"max abs diff vs torch {diff:.3g} (output scale of the Fuser), {ms:.1f} ms per fuse incl. I/O",
            max_abs=diff,
            ms=ms,
        )


def _trt_row(ctx: Ctx, weights: Path, tmp: Path, na: str, reference: Any) -> None:
    import numpy as np

    from tsjnet_sdk.runtime import Fuser

    engine = tmp / f"edge_{na}.engine"
    rc, text = _run_text(
        [
            sys.executable,
            "-m",
            "tsjnet_sdk.cli",
            "export",
            str(weights),
            "--format",
            "engine",
            "--na",
            na,
            "-o",
            str(engine),
            "--no-parity",
            "--max",
            "480",
            "640",
        ],
        ctx.left() - 10,
    )
    if rc != 0:
        ctx.check(
            f"tensorrt engine na={na}",
            FAIL if na == "decomposed" else SKIPPED,
            f"export exit {rc}: {text.strip().splitlines()[-1][:300] if text.strip() else ''}",
        )
        return
    ir, vis = _pair()
    fuser = Fuser(engine, backend="tensorrt")
    out = fuser.fuse(ir, vis)
    diff = float(np.abs(out.astype(np.float64) - reference.astype(np.float64)).max())
    ctx.check(
        f"tensorrt engine na={na}", PASS if diff <= _fused_tol(out) else FAIL, f"max abs diff vs torch {diff:.3g}", max_abs=diff
    )
