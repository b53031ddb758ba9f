"""Backend settings, one small typed object per backend. Imports no torch, onnxruntime or TensorRT.

    from tsjnet_sdk import Fuser
    from tsjnet_sdk.runtime import OrtOptions, TorchOptions

    fuser = Fuser("tsjnet-edge.onnx", options=OrtOptions(intra_op_threads=4, optimized_model_cache="~/.cache/tsjnet"))
    fuser = Fuser("tsjnet-edge.safetensors", device="cuda", options=TorchOptions(dtype="fp16"))
    # several at once: each backend takes the one of its type (useful when backend="auto")
    fuser = Fuser(model, options=[OrtOptions(intra_op_threads=2), TorchOptions()])

The defaults are the fastest setting measured to be safe on each device (docs/edge.md, "Runtime options"):
on the CPU, ONNX Runtime with intra-op threads = the cores this process may use (right for a device the
app owns; on a CPU shared with other heavy work, 1 thread measured 1.47x faster), one inter-op thread,
sequential execution, all graph optimisations. GPU-side speed-ups (fp16 through the TensorRT EP, torch
fp16/bf16) are opt-in until verified on a GPU.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tsjnet_sdk.errors import TsjnetError

EXECUTION_MODES = ("sequential", "parallel")
GRAPH_LEVELS = ("disabled", "basic", "extended", "all")
TORCH_DTYPES = ("fp32", "fp16", "bf16")


class OptionError(TsjnetError, ValueError):
    """An option with a wrong type or value. One message style everywhere: ``NAME must be WHAT, got VALUE``."""


def bad_option(name: str, expected: str, value: object) -> OptionError:
    """The one error for an option ``name`` that is not ``expected``."""
    return OptionError(f"{name} must be {expected}, got {value!r}")


def is_whole(value: object) -> bool:
    """A whole number: int or numpy integer, not a bool (True would count as 1; numpy's bool is no Integral)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_whole(name: str, value: object, minimum: int = 0) -> int:
    """``value`` as an int if it is a whole number (:func:`is_whole`) >= ``minimum``, else OptionError."""
    if not is_whole(value) or value < minimum:
        raise bad_option(name, f"a whole number >= {minimum}", value)
    return int(value)


def check_flag(name: str, value: object) -> bool:
    """``value`` if it is True or False, else OptionError (a string "no" would be truthy)."""
    if not isinstance(value, bool):
        raise bad_option(name, "True or False", value)
    return value


DEVICES = "auto, cpu, cuda or cuda:N (N = 0, 1, ...)"


def check_device(device: object) -> str:
    """``device`` if it is ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, else OptionError (checked before any
    backend sees it: torch would raise its own parse error, onnxruntime would quietly run on the CPU)."""
    if isinstance(device, str):
        if device in ("auto", "cpu", "cuda"):
            return device
        head, _, index = device.partition(":")
        if head == "cuda" and index.isdigit() and index.isascii():
            return device
    raise bad_option("device", DEVICES, device)


def usable_cores() -> int:
    """CPU cores this process may run on (affinity / cgroup cpusets), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@dataclass(frozen=True)
class OrtOptions:
    """ONNX Runtime session settings.

    Args:
        intra_op_threads: threads inside one operator; None = the cores this process may use (ORT's own
            default, 0, counts the machine's physical cores, which over-subscribes a container or a
            CPU-pinned process). On a CPU busy with other work, 1 is often faster (docs/edge.md).
        inter_op_threads: threads across independent operators (only used with ``parallel``).
        execution_mode: ``sequential`` (TSJNet's graph is one chain: parallel only adds scheduling) or ``parallel``.
        graph_optimization: ``disabled`` | ``basic`` | ``extended`` | ``all``.
        optimized_model_cache: a folder: the graph ORT optimised is saved there once (keyed by the model
            file's SHA-256, the ORT version, level and providers) and later sessions load it with basic
            passes only, so session creation skips the optimisation. None: optimise at every load.
        denormal_as_zero: flush denormal floats to zero (guards against slow denormal arithmetic on x86;
            no speed-up measured for TSJNet, so off by default: ORT's arithmetic stays exact).
        providers: execution providers, best first (e.g. ``("CUDAExecutionProvider", "CPUExecutionProvider")``);
            None = chosen by the device (TensorRT EP, CUDA EP, then CPU).
        provider_options: per provider name, ORT's provider options as strings
            (e.g. ``{"CUDAExecutionProvider": {"device_id": "1"}}``).
        trt_fp16: TensorRT EP only: let it build fp16 kernels (``trt_fp16_enable``). Off by default.
        trt_engine_cache: TensorRT EP only: a folder where it caches its engines (``trt_engine_cache_path``),
            so the second start skips the engine build.
        memory_pattern: ORT's memory-pattern planning (pre-allocates one block per input shape). Off cuts
            peak RSS of tsjnet-edge at 640x480 from 1,056 to 791 MiB for ~5 % speed (one run,
            benchmarks/results/onnx_artefacts_tsjnet-edge_2026-12-05.md); on by default.
        cpu_arena: ORT's CPU memory arena (keeps freed buffers for reuse). Off with ``memory_pattern`` off:
            684 MiB for ~17 % speed, for boards that share their memory with a camera stack; on by default.
    """

    intra_op_threads: int | None = None
    inter_op_threads: int = 1
    execution_mode: str = "sequential"
    graph_optimization: str = "all"
    optimized_model_cache: str | os.PathLike | None = None
    denormal_as_zero: bool = False
    providers: Sequence[str] | None = None
    provider_options: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    trt_fp16: bool = False
    trt_engine_cache: str | os.PathLike | None = None
    memory_pattern: bool = True
    cpu_arena: bool = True

    backend = "onnxruntime"

    def __post_init__(self) -> None:
        if self.execution_mode not in EXECUTION_MODES:
            raise ValueError(
                f"OrtOptions.execution_mode must be one of {', '.join(EXECUTION_MODES)}, got {self.execution_mode!r}"
            )
        if self.graph_optimization not in GRAPH_LEVELS:
            raise ValueError(
                f"OrtOptions.graph_optimization must be one of {', '.join(GRAPH_LEVELS)}, got {self.graph_optimization!r}"
            )
        for name in ("intra_op_threads", "inter_op_threads"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"OrtOptions.{name} must be a whole number >= 0, got {value!r}")
        if isinstance(self.providers, str):
            raise ValueError("OrtOptions.providers is a sequence of provider names, e.g. ('CPUExecutionProvider',)")
        for name in ("denormal_as_zero", "trt_fp16", "memory_pattern", "cpu_arena"):
            check_flag(f"OrtOptions.{name}", getattr(self, name))

    def threads(self) -> int:
        """The intra-op thread count the session gets (0: ORT decides)."""
        return usable_cores() if self.intra_op_threads is None else self.intra_op_threads

    def cache_dir(self) -> Path | None:
        return None if self.optimized_model_cache is None else Path(self.optimized_model_cache).expanduser()


@dataclass(frozen=True)
class TorchOptions:
    """PyTorch backend settings.

    Args:
        dtype: ``fp32``; ``fp16`` or ``bf16`` run the network in half precision on CUDA (inputs and
            outputs stay float32 [N, 1, H, W] in [0, 1]). Half precision on the CPU is refused (slower
            than fp32 there). Off by default until verified on a GPU.
        threads: CPU threads for PyTorch (``torch.set_num_threads``, which is process-wide, until the
            Fuser is closed); None keeps torch's setting. On a CPU busy with other work, 1 can be several
            times faster.
    """

    dtype: str = "fp32"
    threads: int | None = None

    backend = "torch"

    def __post_init__(self) -> None:
        if self.dtype not in TORCH_DTYPES:
            raise ValueError(f"TorchOptions.dtype must be one of {', '.join(TORCH_DTYPES)}, got {self.dtype!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or isinstance(self.threads, bool) or self.threads < 1):
            raise ValueError(f"TorchOptions.threads must be an integer >= 1 or None, got {self.threads!r}")


@dataclass(frozen=True)
class TensorRTOptions:
    """TensorRT backend settings.

    Args:
        profile_index: which optimisation profile of the engine the execution context uses (engines
            from ``tsjnet export`` have one, index 0).
        plugin_library: the compiled NA plugin (``tsjnet build-plugin``) for engines with plugin NA nodes;
            default ``$TSJNET_TRT_PLUGIN`` or the build's default location (kernels/trt_plugin_lib.py).
    """

    profile_index: int = 0
    plugin_library: str | None = None

    backend = "tensorrt"

    def __post_init__(self) -> None:
        if not isinstance(self.profile_index, int) or self.profile_index < 0:
            raise ValueError(f"TensorRTOptions.profile_index must be a whole number >= 0, got {self.profile_index!r}")


BackendOptions = OrtOptions | TorchOptions | TensorRTOptions
OPTION_TYPES = (OrtOptions, TorchOptions, TensorRTOptions)


def options_for(backend: str, options: BackendOptions | Sequence[BackendOptions] | None) -> BackendOptions | None:
    """The options object meant for ``backend`` out of ``options`` (one object, a sequence, or None).

    Raises ValueError for an object that is not an options type, for two objects of one type, and for
    a single object of another backend's type (e.g. OrtOptions for a checkpoint on torch): a setting
    that would be silently ignored is a bug in the caller.
    """
    if options is None:
        return None
    many = not isinstance(options, OPTION_TYPES)
    if many and (isinstance(options, (str, bytes)) or not isinstance(options, Sequence)):
        raise bad_option("options", "an OrtOptions, TorchOptions or TensorRTOptions, or a list of them", options)
    items = list(options) if many else [options]
    seen: dict[str, BackendOptions] = {}
    for item in items:
        if not isinstance(item, OPTION_TYPES):
            raise ValueError(
                f"options must be OrtOptions, TorchOptions or TensorRTOptions (or a list of them), got {type(item).__name__}"
            )
        if item.backend in seen:
            raise ValueError(f"two options objects for the {item.backend} backend; give one")
        seen[item.backend] = item
    if backend in seen:
        return seen[backend]
    if not many:
        raise ValueError(
            f"{type(options).__name__} is for the {options.backend} backend, but this model runs on {backend}; "
            f"pass {type(options).__name__} only for {options.backend} models (or a list with one options object per backend)"
        )
    return None


def options_from_flags(
    threads: int | None = None,
    ort_threads: int | None = None,
    ort_cache: str | os.PathLike | None = None,
    providers: str | None = None,
    trt_ep_fp16: bool = False,
    trt_ep_cache: str | os.PathLike | None = None,
    dtype: str = "fp32",
) -> list[BackendOptions]:
    """The command line's runtime flags (``tsjnet fuse`` / ``tsjnet demo``) -> one options object per
    backend, for ``Fuser(options=...)``. ``threads`` applies to whichever CPU backend runs (``ort_threads``
    overrides it for ONNX Runtime); ``providers`` is comma-separated, best first."""
    names = tuple(p.strip() for p in providers.split(",") if p.strip()) if providers else None
    options: list[BackendOptions] = [
        OrtOptions(
            intra_op_threads=ort_threads,
            optimized_model_cache=ort_cache,
            providers=names,
            trt_fp16=trt_ep_fp16,
            trt_engine_cache=trt_ep_cache,
        ),
        TorchOptions(dtype=dtype),
    ]
    return options if threads is None else options_with_threads(options, threads)


def options_with_threads(options: BackendOptions | Sequence[BackendOptions] | None, threads: int) -> list[BackendOptions]:
    """``options`` as one object per CPU backend, with ``threads`` set where the caller left threads unset."""
    import dataclasses

    given = {o.backend: o for o in ([] if options is None else [options] if isinstance(options, OPTION_TYPES) else list(options))}
    ort = given.pop("onnxruntime", OrtOptions())
    torch_opts = given.pop("torch", TorchOptions())
    return [
        ort if ort.intra_op_threads is not None else dataclasses.replace(ort, intra_op_threads=threads),
        torch_opts if torch_opts.threads is not None else dataclasses.replace(torch_opts, threads=threads),
        *given.values(),
    ]


#: Help texts of those flags, shared by the commands that take them.
FLAG_HELP = {
    "threads": "CPU threads for the backend (ONNX Runtime intra-op, or PyTorch); default: the cores this process may use.",
    "ort_threads": "ONNX Runtime intra-op threads (default: the cores this process may use).",
    "ort_cache": "Folder for ONNX Runtime's optimised graph (saved once, then loaded without re-optimising).",
    "providers": "ONNX Runtime execution providers, comma-separated, best first (default: by --device).",
    "trt_ep_fp16": "ONNX Runtime's TensorRT EP: allow fp16 kernels (opt-in).",
    "trt_ep_cache": "ONNX Runtime's TensorRT EP: engine cache folder.",
    "dtype": "PyTorch backend precision: fp32 | fp16 | bf16 (fp16/bf16 on CUDA only).",
}
