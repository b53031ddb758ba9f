"""PyTorch binding of the CUDA neighborhood-attention kernel (forward only), through cuda-python.

``tsjnet_sdk.ops`` asks this module for :data:`cuda_kernel` through :func:`provide` the first time a
CUDA NA call needs it (one-way: nothing here imports the ops). Import never touches the GPU: the driver
is initialised, and the kernel image loaded, on the first launch.

Per launch: pick the image for the tensor's device (:func:`tsjnet_sdk.kernels.build.ensure_image`: the
device's cubin, a binary-compatible cubin, or PTX for the driver to JIT; compiled with nvcc on first use
if nothing prebuilt fits), ``cuModuleLoadData`` it once per device into the primary context that
PyTorch uses, and ``cuLaunchKernel`` on PyTorch's current stream of that device, so the launch is
ordered with the surrounding torch work like any torch op.

Layout: q, k, v [B, H, W, heads, head_dim] (NATTEN's), float32 or float16, on one CUDA device;
rpb [heads, 2k-1, 2k-1] float32 or float16 (other float dtypes are converted to float32);
returns a new contiguous [B, H, W, heads, head_dim] tensor in q's dtype.
"""

from __future__ import annotations

import ctypes
import importlib.util
import math
import threading
import warnings
from typing import Any

import torch
from torch import Tensor

from tsjnet_sdk.errors import TsjnetError
from tsjnet_sdk.kernels import spec
from tsjnet_sdk.kernels.build import KernelBuildError, ensure_image

TORCH_DTYPES = {torch.float32: "f32", torch.float16: "f16"}


class CudaKernelUnavailable(TsjnetError, RuntimeError):
    """cuda-python or the CUDA driver is missing/unusable, or no kernel image can be loaded."""


