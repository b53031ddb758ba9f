"""Named presets: which metrics a report holds and which option every metric uses.

A preset only *selects* options of the metric functions (the math lives once in the metric
modules). Three presets ship:

* ``paper`` (default) -- the convention TSJNet's Table 1 most probably used (see
  ``docs/metrics.md``): grey images by BT.601 luma, everything on 0-255, MSE/PSNR/CC/SSIM/VIF
  averaged over the two sources, SSIM with L = 255, Q_CV with alpha = 5, VIF = pixel-domain VIFp
  (Sheikh & Bovik, the paper's reference [28]) averaged over the sources.
* ``vifb`` -- VIFB's MATLAB benchmark, reproducing its published per-image values: every metric
  per RGB channel and averaged, its own PSNR / "RMSE", SSIM summed, MI in nats after min-max
  normalisation, SF over the channels laid side by side.
* ``cdd`` -- the CDDFuse ``Evaluator`` (MMIF-CDDFuse ``utils/Evaluator.py`` with its pinned
  scikit-image 0.19.2): grey by rounded BT.601 luma, MI in nats, AG over M N pixels,
  PSNR with peak max(F), SSIM = scikit-image defaults with data range 2 (what 0.19 used for float
  input), summed, VIF = VIFp summed.

Make your own with :func:`dataclasses.replace`, e.g.
``replace(PRESETS["paper"], name="paper-sum", ssim_combine="sum")``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = ["ALL_METRICS", "METRIC_INFO", "PRESETS", "Preset", "get_preset"]

#: Every metric the module computes, in report order: (key, description, higher_is_better).
_METRIC_TABLE: tuple[tuple[str, str, bool], ...] = (
    ("SSIM", "structural similarity to the sources", True),
    ("PSNR", "peak signal-to-noise ratio (dB)", True),
    ("MSE", "mean squared error to the sources", False),
    ("VIF", "visual information fidelity (pixel-domain VIFp)", True),
    ("CC", "correlation coefficient", True),
    ("Qcv", "Chen-Varshney perceptual distortion", False),
    ("EN", "entropy (bits)", True),
    ("SD", "standard deviation", True),
    ("SF", "spatial frequency", True),
    ("AG", "average gradient", True),
    ("EI", "edge intensity", True),
    ("MI", "mutual information (sum over sources)", True),
    ("CE", "cross entropy to the sources", False),
    ("RMSE", "root mean squared error to the sources", False),
    ("SCD", "sum of correlations of differences", True),
    ("MS_SSIM", "multi-scale SSIM", True),
    ("VIFF", "fusion VIF of Han et al.", True),
    ("Qabf", "edge preservation Q^AB/F", True),
    ("Nabf", "fusion artefacts N^AB/F", False),
    ("Qcb", "Chen-Blum perceptual quality", True),
    ("FMI", "feature mutual information (pixels)", True),
)

ALL_METRICS: tuple[str, ...] = tuple(m[0] for m in _METRIC_TABLE)
#: key -> (description, higher_is_better)
METRIC_INFO: Mapping[str, tuple[str, bool]] = MappingProxyType({k: (d, h) for k, d, h in _METRIC_TABLE})


@dataclass(frozen=True)
class Preset:
    """A named evaluation convention: the default metric set and the option of every metric.

    Attributes (options):
        colour: 'luma' -- RGB inputs become grey by BT.601 luma, metrics run once;
            'per_channel' -- metrics run per RGB channel of the fused image (a grey source is
            reused for every channel) and the channel values are averaged (VIFB).
        luma_round: round the luma to integer grey levels (OpenCV/CDDFuse behaviour).
        hist_binning: how EN / CE histograms turn values into levels: 'round' or 'floor'.
        sf_normalization: SF divides by the number of 'differences' or of 'pixels' (VIFB).
        sf_fold_channels: with 'per_channel', compute SF once on the channels laid side by side
            (M x 3N), as VIFB's SF does.
        ag_denominator: AG divides by (M-1)(N-1) ('interior') or M N ('pixels').
        mi_base: logarithm base of MI (2 = bits, e = nats).
        mi_normalize: min-max rescale each image to [0, 255] and round before MI (VIFB).
        rmse_variant: 'standard' or 'vifb' (Frobenius norm / pixel count).
        psnr_peak: '255' or 'fused_max'; psnr_error: 'mse' or 'vifb_rmse'.
        ssim_window: 'gaussian11' (Wang) or 'uniform7' (scikit-image); ssim_data_range: L;
        ssim_combine / ms_ssim_combine / vif_combine: 'avg' or 'sum' over the two sources.
        vif_undefined: VIFp value when the reference is constant (0/0).
        qcv_alpha, qcv_window: Q_CV saliency exponent and block size.
        fmi_feature, fmi_window: FMI feature ('none' = pixels, 'gradient') and window.
    """

    name: str
    description: str
    metrics: tuple[str, ...]
    colour: Literal["luma", "per_channel"] = "luma"
    luma_round: bool = True
    hist_binning: Literal["round", "floor"] = "round"
    sf_normalization: Literal["differences", "pixels"] = "differences"
    sf_fold_channels: bool = False
    ag_denominator: Literal["interior", "pixels"] = "interior"
    mi_base: float = 2.0
    mi_normalize: bool = False
    rmse_variant: Literal["standard", "vifb"] = "standard"
    psnr_peak: Literal["255", "fused_max"] = "255"
    psnr_error: Literal["mse", "vifb_rmse"] = "mse"
    ssim_window: Literal["gaussian11", "uniform7"] = "gaussian11"
    ssim_data_range: float = 255.0
    ssim_combine: Literal["avg", "sum"] = "avg"
    ms_ssim_combine: Literal["avg", "sum"] = "avg"
    vif_combine: Literal["avg", "sum"] = "avg"
    vif_undefined: float = math.nan
    qcv_alpha: float = 5.0
    qcv_window: int = 16
    fmi_feature: Literal["none", "gradient"] = "none"
    fmi_window: int = 3

    def __post_init__(self) -> None:
        unknown = [m for m in self.metrics if m not in METRIC_INFO]
        if unknown:
            raise ValueError(f"preset {self.name!r} lists unknown metrics {unknown}; known: {', '.join(ALL_METRICS)}")
        if self.colour not in ("luma", "per_channel"):
            raise ValueError(f"preset {self.name!r}: colour must be 'luma' or 'per_channel', got {self.colour!r}")


PAPER = Preset(
    name="paper",
    description=(
        "TSJNet Table 1 convention (most probable): grey BT.601 luma, 0-255; MSE/PSNR/CC/SSIM/VIF averaged "
        "over the two sources; SSIM L=255; VIF = VIFp (Sheikh & Bovik); Qcv alpha=5"
    ),
    metrics=ALL_METRICS,
)

VIFB = Preset(
    name="vifb",
    description=(
        "VIFB benchmark conventions: per RGB channel then averaged; EN/CE floor binning; MI in nats after "
        "min-max normalisation; VIFB PSNR and 'RMSE'; SSIM summed (L=255); SF over channels side by side; Qcv alpha=5"
    ),
    metrics=("CE", "EN", "MI", "PSNR", "AG", "EI", "Qabf", "SD", "SF", "RMSE", "SSIM", "Qcb", "Qcv"),
    colour="per_channel",
    luma_round=True,
    hist_binning="floor",
    sf_normalization="pixels",
    sf_fold_channels=True,
    mi_base=math.e,
    mi_normalize=True,
    rmse_variant="vifb",
    psnr_error="vifb_rmse",
    ssim_combine="sum",
)

CDD = Preset(
    name="cdd",
    description=(
        "CDDFuse Evaluator conventions: grey by rounded BT.601 luma; MI in nats; AG over MN; PSNR peak max(F); "
        "SSIM = scikit-image 0.19 defaults (7x7 uniform, data range 2) summed; VIF = VIFp summed"
    ),
    metrics=("EN", "SD", "SF", "AG", "MI", "MSE", "CC", "PSNR", "SCD", "VIF", "Qabf", "SSIM"),
    ag_denominator="pixels",
    mi_base=math.e,
    psnr_peak="fused_max",
    ssim_window="uniform7",
    ssim_data_range=2.0,
    ssim_combine="sum",
    vif_combine="sum",
    vif_undefined=1.0,
)

#: The shipped presets by name (read-only).
PRESETS: Mapping[str, Preset] = MappingProxyType({p.name: p for p in (PAPER, VIFB, CDD)})


def get_preset(preset: str | Preset) -> Preset:
    """A :class:`Preset` from its name (case-insensitive) or the preset itself."""
    if isinstance(preset, Preset):
        return preset
    if isinstance(preset, str) and preset.lower() in PRESETS:
        return PRESETS[preset.lower()]
    raise ValueError(f"unknown metrics preset {preset!r}; choose one of: {', '.join(PRESETS)}")
