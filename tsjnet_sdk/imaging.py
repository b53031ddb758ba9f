"""Image I/O and colour handling: the one place that decides how camera frames become model inputs
and how the fused luminance becomes an output image. numpy + Pillow only (no torch).

Conventions:
  * model inputs are float32 in [0, 1]: uint8 / 255, uint16 / 65535 (raw thermal), floats as given;
  * the visible image enters as its luminance Y of BT.601 full-range YCbCr (JPEG's), the same Y the
    official TSJNet inference used (cv2 BGR2GRAY); colour output keeps the visible Cb/Cr and replaces
    Y by the fused image (the official colour script's intent, without its BGR/RGB mix-up, spec §8.8);
  * IR frames are grey; an IR stored as 3 channels (many datasets) is reduced with the same luma.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from tsjnet_sdk.atomic import atomic_path
from tsjnet_sdk.errors import TsjnetError

#: The formats the SDK decodes, by file suffix -> Pillow format name. A file is decoded only by the
#: plugin its suffix names (content and name must agree): Pillow would otherwise sniff any of its ~40
#: formats by content, some through external programs (EPS via Ghostscript), whatever the file is called.
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}
IMAGE_SUFFIXES = tuple(FORMATS)
_LUMA = np.array([0.299, 0.587, 0.114])


class ImageError(TsjnetError, ValueError):
    """An image that cannot be used, with the file (if any) and the fix in the message."""


# Largest frame (in pixels, W x H) the SDK decodes or fuses: 8192 x 8192 = 67 Mpx. Fusing a colour
# frame takes up to ~90 bytes a pixel outside the network (float copies of IR, visible Y/Cb/Cr, the
# colour conversions and the output; measured in tests/test_reliability_limits.py), so this caps one
# frame at ~6 GB; above it, images are refused from their header, before any pixel memory is allocated. Change it here (tsjnet_sdk.imaging.MAX_PIXELS = ...), per Fuser (max_pixels=),
# or per process with the TSJNET_MAX_PIXELS environment variable; pixel_limit() is the one place that
# resolves them.
MAX_PIXELS = 8192 * 8192
MAX_PIXELS_ENV = "TSJNET_MAX_PIXELS"


def pixel_limit(override: int | None = None) -> int:
    """The frame size limit in pixels: ``override`` if given, else $TSJNET_MAX_PIXELS, else MAX_PIXELS."""
    if override is not None:
        limit = override
    elif os.environ.get(MAX_PIXELS_ENV):
        try:
            limit = int(os.environ[MAX_PIXELS_ENV])
        except ValueError:
            raise ImageError(f"${MAX_PIXELS_ENV}={os.environ[MAX_PIXELS_ENV]!r} is not an integer pixel count") from None
    else:
        limit = MAX_PIXELS
    if limit <= 0:
        raise ImageError(f"the pixel limit must be positive, got {limit}")
    return limit


def check_frame_size(width: int, height: int, name: str = "image", max_pixels: int | None = None) -> None:
    """Raise ImageError when a W x H frame is larger than the pixel limit (see :func:`pixel_limit`)."""
    limit = pixel_limit(max_pixels)
    if width * height > limit:
        raise ImageError(_too_large(f"{name}: {width}x{height} (W x H) =", width * height, limit))


def _too_large(what: str, pixels: int, limit: int) -> str:
    return (
        f"{what} {pixels / 1e6:.1f} Mpx is above the limit of {limit / 1e6:.1f} Mpx; refusing to decode it (a corrupt "
        f"or hostile header, or a huge frame): downscale it, or raise the limit (Fuser(max_pixels=...), "
        f"tsjnet_sdk.imaging.MAX_PIXELS or ${MAX_PIXELS_ENV})"
    )


def read_image(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as uint8 or uint16: H x W (grey) or H x W x 3 (RGB order), upright.

    Only the formats of :data:`FORMATS` are decoded, each by the plugin its suffix names (a PNG called
    ``.jpg`` is refused). The pixels keep their meaning (:func:`pil_to_array`): 16-bit grey PNG/TIFF (raw
    thermal) stays uint16 counts; float TIFFs in [0, 1] (or with a declared range) become uint16;
    data whose range the file does not say is refused. EXIF orientation is applied, so the array is
    upright (written images carry no orientation tag). Refused, each with an ImageError naming the file
    and the fix: frames above :func:`pixel_limit` (``max_pixels``, checked from the header before any
    pixel is decoded, for any limit, also above Pillow's own decompression-bomb cap), truncated or
    partly decoded files (including a JPEG cut short and closed with an end-of-image marker, which
    Pillow would fill with grey), and files with several frames (APNG, multi-page TIFF, MPO).
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such image file")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(
            f"{path}: unsupported image format {path.suffix or '(no suffix)'!r}; the SDK reads "
            f"{', '.join(IMAGE_SUFFIXES)}: convert the file to one of them (e.g. PNG)"
        )
    try:
        with warnings.catch_warnings():
            # Our own limit (checked below, from the header) decides; Pillow's bomb warning would only repeat it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                return _decode(path, fmt, max_pixels)
            except Image.DecompressionBombError as e:
                # Pillow's own check fires inside Image.open, before ours, above 2 x its MAX_IMAGE_PIXELS.
                claimed = _claimed_pixels(e)
                if claimed == 0 or claimed > pixel_limit(max_pixels):
                    raise ImageError(_too_large(f"{path}: the header claims", claimed, pixel_limit(max_pixels))) from None
                # The user's limit is above Pillow's cap: decode with Pillow's cap lifted (ours still applies).
                with _PILLOW_CAP_LOCK:
                    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
                    try:
                        return _decode(path, fmt, max_pixels)
                    finally:
                        Image.MAX_IMAGE_PIXELS = saved
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: {_content_mismatch(path, fmt)}") from None
    except MemoryError:
        raise ImageError(f"{path}: out of memory decoding this image; lower the pixel limit or downscale it") from None
    except Exception as e:  # noqa: BLE001 - Pillow's decoders raise OSError, SyntaxError, ValueError, struct.error, EOFError, ...
        raise ImageError(f"{path}: cannot decode image ({type(e).__name__}: {e}); the file is truncated or corrupt") from None


# Held only while Pillow's global decompression-bomb cap is lifted for one file (a user limit above it).
_PILLOW_CAP_LOCK = threading.Lock()


def _claimed_pixels(error: Exception) -> int:
    import re

    claimed = re.search(r"\((\d+) pixels\)", str(error))
    return int(claimed.group(1)) if claimed else 0


def _decode(path: Path, fmt: str, max_pixels: int | None) -> np.ndarray:
    """Open ``path`` with the one Pillow plugin ``fmt``, check size, frames and completeness, decode."""
    from PIL import Image

    with Image.open(path, formats=[fmt]) as im:
        width, height = im.size  # from the header: nothing decoded yet
        check_frame_size(width, height, str(path), max_pixels)
        frames = getattr(im, "n_frames", 1)
        if frames > 1:
            raise ImageError(
                f"{path}: holds {frames} frames or pages (an animation, a multi-page TIFF or an MPO); the SDK fuses "
                "single frames: save the frame you mean as its own file"
            )
        im.load()  # Pillow raises on data that ends early (LOAD_TRUNCATED_IMAGES stays off)
        if fmt == "JPEG":
            check_jpeg_complete(path.read_bytes(), str(path), np.asarray(im))
        return pil_to_array(upright(im), str(path))


def _content_mismatch(path: Path, fmt: str) -> str:
    """Why the ``fmt`` plugin could not open ``path``: another listed format by content, or not an image."""
    from PIL import Image

    others = sorted(set(FORMATS.values()) - {fmt})
    try:
        with Image.open(path, formats=others) as im:
            actual = im.format
    except Exception:  # noqa: BLE001 - not one of the listed formats either
        return (
            f"not a readable image (not a valid {fmt} file: corrupt, or another format; the SDK reads "
            f"{', '.join(IMAGE_SUFFIXES)}, and the content must match the suffix)"
        )
    good = [s for s, f in FORMATS.items() if f == actual]
    return f"the content is {actual} but the name says {fmt} ({path.suffix}): rename it to {good[0]}"


def upright(im: Any) -> Any:
    """A PIL image with its EXIF / TIFF orientation applied (the image itself when it has none)."""
    from PIL import ImageOps

    orientation = im.getexif().get(0x0112, 1)
    return im if orientation in (1, None) else ImageOps.exif_transpose(im)


# -- JPEG completeness ------------------------------------------------------------------------------
# libjpeg fills what is missing from a JPEG cut short and closed by an end-of-image marker (a partial
# download, a camera writing its last bytes) with mid-grey and only warns, which Pillow does not pass
# on. Two checks catch it: every component (and, for progressive files, every coefficient down to the
# last refinement bit) must be covered by a scan; and the last scan must be complete: bytes inserted
# before the marker that ends it leave a complete file's decoded image unchanged (libjpeg skips them
# as extraneous data after the last block), but are decoded as more blocks when the scan was cut short.
_SOF_PROGRESSIVE = (0xC2, 0xC6, 0xCA, 0xCE)
_PADDINGS = (b"\x00" * 64, b"\x5a" * 64)


def _jpeg_structure(data: bytes) -> tuple[list[int], bool, list[tuple[list[int], int, int, int]], int] | None:
    """(component ids, progressive, scans as (components, Ss, Se, Al), offset of the marker ending the
    last scan) from the marker segments, or None when the structure cannot be followed."""
    components: list[int] = []
    progressive = False
    scans: list[tuple[list[int], int, int, int]] = []
    end_of_last_scan = -1
    i = 2
    n = len(data)
    while i < n - 1:
        if data[i] != 0xFF:
            return None
        while i < n - 1 and data[i + 1] == 0xFF:  # fill bytes before a marker
            i += 1
        marker = data[i + 1]
        if marker == 0xD9:  # EOI
            return (components, progressive, scans, end_of_last_scan) if scans else None
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if i + 4 > n:
            return None
        seg_end = i + 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        body = data[i + 4 : seg_end]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn
            if len(body) < 6:
                return None
            components = [body[6 + 3 * k] for k in range(body[5]) if 6 + 3 * k < len(body)]
            progressive = marker in _SOF_PROGRESSIVE
        elif marker == 0xDA:  # SOS, then entropy-coded data up to the next marker that is not RSTn
            if not body or len(body) < 1 + 2 * body[0] + 3:
                return None
            count = body[0]
            ids = [body[1 + 2 * k] for k in range(count)]
            ss, se, al = body[1 + 2 * count], body[2 + 2 * count], body[3 + 2 * count] & 0x0F
            scans.append((ids, ss, se, al))
            j = data.find(b"\xff", seg_end)  # jump from 0xFF to 0xFF: bytes.find, not a Python loop per byte
            while j != -1 and j < n - 1 and (data[j + 1] == 0x00 or 0xD0 <= data[j + 1] <= 0xD7):
                j = data.find(b"\xff", j + 1)
            if j == -1 or j >= n - 1:
                return None
            end_of_last_scan = i = j
            continue
        i = seg_end
    return None


def check_jpeg_complete(data: bytes, name: str = "image", decoded: np.ndarray | None = None) -> None:
    """Raise ImageError when a JPEG that decodes without error is missing data (see the note above).

    ``decoded``: Pillow's decode of ``data`` when the caller has it (saves one decode)."""
    import io

    from PIL import Image

    truncated = (
        f"{name}: the JPEG is truncated or partly missing (its decoder would fill the rest with grey); "
        "re-copy or re-export the file"
    )
    structure = _jpeg_structure(data)
    if structure is None:
        raise ImageError(truncated)
    components, progressive, scans, end = structure
    if progressive:  # every coefficient of every component refined down to its last bit (Al = 0)
        done = {(c, k) for ids, ss, se, al in scans if al == 0 for c in ids for k in range(ss, se + 1)}
        needed = {(c, k) for c in components for k in range(64)}
    else:  # sequential: every component in some scan
        done = {c for ids, *_ in scans for c in ids}
        needed = set(components)
    if not needed <= done:
        raise ImageError(truncated)

    def decode(blob: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(blob), formats=["JPEG"]) as im:
            im.load()
            return np.asarray(im)

    reference = decode(data) if decoded is None else decoded
    for padding in _PADDINGS:
        if not np.array_equal(reference, decode(data[:end] + padding + data[end:])):
            raise ImageError(truncated)


