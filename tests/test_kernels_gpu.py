"""The CUDA NA kernel on a GPU (kernels/torch_binding.py) against the reference.

Skipped where torch.cuda.is_available() is False (the project's CPU machines: these tests have NOT
run there). Where a GPU is present the kernel image comes from the default build folder
(``python -m tsjnet_sdk.kernels.build``) or is compiled on first use when nvcc is installed; with
neither, the tests skip with that reason.
"""

from __future__ import annotations

import importlib

import pytest
import torch

import tsjnet_sdk.ops.neighborhood_attention as na_mod
from tsjnet_sdk.kernels.build import KernelBuildError
from tsjnet_sdk.ops._na_reference import neighborhood_attention_2d_reference

pytestmark = pytest.mark.gpu
TOL = {torch.float32: 1e-4, torch.float16: 2e-2}


@pytest.fixture(scope="module")
def device() -> torch.device:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU (torch.cuda.is_available() is False): GPU correctness of the NA kernel not checked")
    return torch.device("cuda", torch.cuda.current_device())


@pytest.fixture
def tb(device, monkeypatch):
    """The binding, with the ops module's registration state restored after the test."""
    monkeypatch.setattr(na_mod, "_cuda_kernel", na_mod._cuda_kernel)
    monkeypatch.setattr(na_mod, "_cuda_binding_tried", na_mod._cuda_binding_tried)
    return importlib.import_module("tsjnet_sdk.kernels.torch_binding")


def _require_kernel(tb, device: torch.device, dtype: torch.dtype, kernel_size: int, head_dim: int, rpb: bool) -> None:
    """Skip (with the reason) only when no image exists and none can be built; other load errors fail."""
    try:
        tb._function(device.index, tb.TORCH_DTYPES[dtype], kernel_size, head_dim, rpb)
    except tb.CudaKernelUnavailable as exc:
        if isinstance(exc.__cause__, KernelBuildError) and "nvcc" in str(exc):
            pytest.skip(f"no kernel image for this GPU and no nvcc to build one: {exc}")
        raise


def _inputs(shape, dtype, device, kernel_size=None, rpb_dtype=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(shape, generator=g).to(device=device, dtype=dtype) for _ in range(3))
    rpb = None
    if rpb_dtype is not None:
        span = 2 * kernel_size - 1
        rpb = torch.randn(shape[3], span, span, generator=g).to(device=device, dtype=rpb_dtype)
    return q, k, v, rpb


def _reference(q, k, v, kernel_size, dilation, rpb, scale=None):
    cpu = [t.cpu() for t in (q, k, v)]
    return neighborhood_attention_2d_reference(*cpu, kernel_size, dilation, None if rpb is None else rpb.cpu(), scale)


def _err(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.cpu().double() - b.cpu().double()).abs().max().item()


CASES = [
    ((2, 9, 11, 2, 32), 3, 1),
    ((1, 5, 4, 2, 32), 7, 1),  # map smaller than the window
    ((1, 7, 7, 4, 32), 7, 1),  # TSJNet's deepest level at 224 px: map == window
    ((1, 9, 9, 2, 32), 7, 2),  # dilation groups smaller than the window
    ((1, 14, 40, 1, 32), 7, 2),
    ((2, 28, 70, 2, 32), 7, 1),  # several tiles in both directions
    ((1, 20, 18, 1, 32), 13, 1),
    ((1, 6, 35, 1, 32), 13, 2),
    ((1, 11, 13, 3, 8), 3, 2),
    ((1, 10, 12, 2, 16), 5, 1),
    ((2, 8, 33, 1, 64), 7, 1),
    ((1, 5, 7, 2, 64), 13, 2),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["f32", "f16"])
@pytest.mark.parametrize("with_rpb", [False, True], ids=["no_rpb", "rpb"])
@pytest.mark.parametrize("shape,kernel_size,dilation", CASES, ids=[f"{s}-k{k}-d{d}" for s, k, d in CASES])
def test_kernel_matches_reference(tb, device, shape, kernel_size, dilation, dtype, with_rpb):
    _require_kernel(tb, device, dtype, kernel_size, shape[-1], with_rpb)
    q, k, v, rpb = _inputs(shape, dtype, device, kernel_size, dtype if with_rpb else None, seed=sum(shape))
    out = tb.na2d_cuda(q, k, v, kernel_size, dilation, rpb)
    torch.cuda.synchronize()
    assert out.shape == q.shape and out.dtype == dtype and out.device == q.device and out.is_contiguous()
    assert torch.isfinite(out).all()
    err = _err(out, _reference(q, k, v, kernel_size, dilation, rpb))
    assert err <= TOL[dtype], f"max abs err {err:.3g} > {TOL[dtype]}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["f32", "f16"])
