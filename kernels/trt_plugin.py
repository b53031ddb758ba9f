"""TensorRT plugin ``tsjnet::NeighborhoodAttention2D``: the CUDA NA kernel as an ahead-of-time (AOT)
"quickly deployable" Python plugin (``tensorrt.plugin``, TensorRT >= 10.9).

:func:`register_na_plugin` is the one call the exporter (before building an engine) and the runtime
(before deserialising one) make. It defines, with ``tensorrt.plugin``:
  * ``@trtp.register``: the output is ``q.like()`` (q's shape and dtype);
  * ``@trtp.autotune``: fp32 everywhere, or fp16 q/k/v/out (rpb fp16 or fp32, as tsjnet_sdk/na_node.py allows);
  * ``@trtp.aot_impl``: returns the kernel's entry-point name, its PTX (built by kernels/build.py:
    one instantiation, compute_86, PTX ISA 8.5), the launch grid/block of na2d_kernels.cu as symbolic
    expressions of q's shape, and the int32 scalar arguments. TensorRT embeds the PTX in the engine,
    so the engine runs without Python (trtexec, C++ runtime); attributes are not serialised, so
    everything the kernel needs travels as a kernel argument.
No ``@trtp.impl`` (JIT, Python at run time) is defined: an engine needs nothing from this module.

Optional rpb: a QDP plugin has a fixed input list (the register function's signature), so the rpb
form is a second plugin, ``tsjnet::NeighborhoodAttention2DWithRPB`` (inputs q, k, v, rpb). The ONNX
contract keeps one op type with an optional 4th input; :func:`prepare_onnx_for_tensorrt` renames the
4-input nodes to the second plugin (and adds the parser attributes ``plugin_namespace`` and ``aot``)
before the ONNX parser sees the model.

Not available: under ``tensorrt_rtx`` (TensorRT-RTX has no custom plugins) and TensorRT < 10.9 (no AOT
Python plugins; JetPack 6 ships 10.3): :func:`register_na_plugin` raises :class:`PluginUnavailable`.
There the compiled IPluginV3 library (na2d_trt_plugin.cpp, ``tsjnet build-plugin``) serves instead;
kernels/trt_plugin_lib.py decides which of the two an engine build uses. This module imports without TensorRT, and
:func:`describe_plugin` works without it.

Status: written against the tensorrt.plugin API as documented for 10.9+; it has NOT been run under a
real TensorRT here (not installable on this project's CPU machines). tests/test_kernels_plugin.py runs
the registration code against a stand-in of the decorator API and checks the launch arithmetic.
"""

# No `from __future__ import annotations`: tensorrt.plugin reads the parameter annotations of the
# decorated functions as objects (trtp.TensorDesc, int, float), not strings.

import importlib
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from tsjnet_sdk import na_node
from tsjnet_sdk.errors import TsjnetError
from tsjnet_sdk.kernels import spec

NAMESPACE = na_node.DOMAIN
NAME = na_node.OP_TYPE
RPB_NAME = f"{na_node.OP_TYPE}WithRPB"
MIN_TENSORRT = (10, 9)
#: Attribute types, in na_node.ATTRIBUTES order (ONNX INT, INT, FLOAT).
ATTRIBUTE_TYPES: Dict[str, type] = {"kernel_size": int, "dilation": int, "scale": float}
assert tuple(ATTRIBUTE_TYPES) == na_node.ATTRIBUTES, "trt_plugin.ATTRIBUTE_TYPES out of step with na_node.ATTRIBUTES"

_registered = False


class PluginUnavailable(TsjnetError, RuntimeError):
    """The plugin cannot be registered with this TensorRT (absent, too old, or TensorRT-RTX)."""


def type_combinations(rpb: bool) -> List[Tuple[str, ...]]:
    """Supported TensorRT types per I/O position (q, k, v[, rpb], out), one tuple per combination."""
    if not rpb:
        return [("FP32",) * 4, ("FP16",) * 4]
    return [("FP32",) * 5, ("FP16",) * 5, ("FP16", "FP16", "FP16", "FP32", "FP16")]


