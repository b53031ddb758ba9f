"""An adversarial corpus of model files, optimised-graph caches and process set-ups, built by code (issue 22):
each is refused with one clear SDK error before it can produce an output, or works correctly.

Classes (counted in docs/reliability.md, "Hostile inputs"):
  FOREIGN_GRAPHS    ONNX graphs that are not a TSJNet export (refused at load)
  WRONG_OUTPUTS     tsjnet-labelled graphs whose output cannot be a fusion (refused at the first call)
  BROKEN_CACHES     damaged or swapped ONNX Runtime optimised-graph caches (rebuilt, never run instead)
  processes         a Fuser used across os.fork / in spawn workers (works or a clear error, never a hang)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, TSJNET_TEST_PROPS, mean_onnx_model

from tsjnet_sdk import Fuser
from tsjnet_sdk.runtime import BackendUnavailable, ModelFileError, ModelOutputError, OrtOptions

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

DYNAMIC = ["N", 1, "H", "W"]
RNG = np.random.default_rng(7)
IR = RNG.integers(0, 256, (40, 48), dtype=np.uint8)
VIS = RNG.integers(0, 256, (40, 48, 3), dtype=np.uint8)


def graph_file(
    path: Path,
    nodes,
    inputs=None,
    outputs=None,
    inits=(),
    metadata=True,
    in_type=TensorProto.FLOAT,
    in_shape=DYNAMIC,
    out_type=TensorProto.FLOAT,
    out_shape=None,
) -> Path:
    """A small ONNX file: ``nodes`` over inputs ir, vis (by default) to the output(s) named in ``outputs``."""
    inputs = inputs or ["ir", "vis"]
    outputs = outputs or ["fused"]
    graph = helper.make_graph(
        nodes,
        "hostile",
        [helper.make_tensor_value_info(n, in_type, in_shape) for n in inputs],
        [helper.make_tensor_value_info(n, out_type, out_shape) for n in outputs],
        list(inits),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    if metadata:
        for key, value in TSJNET_TEST_PROPS.items():
            model.metadata_props.add(key=key, value=value)
    onnx.save(model, path)
    return path


def _const(name: str, value: float):
    return helper.make_tensor(name, TensorProto.FLOAT, [], [value])


MEAN = [helper.make_node("Add", ["ir", "vis"], ["s"]), helper.make_node("Mul", ["s", "half"], ["fused"])]
HALF = [_const("half", 0.5)]

# (id, builder(dir) -> path, regex of the load-time refusal)
FOREIGN_GRAPHS = [
    ("no-tsjnet-metadata", lambda d: graph_file(d / "m.onnx", MEAN, inits=HALF, metadata=False), "no tsjnet metadata"),
    (
        "only-other-tools-metadata",
        lambda d: _with_props(
            graph_file(d / "m.onnx", MEAN, inits=HALF, metadata=False), {"author": "someone", "tsjnet.precision": "fp32"}
        ),
        "no tsjnet metadata",
    ),
    (
        "output-named-out",
        lambda d: graph_file(d / "m.onnx", [helper.make_node("Max", ["ir", "vis"], ["out"])], outputs=["out"]),
        r"outputs are \['out'\]",
    ),
    (
        "two-outputs",
        lambda d: graph_file(
            d / "m.onnx",
            [helper.make_node("Max", ["ir", "vis"], ["fused"]), helper.make_node("Min", ["ir", "vis"], ["extra"])],
            outputs=["fused", "extra"],
        ),
        r"outputs are \['fused', 'extra'\]",
    ),
    (
        "inputs-named-a-b",
        lambda d: graph_file(d / "m.onnx", [helper.make_node("Max", ["a", "b"], ["fused"])], inputs=["a", "b"]),
        r"inputs are \['a', 'b'\]",
    ),
    (
        "one-input",
        lambda d: graph_file(d / "m.onnx", [helper.make_node("Identity", ["ir"], ["fused"])], inputs=["ir"]),
        r"inputs are \['ir'\]",
    ),
    (
        "fp16-inputs",
        lambda d: graph_file(
            d / "m.onnx",
            [helper.make_node("Max", ["ir", "vis"], ["fused"])],
            in_type=TensorProto.FLOAT16,
            out_type=TensorProto.FLOAT16,
        ),
        r"tensor\(float16\)",
    ),
    (
        "double-inputs",
        lambda d: graph_file(
            d / "m.onnx",
            [helper.make_node("Max", ["ir", "vis"], ["fused"])],
            in_type=TensorProto.DOUBLE,
            out_type=TensorProto.DOUBLE,
        ),
        r"tensor\(double\)",
    ),
    (
        "int-output",
        lambda d: graph_file(
            d / "m.onnx",
            [helper.make_node("Max", ["ir", "vis"], ["m"]), helper.make_node("Cast", ["m"], ["fused"], to=TensorProto.INT32)],
            out_type=TensorProto.INT32,
        ),
        r"tensor\(int32\)",
    ),
    (
        "rank-3-inputs",
        lambda d: graph_file(d / "m.onnx", [helper.make_node("Max", ["ir", "vis"], ["fused"])], in_shape=["N", "H", "W"]),
        "rank 3",
    ),
    (
        "rank-2-inputs",
        lambda d: graph_file(d / "m.onnx", [helper.make_node("Max", ["ir", "vis"], ["fused"])], in_shape=["H", "W"]),
        "rank 2",
    ),
    (
        "3-channel-inputs",
        lambda d: graph_file(d / "m.onnx", [helper.make_node("Max", ["ir", "vis"], ["fused"])], in_shape=["N", 3, "H", "W"]),
        "3 channels",
    ),
    (
        "two-channel-output",
        lambda d: graph_file(d / "m.onnx", [helper.make_node("Concat", ["ir", "vis"], ["fused"], axis=1)]),
        "fused has 2 channels",
    ),
    ("not-onnx-at-all", lambda d: _bytes(d / "m.onnx", b"\x08\x07garbage that is not a protobuf model"), "cannot load"),
]


def _with_props(path: Path, props: dict) -> Path:
    model = onnx.load(path)
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, path)
    return path


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("build, pattern", [c[1:] for c in FOREIGN_GRAPHS], ids=[c[0] for c in FOREIGN_GRAPHS])
def test_foreign_graph_is_refused_at_load(tmp_path, build, pattern):
    with pytest.raises((ModelFileError, BackendUnavailable), match=pattern):
        Fuser(build(tmp_path))


def test_foreign_graph_runs_with_the_explicit_opt_in(tmp_path):
    path = graph_file(tmp_path / "mine.onnx", MEAN, inits=HALF, metadata=False)
    out = Fuser(path, allow_foreign_model=True, gray=True)(IR, IR)
    assert np.array_equal(out, IR)
    with pytest.raises(BackendUnavailable, match="outputs are"):  # the opt-in covers metadata, not the I/O contract
        Fuser(
            graph_file(tmp_path / "bad.onnx", [helper.make_node("Max", ["ir", "vis"], ["out"])], outputs=["out"], metadata=False),
            allow_foreign_model=True,
        )


def test_engine_without_tsjnet_metadata_is_refused_before_tensorrt(tmp_path):
    """Checked from the header, before TensorRT is imported: runs on any machine (no GPU here)."""
    from tsjnet_sdk.engine_format import write_engine_file
    from tsjnet_sdk.runtime.backends.tensorrt_backend import TensorRTBackend

    path = tmp_path / "foreign.engine"
    write_engine_file(path, {"trt_flavour": "tensorrt"}, b"\x7fENGINE" + bytes(64))
    with pytest.raises(ModelFileError, match="no tsjnet metadata"):
        TensorRTBackend(path, "cuda")
    with pytest.raises(ModelFileError, match="no tsjnet metadata"):
        Fuser(path)


def test_cli_foreign_model_needs_the_flag(tmp_path):
    from typer.testing import CliRunner

    from tsjnet_sdk.cli import app
    from tsjnet_sdk.imaging import write_image

    ir, vis = write_image(tmp_path / "ir.png", IR), write_image(tmp_path / "vis.png", VIS)
    model = graph_file(tmp_path / "mine.onnx", MEAN, inits=HALF, metadata=False)
    args = ["fuse", str(ir), str(vis), "-m", str(model), "-o", str(tmp_path / "out.png")]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "--allow-foreign-model" in refused.output
    assert not (tmp_path / "out.png").exists()
    allowed = CliRunner().invoke(app, [*args, "--allow-foreign-model"])
    assert allowed.exit_code == 0, allowed.output


def test_cli_error_text_is_printed_as_is(tmp_path):
    """Rich markup used to eat bracketed text ("[N, 1, H, W]", "[torch]") from error messages."""
    from typer.testing import CliRunner

    from tsjnet_sdk.cli import app
    from tsjnet_sdk.imaging import write_image

    ir, vis = write_image(tmp_path / "ir.png", IR), write_image(tmp_path / "vis.png", VIS)
    model = graph_file(tmp_path / "m.onnx", [helper.make_node("Max", ["ir", "vis"], ["out"])], outputs=["out"])
    result = CliRunner().invoke(app, ["fuse", str(ir), str(vis), "-m", str(model), "-o", str(tmp_path / "o.png")])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "outputs are ['out']" in text and "[N, 1, H, W]" in text, result.output


def test_cli_errors_are_not_read_as_markup(capsys):
    from tsjnet_sdk.cli import _fail

    _fail("install it: pip install 'tsjnet-sdk[torch]'")
    assert "pip install 'tsjnet-sdk[torch]'" in capsys.readouterr().err


# (id, graph nodes and initialisers, regex of the first-call refusal)
WRONG_OUTPUTS = [
    ("1x1-mean", [helper.make_node("ReduceMean", ["ir"], ["fused"], keepdims=1, axes=None)], (), r"shape \[1, 1, 1, 1\]"),
    ("transposed", [helper.make_node("Transpose", ["ir"], ["fused"], perm=[0, 1, 3, 2])], (), r"shape \[1, 1, 48, 40\]"),
    ("doubled-batch", [helper.make_node("Concat", ["ir", "vis"], ["fused"], axis=0)], (), r"shape \[2, 1, 40, 48\]"),
    ("scaled-x255", [helper.make_node("Mul", ["ir", "k"], ["fused"])], [_const("k", 255.0)], r"outside \[0, 1\]"),
    ("negative", [helper.make_node("Sub", ["ir", "k"], ["fused"])], [_const("k", 2.0)], r"outside \[0, 1\]"),
    ("nan", [helper.make_node("Sub", ["ir", "ir"], ["z"]), helper.make_node("Div", ["z", "z"], ["fused"])], (), "NaN/inf"),
    (
        "inf",
        [helper.make_node("Sub", ["ir", "ir"], ["z"]), helper.make_node("Div", ["k", "z"], ["fused"])],
        [_const("k", 1.0)],
        "NaN/inf",
    ),
]


@pytest.mark.parametrize("nodes, inits, pattern", [c[1:] for c in WRONG_OUTPUTS], ids=[c[0] for c in WRONG_OUTPUTS])
def test_output_that_cannot_be_a_fusion_is_refused_at_the_first_call(tmp_path, nodes, inits, pattern):
    fuser = Fuser(graph_file(tmp_path / "m.onnx", nodes, inits=inits))
    with pytest.raises(ModelOutputError, match=pattern):
        fuser(IR, VIS)


def test_output_check_also_guards_tiles(tmp_path):
    fuser = Fuser(graph_file(tmp_path / "m.onnx", WRONG_OUTPUTS[4][1], inits=WRONG_OUTPUTS[4][2]), tile=32, tile_overlap=8)
    with pytest.raises(ModelOutputError, match=r"outside \[0, 1\]"):
        fuser(IR, VIS)


# -- the optimised-graph cache ----------------------------------------------------------------------


def _cache(dir_: Path) -> tuple[Path, Path]:
    (graph,) = dir_.glob("*.ortopt-*.onnx")
    return graph, graph.with_suffix(".json")


def _other_model_cache(tmp: Path, cache_dir: Path) -> bytes:
    other = graph_file(tmp / "max.onnx", [helper.make_node("Max", ["ir", "vis"], ["fused"])])
    Fuser(other, options=OrtOptions(optimized_model_cache=tmp / "other_cache"))
    return _cache(tmp / "other_cache")[0].read_bytes()


# (id, damage(cache graph, its record, tmp_path))
BROKEN_CACHES = [
    ("empty-file", lambda g, r, t: g.write_bytes(b"")),
    ("truncated", lambda g, r, t: g.write_bytes(g.read_bytes()[: len(g.read_bytes()) // 2])),
    ("garbage", lambda g, r, t: g.write_bytes(b"\x08\x07" + bytes(range(256)) * 4)),
    ("a-different-models-graph", lambda g, r, t: g.write_bytes(_other_model_cache(t, g.parent))),
    (
        "different-graph-and-forged-record",
        lambda g, r, t: (
            g.write_bytes(data := _other_model_cache(t, g.parent)),
            r.write_text(
                json.dumps({**json.loads(r.read_text()), "cache_sha256": __import__("hashlib").sha256(data).hexdigest()})
            ),
        ),
    ),
    ("record-missing", lambda g, r, t: r.unlink()),
    ("record-not-json", lambda g, r, t: r.write_text("{not json")),
    (
        "record-of-another-source",
        lambda g, r, t: r.write_text(json.dumps({**json.loads(r.read_text()), "source_sha256": "0" * 64})),
    ),
    ("graph-missing-record-kept", lambda g, r, t: g.unlink()),
]


@pytest.mark.parametrize("damage", [c[1] for c in BROKEN_CACHES], ids=[c[0] for c in BROKEN_CACHES])
def test_broken_cache_is_rebuilt_never_run_instead(tmp_path, damage):
    model = mean_onnx_model(tmp_path / "mean.onnx", DYNAMIC)
    cache = tmp_path / "cache"
    expected = Fuser(model)(IR, VIS)
    Fuser(model, options=OrtOptions(optimized_model_cache=cache))
    graph, record = _cache(cache)
    damage(graph, record, tmp_path)
    out = Fuser(model, options=OrtOptions(optimized_model_cache=cache))(IR, VIS)
    assert np.array_equal(out, expected)  # the mean model's output, not the max model's
    graph, record = _cache(cache)
    facts = json.loads(record.read_text())
    from tsjnet_sdk.hashing import file_sha256

    assert facts["source_sha256"] == file_sha256(model) and facts["cache_sha256"] == file_sha256(graph)


# -- processes --------------------------------------------------------------------------------------


_FORK_SCRIPT = """
import os, sys, numpy as np
{setup}
x = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
parent = fuser(x, x)
pid = os.fork()
if pid == 0:
    try:
        same = np.array_equal(fuser(x, x), parent)
        os._exit(0 if same else 4)
    except Exception as e:  # a clear SDK error is an accepted outcome; say which
        print("child error:", type(e).__name__, e, flush=True)
        os._exit(3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
_TORCH_SETUP = """
import torch
from tsjnet_sdk import Fuser
from tsjnet_sdk.models import create_model
torch.manual_seed(0)
torch.set_num_threads(2)  # a thread pool in the parent is what did not survive the fork
fuser = Fuser(create_model("tsjnet-tiny").eval())
"""
_ORT_SETUP = """
from tsjnet_sdk import Fuser
from tsjnet_sdk.runtime import OrtOptions
fuser = Fuser(sys.argv[1], options=OrtOptions(intra_op_threads=2))
"""


def _run_script(source: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(source), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            cwd=REPO_ROOT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"hung for more than {timeout} s (the fork deadlock)")


@pytest.mark.slow
def test_torch_fuser_used_before_fork_works_in_the_child():
    """Before: the child hung forever in its first forward (torch's OpenMP pool does not survive fork)."""
    result = _run_script(_FORK_SCRIPT.format(setup=_TORCH_SETUP))
    assert result.returncode == 0, result.stdout + result.stderr


def test_onnxruntime_fuser_used_before_fork_works_in_the_child(tmp_path):
    model = mean_onnx_model(tmp_path / "mean.onnx", DYNAMIC)
    result = _run_script(_FORK_SCRIPT.format(setup=_ORT_SETUP), str(model), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


_SPAWN_SCRIPT = """
import multiprocessing as mp, sys
import numpy as np

def work(model):
    from tsjnet_sdk import Fuser
    x = np.full((32, 32), 100, np.uint8)
    return Fuser(model, gray=True)(x, x).tolist()

if __name__ == "__main__":
    with mp.get_context("spawn").Pool(1) as pool:
        out = np.array(pool.apply(work, (sys.argv[1],)), np.uint8)
    sys.exit(0 if (out == 100).all() else 4)
"""


@pytest.mark.slow
def test_onnxruntime_fuser_made_in_a_spawn_worker(tmp_path):
    model = mean_onnx_model(tmp_path / "mean.onnx", DYNAMIC)
    script = tmp_path / "spawn_worker.py"
    script.write_text(_SPAWN_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(model)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_backends_that_cannot_cross_a_fork_raise_a_clear_error(monkeypatch):
    """TensorRT (and torch on CUDA) hold CUDA state a child cannot use: the backend says so instead of
    failing inside CUDA. Simulated here by the pid check itself (no GPU on this machine)."""
    from tsjnet_sdk.runtime.backends.tensorrt_backend import TensorRTBackend

    backend = TensorRTBackend.__new__(TensorRTBackend)
    backend.created_in_pid = os.getpid() + 1  # as seen from a child forked after creation
    with pytest.raises(BackendUnavailable, match="created before os.fork.*spawn"):
        backend.run(np.zeros((1, 1, 32, 32), np.float32), np.zeros((1, 1, 32, 32), np.float32))
