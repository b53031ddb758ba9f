"""Checkpoint -> ONNX (``tsjnet export CHECKPOINT --format onnx``).

The graph (fused image only; the training outputs are not exported):

    inputs   ir   [N, 1, H, W] float32 in [0, 1]   infrared, grey
             vis  [N, 1, H, W] float32 in [0, 1]   visible luminance (BT.601 Y of RGB, or the grey image)
    output   fused [N, 1, H, W] float32 in (0, 1)  fused luminance

N, H, W are dynamic by default (any H, W >= 32: the graph reflection-pads to a multiple of 32 and
crops back, exactly like the PyTorch model) or fixed with ``static=(N, H, W)``. Colour is handled
outside the graph (tsjnet_sdk.imaging: fuse Y, keep the visible Cb/Cr), identically for every backend.

Neighborhood attention is exported ``decomposed`` (standard ONNX ops: runs in any runtime) or as the
``plugin`` custom node ``tsjnet::NeighborhoodAttention2D`` (tsjnet_sdk/na_node.py) for TensorRT with
the kernels/ plugin. ``fp16`` converts in PyTorch first (export/precision.py).

Pipeline: torch.export (dynamo) -> ONNX (translation, no onnxscript optimiser: it is slow on these
graphs and onnxslim does the same folding) -> onnxslim -> metadata -> onnx.checker -> parity check
against the PyTorch model in onnxruntime -> atomic write. A failed parity check writes nothing.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tsjnet_sdk._version import __version__
from tsjnet_sdk.artifact_metadata import ArtifactMetadata
from tsjnet_sdk.atomic import atomic_path
from tsjnet_sdk.export.common import (  # noqa: F401 - DEFAULT_OPSET, NA_MODES, SUPPORTED_OPSETS: re-exported
    DEFAULT_OPSET,
    INPUT_NAMES,
    NA_MODES,
    OUTPUT_NAME,
    SUPPORTED_OPSETS,
    ExportError,
    ExportResult,
    Progress,
    _say,
    check_export_options,
    default_output_path,
)
from tsjnet_sdk.export.parity import FP16_PSNR_DB, FP32_PSNR_DB
from tsjnet_sdk.hashing import file_sha256
from tsjnet_sdk.models.checkpoint import CheckpointError, load_checkpoint

INPUT_CONVENTION = (
    "ir: infrared [N,1,H,W] float32 in [0,1]; vis: visible luminance (BT.601 Y) [N,1,H,W] float32 in [0,1]; "
    "fused: [N,1,H,W] float32 in (0,1); H, W >= 32"
)
COLOUR_HANDLING = "luminance only: fuse Y, recombine with the visible Cb/Cr (BT.601 YCbCr) outside the graph"


class FusionGraph(nn.Module):
    """What is exported: (ir, vis) float32 -> fused float32; fp16 models compute in half inside."""

    def __init__(self, model: nn.Module, half: bool = False) -> None:
        super().__init__()
        self.model, self.half = model, half

    def forward(self, ir: Tensor, vis: Tensor) -> Tensor:
        if self.half:
            ir, vis = ir.half(), vis.half()
        return self.model.fuse(ir, vis).float()


def load_model_for_export(checkpoint: str | os.PathLike) -> nn.Module:
    """The checkpoint's model on CPU in eval mode, or ExportError with a one-line reason."""
    path = Path(checkpoint)
    if not path.is_file():
        raise ExportError(f"checkpoint not found: {path}")
    try:
        return load_checkpoint(path)
    except (CheckpointError, FileNotFoundError) as e:
        raise ExportError(str(e)) from None


def _trace_to_onnx(graph: FusionGraph, static: tuple[int, int, int] | None, opset: int, na: str) -> Any:
    """torch.export + translation to an onnx.ModelProto (not yet simplified)."""
    from tsjnet_sdk.ops import onnx_export_mode
    from tsjnet_sdk.ops._na_decomposed import shared_tables

    # Example inputs: batch 2 and H != W so that torch.export does not specialise N to 1 or tie H to W.
    n, h, w = static if static is not None else (2, 64, 96)
    example = (torch.rand(n, 1, h, w), torch.rand(n, 1, h, w))
    dims = None if static is not None else {0: "batch", 2: "height", 3: "width"}
    dynamic_shapes = None if dims is None else {"ir": dims, "vis": dims}
    # shared_tables: one trace, so NA calls on maps of one size share their index tables (dynamic graphs).
    with onnx_export_mode(na), shared_tables(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            graph,
            example,
            None,
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_shapes=dynamic_shapes,
            opset_version=opset,
            dynamo=True,
            optimize=False,
            verbose=False,
        )
    return program.model_proto


# onnxslim folds constant subgraphs into initializers. Above this size it leaves them as computations:
# the decomposed NA builds its per-position tables ([H, W, k*k] indices and biases) at run time from
# O(H k + W k) tables, and folding them would bake megabytes per layer into the file.
FOLD_LIMIT_BYTES = 64 * 1024


