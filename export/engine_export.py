"""Checkpoint or ONNX -> TensorRT engine (``tsjnet export MODEL --format engine``).

From an ONNX file made by ``tsjnet export`` (e.g. the shipped ``tsjnet-edge.onnx``) the build needs only
TensorRT (and onnx for ``--na plugin`` graphs): no torch, so engines are built on the device that runs
them. From a checkpoint, the ONNX is exported first (torch) and its parity checked.

Works with whichever TensorRT is importable (or the one asked for):

* ``tensorrt`` 10.x (servers, Jetson): weakly typed; ``--fp16`` sets the FP16 builder flag on the
  fp32 ONNX. With ``--na plugin`` the NA plugin is registered before parsing: the compiled library
  (``tsjnet build-plugin``; TensorRT >= 10.0, so JetPack 6.1/6.2) when one is given or TensorRT < 10.9,
  else the ahead-of-time Python plugin (kernels/trt_plugin_lib.py decides); the engine header records
  which, and the library's SHA-256.
* ``tensorrt`` >= 11: strongly typed only (no FP16 flag): ``--fp16`` builds from the FP16 ONNX.
* ``tensorrt_rtx`` (RTX GPUs): strongly typed, no plugins (``--na decomposed`` only). It can build
  without a GPU for a chosen compute capability (``compute_capabilities``), which is what CI does.

The engine file is a tsjnet header + the serialized engine (tsjnet_sdk/engine_format.py), written
atomically. A timing cache (``timing_cache=PATH``) is loaded before and saved after each build.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tsjnet_sdk._version import __version__
from tsjnet_sdk.artifact_metadata import ArtifactMetadata
from tsjnet_sdk.atomic import atomic_path, write_bytes_atomic
from tsjnet_sdk.engine_format import write_engine_file
from tsjnet_sdk.export.common import (
    DEFAULT_MAX_HW,
    DEFAULT_MIN_HW,
    DEFAULT_OPSET,
    DEFAULT_OPT_HW,
    INPUT_NAMES,
    OUTPUT_NAME,
    ExportError,
    ExportResult,
    Progress,
    _say,
    check_export_options,
    default_output_path,
    tsjnet_onnx_metadata,
)
from tsjnet_sdk.hashing import file_sha256

# (N, H, W) of the default optimisation profile (the H, W choices are explained in export/common.py).
DEFAULT_MIN, DEFAULT_OPT, DEFAULT_MAX = (1, *DEFAULT_MIN_HW), (1, *DEFAULT_OPT_HW), (1, *DEFAULT_MAX_HW)
# Compute capabilities TensorRT-RTX builds for without a GPU (toolchain.md: sm75 fails, no sm87/sm90).
RTX_CAPABILITIES = ("8.0", "8.6", "8.9", "12.0")
DEFAULT_RTX_CAPABILITY = "8.9"


def import_tensorrt(flavour: str | None = None) -> tuple[Any, str]:
    """(module, flavour name): the runtime's TensorRT lookup, with its failure as an ExportError."""
    from tsjnet_sdk.runtime.backends.base import BackendUnavailable
    from tsjnet_sdk.tensorrt_env import import_tensorrt as find_tensorrt

    try:
        module = find_tensorrt(flavour, purpose="engine export")
    except BackendUnavailable as e:
        raise ExportError(str(e)) from None
    return module, module.__name__


def is_strongly_typed(trt: Any, flavour: str) -> bool:
    """TensorRT-RTX and TensorRT >= 11 only build strongly typed networks (precision from the ONNX)."""
    return flavour == "tensorrt_rtx" or int(trt.__version__.split(".")[0]) >= 11


class _ProgressMonitor:
    """Adapter from TensorRT's IProgressMonitor callbacks to one line per build phase."""

    @staticmethod
    def create(trt: Any, progress: Progress | None) -> Any:
        if progress is None or not hasattr(trt, "IProgressMonitor"):
            return None

        class Monitor(trt.IProgressMonitor):  # type: ignore[misc, name-defined]
            def __init__(self) -> None:
                trt.IProgressMonitor.__init__(self)
                self.depth = 0

            def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
                if self.depth < 2:
                    progress(f"  TensorRT: {phase_name} ({num_steps} steps)")
                self.depth += 1

            def step_complete(self, phase_name: str, step: int) -> bool:
                return True  # never cancel

            def phase_finish(self, phase_name: str) -> None:
                self.depth -= 1

        return Monitor()


