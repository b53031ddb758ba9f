"""An adversarial corpus, built by code, for the files and options a user hands the SDK: every case
ends in a correct output or one clear SDK error, never a silent wrong output (issue 22).

Classes (each a list below, counted in docs/reliability.md, "Hostile inputs"):
  DECODE_REFUSED   image files that must be refused (truncated, multi-frame, unknown range, wrong format)
  DECODE_READ      unusual image files that must be read with their pixels' meaning kept
  BAD_OPTIONS      Fuser options of a wrong type or value (refused at construction, one message style)
  OUTPUT_CASES     `tsjnet fuse` outputs that would destroy an input or cannot be written
Models, the optimised-graph cache and processes: tests/test_hostile_models.py.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, mean_onnx_model

from tsjnet_sdk.imaging import ImageError, read_image, write_image

RNG = np.random.default_rng(22)
GREY = RNG.integers(0, 256, (40, 48), dtype=np.uint8)
RGB = RNG.integers(0, 256, (40, 48, 3), dtype=np.uint8)
# JPEG cases use a smooth picture: its scans are short, so cuts land in every part of the file.
_Y, _X = np.mgrid[:64, :80]
SMOOTH = np.stack([_X * 3, _Y * 3, (_X + _Y) * 1.5], axis=-1).astype(np.uint8)


def _pil(array):
    from PIL import Image

    return Image.fromarray(array)


def _save(path: Path, image, fmt: str | None = None, **kw) -> Path:
    image.save(path, format=fmt, **kw)
    return path


def _jpeg(array=SMOOTH, quality: int = 90, **kw) -> bytes:
    buf = io.BytesIO()
    _pil(array).save(buf, "JPEG", quality=quality, **kw)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _last_sos(data: bytes) -> int:
    return data.rindex(b"\xff\xda")


def _float_tiff_with_range(path: Path, values: np.ndarray, lo: float, hi: float) -> Path:
    from PIL.TiffImagePlugin import ImageFileDirectory_v2

    ifd = ImageFileDirectory_v2()
    ifd[340], ifd[341] = lo, hi  # SMinSampleValue, SMaxSampleValue
    ifd.tagtype[340] = ifd.tagtype[341] = 11  # FLOAT
    return _save(path, _pil(values.astype(np.float32)), tiffinfo=ifd)


def _multipage_tiff(path: Path) -> Path:
    return _save(path, _pil(GREY), save_all=True, append_images=[_pil(255 - GREY)])


def _apng(path: Path) -> Path:
    return _save(path, _pil(RGB), save_all=True, append_images=[_pil(RGB[::-1].copy())])


def _mpo(path: Path) -> Path:
    return _save(path, _pil(SMOOTH), "MPO", save_all=True, append_images=[_pil(SMOOTH[::-1].copy())])


def _pfm(path: Path) -> Path:
    return _write(path, b"Pf\n48 40\n-1.0\n" + np.full((40, 48), 0.5, "<f4").tobytes())


def _png_bytes(array) -> bytes:
    buf = io.BytesIO()
    _pil(array).save(buf, "PNG")
    return buf.getvalue()


def _cut(data: bytes, fraction: float) -> bytes:
    return data[: int(len(data) * fraction)]


# (id, file builder, regex the ImageError must match)
DECODE_REFUSED = [
    ("float-tiff-range-unknown", lambda d: _save(d / "f.tif", _pil(GREY.astype(np.float32) * 2.0)), "does not declare"),
    ("float-tiff-nan", lambda d: _save(d / "f.tif", _pil(np.where(GREY > 128, np.nan, 0.5).astype(np.float32))), "NaN"),
    ("float-tiff-inf", lambda d: _save(d / "f.tif", _pil(np.where(GREY > 128, np.inf, 0.5).astype(np.float32))), "NaN or inf"),
    ("float-tiff-negative", lambda d: _save(d / "f.tif", _pil(GREY.astype(np.float32) / 255 - 0.5)), "does not declare"),
    ("float-tiff-outside-declared", lambda d: _float_tiff_with_range(d / "f.tif", GREY * 2.0, 0, 100), "outside the range"),
    ("int32-tiff-range-unknown", lambda d: _save(d / "i.tif", _pil(GREY.astype(np.int32) * 100)), "32-bit integer"),
    ("int32-tiff-small-values", lambda d: _save(d / "i.tif", _pil(GREY.astype(np.int32))), "32-bit integer"),
    ("lab-tiff", lambda d: _save(d / "lab.tif", _pil(RGB).convert("LAB")), "pixel mode 'LAB'"),
    ("jpeg-cut-half+eoi", lambda d: _write(d / "c.jpg", _cut(_jpeg(), 0.5) + b"\xff\xd9"), "truncated"),
    ("jpeg-cut-90%+eoi", lambda d: _write(d / "c.jpg", _cut(_jpeg(), 0.9) + b"\xff\xd9"), "truncated"),
    ("jpeg-noise-cut+eoi", lambda d: _write(d / "c.jpg", _cut(_jpeg(RGB), 0.7) + b"\xff\xd9"), "truncated"),
    ("jpeg-grey-cut+eoi", lambda d: _write(d / "c.jpg", _cut(_jpeg(SMOOTH[..., 0].copy()), 0.8) + b"\xff\xd9"), "truncated"),
    (
        "jpeg-restart-markers-cut+eoi",
        lambda d: _write(d / "c.jpg", _cut(_jpeg(restart_marker_blocks=2), 0.7) + b"\xff\xd9"),
        "truncated",
    ),
    (
        "jpeg-progressive-cut+eoi",
        lambda d: _write(d / "c.jpg", _cut(_jpeg(RGB, progressive=True), 0.6) + b"\xff\xd9"),
        "truncated",
    ),
    (
        "jpeg-progressive-missing-scans",
        lambda d: _write(d / "c.jpg", (j := _jpeg(progressive=True))[: _last_sos(j)] + b"\xff\xd9"),
        "truncated",
    ),
    ("jpeg-cut-no-eoi", lambda d: _write(d / "c.jpg", _cut(_jpeg(), 0.6)), "truncated|corrupt"),
    ("jpeg-header-only", lambda d: _write(d / "c.jpg", _jpeg()[:200]), "truncated|corrupt|readable"),
    ("png-cut", lambda d: _write(d / "c.png", _cut(_png_bytes(RGB), 0.6)), "truncated|corrupt"),
    ("png16-cut", lambda d: _write(d / "c.png", _cut(_png_bytes(GREY.astype(np.uint16) * 257), 0.6)), "truncated|corrupt"),
    (
        "tiff-cut",
        lambda d: _write(d / "c.tif", _cut((_save(d / "t.tif", _pil(RGB))).read_bytes(), 0.6)),
        "truncated|corrupt|readable",
    ),
    ("bmp-cut", lambda d: _write(d / "c.bmp", _cut((_save(d / "t.bmp", _pil(RGB))).read_bytes(), 0.6)), "truncated|corrupt"),
    ("apng-2-frames", lambda d: _apng(d / "a.png"), "2 frames"),
    ("tiff-2-pages", lambda d: _multipage_tiff(d / "m.tif"), "2 frames"),
    ("mpo-jpeg-2-frames", lambda d: _mpo(d / "m.jpg"), "2 frames"),
    ("png-named-jpg", lambda d: _write(d / "x.jpg", _png_bytes(RGB)), "content is PNG but the name says JPEG"),
    ("jpeg-named-png", lambda d: _write(d / "x.png", _jpeg()), "content is JPEG"),
    ("bmp-named-tif", lambda d: _write(d / "x.tif", (_save(d / "t.bmp", _pil(RGB))).read_bytes()), "content is BMP"),
    ("tiff-named-bmp", lambda d: _write(d / "x.bmp", (_save(d / "t.tif", _pil(RGB))).read_bytes()), "content is TIFF"),
    ("gif", lambda d: _save(d / "x.gif", _pil(RGB).convert("P")), "unsupported image format '.gif'"),
    (
        "gif-named-png",
        lambda d: _write(d / "x.png", (_save(d / "t.gif", _pil(RGB).convert("P"))).read_bytes()),
        "not a readable image",
    ),
    ("webp", lambda d: _save(d / "x.webp", _pil(RGB)), "unsupported image format '.webp'"),
    ("pfm", lambda d: _pfm(d / "x.pfm"), "unsupported image format '.pfm'"),
    ("pfm-named-tif", lambda d: _write(d / "x.tif", _pfm(d / "t.pfm").read_bytes()), "not a readable image"),
    ("ppm", lambda d: _save(d / "x.ppm", _pil(RGB)), "unsupported image format '.ppm'"),
    ("ppm-named-bmp", lambda d: _write(d / "x.bmp", (_save(d / "t.ppm", _pil(RGB))).read_bytes()), "not a readable image"),
    (
        "eps-named-png",
        lambda d: _write(d / "x.png", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"),
        "not a readable image",
    ),
    ("no-suffix", lambda d: _write(d / "frame", _png_bytes(RGB)), "unsupported image format '\\(no suffix\\)'"),
    ("empty-file", lambda d: _write(d / "x.png", b""), "not a readable image"),
    ("huge-header", lambda d: _write(d / "x.png", _png_header(100_000, 100_000)), "above the limit"),
]


def _png_header(width: int, height: int) -> bytes:
    sys.path.insert(0, str(REPO_ROOT / "tests" / "fuzz"))
    from make_seeds import png_header_only

    return png_header_only(width, height)


@pytest.mark.parametrize("build, pattern", [c[1:] for c in DECODE_REFUSED], ids=[c[0] for c in DECODE_REFUSED])
def test_hostile_image_is_refused(tmp_path, build, pattern):
    path = build(tmp_path)
    with pytest.raises(ImageError, match=pattern):
        read_image(path)


def _exif(image, orientation: int):
    exif = image.getexif()
    exif[0x0112] = orientation
    return exif


def _check_float_unit(arr):
    expected = np.rint(GREY.astype(np.float32) / 255 * 65535)
    assert arr.dtype == np.uint16 and np.abs(arr.astype(np.float64) - expected).max() <= 1


def _check_declared(arr):
    expected = np.rint(GREY * 2.0 / 600 * 65535)
    assert arr.dtype == np.uint16 and np.abs(arr.astype(np.float64) - expected).max() <= 1


def _check_int_declared(arr):
    expected = np.rint(GREY.astype(np.float64) * 16 / 4095 * 65535)
    assert arr.dtype == np.uint16 and np.abs(arr - expected).max() <= 1


def _check_rotated_png(arr):
    # Orientation 6: the stored image is shown rotated 90 degrees clockwise.
    assert arr.shape == (48, 40, 3) and np.array_equal(arr, np.rot90(RGB, k=-1))


def _check_rotated_grey16(arr):
    assert arr.dtype == np.uint16 and np.array_equal(arr, np.rot90(GREY.astype(np.uint16) * 257, k=1))


def _jpeg_like(reference):
    def check(arr):
        assert arr.shape == reference.shape and np.abs(arr.astype(int) - reference).mean() < 8

    return check


# (id, file builder, check of the decoded array)
DECODE_READ = [
    ("float-tiff-unit", lambda d: _save(d / "f.tif", _pil(GREY.astype(np.float32) / 255)), _check_float_unit),
    ("float-tiff-declared-range", lambda d: _float_tiff_with_range(d / "f.tif", GREY * 2.0, 0, 600), _check_declared),
    (
        "int32-tiff-declared-range",
        lambda d: _save(d / "i.tif", _pil(GREY.astype(np.int32) * 16), tiffinfo={280: 0, 281: 4095}),
        _check_int_declared,
    ),
    (
        "png16-grey",
        lambda d: _save(d / "g.png", _pil(GREY.astype(np.uint16) * 257)),
        lambda a: np.array_equal(a, GREY.astype(np.uint16) * 257) or pytest.fail("16-bit PNG changed"),
    ),
    (
        "tiff16-grey",
        lambda d: _save(d / "g.tif", _pil(GREY.astype(np.uint16) * 3)),
        lambda a: np.array_equal(a, GREY.astype(np.uint16) * 3) or pytest.fail("16-bit TIFF changed"),
    ),
    ("png-exif-orientation-6", lambda d: _save(d / "r.png", _pil(RGB), exif=_exif(_pil(RGB), 6)), _check_rotated_png),
    (
        "png16-exif-orientation-8",
        lambda d: _save(d / "r.png", _pil(GREY.astype(np.uint16) * 257), exif=_exif(_pil(GREY), 8)),
        _check_rotated_grey16,
    ),
    (
        "tiff-orientation-3",
        lambda d: _save(d / "r.tif", _pil(RGB), exif=_exif(_pil(RGB), 3)),
        lambda a: np.array_equal(a, RGB[::-1, ::-1]) or pytest.fail("TIFF orientation not applied"),
    ),
    (
        "jpeg-exif-orientation-6",
        lambda d: _save(d / "r.jpg", _pil(SMOOTH), quality=95, exif=_exif(_pil(SMOOTH), 6)),
        _jpeg_like(np.rot90(SMOOTH, k=-1)),
    ),
    ("jpeg-baseline", lambda d: _write(d / "ok.jpg", _jpeg()), _jpeg_like(SMOOTH)),
    ("jpeg-progressive", lambda d: _write(d / "ok.jpg", _jpeg(progressive=True)), _jpeg_like(SMOOTH)),
    ("jpeg-restart-markers", lambda d: _write(d / "ok.jpg", _jpeg(restart_marker_blocks=2)), _jpeg_like(SMOOTH)),
    ("jpeg-noise-q100", lambda d: _write(d / "ok.jpeg", _jpeg(RGB, quality=100, subsampling=0)), _jpeg_like(RGB)),
    ("jpeg-grey", lambda d: _write(d / "ok.jpg", _jpeg(SMOOTH[..., 0].copy())), _jpeg_like(SMOOTH[..., 0])),
    ("jpeg-cmyk", lambda d: _save(d / "ok.jpg", _pil(SMOOTH).convert("CMYK"), quality=95), _jpeg_like(SMOOTH)),
    ("jpeg-trailing-bytes", lambda d: _write(d / "ok.jpg", _jpeg() + b"trailing junk after EOI"), _jpeg_like(SMOOTH)),
    (
        "jpeg-flat-grey-128",
        lambda d: _write(d / "ok.jpg", _jpeg(np.full((64, 80, 3), 128, np.uint8))),
        _jpeg_like(np.full((64, 80, 3), 128, np.uint8)),
    ),
    ("bmp-rgb", lambda d: _save(d / "ok.bmp", _pil(RGB)), lambda a: np.array_equal(a, RGB) or pytest.fail("BMP")),
    ("png-palette", lambda d: _save(d / "ok.png", _pil(RGB).convert("P")), lambda a: a.shape == RGB.shape or pytest.fail()),
    (
        "png-rgba",
        lambda d: _save(d / "ok.png", _pil(RGB).convert("RGBA")),
        lambda a: np.array_equal(a, RGB) or pytest.fail("alpha"),
    ),
]


@pytest.mark.parametrize("build, check", [c[1:] for c in DECODE_READ], ids=[c[0] for c in DECODE_READ])
def test_unusual_image_keeps_its_meaning(tmp_path, build, check):
    check(read_image(build(tmp_path)))


def test_pixel_limit_works_above_pillows_own_cap(tmp_path, monkeypatch):
    """A user limit above Pillow's decompression-bomb cap must decode (Pillow refused it inside Image.open)."""
    from PIL import Image

    path = _save(tmp_path / "g.png", _pil(GREY))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # Pillow refuses above 2 x 500 pixels; the file has 1920
    assert np.array_equal(read_image(path, max_pixels=10_000), GREY)
    assert Image.MAX_IMAGE_PIXELS == 500  # restored
    with pytest.raises(ImageError, match="above the limit"):
        read_image(path, max_pixels=1_000)
    assert np.array_equal(read_image(path), GREY)  # the default limit (67 Mpx) decides, not Pillow's cap


