"""The trainer end to end on tiny synthetic data: artefacts, checkpoints that the runtime loads, exact
resume after a kill, AMP unscale-before-clip, joint detection + segmentation training with real MSRS
detection labels and synthetic masks, the CLI, and torchrun with 2 gloo processes."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tsjnet_sdk.training import config_from_dict
from tsjnet_sdk.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def need_shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs the real data at {path} (../shared/data beside the checkout); not present here")
    return path


def make_pairs(root: Path, n: int, size: tuple[int, int] = (96, 80), seed: int = 0) -> Path:
    """n synthetic pairs with some shared structure: root/{ir,vi}/pNN.png, size (W, H)."""
    rng = np.random.default_rng(seed)
    (root / "ir").mkdir(parents=True, exist_ok=True)
    (root / "vi").mkdir(parents=True, exist_ok=True)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        base = 0.5 + 0.4 * np.sin(xx / (5 + i) + rng.uniform(0, 6)) * np.cos(yy / 7)
        ir = np.clip(base + rng.normal(0, 0.05, (h, w)), 0, 1)
        vis = np.clip(1 - base[..., None] * np.array([1.0, 0.8, 0.6]) + rng.normal(0, 0.05, (h, w, 3)), 0, 1)
        Image.fromarray((ir * 255).astype(np.uint8)).save(root / "ir" / f"p{i:02d}.png")
        Image.fromarray((vis * 255).astype(np.uint8)).save(root / "vi" / f"p{i:02d}.png")
    return root


def tiny_config(tmp_path: Path, out: str = "run", **sections) -> dict:
    cfg = {
        "run": {
            "out_dir": str(tmp_path / out),
            "max_steps": 4,
            "log_every": 1,
            "checkpoint_every": 2,
            "progress": False,
            "tensorboard": False,
            "num_threads": 1,
        },  # the test machines' 2 cores are shared: one thread avoids OpenMP stalls
        "model": {"name": "tsjnet-tiny"},
        "data": {"datasets": [{"root": str(tmp_path / "data")}], "crop_size": 32, "batch_size": 2},
        "val": {},
    }
    for key, value in sections.items():
        cfg.setdefault(key, {}).update(value)
    return cfg


@pytest.fixture
def data_dir(tmp_path):
    make_pairs(tmp_path / "data", 6)
    return tmp_path / "data"


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ----------------------------------------------------------------------------------------------


def test_train_writes_artifacts_and_runtime_loads_checkpoint(tmp_path, data_dir):
    make_pairs(tmp_path / "val", 2, size=(70, 50), seed=3)
    cfg = config_from_dict(
        tiny_config(
            tmp_path,
            val={"datasets": [{"root": str(tmp_path / "val")}], "every_steps": 2, "samples": 2},
            loss={"preset": "paper"},
        )
    )  # the paper's terms: every column below
    summary = Trainer(cfg).fit()
    out = Path(summary["out_dir"])
    assert summary["steps"] == 4 and summary["sec_per_step"] > 0
    for name in (
        "last.safetensors",
        "best.safetensors",
        "last.state.pt",
        "train_log.csv",
        "val_log.csv",
        "config.json",
        "log.txt",
        "samples/step_0000002.png",
        "samples/step_0000004.png",
    ):
        assert (out / name).is_file(), name
    assert not list(out.glob(".*.tmp")), "no temporary files left behind"
    rows = read_rows(out / "train_log.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    for key in ("loss", "fusion", "ssim", "diversity", "recon_ir", "recon_vis", "att_groups", "lr", "sec_per_step"):
        assert all(r[key] != "" for r in rows), key
    vrows = read_rows(out / "val_log.csv")
    assert [int(r["step"]) for r in vrows] == [2, 4] and "SSIM" in vrows[0] and "loss" in vrows[0]
    log = (out / "log.txt").read_text()
    assert "fusion loss only" in log and "validation at step 4" in log

    # the model part is a plain tsjnet checkpoint: load_checkpoint and the runtime read it
    from tsjnet_sdk.models import load_checkpoint, read_checkpoint_metadata

    assert read_checkpoint_metadata(out / "last.safetensors")["training_step"] == "4"
    model = load_checkpoint(out / "last.safetensors")
    assert model.config.name == "tsjnet-tiny"
    state = torch.load(out / "last.state.pt", weights_only=True)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, state["model"][k], rtol=0, atol=0)
    assert {"optimizer", "scheduler", "scaler", "rng", "progress"} <= set(state)


def test_holdout_validation_basic_metrics_and_val_scheduler(tmp_path, data_dir):
    cfg = config_from_dict(
        tiny_config(
            tmp_path,
            run={"max_steps": 3, "checkpoint_every": 0},
            val={"fraction": 0.34, "metrics": "basic", "every_steps": 1, "monitor": "SSIM", "mode": "max"},
            scheduler={"monitor": "val", "patience": 0},
        )
    )
    summary = Trainer(cfg).fit()
    out = Path(summary["out_dir"])
    log = (out / "log.txt").read_text()
    assert "train data: 6 pair(s)" in log and "validation: 2 pair(s)" in log and "basic SSIM/PSNR" in log
    assert "training the fusion network: 3 steps (2 per epoch" in log  # 4 training pairs left
    vrows = read_rows(out / "val_log.csv")
    assert [r["step"] for r in vrows] == ["1", "2", "3"] and set(vrows[0]) == {"step", "loss", "att_groups", "SSIM", "PSNR"}
    best = max(vrows, key=lambda r: float(r["SSIM"]))
    assert summary["best_step"] == int(best["step"])
    from tsjnet_sdk.models import read_checkpoint_metadata

    meta = read_checkpoint_metadata(out / "best.safetensors")
    assert meta["monitor"] == "SSIM" and meta["training_step"] == best["step"]


def test_runtime_loads_trained_checkpoint(tmp_path, data_dir):
    """A checkpoint written by training runs in the runtime and exports to ONNX with the same result."""
    from tsjnet_sdk.export import export_onnx
    from tsjnet_sdk.runtime import Fuser

    summary = Trainer(config_from_dict(tiny_config(tmp_path, run={"max_steps": 2}))).fit()
    pair = (data_dir / "ir" / "p00.png", data_dir / "vi" / "p00.png")
    fused = Fuser(summary["last"], backend="torch", device="cpu").fuse(*pair)
    assert fused.shape[:2] == (80, 96)
    onnx_path = export_onnx(summary["last"], tmp_path / "trained.onnx", static=(1, 80, 96), parity_pair=pair).path
    via_onnx = Fuser(onnx_path).fuse(*pair)
    assert np.abs(via_onnx.astype(int) - fused.astype(int)).max() <= 1


def test_resume_after_kill_equals_uninterrupted(tmp_path, data_dir):
    """6 steps straight == 5 steps, killed (last checkpoint at step 4, mid-epoch), resumed to 6."""
    # 6 pairs, batch 2: 3 batches per epoch; plateau with patience 0 so the LR schedule is exercised too
    sections = dict(run={"max_steps": 6, "checkpoint_every": 2}, scheduler={"patience": 0}, data={"hflip": 0.5})
    straight = Trainer(config_from_dict(tiny_config(tmp_path, "straight", **sections))).fit()

    class Killed(Exception):
        pass

    def kill_after_5(trainer):
        if trainer.pos["step"] == 5:
            raise Killed

    cfg = config_from_dict(tiny_config(tmp_path, "killed", **sections))
    with pytest.raises(Killed):
        Trainer(cfg, on_step_end=kill_after_5).fit()
    state = torch.load(tmp_path / "killed" / "last.state.pt", weights_only=True)
    assert state["progress"]["step"] == 4 and state["progress"]["batch"] == 1  # mid-epoch
    resumed = Trainer(config_from_dict(tiny_config(tmp_path, "killed", **sections)), resume=True).fit()
    assert resumed["steps"] == straight["steps"] == 6

    a = torch.load(tmp_path / "straight" / "last.state.pt", weights_only=True)
    b = torch.load(tmp_path / "killed" / "last.state.pt", weights_only=True)
    max_diff = max(float((a["model"][k].double() - b["model"][k].double()).abs().max()) for k in a["model"])
    print(f"resume equality: max |param difference| = {max_diff:.3g}")
    assert max_diff <= 1e-6, max_diff  # in practice bit-identical on CPU
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=0, atol=1e-6)
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    for i in sa:
        torch.testing.assert_close(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"], rtol=0, atol=1e-9)
    assert a["scheduler"] == b["scheduler"] and a["progress"] == b["progress"]
    la = [r["loss"] for r in read_rows(tmp_path / "straight" / "train_log.csv")]
    lb = [r["loss"] for r in read_rows(tmp_path / "killed" / "train_log.csv")]
    assert la == lb and len(la) == 6  # the log has no duplicate rows after the resume


def test_amp_gradients_are_unscaled_before_clipping(tmp_path, data_dir):
    cfg = config_from_dict(tiny_config(tmp_path))
    t = Trainer.__new__(Trainer)  # just the optimizer-step logic
    t.cfg, t.pos, t._bad_steps = cfg, {"skipped_steps": 0}, 0
    t.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    p = torch.nn.Parameter(torch.zeros(4))
    opt = torch.optim.SGD([p], lr=1.0)
    t.scaler.scale((p * torch.tensor([30.0, 40.0, 0.0, 0.0])).sum()).backward()  # true gradient norm 50
    t._optimizer_step([(opt, [p])], finite=True)
    # clipped to norm 1 on the *true* gradient: the step is -(0.6, 0.8); clipping the scaled gradient
    # (the official bug) would give a step 65536 times smaller
    torch.testing.assert_close(p.detach(), torch.tensor([-0.6, -0.8, 0.0, 0.0]))


def test_nonfinite_losses_stop_training(tmp_path, data_dir):
    cfg = config_from_dict(tiny_config(tmp_path))
    t = Trainer.__new__(Trainer)
    t.cfg, t.pos, t._bad_steps = cfg, {"skipped_steps": 0}, 0
    t.scaler = torch.amp.GradScaler("cpu", enabled=False)
    p = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([p], lr=1.0)
    from tsjnet_sdk.training.trainer import TrainingError

    for _ in range(4):
        p.grad = torch.full((2,), float("nan"))
        t._optimizer_step([(opt, [p])], finite=False)
    assert t.pos["skipped_steps"] == 4 and torch.equal(p.detach(), torch.ones(2))
    with pytest.raises(TrainingError, match="non-finite"):
        t._optimizer_step([(opt, [p])], finite=False)


@pytest.mark.slow
def test_joint_detection_segmentation_training(tmp_path):
    """Real MSRS detection labels (fused/IR/visible sets) + synthetic segmentation masks, a task-network
    stage, then joint steps; an unlabelled dataset mixed in trains with the fusion loss alone."""
    msrs = need_shared("msrs", "test")
    root = tmp_path / "msrs"
    root.mkdir()
    for sub in ("ir", "vi", "det_label", "det_label_ir", "det_label_vi"):
        (root / sub).symlink_to(msrs / sub, target_is_directory=True)
    (root / "seg").mkdir()
    rng = np.random.default_rng(0)
    for p in sorted((msrs / "ir").glob("*.png")):
        mask = rng.integers(0, 9, (15, 20), dtype=np.uint8).repeat(32, 0).repeat(32, 1)  # 640x480 blocks of ids 0..8
        Image.fromarray(mask).save(root / "seg" / p.name)
    make_pairs(tmp_path / "plain", 4, size=(128, 96))
    det_cfg = {"min_size": 64, "max_size": 64}
    cfg = config_from_dict(
        tiny_config(
            tmp_path,
            run={"max_steps": 1, "checkpoint_every": 0},
            data={
                "datasets": [
                    {
                        "root": str(root),
                        "det_labels": "det_label",
                        "det_labels_ir": "det_label_ir",
                        "det_labels_vi": "det_label_vi",
                        "seg_labels": "seg",
                    },
                    {"root": str(tmp_path / "plain")},
                ],
                "crop_size": 64,
                "object_crop_prob": 1.0,
            },
            tasks={"mode": "joint", "pretrain_steps": 1, "detection": det_cfg, "segmentation": {"backbone": "resnet50"}},
        )
    )
    trainer = Trainer(cfg)
    summary = trainer.fit()
    out = Path(summary["out_dir"])
    assert summary["steps"] == 1 and summary["task_steps"] == 1
    rows = read_rows(out / "train_log.csv")
    assert [(r["stage"], r["step"]) for r in rows] == [("tasks", "1"), ("fusion", "1")]
    assert rows[0]["task_det"] != "" and rows[0]["task_seg"] != ""
    assert any(r["det_fused"] != "" for r in rows[1:]) and any(r["seg"] != "" for r in rows[1:])
    assert any(r["det_ir"] != "" for r in rows[1:])  # L_det^I, L_det^V train the joint detector
    log = (out / "log.txt").read_text()
    assert "plain" in log and "fusion loss only" in log
    assert "detection: Faster R-CNN R50-FPN, 3 classes ['person', 'bicycle', 'car']" in log
    for name in ("detector.safetensors", "segmenter.safetensors"):
        assert (out / name).is_file()
    state = torch.load(out / "last.state.pt", weights_only=True)
    assert state["detector"] is not None and state["task_optimizer"] is not None
    # the saved detector reloads as tasks.detection.weights
    from tsjnet_sdk.training.tasks import build_detector, load_task_weights

    notes = load_task_weights(build_detector(3, 64, 64, "bn"), out / "detector.safetensors", "detector")
    assert not any("re-initialised" in n for n in notes)


# ----------------------------------------------------------------------------------------------
# CLI and torchrun


def _write_toml(path: Path, data_root: Path, out_dir: Path, extra: str = "") -> Path:
    path.write_text(
        f'[run]\nout_dir = "{out_dir}"\nmax_steps = 2\nlog_every = 1\nprogress = false\ntensorboard = false\nnum_threads = 1\n{extra}'
        f'[model]\nname = "tsjnet-tiny"\n[data]\ncrop_size = 32\nbatch_size = 2\n'
        f'[[data.datasets]]\nroot = "{data_root}"\n'
    )
    return path


def test_cli_train_and_resume(tmp_path, data_dir):
    from typer.testing import CliRunner

    from tsjnet_sdk.cli import app  # the real `tsjnet` command line

    cfg = _write_toml(tmp_path / "c.toml", data_dir, tmp_path / "unused")
    runner = CliRunner()
    res = runner.invoke(app, ["train", str(cfg), "--out-dir", str(tmp_path / "cli"), "--set", "run.checkpoint_every=1"])
    assert res.exit_code == 0, res.output
    assert "trained 2 step(s)" in res.output and (tmp_path / "cli" / "last.safetensors").is_file()
    res = runner.invoke(app, ["train", str(cfg), "--out-dir", str(tmp_path / "cli"), "--resume", "--max-steps", "3"])
    assert res.exit_code == 0, res.output
    assert "resumed from" in res.output and "trained 3 step(s)" in res.output
    res = runner.invoke(app, ["train", str(cfg), "--set", "data.crop_size=33"])
    assert res.exit_code == 2 and "multiples of 32" in res.output
    res = runner.invoke(app, ["train", str(cfg), "--out-dir", str(tmp_path / "none"), "--resume"])
    assert res.exit_code == 1 and "not found" in res.output


def test_cli_module_imports_no_torch():
    code = "import sys, tsjnet_sdk.training.cli, tsjnet_sdk.training; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_torchrun_two_gloo_processes(tmp_path, data_dir):
    cfg = _write_toml(tmp_path / "c.toml", data_dir, tmp_path / "ddp", extra='device = "cpu"\n')
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "tsjnet_sdk.training",
            str(cfg),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = tmp_path / "ddp"
    log = (out / "log.txt").read_text()
    assert "2 process(es) (gloo)" in log and "batch 2 x 2 process(es)" in log
    state = torch.load(out / "last.state.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng"]) == 2 and state["progress"]["step"] == 2
    assert [int(r["step"]) for r in read_rows(out / "train_log.csv")] == [1, 2]
