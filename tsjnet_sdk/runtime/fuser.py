"""`Fuser`: camera frames in, fused images out, on any backend. Imports no torch.

    from tsjnet_sdk import Fuser
    fuser = Fuser()                              # the shipped tsjnet-edge (ONNX Runtime when installed)
    fused = fuser(ir_frame, rgb_frame)           # uint8 H x W x 3 in -> uint8 H x W x 3 out
    for fused in fuser.stream(camera_pairs): ...  # video: decode, inference and output overlap (threads)
    fuser = Fuser("tsjnet-edge.onnx", rig="rig.json")  # two unaligned cameras: registered first (docs/rig.md)

All pre/post-processing lives here (via tsjnet_sdk.imaging), so backends differ only in how they
execute the network.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Union

import numpy as np

from tsjnet_sdk.errors import TsjnetError
from tsjnet_sdk.imaging import (
    ImageError,
    check_frame_size,
    compose_output,
    from_unit_float,
    pixel_limit,
    prepare_pair,
    read_image,
    upright,
)
from tsjnet_sdk.models.config import MIN_INPUT_SIZE
from tsjnet_sdk.runtime.backends import open_backend
from tsjnet_sdk.runtime.backends.base import Backend
from tsjnet_sdk.runtime.options import BackendOptions, bad_option, check_device, check_flag, check_whole, is_whole

ImageLike = Union[np.ndarray, str, os.PathLike, Any]  # noqa: UP007 - a runtime alias of a typing special form; Any: a PIL image


def load_frame(image: ImageLike, name: str, max_pixels: int | None = None) -> np.ndarray:
    """A path, PIL image or array -> numpy array (H x W or H x W x C), dtype kept.

    Frames above the pixel limit (tsjnet_sdk.imaging.pixel_limit) raise ImageError; files are refused
    from their header, before decoding.
    """
    if isinstance(image, (str, os.PathLike)):
        return read_image(image, max_pixels)
    if isinstance(image, np.ndarray):
        if image.ndim >= 2:
            check_frame_size(image.shape[1], image.shape[0], name, max_pixels)
        return image
    if hasattr(image, "mode") and hasattr(image, "size"):  # PIL image, without importing PIL eagerly
        from tsjnet_sdk.imaging import pil_to_array

        check_frame_size(*image.size, name, max_pixels)
        return pil_to_array(upright(image), name)  # EXIF orientation applied, as for files
    raise ImageError(f"{name} must be a numpy array, a PIL image or a path, got {type(image).__name__}")


class _Frame:
    """One pair prepared for the network, plus what is needed to give the output the visible's format."""

    def __init__(self, ir: ImageLike, visible: ImageLike, bgr: bool, max_pixels: int | None = None, rig: Any = None) -> None:
        ir_arr, vis_arr = load_frame(ir, "ir", max_pixels), load_frame(visible, "visible", max_pixels)
        if rig is not None:  # two cameras: the visible frame onto the IR grid (tsjnet_sdk/rig.py)
            ir_arr, vis_arr = rig.apply(ir_arr, vis_arr)
        self.vis_dtype = vis_arr.dtype
        self.vis_ndim = vis_arr.ndim
        self.colour = vis_arr.ndim == 3 and vis_arr.shape[2] == 3
        self.bgr = bgr and self.colour
        if self.bgr:
            vis_arr = vis_arr[..., ::-1]
        self.ir_y, self.vis_y, self.chroma = prepare_pair(ir_arr, vis_arr)
        if min(self.ir_y.shape) < MIN_INPUT_SIZE:
            raise ImageError(
                f"frame {self.ir_y.shape[1]}x{self.ir_y.shape[0]} is too small: TSJNet needs H, W >= {MIN_INPUT_SIZE}; "
                "upscale the pair"
            )

    def finish(self, fused_y: np.ndarray, gray: bool) -> np.ndarray:
        out = compose_output(fused_y, None if gray else self.chroma)
        if out.ndim == 3 and self.bgr:
            out = out[..., ::-1]
        if out.ndim == 2 and self.vis_ndim == 3 and not self.colour:
            out = out[..., None]  # H x W x 1 in, H x W x 1 out
        if self.vis_dtype in (np.uint8, np.uint16):
            return from_unit_float(out, self.vis_dtype.type)
        return np.ascontiguousarray(out, dtype=np.float32)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` with at least ``overlap`` shared pixels."""
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def blend_weights(tile_h: int, tile_w: int, overlap: int) -> np.ndarray:
    """Feathering window: linear ramps over ``overlap`` pixels at each edge, positive everywhere."""

    def ramp(n: int) -> np.ndarray:
        i = np.arange(n)
        return np.minimum(np.minimum(i + 1, n - i), overlap + 1) / (overlap + 1)

    return np.outer(ramp(tile_h), ramp(tile_w)).astype(np.float32)


class ModelOutputError(TsjnetError, RuntimeError):
    """The network's output cannot be a fusion of its input: NaN/inf (corrupt weights), or the wrong
    shape, dtype or range (a model file that is not a TSJNet fusion model)."""


def _check_tile(tile: object) -> tuple[int, int] | None:
    """None, or ``tile`` as (H, W) when it is a whole number or a pair of them >= 32; else OptionError."""
    if tile is None:
        return None
    pair = (tile, tile) if is_whole(tile) else tile
    if isinstance(pair, (tuple, list)) and len(pair) == 2 and all(is_whole(v) and v >= MIN_INPUT_SIZE for v in pair):
        return int(pair[0]), int(pair[1])
    raise bad_option("tile", f"None, a whole number >= {MIN_INPUT_SIZE} or a pair (H, W) of them", tile)


# A model's output may leave [0, 1] by rounding (fp16 graphs); anything further is not a fusion.
OUTPUT_RANGE_SLACK = 1e-2


def check_output(out: Any, ir: np.ndarray, model: object) -> np.ndarray:
    """The backend's output as float32, or ModelOutputError: it must be a float [N, 1, H, W] array of the
    input's shape, finite, within [0, 1] (+- OUTPUT_RANGE_SLACK)."""
    where = model or "the model"
    if not isinstance(out, np.ndarray) or not np.issubdtype(out.dtype, np.floating):
        kind = getattr(out, "dtype", type(out).__name__)
        raise ModelOutputError(f"the network returned {kind}, not floats in [0, 1]: {where} is not a TSJNet fusion model")
    if out.shape != ir.shape:
        raise ModelOutputError(
            f"the network returned shape {list(out.shape)} for an input of shape {list(ir.shape)}: {where} is not a "
            "TSJNet fusion model (its output must have the input's shape [N, 1, H, W])"
        )
    # NaN/inf would silently become black or random pixels after clipping; it only comes from corrupt
    # weights (inputs are checked finite and in [0, 1]), so name the model file.
    if not np.isfinite(out).all():
        raise ModelOutputError(
            f"the network returned NaN/inf for a valid input: the weights of {where} are "
            "corrupt (NaN/inf or bit-flipped); re-export or re-download the model file"
        )
    lo, hi = float(out.min()), float(out.max())
    if lo < -OUTPUT_RANGE_SLACK or hi > 1 + OUTPUT_RANGE_SLACK:
        raise ModelOutputError(
            f"the network returned values in [{lo:.4g}, {hi:.4g}], outside [0, 1]: {where} is not a TSJNet fusion "
            "model (or its output is scaled differently)"
        )
    return out.astype(np.float32, copy=False)


class Fuser:
    """Fuses infrared + visible frames with a TSJNet model file.

    Args:
        model: None (the default shipped model, ``tsjnet-edge``), a shipped model's name, a checkpoint
            (.safetensors), an ONNX file from `tsjnet export`, a tsjnet engine, an
            in-memory TSJNet module, or a ready backend object (a ``tsjnet_sdk.runtime.Backend``, e.g.
            from ``open_backend`` or your own subclass wrapping a session; like Polygraphy's runners
            built from a loader): the Fuser then adds only pre/post-processing and tiling.
        backend: ``auto`` (the fastest installed backend that fits the artefact), ``torch``,
            ``onnxruntime`` or ``tensorrt``.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        tile: None (whole frames), or a tile size (int or (H, W), >= 32) for frames too large for memory;
            tiles overlap by ``tile_overlap`` pixels and are blended with feathered weights.
        bgr: visible colour frames are BGR (OpenCV) instead of RGB; outputs follow the same order.
        gray: always return the fused luminance only.
        options: backend settings: ``OrtOptions`` (threads, execution mode, graph optimisation and its
            cache, providers and provider options), ``TorchOptions`` (dtype) or ``TensorRTOptions``
            (profile), or a list with one per backend (tsjnet_sdk.runtime.options). None: the defaults,
            which are the fastest measured safe settings (docs/edge.md).
        max_pixels: the largest frame (W x H pixels) accepted; None: tsjnet_sdk.imaging.pixel_limit()
            (MAX_PIXELS, 67 Mpx, or $TSJNET_MAX_PIXELS). Image files are refused from their header.
        allow_foreign_model: run an ONNX file or engine without tsjnet metadata (a graph of your own with
            float32 inputs ``ir``, ``vis`` and output ``fused``, [N, 1, H, W] in [0, 1]). Off: such files
            are refused, since nothing proves they are a fusion model.

    Every option is checked here, before the model loads (``OptionError``, a ValueError, naming the
    option, what it takes and what it got). Every network output is checked against its input: same
    shape [N, 1, H, W], float, finite, within [0, 1] (``ModelOutputError`` otherwise).

    Processes: see docs/reliability.md ("Processes"). A Fuser may be used in a child made by
    ``os.fork`` on the onnxruntime backend and on the torch backend on the CPU (the child runs torch
    with one thread: its thread pool does not survive a fork); CUDA and TensorRT work cannot cross
    a fork and raise a clear error in the child. With ``spawn``, create the Fuser in each worker.
        rig: a two-camera rig (``tsjnet_sdk.rig.Rig`` or the path of a rig file from ``tsjnet calibrate``):
            each visible frame is first mapped onto the IR frame's grid (undistorted, warped by the rig's
            homography, cropped/scaled as it says), so unaligned cameras of different resolutions fuse.
            The output then has the rig's output size. Needs the ``[video]`` extra (OpenCV).

    Threads: one Fuser may be called from several threads at once (docs/reliability.md). Backends
    whose execution is thread-safe (onnxruntime sessions, torch inference) run calls concurrently;
    the others (TensorRT execution contexts) are serialized by a per-Fuser lock. Results equal those
    of the same calls made one by one.

    Memory: whole frames need the network's activations for the full frame. With ``tile``, the peak
    is bounded by the frame's working copies (< 100 bytes a pixel: inputs, chroma, accumulators,
    colour conversion, output) plus one tile batch's activations, whatever the frame size.

    Inputs: IR as H x W (or H x W x 1/3 with grey content), uint8 / uint16 / float in [0, 1]; visible
    as H x W x 3 colour or H x W grey; numpy arrays, PIL images or paths; the same H x W (>= 32).
    Output: the visible input's format and dtype (colour: the visible chroma with the fused luminance,
    BT.601 YCbCr), same size.
    """

    def __init__(
        self,
        model: str | os.PathLike | Any = None,
        backend: str = "auto",
        device: str = "auto",
        tile: int | tuple[int, int] | None = None,
        tile_overlap: int = 32,
        bgr: bool = False,
        gray: bool = False,
        options: BackendOptions | Sequence[BackendOptions] | None = None,
        max_pixels: int | None = None,
        allow_foreign_model: bool = False,
        rig: Any = None,
    ) -> None:
        # Every option is checked here, before the model loads, with one message style (OptionError).
        check_device(device)
        tile = _check_tile(tile)
        check_whole("tile_overlap", tile_overlap, 0)
        check_flag("bgr", bgr)
        check_flag("gray", gray)
        check_flag("allow_foreign_model", allow_foreign_model)
        if max_pixels is not None:
            check_whole("max_pixels", max_pixels, 1)
        pixel_limit(max_pixels)  # also checks $TSJNET_MAX_PIXELS now rather than at the first frame
        from tsjnet_sdk.rig import as_rig

        self.rig = as_rig(rig)
        if isinstance(model, Backend):
            if backend != "auto" or device != "auto" or options is not None:
                raise ValueError(
                    "a ready backend object is already open: backend=, device= and options= do not apply to it; "
                    "set them where the backend is built (open_backend(path, backend, device, options))"
                )
            self._runner = model
        else:
            self._runner = open_backend(model, backend, device, options, allow_foreign_model=allow_foreign_model)
        # Serialize backend calls only for backends that are not safe to call from several threads.
        self._lock = None if getattr(self._runner, "thread_safe", False) else threading.Lock()
        self.max_pixels = max_pixels
        static = self._runner.static_shape
        if static is not None:
            # A fixed-shape artefact runs any frame size through tiles of exactly its shape.
            if tile is not None and tuple(tile) != tuple(static[1:]):
                raise ValueError(
                    f"this model file has a fixed input shape {static[1]}x{static[2]} (H x W), so tiles must be that "
                    f"size, not {tile[0]}x{tile[1]}: omit tile= (or export with dynamic shapes)"
                )
            tile = static[1:]
        if tile is not None and tile_overlap >= min(tile):
            raise bad_option("tile_overlap", f"smaller than the tile {tile[0]}x{tile[1]}", tile_overlap)
        self.tile, self.tile_overlap, self.bgr, self.gray = tile, tile_overlap, bgr, gray

    @property
    def backend(self) -> str:
        """The backend in use: torch, onnxruntime or tensorrt."""
        return self._runner.name

    @property
    def device(self) -> str:
        return self._runner.device

    def describe(self) -> dict[str, Any]:
        return {
            **self._runner.describe(),
            "tile": self.tile,
            "rig": f"{self.rig.visible_size[0]}x{self.rig.visible_size[1]} -> {self.rig.output_size[0]}x{self.rig.output_size[1]}"
            if self.rig is not None
            else None,
        }

    def __repr__(self) -> str:
        facts = ", ".join(f"{k}={v}" for k, v in self.describe().items() if v is not None)
        return f"Fuser({facts})"

    # -- public API ---------------------------------------------------------------------------------

    def fuse(self, ir: ImageLike, visible: ImageLike, bgr: bool | None = None) -> np.ndarray:
        """Fuse one pair; see the class docstring for formats."""
        return self.fuse_batch([(ir, visible)], bgr=bgr)[0]

    __call__ = fuse

    def fuse_batch(self, pairs: Sequence[tuple[ImageLike, ImageLike]], bgr: bool | None = None) -> list[np.ndarray]:
        """Fuse several pairs; pairs of one size run as one batch [N, 1, H, W]."""
        frames = [self._prepare(ir, vis, bgr) for ir, vis in pairs]
        fused: list[np.ndarray | None] = [None] * len(frames)
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, frame in enumerate(frames):
            by_shape.setdefault(frame.ir_y.shape, []).append(i)
        for indices in by_shape.values():
            ir = np.stack([frames[i].ir_y for i in indices])[:, None]
            vis = np.stack([frames[i].vis_y for i in indices])[:, None]
            out = self._run(ir, vis)
            for j, i in enumerate(indices):
                fused[i] = out[j, 0]
        return [frame.finish(f, self.gray) for frame, f in zip(frames, fused)]

    def stream(
        self,
        pairs: Iterable[tuple[ImageLike, ImageLike]],
        bgr: bool | None = None,
        *,
        batch: int | None = None,
        queue_size: int = 4,
        threaded: bool = True,
    ) -> Iterator[np.ndarray]:
        """Fuse a stream of pairs (video, cameras) lazily; yields the fused frames in input order.

        Decoding/reading the pairs and preparing them, the network, and composing the output overlap in
        three threads with bounded queues (``queue_size`` items each: memory stays flat, a slow consumer
        stalls the source); see tsjnet_sdk/runtime/stream.py. An error of any frame is raised here after
        the frames before it; breaking out of the loop, an exception or Ctrl-C stops and joins the
        threads. ``batch``: up to this many waiting frames of one size run as one network call (None:
        4 on a GPU, 1 on the CPU, where batching does not pay). ``threaded=False``: one frame at a time
        in the caller's thread (no threads at all).
        """
        flip = self.bgr if bgr is None else bgr
        if not threaded:
            for ir, visible in pairs:
                yield self.fuse(ir, visible, bgr=flip)
            return
        from tsjnet_sdk.runtime.stream import Pipeline

        def infer(frames: list[_Frame]) -> list[np.ndarray]:
            ir = np.stack([f.ir_y for f in frames])[:, None]
            vis = np.stack([f.vis_y for f in frames])[:, None]
            return list(self._run(ir, vis)[:, 0])

        pipeline = Pipeline(
            prepare=lambda pair: self._prepare(pair[0], pair[1], flip),
            infer=infer,
            finish=lambda frame, fused: frame.finish(fused, self.gray),
            key=lambda frame: frame.ir_y.shape,
            batch=self.stream_batch() if batch is None else batch,
            queue_size=queue_size,
        )
        yield from pipeline.run(pairs)

    def stream_batch(self) -> int:
        """Frames per network call in :meth:`stream` by default: 4 on a GPU with a dynamic-shape model,
        else 1 (a CPU backend already uses every core on one frame)."""
        on_gpu = str(self.device).startswith("cuda")
        return 4 if on_gpu and self._runner.static_shape is None and self.tile is None else 1

    def _prepare(self, ir: ImageLike, visible: ImageLike, bgr: bool | None) -> _Frame:
        return _Frame(ir, visible, self.bgr if bgr is None else bgr, self.max_pixels, self.rig)

    def close(self) -> None:
        self._runner.close()

    def __enter__(self) -> Fuser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- execution ----------------------------------------------------------------------------------

    def _run(self, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
        """[N, 1, H, W] float32 -> [N, 1, H, W] float32, whole or tiled."""
        height, width = ir.shape[-2:]
        fits_whole = self.tile is None or (self._runner.static_shape is None and height <= self.tile[0] and width <= self.tile[1])
        if fits_whole:
            return self._execute(np.ascontiguousarray(ir), np.ascontiguousarray(vis))
        return np.concatenate([self._run_tiled(ir[i : i + 1], vis[i : i + 1]) for i in range(ir.shape[0])])

    def _execute(self, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
        """One backend call (under the lock for backends that are not thread-safe), output checked (check_output)."""
        if self._lock is None:
            out = self._runner.run(ir, vis)
        else:
            with self._lock:
                out = self._runner.run(ir, vis)
        return check_output(out, ir, self._runner.path)

    def _run_tiled(self, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
        tile_h, tile_w = self.tile
        height, width = ir.shape[-2:]
        # Frames smaller than a tile are reflection-padded up to it (fixed-shape artefacts need whole tiles).
        pad_h, pad_w = max(0, tile_h - height), max(0, tile_w - width)
        if pad_h or pad_w:
            pad = ((0, 0), (0, 0), (0, pad_h), (0, pad_w))
            ir, vis = np.pad(ir, pad, mode="reflect"), np.pad(vis, pad, mode="reflect")
        full_h, full_w = ir.shape[-2:]
        acc = np.zeros((full_h, full_w), np.float32)
        weight_sum = np.zeros((full_h, full_w), np.float32)
        weights = blend_weights(tile_h, tile_w, self.tile_overlap)
        corners = [
            (y, x) for y in tile_starts(full_h, tile_h, self.tile_overlap) for x in tile_starts(full_w, tile_w, self.tile_overlap)
        ]
        # Tiles run in batches: of the artefact's fixed batch size when it has one (the last batch is
        # filled up by repeating a tile), else one at a time to bound memory.
        static = self._runner.static_shape
        per_call = static[0] if static is not None else 1
        for start in range(0, len(corners), per_call):
            chunk = corners[start : start + per_call]
            padded = chunk + [chunk[-1]] * (per_call - len(chunk))
            ir_b = np.stack([ir[0, :, y : y + tile_h, x : x + tile_w] for y, x in padded])
            vis_b = np.stack([vis[0, :, y : y + tile_h, x : x + tile_w] for y, x in padded])
            out = self._execute(np.ascontiguousarray(ir_b), np.ascontiguousarray(vis_b))
            for (y, x), tile_out in zip(chunk, out):
                acc[y : y + tile_h, x : x + tile_w] += tile_out[0] * weights
                weight_sum[y : y + tile_h, x : x + tile_w] += weights
        return (acc / weight_sum)[None, None, :height, :width]