def test_a_complete_jpeg_is_never_refused(tmp_path):
    """No false positives from the completeness check over many sizes, qualities, subsamplings and modes."""
    rng = np.random.default_rng(1)
    for i in range(24):
        h, w = int(rng.integers(8, 70)), int(rng.integers(8, 70))
        picture = rng.integers(0, 256, (h, w, 3), dtype=np.uint8) if i % 3 else np.full((h, w, 3), i * 10, np.uint8)
        data = (
            _jpeg(picture if i % 4 else picture[..., 0].copy(), progressive=bool(i % 2), subsampling=int(i % 3))
            if i % 4
            else _jpeg(picture[..., 0].copy(), progressive=bool(i % 2))
        )
        read_image(_write(tmp_path / f"ok{i}.jpg", data))


# -- the Fuser on decoded files ---------------------------------------------------------------------


@pytest.fixture
def mean_fuser(tmp_path):
    from tsjnet_sdk import Fuser

    return Fuser(mean_onnx_model(tmp_path / "mean.onnx", ["N", 1, "H", "W"]))


def test_float_tiff_ir_fuses_like_its_array_not_like_black(tmp_path, mean_fuser):
    ir = RNG.random((40, 48)).astype(np.float32)
    path = _save(tmp_path / "ir.tif", _pil(ir))
    vis = np.full((40, 48), 0.5, np.float32)
    from_file, from_array = mean_fuser(path, vis), mean_fuser(ir, vis)
    assert np.abs(from_file - from_array).max() < 1e-4
    assert np.abs(from_file - mean_fuser(np.zeros_like(ir), vis)).max() > 0.2