def describe_plugin() -> Dict[str, Any]:
    """Name, namespace, attributes, inputs and variants of the plugin (no TensorRT needed)."""
    variants = []
    for rpb, name in ((False, NAME), (True, RPB_NAME)):
        variants.append(
            {
                "name": name,
                "qualified_name": f"{NAMESPACE}::{name}",
                "inputs": list(na_node.INPUTS) + (list(na_node.OPTIONAL_INPUTS) if rpb else []),
                "outputs": list(na_node.OUTPUTS),
                "types": [list(c) for c in type_combinations(rpb)],
                "kernel": f"na2d_fwd_{'rpb_' if rpb else ''}<f32|f16>_k<kernel_size>_d<head_dim>",
            }
        )
    return {
        "namespace": NAMESPACE,
        "name": NAME,
        "qualified_name": f"{NAMESPACE}::{NAME}",
        "onnx_domain_version": na_node.DOMAIN_VERSION,
        "attributes": {name: t.__name__ for name, t in ATTRIBUTE_TYPES.items()},
        "inputs": list(na_node.INPUTS),
        "optional_inputs": list(na_node.OPTIONAL_INPUTS),
        "outputs": list(na_node.OUTPUTS),
        "variants": variants,
        "kernel_sizes": list(spec.KERNEL_SIZES),
        "head_dims": list(spec.HEAD_DIMS),
        "implementation": "tensorrt.plugin AOT (PTX embedded in the engine)",
        "min_tensorrt": ".".join(map(str, MIN_TENSORRT)),
    }


# ---------------------------------------------------------------------------------------------------
# Launch arithmetic, generic over ints (tests) and TensorRT's symbolic shape expressions (aot_impl)
# ---------------------------------------------------------------------------------------------------
def _int_cdiv(a: int, b: int) -> int:
    return -(-a // b)


def aot_launch(
    shape: Sequence[Any],
    dtype: str,
    kernel_size: int,
    head_dim: int,
    dilation: int,
    scale: float,
    rpb_dtype: Optional[str],
    cdiv: Callable[[Any, int], Any] = _int_cdiv,
) -> Tuple[Tuple[Any, Any, Any], int, List[Any]]:
    """(grid, threads per block, int32 scalar arguments in entry-point order) for q's ``shape`` [B, H, W, heads, D].

    ``shape`` entries and ``cdiv`` may be ints or TensorRT symbolic expressions; the same formulas as
    spec.launch_grid (checked equal in the tests). The plugin's inputs are contiguous, so the strides
    follow from the shape.
    """
    B, H, W, heads = shape[0], shape[1], shape[2], shape[3]
    cfg = spec.kernel_config(dtype, kernel_size, head_dim)
    grid = (cdiv(cdiv(W, dilation), spec.WARP) * cdiv(cdiv(H, dilation), cfg.rows_per_block), dilation * dilation, B * heads)
    s_w = heads * head_dim
    s_h = W * s_w
    values = {
        "B": B,
        "H": H,
        "W": W,
        "heads": heads,
        "dil": dilation,
        "scale_bits": spec.float_bits(scale),
        "sB": H * s_h,
        "sH": s_h,
        "sW": s_w,
        "rpb_half": int(rpb_dtype == "f16"),
    }
    scalars = [values[name] for name, kind in spec.entry_args(rpb_dtype is not None) if kind == "i32"]
    return grid, cfg.threads, scalars


# ---------------------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------------------
def _version_tuple(version: str) -> Tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version)[:3])


def _import_tensorrt(flavour: Optional[str]) -> Any:
    from tsjnet_sdk.tensorrt_env import FLAVOURS, NO_PLUGINS, plugins_supported, tensorrt_installed

    if flavour not in (None, *FLAVOURS):
        raise ValueError(f"unknown TensorRT flavour {flavour!r}; expected one of {', '.join(FLAVOURS)}")
    if flavour is not None and not plugins_supported(flavour):
        raise PluginUnavailable(NO_PLUGINS)
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError:
        if "tensorrt_rtx" in tensorrt_installed():
            raise PluginUnavailable(
                "only TensorRT-RTX (tensorrt_rtx) is installed, and it does not support custom plugins: export "
                "with --na decomposed, or install TensorRT >= 10.9 (pip install tensorrt) for the plugin"
            ) from None
        raise PluginUnavailable(
            "TensorRT is not installed: the NeighborhoodAttention2D plugin needs tensorrt >= 10.9 (pip install "
            "tensorrt); otherwise export with --na decomposed"
        ) from None
    version = str(getattr(trt, "__version__", "0"))
    if _version_tuple(version) < MIN_TENSORRT:
        raise PluginUnavailable(
            f"TensorRT {version} is older than 10.9, the first with ahead-of-time Python plugins (tensorrt.plugin "
            "aot_impl); JetPack 6 ships 10.3. Export with --na decomposed for this TensorRT"
        )
    return trt


