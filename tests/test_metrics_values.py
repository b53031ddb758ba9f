"""Metric values on synthetic images with known answers: identical, constant, pure-noise and
shifted images, closed-form cases, invariances, and the exact relations between presets."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from tsjnet_sdk import metrics as M
from tsjnet_sdk.metrics import information as info


def _texture(seed: int, shape: tuple[int, int] = (192, 176)) -> np.ndarray:
    """Smooth random texture with integer grey levels spanning 0..255 (float64)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    base = np.sin(x / (4.0 + seed)) * np.cos(y / (6.0 + seed)) + 0.5 * np.sin((x + 2 * y) / 9.0)
    base = base + ndimage.gaussian_filter(rng.normal(0, 1.0, shape), 1.5)
    base = (base - base.min()) / (base.max() - base.min()) * 255
    return np.round(base)


@pytest.fixture(scope="module")
def tex() -> np.ndarray:
    return _texture(0)


@pytest.fixture(scope="module")
def tex2() -> np.ndarray:
    return _texture(1)


def _ent(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def _expected_qabf_identical(x: np.ndarray) -> float:
    """Qabf(X, X, X) from an independent Sobel (scipy.ndimage, zero padding) and the reference
    codes' quirk G = g where g_X == g_F."""
    g = np.hypot(ndimage.sobel(x, axis=0, mode="constant"), ndimage.sobel(x, axis=1, mode="constant"))
    qg = 0.9994 / (1 + np.exp(-15 * (g - 0.5)))
    qa = 0.9879 / (1 + math.exp(-22 * 0.2))
    return float((qg * qa * g).sum() / g.sum())


# ------------------------------------------------------------------ identical images, every preset

_IDENTICAL = {
    # metric: {preset: value} or a callable(x, preset) -> value; "nan" = undefined
    "SSIM": {"paper": 1.0, "vifb": 2.0, "cdd": 2.0},
    "MS_SSIM": {"paper": 1.0, "vifb": 1.0, "cdd": 1.0},
    "PSNR": {"paper": math.inf, "vifb": math.inf, "cdd": math.inf},
    "MSE": {"paper": 0.0, "vifb": 0.0, "cdd": 0.0},
    "RMSE": {"paper": 0.0, "vifb": 0.0, "cdd": 0.0},
    "CC": {"paper": 1.0, "vifb": 1.0, "cdd": 1.0},
    "SCD": {"paper": "nan", "vifb": "nan", "cdd": "nan"},
    "VIF": {"paper": 1.0, "vifb": 1.0, "cdd": 2.0},
    "VIFF": {"paper": 1.0, "vifb": 1.0, "cdd": 1.0},
    "CE": {"paper": 0.0, "vifb": 0.0, "cdd": 0.0},
    "Nabf": {"paper": 0.0, "vifb": 0.0, "cdd": 0.0},
    "Qcv": {"paper": 0.0, "vifb": 0.0, "cdd": 0.0},
    "Qcb": {"paper": 1.0, "vifb": 1.0, "cdd": 1.0},
    "FMI": {"paper": 1.0, "vifb": 1.0, "cdd": 1.0},
}


@pytest.mark.parametrize("preset", ["paper", "vifb", "cdd"])
def test_identical_images_every_metric(tex, preset):
    u8 = tex.astype(np.uint8)
    rep = M.evaluate(u8, u8, u8, preset, metrics=M.ALL_METRICS)
    p = M.PRESETS[preset]
    hist = np.bincount(u8.ravel(), minlength=256) / u8.size
    h = _ent(hist)
    expected = {k: v[preset] for k, v in _IDENTICAL.items()}
    expected["EN"] = h
    expected["MI"] = 2 * h * (math.log(2) if p.mi_base == math.e else 1.0)
    expected["SD"] = float(np.std(tex))
    expected["SF"] = M.spatial_frequency(tex, normalization=p.sf_normalization)
    expected["AG"] = M.average_gradient(tex, denominator=p.ag_denominator)
    expected["EI"] = M.edge_intensity(tex)
    expected["Qabf"] = _expected_qabf_identical(tex)
    assert set(expected) == set(M.ALL_METRICS)
    for k in M.ALL_METRICS:
        want = expected[k]
        if want == "nan":
            assert math.isnan(rep[k]), k
        elif math.isinf(want):
            assert rep[k] == want, k
        else:
            assert rep[k] == pytest.approx(want, rel=1e-6, abs=1e-9), k


# ------------------------------------------------------------------ constant images


@pytest.mark.parametrize("preset", ["paper", "vifb", "cdd"])
def test_constant_images(preset):
    a = np.full((64, 72), 100, np.uint8)
    b = np.full((64, 72), 150, np.uint8)
    p = M.PRESETS[preset]
    keys = ["EN", "SD", "SF", "AG", "EI", "MI", "CE", "MSE", "RMSE", "PSNR", "SSIM", "CC", "VIF", "FMI"]
    rep = M.evaluate(a, a, b, preset, metrics=keys)
    for k in ("EN", "SD", "SF", "AG", "EI", "MI"):
        assert rep[k] == 0.0, k
    assert rep["CE"] == 0.0  # both histograms are single spikes at different levels: no shared bin
    assert rep["MSE"] == 2500.0
    n = a.size
    assert rep["RMSE"] == pytest.approx(50.0 / math.sqrt(n) if p.rmse_variant == "vifb" else 50.0, rel=1e-12)
    if p.psnr_error == "vifb_rmse":
        assert rep["PSNR"] == pytest.approx(10 * math.log10(255**2 / (50.0 / math.sqrt(n))), rel=1e-12)
    else:
        peak = 150.0 if p.psnr_peak == "fused_max" else 255.0
        assert rep["PSNR"] == pytest.approx(10 * math.log10(peak**2 / 2500.0), rel=1e-12)
    # SSIM of two flat images reduces to the luminance term (2ab + C1) / (a^2 + b^2 + C1)
    c1 = (0.01 * p.ssim_data_range) ** 2
    one = (2 * 100 * 150 + c1) / (100**2 + 150**2 + c1)
    assert rep["SSIM"] == pytest.approx(one * (2 if p.ssim_combine == "sum" else 1), rel=1e-12)
    assert math.isnan(rep["CC"])
    # VIFp of a flat reference is 0/0: NaN in paper/vifb, 1 in CDDFuse's code (summed: 2)
    if preset == "cdd":
        assert rep["VIF"] == 2.0
    else:
        assert math.isnan(rep["VIF"])
    assert rep["FMI"] == pytest.approx(1.0, abs=1e-12)  # see test_fmi_flat_windows_follow_reference_code


def test_fmi_flat_windows_follow_reference_code():
    """Two flat but different patches: the reference code's Pearson correlation of two uniform
    PDFs comes out as exactly 1 (round-off of MATLAB's sequential mean), so FMI is 1 per window;
    identical raw patches score 1 directly."""
    a = np.full((16, 16), 100.0)
    b = np.full((16, 16), 150.0)
    assert M.fmi(a, a, a) == 1.0
    assert M.fmi(a, a, b) == pytest.approx(1.0, abs=1e-12)


def test_zero_images_edge_metrics_undefined():
    z = np.zeros((48, 48))
    assert math.isnan(M.qabf(z, z, z))
    assert math.isnan(M.qcv(z, z, z))
    assert M.nabf(z, z, z) == 0.0
    assert M.qcb(z, z, z) == 1.0


# ------------------------------------------------------------------ pure noise


def test_pure_noise():
    rng = np.random.default_rng(42)
    ir, vis, f = (rng.integers(0, 256, (256, 256)).astype(np.float64) for _ in range(3))
    assert M.entropy(f) > 7.99
    assert abs(M.correlation_coefficient(ir, vis, f)) < 0.02
    assert abs(M.ssim(ir, vis, f)) < 0.03
    var = (256**2 - 1) / 12.0  # discrete uniform 0..255
    assert M.psnr(ir, vis, f) == pytest.approx(10 * math.log10(255**2 / (2 * var)), abs=0.05)
    assert M.mse(ir, vis, f) == pytest.approx(2 * var, rel=0.02)
    assert M.cross_entropy(ir, vis, f) < 0.05  # same (uniform) distribution, independent samples
    assert M.mutual_information(ir, vis, f) < 0.2 * 2 * M.entropy(f)  # only the finite-sample bias
    assert M.vif(ir, vis, f) < 0.05
    assert 0.0 <= M.qcb(ir, vis, f) <= 1.0
    assert 0.0 <= M.qabf(ir, vis, f) < 0.6
    assert M.qcv(ir, vis, f) > 0


# ------------------------------------------------------------------ shifted copies


def test_shifted_copy(tex, tex2):
    f = np.roll(tex, 2, axis=1)
    assert M.entropy(f) == M.entropy(tex)  # a permutation of the pixels
    assert M.standard_deviation(f) == pytest.approx(M.standard_deviation(tex), rel=1e-12)
    assert M.mse(tex, tex, f) == pytest.approx(float(np.mean((f - tex) ** 2)), rel=1e-12)
    same = {k: v for k, v in M.evaluate(tex, tex, tex, metrics="SSIM,CC,Qabf,Qcb,VIF,FMI").items()}
    shifted = M.evaluate(tex, tex, f, metrics="SSIM,CC,Qabf,Qcb,VIF,FMI,Qcv,Nabf")
    for k, v in same.items():
        assert shifted[k] < v, k
    assert 0.5 < shifted["CC"] < 1.0
    assert shifted["Qcv"] > 0.0 and shifted["Nabf"] >= 0.0
    # a larger shift degrades more
    f8 = np.roll(tex, 8, axis=1)
    assert M.ssim(tex, tex, f8) < shifted["SSIM"]
    assert M.qcv(tex, tex, f8) > shifted["Qcv"]


# ------------------------------------------------------------------ closed forms


def test_closed_form_statistics():
    m, n = 40, 50
    halves = np.zeros((m, n))
    halves[:, n // 2 :] = 255
    assert M.standard_deviation(halves) == 127.5
    stripes = np.tile(np.array([0.0, 255.0]), (m, n // 2))
    assert M.spatial_frequency(stripes) == pytest.approx(255.0)
    assert M.spatial_frequency(stripes, normalization="pixels") == pytest.approx(255.0 * math.sqrt((n - 1) / n))
    a = 2.0
    ramp = np.tile(np.arange(n) * a, (m, 1))
    assert M.average_gradient(ramp) == pytest.approx(m * n * a / math.sqrt(2) / ((m - 1) * (n - 1)))
    assert M.average_gradient(ramp, denominator="pixels") == pytest.approx(a / math.sqrt(2))
    # Sobel with replicated borders: 8a inside, 4a in the first and last columns
    assert M.edge_intensity(ramp) == pytest.approx(a * (8 * (n - 2) + 4 * 2) / n)
    four = np.repeat(np.array([0.0, 85.0, 170.0, 255.0]), m * n // 4).reshape(m, n)
    assert M.entropy(four) == pytest.approx(2.0)
    assert M.entropy(four, base=math.e) == pytest.approx(2.0 * math.log(2))
    four_f = np.repeat(np.array([0.6, 85.6, 170.6, 254.6]), m * n // 4).reshape(m, n)
    assert M.entropy(four_f, binning="floor") == pytest.approx(2.0)


def test_offset_errors():
    x = _texture(3, (32, 48)) * 0.9
    f = x + 4.0
    assert M.mse(x, x, f) == pytest.approx(16.0)
    assert M.rmse(x, x, f) == pytest.approx(4.0)
    assert M.rmse(x, x, f, variant="vifb") == pytest.approx(4.0 / math.sqrt(x.size))
    assert M.psnr(x, x, f) == pytest.approx(10 * math.log10(255**2 / 16.0))
    assert M.psnr(x, x, f, peak="fused_max") == pytest.approx(10 * math.log10(f.max() ** 2 / 16.0))
    assert M.psnr(x, x, f, error="vifb_rmse") == pytest.approx(20 * math.log10(255 / math.sqrt(4.0 / math.sqrt(x.size))))
    assert M.correlation_coefficient(x, x, f) == pytest.approx(1.0)


def test_mutual_information_definitions(tex, tex2):
    h = M.entropy(tex)
    assert M.mutual_information_pair(tex, tex) == pytest.approx(h)
    assert M.mutual_information_pair(tex, tex, base=math.e) == pytest.approx(h * math.log(2))
    mi = M.mutual_information(tex, tex2, tex)
    assert mi == pytest.approx(h + M.mutual_information_pair(tex2, tex))
    # VIFB's min-max normalisation: invariant to a positive affine change of either image
    assert M.mutual_information_pair(tex * 0.5 + 10, tex2, normalize=True) == pytest.approx(
        M.mutual_information_pair(tex, tex2, normalize=True)
    )


def test_ssim_pair_matches_direct_formula(tex, tex2):
    """SSIM with the Gaussian window against a direct windowed computation on a few pixels."""
    g1 = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    w = np.outer(g1, g1)
    w /= w.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for i in range(tex.shape[0] - 10):
        for j in range(tex.shape[1] - 10):
            a = tex[i : i + 11, j : j + 11]
            b = tex2[i : i + 11, j : j + 11]
            ma, mb = (w * a).sum(), (w * b).sum()
            va = (w * a * a).sum() - ma * ma
            vb = (w * b * b).sum() - mb * mb
            cov = (w * a * b).sum() - ma * mb
            vals.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma * ma + mb * mb + c1) * (va + vb + c2)))
    assert M.ssim_pair(tex, tex2) == pytest.approx(float(np.mean(vals)), rel=1e-10)


def test_perceptual_metrics_invariances(tex, tex2):
    f = np.round(0.5 * tex + 0.5 * tex2)
    q = M.qcv(tex, tex2, f)
    # normalize1 makes Q_CV / Q_CB invariant to an exact positive rescaling of any input
    assert M.qcv(tex * 0.5, tex2, f) == q
    assert M.qcv(tex2, tex, f) == pytest.approx(q, rel=1e-12)  # symmetric in the sources
    assert M.qcv(tex, tex2, f, alpha=1.0) != pytest.approx(q)
    assert M.qcb(tex * 0.5, tex2, f) == M.qcb(tex, tex2, f)
    # an affine copy of the sources is perfect after normalisation
    assert M.qcv(tex, tex, 0.5 * tex + 20) == 0.0
    assert M.qcb(tex, tex, 0.5 * tex + 20) == pytest.approx(1.0)
    # partial 16 x 16 blocks are zero-padded
    assert np.isfinite(M.qcv(tex[:100, :90], tex2[:100, :90], f[:100, :90]))


def test_symmetric_metrics_do_not_depend_on_source_order(tex, tex2):
    f = np.round(0.6 * tex + 0.4 * tex2)
    keys = ["MI", "CE", "MSE", "PSNR", "CC", "SCD", "SSIM", "MS_SSIM", "VIF", "Qabf", "Nabf", "Qcv", "Qcb"]
    a = M.evaluate(tex, tex2, f, metrics=keys)
    b = M.evaluate(tex2, tex, f, metrics=keys)
    for k in keys:
        assert a[k] == pytest.approx(b[k], rel=1e-12), k


# ------------------------------------------------------------------ presets differ exactly as documented


def test_preset_relations(tex, tex2):
    f = np.round(0.5 * tex + 0.5 * tex2)
    f[0, 0] = 255.0  # max(F) = 255: CDDFuse's PSNR peak equals 255
    u = [x.astype(np.uint8) for x in (tex, tex2, f)]
    paper = M.evaluate(*u, "paper", metrics=M.ALL_METRICS)
    vifb = M.evaluate(*u, "vifb", metrics=M.ALL_METRICS)
    cdd = M.evaluate(*u, "cdd", metrics=M.ALL_METRICS)
    m, n = f.shape
    assert vifb["SSIM"] == pytest.approx(2 * paper["SSIM"], rel=1e-12)
    assert cdd["VIF"] == pytest.approx(2 * paper["VIF"], rel=1e-12)
    assert cdd["MI"] == pytest.approx(math.log(2) * paper["MI"], rel=1e-12)
    assert cdd["AG"] == pytest.approx(paper["AG"] * (m - 1) * (n - 1) / (m * n), rel=1e-12)
    assert cdd["PSNR"] == pytest.approx(paper["PSNR"], rel=1e-12)
    assert cdd["MSE"] == paper["MSE"] and cdd["CC"] == paper["CC"] and cdd["Qabf"] == paper["Qabf"]
    assert vifb["PSNR"] == pytest.approx(10 * math.log10(255**2 / vifb["RMSE"]), rel=1e-12)
    assert vifb["EN"] == paper["EN"]  # integer images: floor and round binning agree
    assert vifb["Qcv"] == paper["Qcv"] and cdd["Qcv"] == paper["Qcv"]  # alpha = 5 everywhere
    assert cdd["SSIM"] != pytest.approx(vifb["SSIM"])  # 7x7 uniform window, data range 2


# ------------------------------------------------------------------ FMI fast path == reference form


@pytest.mark.parametrize("case", ["random", "ties", "negative", "binary", "flat"])
def test_fmi_fast_matches_reference(case):
    rng = np.random.default_rng(7)
    x = rng.random((9, 4000))
    f = rng.random((9, 4000))
    if case == "ties":
        x, f = np.round(x * 3), np.round(f * 3)
    elif case == "negative":
        f = 1 - x + 0.01 * rng.random(x.shape)
    elif case == "binary":
        x, f = np.round(x * 1.2), np.round(f * 1.3)
    elif case == "flat":
        x, f = np.round(x * 1.05), np.round(f * 1.05)
    x, f = info._minmax_cols(x), info._minmax_cols(f)
    np.testing.assert_allclose(info._fmi_cols(x, f), info._fmi_cols_reference(x, f), rtol=0, atol=1e-12)


def test_vif_and_viff_basic_properties(tex, tex2):
    f = np.round(0.5 * tex + 0.5 * tex2)
    v = M.vif(tex, tex2, f)
    assert 0 < v < 1
    assert M.vif(tex, tex2, f, combine="sum") == pytest.approx(2 * v)
    assert v == pytest.approx((M.vifp_pair(tex, f) + M.vifp_pair(tex2, f)) / 2)
    assert 0 < M.viff_han(tex, tex2, f) < 1
    # contrast stretch around the mean raises VIFp above 1 (Sheikh & Bovik's "enhancement")
    stretched = np.clip((tex - tex.mean()) * 1.2 + tex.mean(), 0, 255)
    assert M.vifp_pair(tex, stretched) > 1.0


# ------------------------------------------------------------------ literal re-implementations
# Straightforward transcriptions of the published algorithms (2-D convolutions, fftshift on
# the full complex spectrum, block loops) on small images: they guard the vectorised, cached
# versions against regressions without needing the reference data.


def _steppy(seed: int, shape=(40, 52)) -> np.ndarray:
    """Integer image with flat areas and steps, so that many Sobel responses are exactly 0."""
    rng = np.random.default_rng(seed)
    img = np.round(ndimage.zoom(rng.integers(0, 6, (shape[0] // 4, shape[1] // 4)).astype(float), 4, order=0) * 40)
    img += rng.integers(0, 2, shape) * (rng.random(shape) < 0.1)
    return np.clip(img[: shape[0], : shape[1]], 0, 255)


def test_qabf_matches_literal_definition():
    from scipy.signal import convolve2d

    h1 = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], float)
    h3 = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)

    def grad(p):
        sx = convolve2d(p, h3, mode="same")
        sy = convolve2d(p, h1, mode="same")
        a = np.where(sx == 0, np.pi / 2, np.arctan(sy / np.where(sx == 0, 1, sx)))
        return np.sqrt(sx**2 + sy**2), a

    def q(ga, aa, gf, af):
        g = np.where(ga > gf, gf / np.where(ga > gf, ga, 1), np.where(ga == gf, gf, ga / np.where(gf > 0, gf, 1)))
        a = 1 - np.abs(aa - af) / (np.pi / 2)
        return 0.9994 / (1 + np.exp(-15 * (g - 0.5))) * 0.9879 / (1 + np.exp(-22 * (a - 0.8)))

    a, b, f = _steppy(0), _steppy(1), _steppy(2)
    (ga, aa), (gb, ab), (gf, af) = grad(a), grad(b), grad(f)
    want = (q(ga, aa, gf, af) * ga + q(gb, ab, gf, af) * gb).sum() / (ga + gb).sum()
    assert M.qabf(a, b, f) == pytest.approx(want, rel=1e-12)


def test_nabf_matches_literal_definition():
    def sobel(x):
        e = np.pad(x, 1, mode="reflect")
        gv = np.zeros_like(x)
        gh = np.zeros_like(x)
        vt = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 8
        ht = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]) / 8
        for i in range(x.shape[0]):
            for j in range(x.shape[1]):
                gv[i, j] = (e[i : i + 3, j : j + 3] * vt).sum()
                gh[i, j] = (e[i : i + 3, j : j + 3] * ht).sum()
        return gv, gh

    a, b = _steppy(3), _steppy(4)
    f = np.clip(np.round(_steppy(5) * 1.2 - 10), 0, 255)  # integer: ties gF == gX are exact in both
    parts = []
    for x in (a, b, f):
        gv, gh = sobel(x)
        g = np.sqrt(gv**2 + gh**2)
        with np.errstate(divide="ignore", invalid="ignore"):
            ang = np.where((gv == 0) & (gh == 0), 0, np.arctan(gv / gh))
        parts.append((g, ang))
    (g1, a1), (g2, a2), (gf, af) = parts
    num = den = 0.0
    for gx, ax in ((g1, a1), (g2, a2)):
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where((gx == 0) | (gf == 0), 0, np.where(gx > gf, gf / gx, gx / gf))
        aa = np.abs(np.abs(ax - af) - np.pi / 2) * 2 / np.pi
        qq = np.sqrt(0.9999 / (1 + np.exp(-19 * (rel - 0.5))) * 0.9995 / (1 + np.exp(-22 * (aa - 0.5))))
        w = np.where(gx >= 2, gx**1.5, 0.001)
        num += (np.where((gf > g1) & (gf > g2), 1, 0) * (1 - qq) * w).sum()
        den += w.sum()
    assert M.nabf(a, b, f) == pytest.approx(num / den, rel=1e-12)


def _normalize1(x):
    lo, hi = x.min(), x.max()
    return np.zeros_like(x) if hi == lo else np.floor((x - lo) / (hi - lo) * 255 + 0.5)


def _freqspace_r(shape, su, sv):
    m, n = shape
    u = ((np.arange(n) - n // 2) * 2 / n)[None, :] * su
    v = ((np.arange(m) - m // 2) * 2 / m)[:, None] * sv
    return np.sqrt(u**2 + v**2)


def _fft_filter(x, h):
    return np.fft.ifft2(np.fft.ifftshift(np.fft.fftshift(np.fft.fft2(x)) * h))


@pytest.mark.parametrize("shape", [(48, 64), (45, 61)])
def test_qcv_matches_literal_definition(shape):
    a, b = _texture(4, shape), _texture(5, shape)
    f = np.round(0.7 * a + 0.3 * b)
    m, n = shape
    r = _freqspace_r(shape, n / 8, m / 8)
    csf = 2.6 * (0.0192 + 0.144 * r) * np.exp(-((0.144 * r) ** 1.1))
    fn = _normalize1(f)
    num = den = 0.0
    for x in (a, b):
        xn = _normalize1(x)
        g = np.hypot(
            ndimage.correlate(xn, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], mode="constant"),
            ndimage.correlate(xn, [[-1, -2, -1], [0, 0, 0], [1, 2, 1]], mode="constant"),
        )
        d = _fft_filter(xn - fn, csf)
        for i in range(0, m, 16):
            for j in range(0, n, 16):
                lam = (g[i : i + 16, j : j + 16] ** 5).sum()
                blk = np.zeros((16, 16), complex)
                part = d[i : i + 16, j : j + 16]
                blk[: part.shape[0], : part.shape[1]] = part
                num += lam * (blk**2).mean().real
                den += lam
    assert M.qcv(a, b, f) == pytest.approx(num / den, rel=1e-9)


def test_qcb_matches_literal_definition():
    from scipy.signal import convolve2d

    shape = (40, 56)
    a, b = _texture(6, shape), _texture(7, shape)
    f = np.round(0.5 * a + 0.5 * b)
    m, n = shape
    r = _freqspace_r(shape, n / 30, m / 30)
    sd = np.exp(-((r / 15.3870) ** 2)) - 0.7622 * np.exp(-((r / 1.3456) ** 2))
    yy, xx = np.mgrid[-15:16, -15:16]

    def gauss(s):
        return np.exp(-(xx**2 + yy**2) / (2 * s * s)) / (2 * np.pi * s * s)

    def masked(x):
        y = _fft_filter(_normalize1(x), sd)
        c = np.abs(convolve2d(y, gauss(2), mode="same") / convolve2d(y, gauss(4), mode="same") - 1)
        return c**3 / (c**2 + 1e-4)

    c1, c2, cf = masked(a), masked(b), masked(f)
    q1 = np.where(c1 < cf, c1 / cf, cf / c1)
    q2 = np.where(c2 < cf, c2 / cf, cf / c2)
    lam1 = c1**2 / (c1**2 + c2**2)
    lam2 = c2**2 / (c1**2 + c2**2)
    assert M.qcb(a, b, f) == pytest.approx(float(np.mean(lam1 * q1 + lam2 * q2)), rel=1e-9)


def _fmi_literal(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    """Window-by-window transcription of the reference fast-FMI code (feature 'none', 3 x 3),
    including its in-place normalisation of the fused patch."""

    def pair(x, fs):
        if np.array_equal(x, fs):
            return 1.0, fs
        x = np.ones((3, 3)) if x.max() == x.min() else (x - x.min()) / (x.max() - x.min())
        fs = np.ones((3, 3)) if fs.max() == fs.min() else (fs - fs.min()) / (fs.max() - fs.min())
        px = x.ravel(order="F") / x.sum()
        pf = fs.ravel(order="F") / fs.sum()
        cx, cf = np.cumsum(px), np.cumsum(pf)
        mx = sum(px.tolist()) / 9  # MATLAB's sequential mean
        mf = sum(pf.tolist()) / 9
        dx, df = px - mx, pf - mf
        c = 0.0 if (dx * df).sum() == 0 else (dx * df).sum() / np.sqrt((dx * dx).sum() * (df * df).sum())
        i = np.arange(1, 10)
        sdx = np.sqrt((i * i * px).sum() - (i * px).sum() ** 2)
        sdf = np.sqrt((i * i * pf).sum() - (i * pf).sum() ** 2)
        bound = (lambda u, v: np.minimum(u, v)) if c >= 0 else (lambda u, v: np.maximum(u + v - 1, 0))
        big = bound(cf[:, None], cx[None, :])
        if (c >= 0 and c == 0) or sdx == 0 or sdf == 0:
            k = 0.0
        else:
            k = c / (((big - cf[:, None] * cx[None, :]).sum()) / (sdf * sdx))
        mass = np.diff(np.diff(np.pad(big, ((1, 0), (1, 0))), axis=0), axis=1)
        jp = k * mass + (1 - k) * pf[:, None] * px[None, :]
        nz = jp != 0
        joint = float((-jp[nz] * np.log2(np.abs(jp[nz]))).sum())
        hx = float(-(px[px > 0] * np.log2(px[px > 0])).sum())
        hf = float(-(pf[pf > 0] * np.log2(pf[pf > 0])).sum())
        mi = hx + hf - joint
        return (0.0 if mi == 0 else 2 * mi / (hx + hf)), fs

    vals = []
    for r in range(1, a.shape[0] - 1):
        for c in range(1, a.shape[1] - 1):
            fs = f[r - 1 : r + 2, c - 1 : c + 2]
            s_a, fs = pair(a[r - 1 : r + 2, c - 1 : c + 2], fs)
            s_b, _ = pair(b[r - 1 : r + 2, c - 1 : c + 2], fs)
            vals.append((s_a + s_b) / 2)
    return float(np.mean(vals))


@pytest.mark.parametrize("kind", ["texture", "dark-binary"])
def test_fmi_matches_literal_definition(kind):
    rng = np.random.default_rng(11)
    if kind == "texture":
        a, b = _texture(8, (14, 17)), _texture(9, (14, 17))
        f = np.round(0.5 * a + 0.5 * b)
        f[3:6, 3:6] = a[3:6, 3:6]  # identical windows
    else:  # dark 0/1 images: the VIS-vs-normalised-fused identity quirk fires
        a = rng.integers(0, 2, (14, 17)).astype(float)
        b = rng.integers(0, 2, (14, 17)).astype(float)
        f = rng.integers(0, 3, (14, 17)).astype(float)
        f[5:9, 5:9] = 0.0
    assert M.fmi(a, b, f) == pytest.approx(_fmi_literal(a, b, f), rel=1e-10)


def test_fmi_options(tex, tex2):
    f = np.round(0.5 * tex + 0.5 * tex2)[:40, :50]
    a, b = tex[:40, :50], tex2[:40, :50]
    assert 0.0 < M.fmi(a, b, f, feature="gradient") < 1.0
    assert M.fmi(a, b, f, chunk=97) == pytest.approx(M.fmi(a, b, f), rel=1e-12)  # chunking is exact
    with pytest.raises(ValueError, match="'none' or 'gradient'"):
        M.fmi(a, b, f, feature="edge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="odd size"):
        M.fmi(a, b, f, window=4)
