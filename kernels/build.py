"""Ahead-of-time build of the neighborhood-attention kernel: PTX + cubin per GPU target, and the PTX
that the TensorRT AOT plugin embeds.

    python -m tsjnet_sdk.kernels.build [--out DIR] [--profile full|ci|tsjnet] [--targets sm_86,...] [--jobs N]

Deployment path: **nvcc ahead of time**, not NVRTC at run time. Why:
  * Nothing compiles on the deployment machine. Loading a kernel is one ``cuModuleLoadData`` of a
    prebuilt cubin; the TensorRT plugin embeds prebuilt PTX, so building an engine needs no compiler
    either. NVRTC at run time would need an NVRTC library matching the toolchain on every Jetson/desktop
    install (JetPack 6 ships NVRTC 12.6, desktop wheels bring their own), plus a compile on first use.
  * What ships is what was checked: CI compiles every instantiation for every target, checks each entry
    point's symbol and parameter list, and ptxas validates the PTX against the ISA version it declares.
  * The cost is artefact size (one cubin per target, ~3.5 MB for the full matrix) and a build step.
    For a device or an instantiation nobody prebuilt, :func:`ensure_image` compiles just that one with
    nvcc when nvcc is present (``torch_binding`` uses it), and otherwise says what to run.

Targets: sm_86 (RTX 30xx, A10/A40), sm_87 (Jetson Orin), sm_89 (RTX 40xx, L4/L40), sm_90 (H100/H200),
sm_120 (RTX 50xx). Each target gets ``<target>/<name>.ptx`` (PTX for ``compute_XY``) and
``<target>/<name>.cubin`` assembled by ptxas from exactly that PTX, plus a ``.json`` sidecar naming the
instantiations and the source hash (a stale build is never loaded).

PTX ISA version: nvcc 13 always writes ``.version 9.0``, which only a CUDA 13 driver can JIT, and it has
no option for an older ISA. The kernel itself needs nothing newer than ISA 6.0 (``bar.warp.sync``,
``ld.global.nc.v4``, ``cvt`` f16<->f32), so the build rewrites the ``.version`` line to the *floor* of
each target: the first ISA that knows it (``MIN_PTX_ISA``: 7.1 sm_86, 7.4 sm_87, 7.8 sm_89/sm_90, 8.7
sm_120), or ``KERNEL_MIN_PTX_ISA`` if that were ever higher. So the sm_86 PTX JIT-compiles on any driver
from CUDA 11.1 on, the sm_87 PTX on JetPack 5 (ISA 7.4), the sm_90 PTX on CUDA 11.8+ drivers (R520, R535
servers). ptxas then assembles the rewritten text and rejects any instruction or target the declared ISA
lacks, so a change that needs a newer ISA fails the build instead of shipping PTX an old driver cannot
read (then raise ``KERNEL_MIN_PTX_ISA``). The plugin PTX (``plugin/na2d_<dtype>_k<k>_d<d>.ptx``, one
instantiation each so an engine embeds only what it uses) targets compute_86 with ISA 7.1: it
JIT-compiles on sm_86 and every newer GPU. Note that the AOT plugin itself needs TensorRT >= 10.9, which
JetPack 6 (TensorRT 10.3) does not have; there the PTX serves the PyTorch binding and the compiled C++
plugin.

Profiles (compile time measured on 2 cores with nvcc 13.0; see kernels/README.md):
  * ``full`` (default, release): all 48 instantiations (f32/f16 x k 3..13 odd x head_dim 8/16/32/64)
    for every target, plugin PTX for all 48.
  * ``ci``: the instantiations TSJNet needs (k 7, head_dim 32, f32 + f16, each with and without rpb)
    for every target, the full matrix for sm_86 only (every instantiation still compiles and
    assembles once), plugin PTX for TSJNet's instantiations.
  * ``tsjnet``: TSJNet's instantiations only, everywhere (quick local builds).

Default output folder: ``$TSJNET_KERNELS_DIR`` if set, else ``~/.cache/tsjnet_sdk/kernels/<source hash>``
(``$XDG_CACHE_HOME`` respected), outside the source tree so an installed package needs no write access
to site-packages.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tsjnet_sdk.atomic import atomic_path
from tsjnet_sdk.errors import TsjnetError
from tsjnet_sdk.kernels import spec

KERNEL_DIR = Path(__file__).resolve().parent
SOURCE_FILES = ("na2d_core.cuh", "na2d_kernels.cu")
TARGETS = ("sm_86", "sm_87", "sm_89", "sm_90", "sm_120")
#: The oldest PTX ISA the kernel's own instructions need (bar.warp.sync: 6.0). Raise it when ptxas
#: rejects the rewritten PTX of a target after a kernel change.
KERNEL_MIN_PTX_ISA = (6, 0)
#: The first PTX ISA version that supports each target (PTX ISA release notes; ptxas enforces it).
MIN_PTX_ISA = {"sm_86": (7, 1), "sm_87": (7, 4), "sm_89": (7, 8), "sm_90": (7, 8), "sm_120": (8, 7)}
PLUGIN_TARGET = "sm_86"  # the oldest target: its PTX JIT-compiles on every newer GPU
PROFILES = ("full", "ci", "tsjnet")
CI_FULL_MATRIX_TARGET = "sm_86"
FORMAT_VERSION = 1
CXX_TYPE = {"f32": "float", "f16": "na2d::half_bits"}

Instance = tuple[str, int, int]  # (dtype, kernel_size, head_dim)


class KernelBuildError(TsjnetError, RuntimeError):
    """nvcc/ptxas missing or failing, or no usable prebuilt kernel."""


# ---------------------------------------------------------------------------------------------------
# Locations
# ---------------------------------------------------------------------------------------------------
def source_hash() -> str:
    """Hash of the kernel sources and the Python ABI description (16 hex digits).

    spec.py is included because it defines the argument list the loaders pass: a build made before an
    ABI change must not be loaded after it.
    """
    digest = hashlib.sha256()
    for name in (*SOURCE_FILES, "spec.py"):
        digest.update(name.encode() + b"\0" + (KERNEL_DIR / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def default_out_dir() -> Path:
    """``$TSJNET_KERNELS_DIR``, else ``<user cache>/tsjnet_sdk/kernels/<source hash>``."""
    explicit = os.environ.get("TSJNET_KERNELS_DIR")
    if explicit:
        return Path(explicit).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "tsjnet_sdk" / "kernels" / source_hash()


def find_nvcc() -> str | None:
    """nvcc from ``$CUDA_HOME``/``$CUDA_PATH``, ``PATH`` or /usr/local/cuda, or None."""
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")):
        if root and (Path(root) / "bin" / "nvcc").is_file():
            return str(Path(root) / "bin" / "nvcc")
    found = shutil.which("nvcc")
    if found:
        return found
    fallback = Path("/usr/local/cuda/bin/nvcc")
    return str(fallback) if fallback.is_file() else None


def _ptxas_beside(nvcc: str) -> str:
    ptxas = Path(nvcc).with_name("ptxas")
    if not ptxas.is_file():
        raise KernelBuildError(f"ptxas not found next to {nvcc}")
    return str(ptxas)


def nvcc_version(nvcc: str) -> str:
    """``13.0.88`` from ``nvcc --version``."""
    text = subprocess.run([nvcc, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"V(\d+\.\d+\.\d+)", text)
    return match.group(1) if match else text.strip().splitlines()[-1]


# ---------------------------------------------------------------------------------------------------
# PTX / cubin inspection
# ---------------------------------------------------------------------------------------------------
def ptx_isa_for(target: str) -> tuple[int, int] | None:
    """ISA version to declare in the PTX for ``target``: the oldest one a driver needs to JIT it.

    That is the first ISA that knows the target, or the kernel's own floor if higher; None: keep nvcc's
    (a target not in MIN_PTX_ISA).
    """
    if target not in MIN_PTX_ISA:
        return None
    return max(KERNEL_MIN_PTX_ISA, MIN_PTX_ISA[target])


_VERSION_RE = re.compile(r"^\.version\s+(\d+)\.(\d+)\s*$", re.MULTILINE)


def ptx_version(text: str) -> tuple[int, int]:
    match = _VERSION_RE.search(text)
    if not match:
        raise ValueError("no .version directive in the PTX")
    return int(match.group(1)), int(match.group(2))


def rewrite_ptx_isa(text: str, isa: tuple[int, int]) -> str:
    """The PTX with its ``.version`` line set to ``isa`` (only ever lowered; ptxas re-validates it)."""
    if ptx_version(text) < isa:
        raise ValueError(f"PTX declares {ptx_version(text)}, will not raise it to {isa}")
    return _VERSION_RE.sub(f".version {isa[0]}.{isa[1]}", text, count=1)


_ENTRY_RE = re.compile(r"\.visible\s+\.entry\s+(\w+)\s*\((.*?)\)\s*(.*?)\{", re.DOTALL)
_PARAM_RE = re.compile(r"\.param\s+\.(\w+)")
_MAXNTID_RE = re.compile(r"\.maxntid\s+(\d+)(?:\s*,\s*(\d+))?(?:\s*,\s*(\d+))?")  # 1 to 3 dims
_PTX_TYPE = {"u64": "ptr", "b64": "ptr", "u32": "i32", "s32": "i32", "b32": "i32"}


@dataclass(frozen=True)
class PtxEntry:
    name: str
    params: tuple[str, ...]  # "ptr" / "i32" per parameter, in order
    maxntid: int | None  # the __launch_bounds__ block size


def ptx_entries(text: str) -> dict[str, PtxEntry]:
    """Every ``.visible .entry`` of a PTX text, with its parameter kinds and ``.maxntid``."""
    entries = {}
    for match in _ENTRY_RE.finditer(text):
        name, params, directives = match.group(1), match.group(2), match.group(3)
        kinds = tuple(_PTX_TYPE.get(t, t) for t in _PARAM_RE.findall(params))
        ntid = _MAXNTID_RE.search(directives)
        maxntid = int(ntid.group(1)) * int(ntid.group(2) or 1) * int(ntid.group(3) or 1) if ntid else None
        entries[name] = PtxEntry(name, kinds, maxntid)
    return entries


def cubin_entries(data: bytes) -> list[str]:
    """Names of the kernel entry points (global STT_FUNC symbols marked as CUDA entries) of a cubin."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a little-endian ELF64 cubin")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names = []
    for _name, sh_type, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if sh_type != 2:  # SHT_SYMTAB
            continue
        str_off, str_size = sections[link][4], sections[link][5]
        strtab = data[str_off : str_off + str_size]
        for pos in range(offset, offset + size, entsize or 24):
            st_name, st_info, st_other = struct.unpack_from("<IBB", data, pos)
            # STT_FUNC, STB_GLOBAL; CUDA marks kernel entry points with STO_ENTRY (0x10) in st_other
            if st_info & 0xF == 2 and st_info >> 4 == 1 and st_other & 0x10:
                names.append(strtab[st_name : strtab.index(b"\0", st_name)].decode())
    return names


