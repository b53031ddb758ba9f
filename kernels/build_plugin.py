"""Build the compiled TensorRT plugin library ``tsjnet::NeighborhoodAttention2D`` (TensorRT >= 10.0).

    tsjnet build-plugin [--trt-include DIR] [--arch sm_87 ...] [--tsjnet-only] [-o OUT]
    python -m tsjnet_sdk.kernels.build_plugin ...           (the same)

Sources (kernels/): ``na2d_trt_plugin.cpp`` (the IPluginV3 plugin and its creator, host C++),
``na2d_trt_launch.cu`` (the na2d_core.cuh kernel instances and their launcher) and ``na2d_trt_launch.h``.
One ``nvcc`` call compiles both and links a shared library with the CUDA runtime linked statically and
``-z defs`` (no undefined symbol except from libc/libstdc++): the library needs neither libnvinfer nor
libcudart at link time, because TensorRT calls it only through the virtual interfaces and the exported
``getCreators`` / ``setLoggerFinder`` (IPluginRegistry::loadLibrary's convention). So only TensorRT's
*headers* are needed, and the library can be built where TensorRT's libraries are absent.

Build it on (or for) the target: nvcc and the headers ship with JetPack (``/usr/include/aarch64-linux-gnu``);
on x86-64 they come from a TensorRT tarball (``$TENSORRT_ROOT/include``) or NVIDIA's ``include/`` folder
of the matching release. The GPU code is SASS for each ``--arch`` plus PTX of the lowest one, written by
the local nvcc (so its PTX ISA matches that toolkit; JetPack's nvcc matches JetPack's driver).

Default output: ``$TSJNET_TRT_PLUGIN`` if set, else ``~/.cache/tsjnet_sdk/trt_plugin/libtsjnet_na2d_trt.so``
(``$XDG_CACHE_HOME`` respected): where the exporter and the runtime look when no library is given
(kernels/trt_plugin_lib.py). Written atomically.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tsjnet_sdk.atomic import atomic_path
from tsjnet_sdk.errors import TsjnetError
from tsjnet_sdk.kernels.build import find_nvcc

KERNELS_DIR = Path(__file__).resolve().parent
SOURCES = ("na2d_trt_plugin.cpp", "na2d_trt_launch.cu")
HEADERS = ("na2d_trt_launch.h", "na2d_kernels.cu", "na2d_core.cuh")
MIN_TENSORRT = (10, 0)
LIBRARY_NAME = "libtsjnet_na2d_trt.so"
#: Header that must exist in a TensorRT include folder.
MARKER_HEADER = "NvInferRuntime.h"
#: Environment variables naming a TensorRT include folder, in the order they are read.
INCLUDE_ENV = ("TSJNET_TRT_INCLUDE", "TRT_INCLUDE_DIR")
#: Default targets when no GPU is visible: Orin on aarch64; RTX 30/40 and H100 on x86-64.
DEFAULT_ARCHS = {"aarch64": ("sm_87",), "x86_64": ("sm_86", "sm_89", "sm_90")}


class PluginBuildError(TsjnetError, RuntimeError):
    """Headers, nvcc or the compile itself missing or failing; the message says what to do."""


@dataclass(frozen=True)
class TensorRTHeaders:
    include: Path
    version: tuple[int, int, int]

    @property
    def version_string(self) -> str:
        return ".".join(map(str, self.version))


def default_library_path() -> Path:
    """``$TSJNET_TRT_PLUGIN``, else the per-user cache location of the built library."""
    env = os.environ.get("TSJNET_TRT_PLUGIN")
    if env:
        return Path(env).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "tsjnet_sdk" / "trt_plugin" / LIBRARY_NAME


def _candidate_includes(explicit: str | os.PathLike | None) -> list[tuple[Path, str]]:
    """(folder, where it came from), most specific first."""
    found: list[tuple[Path, str]] = []
    if explicit:
        return [(Path(explicit).expanduser(), "--trt-include")]
    for name in INCLUDE_ENV:
        if os.environ.get(name):
            found.append((Path(os.environ[name]).expanduser(), f"${name}"))
    if os.environ.get("TENSORRT_ROOT"):
        found.append((Path(os.environ["TENSORRT_ROOT"]).expanduser() / "include", "$TENSORRT_ROOT/include"))
    machine = platform.machine()
    for folder in (
        f"/usr/include/{machine}-linux-gnu",
        "/usr/include",
        "/usr/local/tensorrt/include",
        "/opt/tensorrt/include",
        "/usr/src/tensorrt/include",
    ):
        found.append((Path(folder), "standard location"))
    return found


def read_header_version(include: Path) -> tuple[int, int, int]:
    """TensorRT (major, minor, patch) from ``NvInferVersion.h`` (10.x macros, direct or indirect)."""
    text = (include / "NvInferVersion.h").read_text(errors="replace")
    macros = dict(re.findall(r"#\s*define\s+(\w+)\s+(\w+)", text))

    def value(name: str) -> int:
        seen = set()
        token = macros.get(name, "")
        while token in macros and token not in seen:  # 10.16: NV_TENSORRT_MAJOR -> TRT_MAJOR_ENTERPRISE -> 10
            seen.add(token)
            token = macros[token]
        if not token.isdigit():
            raise PluginBuildError(f"{include / 'NvInferVersion.h'}: cannot read {name}")
        return int(token)

    return value("NV_TENSORRT_MAJOR"), value("NV_TENSORRT_MINOR"), value("NV_TENSORRT_PATCH")


def find_tensorrt_headers(explicit: str | os.PathLike | None = None) -> TensorRTHeaders:
    """The TensorRT include folder (explicit, ``$TSJNET_TRT_INCLUDE``, ``$TRT_INCLUDE_DIR``,
    ``$TENSORRT_ROOT/include``, then the standard folders) and its version (>= 10.0)."""
    tried = []
    for folder, origin in _candidate_includes(explicit):
        if (folder / MARKER_HEADER).is_file() and (folder / "NvInferVersion.h").is_file():
            version = read_header_version(folder)
            if version[:2] < MIN_TENSORRT:
                raise PluginBuildError(
                    f"{folder} ({origin}) holds TensorRT {'.'.join(map(str, version))} headers; the plugin is an "
                    "IPluginV3, which needs TensorRT >= 10.0 (JetPack 6.0 ships 8.6: upgrade to JetPack 6.1+, or "
                    "export with --na decomposed)"
                )
            return TensorRTHeaders(folder, version)
        tried.append(f"{folder} ({origin})")
        if explicit:
            break
    raise PluginBuildError(
        f"TensorRT headers ({MARKER_HEADER}) not found; looked in: {', '.join(tried)}. Fix: on Jetson install "
        "JetPack's TensorRT dev package (sudo apt install libnvinfer-dev, or nvidia-jetpack); on x86-64 unpack a "
        "TensorRT 10.x tarball and set TENSORRT_ROOT=/path/to/TensorRT-10.x, or pass --trt-include DIR "
        "(or set TSJNET_TRT_INCLUDE) to the folder holding NvInferRuntime.h"
    )


def cuda_include_dir(nvcc: str) -> Path | None:
    """The CUDA toolkit's include folder (cuda_runtime_api.h): beside ``nvcc``, ``$CUDA_HOME``, /usr/local/cuda."""
    roots = [Path(nvcc).resolve().parents[1]] + [Path(os.environ[v]) for v in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(v)]
    for root in roots + [Path("/usr/local/cuda")]:
        if (root / "include" / "cuda_runtime_api.h").is_file():
            return root / "include"
    return None