# ---------------------------------------------------------------------------------------------------
# Validation (no GPU needed)
# ---------------------------------------------------------------------------------------------------
def validate(q: Tensor, k: Tensor, v: Tensor, kernel_size: int, dilation: int, rpb: Tensor | None, scale: float | None) -> None:
    """Raise a clear TypeError/ValueError/RuntimeError if the kernel cannot run this call."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if q.dim() != 5 or k.shape != q.shape or v.shape != q.shape:
        raise ValueError(
            f"q, k, v must be [batch, height, width, heads, head_dim] of one shape, got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if q.dtype not in TORCH_DTYPES or k.dtype != q.dtype or v.dtype != q.dtype:
        raise TypeError(
            f"the CUDA NA kernel takes float32 or float16 q, k, v of one dtype, got {q.dtype}, "
            f"{k.dtype}, {v.dtype}; use backend='reference' for other dtypes"
        )
    head_dim = q.shape[-1]
    if head_dim not in spec.HEAD_DIMS:
        raise ValueError(f"the CUDA NA kernel is built for head_dim in {spec.HEAD_DIMS}, got {head_dim}; use backend='reference'")
    if not isinstance(kernel_size, int) or kernel_size not in spec.KERNEL_SIZES:
        raise ValueError(f"the CUDA NA kernel is built for odd kernel_size 3..13 {spec.KERNEL_SIZES}, got {kernel_size!r}")
    if not isinstance(dilation, int) or dilation < 1:
        raise ValueError(f"dilation must be an int >= 1, got {dilation!r}")
    if rpb is not None:
        expected = (q.shape[3], 2 * kernel_size - 1, 2 * kernel_size - 1)
        if not isinstance(rpb, Tensor) or tuple(rpb.shape) != expected:
            raise ValueError(
                f"rpb must be a tensor of shape [heads, 2k-1, 2k-1] = {list(expected)}, got "
                f"{list(rpb.shape) if isinstance(rpb, Tensor) else type(rpb).__name__}"
            )
        if not rpb.is_floating_point():
            raise ValueError(f"rpb must be a floating tensor, got {rpb.dtype}")
    if scale is not None and not math.isfinite(float(scale)):
        raise ValueError(f"scale must be finite, got {scale!r}")
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (q, k, v, rpb)):
        raise RuntimeError(
            "the CUDA NA kernel is forward-only (no autograd); use backend='reference' (or 'auto', "
            "which falls back when gradients are needed) for training"
        )
    per_image = q.shape[1] * q.shape[2] * q.shape[3] * q.shape[4]
    if per_image > spec.INT32_MAX or q.shape[0] > spec.INT32_MAX:
        raise ValueError(
            f"one image of q has {per_image} elements; the kernel's int32 strides allow up to "
            f"{spec.INT32_MAX}: split the batch or the map"
        )
    if q.shape[0] * q.shape[3] > spec.GRID_YZ_MAX or dilation * dilation > spec.GRID_YZ_MAX:
        raise ValueError(
            f"batch * heads ({q.shape[0] * q.shape[3]}) and dilation^2 ({dilation * dilation}) must "
            f"be <= {spec.GRID_YZ_MAX} (CUDA grid y/z limit)"
        )
    # device last, so that everything above is checkable (and tested) without a GPU
    devices = [t.device for t in (q, k, v)] + ([rpb.device] if rpb is not None else [])
    if not (q.is_cuda and all(d == q.device for d in devices)):
        raise ValueError(
            f"the CUDA NA kernel needs q, k, v (and rpb) on one CUDA device, got "
            f"{', '.join(map(str, devices))}; use backend='reference' for CPU tensors"
        )


# ---------------------------------------------------------------------------------------------------
# Launch plan (no GPU needed): which entry point, grid, block, and the argument list
# ---------------------------------------------------------------------------------------------------
def _kernel_strides(t: Tensor) -> tuple[int, int, int] | None:
    """(sB, sH, sW) in elements if heads/channels are packed and rows 16-byte aligned, else None.

    Strides of size-1 dims are never used by the kernel, so they are reported as 0 (torch leaves them
    arbitrary even in "contiguous" tensors, which would otherwise make q, k, v look different).
    """
    B, H, W, heads, D = t.shape
    if (D > 1 and t.stride(4) != 1) or (heads > 1 and t.stride(3) != D):
        return None
    strides = tuple(s if n > 1 else 0 for s, n in zip(t.stride()[:3], (B, H, W)))
    item = t.element_size()
    if t.data_ptr() % 16 or any((s * item) % 16 for s in strides) or any(s > spec.INT32_MAX or s < 0 for s in strides):
        return None
    return strides  # type: ignore[return-value]


def prepare_inputs(q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor, tuple[int, int, int]]:
    """q, k, v sharing one kernel-compatible stride set (views are kept when they already do)."""
    strides = [_kernel_strides(t) for t in (q, k, v)]
    if strides[0] is None or strides.count(strides[0]) != 3:
        q, k, v = (t.contiguous() for t in (q, k, v))
        strides = [_kernel_strides(t) for t in (q, k, v)]
        if strides[0] is None or strides.count(strides[0]) != 3:  # misaligned storage offset
            q, k, v = (t.clone(memory_format=torch.contiguous_format) for t in (q, k, v))
            strides = [_kernel_strides(t) for t in (q, k, v)]
    if strides[0] is None or strides.count(strides[0]) != 3:  # unreachable after validate(); kept as a guard
        raise RuntimeError("could not bring q, k, v into one 16-byte-aligned stride set")
    return q, k, v, strides[0]


def launch_plan(
    shape: tuple[int, ...],
    dtype: str,
    kernel_size: int,
    dilation: int,
    strides: tuple[int, int, int],
    scale: float,
    rpb_dtype: str | None,
) -> tuple[str, tuple[int, int, int], int, list[tuple[str, str, Any]]]:
    """(entry name, grid, threads per block, [(arg name, "ptr"|"i32", value)]) for one launch.

    Pointer arguments are given by name (q, k, v, rpb, out) with value None; the caller fills them in.
    """
    B, H, W, heads, D = shape
    cfg = spec.kernel_config(dtype, kernel_size, D)
    grid = spec.launch_grid(H, W, B, heads, dilation, cfg)
    values = {
        "B": B,
        "H": H,
        "W": W,
        "heads": heads,
        "dil": dilation,
        "scale_bits": spec.float_bits(scale),
        "sB": strides[0],
        "sH": strides[1],
        "sW": strides[2],
        "rpb_half": int(rpb_dtype == "f16"),
    }
    rpb = rpb_dtype is not None
    args = [(name, kind, None if kind == "ptr" else values[name]) for name, kind in spec.entry_args(rpb)]
    return spec.entry_name(dtype, kernel_size, D, rpb), grid, cfg.threads, args


# ---------------------------------------------------------------------------------------------------
# Driver: lazy init, modules per device, launch
# ---------------------------------------------------------------------------------------------------
_lock = threading.Lock()
_driver_module: Any = None
_contexts: dict[int, Any] = {}
_modules: dict[tuple[int, str], Any] = {}
_functions: dict[tuple[int, str], Any] = {}
_failures: dict[tuple[int, str], str] = {}


def _driver() -> Any:
    """cuda.bindings.driver after cuInit (once)."""
    global _driver_module
    if _driver_module is None:
        try:
            from cuda.bindings import driver
        except ImportError as exc:
            raise CudaKernelUnavailable("the CUDA NA kernel needs cuda-python: pip install 'tsjnet-sdk[cuda]'") from exc
        try:
            result = driver.cuInit(0)
        except Exception as exc:  # cuda-python raises (not returns) when it cannot find libcuda at all
            raise CudaKernelUnavailable(f"cuda-python cannot load the CUDA driver: {exc}") from exc
        _check(driver, result, "cuInit")
        _driver_module = driver
    return _driver_module


def _check(driver: Any, result: Any, what: str) -> Any:
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        name_err, name = driver.cuGetErrorName(err)
        label = name.decode() if int(name_err) == 0 and name else str(int(err))
        raise CudaKernelUnavailable(f"CUDA driver call {what} failed: {label}")
    return values[0] if len(values) == 1 else values


def _context(driver: Any, index: int) -> Any:
    """PyTorch's (primary) context of device ``index``; retained once and kept."""
    ctx = _contexts.get(index)
    if ctx is None:
        torch.cuda.init()
        device = _check(driver, driver.cuDeviceGet(index), "cuDeviceGet")
        ctx = _contexts[index] = _check(driver, driver.cuDevicePrimaryCtxRetain(device), "cuDevicePrimaryCtxRetain")
    return ctx