# ---------------------------------------------------------------------------------------------------
# Compilation
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Module:
    """One compiled module: PTX + cubin for one target, with the instantiations it holds."""

    target: str
    ptx: Path
    cubin: Path | None
    instances: tuple[Instance, ...]
    ptx_isa: str

    @property
    def compute_capability(self) -> tuple[int, int]:
        return _cc_of(self.target)


def _cc_of(target: str) -> tuple[int, int]:
    digits = target.removeprefix("sm_")
    return int(digits[:-1]), int(digits[-1])


def _target_of(cc: tuple[int, int]) -> str:
    return f"sm_{cc[0]}{cc[1]}"


def _run(cmd: Sequence[str], what: str) -> subprocess.CompletedProcess:
    done = subprocess.run(list(cmd), capture_output=True, text=True)
    if done.returncode != 0:
        raise KernelBuildError(f"{what} failed ({done.returncode}):\n{' '.join(cmd)}\n{done.stderr[-4000:]}")
    return done


def _nvcc_ptx(nvcc: str, target: str, source: Path, out: Path, defines: Sequence[str] = ()) -> str:
    """PTX text of ``source`` for compute_<target> (ISA rewritten, see the module docstring)."""
    arch = target.replace("sm_", "compute_")
    with tempfile.TemporaryDirectory(prefix="na2d_nvcc_") as tmp:
        raw = Path(tmp) / "out.ptx"
        _run(
            [nvcc, "-std=c++17", "-ptx", f"-arch={arch}", f"-I{KERNEL_DIR}", *defines, str(source), "-o", str(raw)],
            f"nvcc ({target})",
        )
        text = raw.read_text()
    isa = ptx_isa_for(target)
    if isa is not None:
        text = rewrite_ptx_isa(text, isa)
    with atomic_path(out) as tmp_out:
        tmp_out.write_text(text)
    return text


