"""The one 2-D neighborhood-attention op of the SDK, and the one place that picks its implementation.

Semantics (NATTEN's):
  * each query attends to the k x k keys of a window centred on it; near a border the window is
    shifted inward so that it stays inside the map (no zero padding, every query sees k*k keys);
  * ``dilation`` d: the map is split into d x d interleaved groups (pixels with equal ``(y % d, x % d)``)
    and attention runs inside each group with the same rule;
  * ``rpb`` (optional) is a relative position bias [heads, 2k-1, 2k-1] added to the logits at index
    ``(dy + k - 1, dx + k - 1)``, with (dy, dx) the key's offset from the query in dilated steps
    (NATTEN <= 0.15 convention, the one the official TSJNet code ran with);
  * logits are ``scale * q.k`` with ``scale = head_dim ** -0.5`` by default; softmax in float32.

Extension beyond NATTEN: a map (or dilation group) smaller than the window does not fail. The window
shrinks to the whole group, so such a query attends to every key of its group. (NATTEN >= 0.17 raises,
NATTEN <= 0.15 zero-padded the map so that padded zero keys took part in the softmax.) TSJNet needs
this: its deepest NAT level sees a 7x7 map only for 224 px inputs; smaller inputs give smaller maps.

Implementations, chosen in :func:`neighborhood_attention_2d` only:
  * ``reference``: pure PyTorch (``_na_reference.py``). Any device, autograd, ONNX-exportable.
  * ``natten``: ``natten.na2d`` when installed and applicable (no rpb, map >= window at every
    dilation group). On CPU NATTEN 0.21 has only its slow flex backend without backward, so ``auto``
    uses it only for CUDA tensors.
  * ``cuda``: the SDK's own CUDA kernel (kernels/), for CUDA tensors, when built.

``auto`` (the default) picks, per call, in :func:`_auto_choice`: while exporting to ONNX -> reference;
CUDA tensors -> the cuda kernel *only if opted in* (see below) and able to run the call, else natten if
applicable, else reference; anything else -> reference.
Set the default with :func:`set_na_backend` or the environment variable ``TSJNET_NA_BACKEND``.

The SDK's CUDA kernel is opt-in until a GPU verification (``scripts/gpu_verify.py``) has passed on real
hardware: ``auto`` never picks it unless ``TSJNET_NA_KERNEL=cuda`` is set or
:func:`set_auto_cuda_kernel` was called with True. Asking for it explicitly (``backend="cuda"``,
``set_na_backend("cuda")`` or ``TSJNET_NA_BACKEND=cuda``) always uses it. :func:`describe_gpu_choice`
says what a GPU run would use and why (``tsjnet doctor`` prints it).

ONNX export has two forms, chosen with :func:`onnx_export_mode` around ``torch.onnx.export``:
``decomposed`` (default: standard ONNX ops in the lean form of ``_na_decomposed.py``, same semantics as
the reference, no per-position constants) or ``plugin`` (one custom
node ``tsjnet::NeighborhoodAttention2D`` per call, contract in ``tsjnet_sdk/na_node.py``, which the
TensorRT plugin of kernels/ implements).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from tsjnet_sdk import na_node
from tsjnet_sdk.ops._na_decomposed import neighborhood_attention_2d_decomposed
from tsjnet_sdk.ops._na_reference import neighborhood_attention_2d_reference

BACKENDS = ("auto", "reference", "natten", "cuda")
ONNX_MODES = ("decomposed", "plugin")
_onnx_mode: str = "decomposed"

#: Environment variable with the process-wide default implementation (one of BACKENDS; checked by
#: check_default_backend when a torch Fuser is created, and at the first NA call).
NA_BACKEND_ENV = "TSJNET_NA_BACKEND"
_default_backend: str = os.environ.get(NA_BACKEND_ENV, "auto")
#: Environment variable that lets ``auto`` use the SDK's CUDA kernel: ``cuda`` (on) or ``reference``/empty (off).
AUTO_KERNEL_ENV = "TSJNET_NA_KERNEL"
_AUTO_KERNEL_VALUES = {"cuda": True, "": False, "reference": False, "off": False, "0": False}
# None: follow the environment variable; True/False: set by set_auto_cuda_kernel (wins over the variable).
_auto_cuda_opt_in: bool | None = None
# The CUDA kernel: fn(q, k, v, kernel_size, dilation, rpb, scale) -> Tensor. The link is one-way: this
# module asks kernels/torch_binding for it (``provide()``) the first time it is needed; the kernels
# package never calls back. ``register_cuda_kernel`` remains for a kernel from outside the SDK.
_cuda_kernel: Callable[..., Tensor] | None = None
_cuda_binding_tried = False


def _load_cuda_kernel() -> Callable[..., Tensor] | None:
    """The registered kernel, else (once per process) the SDK's own from kernels/torch_binding, else None."""
    global _cuda_kernel, _cuda_binding_tried
    if _cuda_kernel is None and not _cuda_binding_tried:
        _cuda_binding_tried = True
        with contextlib.suppress(ImportError):
            _cuda_kernel = importlib.import_module("tsjnet_sdk.kernels.torch_binding").provide()
    return _cuda_kernel