def register_na_plugin(flavour: Optional[str] = None) -> None:
    """Register both plugin variants with TensorRT's plugin registry (idempotent).

    Args:
        flavour: ``None`` or ``"tensorrt"``; ``"tensorrt_rtx"`` raises (no plugins there).

    Raises:
        PluginUnavailable: TensorRT missing, older than 10.9, or TensorRT-RTX.
    """
    global _registered
    if _registered:
        return
    trt = _import_tensorrt(flavour)
    try:
        trtp = importlib.import_module("tensorrt.plugin")
    except ImportError as exc:
        raise PluginUnavailable(f"TensorRT {trt.__version__} has no tensorrt.plugin module: {exc}") from exc
    _define(trt, trtp)
    _registered = True


def _constant(expr: Any, what: str) -> int:
    """The int value of a TensorRT shape expression that must be known when the engine is built."""
    if isinstance(expr, int):
        return expr
    if getattr(expr, "is_constant", False):
        value = expr.constant_value
        return int(value() if callable(value) else value)
    raise ValueError(f"NeighborhoodAttention2D plugin: {what} must be static (a build-time constant)")


def _trt_dtype(trt: Any, desc: Any, what: str) -> str:
    if desc.dtype == trt.float32:
        return "f32"
    if desc.dtype == trt.float16:
        return "f16"
    raise TypeError(f"NeighborhoodAttention2D plugin: {what} must be FP32 or FP16, got {desc.dtype}")


def _aot(trt: Any, trtp: Any, q: Any, rpb: Any, kernel_size: int, dilation: int, scale: float) -> Tuple[Any, Any, Any, Any]:
    """Shared body of both aot_impl functions: (kernel name, PTX, KernelLaunchParams, SymIntExprs)."""
    from tsjnet_sdk.kernels.build import plugin_ptx

    dtype = _trt_dtype(trt, q, "q")
    rpb_dtype = None if rpb is None else _trt_dtype(trt, rpb, "rpb")
    shape = [q.shape_expr[i] for i in range(5)]
    head_dim = _constant(shape[4], "head_dim (last dim of q)")
    if kernel_size not in spec.KERNEL_SIZES or head_dim not in spec.HEAD_DIMS or dilation < 1:
        raise ValueError(
            f"NeighborhoodAttention2D plugin: kernel_size {kernel_size} / head_dim {head_dim} / dilation "
            f"{dilation} not built (kernel sizes {spec.KERNEL_SIZES}, head dims {spec.HEAD_DIMS})"
        )
    grid, threads, scalars = aot_launch(shape, dtype, kernel_size, head_dim, dilation, scale, rpb_dtype, cdiv=trtp.cdiv)
    launch = trtp.KernelLaunchParams()
    launch.grid_x, launch.grid_y, launch.grid_z = grid
    launch.block_x = threads
    launch.shared_mem = 0  # static shared memory only (<= 48 KiB, no opt-in)
    extra = trtp.SymIntExprs(len(scalars))
    for i, value in enumerate(scalars):
        extra[i] = trtp.SymInt32(value)
    name = spec.entry_name(dtype, kernel_size, head_dim, rpb is not None)
    return name, plugin_ptx((dtype, kernel_size, head_dim)), launch, extra


