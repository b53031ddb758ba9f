"""Faults while writing: a writer killed (SIGKILL) at a random point leaves the previous file or none,
never a partial one; a full disk gives DiskFullError naming the file and keeps the previous file; and
every writer in the SDK goes through tsjnet_sdk/atomic.py."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from tsjnet_sdk.atomic import DiskFullError, atomic_path, write_bytes_atomic

REPO = Path(__file__).resolve().parents[1]
KILLS_PER_WRITER = 3

# Each child writes version 0, 1, 2, ... of one artefact to sys.argv[1] forever (large enough that a
# random kill usually lands inside a write), printing "ready" once the first version is complete.
_CHILD = {
    "checkpoint": """
import sys, torch
from tsjnet_sdk.models import create_model, save_checkpoint
torch.manual_seed(0)
model = create_model("tsjnet-tiny")
first = next(model.parameters())
for i in range(10**9):
    with torch.no_grad():
        first.fill_(float(i))
    save_checkpoint(model, sys.argv[1], extra_metadata={"version": str(i)})
    if i == 0: print("ready", flush=True)
""",
    "onnx": """
import sys, numpy as np, onnx
from onnx import TensorProto, helper, numpy_helper
from tsjnet_sdk.atomic import atomic_path
for i in range(10**9):
    weight = numpy_helper.from_array(np.full(1 << 20, i, np.float32), "w")
    graph = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1 << 20])], [weight])
    proto = helper.make_model(graph)
    with atomic_path(sys.argv[1]) as tmp:  # the two lines export_onnx writes with
        onnx.save(proto, str(tmp))
    if i == 0: print("ready", flush=True)
""",
    "engine": """
import sys
from tsjnet_sdk.engine_format import write_engine_file
engine = bytes(range(256)) * (1 << 15)
for i in range(10**9):
    write_engine_file(sys.argv[1], {"version": i}, engine)
    if i == 0: print("ready", flush=True)
""",
    "image": """
import sys, numpy as np
from tsjnet_sdk.imaging import write_image
rng = np.random.default_rng(0)
frame = rng.integers(0, 256, (768, 1024, 3), dtype=np.uint8)
for i in range(10**9):
    write_image(sys.argv[1], frame)
    if i == 0: print("ready", flush=True)
""",
    "results": """
import sys, json
from tsjnet_sdk.atomic import write_bytes_atomic
# The rows are serialised once: then nearly all of each iteration is the write itself, so a random kill
# lands inside it (building the document every time left the write a small fraction of the loop).
rows = json.dumps([{"name": f"pair{j}", "EN": j * 0.5} for j in range(60000)]).encode()
for i in range(10**9):
    write_bytes_atomic(sys.argv[1], b'{"version": %d, "rows": ' % i + rows + b"}")
    if i == 0: print("ready", flush=True)
""",
}
_SUFFIX = {"checkpoint": ".safetensors", "onnx": ".onnx", "engine": ".engine", "image": ".png", "results": ".json"}


def _check_complete(kind: str, path: Path) -> None:
    """Raise unless ``path`` is one whole, valid version of the artefact."""
    if kind == "checkpoint":
        from tsjnet_sdk.models import load_checkpoint

        load_checkpoint(path)
    elif kind == "onnx":
        import onnx
        from onnx import numpy_helper

        proto = onnx.load(str(path))
        w = numpy_helper.to_array(proto.graph.initializer[0])
        assert w.shape == (1 << 20,) and (w == w[0]).all()
    elif kind == "engine":
        from tsjnet_sdk.engine_format import read_engine_file

        meta, engine = read_engine_file(path)
        assert engine == bytes(range(256)) * (1 << 15)
    elif kind == "image":
        from tsjnet_sdk.imaging import read_image

        assert read_image(path).shape == (768, 1024, 3)
    else:
        assert len(json.loads(path.read_text())["rows"]) == 60000


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(_CHILD))
def test_sigkill_mid_write_leaves_old_file_or_none(kind, tmp_path):
    rng = np.random.default_rng(sum(map(ord, kind)))
    target = tmp_path / f"artefact{_SUFFIX[kind]}"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    leftovers = attempts = 0
    # At least KILLS_PER_WRITER kills, and on until one has landed inside a write (at most 10).
    while attempts < KILLS_PER_WRITER or (leftovers == 0 and attempts < 10):
        attempts += 1
        child = subprocess.Popen([sys.executable, "-c", _CHILD[kind], str(target)], stdout=subprocess.PIPE, env=env)
        try:
            assert child.stdout.readline().strip() == b"ready", f"{kind} writer failed to start"
            time.sleep(float(rng.uniform(0.0, 0.4)))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        assert target.exists()  # written at least once before the kill
        _check_complete(kind, target)
        # A kill inside a write leaves the hidden temporary file (never the target): remove it as a
        # restarted app would, and count it to show that kills did land mid-write.
        for tmp in tmp_path.glob(f".{target.name}.*.tmp"):
            leftovers += 1
            tmp.unlink()
    assert leftovers >= 1, f"no kill landed inside a write in {attempts} attempts"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


# -- full disk --------------------------------------------------------------------------------------


@pytest.fixture
def disk_full(monkeypatch):
    """Make atomic_path's temporary file a symlink to /dev/full: every write to it fails with a real
    ENOSPC from the kernel, whatever the writer (Python, Pillow, protobuf, safetensors' Rust)."""
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full (Linux)")
    import tsjnet_sdk.atomic as atomic

    real = tempfile.mkstemp

    def mkstemp_on_full_disk(*args, **kwargs):
        fd, name = real(*args, **kwargs)
        os.close(fd)
        os.unlink(name)
        os.symlink("/dev/full", name)
        return os.open(name, os.O_WRONLY), name

    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp_on_full_disk)


