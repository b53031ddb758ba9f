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


def test_only_the_stage_folders_resolve_under_the_package():
    code = (
        "import importlib, tsjnet_sdk\n"
        "for stage in ('export', 'training', 'kernels', 'benchmarks'):\n"
        "    module = importlib.import_module('tsjnet_sdk.' + stage)\n"
        "    assert module.__file__.endswith(stage + '/__init__.py'), module.__file__\n"
        "for other in ('tsjnet_sdk.tsjnet_sdk', 'tsjnet_sdk.tests', 'tsjnet_sdk.scripts', 'tsjnet_sdk.docs'):\n"
        "    try:\n"
        "        importlib.import_module(other)\n"
        "    except ModuleNotFoundError:\n"
        "        continue\n"
        "    raise AssertionError(other + ' imports')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/")


def test_every_sdk_error_derives_from_tsjnet_error():
    """An app can catch any SDK error with one except clause; each keeps its built-in base as well."""
    import ast
    import importlib

    from tsjnet_sdk import TsjnetError

    checked = []
    for folder in ("tsjnet_sdk", "export", "training", "kernels", "benchmarks"):
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.ClassDef) or node.name in ("SectionTimeout", "TsjnetError"):
                    continue
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                if not any(b.endswith(("Error", "Exception")) or b == "BackendUnavailable" for b in bases):
                    continue
                rel = path.relative_to(REPO_ROOT).with_suffix("")
                parts = rel.parts if folder == "tsjnet_sdk" else ("tsjnet_sdk", *rel.parts)
                module = importlib.import_module(".".join(p for p in parts if p != "__init__"))
                cls = getattr(module, node.name)
                assert issubclass(cls, TsjnetError), f"{rel}.{node.name} does not derive from TsjnetError"
                checked.append(node.name)
    assert {"ImageError", "BackendUnavailable", "ExportError", "ModelFileError"} <= set(checked) and len(checked) >= 20
