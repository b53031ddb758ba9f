"""Packaging: the runtime imports without torch, every sub-package is installed, the CLI answers."""

from __future__ import annotations

import subprocess
import sys

import tomllib
from conftest import REPO_ROOT


def test_import_does_not_pull_torch():
    code = (
        "import tsjnet_sdk, tsjnet_sdk.imaging, tsjnet_sdk.cli, tsjnet_sdk.models, tsjnet_sdk.runtime, sys\n"
        "from tsjnet_sdk.models import read_checkpoint_metadata, list_configs\n"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pyproject_lists_every_package():
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    setuptools = pyproject["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    mapping = setuptools["package-dir"]
    found = set()
    for name, folder in mapping.items():
        root = REPO_ROOT / folder
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root)
            sub = ".".join(rel.parts)
            found.add(f"{name}.{sub}" if sub else name)
    found = {f for f in found if not any(part.startswith("__") for part in f.split("."))}
    # Folders under tsjnet_sdk/ that are mapped elsewhere resolve to the mapped folder.
    assert found == listed, f"pyproject packages list is out of date: add {sorted(found - listed)}, drop {sorted(listed - found)}"


def test_cli_version():
    out = subprocess.run([sys.executable, "-m", "tsjnet_sdk.cli", "--version"], capture_output=True, text=True, check=True)
    import tsjnet_sdk

    assert out.stdout.strip() == f"tsjnet-sdk {tsjnet_sdk.__version__}"
