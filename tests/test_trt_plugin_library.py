"""The compiled TensorRT plugin library (kernels/na2d_trt_plugin.cpp + na2d_trt_launch.cu), its build
(kernels/build_plugin.py, `tsjnet build-plugin`), the choice between it and the Python AOT plugin
(kernels/trt_plugin_lib.py), and its use by the engine exporter, the TensorRT backend and `tsjnet doctor`.

TensorRT is not installable here and there is no GPU. What runs always (g++ only): the plugin compiled
against tests/trt_plugin_check/trt_api_stub/ (our own minimal declarations of the TensorRT 10 plugin API),
and tests/trt_plugin_check/driver.cpp, which dlopens the library, takes its creators from getCreators()
and drives the build/runtime interfaces as TensorRT does (with a fake launcher that records the launch).
With nvcc: the kernel launcher compiles. With real TensorRT headers (TSJNET_TRT_INCLUDE=<include dir>):
the real library is built by build_plugin and driven by the same driver (enqueue must fail cleanly
without a GPU). Nothing here runs a kernel or TensorRT itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from tsjnet_sdk.engine_format import write_engine_file
from tsjnet_sdk.kernels import build_plugin as bp
from tsjnet_sdk.kernels import trt_plugin, trt_plugin_lib
from tsjnet_sdk.kernels.build import find_nvcc

REPO = Path(__file__).resolve().parents[1]
KERNELS = REPO / "kernels"
CHECK = REPO / "tests" / "trt_plugin_check"
STUB = CHECK / "trt_api_stub"
GXX = shutil.which("g++")
needs_gxx = pytest.mark.skipif(GXX is None, reason="needs g++ (the host C++ compiler)")
CXXFLAGS = ["-std=c++17", "-Wall", "-Wextra", "-Werror"]


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _drive(include: list[str], library: Path, tmp: Path, fake: bool) -> str:
    driver = tmp / "driver"
    _run([GXX, *CXXFLAGS, *include, "-I", str(KERNELS), "-o", str(driver), str(CHECK / "driver.cpp"), "-ldl"])
    proc = subprocess.run([str(driver), str(library)] + (["--fake-launch"] if fake else []), capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip().startswith("ok"), proc.stdout + proc.stderr
    return proc.stdout


def _fake_library(include: list[str], tmp: Path) -> Path:
    lib = tmp / "libfake_na2d.so"
    _run(
        [
            GXX,
            *CXXFLAGS,
            "-shared",
            "-fPIC",
            "-fvisibility=hidden",
            *include,
            "-I",
            str(KERNELS),
            "-o",
            str(lib),
            str(KERNELS / "na2d_trt_plugin.cpp"),
            str(CHECK / "fake_launch.cpp"),
        ]
    )
    return lib


# ---------------------------------------------------------------------------------------------------
# The C++ plugin, always (no TensorRT, no CUDA)
# ---------------------------------------------------------------------------------------------------
@needs_gxx
def test_plugin_source_compiles_against_the_api_declarations():
    _run([GXX, *CXXFLAGS, "-fsyntax-only", "-I", str(STUB), "-I", str(KERNELS), str(KERNELS / "na2d_trt_plugin.cpp")])


@needs_gxx
def test_plugin_library_behaves_as_tensorrt_expects(tmp_path):
    """getCreators, fields, format combinations, shapes, serialisation round trip, enqueue -> launch."""
    include = ["-I", str(STUB)]
    out = _drive(include, _fake_library(include, tmp_path), tmp_path, fake=True)
    assert int(out.split()[1]) >= 55


@needs_gxx
def test_driver_fails_on_a_broken_plugin(tmp_path):
    """The driver is not vacuous: a plugin that reports the wrong namespace fails it."""
    broken = tmp_path / "na2d_trt_plugin.cpp"
    broken.write_text((KERNELS / "na2d_trt_plugin.cpp").read_text().replace('kNamespace = "tsjnet"', 'kNamespace = "other"'))
    lib = tmp_path / "libbroken.so"
    _run(
        [
            GXX,
            *CXXFLAGS,
            "-shared",
            "-fPIC",
            "-fvisibility=hidden",
            "-I",
            str(STUB),
            "-I",
            str(KERNELS),
            "-o",
            str(lib),
            str(broken),
            str(CHECK / "fake_launch.cpp"),
        ]
    )
    driver = tmp_path / "driver"
    _run([GXX, *CXXFLAGS, "-I", str(STUB), "-I", str(KERNELS), "-o", str(driver), str(CHECK / "driver.cpp"), "-ldl"])
    proc = subprocess.run([str(driver), str(lib), "--fake-launch"], capture_output=True, text=True)
    assert proc.returncode == 1 and "FAILED: creator namespace tsjnet" in proc.stdout


def test_plugin_names_agree_with_the_onnx_contract():
    from tsjnet_sdk import na_node

    src = (KERNELS / "na2d_trt_plugin.cpp").read_text()
    assert f'kName = "{na_node.OP_TYPE}"' in src and f'kNamespace = "{na_node.DOMAIN}"' in src
    for attr in na_node.ATTRIBUTES:
        assert f'"{attr}"' in src


@pytest.mark.skipif(find_nvcc() is None, reason="needs nvcc (CUDA toolkit)")
def test_kernel_launcher_compiles_with_nvcc(tmp_path):
    obj = tmp_path / "launch.o"
    _run(
        [
            find_nvcc(),
            "-std=c++17",
            "-c",
            "-Xcompiler",
            "-fPIC",
            "-DNA_TRT_TSJNET_ONLY",
            "-I",
            str(KERNELS),
            "-gencode",
            "arch=compute_87,code=sm_87",
            str(KERNELS / "na2d_trt_launch.cu"),
            "-o",
            str(obj),
        ]
    )
    symbols = _run(["nm", str(obj)]).stdout
    for name in ("tsjnet_na2d_launch", "tsjnet_na2d_built", "tsjnet_na2d_status_string"):
        assert f" T {name}" in symbols


# ---------------------------------------------------------------------------------------------------
# Against real TensorRT headers (TSJNET_TRT_INCLUDE), e.g. NVIDIA/TensorRT's include/ of release/10.3
# ---------------------------------------------------------------------------------------------------
def _real_headers() -> bp.TensorRTHeaders:
    folder = os.environ.get("TSJNET_TRT_INCLUDE")
    if not folder:
        pytest.skip(
            "set TSJNET_TRT_INCLUDE to a TensorRT >= 10.0 include folder (NvInferRuntime.h) to compile "
            "the plugin against real headers"
        )
    return bp.find_tensorrt_headers(folder)


def test_real_library_builds_exports_the_entry_points_and_drives(tmp_path):
    headers = _real_headers()
    if find_nvcc() is None or GXX is None:
        pytest.skip("needs nvcc and g++")
    lib = bp.build_plugin(tmp_path / "lib" / bp.LIBRARY_NAME, trt_include=headers.include, archs=["sm_87"], tsjnet_only=True)
    exported = _run(["nm", "-D", "--defined-only", str(lib)]).stdout
    assert sorted(line.split()[-1] for line in exported.splitlines() if " T " in line) == ["getCreators", "setLoggerFinder"]
    assert "nvinfer" not in _run(["readelf", "-d", str(lib)]).stdout  # no libnvinfer needed at link time
    include = ["-isystem", str(headers.include), "-isystem", str(bp.cuda_include_dir(find_nvcc()))]
    _drive(include, lib, tmp_path, fake=False)  # enqueue fails cleanly: no GPU
    _drive(include, _fake_library(include, tmp_path), tmp_path, fake=True)


# ---------------------------------------------------------------------------------------------------
# build_plugin.py
# ---------------------------------------------------------------------------------------------------
def _headers(folder: Path, version_text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "NvInferRuntime.h").write_text("// marker\n")
    (folder / "NvInferVersion.h").write_text(version_text)
    return folder


def test_header_version_direct_and_indirect(tmp_path):
    a = _headers(tmp_path / "a", "#define NV_TENSORRT_MAJOR 10\n#define NV_TENSORRT_MINOR 3\n#define NV_TENSORRT_PATCH 0\n")
    b = _headers(
        tmp_path / "b",
        "#define TRT_MAJOR_ENTERPRISE 10\n#define TRT_MINOR_ENTERPRISE 16\n#define TRT_PATCH_ENTERPRISE 1\n"
        "#define NV_TENSORRT_MAJOR TRT_MAJOR_ENTERPRISE\n#define NV_TENSORRT_MINOR TRT_MINOR_ENTERPRISE\n"
        "#define NV_TENSORRT_PATCH TRT_PATCH_ENTERPRISE\n",
    )
    assert bp.find_tensorrt_headers(a).version == (10, 3, 0)
    assert bp.find_tensorrt_headers(b).version_string == "10.16.1"


def test_missing_or_old_headers_are_named_with_the_fix(tmp_path, monkeypatch):
    with pytest.raises(bp.PluginBuildError, match=r"NvInferRuntime\.h.*not found.*--trt-include"):
        bp.find_tensorrt_headers(tmp_path / "empty")
    old = _headers(tmp_path / "old", "#define NV_TENSORRT_MAJOR 8\n#define NV_TENSORRT_MINOR 6\n#define NV_TENSORRT_PATCH 2\n")
    with pytest.raises(bp.PluginBuildError, match=r"8\.6\.2.*>= 10\.0.*--na decomposed"):
        bp.find_tensorrt_headers(old)
    monkeypatch.setenv(
        "TSJNET_TRT_INCLUDE",
        str(
            _headers(tmp_path / "env", "#define NV_TENSORRT_MAJOR 10\n#define NV_TENSORRT_MINOR 3\n#define NV_TENSORRT_PATCH 0\n")
        ),
    )
    assert bp.find_tensorrt_headers().include == tmp_path / "env"


def test_nvcc_command(tmp_path):
    headers = bp.TensorRTHeaders(tmp_path, (10, 3, 0))
    cmd = bp.nvcc_command("nvcc", headers, ["sm_89", "sm_87"], tmp_path / "x.so")
    joined = " ".join(cmd)
    assert "arch=compute_87,code=sm_87" in joined and "arch=compute_89,code=sm_89" in joined
    assert "arch=compute_87,code=compute_87" in joined  # PTX of the lowest target, for newer GPUs
    assert "-z,defs" in joined and "nvinfer" not in joined and "-DNA_TRT_TSJNET_ONLY" not in joined
    assert "-DNA_TRT_TSJNET_ONLY" in bp.nvcc_command("nvcc", headers, ["sm_87"], tmp_path / "x.so", tsjnet_only=True)
    with pytest.raises(bp.PluginBuildError, match="sm_XY"):
        bp.nvcc_command("nvcc", headers, ["87"], tmp_path / "x.so")


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fake_nvcc(tmp_path: Path, fail: bool) -> str:
    script = tmp_path / "nvcc"
    body = (
        "echo 'fake compile error' >&2; exit 1"
        if fail
        else 'out=""; while [ $# -gt 0 ]; do [ "$1" = -o ] && out="$2"; shift; done; echo LIB > "$out"'
    )
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


def test_build_writes_atomically_and_keeps_the_old_library_on_failure(tmp_path):
    inc = _headers(tmp_path / "inc", "#define NV_TENSORRT_MAJOR 10\n#define NV_TENSORRT_MINOR 3\n#define NV_TENSORRT_PATCH 0\n")
    out = tmp_path / "out" / "lib.so"
    assert bp.build_plugin(out, trt_include=inc, archs=["sm_87"], nvcc=_fake_nvcc(tmp_path, False)) == out
    assert out.read_text() == "LIB\n" and sorted(p.name for p in out.parent.iterdir()) == ["lib.so"]
    with pytest.raises(bp.PluginBuildError, match="fake compile error"):
        bp.build_plugin(out, trt_include=inc, archs=["sm_87"], nvcc=_fake_nvcc(_mkdir(tmp_path / "f"), True))
    assert out.read_text() == "LIB\n" and sorted(p.name for p in out.parent.iterdir()) == ["lib.so"]


def test_cli_build_plugin_names_missing_headers(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "tsjnet_sdk.cli", "build-plugin", "--trt-include", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 2 and "NvInferRuntime.h" in proc.stderr and "not found" in proc.stderr


# ---------------------------------------------------------------------------------------------------
# trt_plugin_lib.py: which implementation, the library's hash, loading
# ---------------------------------------------------------------------------------------------------
@pytest.fixture
def plugin_env(tmp_path, monkeypatch) -> Path:
    """No $TSJNET_TRT_PLUGIN, the default library location under tmp_path; returns that location."""
    monkeypatch.delenv("TSJNET_TRT_PLUGIN", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(trt_plugin_lib, "_loaded", {})
    return bp.default_library_path()


def _library(path: Path, content: bytes = b"\x7fELF fake plugin") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_choice_of_implementation(plugin_env, tmp_path, monkeypatch):
    with pytest.raises(trt_plugin.PluginUnavailable, match=r"8\.6\.2 is older than 10\.0.*--na decomposed"):
        trt_plugin_lib.choose_plugin("8.6.2")
    with pytest.raises(trt_plugin.PluginUnavailable, match=r"10\.3\.0.*tsjnet build-plugin"):
        trt_plugin_lib.choose_plugin("10.3.0")
    assert trt_plugin_lib.choose_plugin("10.9.0").implementation == "qdp"
    _library(plugin_env)
    choice = trt_plugin_lib.choose_plugin("10.3.0")
    assert choice.implementation == "library" and choice.library == plugin_env.resolve()
    assert choice.header() == {
        "implementation": "library",
        "library": plugin_env.name,
        "library_sha256": trt_plugin_lib.file_sha256(plugin_env),
    }
    assert trt_plugin_lib.choose_plugin("10.9.0").implementation == "qdp"  # the default location is not "given"
    given = _library(tmp_path / "given.so", b"other")
    assert trt_plugin_lib.choose_plugin("10.12.0", given).library == given.resolve()
    monkeypatch.setenv("TSJNET_TRT_PLUGIN", str(given))
    assert trt_plugin_lib.choose_plugin("10.12.0").library == given.resolve()
    with pytest.raises(trt_plugin.PluginUnavailable, match="does not exist.*tsjnet build-plugin"):
        trt_plugin_lib.choose_plugin("10.3.0", tmp_path / "missing.so")


def test_runtime_library_checks_the_recorded_hash(plugin_env, tmp_path):
    lib = _library(tmp_path / "lib.so")
    header = trt_plugin_lib.PluginChoice("library", lib, trt_plugin_lib.file_sha256(lib)).header()
    assert trt_plugin_lib.runtime_library(header, lib) == lib
    other = _library(tmp_path / "other.so", b"rebuilt")
    with pytest.raises(trt_plugin.PluginUnavailable, match="not the one the engine was built with"):
        trt_plugin_lib.runtime_library(header, other)
    with pytest.raises(trt_plugin.PluginUnavailable, match="tsjnet build-plugin"):
        trt_plugin_lib.runtime_library(header)  # nothing at the default location


class _Registry:
    def __init__(self, ok: bool = True) -> None:
        self.loaded: list[str] = []
        self.ok = ok

    def load_library(self, path: str) -> object | None:
        self.loaded.append(path)
        return object() if self.ok else None


def _fake_trt(version: str, registry: _Registry) -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.Builder = object  # what import_tensorrt takes as "the real package"
    trt.get_plugin_registry = lambda: registry
    return trt


def test_load_library_once_and_refusal_named(plugin_env, tmp_path):
    lib = _library(tmp_path / "lib.so")
    registry = _Registry()
    trt_plugin_lib.load_library(_fake_trt("10.3.0", registry), lib)
    trt_plugin_lib.load_library(_fake_trt("10.3.0", registry), lib)
    assert registry.loaded == [str(lib.resolve())]
    with pytest.raises(trt_plugin.PluginUnavailable, match="could not load the plugin library"):
        trt_plugin_lib.load_library(_fake_trt("10.3.0", _Registry(ok=False)), _library(tmp_path / "b.so"))


def test_prepare_onnx_for_the_library_keeps_one_op_type():
    from onnx import helper

    nodes = [
        helper.make_node("NeighborhoodAttention2D", ["q", "k", "v", "rpb"], ["o1"], domain="tsjnet", kernel_size=7),
        helper.make_node("NeighborhoodAttention2D", ["q", "k", "v", ""], ["o2"], domain="tsjnet", kernel_size=7),
        helper.make_node("NeighborhoodAttention2DWithRPB", ["q", "k", "v", "rpb"], ["o3"], domain="tsjnet", aot=1),
    ]
    model = helper.make_model(helper.make_graph(nodes, "g", [], []))
    assert trt_plugin.prepare_onnx_for_tensorrt(model, implementation="library") == 3
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        assert node.op_type == "NeighborhoodAttention2D" and attrs["plugin_namespace"] == b"tsjnet" and "aot" not in attrs
    assert [len(n.input) for n in model.graph.node] == [4, 3, 4]
    with pytest.raises(ValueError, match="'qdp' or 'library'"):
        trt_plugin.prepare_onnx_for_tensorrt(model, implementation="x")


# ---------------------------------------------------------------------------------------------------
# Exporter, runtime backend, doctor
# ---------------------------------------------------------------------------------------------------
def test_exporter_chooses_and_reports(plugin_env, tmp_path):
    from tsjnet_sdk.export.engine_export import _choose_plugin
    from tsjnet_sdk.export.onnx_export import ExportError

    trt = types.SimpleNamespace(__version__="10.3.0")
    assert _choose_plugin(trt, "decomposed", None) is None
    with pytest.raises(ExportError, match="--plugin-lib is for --na plugin"):
        _choose_plugin(trt, "decomposed", tmp_path / "x.so")
    with pytest.raises(ExportError, match="tsjnet build-plugin"):
        _choose_plugin(trt, "plugin", None)
    lib = _library(tmp_path / "lib.so")
    assert _choose_plugin(trt, "plugin", lib).header()["library_sha256"] == trt_plugin_lib.file_sha256(lib)


def _plugin_engine(tmp_path: Path, sha: str) -> Path:
    meta = {
        "sdk_version": "0.1.0",
        "config_name": "tsjnet-tiny",  # what export writes (and Fuser requires)
        "trt_flavour": "tensorrt",
        "trt_version": "10.3.0",
        "na_mode": "plugin",
        "compute_capabilities": ["8.7"],
        "na_plugin": {"implementation": "library", "library": bp.LIBRARY_NAME, "library_sha256": sha},
    }
    return write_engine_file(tmp_path / "m.engine", meta, b"serialized-engine")


def test_backend_names_a_missing_or_different_library(plugin_env, tmp_path, monkeypatch):
    from tsjnet_sdk.runtime.backends import tensorrt_backend as tb
    from tsjnet_sdk.runtime.backends.base import BackendUnavailable

    registry = _Registry()
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_trt("10.3.0", registry))
    monkeypatch.setattr(tb, "gpu_compute_capability", lambda *a: None)
    lib = _library(tmp_path / "lib.so")
    engine = _plugin_engine(tmp_path, trt_plugin_lib.file_sha256(lib))
    with pytest.raises(BackendUnavailable, match="NA plugin unavailable.*tsjnet build-plugin"):
        tb.TensorRTBackend(engine)
    other = _library(tmp_path / "other.so", b"another build")
    with pytest.raises(BackendUnavailable, match="not the one the engine was built with"):
        tb.TensorRTBackend(engine, plugin_library=other)
    assert registry.loaded == []
    # the right library is loaded before anything else needs the GPU (which is absent here)
    with pytest.raises(BackendUnavailable, match="no usable NVIDIA GPU"):
        tb.TensorRTBackend(engine, plugin_library=lib)
    assert registry.loaded == [str(lib.resolve())]


def test_doctor_reports_the_plugin(plugin_env, monkeypatch):
    from tsjnet_sdk.runtime.doctor import na_plugin_status

    monkeypatch.setitem(sys.modules, "tensorrt", _fake_trt("10.3.0", _Registry()))
    assert "unavailable" in na_plugin_status() and "tsjnet build-plugin" in na_plugin_status()
    _library(plugin_env)
    assert f"plugin library {plugin_env.resolve()}" in na_plugin_status()
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_trt("10.9.0", _Registry()))
    assert "Python AOT plugin" in na_plugin_status()