def _ptxas(ptxas: str, target: str, ptx: Path, out: Path | None) -> str:
    """Assemble (and thereby validate) ``ptx`` for ``target``; returns ptxas' -v resource report."""
    if out is None:
        with tempfile.TemporaryDirectory(prefix="na2d_ptxas_") as tmp:
            return _run([ptxas, f"-arch={target}", "-v", str(ptx), "-o", str(Path(tmp) / "x.cubin")], f"ptxas ({target})").stderr
    with atomic_path(out) as tmp_out:
        return _run([ptxas, f"-arch={target}", "-v", str(ptx), "-o", str(tmp_out)], f"ptxas ({target})").stderr


_RES_ENTRY_RE = re.compile(r"Compiling entry function '(\w+)' for")
_RES_USED_RE = re.compile(r"Used (\d+) registers")
_RES_SPILL_RE = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")


def ptxas_resources(report: str) -> dict[str, dict[str, int]]:
    """{entry: {"registers": n, "spill_stores": bytes, "spill_loads": bytes}} from ptxas -v output.

    ptxas reports an entry ("Compiling entry function ...", its properties, "Used N registers") and then
    the properties of its private copy of the __noinline__ body; the spills of both are summed.
    """
    out: dict[str, dict[str, int]] = {}
    current = None
    for line in report.splitlines():
        if m := _RES_ENTRY_RE.search(line):
            current = out.setdefault(m.group(1), {"registers": 0, "spill_stores": 0, "spill_loads": 0})
        elif current is not None and (m := _RES_SPILL_RE.search(line)):
            current["spill_stores"] += int(m.group(1))
            current["spill_loads"] += int(m.group(2))
        elif current is not None and (m := _RES_USED_RE.search(line)):
            current["registers"] = int(m.group(1))
    return out