def test_tsjnet_sized_call(tb, device, dtype):
    """A 1/4-scale map of a 224 px input (56 x 56, 2 heads of 32) with rpb, batch 2."""
    _require_kernel(tb, device, dtype, 7, 32, True)
    q, k, v, rpb = _inputs((2, 56, 56, 2, 32), dtype, device, 7, dtype, seed=1)
    err = _err(tb.na2d_cuda(q, k, v, 7, 1, rpb), _reference(q, k, v, 7, 1, rpb))
    assert err <= TOL[dtype], f"max abs err {err:.3g}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["f32", "f16"])
def test_views_of_a_packed_qkv(tb, device, dtype):
    _require_kernel(tb, device, dtype, 7, 32, False)
    g = torch.Generator().manual_seed(2)
    packed = torch.randn(2, 10, 37, 3, 2, 32, generator=g).to(device=device, dtype=dtype)
    q, k, v = packed.unbind(3)
    err = _err(tb.na2d_cuda(q, k, v, 7, 1), _reference(q, k, v, 7, 1, None))
    assert err <= TOL[dtype], f"max abs err {err:.3g}"


@pytest.mark.parametrize(
    "dtype,rpb_dtype", [(torch.float16, torch.float32), (torch.float32, torch.float16), (torch.float32, torch.bfloat16)]
)
def test_rpb_in_another_dtype(tb, device, dtype, rpb_dtype):
    _require_kernel(tb, device, dtype, 7, 32, True)
    q, k, v, rpb = _inputs((1, 9, 12, 2, 32), dtype, device, 7, rpb_dtype, seed=3)
    err = _err(tb.na2d_cuda(q, k, v, 7, 1, rpb), _reference(q, k, v, 7, 1, rpb.float()))
    assert err <= TOL[dtype], f"max abs err {err:.3g}"


def test_custom_scale(tb, device):
    _require_kernel(tb, device, torch.float32, 3, 32, False)
    q, k, v, _ = _inputs((1, 8, 9, 2, 32), torch.float32, device, seed=4)
    out = tb.na2d_cuda(q, k, v, 3, 1, None, scale=0.37)
    assert _err(out, _reference(q, k, v, 3, 1, None, scale=0.37)) <= 1e-4
    assert _err(out, _reference(q, k, v, 3, 1, None)) > 1e-2


def test_runs_on_the_current_stream(tb, device):
    """Inputs written on a side stream and the kernel launched there: ordered without explicit syncs."""
    _require_kernel(tb, device, torch.float16, 7, 32, False)
    side = torch.cuda.Stream(device)
    with torch.cuda.stream(side):
        q, k, v, _ = _inputs((2, 40, 40, 2, 32), torch.float16, device, seed=5)
        q = q * 1.5  # produced on the side stream right before the launch
        out = tb.na2d_cuda(q, k, v, 7, 1)
        result = out.cpu()  # device-to-host copies on the side stream as well (ordered after the kernel)
        expected = _reference(q, k, v, 7, 1, None)
    assert _err(result, expected) <= TOL[torch.float16]


def test_auto_uses_the_kernel_without_grad_and_falls_back_with_grad(tb, device, monkeypatch):
    _require_kernel(tb, device, torch.float32, 7, 32, False)
    monkeypatch.setattr(na_mod, "_auto_cuda_opt_in", True)  # auto uses the kernel only when opted in
    q, k, v, _ = _inputs((1, 12, 12, 2, 32), torch.float32, device, seed=6)
    direct = tb.na2d_cuda(q, k, v, 7, 1)
    auto = na_mod.neighborhood_attention_2d(q, k, v, 7, 1)
    assert torch.equal(auto, direct)  # bit-identical: auto chose the kernel
    q.requires_grad_(True)
    with pytest.raises(RuntimeError, match="forward-only"):
        na_mod.neighborhood_attention_2d(q, k, v, 7, 1, backend="cuda")
    out = na_mod.neighborhood_attention_2d(q, k, v, 7, 1)  # auto: needs grad -> not the kernel
    out.sum().backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()
    with torch.no_grad():
        assert torch.equal(na_mod.neighborhood_attention_2d(q, k, v, 7, 1), direct)


def test_empty_batch(tb, device):
    q = torch.zeros(0, 5, 5, 2, 32, device=device)
    out = tb.na2d_cuda(q, q, q, 7, 1)
    assert out.shape == q.shape


def test_second_gpu(tb, device):
    if torch.cuda.device_count() < 2:
        pytest.skip("only one GPU: the per-device module/context path for cuda:1 is not checked")
    other = torch.device("cuda", 1)
    _require_kernel(tb, other, torch.float16, 7, 32, False)
    q, k, v, _ = _inputs((1, 16, 16, 2, 32), torch.float16, other, seed=7)
    out = tb.na2d_cuda(q, k, v, 7, 1)
    assert out.device == other and _err(out, _reference(q, k, v, 7, 1, None)) <= TOL[torch.float16]
