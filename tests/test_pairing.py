"""Pairing by name (tsjnet_sdk.pairing): the one rule, and training data pairs exactly as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import require_shared_data

from tsjnet_sdk.imaging import IMAGE_SUFFIXES
from tsjnet_sdk.pairing import PairingError, index_images, match_folders, pair_folders


def _old_training_index(folder: Path) -> dict[str, Path]:
    """training/data.py's index before the shared module (kept here to prove the pairs did not change)."""
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            if p.stem in out:
                raise ValueError("duplicate")
            out[p.stem] = p
    return out


def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x")


def test_rule(tmp_path: Path) -> None:
    _touch(tmp_path / "ir", "b.png", "a.JPG", "c.png", ".hidden.png", "notes.txt", "only_ir.png")
    _touch(tmp_path / "vi", "a.png", "b.tif", "c.bmp", "only_vi.jpeg")
    (tmp_path / "ir" / "dir.png").mkdir()
    matched = pair_folders(tmp_path / "ir", tmp_path / "vi")
    assert [(s, i.name, v.name) for s, i, v in matched.rows] == [
        ("a", "a.JPG", "a.png"),
        ("b", "b.png", "b.tif"),
        ("c", "c.png", "c.bmp"),
    ]
    assert matched.unpaired_labels(("ir", "visible")) == ["only_ir (ir only)", "only_vi (visible only)"]
    _touch(tmp_path / "fused", "a.png", "c.png")
    three = match_folders(tmp_path / "ir", tmp_path / "vi", tmp_path / "fused")
    assert [r[0] for r in three.rows] == ["a", "c"] and three.unmatched[2] == []
    _touch(tmp_path / "dup", "x.png", "x.jpg")
    with pytest.raises(PairingError, match="two images share the name 'x'"):
        index_images(tmp_path / "dup")
    with pytest.raises(PairingError, match="not a folder"):
        index_images(tmp_path / "missing")


def test_training_pairs_are_unchanged_on_the_real_data() -> None:
    """Same stems, same files, same order as training/data.py's own index had, on every data folder."""
    from tsjnet_sdk.training.data import _index_images

    root = require_shared_data()
    folders = [p for p in root.rglob("*") if p.is_dir() and p.name in ("ir", "vi")]
    assert folders
    for folder in folders:
        assert list(_index_images(folder).items()) == list(_old_training_index(folder).items()), folder