def _writers(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from tsjnet_sdk.engine_format import write_engine_file
    from tsjnet_sdk.imaging import write_image
    from tsjnet_sdk.metrics.folder import FolderReport

    proto = helper.make_model(
        helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        )
    )

    def onnx_writer(path):
        with atomic_path(path) as tmp:
            onnx.save(proto, str(tmp))

    def checkpoint_writer(path):
        import torch

        from tsjnet_sdk.models import create_model, save_checkpoint

        torch.manual_seed(0)
        save_checkpoint(create_model("tsjnet-tiny"), path)

    def csv_writer(path):
        report = FolderReport.__new__(FolderReport)
        report.metrics, report.preset, report.rows = ["EN"], "fast", [("a", {"EN": 1.0})]
        report.write_csv(path)

    return {
        "results.json": lambda p: write_bytes_atomic(p, b"{}" * 10000),
        "fused.png": lambda p: write_image(p, np.zeros((64, 64, 3), np.uint8)),
        "fused.tif": lambda p: write_image(p, np.zeros((64, 64), np.uint16)),
        "model.engine": lambda p: write_engine_file(p, {"a": 1}, b"x" * 10000),
        "model.onnx": onnx_writer,
        "model.safetensors": checkpoint_writer,
        "metrics.csv": csv_writer,
    }


@pytest.mark.parametrize(
    "name", ["results.json", "fused.png", "fused.tif", "model.engine", "model.onnx", "model.safetensors", "metrics.csv"]
)
def test_full_disk_is_a_clear_error_and_keeps_the_previous_file(name, tmp_path, request):
    if name == "metrics.csv":
        pytest.importorskip("scipy")
    path = tmp_path / name
    path.write_bytes(b"previous version")
    writer = _writers(tmp_path)[name]
    request.getfixturevalue("disk_full")
    with pytest.raises(DiskFullError, match=rf"{name}: disk full while writing .* previous file .* unchanged") as info:
        writer(path)
    assert isinstance(info.value, OSError)
    assert path.read_bytes() == b"previous version"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left


def test_atomic_path_keeps_old_file_on_any_error(tmp_path):
    path = tmp_path / "a.bin"
    write_bytes_atomic(path, b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer failed")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["a.bin"]
    write_bytes_atomic(path, b"new")
    assert path.read_bytes() == b"new" and oct(path.stat().st_mode & 0o777) != oct(0o600)


# -- every writer goes through atomic.py ------------------------------------------------------------

# Calls that create or overwrite a file. Each must sit inside a `with atomic_path(...)` block (or be
# write_bytes_atomic / atomic_path itself), or write scratch files inside a
# `with tempfile.TemporaryDirectory()` block (they vanish with it; never an artefact).
_WRITE_CALLS = {"write_text", "write_bytes", "save", "save_file", "savefig", "tofile", "dump"}
_PACKAGES = ("tsjnet_sdk", "export", "training", "benchmarks", "kernels")
# Files this rule does not cover, with the reason.
_EXEMPT = {
    "tsjnet_sdk/atomic.py": "the implementation",
    "benchmarks/bench_timing.py": "writes /proc/self/clear_refs (a kernel control file, not an artefact)",
}


def _unprotected_writes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    protected: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.With, ast.AsyncWith)) and any(
            isinstance(item.context_expr, ast.Call)
            and getattr(item.context_expr.func, "id", getattr(item.context_expr.func, "attr", ""))
            in ("atomic_path", "TemporaryDirectory")
            for item in node.items
        ):
            for inner in ast.walk(node):
                protected.add(id(inner))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or id(node) in protected:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        writes_file = name in _WRITE_CALLS and (
            isinstance(func, ast.Attribute) or name != "save"
        )  # bare save(): safetensors' in-memory serializer
        if (
            name == "open"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and any(c in str(node.args[1].value) for c in "wax")
        ):
            writes_file = True
        if name == "dump" and not (isinstance(func, ast.Attribute) and getattr(func.value, "id", "") in ("json", "pickle")):
            writes_file = False
        if (
            name == "save"
            and isinstance(func, ast.Attribute)
            and getattr(func.value, "id", "") == "torch"
            and node.args
            and isinstance(node.args[-1], ast.Name)
            and node.args[-1].id == "buf"
        ):
            writes_file = False  # torch.save into an in-memory buffer, written with write_bytes_atomic
        if writes_file:
            found.append(f"{path.relative_to(REPO)}:{node.lineno} {ast.unparse(node)[:80]}")
    return found


def test_every_writer_goes_through_atomic_py():
    offenders = []
    for package in _PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if str(path.relative_to(REPO)) not in _EXEMPT:
                offenders += _unprotected_writes(path)
    assert not offenders, "file writes outside tsjnet_sdk.atomic:\n" + "\n".join(offenders)


def test_tsjnet_fuse_on_a_full_disk_fails_cleanly(tmp_path, request):
    from typer.testing import CliRunner

    from tsjnet_sdk.cli import app
    from tsjnet_sdk.imaging import write_image

    rng = np.random.default_rng(0)
    ir = write_image(tmp_path / "ir.png", rng.integers(0, 256, (32, 32), dtype=np.uint8))
    vis = write_image(tmp_path / "vis.png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    out = tmp_path / "fused.png"
    out.write_bytes(b"previous fused image")
    request.getfixturevalue("disk_full")
    result = CliRunner().invoke(app, ["fuse", str(ir), str(vis), "-o", str(out), "--config", "tsjnet-tiny"])
    assert result.exit_code == 2, result.output
    assert "fused.png: disk full while writing" in " ".join(result.output.split())
    assert out.read_bytes() == b"previous fused image"