def test_exif_rotated_visible_pairs_with_an_upright_ir(tmp_path, mean_fuser):
    """A camera JPEG stored sideways with EXIF orientation 6 pairs with the upright IR (before: "IR is 48x64
    but visible is 64x48"); the output is upright (no tag needed)."""
    upright = SMOOTH  # 64 x 80
    stored = np.ascontiguousarray(np.rot90(upright, k=1))  # what the camera wrote: 80 x 64
    vis = _save(tmp_path / "vis.jpg", _pil(stored), quality=95, exif=_exif(_pil(stored), 6))
    ir = _save(tmp_path / "ir.png", _pil(upright[..., 0].copy()))
    out = mean_fuser(ir, vis)
    assert out.shape == (64, 80, 3)
    # PIL images given directly are turned upright the same way.
    from PIL import Image

    with Image.open(vis) as im:
        assert np.array_equal(mean_fuser(ir, im), out)


# -- options --------------------------------------------------------------------------------------


BAD_OPTIONS = [
    ({"tile": 0}, "tile must be"),
    ({"tile": 31}, "tile must be"),
    ({"tile": -64}, "tile must be"),
    ({"tile": "64"}, "tile must be"),
    ({"tile": 64.0}, "tile must be"),
    ({"tile": True}, "tile must be"),
    ({"tile": (64,)}, "tile must be"),
    ({"tile": (64, 16)}, "tile must be"),
    ({"tile": (64, "a")}, "tile must be"),
    ({"tile": 64, "tile_overlap": -1}, "tile_overlap must be"),
    ({"tile": 64, "tile_overlap": -32}, "tile_overlap must be"),
    ({"tile_overlap": -1}, "tile_overlap must be"),
    ({"tile": 64, "tile_overlap": "8"}, "tile_overlap must be"),
    ({"tile": 64, "tile_overlap": 8.5}, "tile_overlap must be"),
    ({"tile": 64, "tile_overlap": True}, "tile_overlap must be"),
    ({"tile": 64, "tile_overlap": 64}, "tile_overlap must be smaller than the tile"),
    ({"max_pixels": 0}, "max_pixels must be"),
    ({"max_pixels": -5}, "max_pixels must be"),
    ({"max_pixels": "1e6"}, "max_pixels must be"),
    ({"max_pixels": 1.5e6}, "max_pixels must be"),
    ({"max_pixels": True}, "max_pixels must be"),
    ({"device": "garbage"}, "device must be"),
    ({"device": "gpu"}, "device must be"),
    ({"device": "cuda:"}, "device must be"),
    ({"device": "cuda:x"}, "device must be"),
    ({"device": "cuda:-1"}, "device must be"),
    ({"device": "CPU"}, "device must be"),
    ({"device": 0}, "device must be"),
    ({"device": None}, "device must be"),
    ({"backend": "garbage"}, "unknown backend"),
    ({"backend": None}, "unknown backend"),
    ({"backend": "ORT"}, "unknown backend"),
    ({"bgr": "yes"}, "bgr must be True or False"),
    ({"bgr": 1}, "bgr must be True or False"),
    ({"gray": "no"}, "gray must be True or False"),
    ({"allow_foreign_model": "yes"}, "allow_foreign_model must be"),
    ({"options": object()}, "options must be"),
]
BAD_ENV = [
    ({"TSJNET_MAX_PIXELS": "abc"}, "TSJNET_MAX_PIXELS"),
    ({"TSJNET_MAX_PIXELS": "0"}, "pixel limit must be positive"),
    ({"TSJNET_MAX_PIXELS": "-3"}, "pixel limit must be positive"),
]