def _auto_cuda_kernel(q: Tensor, k: Tensor, v: Tensor, kernel_size: int, dilation: int, rpb: Tensor | None) -> bool:
    """For ``auto``: load the CUDA kernel (once), then ask it (``supports``, if it has one) whether it can
    run this call; it cannot when gradients are needed (forward only)."""
    kernel = _load_cuda_kernel()
    supports = getattr(kernel, "supports", None)
    return kernel is not None and (supports is None or supports(q, k, v, kernel_size, dilation, rpb))


def set_auto_cuda_kernel(enabled: bool | None) -> None:
    """Let ``auto`` use the SDK's CUDA kernel for CUDA tensors (True), forbid it (False), or follow
    ``$TSJNET_NA_KERNEL`` again (None). Off by default until a GPU verification has passed."""
    global _auto_cuda_opt_in
    if enabled is not None and not isinstance(enabled, bool):
        raise TypeError(f"set_auto_cuda_kernel takes True, False or None, got {enabled!r}")
    _auto_cuda_opt_in = enabled


def auto_cuda_kernel_enabled() -> bool:
    """Whether ``auto`` may pick the SDK's CUDA kernel (:func:`set_auto_cuda_kernel`, else ``$TSJNET_NA_KERNEL``)."""
    if _auto_cuda_opt_in is not None:
        return _auto_cuda_opt_in
    raw = os.environ.get(AUTO_KERNEL_ENV, "")
    value = raw.strip().lower()
    if value not in _AUTO_KERNEL_VALUES:
        raise ValueError(
            f"{AUTO_KERNEL_ENV}={raw!r} is not understood: set it to 'cuda' (let `auto` use the SDK's "
            "CUDA NA kernel) or 'reference' / unset it (the default)"
        )
    return _AUTO_KERNEL_VALUES[value]


def describe_gpu_choice(rpb: bool = True) -> tuple[str, str]:
    """(implementation, reason): what ``auto`` would run for a CUDA-tensor NA call (TSJNet: with rpb).

    Does not touch the GPU: whether the kernel image loads on a given device is only known at the first
    call (then ``auto`` warns and falls back).
    """
    if _default_backend != "auto":
        return _default_backend, f"set explicitly (TSJNET_NA_BACKEND / set_na_backend: {_default_backend!r})"
    if auto_cuda_kernel_enabled():
        if _load_cuda_kernel() is not None:
            return "cuda", (
                f"opted in ({AUTO_KERNEL_ENV}=cuda or set_auto_cuda_kernel(True)); falls back when the "
                "kernel cannot run a call (gradients, unsupported shape, image not loadable)"
            )
        fallback = "natten" if natten_available() and not rpb else "reference"
        return (
            fallback,
            "opted in to the CUDA kernel, but it is not registered (cuda-python missing: pip install 'tsjnet-sdk[cuda]')",
        )
    fallback = "natten" if natten_available() and not rpb else "reference"
    why = (
        "the SDK's CUDA kernel is opt-in until a GPU verification (scripts/gpu_verify.py) has passed: set "
        f"{AUTO_KERNEL_ENV}=cuda or pass backend='cuda' to use it"
    )
    if fallback == "reference" and natten_available():
        why += "; natten is installed but has no relative position bias"
    return fallback, why


