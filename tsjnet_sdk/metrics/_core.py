"""Shared building blocks of the metrics: input checks, scale and colour conversion, filters.

Every metric in this package works on **float64 grey images on the 0-255 scale** (H x W). The
helpers here are the only place that turns user arrays into that form and the only place that
implements the filters several metrics share (MATLAB-style Gaussian windows, 'valid'/'same'
correlation, Sobel responses, min-max normalisation), so each piece of arithmetic exists once.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

__all__ = [
    "as_gray255",
    "block_reduce_sum",
    "cached",
    "check_gray",
    "check_same_shape",
    "check_triplet",
    "combine_sources",
    "filter_frequency",
    "filter_valid",
    "freq_radius",
    "gaussian_window_1d",
    "minmax_rescale_255",
    "rgb_to_luma_bt601",
    "shared_intermediates",
    "sobel_xy",
    "to_scale255",
    "trusted_inputs",
]

T = TypeVar("T")

#: BT.601 luma weights (R, G, B), as used by OpenCV ``cvtColor(..., BGR2GRAY)`` and JPEG's Y.
BT601_WEIGHTS = (0.299, 0.587, 0.114)

#: Tolerance for values just outside [0, 255] (float round-off in the caller's own scaling).
_RANGE_TOL = 1e-6


def rgb_to_luma_bt601(rgb: np.ndarray, *, round_to_int: bool = False) -> np.ndarray:
    """BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B of an RGB image, on the image's own scale.

    Args:
        rgb: H x W x 3 array in RGB channel order (any real dtype, any scale).
        round_to_int: round Y to the nearest integer level (half to even), as the CDDFuse
            evaluator does after OpenCV's float ``BGR2GRAY``; use it for 0-255 data.

    Returns:
        H x W float64 array. MATLAB's ``rgb2gray`` uses 0.298936/0.587043/0.114021 and rounds
        half away from zero, so it can differ from this by one grey level on a few pixels.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(
            f"rgb_to_luma_bt601 expects an H x W x 3 RGB array, got shape {rgb.shape}; "
            "pass grey images as H x W and drop an alpha channel first"
        )
    if rgb.dtype.kind == "f" and rgb.dtype != np.float64:
        rgb = rgb.astype(np.float64)
    # a Python float times an integer or float64 array is computed in float64, without a copy first
    y = BT601_WEIGHTS[0] * rgb[..., 0]
    y = y.astype(np.float64, copy=False)
    y += BT601_WEIGHTS[1] * rgb[..., 1]
    y += BT601_WEIGHTS[2] * rgb[..., 2]
    return np.rint(y, out=y) if round_to_int else y


def to_scale255(image: np.ndarray, name: str = "image", *, float_range: float = 255.0) -> np.ndarray:
    """Validate a user image and return it as float64 on the 0-255 scale, shape kept.

    Accepted: H x W or H x W x 3 arrays of dtype uint8 (0-255 as is), uint16 (0-65535, scaled by
    255/65535), bool is refused, signed integers must lie in 0-255, floats must lie in
    [0, ``float_range``] (default 255; pass ``float_range=1.0`` for images in [0, 1]).

    Raises:
        ValueError: wrong number of dimensions or channels, NaN/inf, or values outside the range.
    """
    arr = np.asarray(image)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} has dtype {arr.dtype}; pass uint8, uint16 or a float array")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(
            f"{name} has shape {arr.shape}; expected H x W (grey) or H x W x 3 (RGB). "
            "Drop an alpha channel (image[..., :3]) or convert other layouts first"
        )
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ValueError(f"{name} has shape {arr.shape}; images must be at least 2 x 2 pixels")
    if arr.dtype == np.uint8:
        return arr.astype(np.float64)
    if arr.dtype == np.uint16:
        return arr.astype(np.float64) * (255.0 / 65535.0)
    if np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise ValueError(
                f"{name} is {arr.dtype} with values in [{lo}, {hi}]; integer images other than uint16 "
                "must hold 0-255 grey levels (cast 16-bit data to uint16)"
            )
        return arr.astype(np.float64)
    if float_range <= 0 or not np.isfinite(float_range):
        raise ValueError(f"float_range must be a positive number, got {float_range!r}")
    out = arr.astype(np.float64)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} contains NaN or inf values; clean the image before computing metrics")
    lo, hi = float(out.min()), float(out.max())
    if lo < -_RANGE_TOL * float_range or hi > float_range * (1 + _RANGE_TOL):
        hint = (
            "pass float_range=1.0 for images in [0, 1]"
            if float_range != 1.0
            else "pass float_range=255.0 for images on the 0-255 scale"
        )
        raise ValueError(
            f"{name} is float with values in [{lo:.6g}, {hi:.6g}], outside the declared range "
            f"[0, {float_range:g}]; {hint}, or clip the image"
        )
    out = np.clip(out, 0.0, float_range)
    if float_range != 255.0:
        out *= 255.0 / float_range
    return out


