"""SHA-256 of a file, read in 1 MiB blocks: the one digest for artefact metadata, the shipped-weights
record, the plugin library check and the benchmark caches. Standard library only (no torch)."""

from __future__ import annotations

import hashlib
import os


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of the file's bytes (64 characters)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