def set_na_backend(name: str) -> None:
    """Set the process-wide default NA implementation (one of :data:`BACKENDS`)."""
    global _default_backend
    _check_backend_name(name)
    _default_backend = name


def get_na_backend() -> str:
    """The process-wide default NA implementation name."""
    return _default_backend


@contextlib.contextmanager
def na_backend(name: str) -> Iterator[None]:
    """Context manager that sets the default NA implementation inside a ``with`` block."""
    previous = get_na_backend()
    set_na_backend(name)
    try:
        yield
    finally:
        set_na_backend(previous)


@contextlib.contextmanager
def onnx_export_mode(mode: str) -> Iterator[None]:
    """How NA appears in an ONNX export inside this block: ``decomposed`` or ``plugin`` (custom node)."""
    global _onnx_mode
    if mode not in ONNX_MODES:
        raise ValueError(f"unknown NA ONNX mode {mode!r}; choose one of {', '.join(ONNX_MODES)}")
    previous, _onnx_mode = _onnx_mode, mode
    try:
        yield
    finally:
        _onnx_mode = previous


def _plugin_node(
    q: Tensor, k: Tensor, v: Tensor, kernel_size: int, dilation: int, rpb: Tensor | None, scale: float | None
) -> Tensor:
    """The custom ONNX node standing for the whole op (export only; see tsjnet_sdk/na_node.py)."""
    inputs = [q.contiguous(), k.contiguous(), v.contiguous()] + ([rpb.to(q.dtype)] if rpb is not None else [])
    attrs = {
        "kernel_size": int(kernel_size),
        "dilation": int(dilation),
        "scale": float(scale if scale is not None else q.shape[-1] ** -0.5),
    }
    return torch.onnx.ops.symbolic(
        na_node.QUALIFIED_NAME, inputs, attrs, dtype=q.dtype, shape=q.shape, version=na_node.DOMAIN_VERSION
    )


def register_cuda_kernel(fn: Callable[..., Tensor] | None) -> None:
    """Use ``fn(q, k, v, kernel_size, dilation, rpb, scale)`` as the CUDA kernel (an out-of-tree kernel; the
    SDK's own is found without registering, see :func:`_load_cuda_kernel`). None: back to the SDK's own."""
    global _cuda_kernel
    _cuda_kernel = fn


def natten_available() -> bool:
    return importlib.util.find_spec("natten") is not None


def available_backends() -> list[str]:
    """Implementations that can run in this process (``reference`` always can)."""
    names = ["reference"]
    if natten_available():
        names.append("natten")
    if torch.cuda.is_available() and _load_cuda_kernel() is not None:
        names.append("cuda")
    return names


def check_default_backend() -> None:
    """Raise ValueError (the SDK's OptionError) when $TSJNET_NA_BACKEND named no implementation."""
    if _default_backend not in BACKENDS:
        from tsjnet_sdk.runtime.options import bad_option

        raise bad_option(f"${NA_BACKEND_ENV}", f"one of {', '.join(BACKENDS)} (or unset)", _default_backend)


def _check_backend_name(name: str) -> None:
    if name not in BACKENDS:
        raise ValueError(f"unknown neighborhood-attention backend {name!r}; choose one of {', '.join(BACKENDS)}")


def _natten_applicable(height: int, width: int, kernel_size: int, dilation: int, rpb: Tensor | None) -> bool:
    # NATTEN 0.21 has no rpb and rejects maps smaller than kernel_size * dilation.
    return rpb is None and min(height, width) >= kernel_size * dilation


def _is_exporting() -> bool:
    return torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()