def as_gray255(image: np.ndarray, *, round_luma: bool = False) -> np.ndarray:
    """A 0-255 float64 image (H x W or H x W x 3) -> H x W grey (BT.601 luma for RGB)."""
    if image.ndim == 2:
        return image
    return rgb_to_luma_bt601(image, round_to_int=round_luma)


_TRUSTED: contextvars.ContextVar[bool] = contextvars.ContextVar("tsjnet_metrics_trusted", default=False)


@contextlib.contextmanager
def trusted_inputs() -> Iterator[None]:
    """Inside this block the value checks of :func:`check_gray` (finite, 0-255) are skipped.

    Used by :func:`tsjnet_sdk.metrics.evaluate`, which validates each image once before running
    the whole metric set on it; shape checks still run.
    """
    token = _TRUSTED.set(True)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


class _CacheLayer:
    """One level of :func:`shared_intermediates`: entries, and the arrays this level owns (its
    pinned inputs and every array it produced), held so that their ``id`` cannot be reused."""

    def __init__(self, pinned: Sequence[np.ndarray]) -> None:
        self.entries: dict[tuple, tuple[tuple[np.ndarray, ...], object]] = {}
        self.owned: dict[int, np.ndarray] = {id(a): a for a in pinned}

    def owns(self, arrays: tuple[np.ndarray, ...]) -> bool:
        return all(self.owned.get(id(a)) is a for a in arrays)

    def adopt(self, value: object) -> None:
        if isinstance(value, np.ndarray):
            self.owned[id(value)] = value
        elif isinstance(value, (tuple, list)):
            for v in value:
                self.adopt(v)


_CACHE: contextvars.ContextVar[tuple[_CacheLayer, ...]] = contextvars.ContextVar("tsjnet_metrics_cache", default=())


@contextlib.contextmanager
def shared_intermediates(pin: Sequence[np.ndarray] = ()) -> Iterator[None]:
    """Inside this block, intermediate results that several metrics share (VIF pyramids, SSIM
    moments, Sobel responses, min-max rescaled images, ...) are computed once per input array.

    Blocks nest. An intermediate is kept at the outermost level that owns all the arrays it was
    computed from: the ``pin`` arrays of that level and whatever was derived from them there. So
    ``with shared_intermediates(pin=(ir, vis)):`` around several :func:`evaluate` calls with the
    same ``ir`` / ``vis`` objects computes the source-side work once, while everything that
    depends on a fused image is dropped when its own ``evaluate`` call returns.

    Entries are keyed on array identity: the arrays must not be modified inside the block.
    """
    layers = _CACHE.get()
    token = _CACHE.set((*layers, _CacheLayer(pin)))
    try:
        yield
    finally:
        _CACHE.reset(token)


def cached(tag: str, arrays: tuple[np.ndarray, ...], params: tuple, compute: Callable[[], T]) -> T:
    """``compute()``, memoised per (``tag``, identity of ``arrays``, ``params``) while
    :func:`shared_intermediates` is active. Callers must not modify the returned arrays."""
    layers = _CACHE.get()
    if not layers:
        return compute()
    key = (tag, tuple(id(a) for a in arrays), params)
    for layer in reversed(layers):
        hit = layer.entries.get(key)
        if hit is not None and all(x is y for x, y in zip(hit[0], arrays)):
            return hit[1]  # type: ignore[return-value]
    value = compute()
    target = next((layer for layer in layers if layer.owns(arrays)), layers[-1])
    target.entries[key] = (arrays, value)
    target.adopt(value)
    return value