@pytest.mark.parametrize(
    "kwargs, pattern", BAD_OPTIONS, ids=[f"{k}={v!r}" for c, _ in BAD_OPTIONS for k, v in list(c.items())[-1:]]
)
def test_bad_option_is_refused_at_construction(tmp_path, kwargs, pattern):
    from tsjnet_sdk import Fuser

    with pytest.raises(ValueError, match=pattern):
        Fuser(mean_onnx_model(tmp_path / "mean.onnx", ["N", 1, "H", "W"]), **kwargs)


@pytest.mark.parametrize("env, pattern", BAD_ENV, ids=[f"{k}={v}" for e, _ in BAD_ENV for k, v in e.items()])
def test_bad_environment_is_refused_at_construction(tmp_path, monkeypatch, env, pattern):
    from tsjnet_sdk import Fuser

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match=pattern):
        Fuser(mean_onnx_model(tmp_path / "mean.onnx", ["N", 1, "H", "W"]))


def test_good_options_still_work(tmp_path):
    from tsjnet_sdk import Fuser

    model = mean_onnx_model(tmp_path / "mean.onnx", ["N", 1, "H", "W"])
    frame = RNG.integers(0, 256, (70, 90), dtype=np.uint8)
    for kwargs in (
        {"tile": (64, 48), "tile_overlap": 0},
        {"tile": [32, 40], "tile_overlap": 31},
        {"max_pixels": 70 * 90},
        {"device": "cpu"},
        {"device": "auto", "bgr": True, "gray": True},
        {"tile": np.int64(64), "tile_overlap": np.int32(8), "max_pixels": np.int64(10_000)},
    ):
        assert Fuser(model, **kwargs)(frame, frame).shape == (70, 90)