def default_archs() -> tuple[str, ...]:
    """The visible GPU's ``sm_XY`` (through cuda-python), else the machine's usual targets."""
    try:
        from tsjnet_sdk.tensorrt_env import gpu_compute_capability

        cc = gpu_compute_capability()
    except Exception:  # noqa: BLE001 (no cuda-python / numpy: fall back to the table)
        cc = None
    if cc is not None:
        return (f"sm_{cc[0]}{cc[1]}",)
    return DEFAULT_ARCHS.get(platform.machine(), DEFAULT_ARCHS["x86_64"])


def _check_archs(archs: Sequence[str]) -> list[str]:
    bad = [a for a in archs if not re.fullmatch(r"sm_\d{2,3}[a-z]?", a)]
    if bad or not archs:
        raise PluginBuildError(f"--arch takes sm_XY values such as sm_87 (Orin) or sm_89 (RTX 40xx), got {list(archs)}")
    return sorted(set(archs), key=lambda a: int(re.sub(r"\D", "", a)))


def nvcc_command(
    nvcc: str,
    headers: TensorRTHeaders,
    archs: Sequence[str],
    output: Path,
    *,
    tsjnet_only: bool = False,
    cuda_include: Path | None = None,
) -> list[str]:
    """The nvcc command line that compiles and links the library to ``output``."""
    archs = _check_archs(archs)
    cmd = [
        nvcc,
        "-std=c++17",
        "-O3",
        "-shared",
        "-Xcompiler",
        "-fPIC,-fvisibility=hidden",
        "-cudart",
        "static",
        "-Xlinker",
        "-z,defs",
        "-I",
        str(KERNELS_DIR),
        "-isystem",
        str(headers.include),
    ]
    if cuda_include is not None:
        cmd += ["-isystem", str(cuda_include)]
    for arch in archs:
        num = arch[3:]
        cmd += ["-gencode", f"arch=compute_{num},code=sm_{num}"]
    lowest = archs[0][3:]
    cmd += ["-gencode", f"arch=compute_{lowest},code=compute_{lowest}"]  # PTX: JIT on newer GPUs
    if tsjnet_only:
        cmd.append("-DNA_TRT_TSJNET_ONLY")
    cmd += [str(KERNELS_DIR / s) for s in SOURCES] + ["-o", str(output)]
    return cmd