def _auto_choice(q: Tensor, k: Tensor, v: Tensor, kernel_size: int, dilation: int, rpb: Tensor | None, exporting: bool) -> str:
    """The one decision of ``auto`` (see the module docstring)."""
    if exporting or not q.is_cuda:
        return "reference"
    # The opt-in is checked first: without it the binding is never even imported.
    if auto_cuda_kernel_enabled() and _auto_cuda_kernel(q, k, v, kernel_size, dilation, rpb):
        return "cuda"
    if natten_available() and _natten_applicable(q.shape[1], q.shape[2], kernel_size, dilation, rpb):
        return "natten"
    return "reference"


def _validate(q: Tensor, k: Tensor, v: Tensor, kernel_size: int, dilation: int, rpb: Tensor | None) -> None:
    if q.dim() != 5:
        raise ValueError(f"q must be [batch, height, width, heads, head_dim], got shape {tuple(q.shape)}")
    if k.shape != q.shape or v.shape != q.shape:
        raise ValueError(f"q, k and v must have the same shape, got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if not (q.dtype == k.dtype == v.dtype) or not q.is_floating_point():
        raise TypeError(f"q, k, v must share one floating dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size!r}")
    if not isinstance(dilation, int) or dilation < 1:
        raise ValueError(f"dilation must be an int >= 1, got {dilation!r}")
    if rpb is not None:
        expected = (q.shape[3], 2 * kernel_size - 1, 2 * kernel_size - 1)
        if tuple(rpb.shape) != expected:
            raise ValueError(f"rpb must have shape [heads, 2k-1, 2k-1] = {list(expected)}, got {list(rpb.shape)}")


def neighborhood_attention_2d(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    kernel_size: int,
    dilation: int = 1,
    rpb: Tensor | None = None,
    scale: float | None = None,
    backend: str | None = None,
) -> Tensor:
    """2-D neighborhood attention with NATTEN semantics (see the module docstring).

    Args:
        q, k, v: [B, H, W, heads, head_dim], one floating dtype (NATTEN's layout).
        kernel_size: odd window size k (TSJNet: 7).
        dilation: dilation d >= 1.
        rpb: optional relative position bias [heads, 2k-1, 2k-1].
        scale: logit scale, default ``head_dim ** -0.5``.
        backend: ``None`` (the process default, normally ``auto``) or one of :data:`BACKENDS`.

    Returns:
        [B, H, W, heads, head_dim] in q's dtype.
    """
    exporting = _is_exporting()
    if not exporting:
        _validate(q, k, v, kernel_size, dilation, rpb)
    elif torch.onnx.is_in_onnx_export():
        if _onnx_mode == "plugin":
            return _plugin_node(q, k, v, kernel_size, dilation, rpb, scale)
        return neighborhood_attention_2d_decomposed(q, k, v, kernel_size, dilation, rpb, scale)
    if backend is None:
        check_default_backend()
    name = backend or _default_backend
    _check_backend_name(name)
    height, width = q.shape[1], q.shape[2]

    if name == "auto":
        name = _auto_choice(q, k, v, kernel_size, dilation, rpb, exporting)

    if name == "reference":
        return neighborhood_attention_2d_reference(q, k, v, kernel_size, dilation, rpb, scale)
    if name == "natten":
        if not natten_available():
            raise RuntimeError("backend 'natten' requested but natten is not installed: pip install 'tsjnet-sdk[natten]'")
        if not _natten_applicable(height, width, kernel_size, dilation, rpb):
            raise ValueError(
                "backend 'natten' cannot run this call: NATTEN 0.21 has no relative position bias and needs "
                f"maps >= kernel_size*dilation ({kernel_size * dilation}), got {height}x{width}"
                f"{' with rpb' if rpb is not None else ''}; use backend='reference' or 'auto'"
            )
        import natten

        return natten.na2d(q, k, v, kernel_size=kernel_size, dilation=dilation, scale=scale)
    # name == "cuda"
    if _load_cuda_kernel() is None:
        raise RuntimeError("backend 'cuda' requested but the CUDA NA kernel is not built/registered (see kernels/)")
    if not q.is_cuda:
        raise ValueError("backend 'cuda' needs CUDA tensors; use backend='reference' for CPU tensors")
    return _cuda_kernel(q, k, v, kernel_size, dilation, rpb, scale)