def _load(driver: Any, index: int, path: Any, kind: str) -> Any:
    key = (index, str(path))
    module = _modules.get(key)
    if module is None:
        data = path.read_bytes() + (b"\0" if kind == "ptx" else b"")  # PTX is passed as a C string
        module = _modules[key] = _check(driver, driver.cuModuleLoadData(data), f"cuModuleLoadData({path.name})")
    return module


def _function(index: int, dtype: str, kernel_size: int, head_dim: int, rpb: bool) -> Any:
    """The loaded CUfunction of one entry point on device ``index`` (cached; failures cached too)."""
    name = spec.entry_name(dtype, kernel_size, head_dim, rpb)
    key = (index, name)
    if key in _functions:
        return _functions[key]
    if key in _failures:
        raise CudaKernelUnavailable(_failures[key])
    with _lock:
        try:
            driver = _driver()
            ctx = _context(driver, index)
            cc = torch.cuda.get_device_capability(index)
            path, kind = ensure_image(cc, (dtype, kernel_size, head_dim))
            _check(driver, driver.cuCtxPushCurrent(ctx), "cuCtxPushCurrent")
            try:
                try:
                    module = _load(driver, index, path, kind)
                except CudaKernelUnavailable as cubin_error:
                    if kind != "cubin":
                        raise
                    # e.g. a driver older than the toolkit that wrote the cubin: let it JIT the PTX instead
                    ptx = path.with_suffix(".ptx")
                    try:
                        module = _load(driver, index, ptx, "ptx")
                    except CudaKernelUnavailable as ptx_error:
                        raise CudaKernelUnavailable(f"{cubin_error}; PTX fallback: {ptx_error}") from None
                fn = _check(driver, driver.cuModuleGetFunction(module, name.encode()), f"cuModuleGetFunction({name})")
            finally:
                driver.cuCtxPopCurrent()
        except (CudaKernelUnavailable, KernelBuildError) as exc:
            major, minor = torch.cuda.get_device_capability(index)
            _failures[key] = f"CUDA NA kernel {name} unavailable on cuda:{index} (sm_{major}{minor}): {exc}"
            raise CudaKernelUnavailable(_failures[key]) from exc
        _functions[key] = fn
        return fn


