"""The house lint: `ruff check` with the rules configured in pyproject.toml must find nothing, and `ruff format`
must change nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -r requirements/ci.txt installs it)")
    res = subprocess.run([ruff, "check", "--no-cache", "."], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, (
        f"ruff found problems (fix them or, with a reason, configure pyproject):\n{res.stdout}{res.stderr}"
    )


def test_ruff_format_leaves_every_file_as_it_is() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -r requirements/ci.txt installs it)")
    res = subprocess.run([ruff, "format", "--check", "--no-cache", "."], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"run `ruff format .` (the house style):\n{res.stdout}{res.stderr}"