# onnxslim's MatMul + Add -> Gemm fusion wraps every channels-last Linear in two Reshapes (3 nodes for 2);
# onnxruntime fuses MatMul + Add itself.
SKIPPED_FUSIONS = ["FusionGemm"]


def _cast_like_to_cast(model: Any) -> Any:
    """Rewrite ``CastLike(x, like)`` as ``Cast(x, to=<like's dtype>)`` where the exporter recorded that dtype.

    torch's exporter writes CastLike for the zero bias of bias-free convolutions and for clamp bounds;
    onnxslim cannot fold a CastLike (its target is a run-time tensor) but folds a Cast of a constant, and
    then the Expand that follows: about 100 nodes fewer on TSJNet, same values.
    """
    from onnx import helper

    graph = model.graph
    dtypes = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.input, *graph.output]}
    for init in graph.initializer:
        dtypes[init.name] = init.data_type
    for i, node in enumerate(graph.node):
        if node.op_type == "CastLike" and node.domain in ("", "ai.onnx") and dtypes.get(node.input[1]):
            cast = helper.make_node("Cast", [node.input[0]], list(node.output), name=node.name, to=dtypes[node.input[1]])
            graph.node[i].CopyFrom(cast)
    return model


def _fold_initializer_transposes(model: Any) -> Any:
    """Replace ``Transpose(initializer)`` by the transposed initializer (the Linear layers' weights).

    onnxslim would fold them too, but not above FOLD_LIMIT_BYTES, and the larger Linear weights are above.
    """
    from onnx import numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    kept = []
    for node in graph.node:
        source = inits.get(node.input[0]) if node.op_type == "Transpose" and node.input else None
        if source is None:
            kept.append(node)
            continue
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
        array = numpy_helper.to_array(source)
        folded = numpy_helper.from_array(array.transpose(perm) if perm else array.T, node.output[0])
        graph.initializer.append(folded)
        uses[source.name] -= 1
        if uses[source.name] == 0:
            graph.initializer.remove(source)
    del graph.node[:]
    graph.node.extend(kept)
    return model


def _drop_identity_slices(model: Any) -> Any:
    """Remove ``Slice`` nodes that keep everything (starts 0, ends "to the end", steps 1).

    torch's exporter writes one for each ``x[:, :, i]`` on a dynamic shape; onnxslim keeps them. Initializers
    left unused are removed.
    """
    from onnx import numpy_helper

    graph = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        for attr in node.attribute if node.op_type == "Constant" else ():
            if attr.name == "value":
                consts[node.output[0]] = numpy_helper.to_array(attr.t)
    outputs = {o.name for o in graph.output}
    renamed: dict[str, str] = {}
    kept = []
    for node in graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
        if node.op_type == "Slice" and node.output[0] not in outputs:
            starts, ends = consts.get(node.input[1]), consts.get(node.input[2])
            steps = consts.get(node.input[4]) if len(node.input) > 4 and node.input[4] else None
            if (
                starts is not None
                and ends is not None
                and (starts == 0).all()
                and (ends >= 2**62).all()
                and (steps is None or (steps == 1).all())
            ):
                renamed[node.output[0]] = node.input[0]
                continue
        kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for node in graph.node for name in node.input} | outputs
    unused = [t for t in graph.initializer if t.name not in used]
    for tensor in unused:
        graph.initializer.remove(tensor)
    return model


def _simplify(model: Any) -> Any:
    import onnxslim

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        model = _fold_initializer_transposes(_cast_like_to_cast(model))
        model = onnxslim.slim(model, size_threshold=FOLD_LIMIT_BYTES, skip_fusion_patterns=SKIPPED_FUSIONS)
        return _drop_identity_slices(model)  # after onnxslim: only then are a dynamic slice's ends constant


def _set_metadata(model: Any, metadata: dict[str, str]) -> None:
    del model.metadata_props[:]
    for key, value in sorted(metadata.items()):
        prop = model.metadata_props.add()
        prop.key, prop.value = f"tsjnet.{key}", str(value)
    model.producer_name, model.producer_version = "tsjnet-sdk", __version__
    model.doc_string = f"TSJNet infrared + visible fusion. {INPUT_CONVENTION}. {COLOUR_HANDLING}."


