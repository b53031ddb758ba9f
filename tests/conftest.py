"""Shared test helpers: where ../shared/data is, and seeding."""

from __future__ import annotations

from pathlib import Path

import pytest

from tsjnet_sdk.results import data_root

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = data_root()  # $TSJNET_DATA, else ../shared/data beside the checkout


def mean_onnx_model(path: Path, shape: list, metadata: bool = True) -> Path:
    """An ONNX with the tsjnet I/O names whose output is (ir + vis) / 2 (builds in ms); ``shape`` is
    [N, 1, H, W] with ints (static) or names (dynamic). ``metadata``: carry tsjnet metadata (sdk_version,
    config_name), as `tsjnet export` writes it; without it the Fuser refuses the file unless
    allow_foreign_model=True."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["ir", "vis"], ["sum"]), helper.make_node("Mul", ["sum", "half"], ["fused"])],
        "mean",
        [
            helper.make_tensor_value_info("ir", TensorProto.FLOAT, shape),
            helper.make_tensor_value_info("vis", TensorProto.FLOAT, shape),
        ],
        [helper.make_tensor_value_info("fused", TensorProto.FLOAT, shape)],
        [helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    if metadata:
        for key, value in TSJNET_TEST_PROPS.items():
            model.metadata_props.add(key=key, value=value)
    onnx.save(model, path)
    return path


#: tsjnet metadata for the hand-built test graphs (what the Fuser requires of an ONNX file).
TSJNET_TEST_PROPS = {"tsjnet.sdk_version": "0.1.0", "tsjnet.config_name": "test-mean", "tsjnet.precision": "fp32"}


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


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised tsjnet-tiny checkpoint (seed 0), shared by the whole session."""
    import torch

    from tsjnet_sdk.models import create_model, save_checkpoint

    torch.manual_seed(0)
    return save_checkpoint(create_model("tsjnet-tiny").eval(), tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


@pytest.fixture(scope="session")
def tiny_onnx(tiny_checkpoint, tmp_path_factory) -> Path:
    """The tiny checkpoint exported with dynamic N/H/W (decomposed NA, fp32), parity checked.

    Session-scoped: a dynamic-shape export takes about a minute on a 2-core CPU (torch.export's
    symbolic shapes), so every test that needs one shares this one.
    """
    from tsjnet_sdk.export import export_onnx

    return export_onnx(tiny_checkpoint, tmp_path_factory.mktemp("onnx") / "tiny.onnx").path


# `sys.modules[name] = None` is how Python itself marks a module as absent: `import name` raises
# ModuleNotFoundError and importlib.util.find_spec(name) returns None, as on a machine without the package.
BLOCK_IMPORTS = """
import sys
for _name in {blocked!r}:
    sys.modules[_name] = None
"""


def run_python_without(blocked: set[str], code: str, cwd: Path | None = None, timeout: float = 300):
    """Run ``code`` in a fresh interpreter in which importing any of ``blocked`` (top-level names) fails, as on a
    machine where those packages are not installed. Returns the CompletedProcess (text output)."""
    import subprocess
    import sys

    program = BLOCK_IMPORTS.format(blocked=sorted(blocked)) + code
    return subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def run_cli_without(blocked: set[str], args: list[str], cwd: Path | None = None, timeout: float = 300):
    """The ``tsjnet`` command line with ``blocked`` packages missing (see run_python_without)."""
    code = f"import sys\nfrom tsjnet_sdk.cli import entry_point\nsys.argv = ['tsjnet', *{args!r}]\nentry_point()\n"
    return run_python_without(blocked, code, cwd, timeout)
