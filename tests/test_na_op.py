"""The neighborhood-attention op: semantics, backends, gradients, ONNX export."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch

from tsjnet_sdk.ops import available_backends, na_backend
from tsjnet_sdk.ops import neighborhood_attention_2d as na
from tsjnet_sdk.ops.neighborhood_attention import get_na_backend

HAS_NATTEN = importlib.util.find_spec("natten") is not None


def naive_na(q, k, v, kernel_size, dilation=1, rpb=None):
    """Explicit per-query loop written from NATTEN's definition (shrinking window for short groups)."""
    b_, h_, w_, heads, dim = q.shape
    out = torch.zeros_like(q, dtype=torch.float64)

    def window(i, length):
        phase, pos = i % dilation, i // dilation
        group = list(range(phase, length, dilation))
        if len(group) <= kernel_size:
            return group
        start = min(max(pos - kernel_size // 2, 0), len(group) - kernel_size)
        return group[start : start + kernel_size]

    for i in range(h_):
        rows = window(i, h_)
        for j in range(w_):
            cols = window(j, w_)
            keys = [(r, c) for r in rows for c in cols]
            kk = torch.stack([k[:, r, c] for r, c in keys], dim=2).double()  # [B, heads, n, D]
            vv = torch.stack([v[:, r, c] for r, c in keys], dim=2).double()
            logits = (q[:, i, j].double().unsqueeze(2) * kk).sum(-1) / math.sqrt(dim)  # [B, heads, n]
            if rpb is not None:
                bias = torch.stack(
                    [rpb[:, (r - i) // dilation + kernel_size - 1, (c - j) // dilation + kernel_size - 1] for r, c in keys],
                    dim=1,
                ).double()
                logits = logits + bias
            out[:, i, j] = (logits.softmax(-1).unsqueeze(-1) * vv).sum(2)
    return out


def rand_qkv(shape, dtype=torch.float32, seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=dtype, requires_grad=requires_grad) for _ in range(3)]


@pytest.mark.parametrize(
    "size,kernel,dilation",
    [((9, 11), 3, 1), ((12, 10), 5, 1), ((14, 13), 5, 2), ((16, 16), 7, 1), ((21, 15), 3, 3), ((15, 20), 7, 2)],
)
def test_reference_matches_naive_loop_with_rpb(size, kernel, dilation):
    q, k, v = rand_qkv((2, *size, 2, 4))
    rpb = torch.randn(2, 2 * kernel - 1, 2 * kernel - 1, generator=torch.Generator().manual_seed(1))
    for bias in (None, rpb):
        got = na(q, k, v, kernel, dilation, bias, backend="reference")
        want = naive_na(q, k, v, kernel, dilation, bias)
        assert (got.double() - want).abs().max().item() < 1e-5


@pytest.mark.parametrize("size,kernel,dilation", [((5, 6), 7, 1), ((3, 9), 7, 1), ((13, 9), 5, 2), ((1, 1), 7, 1)])
def test_maps_smaller_than_window_shrink_the_window(size, kernel, dilation):
    q, k, v = rand_qkv((1, *size, 2, 8))
    rpb = torch.randn(2, 2 * kernel - 1, 2 * kernel - 1)
    got = na(q, k, v, kernel, dilation, rpb, backend="reference")
    assert torch.isfinite(got).all()
    assert (got.double() - naive_na(q, k, v, kernel, dilation, rpb)).abs().max().item() < 1e-5


def test_map_smaller_than_window_is_full_attention():
    # With every dimension below the window, each query sees the whole map: plain softmax attention.
    q, k, v = rand_qkv((2, 4, 5, 3, 8))
    got = na(q, k, v, 7, backend="reference")
    flat = [t.flatten(1, 2).transpose(1, 2) for t in (q, k, v)]  # [B, heads, HW, D]
    want = torch.nn.functional.scaled_dot_product_attention(*flat).transpose(1, 2).unflatten(1, (4, 5))
    assert torch.allclose(got, want, atol=1e-6)


@pytest.mark.skipif(not HAS_NATTEN, reason="natten is not installed (pip install --no-build-isolation natten==0.21.7)")
@pytest.mark.parametrize(
    "size,kernel,dilation",
    [((9, 11), 3, 1), ((14, 13), 5, 2), ((16, 16), 7, 1), ((21, 15), 3, 3), ((15, 20), 7, 2), ((8, 24), 7, 1)],
)
def test_reference_matches_natten(size, kernel, dilation):
    import natten

    q, k, v = rand_qkv((2, *size, 2, 16), seed=3)
    ref = na(q, k, v, kernel, dilation, backend="reference")
    assert (ref - natten.na2d(q, k, v, kernel_size=kernel, dilation=dilation)).abs().max().item() <= 1e-5
    # The dispatcher's natten path is the same call.
    assert (ref - na(q, k, v, kernel, dilation, backend="natten")).abs().max().item() <= 1e-5


def test_gradcheck_float64():
    q, k, v = rand_qkv((1, 5, 6, 2, 3), dtype=torch.float64, requires_grad=True)
    rpb = torch.randn(2, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *t: na(*t[:3], 3, 1, t[3], backend="reference"), (q, k, v, rpb))
    q2, k2, v2 = rand_qkv((1, 7, 5, 1, 2), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *t: na(*t, 3, 2, backend="reference"), (q2, k2, v2))


def test_half_precision_keeps_dtype_and_accuracy():
    q, k, v = rand_qkv((1, 10, 12, 2, 8))
    ref = na(q, k, v, 5, backend="reference")
    half = na(q.half(), k.half(), v.half(), 5, backend="reference")
    assert half.dtype == torch.float16
    assert (half.float() - ref).abs().max().item() < 1e-2


def test_auto_uses_reference_on_cpu_and_backend_context():
    assert "reference" in available_backends()
    q, k, v = rand_qkv((1, 8, 8, 1, 4))
    assert torch.equal(na(q, k, v, 3), na(q, k, v, 3, backend="reference"))
    before = get_na_backend()
    with na_backend("reference"):
        assert get_na_backend() == "reference"
    assert get_na_backend() == before


def test_errors_name_the_problem():
    q, k, v = rand_qkv((1, 8, 8, 2, 4))
    with pytest.raises(ValueError, match="unknown neighborhood-attention backend"):
        na(q, k, v, 3, backend="fast")
    with pytest.raises(ValueError, match="positive odd"):
        na(q, k, v, 4)
    with pytest.raises(ValueError, match="same shape"):
        na(q, k[:, :4], v, 3)
    with pytest.raises(ValueError, match=r"\[heads, 2k-1, 2k-1\]"):
        na(q, k, v, 3, rpb=torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match=r"\[batch, height, width, heads, head_dim\]"):
        na(q[0], k[0], v[0], 3)
    # Without the kernel: "not built"; with it (the ops load it on first use): CPU tensors are refused.
    with pytest.raises((RuntimeError, ValueError), match="CUDA NA kernel is not built|needs CUDA tensors"):
        na(q, k, v, 3, backend="cuda")
    if HAS_NATTEN:
        with pytest.raises(ValueError, match="no relative position bias"):
            na(q, k, v, 3, rpb=torch.zeros(2, 5, 5), backend="natten")


class _NAModule(torch.nn.Module):
    def __init__(self, kernel, dilation):
        super().__init__()
        self.kernel, self.dilation = kernel, dilation
        self.rpb = torch.nn.Parameter(torch.randn(2, 2 * kernel - 1, 2 * kernel - 1))

    def forward(self, q, k, v):
        return na(q, k, v, self.kernel, self.dilation, self.rpb)


@pytest.mark.parametrize("dilation", [1, 2])
def test_onnx_export_dynamic_sizes_matches_torch(tmp_path, dilation):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    module = _NAModule(5, dilation).eval()
    q, k, v = rand_qkv((1, 12, 14, 2, 8))
    path = tmp_path / "na.onnx"
    dims = {0: "batch", 1: "height", 2: "width"}
    torch.onnx.export(
        module,
        (q, k, v),
        str(path),
        input_names=["q", "k", "v"],
        output_names=["out"],
        dynamic_shapes={"q": dims, "k": dims, "v": dims},
        opset_version=18,
        dynamo=True,
        verbose=False,
    )
    onnx.checker.check_model(str(path))
    # Standard ONNX ops only, so any runtime runs it.
    assert all(n.domain in ("", "ai.onnx") for n in onnx.load(str(path)).graph.node)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for size in [(12, 14), (9, 23), (4, 6)]:
        q, k, v = rand_qkv((2, *size, 2, 8), seed=sum(size))
        want = module(q, k, v).detach().numpy()
        got = session.run(None, {"q": q.numpy(), "k": k.numpy(), "v": v.numpy()})[0]
        assert got.shape == want.shape
        assert abs(got - want).max() < 1e-5, size
