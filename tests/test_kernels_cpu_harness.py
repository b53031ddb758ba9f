"""The CUDA NA kernel's own code, run on the CPU (kernels/na2d_host_harness.cpp), against the reference.

The harness executes the __host__ __device__ functions of kernels/na2d_core.cuh warp by warp and lane
by lane, with the same grid, tiles, shared-memory staging (poisoned with NaN before every key row) and
fp16 rounding as the GPU kernel. What it cannot check: the 16-byte load/store and fp16-convert
instructions and __syncwarp, i.e. anything that only exists on the device (see tests/test_kernels_gpu.py).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from tsjnet_sdk.kernels import spec
from tsjnet_sdk.ops._na_reference import neighborhood_attention_2d_reference

KERNELS = Path(__file__).resolve().parents[1] / "kernels"
# Emulating every instantiation makes g++ take ~20 s; these cover the window sizes asked for (3, 7,
# 13), TSJNet's head_dim 32, and head_dims with other tilings (8: one 16-byte fp16 vector per key,
# 64: one query row per warp, fewer warps per block).
HOST_KS = (3, 7, 13)
HOST_D = (8, 32, 64)
TOL = {"f32": 1e-4, "f16": 2e-2}
SANITIZE_ENV = "TSJNET_HARNESS_SANITIZE"
NP_DTYPE = {"f32": np.float32, "f16": np.float16}


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    """na2d_host_harness.cpp built with g++ into a temporary shared library."""
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler (g++/c++) on PATH: cannot build kernels/na2d_host_harness.cpp")
    lib = tmp_path_factory.mktemp("na2d_harness") / "libna2d_host.so"
    # Set by test_harness_under_asan_and_ubsan, which reruns this file in a process with libasan preloaded.
    sanitize = (
        ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]
        if os.environ.get(SANITIZE_ENV) == "1"
        else []
    )
    cmd = [
        cxx,
        "-std=c++17",
        "-O1",
        "-shared",
        "-fPIC",
        "-Wall",
        "-Wextra",
        "-Werror",
        *sanitize,
        f"-I{KERNELS}",
        "-DNA_HOST_KS_LIST(X)=" + " ".join(f"X({k})" for k in HOST_KS),
        "-DNA_HOST_D_LIST(X)=" + " ".join(f"X({d})" for d in HOST_D),
        str(KERNELS / "na2d_host_harness.cpp"),
        "-o",
        str(lib),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"harness build failed:\n{' '.join(cmd)}\n{done.stderr}"
    if sanitize:
        assert b"__asan_" in lib.read_bytes() and b"__ubsan_" in lib.read_bytes(), "harness not instrumented"
    dll = ctypes.CDLL(str(lib))
    p, i, ll, f = ctypes.c_void_p, ctypes.c_int, ctypes.c_longlong, ctypes.c_float
    dll.na2d_host_forward.argtypes = [i, i, i, p, p, p, p, i, p, i, i, i, i, i, f, ll, ll, ll]
    dll.na2d_host_launch.argtypes = [i, i, i, i, i, i, i, p, p, p, p, i, p, i, i, i, i, i, f, ll, ll, ll]
    dll.na2d_host_config.argtypes = [i, i, i, ctypes.POINTER(ctypes.c_int)]
    dll.na2d_host_half_roundtrip.argtypes = [p, p, p, i]
    return dll


def _ptr(a: np.ndarray | None) -> int | None:
    return None if a is None else a.ctypes.data


def run_harness(
    dll: ctypes.CDLL,
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    kernel_size: int,
    dilation: int,
    rpb: np.ndarray | None = None,
    scale: float | None = None,
    launch: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """Emulated kernel on q, k, v [B, H, W, heads, D] (views sharing one stride set); returns out [B, H, W, heads, D].

    ``launch`` = (grid_x, grid_y, grid_z, block_x) overrides the kernel's own launch geometry. The output
    starts as NaN so that a query no warp wrote stays visible.
    """
    assert q.strides == k.strides == v.strides and q.dtype == k.dtype == v.dtype
    B, H, W, heads, D = q.shape
    item = q.itemsize
    assert q.strides[4] == item and q.strides[3] == D * item, "head/channel dims must be packed"
    sB, sH, sW = (s // item for s in q.strides[:3])
    dtype = 0 if q.dtype == np.float32 else 1
    out = np.full(q.shape, np.nan, dtype=q.dtype)
    rpb_half = int(rpb is not None and rpb.dtype == np.float16)
    scale = D**-0.5 if scale is None else scale
    common = (_ptr(q), _ptr(k), _ptr(v), _ptr(rpb), rpb_half, _ptr(out), B, H, W, heads, dilation, scale, sB, sH, sW)
    if launch is None:
        rc = dll.na2d_host_forward(dtype, kernel_size, D, *common)
    else:
        rc = dll.na2d_host_launch(dtype, kernel_size, D, *launch, *common)
    if rc != 0:
        raise RuntimeError(f"harness returned {rc} for dtype={q.dtype} k={kernel_size} D={D} launch={launch}")
    return out


def make_inputs(
    shape: tuple[int, ...], dtype: str, kernel_size: int, with_rpb: bool, seed: int, rpb_dtype: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal(shape).astype(NP_DTYPE[dtype]) for _ in range(3))
    rpb = None
    if with_rpb:
        span = 2 * kernel_size - 1
        rpb = rng.standard_normal((shape[3], span, span)).astype(NP_DTYPE[rpb_dtype or dtype])
    return q, k, v, rpb


def reference(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    kernel_size: int,
    dilation: int,
    rpb: np.ndarray | None,
    scale: float | None = None,
) -> np.ndarray:
    """neighborhood_attention_2d_reference on the same values (fp16 in -> fp32 math -> fp16 out)."""
    t = [torch.from_numpy(np.ascontiguousarray(x)) for x in (q, k, v)]
    r = None if rpb is None else torch.from_numpy(rpb)
    return neighborhood_attention_2d_reference(*t, kernel_size, dilation, r, scale).numpy()


def max_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


# (B, H, W, heads, D), kernel, dilation: borders, maps and dilation groups smaller than the window,
# several 32-column tiles, odd sizes, a 1x1 map, dilation groups of unequal length.
CASES = [
    ((2, 9, 11, 2, 32), 3, 1),
    ((1, 5, 4, 2, 32), 7, 1),  # map smaller than the window in both axes
    ((1, 14, 40, 1, 32), 7, 2),  # two column tiles, dilation groups 7 x 20
    ((1, 9, 9, 2, 32), 7, 2),  # dilation groups (5/4 long) smaller than the window
    ((1, 12, 70, 1, 32), 7, 1),  # three column tiles, last one partial
    ((1, 1, 1, 1, 32), 3, 1),  # a single pixel
    ((1, 20, 18, 1, 32), 13, 1),
    ((1, 6, 35, 1, 32), 13, 2),  # groups 3 x 18: rows shrink, columns shifted at both borders
    ((1, 11, 13, 3, 8), 3, 2),
    ((2, 8, 33, 1, 64), 7, 1),
    ((1, 5, 7, 2, 64), 13, 2),
]


@pytest.mark.parametrize("dtype", ["f32", "f16"])
@pytest.mark.parametrize("with_rpb", [False, True], ids=["no_rpb", "rpb"])
@pytest.mark.parametrize("shape,kernel_size,dilation", CASES, ids=[f"{s}-k{k}-d{d}" for s, k, d in CASES])
def test_harness_matches_reference(harness, shape, kernel_size, dilation, dtype, with_rpb):
    q, k, v, rpb = make_inputs(shape, dtype, kernel_size, with_rpb, seed=sum(shape) + kernel_size)
    out = run_harness(harness, q, k, v, kernel_size, dilation, rpb)
    assert not np.isnan(out).any(), "some output was never written or read an unstaged key"
    err = max_err(out, reference(q, k, v, kernel_size, dilation, rpb))
    assert err <= TOL[dtype], f"max abs err {err:.3g} > {TOL[dtype]}"


@pytest.mark.parametrize("dtype", ["f32", "f16"])
def test_strided_views_of_a_packed_qkv(harness, dtype):
    """q, k, v as views of one [B, H, W, 3, heads, D] buffer (how attention blocks produce them)."""
    rng = np.random.default_rng(7)
    qkv = rng.standard_normal((2, 10, 37, 3, 2, 32)).astype(NP_DTYPE[dtype])
    q, k, v = qkv[:, :, :, 0], qkv[:, :, :, 1], qkv[:, :, :, 2]
    assert not q.flags.c_contiguous
    out = run_harness(harness, q, k, v, 7, 1)
    err = max_err(out, reference(q, k, v, 7, 1, None))
    assert err <= TOL[dtype], f"max abs err {err:.3g}"


@pytest.mark.parametrize("dtype,rpb_dtype", [("f32", "f16"), ("f16", "f32")])
def test_rpb_in_the_other_precision(harness, dtype, rpb_dtype):
    """The ONNX contract allows an fp32 rpb with fp16 q (and the kernel reads fp16 rpb with fp32 q)."""
    q, k, v, rpb = make_inputs((1, 9, 12, 2, 32), dtype, 7, True, seed=3, rpb_dtype=rpb_dtype)
    out = run_harness(harness, q, k, v, 7, 1, rpb)
    err = max_err(out, reference(q, k, v, 7, 1, rpb.astype(np.float32)))
    assert err <= TOL[dtype], f"max abs err {err:.3g}"


def test_custom_scale(harness):
    q, k, v, rpb = make_inputs((1, 8, 9, 2, 32), "f32", 3, True, seed=4)
    out = run_harness(harness, q, k, v, 3, 1, rpb, scale=0.37)
    err_custom = max_err(out, reference(q, k, v, 3, 1, rpb, scale=0.37))
    err_default = max_err(out, reference(q, k, v, 3, 1, rpb))
    assert err_custom <= 1e-4, f"max abs err {err_custom:.3g} against the same scale"
    assert err_default > 1e-2, "the scale argument had no effect"


@pytest.mark.parametrize("dtype,kernel_size,head_dim", [("f32", 7, 32), ("f16", 7, 32), ("f32", 13, 64), ("f16", 3, 8)])
@pytest.mark.parametrize("size,dilation", [((19, 45), 1), ((23, 70), 3)], ids=["19x45-d1", "23x70-d3"])
def test_python_launch_geometry_covers_every_query(harness, dtype, kernel_size, head_dim, size, dilation):
    """spec.launch_grid + spec.kernel_config (what the binding and the plugin launch with) write every output."""
    cfg = spec.kernel_config(dtype, kernel_size, head_dim)
    shape = (2, *size, 1, head_dim)  # B * heads = 2 blocks in z
    q, k, v, _ = make_inputs(shape, dtype, kernel_size, False, seed=5)
    grid = spec.launch_grid(size[0], size[1], shape[0], shape[3], dilation, cfg)
    out = run_harness(harness, q, k, v, kernel_size, dilation, launch=(*grid, cfg.threads))
    assert not np.isnan(out).any()
    assert max_err(out, reference(q, k, v, kernel_size, dilation, None)) <= TOL[dtype]
    # A grid one block short leaves queries unwritten: proves the NaN check above can fail.
    short = run_harness(harness, q, k, v, kernel_size, dilation, launch=(grid[0] - 1, grid[1], grid[2], cfg.threads))
    assert np.isnan(short).any()


def test_wrong_block_size_is_refused(harness):
    q, k, v, _ = make_inputs((1, 4, 4, 1, 32), "f32", 7, False, seed=6)
    threads = spec.kernel_config("f32", 7, 32).threads
    with pytest.raises(RuntimeError, match="returned -2"):
        run_harness(harness, q, k, v, 7, 1, launch=(1, 1, 1, threads + 32))


@pytest.mark.parametrize("dtype", spec.DTYPES)
def test_python_config_mirror_matches_cpp_config(harness, dtype):
    """spec.kernel_config == na2d::Config for every (k, head_dim) the core accepts."""
    for kernel_size in (1, 3, 5, 7, 9, 11, 13):
        for head_dim in range(8, 65, 8):
            raw = (ctypes.c_int * 5)()
            assert harness.na2d_host_config(0 if dtype == "f32" else 1, kernel_size, head_dim, raw) == 0
            cfg = spec.kernel_config(dtype, kernel_size, head_dim)
            assert tuple(raw) == (cfg.warps, cfg.qpt, cfg.smem_bytes, cfg.threads, cfg.rows_per_block), (kernel_size, head_dim)
            assert cfg.smem_bytes <= 48 * 1024


def test_fp16_conversion_is_bit_exact(harness):
    """The host fp16 <-> fp32 conversion (used by the harness, mirrors cvt.rn.f16.f32) equals numpy's."""
    rng = np.random.default_rng(8)
    special = np.array(
        [
            0.0,
            -0.0,
            1.0,
            65504.0,
            65519.99,
            65520.0,
            1e6,
            -1e6,
            np.inf,
            -np.inf,
            2.0**-14,
            2.0**-24,
            2.0**-25,
            2.0**-25 * 1.0001,
            2.0**-26,
            3 * 2.0**-25,
            1 + 2.0**-11,
            1 + 3 * 2.0**-11,
            6.1e-5,
            5.96e-8,
            -2.5e-6,
        ],
        dtype=np.float32,
    )
    values = np.concatenate([special, rng.standard_normal(20000).astype(np.float32) * 10.0 ** rng.integers(-9, 6, 20000)])
    values = values.astype(np.float32)
    half = np.empty(values.shape, np.uint16)
    back = np.empty(values.shape, np.float32)
    harness.na2d_host_half_roundtrip(values.ctypes.data, half.ctypes.data, back.ctypes.data, values.size)
    with np.errstate(over="ignore"):  # values beyond fp16's range are meant to become inf
        expected = values.astype(np.float16)
    np.testing.assert_array_equal(half, expected.view(np.uint16))
    np.testing.assert_array_equal(back, expected.astype(np.float32))
    nan_half = np.empty(1, np.uint16)
    harness.na2d_host_half_roundtrip(
        np.array([np.nan], np.float32).ctypes.data, nan_half.ctypes.data, np.empty(1, np.float32).ctypes.data, 1
    )
    assert np.isnan(nan_half.view(np.float16)[0])