def _profile_shapes(min_shape: Sequence[int], opt_shape: Sequence[int], max_shape: Sequence[int]) -> dict[str, list[int]]:
    shapes = {"min": list(min_shape), "opt": list(opt_shape), "max": list(max_shape)}
    for (n, h, w), what in zip(shapes.values(), shapes):
        if n < 1 or min(h, w) < 32:
            raise ExportError(f"--{what} shape needs N >= 1 and H, W >= 32, got {n}x{h}x{w}")
    for axis, label in enumerate(("N", "H", "W")):
        if not shapes["min"][axis] <= shapes["opt"][axis] <= shapes["max"][axis]:
            raise ExportError(
                f"profile needs min <= opt <= max for {label}, got {shapes['min']} / {shapes['opt']} / {shapes['max']}"
            )
    return {k: [v[0], 1, v[1], v[2]] for k, v in shapes.items()}


def build_engine(
    source: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    fp16: bool = False,
    na: str | None = None,
    min_shape: Sequence[int] = DEFAULT_MIN,
    opt_shape: Sequence[int] = DEFAULT_OPT,
    max_shape: Sequence[int] = DEFAULT_MAX,
    workspace_gb: float | None = None,
    flavour: str | None = None,
    compute_capabilities: Sequence[str] | None = None,
    timing_cache: str | os.PathLike | None = None,
    plugin_library: str | os.PathLike | None = None,
    opset: int | None = None,
    parity: bool = True,
    parity_pair: tuple[str | os.PathLike, str | os.PathLike] | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Build a tsjnet engine file from a checkpoint or from an ONNX file made by ``tsjnet export``.

    Args:
        source: a tsjnet checkpoint (exported to ONNX first: needs torch), or a tsjnet ONNX file (no torch;
            its NA mode, precision and provenance come from its metadata).
        output: the engine path (default ``<stem>[_fp16].engine`` in the current folder).
        fp16: FP16 engine (builder flag on TensorRT 10; strongly typed builds need an fp16 ONNX).
        na: ``decomposed`` or ``plugin``; None: decomposed for checkpoints, the ONNX's own mode for ONNX.
        min_shape, opt_shape, max_shape: (N, H, W) of the optimisation profile (H, W >= 32).
        workspace_gb: builder workspace limit (None: TensorRT's default, the whole GPU).
        flavour: ``tensorrt`` or ``tensorrt_rtx`` (default: the first importable).
        compute_capabilities: RTX only, e.g. ("8.6", "8.9"): targets to build for (default: the GPU
            present, or 8.9 on a machine without one).
        timing_cache: file to load/save the builder's timing cache.
        plugin_library: ``--na plugin``: the compiled plugin library to use (default ``$TSJNET_TRT_PLUGIN``;
            without either, TensorRT >= 10.9 uses the Python AOT plugin and 10.0-10.8 the library at
            its default location).
        opset, parity, parity_pair: checkpoints only, passed to the ONNX export (parity runs on the ONNX;
            running the engine itself needs a GPU: ``tsjnet bench``).
        progress: called with one line per step.
    """
    from tsjnet_sdk.runtime.artifacts import CHECKPOINT, ONNX, ModelFileError, detect_kind

    src = Path(source)
    try:
        kind = detect_kind(src)
    except ModelFileError as e:
        raise ExportError(str(e)) from None
    if kind not in (CHECKPOINT, ONNX):
        raise ExportError(f"{src} is already an engine; build engines from a checkpoint or a tsjnet ONNX file")
    onnx_meta = tsjnet_onnx_metadata(src) if kind == ONNX else None
    if onnx_meta is not None:
        if opset is not None or parity_pair is not None:
            raise ExportError("--opset and --parity-pair apply to checkpoints; an ONNX file is built as it is")
        own_na = onnx_meta.get("na_mode", "decomposed")
        if na is not None and na != own_na:
            raise ExportError(
                f"{src} has NA mode {own_na!r}; an engine keeps the ONNX's NA mode: drop --na, or export the checkpoint "
                f"with --na {na} first"
            )
        na = own_na
    na = na or "decomposed"
    opset = DEFAULT_OPSET if opset is None else opset
    check_export_options(na, opset, None)
    profile = _profile_shapes(min_shape, opt_shape, max_shape)
    trt, flavour = import_tensorrt(flavour)
    from tsjnet_sdk.tensorrt_env import NO_PLUGINS, plugins_supported

    if na == "plugin" and not plugins_supported(flavour):
        raise ExportError(NO_PLUGINS)
    plugin = _choose_plugin(trt, na, plugin_library)
    strongly_typed = is_strongly_typed(trt, flavour)
    if onnx_meta is not None and fp16 and strongly_typed and onnx_meta.get("precision") != "fp16":
        raise ExportError(
            f"{flavour} {trt.__version__} builds strongly typed networks, so an fp16 engine needs an fp16 ONNX and {src} "
            f"is {onnx_meta.get('precision', 'fp32')}: tsjnet export CHECKPOINT --fp16 -o model_fp16.onnx, or drop --fp16"
        )
    tag = "_fp16" if fp16 and not src.stem.endswith("_fp16") else ""
    out_path = Path(output) if output is not None else default_output_path(src, tag, ".engine")
    t0 = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="tsjnet-engine-") as tmpdir:
        if onnx_meta is None:
            from tsjnet_sdk.export.onnx_export import export_onnx

            static = tuple(profile["min"][i] for i in (0, 2, 3)) if profile["min"] == profile["max"] else None
            onnx_result = export_onnx(
                src,
                Path(tmpdir) / "model.onnx",
                na=na,
                fp16=fp16 and strongly_typed,
                static=static,
                opset=opset,
                parity=parity,
                parity_pair=parity_pair,
                progress=progress,
            )
        else:
            _say(
                progress,
                f"building from {src} (its metadata: {onnx_meta.get('config_name')}, NA {na}, "
                f"{onnx_meta.get('precision')}; parity of the ONNX: its own report, not re-checked)",
            )
            onnx_result = ExportResult(path=src, metadata=onnx_meta)
        serialized, capabilities, build_s = _build_serialized(
            trt,
            flavour,
            onnx_result.path,
            Path(tmpdir),
            na=na,
            plugin=plugin,
            fp16=fp16,
            strongly_typed=strongly_typed,
            profile=profile,
            workspace_gb=workspace_gb,
            compute_capabilities=compute_capabilities,
            timing_cache=timing_cache,
            progress=progress,
        )
        onnx_sha = file_sha256(onnx_result.path)

    # The ONNX's metadata (config, conventions, precision, hashes) plus what only an engine has.
    metadata = dataclasses.replace(
        ArtifactMetadata.from_props(onnx_result.metadata),
        sdk_version=__version__,
        trt_flavour=flavour,
        trt_version=trt.__version__,
        precision="fp16" if fp16 else "fp32",
        strongly_typed=strongly_typed,
        na_mode=na,
        na_plugin=plugin.header() if plugin is not None else None,
        profile=profile,
        compute_capabilities=capabilities,
        inputs=list(INPUT_NAMES),
        output=OUTPUT_NAME,
        source_onnx_sha256=onnx_sha,
    ).to_header()
    write_engine_file(out_path, metadata, serialized)
    result = ExportResult(path=out_path, metadata={k: str(v) for k, v in metadata.items()}, parity=onnx_result.parity)
    result.timings_s = {**onnx_result.timings_s, "engine_build": build_s, "total": time.perf_counter() - t0}
    if onnx_result.parity is not None:
        result.parity_path = out_path.with_suffix(".parity.json")
        report = {"artefact": out_path.name, "measured_on": "the ONNX graph the engine was built from", **onnx_result.parity}
        with atomic_path(result.parity_path) as tmp:
            tmp.write_text(json.dumps(report, indent=2) + "\n")
    _say(progress, f"wrote {out_path} ({out_path.stat().st_size / 1e6:.1f} MB) in {result.timings_s['total']:.0f} s")
    return result


def _build_serialized(
    trt: Any,
    flavour: str,
    onnx_path: Path,
    tmpdir: Path,
    *,
    na: str,
    plugin: Any,
    fp16: bool,
    strongly_typed: bool,
    profile: dict[str, list[int]],
    workspace_gb: float | None,
    compute_capabilities: Sequence[str] | None,
    timing_cache: str | os.PathLike | None,
    progress: Progress | None,
) -> tuple[bytes, list[str], float]:
    """Parse ``onnx_path`` and build it: (serialized engine, compute capabilities, build seconds)."""
    onnx_for_trt = onnx_path
    if na == "plugin":
        import onnx

        from tsjnet_sdk.kernels.trt_plugin import prepare_onnx_for_tensorrt

        _register_plugin(trt, flavour, plugin)
        # The parser finds plugins by op type + namespace: point the NA nodes at the plugin.
        proto = onnx.load(str(onnx_path))
        prepare_onnx_for_tensorrt(proto, implementation=plugin.implementation)
        onnx_for_trt = tmpdir / "model_trt.onnx"
        with atomic_path(onnx_for_trt) as tmp:
            onnx.save(proto, str(tmp))
    _say(
        progress,
        f"building the {flavour} {trt.__version__} engine ({'fp16' if fp16 else 'fp32'}, profile "
        f"min {profile['min']} opt {profile['opt']} max {profile['max']})",
    )
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if strongly_typed and flavour == "tensorrt":
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_for_trt)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(min(parser.num_errors, 3)))
        raise ExportError(f"TensorRT could not parse the ONNX: {errors}")
    config = builder.create_builder_config()
    if workspace_gb is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if fp16 and not strongly_typed:
        config.set_flag(trt.BuilderFlag.FP16)
    capabilities = _set_compute_capabilities(trt, config, flavour, compute_capabilities)
    opt_profile = builder.create_optimization_profile()
    for name in INPUT_NAMES:
        opt_profile.set_shape(name, profile["min"], profile["opt"], profile["max"])
    config.add_optimization_profile(opt_profile)
    monitor = _ProgressMonitor.create(trt, progress)
    if monitor is not None:
        config.progress_monitor = monitor
    # TensorRT-RTX tunes at run time and its timing cache is a no-op (deprecated in RTX 1.2).
    cache = _load_timing_cache(config, timing_cache) if flavour == "tensorrt" else None
    if timing_cache is not None and flavour != "tensorrt":
        _say(progress, "  note: tensorrt_rtx has no build timing cache (it tunes at run time); --timing-cache ignored")
    t = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError("TensorRT failed to build the engine (see the TensorRT messages above)")
    build_s = time.perf_counter() - t
    if timing_cache is not None and cache is not None:
        write_bytes_atomic(timing_cache, bytes(cache.serialize()))
    return bytes(serialized), capabilities, build_s


def _choose_plugin(trt: Any, na: str, library: str | os.PathLike | None) -> Any:
    """The NA plugin implementation for ``--na plugin`` (None otherwise), as an ExportError when unavailable."""
    if na != "plugin":
        if library is not None:
            raise ExportError("--plugin-lib is for --na plugin engines; drop it, or add --na plugin")
        return None
    from tsjnet_sdk.kernels.trt_plugin import PluginUnavailable
    from tsjnet_sdk.kernels.trt_plugin_lib import choose_plugin

    try:
        return choose_plugin(trt.__version__, library)
    except PluginUnavailable as e:
        raise ExportError(str(e)) from None


def _register_plugin(trt: Any, flavour: str, plugin: Any) -> None:
    from tsjnet_sdk.kernels.trt_plugin import PluginUnavailable, register_na_plugin
    from tsjnet_sdk.kernels.trt_plugin_lib import load_library

    try:
        if plugin.implementation == "library":
            load_library(trt, plugin.library)
        else:
            register_na_plugin(flavour)
    except PluginUnavailable as e:
        raise ExportError(str(e)) from None


def _set_compute_capabilities(trt: Any, config: Any, flavour: str, wanted: Sequence[str] | None) -> list[str]:
    """RTX: the targets (default: the GPU present, else 8.9). Full TensorRT: the GPU it builds on."""
    from tsjnet_sdk.tensorrt_env import gpu_compute_capability

    cc = gpu_compute_capability()
    present = [f"{cc[0]}.{cc[1]}"] if cc else []
    if flavour != "tensorrt_rtx":
        if wanted:
            raise ExportError("--compute-capability is for tensorrt_rtx; TensorRT builds for the GPU it runs on")
        return present
    wanted = wanted or present or [DEFAULT_RTX_CAPABILITY]
    unknown = [c for c in wanted if c not in RTX_CAPABILITIES]
    if unknown:
        raise ExportError(
            f"tensorrt_rtx cannot build for compute capability {', '.join(unknown)}; choose from {', '.join(RTX_CAPABILITIES)}"
        )
    config.num_compute_capabilities = len(wanted)
    for i, cc in enumerate(wanted):
        config.set_compute_capability(getattr(trt.ComputeCapability, "SM" + cc.replace(".", "")), i)
    return list(wanted)


def _load_timing_cache(config: Any, path: str | os.PathLike | None) -> Any:
    blob = Path(path).read_bytes() if path is not None and Path(path).is_file() else b""
    cache = config.create_timing_cache(blob)
    if cache is not None:
        config.set_timing_cache(cache, ignore_mismatch=True)
    return cache


def export_from_options(
    source: str | os.PathLike, output: str | os.PathLike | None, options: Any, progress: Progress | None = None
) -> ExportResult:
    """The ``engine`` row of export/formats.py: :func:`build_engine` with an ExportOptions."""
    return build_engine(
        source,
        output,
        fp16=options.fp16,
        na=options.na,
        min_shape=(1, *options.min_hw),
        opt_shape=(1, *options.opt_hw),
        max_shape=(options.batch, *options.max_hw),
        workspace_gb=options.workspace_gb,
        flavour=options.trt,
        compute_capabilities=options.compute_capabilities,
        timing_cache=options.timing_cache,
        plugin_library=options.plugin_lib,
        opset=options.opset,
        parity=options.parity,
        parity_pair=options.parity_pair,
        progress=progress,
    )
