"""Fusion-quality metrics for infrared + visible image fusion (numpy/scipy only, no torch).

Every metric is written once, on float64 grey images on the 0-255 scale, with explicit options
where the field's toolboxes disagree; named presets fix those options:

* ``paper`` (default): the convention TSJNet's Table 1 most probably used;
* ``vifb``: VIFB's conventions (validated against its 546 published per-image values);
* ``cdd``: the CDDFuse ``Evaluator``'s conventions.

Quick use::

    from tsjnet_sdk.metrics import evaluate, evaluate_folders, PRESETS
    report = evaluate(ir, vis, fused)             # MetricReport: {"SSIM": ..., ...}, .preset == "paper"
    report = evaluate(ir, vis, fused, "vifb", metrics=["Qabf", "Qcv"])
    folder = evaluate_folders("ir/", "vi/", "fused/", preset="cdd")
    folder.write_csv("metrics_cdd.csv")

Individual metric functions (``ssim``, ``qcv``, ...) take H x W float arrays on 0-255 and
keyword options; ``evaluate`` handles dtype, scale and colour. Definitions, the presets table and
the validation results: ``docs/metrics.md``.
"""

from __future__ import annotations

from tsjnet_sdk.metrics._core import rgb_to_luma_bt601, to_scale255
from tsjnet_sdk.metrics.basic import (
    average_gradient,
    correlation_coefficient,
    edge_intensity,
    mse,
    psnr,
    rmse,
    scd,
    spatial_frequency,
    standard_deviation,
)
from tsjnet_sdk.metrics.evaluate import MetricReport, evaluate, evaluate_many, higher_is_better, resolve_metrics
from tsjnet_sdk.metrics.folder import FolderReport, evaluate_folders, match_triples
from tsjnet_sdk.metrics.gradient import nabf, qabf
from tsjnet_sdk.metrics.information import cross_entropy, entropy, fmi, mutual_information, mutual_information_pair
from tsjnet_sdk.metrics.perceptual import qcb, qcv
from tsjnet_sdk.metrics.presets import ALL_METRICS, METRIC_INFO, PRESETS, Preset, get_preset
from tsjnet_sdk.metrics.structural import ms_ssim, ms_ssim_pair, ssim, ssim_pair
from tsjnet_sdk.metrics.vif import vif, viff_han, vifp_pair

__all__ = [
    "ALL_METRICS",
    "METRIC_INFO",
    "PRESETS",
    "FolderReport",
    "MetricReport",
    "Preset",
    "average_gradient",
    "correlation_coefficient",
    "cross_entropy",
    "edge_intensity",
    "entropy",
    "evaluate",
    "evaluate_folders",
    "evaluate_many",
    "fmi",
    "get_preset",
    "higher_is_better",
    "match_triples",
    "ms_ssim",
    "ms_ssim_pair",
    "mse",
    "mutual_information",
    "mutual_information_pair",
    "nabf",
    "psnr",
    "qabf",
    "qcb",
    "qcv",
    "resolve_metrics",
    "rgb_to_luma_bt601",
    "rmse",
    "scd",
    "spatial_frequency",
    "ssim",
    "ssim_pair",
    "standard_deviation",
    "to_scale255",
    "vif",
    "vifp_pair",
    "viff_han",
]
