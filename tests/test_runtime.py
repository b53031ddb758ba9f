"""Runtime: Fuser on the torch and onnxruntime backends, formats, colour, tiling, batching, errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import require_shared_data

from tsjnet_sdk import Fuser
from tsjnet_sdk.imaging import ImageError, read_image, rgb_to_ycbcr, write_image
from tsjnet_sdk.runtime import BackendUnavailable, ModelFileError
from tsjnet_sdk.runtime.backends.base import Backend
from tsjnet_sdk.runtime.fuser import blend_weights, tile_starts


def rng_pair(h=48, w=72, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w), dtype=np.uint8), rng.integers(40, 220, (h, w, 3), dtype=np.uint8)


def test_checkpoint_runs_on_torch_and_keeps_formats(tiny_checkpoint):
    fuser = Fuser(tiny_checkpoint)
    assert fuser.backend == "torch" and "torch" in repr(fuser)
    ir, vis = rng_pair()
    out = fuser(ir, vis)
    assert out.shape == vis.shape and out.dtype == np.uint8
    # Colour: the fused image carries the visible chroma (BT.601), only luminance changes (except where
    # the new luminance pushes a saturated colour out of the RGB cube and a channel clips).
    _, cb_o, cr_o = rgb_to_ycbcr(out / 255.0)
    _, cb_v, cr_v = rgb_to_ycbcr(vis / 255.0)
    unclipped = (out > 0).all(-1) & (out < 255).all(-1)
    assert unclipped.mean() > 0.5
    assert np.abs(cb_o - cb_v)[unclipped].max() < 3 / 255 and np.abs(cr_o - cr_v)[unclipped].max() < 3 / 255
    # BGR frames: same result in BGR order.
    assert np.array_equal(fuser(ir, vis[..., ::-1].copy(), bgr=True), out[..., ::-1])
    # Grey visible -> grey out; H x W x 1 keeps its shape; floats stay floats.
    grey = fuser(ir, vis[..., 1])
    assert grey.shape == ir.shape and grey.dtype == np.uint8
    assert fuser(ir, vis[..., 1:2]).shape == (48, 72, 1)
    as_float = fuser(ir / 255.0, vis / 255.0)
    assert as_float.dtype == np.float32 and np.abs(as_float * 255 - out).max() <= 1.0
    # 16-bit raw thermal and an IR stored as 3 grey channels.
    assert fuser((ir.astype(np.uint16) * 257), vis).shape == vis.shape
    assert np.array_equal(fuser(np.repeat(ir[..., None], 3, axis=2), vis), out)
    assert (
        fuser(
            ir,
            vis,
        ).shape
        == out.shape
    )
    assert fuser.fuse(ir, vis, bgr=False).shape == out.shape


def test_paths_pil_batches_and_streams(tiny_checkpoint, tmp_path):
    from PIL import Image

    fuser = Fuser(tiny_checkpoint, gray=True)
    ir, vis = rng_pair()
    ir2, vis2 = rng_pair(64, 40, seed=1)
    single = fuser(ir, vis)
    assert single.shape == ir.shape  # gray=True: luminance only
    p_ir, p_vis = write_image(tmp_path / "i.png", ir), write_image(tmp_path / "v.png", vis)
    assert np.array_equal(fuser(p_ir, p_vis), single)
    assert np.array_equal(fuser(Image.fromarray(ir), Image.fromarray(vis)), single)
    batch = fuser.fuse_batch([(ir, vis), (ir2, vis2), (ir, vis)])
    assert np.abs(batch[0].astype(int) - single).max() <= 1 and batch[1].shape == ir2.shape
    assert np.array_equal(batch[0], batch[2])
    streamed = list(fuser.stream([(ir, vis), (ir2, vis2)]))
    assert np.array_equal(streamed[0], single) and streamed[1].shape == ir2.shape


class _PixelwiseBackend(Backend):
    """A network stand-in whose output at a pixel depends only on that pixel: tiling must be seamless."""

    name = "pixelwise"

    def __init__(self, static=None):
        super().__init__(None, "cpu")
        self._static, self.calls = static, []

    def run(self, ir, vis):
        if self._static:
            assert ir.shape[2:] == self._static[1:] and ir.shape[0] == self._static[0]  # exactly its shape
        self.calls.append(ir.shape)
        return (0.3 * ir + 0.7 * vis).astype(np.float32)

    @property
    def static_shape(self):
        return self._static


@pytest.mark.parametrize("static", [None, (1, 64, 96), (3, 64, 96)])
def test_tiling_is_seamless(monkeypatch, static):
    import tsjnet_sdk.runtime.fuser as fuser_mod

    backend = _PixelwiseBackend(static)
    monkeypatch.setattr(fuser_mod, "open_backend", lambda *a, **k: backend)
    ir, vis = rng_pair(150, 211)
    tiled = Fuser("unused", tile=None if static else 64, tile_overlap=16, gray=True)(ir, vis)
    want = np.rint(np.clip(0.3 * ir / 255 + 0.7 * rgb_to_ycbcr(vis / 255)[0], 0, 1) * 255)
    assert np.abs(tiled.astype(int) - want).max() <= 1
    assert sum(shape[0] for shape in backend.calls) > 4  # really tiled
    small_ir, small_vis = rng_pair(40, 50)  # smaller than the static shape: padded up to one tile
    assert Fuser("unused", tile=None if static else 64, gray=True)(small_ir, small_vis).shape == (40, 50)
    if static:
        with pytest.raises(ValueError, match="fixed input shape 64x96"):
            Fuser("unused", tile=64)


def test_tile_geometry():
    assert tile_starts(100, 100, 10) == [0]
    starts = tile_starts(250, 100, 20)
    assert starts[0] == 0 and starts[-1] == 150 and all(b - a <= 80 for a, b in zip(starts, starts[1:]))
    w = blend_weights(64, 64, 16)
    assert w.min() > 0 and w.max() == 1.0


def test_onnx_backend_matches_torch_on_real_pairs(tiny_checkpoint, tiny_onnx):
    root = require_shared_data()
    torch_fuser, ort_fuser = Fuser(tiny_checkpoint), Fuser(tiny_onnx)
    assert ort_fuser.backend == "onnxruntime" and ort_fuser.device == "cpu"
    for ir_path, vis_path in [
        (root / "msrs/test/ir/00004N.png", root / "msrs/test/vi/00004N.png"),
        (root / "roadscene/ir/FLIR_00311.jpg", root / "roadscene/vi/FLIR_00311.jpg"),  # not a multiple of 32
        (root / "tno/ir/01.png", root / "tno/vi/01.png"),  # IR and visible stored as RGB with grey content
    ]:
        if not ir_path.exists():
            pytest.skip(f"{ir_path} missing from ../shared/data")
        a, b = torch_fuser(ir_path, vis_path), ort_fuser(ir_path, vis_path)
        assert a.shape == b.shape == read_image(vis_path).shape
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_runtime_runs_onnx_without_torch(tiny_onnx):
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any import of torch now fails
        "import numpy as np\n"
        "from tsjnet_sdk import Fuser\n"
        f"f = Fuser({str(tiny_onnx)!r})\n"
        "out = f(np.zeros((40, 60), np.uint8), np.full((40, 60, 3), 128, np.uint8))\n"
        "assert out.shape == (40, 60, 3) and f.backend == 'onnxruntime'\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_import_without_torch():
    code = "import tsjnet_sdk, sys; tsjnet_sdk.Fuser; import tsjnet_sdk.runtime; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_errors_name_the_problem(tiny_checkpoint, tiny_onnx, tmp_path):
    fuser = Fuser(tiny_checkpoint)
    ir, vis = rng_pair()
    with pytest.raises(ImageError, match="same size"):
        fuser(ir[:40], vis)
    with pytest.raises(ImageError, match="dtype int64"):
        fuser(ir.astype(np.int64), vis)
    with pytest.raises(ImageError, match=r"H x W x 3"):
        fuser(ir, np.zeros((48, 72, 4), np.uint8))
    with pytest.raises(ImageError, match=r"must be in \[0, 1\]"):
        fuser(ir.astype(np.float32), vis)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(ImageError, match="bad.png"):
        fuser(bad, vis)
    with pytest.raises(ImageError, match="numpy array, a PIL image or a path"):
        fuser([1, 2], vis)
    unknown = tmp_path / "weights.bin"
    unknown.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFileError, match="unknown model file kind"):
        Fuser(unknown)
    with pytest.raises(ModelFileError, match="not found"):
        Fuser(tmp_path / "missing.onnx")
    with pytest.raises(BackendUnavailable, match="export it first"):
        Fuser(tiny_checkpoint, backend="onnxruntime")
    with pytest.raises(BackendUnavailable, match="engines run only in TensorRT|backend='onnxruntime'"):
        Fuser(tiny_onnx, backend="torch")
    with pytest.raises(ValueError, match="unknown backend"):
        Fuser(tiny_checkpoint, backend="tflite")
    with pytest.raises(ValueError, match="tile must be None, a whole number >= 32"):
        Fuser(tiny_checkpoint, tile=16)
    with pytest.raises(ImageError, match="too small|at least"):
        fuser(ir[:20, :20], vis[:20, :20])


def test_engine_files_are_checked_before_tensorrt_runs(tmp_path):
    """Engines from another TensorRT version, truncated engines and bare plans: clear errors, no crash."""
    from tsjnet_sdk.engine_format import EngineFileError, write_engine_file
    from tsjnet_sdk.runtime.backends.tensorrt_backend import import_tensorrt

    try:
        trt = import_tensorrt()
    except BackendUnavailable as e:
        trt = None
        missing = str(e)
    flavour = "tensorrt_rtx" if trt is not None and trt.__name__ == "tensorrt_rtx" else "tensorrt"
    meta = {"sdk_version": "0.1.0", "config_name": "tsjnet-tiny", "trt_flavour": flavour, "trt_version": "0.0.1"}
    old = write_engine_file(tmp_path / "old.engine", meta, b"x" * 64)
    if trt is None:
        with pytest.raises(BackendUnavailable, match="not installed"):
            Fuser(old)
        assert "pip install" in missing
    else:
        with pytest.raises(BackendUnavailable, match=f"built with {flavour} 0.0.1, this machine has {trt.__version__}"):
            Fuser(old)
    with pytest.raises(BackendUnavailable, match="GPUs only"):
        Fuser(old, device="cpu")
    cut = tmp_path / "cut.engine"
    cut.write_bytes(old.read_bytes()[:30])
    with pytest.raises(EngineFileError, match="truncated"):
        Fuser(cut)
    bare = tmp_path / "bare.engine"
    bare.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFileError, match="bare TensorRT engine without the tsjnet header"):
        Fuser(bare)