def _instance_file(instances: Iterable[Instance]) -> str:
    lines = ["// generated by tsjnet_sdk.kernels.build", "#define NA_INSTANCE_LIST 1", '#include "na2d_kernels.cu"']
    lines += [f"NA_DEFINE({CXX_TYPE[dt]}, {dt}, {ks}, {d})" for dt, ks, d in instances]
    return "\n".join(lines) + "\n"


def _instance_stem(instance: Instance) -> str:
    dt, ks, d = instance
    return f"na2d_{dt}_k{ks}_d{d}"


def compile_module(
    out_dir: Path, target: str, instances: Sequence[Instance], name: str = "na2d", nvcc: str | None = None
) -> dict:
    """``<out_dir>/<target>/<name>.{ptx,cubin,json}`` holding ``instances``; returns the sidecar record."""
    nvcc = nvcc or _require_nvcc()
    ptxas = _ptxas_beside(nvcc)
    folder = Path(out_dir) / target
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="na2d_src_") as tmp:
        src = Path(tmp) / f"{name}.cu"
        src.write_text(_instance_file(instances))
        text = _nvcc_ptx(nvcc, target, src, folder / f"{name}.ptx")
    ptx_seconds = time.perf_counter() - started
    report = _ptxas(ptxas, target, folder / f"{name}.ptx", folder / f"{name}.cubin")
    record = {
        "format": FORMAT_VERSION,
        "kind": "module",
        "target": target,
        "source_hash": source_hash(),
        "nvcc": nvcc_version(nvcc),
        "ptx_isa": "{}.{}".format(*ptx_version(text)),
        "ptx": f"{name}.ptx",
        "cubin": f"{name}.cubin",
        "instances": [list(i) for i in instances],
        "seconds": {"ptx": round(ptx_seconds, 2), "cubin": round(time.perf_counter() - started - ptx_seconds, 2)},
        "resources": ptxas_resources(report),
    }
    with atomic_path(folder / f"{name}.json") as tmp_json:
        tmp_json.write_text(json.dumps(record, indent=1))
    return record