#: PIL modes decoded as they are (colour modes become RGB); anything else is refused by name.
_COLOUR_MODES = ("P", "PA", "LA", "La", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr")
_UINT16_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


def pil_to_array(im: Any, name: str = "image") -> np.ndarray:
    """A PIL image -> uint8/uint16 array, H x W (grey) or H x W x 3 (RGB), the pixels' meaning kept.

    8-bit and colour modes -> uint8 (colour as RGB); 16-bit grey -> uint16 counts as stored; float
    (mode F) in [0, 1] -> uint16 (x 65535); float or 32-bit integer data (modes F, I) whose file
    declares its range (TIFF SMinSampleValue/SMaxSampleValue or MinSampleValue/MaxSampleValue) ->
    scaled from that range to uint16. Other float / 32-bit data is refused: its brightness is unknowable
    (reading 32-bit or float values as 16-bit counts made a [0, 1] float IR fuse like a black one).
    """
    mode = im.mode
    if mode in _UINT16_MODES:
        return np.asarray(im, dtype=np.uint16).copy()
    if mode in ("I", "F"):
        return _scaled_wide(im, name)
    if mode in ("L", "1"):
        return np.asarray(im.convert("L"), dtype=np.uint8).copy()
    if mode in _COLOUR_MODES:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    raise ImageError(f"{name}: pixel mode {mode!r} is not supported; save the image as 8/16-bit grey or 8-bit RGB")


def _declared_range(im: Any) -> tuple[float, float] | None:
    """(lo, hi) a TIFF declares for its samples (S/MinSampleValue, S/MaxSampleValue), or None."""
    tags = getattr(im, "tag_v2", None)
    if tags is None:
        return None
    for lo_tag, hi_tag in ((340, 341), (280, 281)):
        if hi_tag in tags:
            lo, hi = tags.get(lo_tag, 0), tags[hi_tag]
            lo, hi = (float(v[0] if isinstance(v, (tuple, list)) else v) for v in (lo, hi))
            if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
                return lo, hi
    return None


def _scaled_wide(im: Any, name: str) -> np.ndarray:
    """Mode I (32-bit integer) or F (float) -> uint16 with the meaning kept, or ImageError."""
    mode = im.mode
    arr = np.asarray(im)
    if arr.size == 0:
        raise ImageError(f"{name}: empty image (0 pixels)")
    if not np.isfinite(arr).all():  # a float (F-mode) TIFF with NaN/inf would cast to garbage
        raise ImageError(f"{name}: {mode}-mode image with NaN or inf values")
    lo, hi = float(arr.min()), float(arr.max())
    kind = "float" if mode == "F" else "32-bit integer"
    declared = _declared_range(im)
    if declared is not None:
        low, high = declared
        if lo < low or hi > high:
            raise ImageError(
                f"{name}: {kind} values in [{lo:.6g}, {hi:.6g}] fall outside the range the file declares "
                f"[{low:.6g}, {high:.6g}]; the file is inconsistent: re-export it"
            )
        return from_unit_float((arr.astype(np.float64) - low) / (high - low), np.uint16)
    if mode == "F" and lo >= 0.0 and hi <= 1.0:
        return from_unit_float(arr, np.uint16)
    raise ImageError(
        f"{name}: {kind} pixels in [{lo:.6g}, {hi:.6g}] and the file does not declare their range, so their brightness "
        "is unknown; save the frame as 16-bit integer PNG/TIFF (counts), as float in [0, 1], or pass it as an array "
        "(uint16, or float scaled to [0, 1])"
    )


def to_unit_float(image: np.ndarray, name: str = "image") -> np.ndarray:
    """uint8 / uint16 / float image -> float32 in [0, 1] (same shape)."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    if np.issubdtype(image.dtype, np.floating):
        if not np.all(np.isfinite(image)):
            raise ImageError(f"{name} contains NaN or inf values")
        lo, hi = float(image.min()), float(image.max())
        if lo < 0.0 or hi > 1.0:
            raise ImageError(
                f"{name} is float with values in [{lo:.3g}, {hi:.3g}]; float images must be in [0, 1] "
                "(divide by 255 for 8-bit data, or pass the uint8/uint16 array)"
            )
        return image.astype(np.float32)
    raise ImageError(f"{name} has dtype {image.dtype}; use uint8, uint16 or float in [0, 1]")


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an H x W x 3 RGB float image (any scale): H x W."""
    y = np.asarray(rgb, dtype=np.float64) @ _LUMA
    return y.astype(np.float32) if rgb.dtype == np.float32 else y


def rgb_to_ycbcr(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """H x W x 3 RGB in [0, 1] -> (Y, Cb, Cr), each H x W in [0, 1] (BT.601 full range, chroma offset 0.5)."""
    r, g, b = (rgb[..., i] for i in range(3))
    y = luma(rgb)
    cb = (b - y) / 1.772 + 0.5
    cr = (r - y) / 1.402 + 0.5
    return y, cb, cr


def ycbcr_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`: H x W x 3 RGB, clipped to [0, 1]."""
    r = y + 1.402 * (cr - 0.5)
    b = y + 1.772 * (cb - 0.5)
    g = (y - 0.299 * r - 0.114 * b) / 0.587
    return np.clip(np.stack([r, g, b], axis=-1), 0.0, 1.0)


def as_gray(image: np.ndarray, name: str = "image") -> np.ndarray:
    """H x W, H x W x 1 or H x W x 3 (grey or colour content) -> H x W luminance, same dtype scale."""
    image = np.asarray(image)
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[..., 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return luma(image)
    raise ImageError(f"{name} must be H x W, H x W x 1 or H x W x 3, got shape {image.shape}")


def from_unit_float(image: np.ndarray, dtype: type = np.uint8) -> np.ndarray:
    """float in [0, 1] -> uint8/uint16 with rounding (not truncation) and clipping."""
    scale = 255.0 if dtype == np.uint8 else 65535.0
    return np.clip(np.rint(np.asarray(image, dtype=np.float64) * scale), 0, scale).astype(dtype)


def default_font(size: int) -> Any:
    """Pillow's default font at ``size`` px for labels on panels and charts (the scalable one on
    Pillow >= 10.1 with FreeType; the fixed bitmap font otherwise)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, AttributeError):
        return ImageFont.load_default()


def check_output_path(path: str | os.PathLike) -> Path:
    """Raise ImageError unless ``path`` has an image suffix :func:`write_image` writes; the path."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ImageError(
            f"{path}: unsupported output format {path.suffix or '(no suffix)'!r}; use one of {', '.join(IMAGE_SUFFIXES)}"
        )
    return path


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an image atomically; the format follows the suffix (:data:`IMAGE_SUFFIXES`).

    Takes what :class:`~tsjnet_sdk.Fuser` returns: uint8 or uint16, H x W, H x W x 1 (written grey) or
    H x W x 3 (RGB). 16-bit data keeps its 16 bits: grey as PNG or TIFF, colour as PNG (48-bit RGB);
    formats that cannot hold it (JPEG, BMP; TIFF for 16-bit colour) are refused with the fix. The file
    carries no orientation tag: its pixels are upright (:func:`read_image` applied any EXIF rotation).
    """
    from PIL import Image

    path = check_output_path(path)
    image = np.asarray(image)
    if image.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"write_image takes uint8/uint16 arrays, got {image.dtype}; use from_unit_float first")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3) or 0 in image.shape:
        raise ImageError(f"write_image takes H x W, H x W x 1 or H x W x 3 images, got shape {image.shape}")
    fmt = FORMATS[path.suffix.lower()]
    if image.dtype == np.uint16 and (fmt in ("JPEG", "BMP") or (image.ndim == 3 and fmt != "PNG")):
        kind = "16-bit colour" if image.ndim == 3 else "16-bit"
        fix = ".png" if image.ndim == 3 else ".png or .tif"
        raise ImageError(f"{path}: {fmt} cannot hold {kind} images; write {fix}, or convert to uint8 first")
    with atomic_path(path) as tmp:
        if image.dtype == np.uint16 and image.ndim == 3:
            tmp.write_bytes(_png_rgb16(image))  # Pillow has no 48-bit RGB mode to save from
        else:
            Image.fromarray(np.ascontiguousarray(image)).save(tmp, format=fmt)
    return path


def _png_rgb16(image: np.ndarray) -> bytes:
    """A 48-bit RGB PNG (colour type 2, bit depth 16) of an H x W x 3 uint16 array."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    height, width = image.shape[:2]
    rows = image.astype(">u2").reshape(height, width * 6 // 2).view(np.uint8).reshape(height, width * 6)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()  # filter type 0 per row
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def prepare_pair(ir: np.ndarray, vis: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Camera frames -> model inputs.

    Args:
        ir: H x W (or x1 / x3 grey content), uint8 / uint16 / float in [0, 1].
        vis: H x W x 3 RGB or H x W grey, same H x W as ir.

    Returns:
        (ir_y, vis_y, chroma): float32 H x W in [0, 1] each, and (Cb, Cr) of the visible image, or
        None when it is grey.
    """
    ir_f = as_gray(to_unit_float(ir, "ir"), "ir")
    vis_f = to_unit_float(vis, "visible")
    if vis_f.ndim == 3 and vis_f.shape[2] == 3:
        vis_y, cb, cr = rgb_to_ycbcr(vis_f)
        chroma: tuple[np.ndarray, np.ndarray] | None = (cb, cr)
    else:
        vis_y, chroma = as_gray(vis_f, "visible"), None
    if ir_f.shape != vis_y.shape:
        raise ImageError(
            f"IR is {ir_f.shape[1]}x{ir_f.shape[0]} but visible is {vis_y.shape[1]}x{vis_y.shape[0]} (W x H): "
            "the pair must be registered to the same size"
        )
    return ir_f.astype(np.float32), vis_y.astype(np.float32), chroma


def compose_output(fused_y: np.ndarray, chroma: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Fused luminance H x W in [0, 1] (+ visible chroma) -> H x W grey or H x W x 3 RGB in [0, 1]."""
    if chroma is None:
        return np.clip(fused_y, 0.0, 1.0)
    return ycbcr_to_rgb(fused_y, *chroma)