def test_na_backend_variable_is_checked_when_a_torch_fuser_is_made(monkeypatch):
    torch = pytest.importorskip("torch")
    from tsjnet_sdk import Fuser
    from tsjnet_sdk.models import create_model
    from tsjnet_sdk.ops import neighborhood_attention as na

    torch.manual_seed(0)
    model = create_model("tsjnet-tiny").eval()
    monkeypatch.setenv("TSJNET_NA_KERNEL", "garbage")
    with pytest.raises(ValueError, match="TSJNET_NA_KERNEL='garbage' is not understood"):
        Fuser(model)
    monkeypatch.delenv("TSJNET_NA_KERNEL")
    monkeypatch.setattr(na, "_default_backend", "garbage")  # what TSJNET_NA_BACKEND=garbage sets at import
    with pytest.raises(ValueError, match=r"\$TSJNET_NA_BACKEND must be one of auto, reference, natten, cuda"):
        Fuser(model)


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tsjnet_sdk.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})},
        cwd=REPO_ROOT,
    )


@pytest.fixture
def pair_files(tmp_path):
    ir = write_image(tmp_path / "ir.png", GREY)
    vis = write_image(tmp_path / "vis.png", RGB)
    return ir, vis


@pytest.mark.slow
def test_cli_bad_device_and_na_backend_give_clear_errors(tmp_path, pair_files):
    """Processes of their own: TSJNET_NA_BACKEND is read when the NA module is imported."""
    ir, vis = pair_files
    model = mean_onnx_model(tmp_path / "mean.onnx", ["N", 1, "H", "W"])
    for args, env, message in (
        (["--device", "garbage", "-m", str(model)], None, "device must be auto, cpu, cuda or cuda:N"),
        (["--config", "tsjnet-tiny"], {"TSJNET_NA_BACKEND": "garbage"}, "$TSJNET_NA_BACKEND must be one of"),
    ):
        result = _cli("fuse", str(ir), str(vis), "-o", str(tmp_path / "out.png"), *args, env=env)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr and message in " ".join(result.stderr.split()), result.stderr


