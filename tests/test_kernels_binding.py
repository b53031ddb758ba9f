"""kernels/torch_binding.py without a GPU: import, registration, the ``auto`` hook, input validation,
stride handling and the launch plan. The launch itself is in tests/test_kernels_gpu.py.

The ops module loads the binding's kernel on first use (one-way); the ``tb`` fixture restores the ops
module's state after each test so that other test files (tests/test_na_op.py expects no kernel) see it.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import torch

import tsjnet_sdk.ops.neighborhood_attention as na_mod
from tsjnet_sdk.kernels import spec
from tsjnet_sdk.ops._na_reference import neighborhood_attention_2d_reference


@pytest.fixture
def tb(monkeypatch):
    """The binding module, with the ops module's registration state restored after the test."""
    monkeypatch.setattr(na_mod, "_cuda_kernel", na_mod._cuda_kernel)
    monkeypatch.setattr(na_mod, "_cuda_binding_tried", na_mod._cuda_binding_tried)
    return importlib.import_module("tsjnet_sdk.kernels.torch_binding")


def qkv(shape=(1, 6, 7, 2, 32), dtype=torch.float32, requires_grad=False):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(shape, generator=g, dtype=dtype, requires_grad=requires_grad) for _ in range(3)]


def test_ops_load_the_kernel_without_touching_the_driver(tb, monkeypatch):
    monkeypatch.setattr(na_mod, "_cuda_kernel", None)
    monkeypatch.setattr(na_mod, "_cuda_binding_tried", False)
    assert tb.provide() is tb.cuda_kernel  # cuda-python is installed in this environment
    assert na_mod._load_cuda_kernel() is tb.cuda_kernel
    # One-way link: the kernels package never imports the ops back.
    source = Path(tb.__file__).read_text()
    assert "from tsjnet_sdk.ops" not in source and "import tsjnet_sdk.ops" not in source
    assert tb._driver_module is None and not tb._contexts  # lazy: nothing initialised by import/registration
    if not torch.cuda.is_available():
        assert "cuda" not in na_mod.available_backends()


def test_missing_cuda_python_is_a_clear_error(tb, monkeypatch):
    monkeypatch.setattr(tb, "_driver_module", None)
    monkeypatch.setitem(sys.modules, "cuda.bindings", None)  # makes `from cuda.bindings import driver` fail
    with pytest.raises(tb.CudaKernelUnavailable, match=r"cuda-python.*tsjnet-sdk\[cuda\]"):
        tb._driver()


@pytest.mark.parametrize(
    "change,error,match",
    [
        (dict(dtype=torch.float64), TypeError, "float32 or float16"),
        (dict(dtype=torch.bfloat16), TypeError, "float32 or float16"),
        (dict(shape=(1, 6, 7, 2, 24)), ValueError, "head_dim in"),
        (dict(kernel_size=15), ValueError, "kernel_size 3..13"),
        (dict(kernel_size=4), ValueError, "kernel_size 3..13"),
        (dict(dilation=0), ValueError, "dilation"),
        (dict(rpb=torch.zeros(2, 5, 5)), ValueError, r"rpb must be .*\[2, 13, 13\]"),
        (dict(requires_grad=True), RuntimeError, "forward-only"),
        (dict(), ValueError, "one CUDA device"),  # valid call, but CPU tensors
    ],
)
def test_validation_errors_are_clear(tb, change, error, match):
    q, k, v = qkv(change.get("shape", (1, 6, 7, 2, 32)), change.get("dtype", torch.float32), change.get("requires_grad", False))
    with pytest.raises(error, match=match):
        tb.na2d_cuda(q, k, v, change.get("kernel_size", 7), change.get("dilation", 1), change.get("rpb"))
    assert tb.supports(q, k, v, change.get("kernel_size", 7), change.get("dilation", 1), change.get("rpb")) is False


def test_grad_check_respects_no_grad(tb):
    q, k, v = qkv(requires_grad=True)
    with torch.no_grad(), pytest.raises(ValueError, match="one CUDA device"):  # past the grad check
        tb.validate(q, k, v, 7, 1, None, None)


