"""Checkpoints: config travels with the weights, atomic writes, clear errors on bad files."""

from __future__ import annotations

import pytest
import torch

from tsjnet_sdk.models import CheckpointError, checkpoint_config, create_model, load_checkpoint, save_checkpoint


def test_round_trip_rebuilds_the_same_model(tmp_path):
    torch.manual_seed(0)
    model = create_model("tsjnet-tiny", nat_rpb=False)
    model.train()
    model(torch.rand(2, 1, 64, 64), torch.rand(2, 1, 64, 64))  # move BN running stats away from defaults
    model.eval()
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp file left behind
    assert checkpoint_config(path) == model.config
    loaded = load_checkpoint(path)
    x, y = torch.rand(1, 1, 40, 50), torch.rand(1, 1, 40, 50)
    with torch.no_grad():
        assert torch.equal(model.fuse(x, y), loaded.fuse(x, y))
    assert not loaded.training


def test_failed_save_leaves_no_partial_file(tmp_path, monkeypatch):
    import pathlib

    def boom(self, data):
        with open(self, "wb") as f:
            f.write(data[:7])
        raise OSError("disk full")

    monkeypatch.setattr(pathlib.Path, "write_bytes", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(create_model("tsjnet-tiny"), tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.safetensors")
    text = tmp_path / "notes.txt"
    text.write_text("this is not a checkpoint at all, just some text")
    with pytest.raises(CheckpointError, match="not a safetensors checkpoint"):
        load_checkpoint(text)
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other))
    with pytest.raises(CheckpointError, match="not a tsjnet checkpoint"):
        load_checkpoint(other)
    good = save_checkpoint(create_model("tsjnet-tiny"), tmp_path / "good.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(truncated)


def test_atomic_writes_get_normal_permissions(tmp_path):
    """Files written through atomic_path are not left with mkstemp's private 0600 mode."""
    import os

    import torch

    from tsjnet_sdk.atomic import write_bytes_atomic
    from tsjnet_sdk.models import create_model, save_checkpoint

    path = write_bytes_atomic(tmp_path / "x.bin", b"data")
    torch.manual_seed(0)
    ckpt = save_checkpoint(create_model("tsjnet-tiny"), tmp_path / "c.safetensors")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert ckpt.stat().st_mode & 0o777 == 0o666 & ~umask
    assert path.read_bytes() == b"data" and sorted(p.name for p in tmp_path.iterdir()) == ["c.safetensors", "x.bin"]


def test_float16_storage_halves_the_file_and_loads_as_float32(tmp_path):
    from tsjnet_sdk.models import read_checkpoint_metadata

    torch.manual_seed(0)
    model = create_model("tsjnet-tiny")
    model.train()
    model(torch.rand(2, 1, 64, 64), torch.rand(2, 1, 64, 64))  # BN running stats and step counts move
    model.eval()
    full = save_checkpoint(model, tmp_path / "fp32.safetensors")
    half = save_checkpoint(model, tmp_path / "fp16.safetensors", dtype=torch.float16)
    assert half.stat().st_size < 0.55 * full.stat().st_size
    assert read_checkpoint_metadata(half)["stored_dtype"] == "float16"
    loaded = load_checkpoint(half)
    state, original = loaded.state_dict(), model.state_dict()
    assert all(v.dtype == original[k].dtype for k, v in state.items())  # float32 model, int64 counters
    counters = [k for k, v in original.items() if not v.is_floating_point()]
    assert counters and all(torch.equal(state[k], original[k]) for k in counters)
    x, y = torch.rand(1, 1, 48, 64), torch.rand(1, 1, 48, 64)
    with torch.no_grad():
        err = (model.fuse(x, y) - loaded.fuse(x, y)).abs().max().item()
    assert 0 < err < 5e-3  # rounded once to fp16, not lost
    with pytest.raises(ValueError, match="floating-point"):
        save_checkpoint(model, tmp_path / "bad.safetensors", dtype=torch.int8)


def test_ship_writes_float16_weights_with_provenance(tmp_path):
    from tsjnet_sdk.hashing import file_sha256
    from tsjnet_sdk.models import read_checkpoint_metadata
    from tsjnet_sdk.training.ship import ship

    torch.manual_seed(0)
    model = create_model("tsjnet-tiny").eval()
    run = save_checkpoint(model, tmp_path / "last.safetensors", extra_metadata={"training_step": "42"})
    config = tmp_path / "edge.toml"
    config.write_text("[run]\n")
    shipped = ship(run, config, tmp_path / "shipped.safetensors")
    meta = read_checkpoint_metadata(shipped)
    assert meta["stored_dtype"] == "float16" and meta["training_step"] == "42"
    assert meta["source_sha256"] == file_sha256(run) and meta["training_config"].endswith("edge.toml")
    with pytest.raises(ValueError, match="training_step"):
        ship(save_checkpoint(model, tmp_path / "plain.safetensors"), config, tmp_path / "x.safetensors")
    with pytest.raises(FileNotFoundError, match="training config"):
        ship(run, tmp_path / "missing.toml", tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()