def test_cli_demo_output_on_an_existing_file(tmp_path):
    from typer.testing import CliRunner

    from tsjnet_sdk.cli import app

    target = _write(tmp_path / "results.txt", b"keep me")
    result = CliRunner().invoke(app, ["demo", "-o", str(target), "--count", "1", "--no-real"])
    assert result.exit_code == 2 and "is a file" in result.output and not isinstance(result.exception, OSError)
    assert target.read_bytes() == b"keep me"


def test_cli_tile_option_is_checked(tmp_path, pair_files):
    from typer.testing import CliRunner

    from tsjnet_sdk.cli import app

    ir, vis = pair_files
    model = mean_onnx_model(tmp_path / "mean.onnx", ["N", 1, "H", "W"])
    result = CliRunner().invoke(app, ["fuse", str(ir), str(vis), "-m", str(model), "--tile", "8", "-o", str(tmp_path / "o.png")])
    assert result.exit_code == 2 and "tile must be" in result.output


# -- outputs ----------------------------------------------------------------------------------------


def _folders(tmp_path):
    ir_dir, vis_dir = tmp_path / "ir", tmp_path / "vi"
    for name in ("a", "b", "c"):
        write_image(ir_dir / f"{name}.png", GREY)
        write_image(vis_dir / f"{name}.png", RGB)
    return ir_dir, vis_dir