def compile_plugin_ptx(out_dir: Path, instance: Instance, nvcc: str | None = None) -> dict:
    """``<out_dir>/plugin/na2d_<dt>_k<k>_d<d>.ptx``: one instantiation for the TensorRT AOT plugin."""
    nvcc = nvcc or _require_nvcc()
    ptxas = _ptxas_beside(nvcc)
    dt, ks, d = instance
    folder = Path(out_dir) / "plugin"
    folder.mkdir(parents=True, exist_ok=True)
    stem = _instance_stem(instance)
    started = time.perf_counter()
    defines = [f"-DNA_ONE_T={CXX_TYPE[dt]}", f"-DNA_ONE_TNAME={dt}", f"-DNA_ONE_KS={ks}", f"-DNA_ONE_D={d}"]
    text = _nvcc_ptx(nvcc, PLUGIN_TARGET, KERNEL_DIR / "na2d_kernels.cu", folder / f"{stem}.ptx", defines)
    _ptxas(ptxas, PLUGIN_TARGET, folder / f"{stem}.ptx", None)  # validation only: TensorRT JITs the PTX
    record = {
        "format": FORMAT_VERSION,
        "kind": "plugin_ptx",
        "target": PLUGIN_TARGET,
        "source_hash": source_hash(),
        "nvcc": nvcc_version(nvcc),
        "ptx_isa": "{}.{}".format(*ptx_version(text)),
        "ptx": f"{stem}.ptx",
        "instances": [list(instance)],
        "seconds": {"ptx": round(time.perf_counter() - started, 2)},
    }
    with atomic_path(folder / f"{stem}.json") as tmp_json:
        tmp_json.write_text(json.dumps(record, indent=1))
    return record


def _require_nvcc() -> str:
    nvcc = find_nvcc()
    if nvcc is None:
        raise KernelBuildError(
            "nvcc not found (looked in $CUDA_HOME/bin, $CUDA_PATH/bin, PATH, /usr/local/cuda/bin): install the CUDA "
            "toolkit, or build the kernels elsewhere with `python -m tsjnet_sdk.kernels.build --out DIR` and point "
            "TSJNET_KERNELS_DIR at DIR"
        )
    return nvcc


# ---------------------------------------------------------------------------------------------------
# Whole builds
# ---------------------------------------------------------------------------------------------------
def plan(profile: str, targets: Sequence[str] = TARGETS) -> tuple[list[tuple[str, tuple[Instance, ...]]], list[Instance]]:
    """(modules as (target, instances), plugin PTX instances) of a profile."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    modules = []
    for target in targets:
        full = profile == "full" or (profile == "ci" and target == CI_FULL_MATRIX_TARGET)
        modules.append((target, spec.FULL_MATRIX if full else spec.TSJNET_INSTANCES))
    plugin = list(spec.FULL_MATRIX if profile == "full" else spec.TSJNET_INSTANCES)
    return modules, plugin


def build(
    out_dir: str | os.PathLike | None = None,
    profile: str = "full",
    targets: Sequence[str] = TARGETS,
    jobs: int | None = None,
    plugin: bool = True,
    nvcc: str | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Compile a profile into ``out_dir`` (default :func:`default_out_dir`); returns the manifest dict.

    Jobs run in parallel (``jobs`` processes, default the CPU count), longest first. The manifest
    (``manifest.json``) records the toolchain, the modules, and the seconds each took.
    """
    nvcc = nvcc or _require_nvcc()
    out = Path(out_dir) if out_dir is not None else default_out_dir()
    out.mkdir(parents=True, exist_ok=True)
    modules, plugin_instances = plan(profile, targets)
    tasks: list[tuple[float, str, Callable[[], dict]]] = []
    for target, instances in modules:
        tasks.append(
            (
                len(instances),
                f"module {target} ({len(instances)} instantiations)",
                lambda t=target, i=instances: compile_module(out, t, i, nvcc=nvcc),
            )
        )
    if plugin:
        for instance in plugin_instances:
            tasks.append(
                (0.5, f"plugin PTX {_instance_stem(instance)}", lambda i=instance: compile_plugin_ptx(out, i, nvcc=nvcc))
            )
    tasks.sort(key=lambda t: -t[0])
    started = time.perf_counter()
    log(f"building NA kernels ({profile}, {len(tasks)} jobs, nvcc {nvcc_version(nvcc)}) into {out}")

    def run(task: tuple[float, str, Callable[[], dict]]) -> dict:
        record = task[2]()
        log(f"  {task[1]}: {sum(record['seconds'].values()):.1f} s")
        return record

    with ThreadPoolExecutor(max_workers=max(1, jobs or os.cpu_count() or 1)) as pool:
        records = list(pool.map(run, tasks))
    manifest = {
        "format": FORMAT_VERSION,
        "profile": profile,
        "source_hash": source_hash(),
        "nvcc": nvcc_version(nvcc),
        "targets": list(targets),
        "seconds_total": round(time.perf_counter() - started, 1),
        "modules": [r for r in records if r["kind"] == "module"],
        "plugin_ptx": [r for r in records if r["kind"] == "plugin_ptx"],
    }
    with atomic_path(out / "manifest.json") as tmp_json:
        tmp_json.write_text(json.dumps(manifest, indent=1))
    log(f"done in {manifest['seconds_total']} s")
    return manifest