# ------------------------------------------------------------------------------------------------
# Non-finite inputs (review 2026-12, K1 and K2): a query's output depends only on the keys and values
# of its own window, and a window row whose logits are all -inf must not poison the softmax.
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["f32", "f16"])
def test_inf_value_outside_a_window_does_not_reach_that_query(harness, dtype):
    """K1: one inf in V at a row outside a query's window (but inside its warp's rows) leaves that query finite."""
    q, k, v, _ = make_inputs((1, 16, 20, 1, 32), dtype, 7, False, seed=11)
    v[0, 12, 5, 0, 3] = np.inf  # key row 12: in the windows of query rows 9..15 only (k 7, H 16)
    out = run_harness(harness, q, k, v, 7, 1)
    ref = reference(q, k, v, 7, 1, None)
    finite = np.isfinite(ref).all(axis=(3, 4))  # [B, H, W]: query fully finite
    assert finite[0, :9].all() and not finite[0, 12].all(), "the probe no longer separates the windows"
    bad = finite & ~np.isfinite(out).all(axis=(3, 4))
    assert not bad.any(), f"{int(bad.sum())} queries became non-finite from a value outside their window"
    assert max_err(out[finite], ref[finite]) <= TOL[dtype]


@pytest.mark.parametrize("dtype", ["f32", "f16"])
def test_window_row_with_all_logits_minus_inf(harness, dtype):
    """K2: an rpb row of -inf makes a whole key row -inf for some queries: safe softmax, no NaN."""
    q, k, v, rpb = make_inputs((1, 12, 12, 1, 32), dtype, 7, True, seed=12)
    rpb[0, 3, :] = -np.inf  # row offset 0 (key row == query row): the first row walked by query rows 0..3
    out = run_harness(harness, q, k, v, 7, 1, rpb)
    ref = reference(q, k, v, 7, 1, rpb)
    assert np.isfinite(ref).all(), "the reference must stay finite (other rows carry the softmax)"
    assert np.isfinite(out).all(), f"{int((~np.isfinite(out)).sum())} non-finite outputs"
    assert max_err(out, ref) <= TOL[dtype]


