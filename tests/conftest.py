"""Shared test helpers: where ../shared/data is, and seeding."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def require_shared_data(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs the real data at {path} (../shared/data beside the checkout); not present here")
    return path


@pytest.fixture
def msrs_pair() -> tuple[Path, Path]:
    root = require_shared_data("msrs", "test")
    return root / "ir" / "00004N.png", root / "vi" / "00004N.png"
