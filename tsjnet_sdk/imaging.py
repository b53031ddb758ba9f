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
from pathlib import Path
from typing import Any

import numpy as np

from tsjnet_sdk.atomic import atomic_path
from tsjnet_sdk.errors import TsjnetError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
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
    """Read an image file as uint8 or uint16: H x W (grey) or H x W x 3 (RGB order).

    16-bit grey PNG/TIFF (raw thermal) stays uint16; palette/alpha images become RGB. The size is read
    from the header first: images above :func:`pixel_limit` (``max_pixels``) are refused before their
    pixels are decoded. Every failure is an ImageError.
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such image file")
    try:
        with warnings.catch_warnings():
            # Our own limit (checked below, from the header) decides; Pillow's bomb warning would only repeat it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size  # from the header: nothing decoded yet
                check_frame_size(width, height, str(path), max_pixels)
                im.load()
                return pil_to_array(im, str(path))
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not a readable image (unknown format or corrupt file)") from None
    except Image.DecompressionBombError as e:
        # Pillow's own check fires in Image.open, before ours, for headers above 2 x its MAX_IMAGE_PIXELS.
        import re

        claimed = re.search(r"\((\d+) pixels\)", str(e))
        pixels = int(claimed.group(1)) if claimed else 0
        raise ImageError(_too_large(f"{path}: the header claims", pixels, pixel_limit(max_pixels))) from None
    except MemoryError:
        raise ImageError(f"{path}: out of memory decoding this image; lower the pixel limit or downscale it") from None
    except Exception as e:  # noqa: BLE001 - Pillow's decoders raise OSError, SyntaxError, ValueError, struct.error, EOFError, ...
        raise ImageError(f"{path}: cannot decode image ({type(e).__name__}: {e}); the file is truncated or corrupt") from None


def pil_to_array(im: Any, name: str = "image") -> np.ndarray:
    """A PIL image -> uint8/uint16 array, H x W (grey) or H x W x 3 (RGB); 16-bit grey stays uint16."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(im, dtype=np.uint16).copy()
    if mode in ("I", "F"):
        arr = np.asarray(im)
        if arr.size == 0:
            raise ImageError(f"{name}: empty image (0 pixels)")
        if not np.isfinite(arr).all():  # a float (F-mode) TIFF with NaN/inf would cast to garbage
            raise ImageError(f"{name}: {mode}-mode image with NaN or inf values")
        if arr.min() < 0 or arr.max() > 65535:
            raise ImageError(f"{name}: {mode}-mode image with values outside 0..65535; save it as 8/16-bit")
        return arr.astype(np.uint16)
    if mode in ("L", "1"):
        return np.asarray(im.convert("L"), dtype=np.uint8).copy()
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


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


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an H x W or H x W x 3 uint8/uint16 image atomically; the format follows the suffix."""
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ImageError(f"{path}: unsupported output format {path.suffix!r}; use one of {', '.join(IMAGE_SUFFIXES)}")
    image = np.asarray(image)
    if image.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"write_image takes uint8/uint16 arrays, got {image.dtype}; use from_unit_float first")
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}.get(path.suffix.lower(), path.suffix[1:].upper())
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format=fmt)
    return path


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