# ---------------------------------------------------------------------------------------------------
# Lookup (used by torch_binding and trt_plugin)
# ---------------------------------------------------------------------------------------------------
def _records(out_dir: Path, kind: str) -> list[tuple[Path, dict]]:
    found = []
    current = source_hash()
    for sidecar in sorted(Path(out_dir).glob("*/*.json")):
        try:
            record = json.loads(sidecar.read_text())
        except (OSError, ValueError):
            continue
        if record.get("kind") == kind and record.get("source_hash") == current and record.get("format") == FORMAT_VERSION:
            found.append((sidecar.parent, record))
    return found


def find_image(cc: tuple[int, int], instance: Instance, out_dir: str | os.PathLike | None = None) -> tuple[Path, str] | None:
    """Best prebuilt image holding ``instance`` for a GPU of compute capability ``cc``: (path, "cubin"|"ptx").

    Preference: the exact target's cubin; a cubin of the same major and a lower minor (binary
    compatible, e.g. sm_86 on sm_89); the PTX of the highest target <= cc (the driver JIT-compiles it).
    Builds from other kernel sources (different hash) are ignored.
    """
    out = Path(out_dir) if out_dir is not None else default_out_dir()
    inst = list(instance)
    cubins, ptxs = [], []
    for folder, record in _records(out, "module"):
        if inst not in record["instances"]:
            continue
        target_cc = _cc_of(record["target"])
        if record.get("cubin") and target_cc[0] == cc[0] and target_cc[1] <= cc[1]:
            cubins.append((target_cc, folder / record["cubin"]))
        if target_cc <= cc:
            ptxs.append((target_cc, folder / record["ptx"]))
    if cubins:
        return max(cubins)[1], "cubin"
    if ptxs:
        return max(ptxs)[1], "ptx"
    return None


def ensure_image(cc: tuple[int, int], instance: Instance, out_dir: str | os.PathLike | None = None) -> tuple[Path, str]:
    """:func:`find_image`, else compile ``instance`` for ``sm_<cc>`` with nvcc; clear error without nvcc."""
    out = Path(out_dir) if out_dir is not None else default_out_dir()
    found = find_image(cc, instance, out)
    if found is not None:
        return found
    target = _target_of(cc)
    if find_nvcc() is None:
        raise KernelBuildError(
            f"no prebuilt NA kernel {_instance_stem(instance)} for {target} in {out} and nvcc is not available to "
            "build it: run `python -m tsjnet_sdk.kernels.build` (CUDA toolkit needed) on this or a similar machine "
            "and set TSJNET_KERNELS_DIR to its output folder if it is not the default"
        )
    compile_module(out, target, [instance], name=_instance_stem(instance))
    found = find_image(cc, instance, out)
    assert found is not None
    return found


def plugin_ptx(instance: Instance, out_dir: str | os.PathLike | None = None, build_if_missing: bool = True) -> bytes:
    """The plugin PTX of ``instance`` (compute_86, ISA 7.1), compiled with nvcc if missing and allowed."""
    out = Path(out_dir) if out_dir is not None else default_out_dir()
    for folder, record in _records(out, "plugin_ptx"):
        if record["instances"] == [list(instance)]:
            return (folder / record["ptx"]).read_bytes()
    if not build_if_missing or find_nvcc() is None:
        raise KernelBuildError(
            f"no plugin PTX for {_instance_stem(instance)} in {out}: run `python -m tsjnet_sdk.kernels.build` "
            "(CUDA toolkit needed) and set TSJNET_KERNELS_DIR to its output folder if it is not the default"
        )
    record = compile_plugin_ptx(out, instance)
    return (out / "plugin" / record["ptx"]).read_bytes()


# ---------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------
if __name__ == "__main__":
    # `python -m tsjnet_sdk.kernels.build`: the same command as `tsjnet build-kernels` (kernels/cli.py). The CLI is imported only here:
    # the command-line layer imports this module, never the reverse (tests/test_import_graph.py).
    from tsjnet_sdk.cli_support import run_command
    from tsjnet_sdk.kernels.cli import build_kernels_command

    raise SystemExit(run_command(build_kernels_command, None, "python -m tsjnet_sdk.kernels.build"))