def export_onnx(
    checkpoint: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    na: str = "decomposed",
    fp16: bool = False,
    static: tuple[int, int, int] | None = None,
    opset: int = DEFAULT_OPSET,
    simplify: bool = True,
    parity: bool = True,
    parity_pair: tuple[str | os.PathLike, str | os.PathLike] | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Export a checkpoint to ONNX; see the module docstring for the graph.

    Args:
        checkpoint: a tsjnet checkpoint (.safetensors).
        output: the .onnx path (default: the current folder, ``<stem>[_fp16][_plugin].onnx``).
        na: ``decomposed`` (standard ops) or ``plugin`` (custom NeighborhoodAttention2D node).
        fp16: half-precision graph with float32 I/O and float32 sensitive ops.
        static: fixed (N, H, W) instead of dynamic shapes.
        opset: ONNX opset (18..23).
        simplify: run onnxslim.
        parity: compare onnxruntime with the PyTorch fp32 model after export; a failure raises
            ExportError and writes nothing. The report is written as ``<output>.parity.json``.
        parity_pair: (ir, vis) image paths for the parity check (default: the built-in sample scene).
        progress: called with one line per step.

    Returns:
        ExportResult (path, metadata, parity report).
    """
    import onnx

    check_export_options(na, opset, static)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    _say(progress, f"loading {checkpoint}")
    model = load_model_for_export(checkpoint)
    cfg = model.config
    out_path = Path(output) if output is not None else default_onnx_path(checkpoint, fp16, na)
    if out_path.suffix.lower() != ".onnx":
        raise ExportError(f"the ONNX output must end in .onnx, got {out_path}")

    from tsjnet_sdk.export.precision import KEPT_FLOAT32, to_fp16

    graph = FusionGraph(to_fp16(model) if fp16 else model, half=fp16).eval()
    shapes = "dynamic N, H, W" if static is None else f"static {static[0]}x1x{static[1]}x{static[2]}"
    _say(
        progress,
        f"tracing {cfg.name} ({shapes}, NA {na}, {'fp16' if fp16 else 'fp32'}, opset {opset}); "
        "dynamic shapes take a few minutes for the full model",
    )
    t = time.perf_counter()
    proto = _trace_to_onnx(graph, static, opset, na)
    timings["trace_and_translate"] = time.perf_counter() - t
    if simplify:
        _say(progress, f"simplifying with onnxslim ({len(proto.graph.node)} nodes)")
        t = time.perf_counter()
        proto = _simplify(proto)
        timings["simplify"] = time.perf_counter() - t

    metadata = ArtifactMetadata(
        sdk_version=__version__,
        config_name=cfg.name,
        config=json.loads(cfg.to_json()),
        input_convention=INPUT_CONVENTION,
        colour=COLOUR_HANDLING,
        na_mode=na,
        precision="fp16" if fp16 else "fp32",
        kept_float32=tuple(KEPT_FLOAT32) if fp16 else (),
        opset=opset,
        shapes="dynamic" if static is None else f"{static[0]}x1x{static[1]}x{static[2]}",
        source_checkpoint_sha256=file_sha256(checkpoint),
    ).to_props()
    _set_metadata(proto, metadata)
    try:
        onnx.checker.check_model(proto, full_check=False)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"the exported graph fails onnx.checker: {str(e).splitlines()[0]}") from None
    _say(progress, f"graph: {len(proto.graph.node)} nodes, opset {opset}")

    result = ExportResult(path=out_path, metadata=metadata, timings_s=timings)
    with atomic_path(out_path) as tmp:
        onnx.save(proto, str(tmp))
        if parity:
            from tsjnet_sdk.export.parity import check_parity

            _say(progress, "parity check: onnxruntime vs the PyTorch fp32 model")
            t = time.perf_counter()
            report = check_parity(model, tmp, na=na, fp16=fp16, static=static, pair=parity_pair)
            timings["parity"] = time.perf_counter() - t
            result.parity = report
            floor = FP16_PSNR_DB if fp16 else FP32_PSNR_DB
            if not report["passed"]:
                raise ExportError(
                    f"parity check failed: PSNR {report['psnr_db']:.1f} dB < {floor:.0f} dB "
                    f"(max abs error {report['max_abs_error']:.2e}) against the PyTorch model; nothing written"
                )
    if result.parity is not None:
        result.parity_path = out_path.with_suffix(".parity.json")
        with atomic_path(result.parity_path) as tmp:
            tmp.write_text(json.dumps({"artefact": out_path.name, **result.parity}, indent=2) + "\n")
    timings["total"] = time.perf_counter() - t0
    _say(progress, f"wrote {out_path} ({out_path.stat().st_size / 1e6:.1f} MB) in {timings['total']:.0f} s")
    return result


def default_onnx_path(checkpoint: str | os.PathLike, fp16: bool, na: str) -> Path:
    """``<stem>[_fp16][_plugin].onnx`` in the current folder (never beside the checkpoint: it may be installed)."""
    return default_output_path(checkpoint, f"{'_fp16' if fp16 else ''}{'_plugin' if na == 'plugin' else ''}", ".onnx")


def export_from_options(
    source: str | os.PathLike, output: str | os.PathLike | None, options: Any, progress: Progress | None = None
) -> ExportResult:
    """The ``onnx`` row of export/formats.py: :func:`export_onnx` with an ExportOptions."""
    return export_onnx(
        source,
        output,
        na=options.na or "decomposed",
        fp16=options.fp16,
        static=(options.batch, *options.static) if options.static else None,
        opset=DEFAULT_OPSET if options.opset is None else options.opset,
        simplify=options.simplify,
        parity=options.parity,
        parity_pair=options.parity_pair,
        progress=progress,
    )
