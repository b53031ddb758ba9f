"""The lean ``--na decomposed`` ONNX form of NA (tsjnet_sdk/ops/_na_decomposed.py): same values as the
reference, no per-position constants in the file, few nodes per call, tables shared between calls."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest
import torch

from tsjnet_sdk.ops import onnx_export_mode
from tsjnet_sdk.ops._na_decomposed import axis_tables, neighborhood_attention_2d_decomposed, shared_tables
from tsjnet_sdk.ops._na_reference import neighborhood_attention_2d_reference, window_indices
from tsjnet_sdk.ops.neighborhood_attention import neighborhood_attention_2d


def _qkv(shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g).to(dtype) for _ in range(3)]


@pytest.mark.parametrize("kernel", [1, 3, 5, 7])
@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_axis_tables_are_the_reference_windows_with_a_mask_sentinel(kernel, dilation):
    for length in (1, 2, 3, 6, 7, 8, 13, 20):
        key, bias = axis_tables(length, kernel, dilation, torch.device("cpu"))
        ref_key, valid, ref_bias = window_indices(length, kernel, dilation, torch.device("cpu"))
        assert torch.equal(key, ref_key), (length, kernel, dilation)
        assert torch.equal(bias, torch.where(valid, ref_bias, 2 * kernel - 1)), (length, kernel, dilation)


@pytest.mark.parametrize(
    "size,kernel,dilation,rpb",
    [
        ((9, 11), 3, 1, True),
        ((16, 13), 7, 1, True),
        ((15, 20), 7, 2, True),
        ((5, 3), 7, 1, True),
        ((21, 15), 3, 3, False),
        ((1, 9), 5, 1, True),
        ((8, 8), 7, 4, True),
    ],
)
def test_decomposed_matches_reference_eager(size, kernel, dilation, rpb):
    q, k, v = _qkv((2, *size, 2, 8))
    table = torch.randn(2, 2 * kernel - 1, 2 * kernel - 1, generator=torch.Generator().manual_seed(3)) if rpb else None
    want = neighborhood_attention_2d_reference(q, k, v, kernel, dilation, table)
    got = neighborhood_attention_2d_decomposed(q, k, v, kernel, dilation, table)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert (got - want).abs().max() < 1e-5


def test_decomposed_half_inputs_compute_in_float32():
    q, k, v = _qkv((1, 10, 12, 2, 8), dtype=torch.float16)
    table = torch.randn(2, 9, 9).half()
    got = neighborhood_attention_2d_decomposed(q, k, v, 5, 1, table)
    want = neighborhood_attention_2d_reference(q, k, v, 5, 1, table)
    assert got.dtype == torch.float16
    assert (got.float() - want.float()).abs().max() < 2e-3


class _Layers(torch.nn.Module):
    """``n`` NA calls in a row on one map size, each with its own rpb (like a NAT level)."""

    def __init__(self, n: int, kernel: int = 7, heads: int = 2) -> None:
        super().__init__()
        self.kernel = kernel
        g = torch.Generator().manual_seed(5)
        self.rpbs = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.randn(heads, 2 * kernel - 1, 2 * kernel - 1, generator=g)) for _ in range(n)]
        )

    def forward(self, q, k, v):
        for rpb in self.rpbs:
            q = neighborhood_attention_2d(q, k, v, self.kernel, 1, rpb)
        return q


def _export(module, example, dynamic):
    """torch.onnx.export + onnxslim the way export/onnx_export.py does it; returns the ModelProto."""
    from tsjnet_sdk.export.onnx_export import _simplify

    dims = {0: "batch", 1: "height", 2: "width"}
    shapes = {"q": dims, "k": dims, "v": dims} if dynamic else None
    with onnx_export_mode("decomposed"), shared_tables(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,
            example,
            None,
            input_names=["q", "k", "v"],
            dynamic_shapes=shapes,
            opset_version=18,
            dynamo=True,
            optimize=False,
            verbose=False,
        )
    return _simplify(program.model_proto)


def _largest_initializer(model) -> int:
    from onnx import numpy_helper

    sizes = [numpy_helper.to_array(t).size for t in model.graph.initializer]
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.name == "value" and attr.t.dims:
                sizes.append(int(np.prod(attr.t.dims)))
    return max(sizes, default=0)


@pytest.mark.parametrize("dynamic", [False, True])
def test_export_is_lean_shares_tables_and_matches_reference(dynamic):
    pytest.importorskip("onnxslim")
    ort = pytest.importorskip("onnxruntime")
    height, width, heads, kernel = 24, 30, 2, 7
    example = tuple(_qkv((1, height, width, heads, 8), seed=1))
    one, three = _Layers(1).eval(), _Layers(3).eval()
    proto_one = _export(one, example, dynamic)
    proto_three = _export(three, example, dynamic)
    # Per-position tables would be H*W*k*k = 35,280 values per layer; what is baked stays O(H k + W k)
    # (and the rpb tables, 2 * 13 * 13 each, padded to 14 * 14).
    assert _largest_initializer(proto_three) <= max(height, width) * kernel * 2
    # Two more calls on the same map size add only their own ops: the index tables are shared.
    extra = len(proto_three.graph.node) - len(proto_one.graph.node)
    assert extra <= 2 * 16, extra
    session = ort.InferenceSession(proto_three.SerializeToString(), providers=["CPUExecutionProvider"])
    sizes = [(height, width)] + ([(5, 9), (13, 7), (2, 1)] if dynamic else [])
    for size in sizes:
        q, k, v = _qkv((2 if dynamic else 1, *size, heads, 8), seed=size[0])
        x = q
        for rpb in three.rpbs:
            x = neighborhood_attention_2d_reference(x, k, v, kernel, 1, rpb.detach())
        got = session.run(None, {"q": q.numpy(), "k": k.numpy(), "v": v.numpy()})[0]
        assert np.abs(got - x.numpy()).max() < 1e-5, size


def test_exported_model_bakes_no_per_position_table(tiny_checkpoint, tiny_onnx):
    # Everything baked into the file is a weight or an O(H k + W k) table: nothing larger than the
    # model's largest parameter, no CastLike left for onnxslim to trip on.
    import onnx
    from safetensors.numpy import load_file

    model = onnx.load(str(tiny_onnx))
    largest_weight = max(a.size for a in load_file(str(tiny_checkpoint)).values())
    assert _largest_initializer(model) <= largest_weight
    assert not [n for n in model.graph.node if n.op_type == "CastLike"]


def test_initializer_transposes_are_folded():
    import onnx
    from onnx import helper, numpy_helper

    from tsjnet_sdk.export.onnx_export import _fold_initializer_transposes

    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    graph = helper.make_graph(
        [helper.make_node("Transpose", ["w"], ["wt"], perm=[1, 0]), helper.make_node("MatMul", ["x", "wt"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(w, "w")],
    )
    model = _fold_initializer_transposes(helper.make_model(graph))
    assert [n.op_type for n in model.graph.node] == ["MatMul"]
    (init,) = model.graph.initializer
    assert init.name == "wt" and np.array_equal(numpy_helper.to_array(init), w.T)


@pytest.mark.parametrize("dilation", [1, 2])
def test_axis_table_layouts_are_views_of_the_plain_tables(dilation):
    key, bias = axis_tables(11, 5, dilation, torch.device("cpu"))
    for layout, shape in (("rows", (11, 1, 5, 1)), ("cols", (1, 11, 1, 5))):
        k2, b2 = axis_tables(11, 5, dilation, torch.device("cpu"), layout)
        assert k2.shape == shape and torch.equal(k2.reshape(11, 5), key) and torch.equal(b2.reshape(11, 5), bias)


def test_identity_slices_are_dropped_and_real_ones_kept():
    import onnx
    from onnx import helper, numpy_helper

    from tsjnet_sdk.export.onnx_export import _drop_identity_slices

    def const(name, values):
        return numpy_helper.from_array(np.array(values, dtype=np.int64), name)

    nodes = [
        helper.make_node("Slice", ["x", "zero", "end", "axis"], ["a"]),  # everything: dropped
        helper.make_node("Slice", ["a", "zero", "two", "axis"], ["b"]),  # first two: kept
        helper.make_node("Relu", ["b"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])],
        [const("zero", [0]), const("end", [2**63 - 1]), const("two", [2]), const("axis", [0])],
    )
    model = _drop_identity_slices(helper.make_model(graph))
    assert [(n.op_type, n.input[0]) for n in model.graph.node] == [("Slice", "x"), ("Relu", "b")]
    assert {t.name for t in model.graph.initializer} == {"zero", "two", "axis"}  # "end" was only the dropped one's


def test_bench_onnx_rows_report_size_nodes_and_agreement(tiny_checkpoint, tiny_onnx, tmp_path):
    from tsjnet_sdk.benchmarks.onnx_artefact_rows import run_rows

    out = tmp_path / "rows.md"
    rows = run_rows(str(tiny_checkpoint), [f"ort={tiny_onnx}", f"ort-lowmem:lowmem={tiny_onnx}"], 64, 96, 1, out)
    assert [r["name"] for r in rows] == ["torch-eager-fp32", "ort", "ort-lowmem"]
    assert rows[1]["nodes"] > 0 and rows[1]["size_mb"] > 0 and rows[1]["peak_rss_mib"] > 0
    assert rows[1]["psnr_db"] > 60 and rows[2]["psnr_db"] == rows[1]["psnr_db"]
    assert "| ort-lowmem |" in out.read_text()