def test_auto_hook_asks_the_kernel_and_falls_back(monkeypatch):
    q, k, v = qkv()

    class Fake:
        def __init__(self, answer):
            self.answer, self.calls = answer, []

        def __call__(self, *args):
            raise AssertionError("not expected to run")

        def supports(self, *args):
            self.calls.append(args)
            return self.answer

    for answer in (True, False):
        fake = Fake(answer)
        monkeypatch.setattr(na_mod, "_cuda_kernel", fake)
        assert na_mod._auto_cuda_kernel(q, k, v, 7, 2, None) is answer
        assert fake.calls == [(q, k, v, 7, 2, None)]
    monkeypatch.setattr(na_mod, "_cuda_kernel", lambda *a: None)  # a kernel without `supports`: always used
    assert na_mod._auto_cuda_kernel(q, k, v, 7, 1, None) is True


def test_auto_hook_imports_the_binding_lazily_once(tb, monkeypatch):
    q, k, v = qkv()
    monkeypatch.setattr(na_mod, "_cuda_kernel", None)
    monkeypatch.setattr(na_mod, "_cuda_binding_tried", False)
    monkeypatch.delitem(sys.modules, "tsjnet_sdk.kernels.torch_binding")
    assert na_mod._auto_cuda_kernel(q, k, v, 7, 1, None) is False  # CPU tensors: registered but not usable
    fresh = sys.modules["tsjnet_sdk.kernels.torch_binding"]
    assert na_mod._cuda_kernel is fresh.cuda_kernel
    assert na_mod._cuda_binding_tried is True


def test_cpu_tensors_under_auto_still_use_the_reference():
    q, k, v = qkv()
    out = na_mod.neighborhood_attention_2d(q, k, v, 7, 1)
    torch.testing.assert_close(out, neighborhood_attention_2d_reference(q, k, v, 7, 1), rtol=0, atol=0)


def test_prepare_inputs_keeps_views_of_a_packed_qkv(tb):
    packed = torch.randn(2, 5, 9, 3, 2, 32)
    q, k, v = packed.unbind(3)
    q2, k2, v2, strides = tb.prepare_inputs(q, k, v)
    assert [t.data_ptr() for t in (q2, k2, v2)] == [t.data_ptr() for t in (q, k, v)]  # no copies
    assert strides == (5 * 9 * 3 * 2 * 32, 9 * 3 * 2 * 32, 3 * 2 * 32)


def test_prepare_inputs_copies_when_layouts_differ_or_are_misaligned(tb):
    q, k, v = qkv((2, 5, 9, 2, 32))
    kt = k.transpose(1, 2).contiguous().transpose(1, 2)  # same values, other strides
    q2, k2, v2, strides = tb.prepare_inputs(q, kt, v)
    assert q2.stride() == k2.stride() == v2.stride() and torch.equal(k2, k)
    assert strides == (5 * 9 * 64, 9 * 64, 64)
    flat = torch.randn(1 + 2 * 5 * 9 * 2 * 32)
    odd = flat[1:].view(2, 5, 9, 2, 32)  # contiguous, but 4 bytes past a 16-byte boundary
    assert odd.is_contiguous() and odd.data_ptr() % 16
    q3, _, _, _ = tb.prepare_inputs(odd, odd, odd)
    assert q3.data_ptr() % 16 == 0 and torch.equal(q3, odd)


def test_size_one_dims_do_not_force_a_copy(tb):
    q = torch.randn(1, 1, 8, 2, 32)
    k = torch.randn(1, 1, 8, 2, 32)
    k = k.as_strided(k.shape, (7, 3, 64, 32, 1))  # arbitrary strides on the size-1 dims
    _, k2, _, strides = tb.prepare_inputs(q, k, q)
    assert k2.data_ptr() == k.data_ptr() and strides == (0, 0, 64)


def test_launch_plan_follows_the_abi(tb):
    name, grid, threads, args = tb.launch_plan((2, 30, 45, 2, 32), "f16", 7, 2, (86400, 2880, 64), 0.25, "f32")
    cfg = spec.kernel_config("f16", 7, 32)
    assert name == "na2d_fwd_rpb_f16_k7_d32"
    assert (grid, threads) == (spec.launch_grid(30, 45, 2, 2, 2, cfg), cfg.threads)
    assert [(n, kind) for n, kind, _ in args] == list(spec.ARGS_RPB)
    values = {n: value for n, _, value in args}
    assert values["scale_bits"] == 0x3E800000  # 0.25f
    assert (values["sB"], values["sH"], values["sW"], values["rpb_half"], values["dil"]) == (86400, 2880, 64, 0, 2)
    assert tb.launch_plan((1, 4, 4, 1, 8), "f32", 3, 1, (0, 32, 8), 0.5, None)[0] == "na2d_fwd_f32_k3_d8"


