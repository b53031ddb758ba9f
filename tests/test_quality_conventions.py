"""`tsjnet quality --convention`: the copy-an-input rows, the literature (CDDFuse-evaluator) convention
and the per-image CSV. The metric checks are identities that any correct implementation satisfies on
small synthetic images (no stored outputs)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import require_shared_data

import tsjnet_sdk.metrics as M
from tsjnet_sdk.benchmarks import quality
from tsjnet_sdk.benchmarks.quality import CONVENTIONS, COPY_ROWS, run_quality, to_csv, to_markdown, write_results


def _scene(seed: int, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A textured IR / visible pair (uint8, 0-255) that share some structure and differ elsewhere."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    shared = 60 * np.sin(9 * x) * np.cos(7 * y)
    ir = 110 + shared + 50 * (np.hypot(x - 0.6, y - 0.4) < 0.15) + rng.normal(0, 6, (size, size))
    vis = 120 + 0.6 * shared + 40 * np.sign(np.sin(25 * x)) + rng.normal(0, 6, (size, size))
    return (np.clip(ir, 0, 255).round().astype(np.uint8), np.clip(vis, 0, 255).round().astype(np.uint8))


@pytest.mark.parametrize("convention", ["paper", "cdd"])
def test_copying_either_input_gives_the_same_ssim(convention: str) -> None:
    # SSIM(F, F) = 1 and SSIM is symmetric, so F = IR and F = VIS both score combine(1, SSIM(IR, VIS)).
    ir, vis = _scene(0)
    preset = CONVENTIONS[convention][0]
    a, b = (M.evaluate(ir, vis, f, preset, metrics=["SSIM"])["SSIM"] for f in (ir, vis))
    assert a == pytest.approx(b, abs=1e-9)
    cross = M.evaluate(ir, vis, vis, preset, metrics=["SSIM"])["SSIM"] - 1.0  # the summed convention's part
    if convention == "cdd":
        assert 1.0 < a < 2.0 and 0.0 < cross < 1.0  # summed: a copy scores 1 + SSIM(IR, VIS)
    else:
        assert 0.5 < a < 1.0  # averaged: (1 + SSIM(IR, VIS)) / 2


def test_cdd_sums_what_paper_averages() -> None:
    # Same VIFp per source: the summed convention is exactly twice the averaged one, for any fused image.
    ir, vis = _scene(1)
    fused = ((ir.astype(float) + vis) / 2 + 10 * np.sin(np.arange(ir.shape[1]) / 3)).clip(0, 255).round().astype(np.uint8)
    for f in (fused, ir, vis):
        vp = M.evaluate(ir, vis, f, "paper", metrics=["VIF"])["VIF"]
        vc = M.evaluate(ir, vis, f, "cdd", metrics=["VIF"])["VIF"]
        assert vc == pytest.approx(2 * vp, rel=1e-9)
    # and copying the visible image scores 1 + VIFp(IR -> VIS): at least 1 in the summed convention
    assert M.evaluate(ir, vis, vis, "cdd", metrics=["VIF"])["VIF"] >= 1.0


def test_cdd_mi_of_a_copy_is_the_entropy_plus_the_shared_information() -> None:
    # MI(X, F) + MI(Y, F) with F = Y: H(Y) + MI(X, Y). In nats, so the two copies differ by
    # (EN(VIS) - EN(IR)) * ln 2, EN being in bits.
    ir, vis = _scene(2)
    mi_ir, mi_vis = (M.evaluate(ir, vis, f, "cdd", metrics=["MI"])["MI"] for f in (ir, vis))
    en_ir, en_vis = (M.evaluate(ir, vis, f, "cdd", metrics=["EN"])["EN"] for f in (ir, vis))
    assert mi_vis - mi_ir == pytest.approx((en_vis - en_ir) * math.log(2), abs=1e-9)
    # paper's MI is in bits: the same quantity times 1 / ln 2
    mi_vis_bits = M.evaluate(ir, vis, vis, "paper", metrics=["MI"])["MI"]
    assert mi_vis_bits == pytest.approx(mi_vis / math.log(2), rel=1e-9)


def test_qabf_is_symmetric_in_the_sources_and_rewards_copying_the_edged_one() -> None:
    # With a flat IR image almost every edge comes from VIS: copying VIS keeps them (Qabf high; a perfect
    # match still scores below 1, the sigmoids' constants), copying the flat image keeps almost none
    # (only the image border's edges). Swapping the two sources changes nothing.
    _, vis = _scene(3)
    flat = np.full_like(vis, 90)
    q = M.evaluate(flat, vis, vis, "cdd", metrics=["Qabf"])["Qabf"]
    assert q == M.evaluate(vis, flat, vis, "cdd", metrics=["Qabf"])["Qabf"]
    assert q > 0.85 and q > 3 * M.evaluate(flat, vis, flat, "cdd", metrics=["Qabf"])["Qabf"]


def _doc(convention: str) -> dict:
    metrics = CONVENTIONS[convention][1]
    rows = ("tsjnet", "average", "max", "laplacian", *COPY_ROWS)
    per_pair = {p: {r: {m: float(i + 1) for m in metrics} for i, r in enumerate(rows)} for p in ("a", "b")}
    mean = quality.mean_rows(per_pair)
    return {
        "created": "2026-12-01T00:00:00+00:00",
        "model": "m.safetensors",
        "model_sha256": "ab" * 32,
        "convention": convention,
        "preset": CONVENTIONS[convention][0],
        "data_root": "d",
        "skipped": {},
        "datasets": {
            "msrs": {"folder": "d/msrs/test", "pairs": 2, "mean": mean, "per_pair": per_pair, "fuse_seconds_median": 1.0}
        },
    }


def test_tables_name_their_convention_and_mark_the_copy_rows() -> None:
    md = to_markdown(_doc("cdd"))
    assert md.startswith("# Fusion quality, convention `cdd`") and "convention `cdd`" in md.split("## msrs")[1]
    assert "| copy-visible (reference: no fusion) |" in md and "summed" in md
    # the copy rows score highest here but are not bolded: bold is the best of the four fusion methods
    assert "**6" not in md and "| laplacian | **4" in md
    assert "*CDDFuse, its paper (361 pairs)*" in md  # published rows in the cdd table
    assert "copy-visible VIF: ours 6.000 vs published 1.044" in md  # and the residual against them
    paper_md = to_markdown(_doc("paper"))
    assert "TSJNet, paper Table 1" in paper_md and "CDDFuse, its paper" not in paper_md


def test_csv_has_one_row_per_pair_and_method() -> None:
    doc = _doc("cdd")
    rows = list(csv.DictReader(io.StringIO(to_csv(doc))))
    assert len(rows) == 2 * 6 and {r["method"] for r in rows} == {"tsjnet", "average", "max", "laplacian", *COPY_ROWS}
    assert list(rows[0])[:4] == ["convention", "dataset", "pair", "method"] and rows[0]["convention"] == "cdd"
    assert float(rows[-1]["VIF"]) == 6.0


def test_write_results_writes_one_table_per_convention(tmp_path: Path) -> None:
    doc = _doc("paper")
    doc["conventions"] = {"cdd": _doc("cdd")}
    paths = write_results(doc, tmp_path, "q")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "q.csv",
        "q.json",
        "q.md",
        "q.png",
        "q_cdd.csv",
        "q_cdd.json",
        "q_cdd.md",
    ]
    assert "convention `cdd`" in paths["cdd_md"].read_text()


def test_unknown_convention_is_an_error(tiny_checkpoint: Path) -> None:
    with pytest.raises(ValueError, match="unknown convention"):
        run_quality(tiny_checkpoint, datasets=["tno"], conventions=["lt"])


def test_real_run_scores_the_copy_rows_in_both_conventions(tiny_checkpoint: Path, tmp_path: Path) -> None:
    src = require_shared_data("roadscene")
    name = sorted(p.name for p in (src / "ir").iterdir())[0]
    root = tmp_path / "data" / "roadscene"
    for sub in ("ir", "vi"):
        (root / sub).mkdir(parents=True)
        (root / sub / name).symlink_to(src / sub / name)
    results = run_quality(
        tiny_checkpoint,
        data_root=tmp_path / "data",
        datasets=["roadscene"],
        work_dir=tmp_path / "w",
        threads=1,
        say=lambda s: None,
        conventions=["paper", "cdd"],
    )
    paper, cdd = results["datasets"]["roadscene"], results["conventions"]["cdd"]["datasets"]["roadscene"]
    for ds, convention in ((paper, "paper"), (cdd, "cdd")):
        assert set(ds["mean"]) == {"tsjnet", "average", "max", "laplacian", *COPY_ROWS}
        assert set(ds["mean"]["tsjnet"]) == set(CONVENTIONS[convention][1])
    # on real images: a copy's SSIM is the same whichever input is copied; cdd sums what paper averages
    assert cdd["mean"]["copy-ir"]["SSIM"] == pytest.approx(cdd["mean"]["copy-visible"]["SSIM"], abs=1e-9)
    assert cdd["mean"]["copy-visible"]["VIF"] == pytest.approx(2 * paper["mean"]["copy-visible"]["VIF"], rel=1e-6)
    assert cdd["mean"]["average"]["VIF"] == pytest.approx(2 * paper["mean"]["average"]["VIF"], rel=1e-6)
    assert "trade_off" in paper and "trade_off" not in cdd  # the acceptance rule is stated in `paper`


def test_merge_results_adds_data_sets_convention_by_convention() -> None:
    a, b = _doc("paper"), _doc("paper")
    a["conventions"], b["conventions"] = {"cdd": _doc("cdd")}, {"cdd": _doc("cdd")}
    b["datasets"] = {"tno": b["datasets"].pop("msrs")}
    b["conventions"]["cdd"]["datasets"] = {"tno": b["conventions"]["cdd"]["datasets"].pop("msrs")}
    b["skipped"] = {"llvip": "not found"}
    merged = quality.merge_results(a, b)
    assert list(merged["datasets"]) == ["msrs", "tno"] and merged["skipped"] == {"llvip": "not found"}
    assert list(merged["conventions"]["cdd"]["datasets"]) == ["msrs", "tno"]