# ------------------------------------------------------------------------------------------------
# The whole file again with the harness built under AddressSanitizer + UndefinedBehaviorSanitizer.
# ------------------------------------------------------------------------------------------------
_CANARY = r"""
#include <cstdlib>
extern "C" int canary(int i) { int* p = (int*)std::malloc(4 * sizeof(int)); p[0] = 1; int r = p[i]; std::free(p); return r; }
"""


def _sanitizer_runtime(cxx: str) -> str | None:
    """Path of libasan.so for ``cxx`` (preloaded so that a sanitized .so can be dlopen'ed by Python), or None."""
    done = subprocess.run([cxx, "-print-file-name=libasan.so"], capture_output=True, text=True)
    path = done.stdout.strip()
    return path if done.returncode == 0 and os.path.isabs(path) and os.path.exists(path) else None


@pytest.mark.slow
def test_harness_under_asan_and_ubsan(tmp_path):
    """Every case of this file with -fsanitize=address,undefined (fatal on the first report), in a child
    process with libasan preloaded. A canary out-of-bounds read first proves that the setup detects errors."""
    if os.environ.get(SANITIZE_ENV) == "1":
        pytest.skip("already running under the sanitizers")
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler (g++/c++) on PATH")
    runtime = _sanitizer_runtime(cxx)
    flags = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]
    (tmp_path / "canary.cpp").write_text(_CANARY)
    built = subprocess.run(
        [cxx, "-shared", "-fPIC", *flags, str(tmp_path / "canary.cpp"), "-o", str(tmp_path / "canary.so")],
        capture_output=True,
        text=True,
    )
    if runtime is None or built.returncode != 0:
        pytest.skip(f"{cxx} cannot build with -fsanitize=address,undefined (libasan missing?): {built.stderr[-300:]}")
    import sys

    env = {
        **os.environ,
        "LD_PRELOAD": runtime,
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0",
        "UBSAN_OPTIONS": "print_stacktrace=1",
        SANITIZE_ENV: "1",
    }
    probe = f"import ctypes; ctypes.CDLL({str(tmp_path / 'canary.so')!r}).canary(4)"
    caught = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert caught.returncode != 0 and "heap-buffer-overflow" in caught.stderr, caught.stderr[-2000:]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", __file__],
        env=env,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    tail = (done.stdout + done.stderr)[-4000:]
    assert done.returncode == 0, f"harness cases failed or a sanitizer fired:\n{tail}"
    assert "AddressSanitizer" not in done.stderr and "runtime error" not in done.stderr, tail
    assert " passed" in done.stdout and " failed" not in done.stdout, tail