def _define(trt: Any, trtp: Any) -> None:
    """The decorated functions of both variants (written out: QDP reads each signature)."""
    plain, with_rpb = f"{NAMESPACE}::{NAME}", f"{NAMESPACE}::{RPB_NAME}"

    @trtp.register(plain)
    def na2d_desc(
        q: trtp.TensorDesc, k: trtp.TensorDesc, v: trtp.TensorDesc, kernel_size: int, dilation: int, scale: float
    ) -> trtp.TensorDesc:
        return q.like()

    @trtp.autotune(plain)
    def na2d_autotune(
        q: trtp.TensorDesc,
        k: trtp.TensorDesc,
        v: trtp.TensorDesc,
        kernel_size: int,
        dilation: int,
        scale: float,
        outputs: Tuple[trtp.TensorDesc],
    ) -> List[trtp.AutoTuneCombination]:
        return [trtp.AutoTuneCombination(", ".join(c)) for c in type_combinations(False)]

    @trtp.aot_impl(plain)
    def na2d_aot_impl(
        q: trtp.TensorDesc,
        k: trtp.TensorDesc,
        v: trtp.TensorDesc,
        kernel_size: int,
        dilation: int,
        scale: float,
        outputs: Tuple[trtp.TensorDesc],
        tactic: int,
    ) -> Tuple[Union[str, bytes], Union[str, bytes], trtp.KernelLaunchParams, trtp.SymExprs]:
        return _aot(trt, trtp, q, None, kernel_size, dilation, scale)

    @trtp.register(with_rpb)
    def na2d_rpb_desc(
        q: trtp.TensorDesc,
        k: trtp.TensorDesc,
        v: trtp.TensorDesc,
        rpb: trtp.TensorDesc,
        kernel_size: int,
        dilation: int,
        scale: float,
    ) -> trtp.TensorDesc:
        return q.like()

    @trtp.autotune(with_rpb)
    def na2d_rpb_autotune(
        q: trtp.TensorDesc,
        k: trtp.TensorDesc,
        v: trtp.TensorDesc,
        rpb: trtp.TensorDesc,
        kernel_size: int,
        dilation: int,
        scale: float,
        outputs: Tuple[trtp.TensorDesc],
    ) -> List[trtp.AutoTuneCombination]:
        return [trtp.AutoTuneCombination(", ".join(c)) for c in type_combinations(True)]

    @trtp.aot_impl(with_rpb)
    def na2d_rpb_aot_impl(
        q: trtp.TensorDesc,
        k: trtp.TensorDesc,
        v: trtp.TensorDesc,
        rpb: trtp.TensorDesc,
        kernel_size: int,
        dilation: int,
        scale: float,
        outputs: Tuple[trtp.TensorDesc],
        tactic: int,
    ) -> Tuple[Union[str, bytes], Union[str, bytes], trtp.KernelLaunchParams, trtp.SymExprs]:
        return _aot(trt, trtp, q, rpb, kernel_size, dilation, scale)


# ---------------------------------------------------------------------------------------------------
# ONNX model preparation for TensorRT's parser
# ---------------------------------------------------------------------------------------------------
def prepare_onnx_for_tensorrt(model: Any, implementation: str = "qdp") -> int:
    """Point every ``tsjnet::NeighborhoodAttention2D`` node of an ``onnx.ModelProto`` at the TensorRT plugin.

    In place, for the implementation chosen by kernels/trt_plugin_lib.py:

    * ``"qdp"`` (this module's AOT plugins): a node with a (non-empty) 4th input becomes
      ``NeighborhoodAttention2DWithRPB``; every node gets ``aot = 1`` (pick the AOT implementation);
    * ``"library"`` (the compiled IPluginV3 library, one plugin for both forms): the op type stays
      ``NeighborhoodAttention2D`` (a ``...WithRPB`` node is renamed back); no ``aot`` attribute.

    Both: an empty 4th input (an omitted optional) is dropped, and every such node gets
    ``plugin_namespace = "tsjnet"`` unless it has it, which is how TensorRT's ONNX parser (10.3 included,
    which does not read the node domain) finds a namespaced plugin. Returns the number of nodes seen.
    Needs the ``onnx`` package.
    """
    from onnx import helper

    if implementation not in ("qdp", "library"):
        raise ValueError(f"implementation must be 'qdp' or 'library', got {implementation!r}")
    count = 0
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            graphs.extend(attr.g for attr in node.attribute if attr.HasField("g"))
            if node.domain != NAMESPACE or node.op_type not in (NAME, RPB_NAME):
                continue
            count += 1
            if len(node.input) == 4 and node.input[3] == "":
                del node.input[3]
            if len(node.input) not in (3, 4):
                raise ValueError(f"node {node.name!r}: {node.op_type} takes 3 or 4 inputs, got {len(node.input)}")
            present = {a.name for a in node.attribute}
            if implementation == "library":
                node.op_type = NAME
                for i in reversed(range(len(node.attribute))):
                    if node.attribute[i].name == "aot":
                        del node.attribute[i]
            else:
                node.op_type = RPB_NAME if len(node.input) == 4 else NAME
                if "aot" not in present:
                    node.attribute.append(helper.make_attribute("aot", 1))
            if "plugin_namespace" not in present:
                node.attribute.append(helper.make_attribute("plugin_namespace", NAMESPACE))
    return count