def build_plugin(
    output: str | os.PathLike | None = None,
    *,
    trt_include: str | os.PathLike | None = None,
    archs: Sequence[str] | None = None,
    tsjnet_only: bool = False,
    nvcc: str | None = None,
    verbose: bool = False,
) -> Path:
    """Compile the plugin library and write it atomically to ``output`` (default :func:`default_library_path`).

    Raises:
        PluginBuildError: headers or nvcc not found, or the compile failed (with nvcc's output).
    """
    headers = find_tensorrt_headers(trt_include)
    nvcc = nvcc or find_nvcc()
    if nvcc is None:
        raise PluginBuildError(
            "nvcc not found (looked in $CUDA_HOME, $CUDA_PATH, PATH, /usr/local/cuda/bin). Fix: on Jetson it ships "
            "with JetPack (export PATH=/usr/local/cuda/bin:$PATH); on x86-64 install the CUDA toolkit"
        )
    archs = list(archs) if archs else list(default_archs())
    out = Path(output).expanduser() if output is not None else default_library_path()
    with tempfile.TemporaryDirectory(prefix="tsjnet-plugin-") as tmp:
        built = Path(tmp) / LIBRARY_NAME
        cmd = nvcc_command(nvcc, headers, archs, built, tsjnet_only=tsjnet_only)
        if verbose:
            print(" ".join(cmd), file=sys.stderr)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not built.is_file():
            raise PluginBuildError(
                f"nvcc failed ({proc.returncode}) building the plugin:\n{proc.stderr.strip()}\ncommand: {' '.join(cmd)}"
            )
        if verbose:
            print(f"compiled in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        with atomic_path(out) as dst:
            shutil.copyfile(built, dst)
    return out


if __name__ == "__main__":
    # `python -m tsjnet_sdk.kernels.build_plugin`: the same command as `tsjnet build-plugin`. The CLI is imported only here:
    # the command-line layer imports this module, never the reverse (tests/test_import_graph.py).
    from tsjnet_sdk.cli import build_plugin_command
    from tsjnet_sdk.cli_support import run_command

    raise SystemExit(run_command(build_plugin_command, None, "python -m tsjnet_sdk.kernels.build_plugin"))
