"""``tsjnet eval`` (tsjnet_sdk.metrics.cli.eval_command) through typer's CliRunner on small PNGs."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from tsjnet_sdk.metrics import evaluate
from tsjnet_sdk.metrics.cli import eval_command


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app (a callback keeps 'eval' a sub-command, as in tsjnet_sdk.cli)."""

    app.command("eval")(eval_command)
    return app


@pytest.fixture
def folders(tmp_path):
    rng = np.random.default_rng(0)
    dirs = {k: tmp_path / k for k in ("ir", "vi", "fused")}
    for d in dirs.values():
        d.mkdir()
    for name in ("a", "b"):
        ir = rng.integers(0, 256, (48, 56), dtype=np.uint8)
        vi = rng.integers(0, 256, (48, 56, 3), dtype=np.uint8)
        fu = ((ir.astype(int) + vi.mean(axis=2)) / 2).astype(np.uint8)
        Image.fromarray(ir).save(dirs["ir"] / f"{name}.png")
        Image.fromarray(vi).save(dirs["vi"] / f"{name}.png")
        Image.fromarray(fu).save(dirs["fused"] / f"{name}.png")
    # only in the IR and fused folders: must be reported, not evaluated
    Image.fromarray(ir).save(dirs["ir"] / "lonely.png")
    Image.fromarray(fu).save(dirs["fused"] / "lonely.png")
    (dirs["fused"] / "notes.txt").write_text("not an image")
    return dirs


def _read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_eval_writes_csv_and_table(folders):
    res = CliRunner().invoke(
        _app(), ["eval", "--ir", str(folders["ir"]), "--vis", str(folders["vi"]), "--fused", str(folders["fused"])]
    )
    assert res.exit_code == 0, res.output
    assert "preset 'paper'" in res.output
    assert "lonely" in res.output and "unmatched" in res.output
    csv_path = folders["fused"] / "metrics_paper.csv"
    rows = _read_csv(csv_path)
    assert rows[0][:3] == ["image", "preset", "SSIM"]
    assert [r[0] for r in rows[1:]] == ["a", "b", "MEAN"]
    assert all(r[1] == "paper" for r in rows[1:])
    # the CSV holds evaluate()'s values and their mean
    ir = np.asarray(Image.open(folders["ir"] / "a.png"))
    vi = np.asarray(Image.open(folders["vi"] / "a.png"))
    fu = np.asarray(Image.open(folders["fused"] / "a.png"))
    ref = evaluate(ir, vi, fu, "paper", metrics=["SSIM", "Qcv"])
    header = rows[0]
    assert float(rows[1][header.index("SSIM")]) == pytest.approx(ref["SSIM"], rel=1e-9)
    assert float(rows[1][header.index("Qcv")]) == pytest.approx(ref["Qcv"], rel=1e-9)
    mean_ssim = (float(rows[1][header.index("SSIM")]) + float(rows[2][header.index("SSIM")])) / 2
    assert float(rows[3][header.index("SSIM")]) == pytest.approx(mean_ssim, rel=1e-9)
    # no temporary file left beside the CSV
    assert not [p for p in folders["fused"].iterdir() if p.name.startswith(".")]


def test_eval_preset_subset_and_output(folders, tmp_path):
    out = tmp_path / "res" / "m.csv"
    res = CliRunner().invoke(
        _app(),
        [
            "eval",
            "--ir",
            str(folders["ir"]),
            "--vis",
            str(folders["vi"]),
            "--fused",
            str(folders["fused"]),
            "--preset",
            "vifb",
            "--metrics",
            "Qabf, ssim",
            "--output",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "preset 'vifb'" in res.output
    rows = _read_csv(out)
    assert rows[0] == ["image", "preset", "Qabf", "SSIM"]
    assert rows[-1][:2] == ["MEAN", "vifb"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--preset", "nope"], "unknown metrics preset"),
        (["--metrics", "SSIM,XYZ"], "unknown metric"),
    ],
)
def test_eval_bad_options(folders, extra, message):
    res = CliRunner().invoke(
        _app(), ["eval", "--ir", str(folders["ir"]), "--vis", str(folders["vi"]), "--fused", str(folders["fused"]), *extra]
    )
    assert res.exit_code == 2
    assert message in res.output


def test_eval_missing_folder_and_no_match(folders, tmp_path):
    res = CliRunner().invoke(
        _app(), ["eval", "--ir", str(tmp_path / "nope"), "--vis", str(folders["vi"]), "--fused", str(folders["fused"])]
    )
    assert res.exit_code == 2 and "not a folder" in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = CliRunner().invoke(_app(), ["eval", "--ir", str(folders["ir"]), "--vis", str(empty), "--fused", str(folders["fused"])])
    assert res.exit_code == 2 and "no image name is present in all three folders" in res.output
