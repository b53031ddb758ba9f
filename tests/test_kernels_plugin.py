"""kernels/trt_plugin.py: agreement with the ONNX node contract, the guards, and the registration code.

TensorRT is not installable on the project's CPU machines, so registration runs against a stand-in of
the tensorrt.plugin decorator API (records what is registered and calls it the way TensorRT's
documentation says it calls it). What that checks: the signatures QDP reads, the output/type
functions, and that aot_impl returns the kernel name, its PTX and a launch grid / argument list that
agree with the compiled PTX's parameter list and with the binding. What it cannot check: TensorRT
itself (test_register_with_real_tensorrt runs only where tensorrt >= 10.9 is installed).
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import types
from pathlib import Path

import pytest

from tsjnet_sdk import na_node
from tsjnet_sdk.kernels import build, spec, trt_plugin


def test_describe_plugin_agrees_with_the_onnx_contract():
    d = trt_plugin.describe_plugin()
    assert (d["namespace"], d["name"]) == (na_node.DOMAIN, na_node.OP_TYPE)
    assert d["qualified_name"] == na_node.QUALIFIED_NAME
    assert tuple(d["attributes"]) == na_node.ATTRIBUTES
    assert d["attributes"] == {"kernel_size": "int", "dilation": "int", "scale": "float"}
    assert tuple(d["inputs"]) == na_node.INPUTS and tuple(d["optional_inputs"]) == na_node.OPTIONAL_INPUTS
    assert tuple(d["outputs"]) == na_node.OUTPUTS
    plain, with_rpb = d["variants"]
    assert plain["qualified_name"] == na_node.QUALIFIED_NAME
    assert tuple(plain["inputs"]) == na_node.INPUTS
    assert tuple(with_rpb["inputs"]) == na_node.INPUTS + na_node.OPTIONAL_INPUTS
    assert with_rpb["qualified_name"].startswith(na_node.DOMAIN + "::")
    # one type per I/O position in every combination; rpb fp32 or the q dtype (na_node's rule)
    for variant in (plain, with_rpb):
        for combo in variant["types"]:
            assert len(combo) == len(variant["inputs"]) + len(variant["outputs"])
            assert combo[0] == combo[1] == combo[2] == combo[-1]
            if variant is with_rpb:
                assert combo[3] in ("FP32", combo[0])
    assert d["min_tensorrt"] == "10.9"


def test_tensorrt_rtx_is_refused_with_the_reason(monkeypatch):
    monkeypatch.setattr(trt_plugin, "_registered", False)
    with pytest.raises(trt_plugin.PluginUnavailable, match="takes no custom plugins.*--na decomposed"):
        trt_plugin.register_na_plugin("tensorrt_rtx")


def test_old_tensorrt_is_refused_with_the_reason(monkeypatch):
    monkeypatch.setattr(trt_plugin, "_registered", False)
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="10.3.0"))
    with pytest.raises(trt_plugin.PluginUnavailable, match=r"10\.3\.0 is older than 10\.9"):
        trt_plugin.register_na_plugin()


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed")
def test_missing_tensorrt_is_reported(monkeypatch):
    monkeypatch.setattr(trt_plugin, "_registered", False)
    with pytest.raises(trt_plugin.PluginUnavailable, match="tensorrt|TensorRT"):
        trt_plugin.register_na_plugin()


def test_register_with_real_tensorrt():
    if importlib.util.find_spec("tensorrt") is None:
        pytest.skip("tensorrt (>= 10.9) is not installed here (not installable on the project's CPU machines)")
    import tensorrt as trt

    if trt_plugin._version_tuple(trt.__version__) < trt_plugin.MIN_TENSORRT:
        pytest.skip(f"tensorrt {trt.__version__} < 10.9 has no AOT plugins")
    trt_plugin.register_na_plugin()
    trt_plugin.register_na_plugin()  # idempotent
    import tensorrt.plugin as trtp

    assert hasattr(trtp.op, na_node.DOMAIN)
    namespace = getattr(trtp.op, na_node.DOMAIN)
    assert hasattr(namespace, trt_plugin.NAME) and hasattr(namespace, trt_plugin.RPB_NAME)


# ---------------------------------------------------------------------------------------------------
# Registration against a stand-in of tensorrt.plugin
# ---------------------------------------------------------------------------------------------------
class _Desc:
    """Stand-in TensorDesc: dtype and shape_expr (ints here; symbolic expressions in TensorRT)."""

    def __init__(self, dtype: object, shape: tuple[int, ...]) -> None:
        self.dtype, self.shape_expr = dtype, list(shape)

    def like(self) -> _Desc:
        return _Desc(self.dtype, tuple(self.shape_expr))


def _fake_tensorrt(registry: dict) -> tuple[types.ModuleType, types.ModuleType]:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.9.0"
    trt.float32, trt.float16 = "DataType.FLOAT", "DataType.HALF"
    trtp = types.ModuleType("tensorrt.plugin")

    def decorator(kind):
        def factory(name):
            def wrap(fn):
                registry.setdefault(name, {})[kind] = fn
                return fn

            return wrap

        return factory

    trtp.register, trtp.autotune, trtp.aot_impl = decorator("register"), decorator("autotune"), decorator("aot_impl")
    trtp.TensorDesc = _Desc
    trtp.KernelLaunchParams = type("KernelLaunchParams", (), {})
    trtp.SymExprs = list
    trtp.SymIntExprs = lambda n: [None] * n
    trtp.SymInt32 = lambda value: value
    trtp.AutoTuneCombination = lambda types_: types_
    trtp.cdiv = lambda a, b: -(-a // b)
    trt.plugin = trtp
    return trt, trtp


@pytest.fixture
def fake_registry(monkeypatch) -> dict:
    registry: dict = {}
    trt, trtp = _fake_tensorrt(registry)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "tensorrt.plugin", trtp)
    monkeypatch.setattr(trt_plugin, "_registered", False)
    trt_plugin.register_na_plugin()
    return registry


def test_registers_both_variants_with_qdp_signatures(fake_registry):
    plain, with_rpb = f"{na_node.DOMAIN}::{trt_plugin.NAME}", f"{na_node.DOMAIN}::{trt_plugin.RPB_NAME}"
    assert set(fake_registry) == {plain, with_rpb}
    for name, inputs in ((plain, list(na_node.INPUTS)), (with_rpb, list(na_node.INPUTS + na_node.OPTIONAL_INPUTS))):
        fns = fake_registry[name]
        assert set(fns) == {"register", "autotune", "aot_impl"}
        params = inspect.signature(fns["register"]).parameters
        assert list(params) == inputs + list(na_node.ATTRIBUTES)
        # real annotation objects (QDP maps them to attribute types), not strings
        assert [params[a].annotation for a in na_node.ATTRIBUTES] == [int, int, float]
        assert list(inspect.signature(fns["aot_impl"]).parameters) == inputs + list(na_node.ATTRIBUTES) + ["outputs", "tactic"]
        assert list(inspect.signature(fns["autotune"]).parameters) == inputs + list(na_node.ATTRIBUTES) + ["outputs"]
    q = _Desc("DataType.HALF", (1, 14, 14, 2, 32))
    out = fake_registry[plain]["register"](q, q, q, 7, 1, 32**-0.5)
    assert (out.dtype, out.shape_expr) == (q.dtype, q.shape_expr)
    assert fake_registry[plain]["autotune"](q, q, q, 7, 1, 0.1, (out,)) == ["FP32, FP32, FP32, FP32", "FP16, FP16, FP16, FP16"]
    assert "FP16, FP16, FP16, FP32, FP16" in fake_registry[with_rpb]["autotune"](q, q, q, q, 7, 1, 0.1, (out,))


def test_register_is_idempotent(fake_registry):
    before = {name: dict(fns) for name, fns in fake_registry.items()}
    trt_plugin.register_na_plugin()
    assert fake_registry == before


@pytest.fixture(scope="module")
def _plugin_ptx_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if build.find_nvcc() is None:
        pytest.skip("nvcc not found: no plugin PTX can be built for the aot_impl check")
    out = tmp_path_factory.mktemp("plugin_ptx")
    for instance in spec.TSJNET_INSTANCES:
        build.compile_plugin_ptx(out, instance)
    return out


@pytest.fixture
def plugin_ptx_dir(_plugin_ptx_build: Path, monkeypatch) -> Path:
    """TSJNet's plugin PTX, found by aot_impl through TSJNET_KERNELS_DIR."""
    monkeypatch.setenv("TSJNET_KERNELS_DIR", str(_plugin_ptx_build))
    return _plugin_ptx_build