def _snapshot(*folders: Path) -> dict:
    return {p: p.read_bytes() for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}


# (id, how to build (ir, vis, -o) from tmp_path, regex of the refusal)
OUTPUT_CASES = [
    ("folder-o-is-ir-folder", lambda t: (*_folders(t), t / "ir"), "inside the input folder"),
    ("folder-o-is-vis-folder", lambda t: (*_folders(t), t / "vi"), "inside the input folder"),
    (
        "folder-o-is-ir-folder-spelled-differently",
        lambda t: (*_folders(t), t / "vi" / ".." / "ir" / "."),
        "inside the input folder",
    ),
    ("folder-o-inside-ir-folder", lambda t: (*_folders(t), t / "ir" / "fused"), "inside the input folder"),
    ("folder-o-is-a-file", lambda t: (*_folders(t), _write(t / "fused", b"x")), "is a file"),
    ("folder-o-under-a-file", lambda t: (*_folders(t), _write(t / "f", b"x") / "fused"), "is a file, not a folder"),
    ("file-o-is-ir", lambda t: (t / "ir.png", t / "vis.png", t / "ir.png"), "is the input"),
    ("file-o-is-vis", lambda t: (t / "ir.png", t / "vis.png", t / "vis.png"), "is the input"),
    ("file-o-is-ir-spelled-differently", lambda t: (t / "ir.png", t / "vis.png", t / "sub" / ".." / "ir.png"), "is the input"),
    ("file-o-is-a-link-to-vis", lambda t: (t / "ir.png", t / "vis.png", _link(t / "link.png", t / "vis.png")), "is the input"),
    ("file-o-unsupported-suffix", lambda t: (t / "ir.png", t / "vis.png", t / "out.gif"), "unsupported output format '.gif'"),
    ("file-o-no-suffix", lambda t: (t / "ir.png", t / "vis.png", t / "out"), "unsupported output format"),
    ("file-o-is-a-folder", lambda t: (t / "ir.png", t / "vis.png", _mkdir(t / "out.png")), "is a folder"),
    (
        "file-o-under-a-file",
        lambda t: (t / "ir.png", t / "vis.png", _write(t / "f", b"x") / "out.png"),
        "is a file, not a folder",
    ),
]


