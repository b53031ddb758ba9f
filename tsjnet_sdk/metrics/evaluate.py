"""The single entry point :func:`evaluate`: validate three images, apply the preset's colour
handling and run its metric set."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from tsjnet_sdk.metrics import basic, gradient, information, perceptual, structural, vif
from tsjnet_sdk.metrics._core import (
    as_gray255,
    cached,
    check_same_shape,
    shared_intermediates,
    to_scale255,
    trusted_inputs,
)
from tsjnet_sdk.metrics.presets import ALL_METRICS, METRIC_INFO, Preset, get_preset

__all__ = ["MetricReport", "evaluate", "evaluate_many", "higher_is_better", "resolve_metrics"]

_Fn = Callable[[np.ndarray, np.ndarray, np.ndarray, Preset], float]

#: metric key -> function of (ir, vis, fused, preset) on grey 0-255 images. Options come from the
#: preset only; the math is in the metric modules.
_DISPATCH: dict[str, _Fn] = {
    "EN": lambda a, b, f, p: information.entropy(f, binning=p.hist_binning),
    "CE": lambda a, b, f, p: information.cross_entropy(a, b, f, binning=p.hist_binning),
    "MI": lambda a, b, f, p: information.mutual_information(a, b, f, base=p.mi_base, normalize=p.mi_normalize, binning="round"),
    "FMI": lambda a, b, f, p: information.fmi(a, b, f, feature=p.fmi_feature, window=p.fmi_window),
    "SD": lambda a, b, f, p: basic.standard_deviation(f),
    "SF": lambda a, b, f, p: basic.spatial_frequency(f, normalization=p.sf_normalization),
    "AG": lambda a, b, f, p: basic.average_gradient(f, denominator=p.ag_denominator),
    "EI": lambda a, b, f, p: basic.edge_intensity(f),
    "MSE": lambda a, b, f, p: basic.mse(a, b, f),
    "RMSE": lambda a, b, f, p: basic.rmse(a, b, f, variant=p.rmse_variant),
    "PSNR": lambda a, b, f, p: basic.psnr(a, b, f, peak=p.psnr_peak, error=p.psnr_error),
    "CC": lambda a, b, f, p: basic.correlation_coefficient(a, b, f),
    "SCD": lambda a, b, f, p: basic.scd(a, b, f),
    "SSIM": lambda a, b, f, p: structural.ssim(
        a, b, f, window=p.ssim_window, data_range=p.ssim_data_range, combine=p.ssim_combine
    ),
    "MS_SSIM": lambda a, b, f, p: structural.ms_ssim(a, b, f, combine=p.ms_ssim_combine),
    "VIF": lambda a, b, f, p: vif.vif(a, b, f, combine=p.vif_combine, undefined=p.vif_undefined),
    "VIFF": lambda a, b, f, p: vif.viff_han(a, b, f),
    "Qabf": lambda a, b, f, p: gradient.qabf(a, b, f),
    "Nabf": lambda a, b, f, p: gradient.nabf(a, b, f),
    "Qcv": lambda a, b, f, p: perceptual.qcv(a, b, f, alpha=p.qcv_alpha, window=p.qcv_window),
    "Qcb": lambda a, b, f, p: perceptual.qcb(a, b, f),
}
assert set(_DISPATCH) == set(ALL_METRICS)

#: smallest image side each metric accepts (larger than 2 only for multi-scale / windowed ones)
_MIN_SIZE: dict[str, Callable[[Preset], int]] = {
    "SSIM": lambda p: 11 if p.ssim_window == "gaussian11" else 7,
    "MS_SSIM": lambda p: structural.ms_ssim_min_size(),
    "VIF": lambda p: vif.vif_min_size(),
    "VIFF": lambda p: vif.vif_min_size(),
    "FMI": lambda p: p.fmi_window,
}

_LOWER = {m.lower(): m for m in ALL_METRICS}
_ALIASES = {"MS-SSIM": "MS_SSIM", "MSSSIM": "MS_SSIM", "QCV": "Qcv", "CV": "Qcv", "VIFP": "VIF"}


class MetricReport(dict):
    """Metric values by key (``dict[str, float]``) plus the name of the preset that produced
    them (``report.preset``); its repr names the preset."""

    def __init__(self, values: dict[str, float], preset: str) -> None:
        super().__init__(values)
        self.preset = preset

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v:.6g}" for k, v in self.items())
        return f"MetricReport(preset={self.preset!r}, {inner})"


def resolve_metrics(names: str | Iterable[str] | None, preset: Preset) -> tuple[str, ...]:
    """Metric keys from user input: None -> the preset's set; a comma-separated string or an
    iterable of names (case-insensitive; 'MS-SSIM' and 'CV' accepted)."""
    if names is None:
        return preset.metrics
    if isinstance(names, str):
        names = [n for n in names.split(",")]
    out: list[str] = []
    for raw in names:
        n = raw.strip()
        if not n:
            continue
        key = _ALIASES.get(n.upper(), _LOWER.get(n.lower()))
        if key is None:
            raise ValueError(f"unknown metric {raw!r}; known metrics: {', '.join(ALL_METRICS)}")
        if key not in out:
            out.append(key)
    if not out:
        raise ValueError(f"no metric selected; choose from: {', '.join(ALL_METRICS)}")
    return tuple(out)


def _channels(img: np.ndarray) -> list[np.ndarray]:
    return cached("channels", (img,), (), lambda: [np.ascontiguousarray(img[..., k]) for k in range(img.shape[2])])


def _scale255(img: object, name: str, float_range: float) -> np.ndarray:
    if not isinstance(img, np.ndarray):
        img = np.asarray(img)
    return cached("scale255", (img,), (name, float_range), lambda: to_scale255(img, name, float_range=float_range))


def _gray(img: np.ndarray, round_luma: bool) -> np.ndarray:
    return cached("gray", (img,), (round_luma,), lambda: as_gray255(img, round_luma=round_luma))


def evaluate(
    ir: np.ndarray,
    vis: np.ndarray,
    fused: np.ndarray,
    preset: str | Preset = "paper",
    *,
    metrics: str | Sequence[str] | None = None,
    float_range: float = 255.0,
) -> MetricReport:
    """Compute a preset's fusion-quality metrics for one (IR, visible, fused) triple.

    Args:
        ir, vis, fused: H x W (grey) or H x W x 3 (RGB) arrays of the same height and width.
            uint8 is read as 0-255, uint16 as 0-65535 (rescaled to 0-255), float as
            [0, ``float_range``] (default 0-255; pass ``float_range=1.0`` for [0, 1] floats).
        preset: 'paper' (default), 'vifb', 'cdd' or a :class:`~tsjnet_sdk.metrics.Preset`.
        metrics: subset of metric keys (list or comma-separated string); default the preset's set.
        float_range: the range float inputs are declared to be on.

    Returns:
        :class:`MetricReport`: ``{metric: value}`` in the requested order, ``.preset`` = name.
        Undefined values (e.g. CC of a constant image) are NaN; a metric whose minimum image size
        is not met (MS-SSIM >= 161 px, VIF >= 41 px) is NaN with a RuntimeWarning.

    Raises:
        ValueError: unknown preset/metric, mismatched sizes, wrong channel count, NaN/inf, or
            values outside the declared range.
    """
    p = get_preset(preset)
    keys = resolve_metrics(metrics, p)
    with trusted_inputs(), shared_intermediates():
        arrays = [_scale255(im, name, float_range) for im, name in ((ir, "ir"), (vis, "vis"), (fused, "fused"))]
        check_same_shape([a.shape[:2] for a in arrays], ["ir", "vis", "fused"])
        a_ir, a_vis, a_f = arrays
        # colour handling -> list of (ir, vis, fused) grey triples whose metric values are averaged.
        # per_channel needs an RGB fused image; with a grey fused image every input becomes luma.
        if p.colour == "per_channel" and a_f.ndim == 3:
            fch = _channels(a_f)
            ich = _channels(a_ir) if a_ir.ndim == 3 else [a_ir] * 3
            vch = _channels(a_vis) if a_vis.ndim == 3 else [a_vis] * 3
            triples = list(zip(ich, vch, fch))
        else:
            triples = [tuple(_gray(a, p.luma_round) for a in arrays)]

        h, w = a_f.shape[:2]
        values: dict[str, float] = {}
        for key in keys:
            need = _MIN_SIZE.get(key, lambda _p: 2)(p)
            if min(h, w) < need:
                warnings.warn(
                    f"{key} needs images of at least {need} x {need} pixels, got {h} x {w}; reported as NaN",
                    RuntimeWarning,
                    stacklevel=2,
                )
                values[key] = math.nan
                continue
            fn = _DISPATCH[key]
            if key == "SF" and p.sf_fold_channels and len(triples) > 1:
                folded = np.concatenate([t[2] for t in triples], axis=1)
                values[key] = basic.spatial_frequency(folded, normalization=p.sf_normalization)
            else:
                values[key] = float(np.mean([fn(t[0], t[1], t[2], p) for t in triples]))
    return MetricReport(values, p.name)


def evaluate_many(
    ir: np.ndarray,
    vis: np.ndarray,
    fused_images: Iterable[np.ndarray],
    preset: str | Preset = "paper",
    *,
    metrics: str | Sequence[str] | None = None,
    float_range: float = 255.0,
) -> list[MetricReport]:
    """:func:`evaluate` for several fused images of the same (IR, visible) pair -- e.g. the outputs
    of several methods -- computing the source-side work (Sobel responses, SSIM moments, VIF
    pyramids, normalisations, ...) once. Results are identical to separate :func:`evaluate` calls.
    """
    ir = np.asarray(ir)
    vis = np.asarray(vis)
    with shared_intermediates(pin=(ir, vis)):
        return [evaluate(ir, vis, f, preset, metrics=metrics, float_range=float_range) for f in fused_images]


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` means a better fusion."""
    return METRIC_INFO[metric][1]