@pytest.mark.parametrize(
    "dtype,with_rpb,rpb_dtype", [("f32", False, None), ("f16", True, "f16"), ("f16", True, "f32"), ("f32", True, "f32")]
)
def test_aot_impl_returns_a_launch_matching_the_ptx(fake_registry, plugin_ptx_dir, monkeypatch, dtype, with_rpb, rpb_dtype):
    import tsjnet_sdk.ops.neighborhood_attention as na_mod

    # importing the binding registers it; restore the ops module's state afterwards (test_na_op expects none)
    monkeypatch.setattr(na_mod, "_cuda_kernel", na_mod._cuda_kernel)
    from tsjnet_sdk.kernels.torch_binding import launch_plan  # the binding's independent argument builder

    trt_dtype = {"f32": "DataType.FLOAT", "f16": "DataType.HALF"}
    shape, kernel_size, dilation, scale = (2, 30, 45, 2, 32), 7, 2, 0.2
    q = _Desc(trt_dtype[dtype], shape)
    inputs = [q, q, q] + ([_Desc(trt_dtype[rpb_dtype], (2, 13, 13))] if with_rpb else [])
    name = f"{na_node.DOMAIN}::{trt_plugin.RPB_NAME if with_rpb else trt_plugin.NAME}"
    kernel, ptx, launch, extra = fake_registry[name]["aot_impl"](*inputs, kernel_size, dilation, scale, (q.like(),), 0)
    assert kernel == spec.entry_name(dtype, kernel_size, 32, with_rpb)
    entries = build.ptx_entries(ptx.decode())
    assert kernel in entries
    # TensorRT passes: input pointers, then the extra int32 args, then output pointers
    assert entries[kernel].params == ("ptr",) * len(inputs) + ("i32",) * len(extra) + ("ptr",)
    assert entries[kernel].maxntid == launch.block_x
    cfg = spec.kernel_config(dtype, kernel_size, 32)
    assert (launch.grid_x, launch.grid_y, launch.grid_z) == spec.launch_grid(30, 45, 2, 2, dilation, cfg)
    assert launch.shared_mem == 0
    contiguous = (30 * 45 * 64, 45 * 64, 64)
    _, grid, threads, args = launch_plan(shape, dtype, kernel_size, dilation, contiguous, scale, rpb_dtype if with_rpb else None)
    assert extra == [value for _, kind, value in args if kind == "i32"]
    assert (grid, threads) == ((launch.grid_x, launch.grid_y, launch.grid_z), launch.block_x)


