"""Every command run without an optional package ends in one line naming the install that brings it: no
traceback, never a hint that rich markup cut short (`pip install 'tsjnet-sdk'`)."""

from __future__ import annotations

import pytest
from conftest import REPO_ROOT, run_cli_without

CONFIG = str(REPO_ROOT / "training" / "configs" / "edge_balanced.toml")
CASES = [
    (["fuse", "a.png", "b.png"], "pip install 'tsjnet-sdk[onnx]'"),
    (["fuse", "a.png", "b.png", "--backend", "torch"], "pip install 'tsjnet-sdk[torch]'"),
    (["export", "tsjnet-edge"], "pip install 'tsjnet-sdk[export]'"),
    (["train", CONFIG], "pip install 'tsjnet-sdk[torch]'"),
    (["bench", "--runs", "1"], "pip install 'tsjnet-sdk[torch]'"),
    (["quality", "--datasets", "msrs"], "pip install 'tsjnet-sdk[torch]'"),
    (["flops"], "pip install 'tsjnet-sdk[torch]'"),
    (["demo", "--count", "1", "--no-real"], "pip install 'tsjnet-sdk[onnx]'"),
    (["soak", "--frames", "2"], "pip install 'tsjnet-sdk[torch]'"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("args", "hint"), CASES, ids=[" ".join(a[:2]) for a, _ in CASES])
def test_a_missing_extra_is_one_clear_line(args, hint, tmp_path) -> None:
    proc = run_cli_without({"torch", "onnxruntime", "onnx"}, args, cwd=tmp_path, timeout=180)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and hint in last, proc.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_every_install_hint_names_an_extra_that_exists() -> None:
    import re

    import tomllib

    extras = set(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    hints = set()
    for folder in ("tsjnet_sdk", "export", "training", "kernels", "benchmarks"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            for match in re.finditer(r"tsjnet-sdk\[([a-z0-9,-]+)\]", path.read_text()):
                hints.update(match.group(1).split(","))
    assert {"torch", "onnx", "export", "video"} <= hints and hints <= extras, hints - extras