def _link(link: Path, target: Path) -> Path:
    link.symlink_to(target)
    return link


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.mark.parametrize("build, pattern", [c[1:] for c in OUTPUT_CASES], ids=[c[0] for c in OUTPUT_CASES])
def test_output_that_would_destroy_an_input_or_cannot_be_written_is_refused_first(tmp_path, pair_files, build, pattern):
    """Refused before any model loads (the model path does not exist: its error would come first otherwise)."""
    from typer.testing import CliRunner

    from tsjnet_sdk.cli import app

    ir, vis, out = build(tmp_path)
    before = _snapshot(tmp_path)
    result = CliRunner().invoke(app, ["fuse", str(ir), str(vis), "-o", str(out), "-m", str(tmp_path / "missing.onnx")])
    assert result.exit_code == 2, result.output
    assert __import__("re").search(pattern, " ".join(result.output.split())), result.output
    assert _snapshot(tmp_path) == before


def test_folder_mode_goes_on_past_an_unwritable_output(tmp_path):
    from typer.testing import CliRunner

    from tsjnet_sdk.cli import app

    ir_dir, vis_dir = _folders(tmp_path)
    model = mean_onnx_model(tmp_path / "mean.onnx", ["N", 1, "H", "W"])
    out = tmp_path / "fused"
    (out / "b.png").mkdir(parents=True)  # the output of pair b cannot be written
    result = CliRunner().invoke(app, ["fuse", str(ir_dir), str(vis_dir), "-o", str(out), "-m", str(model)])
    assert result.exit_code == 1, result.output
    assert (out / "a.png").is_file() and (out / "c.png").is_file()
    assert "failed 1 pair(s)" in result.output and "b:" in result.output


def test_write_image_writes_what_the_fuser_returns(tmp_path):
    from PIL import Image

    rgb16 = RNG.integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    with Image.open(write_image(tmp_path / "c16.png", rgb16)) as im:
        assert im.size == (30, 20)
    back = read_image(tmp_path / "c16.png")  # Pillow reads 48-bit PNG as 8-bit RGB: the top byte
    assert np.array_equal(back, (rgb16 >> 8).astype(np.uint8))
    grey16 = RNG.integers(0, 65536, (20, 30, 1), dtype=np.uint16)
    assert np.array_equal(read_image(write_image(tmp_path / "g16.png", grey16)), grey16[..., 0])
    assert np.array_equal(read_image(write_image(tmp_path / "g16.tif", grey16)), grey16[..., 0])
    grey8 = RNG.integers(0, 256, (20, 30, 1), dtype=np.uint8)
    assert np.array_equal(read_image(write_image(tmp_path / "g8.bmp", grey8)), grey8[..., 0])
    for name, image, pattern in (
        ("c.jpg", rgb16, "JPEG cannot hold 16-bit colour"),
        ("c.tif", rgb16, "write .png"),
        ("c.bmp", rgb16, "BMP cannot"),
        ("g.jpg", grey16, "write .png or .tif"),
        ("four.png", np.zeros((4, 4, 4), np.uint8), "H x W x 3"),
        ("empty.png", np.zeros((0, 4), np.uint8), "got shape"),
    ):
        with pytest.raises(ImageError, match=pattern):
            write_image(tmp_path / name, image)
        assert not (tmp_path / name).exists()


def test_fuser_output_for_16_bit_inputs_can_be_written(tmp_path, mean_fuser):
    ir = RNG.integers(0, 65536, (40, 48), dtype=np.uint16)
    for vis in (RNG.integers(0, 65536, (40, 48, 3), dtype=np.uint16), RNG.integers(0, 65536, (40, 48, 1), dtype=np.uint16)):
        out = mean_fuser(ir, vis)
        assert out.dtype == np.uint16 and out.shape == vis.shape
        assert read_image(write_image(tmp_path / "fused.png", out)).shape[:2] == (40, 48)
