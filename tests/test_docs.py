"""Docs are code: docs/jetson.md's commands and the README's Python blocks run verbatim from the files.

Fenced blocks are tagged by their info string: ```bash / ```python run here; ```bash jetson / ```python jetson
need a Jetson (apt, TensorRT, a GPU, cameras, a network copy) and are skipped with that reason; ```bash dev
needs the developers' install (torch) and runs in this test's interpreter environment.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
JETSON_GUIDE = REPO_ROOT / "docs" / "jetson.md"
README = REPO_ROOT / "README.md"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.M | re.S)


def code_blocks(path: Path) -> list[tuple[str, str, str, str]]:
    """(language, tag, code, section heading) of every fenced block, in file order."""
    text = path.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        headings = re.findall(r"^## (.+)$", text[: match.start()], re.M)
        blocks.append((match.group(1), match.group(2).strip(), match.group(3), headings[-1] if headings else ""))
    return blocks


def commands(code: str) -> list[str]:
    """Shell commands of a block: lines that are not comments or blank, continuation lines joined."""
    joined = code.replace("\\\n", " ")
    return [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_guide_reaches_a_camera_stream_in_at_most_10_commands_and_marks_what_needs_a_jetson() -> None:
    quick = [b for b in code_blocks(JETSON_GUIDE) if b[3] == "The 8 commands"]
    steps = [c for lang, _, code, _ in quick if lang == "bash" for c in commands(code)]
    assert len(steps) == 8 <= 10, steps
    assert any(c.startswith("tsjnet fuse /dev/video0 /dev/video1") for c in steps)  # ends in a camera stream
    assert "torch" not in " ".join(steps)  # nothing on the device installs torch
    for lang, tag, code, _ in code_blocks(JETSON_GUIDE):
        for command in commands(code) if lang == "bash" else []:
            needs_device = command.startswith(("sudo ", "scp ", "trtexec ", "tsjnet build-plugin", "tsjnet fuse ")) or (
                "--format engine" in command
            )
            assert not needs_device or tag == "jetson", f"mark as `bash jetson`: {command}"


@pytest.mark.slow
def test_the_guide_runs_verbatim_where_a_cpu_can(tmp_path: Path) -> None:
    """The PC and Orin blocks a CPU can run, in order, each block in one shell (the Orin's ~ is a fresh folder here):
    the wheel, the virtual environment, the install from the wheel (PyPI for its dependencies), `tsjnet doctor`."""
    if shutil.which("python3") is None:
        pytest.skip("needs python3 on PATH, as the guide does")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(HOME=str(home), PIP_DISABLE_PIP_VERSION_CHECK="1")
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not p.endswith(".venv/bin"))
    ran, skipped = [], []
    for lang, tag, code, section in code_blocks(JETSON_GUIDE):
        if lang != "bash":
            continue
        if tag == "jetson":
            skipped.extend(commands(code))
            continue
        if tag == "dev":  # the developers' install: this interpreter's environment, which has torch
            script = f"export PATH={Path(sys.executable).parent}:$PATH\ncd {tmp_path}\n{code}"
        else:  # "on your PC, in a clone" for the wheel; the Orin's home for the rest
            script = f"cd {REPO_ROOT if 'pip wheel' in code else home}\n{code}"
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{section}: {code}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        ran.extend(commands(code))
        if "tsjnet doctor" in code:
            assert "default model" in proc.stdout and "tsjnet-edge" in proc.stdout, proc.stdout
    wheels = list((home / "tsjnet-wheels").glob("tsjnet_sdk-*.whl"))
    assert len(wheels) == 1
    names = set(zipfile.ZipFile(wheels[0]).namelist())  # the wheel carries the shipped model files
    assert {f"tsjnet_sdk/weights/tsjnet-edge{s}" for s in (".onnx", "_fp16.onnx", ".safetensors", ".parity.json")} <= names
    assert (home / "tsjnet" / "bin" / "tsjnet").exists()
    assert (tmp_path / "tsjnet-edge_plugin.onnx").exists()
    assert len(ran) >= 5 and skipped, (ran, skipped)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(sum(1 for b in code_blocks(README) if b[0] == "python")))
def test_readme_python_blocks_run_verbatim(index: int, tmp_path: Path) -> None:
    code = [c for lang, tag, c, _ in code_blocks(README) if lang == "python"][index]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"README python block {index}:\n{code}\n{proc.stderr[-3000:]}"