def check_gray(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Check one grey input of a metric function and return it as float64.

    Metric functions take H x W arrays on the 0-255 scale; anything else is a usage error
    (colour images go through :func:`tsjnet_sdk.metrics.evaluate`, which applies the preset's
    colour handling).
    """
    arr = np.asarray(image)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} has shape {arr.shape}; metric functions take one H x W grey image on the 0-255 "
            "scale (use tsjnet_sdk.metrics.evaluate for RGB or for other scales)"
        )
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ValueError(f"{name} has shape {arr.shape}; images must be at least 2 x 2 pixels")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} has dtype {arr.dtype}; pass a real-valued array on the 0-255 scale")
    out = arr.astype(np.float64, copy=False)
    if _TRUSTED.get():
        return out
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} contains NaN or inf values; clean the image before computing metrics")
    lo, hi = float(out.min()), float(out.max())
    if lo < -_RANGE_TOL * 255 or hi > 255 * (1 + _RANGE_TOL):
        raise ValueError(
            f"{name} has values in [{lo:.6g}, {hi:.6g}]; metric functions expect the 0-255 scale "
            "(multiply [0, 1] images by 255, or use evaluate(..., float_range=1.0))"
        )
    return out


def check_same_shape(images: Sequence[np.ndarray], names: Sequence[str]) -> None:
    """Raise a ValueError naming the images when their shapes differ."""
    shapes = [np.shape(im) for im in images]
    if len(set(shapes)) > 1:
        desc = ", ".join(f"{n} {s}" for n, s in zip(names, shapes))
        raise ValueError(
            f"image shapes differ ({desc}); the sources and the fused image must have the same height "
            "and width (resize or crop them to match first)"
        )


def gaussian_window_1d(size: int, sigma: float) -> np.ndarray:
    """1-D factor of MATLAB ``fspecial('gaussian', size, sigma)``, normalised to sum 1.

    The 2-D window is ``np.outer(w, w)``. ``fspecial`` zeroes taps below ``eps * max``; none of the
    windows used here (size <= 17, sigma = size/5 or 1.5) has such taps, which is checked.
    """
    half = (size - 1) / 2.0
    x = np.arange(size, dtype=np.float64) - half
    w = np.exp(-(x * x) / (2.0 * sigma * sigma))
    corner = w[0] * w[0] / (w[size // 2] * w[size // 2])
    if corner < np.finfo(np.float64).eps:  # pragma: no cover - not reached with the windows used
        raise ValueError(f"Gaussian window {size} / sigma {sigma} is not separable after fspecial truncation")
    return w / w.sum()


def filter_valid(image: np.ndarray, w1d: np.ndarray) -> np.ndarray:
    """Correlate with the separable window ``outer(w1d, w1d)``, keeping only the 'valid' part.

    Equals MATLAB ``filter2(outer(w1d, w1d), image, 'valid')``: output (H - n + 1) x (W - n + 1).
    """
    n = w1d.size
    h, w = image.shape
    if h < n or w < n:
        raise ValueError(f"image of shape {image.shape} is smaller than the {n} x {n} window")
    c = n // 2
    tmp = ndimage.correlate1d(image, w1d, axis=0, mode="constant")[c : h - c, :]
    return ndimage.correlate1d(tmp, w1d, axis=1, mode="constant")[:, c : w - c]


_PAD_MODES = {"constant": "constant", "nearest": "edge", "mirror": "reflect"}


def sobel_xy(image: np.ndarray, mode: str = "constant") -> tuple[np.ndarray, np.ndarray]:
    """Correlation of ``image`` with :data:`SOBEL_X` and :data:`SOBEL_Y` (output the image's size).

    ``mode``: 'constant' (zero padding, MATLAB ``filter2``/``conv2`` 'same'), 'nearest'
    (``imfilter(..., 'replicate')``) or 'mirror' (reflection without repeating the edge pixel).
    Separable and exact for integer-valued images.
    """
    p = np.pad(image, 1, mode=_PAD_MODES[mode])
    sm = p[1:-1] * 2.0
    sm += p[:-2]
    sm += p[2:]
    sx = sm[:, 2:] - sm[:, :-2]
    sm = p[:, 1:-1] * 2.0
    sm += p[:, :-2]
    sm += p[:, 2:]
    sy = sm[2:] - sm[:-2]
    return sx, sy


#: Sobel kernels as correlation templates: SOBEL_X responds to left-to-right increase,
#: SOBEL_Y to top-to-bottom increase.
SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
SOBEL_Y = SOBEL_X.T.copy()


def minmax_rescale_255(image: np.ndarray, *, zero_if_constant: bool = True) -> np.ndarray:
    """Min-max rescale to [0, 255] and round half away from zero (Z. Liu's ``normalize1``).

    A constant image has no defined rescaling: it becomes all zeros (MATLAB's code would produce
    NaN there, except for an all-zero image which it keeps). Do not modify the result in place
    (it may be shared, see :func:`shared_intermediates`).
    """
    return cached("minmax255", (image,), (zero_if_constant,), lambda: _minmax_rescale_255(image, zero_if_constant))


def _minmax_rescale_255(image: np.ndarray, zero_if_constant: bool) -> np.ndarray:
    lo, hi = float(image.min()), float(image.max())
    if hi == lo:
        return np.zeros_like(image, dtype=np.float64) if zero_if_constant else image.astype(np.float64)
    out = (image - lo) / (hi - lo)
    out *= 255.0
    out += 0.5  # values are >= 0, so floor(x + 0.5) is MATLAB's round
    return np.floor(out, out=out)


def freq_radius(shape: tuple[int, int], scale_rows: float, scale_cols: float) -> np.ndarray:
    """Radial frequency of MATLAB ``freqspace([M, N], 'meshgrid')`` scaled per axis, laid out for
    :func:`filter_frequency` (the unshifted half spectrum of ``rfft2``).

    ``freqspace`` gives normalised frequencies ``((0:n-1) - floor(n/2)) * 2/n`` in the centred
    (fftshift) layout; un-shifted these are ``2 * fftfreq(n)``. The columns' frequency is multiplied
    by ``scale_cols`` and the rows' by ``scale_rows``. Returns an M x (N//2 + 1) array
    ``sqrt(u^2 + v^2)``. The grid is symmetric (r(k) = r(-k)), so the half spectrum is exact.
    """
    m, n = shape
    fy = 2.0 * np.fft.fftfreq(m) * scale_rows
    fx = 2.0 * np.fft.rfftfreq(n) * scale_cols
    return np.sqrt(fx[None, :] ** 2 + fy[:, None] ** 2)


def filter_frequency(image: np.ndarray, response: np.ndarray) -> np.ndarray:
    """Filter ``image`` in the frequency domain by a real, symmetric ``response`` from
    :func:`freq_radius` (M x (N//2 + 1)).

    Equals MATLAB ``real(ifft2(ifftshift(fftshift(fft2(x)) .* H)))`` for the centred response H:
    the response is symmetric, so the product is Hermitian and the inverse transform real.
    """
    return sfft.irfft2(sfft.rfft2(image) * response, s=image.shape)


def block_reduce_sum(values: np.ndarray, block: int) -> np.ndarray:
    """Sum over non-overlapping ``block`` x ``block`` tiles, zero-padding partial tiles at the
    bottom/right (MATLAB ``blkproc(x, [b b], @(t) sum(t(:)))``)."""
    h, w = values.shape
    hb, wb = -(-h // block), -(-w // block)
    padded = np.zeros((hb * block, wb * block), dtype=np.float64)
    padded[:h, :w] = values
    return padded.reshape(hb, block, wb, block).sum(axis=(1, 3))


def check_triplet(ir: np.ndarray, vis: np.ndarray, fused: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check the (IR, VIS, fused) inputs of a fusion metric: grey, 0-255, finite, same shape."""
    ir = check_gray(ir, "ir")
    vis = check_gray(vis, "vis")
    fused = check_gray(fused, "fused")
    check_same_shape([ir, vis, fused], ["ir", "vis", "fused"])
    return ir, vis, fused


def combine_sources(a: float, b: float, how: str) -> float:
    """Combine the per-source values of a metric: 'avg' -> (a + b) / 2, 'sum' -> a + b."""
    if how == "avg":
        return (a + b) / 2.0
    if how == "sum":
        return a + b
    raise ValueError(f"combine must be 'avg' or 'sum', got {how!r}")
