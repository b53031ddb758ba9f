"""Metrics module: input checks, scale and colour conversion, presets, evaluate() plumbing."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from dataclasses import FrozenInstanceError, replace

import numpy as np
import pytest

from tsjnet_sdk import metrics as M
from tsjnet_sdk.metrics._core import to_scale255


def _textured(seed: int = 0, shape: tuple[int, int] = (64, 80)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    base = 120 + 60 * np.sin(x / 5.0) * np.cos(y / 7.0) + rng.normal(0, 10, shape)
    return np.clip(np.round(base), 0, 255).astype(np.uint8)


def test_import_does_not_pull_torch():
    code = "import tsjnet_sdk.metrics, tsjnet_sdk.metrics.cli, sys; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- scale and dtype handling


def test_uint8_uint16_and_float_scales_agree():
    g = _textured()
    ref = to_scale255(g)
    assert ref.dtype == np.float64 and np.array_equal(ref, g.astype(np.float64))
    np.testing.assert_allclose(to_scale255(g.astype(np.uint16) * 257), ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(to_scale255(g / 255.0, float_range=1.0), ref, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(to_scale255(g.astype(np.float32)), ref)
    a = M.evaluate(g, g, g, metrics="EN,SSIM,Qcv")
    b = M.evaluate(g / 255.0, g / 255.0, g / 255.0, metrics="EN,SSIM,Qcv", float_range=1.0)
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.full((8, 8), np.nan), "NaN or inf"),
        (np.full((8, 8), np.inf), "NaN or inf"),
        (np.full((8, 8), 300.0), "outside the declared range"),
        (np.full((8, 8), -1.0), "outside the declared range"),
        (np.zeros((8, 8, 4), np.uint8), "alpha"),
        (np.zeros((8, 8, 2), np.uint8), "H x W x 3"),
        (np.zeros(8, np.uint8), "expected H x W"),
        (np.zeros((8, 8), bool), "dtype bool"),
        (np.full((8, 8), 300, np.int32), "0-255 grey levels"),
        (np.zeros((1, 8), np.uint8), "at least 2 x 2"),
    ],
)
def test_bad_images_raise_clear_errors(image, match):
    with pytest.raises(ValueError, match=match):
        to_scale255(image, "fused")
    good = np.zeros(np.shape(image)[:2] if np.ndim(image) >= 2 else (8, 8), np.uint8)
    if np.ndim(image) >= 2 and min(np.shape(image)[:2]) >= 2:
        with pytest.raises(ValueError, match="fused"):
            M.evaluate(good, good, image, metrics=["EN"])


def test_float_range_hint_in_message():
    with pytest.raises(ValueError, match="float_range=1.0"):
        to_scale255(np.full((4, 4), 256.0))
    with pytest.raises(ValueError, match="float_range=255.0"):
        to_scale255(np.full((4, 4), 2.0), float_range=1.0)


def test_mismatched_shapes_raise():
    a = np.zeros((32, 32), np.uint8)
    b = np.zeros((32, 31), np.uint8)
    with pytest.raises(ValueError, match=r"shapes differ.*vis \(32, 31"):
        M.evaluate(a, b, a)
    with pytest.raises(ValueError, match="shapes differ"):
        M.ssim(a.astype(float), a.astype(float), b.astype(float))


def test_metric_functions_reject_colour_nan_and_range():
    g = _textured().astype(np.float64)
    with pytest.raises(ValueError, match="one H x W grey image"):
        M.entropy(np.stack([g, g, g], axis=-1))
    bad = g.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        M.qabf(g, g, bad)
    with pytest.raises(ValueError, match="0-255 scale"):
        M.mse(g, g, g * 2.0)


# ---------------------------------------------------------------- colour


def test_rgb_to_luma_bt601():
    rgb = np.zeros((2, 2, 3))
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 255, 0)
    rgb[1, 0] = (0, 0, 255)
    rgb[1, 1] = (10, 20, 30)
    y = M.rgb_to_luma_bt601(rgb)
    np.testing.assert_allclose(y, [[76.245, 149.685], [29.07, 0.299 * 10 + 0.587 * 20 + 0.114 * 30]])
    np.testing.assert_array_equal(M.rgb_to_luma_bt601(rgb, round_to_int=True), np.rint(y))
    with pytest.raises(ValueError, match="H x W x 3"):
        M.rgb_to_luma_bt601(np.zeros((4, 4)))


def test_luma_presets_reduce_rgb_to_grey():
    rng = np.random.default_rng(3)
    rgbs = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(3)]
    greys = [M.rgb_to_luma_bt601(x, round_to_int=True) for x in rgbs]
    for preset in ("paper", "cdd"):
        a = M.evaluate(*rgbs, preset, metrics="EN,SD,CC,SSIM,Qabf,Qcv,MI")
        b = M.evaluate(*greys, preset, metrics="EN,SD,CC,SSIM,Qabf,Qcv,MI")
        assert a == b


def test_vifb_per_channel_and_grey_ir_reuse():
    g = [_textured(s) for s in range(3)]
    rgb = [np.stack([x, x, x], axis=-1) for x in g]
    keys = [k for k in M.PRESETS["vifb"].metrics if k != "SF"]
    grey = M.evaluate(*g, "vifb", metrics=keys)
    col = M.evaluate(*rgb, "vifb", metrics=keys)
    ir_grey = M.evaluate(g[0], rgb[1], rgb[2], "vifb", metrics=keys)
    for k in keys:
        assert col[k] == pytest.approx(grey[k], rel=1e-12, abs=1e-12), k
        assert ir_grey[k] == pytest.approx(grey[k], rel=1e-12, abs=1e-12), k
    # VIFB's SF runs once on the channels laid side by side
    sf = M.evaluate(*rgb, "vifb", metrics=["SF"])["SF"]
    folded = np.concatenate([g[2]] * 3, axis=1).astype(float)
    assert sf == pytest.approx(M.spatial_frequency(folded, normalization="pixels"), rel=1e-12)
    # a per-channel mean, not a metric of the luma
    rgb_f = np.stack([g[2], g[1], g[0]], axis=-1)
    en = M.evaluate(rgb[0], rgb[1], rgb_f, "vifb", metrics=["EN"])["EN"]
    assert en == pytest.approx(np.mean([M.entropy(c.astype(float), binning="floor") for c in g]), rel=1e-12)


# ---------------------------------------------------------------- presets and evaluate()


def test_presets_are_frozen_and_named():
    assert set(M.PRESETS) == {"paper", "vifb", "cdd"}
    assert M.PRESETS["paper"].metrics == M.ALL_METRICS
    with pytest.raises(FrozenInstanceError):
        M.PRESETS["paper"].ssim_combine = "sum"  # type: ignore[misc]
    with pytest.raises(TypeError):
        M.PRESETS["new"] = M.PRESETS["paper"]  # type: ignore[index]
    with pytest.raises(ValueError, match="unknown metrics"):
        replace(M.PRESETS["paper"], metrics=("NOPE",))
    with pytest.raises(ValueError, match="choose one of: paper, vifb, cdd"):
        M.get_preset("lt2022")
    assert M.get_preset("VIFB") is M.PRESETS["vifb"]


def test_report_names_preset_and_keeps_order():
    g = _textured()
    with pytest.warns(RuntimeWarning, match="MS_SSIM"):  # 64 x 80 is too small for MS-SSIM
        rep = M.evaluate(g, g, g)
    assert rep.preset == "paper" and "preset='paper'" in repr(rep)
    assert tuple(rep) == M.ALL_METRICS
    with pytest.warns(RuntimeWarning, match="MS_SSIM"):
        sub = M.evaluate(g, g, g, "cdd", metrics="ssim, MS-SSIM ,cv")
    assert sub.preset == "cdd" and list(sub) == ["SSIM", "MS_SSIM", "Qcv"]
    custom = replace(M.PRESETS["paper"], name="paper-sum", ssim_combine="sum")
    rep2 = M.evaluate(g, g, g, custom, metrics=["SSIM"])
    assert rep2.preset == "paper-sum" and rep2["SSIM"] == pytest.approx(2.0)


def test_unknown_metric_raises():
    g = _textured()
    with pytest.raises(ValueError, match="unknown metric 'XYZ'"):
        M.evaluate(g, g, g, metrics=["SSIM", "XYZ"])
    with pytest.raises(ValueError, match="no metric selected"):
        M.evaluate(g, g, g, metrics=" , ")


def test_small_images_give_nan_with_warning_for_multiscale_metrics():
    g = _textured(shape=(32, 40))
    with pytest.warns(RuntimeWarning, match="MS_SSIM needs images of at least 161"):
        rep = M.evaluate(g, g, g, metrics=["MS_SSIM", "SSIM"])
    assert math.isnan(rep["MS_SSIM"]) and rep["SSIM"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 161"):
        M.ms_ssim_pair(g.astype(float), g.astype(float))
    with pytest.raises(ValueError, match="at least 41"):
        M.vifp_pair(g[:30, :30].astype(float), g[:30, :30].astype(float))


def test_evaluate_does_not_warn_on_normal_input():
    g = _textured(shape=(170, 170))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = M.evaluate(g, g, g)
    assert all(isinstance(v, float) for v in rep.values())


def test_higher_is_better_table():
    assert M.higher_is_better("SSIM") and not M.higher_is_better("Qcv") and not M.higher_is_better("MSE")
    assert set(M.METRIC_INFO) == set(M.ALL_METRICS)


def test_evaluate_many_equals_separate_calls_and_keeps_only_source_work():
    from tsjnet_sdk.metrics import _core

    rng = np.random.default_rng(5)
    ir = _textured(0, (48, 64))
    vis = np.stack([_textured(s, (48, 64)) for s in (1, 2, 3)], axis=-1)
    fused = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(3)]
    for preset in ("paper", "vifb"):
        keys = [k for k in M.PRESETS[preset].metrics if k not in ("MS_SSIM", "FMI")]
        many = M.evaluate_many(ir, vis, fused, preset, metrics=keys)
        for f, rep in zip(fused, many):
            assert rep == M.evaluate(ir, vis, f, preset, metrics=keys)
    # the outer cache level keeps source-derived intermediates only
    with _core.shared_intermediates(pin=(ir, vis)):
        M.evaluate(ir, vis, fused[0], "vifb", metrics=["SSIM", "Qcb"])
        outer = _core._CACHE.get()[0]
        owned = {id(a) for a in outer.owned.values()}
        assert outer.entries and id(fused[0]) not in owned
        assert all(all(id(a) in owned for a in arrays) for arrays, _ in outer.entries.values())
    assert _core._CACHE.get() == ()