def na2d_cuda(
    q: Tensor, k: Tensor, v: Tensor, kernel_size: int, dilation: int = 1, rpb: Tensor | None = None, scale: float | None = None
) -> Tensor:
    """Neighborhood attention with the CUDA kernel: q, k, v [B, H, W, heads, D] -> [B, H, W, heads, D].

    Same semantics as ``neighborhood_attention_2d_reference``; forward only.
    """
    validate(q, k, v, kernel_size, dilation, rpb, scale)
    dtype = TORCH_DTYPES[q.dtype]
    head_dim = q.shape[-1]
    scale = float(head_dim**-0.5 if scale is None else scale)
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    if out.numel() == 0:
        return out
    q, k, v, strides = prepare_inputs(q, k, v)
    rpb_dtype = None
    if rpb is not None:
        rpb = (rpb if rpb.dtype in TORCH_DTYPES else rpb.float()).contiguous()
        rpb_dtype = TORCH_DTYPES[rpb.dtype]
    name, grid, threads, args = launch_plan(tuple(q.shape), dtype, kernel_size, dilation, strides, scale, rpb_dtype)
    index = q.device.index if q.device.index is not None else torch.cuda.current_device()
    fn = _function(index, dtype, kernel_size, head_dim, rpb is not None)
    driver = _driver()
    pointers = {
        "q": q.data_ptr(),
        "k": k.data_ptr(),
        "v": v.data_ptr(),
        "out": out.data_ptr(),
        "rpb": rpb.data_ptr() if rpb is not None else 0,
    }
    # cuLaunchKernel's kernelParams: an array of pointers to each argument's storage (the C ABI).
    storage = [ctypes.c_uint64(pointers[n]) if kind == "ptr" else ctypes.c_int32(value) for n, kind, value in args]
    params = (ctypes.c_void_p * len(storage))(*[ctypes.addressof(s) for s in storage])
    stream = torch.cuda.current_stream(q.device).cuda_stream
    _check(driver, driver.cuCtxPushCurrent(_contexts[index]), "cuCtxPushCurrent")
    try:
        _check(
            driver,
            driver.cuLaunchKernel(fn, *grid, threads, 1, 1, 0, driver.CUstream(stream), ctypes.addressof(params), 0),
            f"cuLaunchKernel({name})",
        )
    finally:
        driver.cuCtxPopCurrent()
    return out


def supports(q: Tensor, k: Tensor, v: Tensor, kernel_size: int, dilation: int, rpb: Tensor | None) -> bool:
    """Whether :func:`na2d_cuda` can run this call (``auto`` asks before choosing it; never raises).

    False for anything :func:`validate` rejects (incl. calls that need gradients), and when the kernel
    cannot be loaded on the device (warned once per entry point, with the reason).
    """
    try:
        validate(q, k, v, kernel_size, dilation, rpb, None)
        index = q.device.index if q.device.index is not None else torch.cuda.current_device()
        _function(index, TORCH_DTYPES[q.dtype], kernel_size, q.shape[-1], rpb is not None)
    except CudaKernelUnavailable as exc:
        if str(exc) not in _warned:
            _warned.add(str(exc))
            warnings.warn(f"{exc}; neighborhood attention falls back to another backend", RuntimeWarning, stacklevel=3)
        return False
    except (TypeError, ValueError, RuntimeError):
        return False
    return True


_warned: set[str] = set()


class CudaKernel:
    """What is registered with ``register_cuda_kernel``: callable like :func:`na2d_cuda`, plus ``supports``."""

    def __call__(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        kernel_size: int,
        dilation: int = 1,
        rpb: Tensor | None = None,
        scale: float | None = None,
    ) -> Tensor:
        return na2d_cuda(q, k, v, kernel_size, dilation, rpb, scale)

    @staticmethod
    def supports(q: Tensor, k: Tensor, v: Tensor, kernel_size: int, dilation: int, rpb: Tensor | None) -> bool:
        return supports(q, k, v, kernel_size, dilation, rpb)


cuda_kernel = CudaKernel()


def provide() -> CudaKernel | None:
    """The kernel for ``tsjnet_sdk.ops`` (which calls this; the link is one-way), or None without
    cuda-python. Touches no driver: the GPU is initialised on the first launch."""
    if importlib.util.find_spec("cuda") is None or importlib.util.find_spec("cuda.bindings") is None:
        return None
    return cuda_kernel