def test_binding_module_reimports_cleanly(tb):
    module = importlib.reload(tb)
    assert module.cuda_kernel is not None


class _FakeDriver:
    """Records the driver calls of torch_binding._function; cuModuleLoadData fails for images in ``bad``."""

    def __init__(self, bad: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple] = []
        self.bad = bad

    def __getattr__(self, name):
        def call(*args):
            self.calls.append((name, *args))
            if name == "cuModuleLoadData":
                return (209 if any(args[0].startswith(b) for b in self.bad) else 0), f"module:{args[0][:5]!r}"
            if name == "cuGetErrorName":
                return 0, b"CUDA_ERROR_NO_BINARY_FOR_GPU"
            return 0, f"{name}-result"

        return call


@pytest.mark.parametrize("cubin_loads", [True, False], ids=["cubin", "cubin_fails_ptx_fallback"])
def test_function_loading_sequence(tb, monkeypatch, tmp_path, cubin_loads):
    (tmp_path / "na2d.cubin").write_bytes(b"CUBIN")
    (tmp_path / "na2d.ptx").write_bytes(b".version 8.5")
    fake = _FakeDriver(bad=() if cubin_loads else (b"CUBIN",))
    monkeypatch.setattr(tb, "_driver_module", fake)
    for cache in ("_contexts", "_modules", "_functions", "_failures"):
        monkeypatch.setattr(tb, cache, {})
    monkeypatch.setattr(tb, "ensure_image", lambda cc, instance: (tmp_path / "na2d.cubin", "cubin"))
    monkeypatch.setattr(torch.cuda, "init", lambda: None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: (8, 9))
    fn = tb._function(0, "f16", 7, 32, True)
    names = [c[0] for c in fake.calls]
    loads = [c[1] for c in fake.calls if c[0] == "cuModuleLoadData"]
    assert names[:3] == ["cuDeviceGet", "cuDevicePrimaryCtxRetain", "cuCtxPushCurrent"] and names[-1] == "cuCtxPopCurrent"
    assert loads == ([b"CUBIN"] if cubin_loads else [b"CUBIN", b".version 8.5\0"])  # PTX handed over NUL-terminated
    module = f"module:{loads[-1][:5]!r}"  # what the fake returned for the image that loaded
    assert ("cuModuleGetFunction", module, b"na2d_fwd_rpb_f16_k7_d32") in fake.calls
    assert fn == "cuModuleGetFunction-result"
    fake.calls.clear()
    assert tb._function(0, "f16", 7, 32, True) == fn and fake.calls == []  # cached


def test_function_failure_is_cached_and_clear(tb, monkeypatch):
    monkeypatch.setattr(tb, "_driver_module", _FakeDriver())
    for cache in ("_contexts", "_modules", "_functions", "_failures"):
        monkeypatch.setattr(tb, cache, {})

    def no_image(cc, instance):
        raise tb.KernelBuildError("no prebuilt NA kernel and nvcc is not available")

    monkeypatch.setattr(tb, "ensure_image", no_image)
    monkeypatch.setattr(torch.cuda, "init", lambda: None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: (8, 7))
    for _ in range(2):
        with pytest.raises(tb.CudaKernelUnavailable, match=r"na2d_fwd_f32_k7_d32 unavailable on cuda:0 \(sm_87\).*nvcc"):
            tb._function(0, "f32", 7, 32, False)
    assert len(tb._failures) == 1


# ------------------------------------------------------------------------------------------------
# The opt-in gate (issue 14, review B1): ``auto`` must not pick the kernel before a GPU verification.
# ------------------------------------------------------------------------------------------------
class _CudaLooking(torch.Tensor):
    """A CPU tensor that claims to live on a GPU: drives ``auto``'s CUDA branch without a GPU."""

    @property
    def is_cuda(self) -> bool:  # type: ignore[override]
        return True


class _RecordingKernel:
    def __init__(self):
        self.calls, self.asked = 0, 0

    def __call__(self, q, *args):
        self.calls += 1
        return torch.full_like(q.as_subclass(torch.Tensor), 7.0)

    def supports(self, *args):
        self.asked += 1
        return True


