"""What the compiled neighborhood-attention kernel is, as plain Python (no torch, CUDA or TensorRT).

One place for the facts that the build (``build.py``), the PyTorch binding (``torch_binding.py``) and the
TensorRT plugin (``trt_plugin.py``) must agree on with ``na2d_kernels.cu`` / ``na2d_core.cuh``:
entry-point names, the argument list, the block size and the grid of one launch, and which
(dtype, kernel size, head dim) instantiations exist. The tests check these against the compiled PTX
(parameter list, ``.maxntid``) and against the C++ ``Config`` through the CPU harness, so a change on
one side that is not made on the other fails a test.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

DTYPES = ("f32", "f16")
#: Kernel sizes compiled in the full matrix (the core accepts any odd size; these are the ones built).
KERNEL_SIZES = (3, 5, 7, 9, 11, 13)
#: Head dims compiled in the full matrix (the core accepts multiples of 8 up to 64).
HEAD_DIMS = (8, 16, 32, 64)
#: The instantiations TSJNet uses (nat_mini: kernel 7, head_dim 32 at every level), in both precisions.
TSJNET_INSTANCES: tuple[tuple[str, int, int], ...] = (("f32", 7, 32), ("f16", 7, 32))
#: Every instantiation of the full matrix, in na2d_kernels.cu's order.
FULL_MATRIX: tuple[tuple[str, int, int], ...] = tuple((dt, ks, d) for dt in DTYPES for ks in KERNEL_SIZES for d in HEAD_DIMS)

ELEMENT_BYTES = {"f32": 4, "f16": 2}
WARP = 32
MAX_STATIC_SMEM = 48 * 1024

# Argument lists of the two entry points, in order (TensorRT AOT order: input tensors, int32 scalars,
# output tensors). "ptr" is a 64-bit device pointer, "i32" a 32-bit int. The PTX of every entry point is
# checked against these in tests/test_kernels_build.py.
ARGS_PLAIN: tuple[tuple[str, str], ...] = (
    ("q", "ptr"),
    ("k", "ptr"),
    ("v", "ptr"),
    ("B", "i32"),
    ("H", "i32"),
    ("W", "i32"),
    ("heads", "i32"),
    ("dil", "i32"),
    ("scale_bits", "i32"),
    ("sB", "i32"),
    ("sH", "i32"),
    ("sW", "i32"),
    ("out", "ptr"),
)
ARGS_RPB: tuple[tuple[str, str], ...] = (
    ("q", "ptr"),
    ("k", "ptr"),
    ("v", "ptr"),
    ("rpb", "ptr"),
    ("B", "i32"),
    ("H", "i32"),
    ("W", "i32"),
    ("heads", "i32"),
    ("dil", "i32"),
    ("scale_bits", "i32"),
    ("sB", "i32"),
    ("sH", "i32"),
    ("sW", "i32"),
    ("rpb_half", "i32"),
    ("out", "ptr"),
)

INT32_MAX = 2**31 - 1
GRID_YZ_MAX = 65535  # CUDA's limit on gridDim.y and gridDim.z


def entry_name(dtype: str, kernel_size: int, head_dim: int, rpb: bool) -> str:
    """Name of the extern "C" entry point, e.g. ``na2d_fwd_rpb_f16_k7_d32``."""
    _check_dtype(dtype)
    return f"na2d_fwd_{'rpb_' if rpb else ''}{dtype}_k{kernel_size}_d{head_dim}"


def entry_names(instances: tuple[tuple[str, int, int], ...] | list[tuple[str, int, int]]) -> list[str]:
    """Both entry points (without and with rpb) of every (dtype, kernel_size, head_dim) in ``instances``."""
    return [entry_name(dt, ks, d, rpb) for dt, ks, d in instances for rpb in (False, True)]


def entry_args(rpb: bool) -> tuple[tuple[str, str], ...]:
    return ARGS_RPB if rpb else ARGS_PLAIN


@dataclass(frozen=True)
class KernelConfig:
    """Compile-time configuration of one instantiation (mirror of ``na2d::Config`` in na2d_core.cuh)."""

    warps: int  # warps per block
    qpt: int  # query rows per warp
    smem_bytes: int  # static shared memory per block
    threads: int  # threads per block (= the kernel's __launch_bounds__)
    rows_per_block: int  # query rows (of one dilation group) per block


def kernel_config(dtype: str, kernel_size: int, head_dim: int) -> KernelConfig:
    """Block configuration of an instantiation; the same formulas as ``na2d::Config``."""
    _check_dtype(dtype)
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
    if head_dim % 8 or not 8 <= head_dim <= 64:
        raise ValueError(f"head_dim must be a multiple of 8 in [8, 64], got {head_dim}")
    vecs = head_dim * ELEMENT_BYTES[dtype] // 16  # 16-byte vectors per key
    stride = vecs if vecs % 2 == 1 else vecs + 1  # odd stride: bank-conflict-free reads
    qpt = 2 if head_dim <= 32 else 1
    warp_bytes = 2 * (WARP + kernel_size - 1) * stride * 16  # K + V staging buffers of one warp
    fit = MAX_STATIC_SMEM // warp_bytes
    warps = 4 if fit >= 4 else max(fit, 1)
    return KernelConfig(warps=warps, qpt=qpt, smem_bytes=warps * warp_bytes, threads=warps * WARP, rows_per_block=warps * qpt)


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def launch_grid(height: int, width: int, batch: int, heads: int, dilation: int, cfg: KernelConfig) -> tuple[int, int, int]:
    """Grid of one launch: (tiles_x * tiles_y, dil * dil, B * heads), as documented in na2d_kernels.cu.

    A tile is 32 query columns x ``cfg.rows_per_block`` query rows of one dilation group; the group
    extents are at most ceil(H / dil) x ceil(W / dil).
    """
    tiles_x = _cdiv(_cdiv(width, dilation), WARP)
    tiles_y = _cdiv(_cdiv(height, dilation), cfg.rows_per_block)
    return tiles_x * tiles_y, dilation * dilation, batch * heads


def float_bits(value: float) -> int:
    """The IEEE-754 fp32 bit pattern of ``value`` as a signed int32 (how the kernel receives ``scale``)."""
    return struct.unpack("<i", struct.pack("<f", float(value)))[0]


def _check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