def test_aot_impl_rejects_unbuilt_configurations(fake_registry):
    q = _Desc("DataType.FLOAT", (1, 8, 8, 2, 24))  # head_dim 24 is not built
    with pytest.raises(ValueError, match="not built"):
        fake_registry[f"{na_node.DOMAIN}::{trt_plugin.NAME}"]["aot_impl"](q, q, q, 7, 1, 0.2, (q,), 0)
    q = _Desc("DataType.INT8", (1, 8, 8, 2, 32))
    with pytest.raises(TypeError, match="FP32 or FP16"):
        fake_registry[f"{na_node.DOMAIN}::{trt_plugin.NAME}"]["aot_impl"](q, q, q, 7, 1, 0.2, (q,), 0)


# ---------------------------------------------------------------------------------------------------
# ONNX: the exporter's custom nodes, prepared for TensorRT's parser
# ---------------------------------------------------------------------------------------------------
def test_prepare_onnx_maps_exported_nodes_to_the_plugin_variants():
    torch = pytest.importorskip("torch")
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from tsjnet_sdk.ops import neighborhood_attention_2d, onnx_export_mode

    class TwoCalls(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rpb = torch.nn.Parameter(torch.zeros(2, 13, 13))

        def forward(self, q):
            a = neighborhood_attention_2d(q, q, q, 7, 1)
            return neighborhood_attention_2d(a, q, q, 7, 2, rpb=self.rpb)

    with onnx_export_mode("plugin"):
        model = torch.onnx.export(TwoCalls().eval(), (torch.randn(1, 8, 8, 2, 32),), dynamo=True, verbose=False).model_proto
    assert trt_plugin.prepare_onnx_for_tensorrt(model) == 2
    nodes = [n for n in model.graph.node if n.domain == na_node.DOMAIN]
    assert [(n.op_type, len(n.input)) for n in nodes] == [(trt_plugin.NAME, 3), (trt_plugin.RPB_NAME, 4)]
    kinds = {int: onnx.AttributeProto.INT, float: onnx.AttributeProto.FLOAT}
    for node in nodes:
        attrs = {a.name: a for a in node.attribute}
        for name, py_type in trt_plugin.ATTRIBUTE_TYPES.items():  # what the plugin's signature declares
            assert attrs[name].type == kinds[py_type], name
        assert onnx.helper.get_attribute_value(attrs["plugin_namespace"]) == na_node.DOMAIN.encode()
        assert onnx.helper.get_attribute_value(attrs["aot"]) == 1


def test_prepare_onnx_drops_an_empty_optional_rpb():
    onnx = pytest.importorskip("onnx")
    from onnx import helper

    node = helper.make_node(
        na_node.OP_TYPE, ["q", "k", "v", ""], ["o"], domain=na_node.DOMAIN, kernel_size=7, dilation=1, scale=0.2
    )
    other = helper.make_node("Relu", ["o"], ["y"])
    graph = helper.make_graph(
        [node, other],
        "g",
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in "qkv"],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph)
    assert trt_plugin.prepare_onnx_for_tensorrt(model) == 1
    assert (model.graph.node[0].op_type, list(model.graph.node[0].input)) == (trt_plugin.NAME, ["q", "k", "v"])
    assert model.graph.node[1].op_type == "Relu" and len(model.graph.node[1].attribute) == 0
