"""Pairing infrared / visible (/ fused) image files by name: the one rule every caller uses.

Two folders pair by file stem (``ir/00004N.png`` with ``vi/00004N.jpg``), case-sensitively; only
image files (:data:`tsjnet_sdk.imaging.IMAGE_SUFFIXES`) count, hidden files (``.name``, e.g. macOS
``._x.png``) are skipped, and two images sharing a stem in one folder are an error (which one would
pair?). Pairs come sorted by stem. Used by ``tsjnet fuse`` / ``demo`` / ``eval``, training data and the
benchmarks. Imports only numpy-free standard library code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tsjnet_sdk.errors import TsjnetError
from tsjnet_sdk.imaging import IMAGE_SUFFIXES


class PairingError(TsjnetError, ValueError):
    """A folder that is missing, or that holds two images with one name."""


def index_images(folder: str | os.PathLike) -> dict[str, Path]:
    """Image files of ``folder`` by stem, in name order (not recursive; hidden files skipped).

    Raises:
        PairingError: the folder does not exist, or two images share a stem (``a.png`` and ``a.jpg``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PairingError(f"{folder}: not a folder (image folder not found)")
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file():
            continue
        if p.stem in out:
            raise PairingError(
                f"{folder}: two images share the name {p.stem!r} ({out[p.stem].name}, {p.name}); "
                "keep one of them so that pairs can be matched by name"
            )
        out[p.stem] = p
    return out


@dataclass
class Matched:
    """Files of several folders matched by stem: ``rows`` (stem, path per folder), sorted by stem, and
    ``unmatched``: per folder, the stems found there but not in every folder."""

    rows: list[tuple[str, ...]] = field(default_factory=list)
    unmatched: list[list[str]] = field(default_factory=list)

    def unpaired_labels(self, names: tuple[str, ...] = ("ir", "visible")) -> list[str]:
        """``"stem (ir only)"`` style labels of the unmatched files, folder by folder."""
        return [f"{stem} ({name} only)" for name, stems in zip(names, self.unmatched) for stem in stems]


def match_folders(*folders: str | os.PathLike) -> Matched:
    """Match two or more folders by stem (see the module docstring for the rule)."""
    indexes = [index_images(f) for f in folders]
    common = set(indexes[0]).intersection(*indexes[1:])
    rows = [(stem, *(index[stem] for index in indexes)) for stem in sorted(common)]
    return Matched(rows=rows, unmatched=[sorted(set(index) - common) for index in indexes])


def pair_folders(ir_dir: str | os.PathLike, vis_dir: str | os.PathLike) -> Matched:
    """IR/visible pairs: ``rows`` of (stem, ir_path, vis_path) sorted by stem, and the unmatched stems."""
    return match_folders(ir_dir, vis_dir)
