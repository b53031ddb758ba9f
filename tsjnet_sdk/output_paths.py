"""Where fused images may be written: never over an input, never into an input folder, and only where a
file can be created. Checked by ``tsjnet fuse`` before any model loads or pair is fused, so a mistyped
``-o`` costs nothing and destroys nothing."""

from __future__ import annotations

import os
from pathlib import Path

from tsjnet_sdk.imaging import IMAGE_SUFFIXES


def _writable_problem(target: Path, what: str) -> str | None:
    """Why ``target`` (a file or folder to create or replace) cannot be written, or None."""
    ancestor = target if target.is_dir() else target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{what} {target} cannot be created: {ancestor} is a file, not a folder"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{what} {target} cannot be written: no write permission in {ancestor}"
    return None


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def output_file_problem(output: Path, inputs: tuple[Path, Path]) -> str | None:
    """Why the single-pair ``output`` must not be written (it is an input, a folder, unwritable), or None."""
    for source in inputs:
        if _same_path(output, source):
            return f"--output {output} is the input {source}: writing it would destroy the input; choose another name"
    if output.is_dir():
        return f"--output {output} is a folder; give an image file name (e.g. {output / 'fused.png'})"
    return _writable_problem(output, "--output")


def output_folder_problem(out_dir: Path, inputs: tuple[Path, Path]) -> str | None:
    """Why ``out_dir`` must not receive fused images (an input folder or inside one, a file, unwritable), or None."""
    if out_dir.suffix.lower() in IMAGE_SUFFIXES:
        return f"for folders, --output is a folder, got the file name {out_dir}"
    resolved = out_dir.resolve()
    for source in inputs:
        src = source.resolve()
        if resolved == src or src in resolved.parents:
            return (
                f"--output {out_dir} is inside the input folder {source}: fused images would replace or mix with "
                "the inputs; choose a folder outside the inputs"
            )
    if out_dir.exists() and not out_dir.is_dir():
        return f"--output {out_dir} is a file; for folders it must be a folder"
    return _writable_problem(out_dir, "--output")