@pytest.fixture
def gate(monkeypatch):
    """A registered kernel that can run everything, CUDA-looking inputs, and no opt-in set."""
    kernel = _RecordingKernel()
    monkeypatch.setattr(na_mod, "_cuda_kernel", kernel)
    monkeypatch.setattr(na_mod, "_auto_cuda_opt_in", None)
    monkeypatch.setattr(na_mod, "_default_backend", "auto")
    monkeypatch.delenv(na_mod.AUTO_KERNEL_ENV, raising=False)
    monkeypatch.setattr(na_mod, "natten_available", lambda: False)
    q, k, v = (t.as_subclass(_CudaLooking) for t in qkv())
    assert q.is_cuda
    return kernel, (q, k, v)


def test_auto_does_not_pick_the_cuda_kernel_unless_opted_in(gate, monkeypatch):
    kernel, (q, k, v) = gate
    rpb = torch.randn(2, 13, 13)
    out = na_mod.neighborhood_attention_2d(q, k, v, 7, 1, rpb)
    plain = [t.as_subclass(torch.Tensor) for t in (q, k, v)]
    assert torch.equal(out.as_subclass(torch.Tensor), neighborhood_attention_2d_reference(*plain, 7, 1, rpb))
    assert (kernel.calls, kernel.asked) == (0, 0)  # not even asked: the gate comes first
    assert na_mod.describe_gpu_choice()[0] == "reference"
    assert "opt-in" in na_mod.describe_gpu_choice()[1] and "TSJNET_NA_KERNEL=cuda" in na_mod.describe_gpu_choice()[1]

    monkeypatch.setenv(na_mod.AUTO_KERNEL_ENV, "cuda")  # opted in by the environment
    assert torch.equal(na_mod.neighborhood_attention_2d(q, k, v, 7, 1, rpb), torch.full(q.shape, 7.0))
    assert (kernel.calls, kernel.asked) == (1, 1)
    assert na_mod.describe_gpu_choice()[0] == "cuda"

    na_mod.set_auto_cuda_kernel(False)  # the function wins over the variable
    na_mod.neighborhood_attention_2d(q, k, v, 7, 1, rpb)
    assert kernel.calls == 1
    na_mod.set_auto_cuda_kernel(True)
    monkeypatch.delenv(na_mod.AUTO_KERNEL_ENV)
    na_mod.neighborhood_attention_2d(q, k, v, 7, 1, rpb)
    assert kernel.calls == 2


def test_explicit_cuda_backend_bypasses_the_gate(gate):
    kernel, (q, k, v) = gate
    assert not na_mod.auto_cuda_kernel_enabled()
    na_mod.neighborhood_attention_2d(q, k, v, 7, 1, backend="cuda")
    assert kernel.calls == 1


def test_auto_prefers_natten_over_reference_when_not_opted_in(gate, monkeypatch):
    kernel, (q, k, v) = gate
    monkeypatch.setattr(na_mod, "natten_available", lambda: True)
    assert na_mod._auto_choice(q, k, v, 3, 1, None, exporting=False) == "natten"  # applicable: no rpb, map >= 3
    assert na_mod._auto_choice(q, k, v, 7, 1, torch.zeros(2, 13, 13), exporting=False) == "reference"
    assert kernel.asked == 0
    assert na_mod.describe_gpu_choice(rpb=False)[0] == "natten"


def test_bad_opt_in_value_is_a_clear_error(gate, monkeypatch):
    _, (q, k, v) = gate
    monkeypatch.setenv(na_mod.AUTO_KERNEL_ENV, "yes")
    with pytest.raises(ValueError, match=r"TSJNET_NA_KERNEL='yes' .*'cuda'"):
        na_mod.neighborhood_attention_2d(q, k, v, 7, 1)
    with pytest.raises(TypeError, match="True, False or None"):
        na_mod.set_auto_cuda_kernel("cuda")  # type: ignore[arg-type]


def test_doctor_says_which_na_a_gpu_run_uses(monkeypatch):
    from tsjnet_sdk.runtime.doctor import collect_report

    monkeypatch.setattr(na_mod, "_auto_cuda_opt_in", None)
    monkeypatch.setattr(na_mod, "_default_backend", "auto")
    monkeypatch.delenv(na_mod.AUTO_KERNEL_ENV, raising=False)
    line = collect_report()["backends"]["na on a gpu"]
    assert line.startswith("reference (") and "opt-in until a GPU verification" in line
