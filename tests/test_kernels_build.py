"""kernels/build.py: the nvcc build of the NA kernel for every target, checked symbol by symbol.

Builds the ``ci`` profile once (TSJNet's instantiations for sm_86/87/89/90/120, the full matrix for
sm_86, the plugin PTX; ~25 s on 2 idle cores) and checks every PTX and cubin against kernels/spec.py:
entry-point names, parameter lists, block size, shared memory, PTX ISA version. Skips without nvcc.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tsjnet_sdk.kernels import build, spec

pytestmark = pytest.mark.slow
NVCC = build.find_nvcc()
if NVCC is None:
    pytest.skip("nvcc not found (CUDA toolkit absent): the kernel build cannot be tested here", allow_module_level=True)

SMEM_RE = re.compile(r"_ZZN4na2d17na2d_forward_bodyI([ft])Li(\d+)ELi(\d+)EEEvNS_4ArgsEE4smem\[(\d+)\]")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("na2d_build")
    manifest = build.build(out, profile="ci", jobs=2, log=lambda line: None)
    return out, manifest


def _cuobjdump() -> str | None:
    """cuobjdump from the toolkit or PATH, else the copy bundled with triton (if installed)."""
    beside = Path(NVCC).with_name("cuobjdump")
    if beside.is_file():
        return str(beside)
    if shutil.which("cuobjdump"):
        return shutil.which("cuobjdump")
    triton = importlib.util.find_spec("triton")
    for root in (triton.submodule_search_locations or []) if triton else []:
        bundled = Path(root) / "backends" / "nvidia" / "bin" / "cuobjdump"
        if bundled.is_file():
            return str(bundled)
    return None


def test_every_target_was_built_with_the_planned_instances(built):
    out, manifest = built
    modules, plugin = build.plan("ci")
    by_target = sorted(manifest["modules"], key=lambda m: build.TARGETS.index(m["target"]))
    assert [(m["target"], [tuple(i) for i in m["instances"]]) for m in by_target] == [(t, list(i)) for t, i in modules]
    assert {tuple(r["instances"][0]) for r in manifest["plugin_ptx"]} == set(plugin)
    full = [m for m in manifest["modules"] if m["target"] == build.CI_FULL_MATRIX_TARGET][0]
    assert len(full["instances"]) == len(spec.FULL_MATRIX) == 48


@pytest.mark.parametrize("target", build.TARGETS)
def test_ptx_entry_points_match_spec(built, target):
    """Names, parameter kinds (the launch ABI), __launch_bounds__ and ISA version of every entry point."""
    out, _ = built
    record = json.loads((out / target / "na2d.json").read_text())
    text = (out / target / record["ptx"]).read_text()
    instances = [tuple(i) for i in record["instances"]]
    entries = build.ptx_entries(text)
    assert sorted(entries) == sorted(spec.entry_names(instances))
    for dt, ks, d in instances:
        cfg = spec.kernel_config(dt, ks, d)
        for rpb in (False, True):
            entry = entries[spec.entry_name(dt, ks, d, rpb)]
            assert entry.params == tuple(kind for _, kind in spec.entry_args(rpb)), entry.name
            assert entry.maxntid == cfg.threads, entry.name
    assert build.ptx_version(text) == build.ptx_isa_for(target)
    assert re.search(rf"^\.target {target}\s*$", text, re.MULTILINE)
    assert record["ptx_isa"] == "{}.{}".format(*build.ptx_isa_for(target))
    # static shared memory of every instantiation = spec.kernel_config (the mirror of na2d::Config)
    smem = {("f32" if t == "f" else "f16", int(ks), int(d)): int(n) for t, ks, d, n in SMEM_RE.findall(text)}
    assert smem == {i: spec.kernel_config(*i).smem_bytes for i in instances}
    assert max(smem.values()) <= 48 * 1024


@pytest.mark.parametrize("target", build.TARGETS)
def test_cubin_entry_points_match_spec(built, target):
    out, _ = built
    record = json.loads((out / target / "na2d.json").read_text())
    cubin = (out / target / record["cubin"]).read_bytes()
    expected = sorted(spec.entry_names([tuple(i) for i in record["instances"]]))
    assert sorted(build.cubin_entries(cubin)) == expected
    assert sorted(record["resources"]) == expected  # ptxas reported every entry
    tool = _cuobjdump()
    if tool is None:
        print("cuobjdump not found: cubin checked with the built-in ELF reader only")
        return
    listing = subprocess.run(
        [tool, "-symbols", str(out / target / record["cubin"])], capture_output=True, text=True, check=True
    ).stdout
    entries = sorted(line.split()[-1] for line in listing.splitlines() if "STO_ENTRY" in line)
    assert entries == expected
    arch = subprocess.run([tool, "-lelf", str(out / target / record["cubin"])], capture_output=True, text=True, check=True).stdout
    assert f".{target}." in arch


def test_tsjnet_instances_do_not_spill(built):
    """ptxas resource report: TSJNet's kernels (k7, d32) use no local memory on any target."""
    _, manifest = built
    for module in manifest["modules"]:
        for name in spec.entry_names(spec.TSJNET_INSTANCES):
            res = module["resources"][name]
            assert res["spill_stores"] == res["spill_loads"] == 0, (module["target"], name, res)
            assert res["registers"] <= 255


def test_plugin_ptx_is_old_isa_and_complete(built):
    out, _ = built
    for instance in spec.TSJNET_INSTANCES:
        text = build.plugin_ptx(instance, out, build_if_missing=False).decode()
        assert build.ptx_version(text) == build.ptx_isa_for("sm_86") == (7, 1)  # any driver since CUDA 11.1
        assert re.search(r"^\.target sm_86\s*$", text, re.MULTILINE)
        assert sorted(build.ptx_entries(text)) == sorted(spec.entry_names([instance]))
    with pytest.raises(build.KernelBuildError, match="no plugin PTX"):
        build.plugin_ptx(("f32", 3, 8), out, build_if_missing=False)


def test_ptxas_rejects_an_isa_too_old_for_the_target(built, tmp_path):
    """The ISA rewrite is validated: ptxas refuses PTX whose declared ISA cannot express the target."""
    out, _ = built
    text = build.plugin_ptx(spec.TSJNET_INSTANCES[0], out, build_if_missing=False).decode()
    too_old = tmp_path / "old.ptx"
    too_old.write_text(build.rewrite_ptx_isa(text, (7, 0)))  # ISA 7.0 predates sm_86
    done = subprocess.run(
        [str(Path(NVCC).with_name("ptxas")), "-arch=sm_86", str(too_old), "-o", str(tmp_path / "x.cubin")],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "does not support" in done.stderr
    with pytest.raises(ValueError, match="will not raise"):
        build.rewrite_ptx_isa(text, (9, 9))


def test_ptx_isa_is_each_targets_floor(built, tmp_path):
    """Each target's PTX declares the oldest ISA that knows it (old drivers can JIT it), and that floor is tight:
    ptxas accepts the kernel at the floor and rejects it one ISA step below (so the table is not too low)."""
    assert {t: build.ptx_isa_for(t) for t in build.TARGETS} == {
        "sm_86": (7, 1),
        "sm_87": (7, 4),
        "sm_89": (7, 8),
        "sm_90": (7, 8),
        "sm_120": (8, 7),
    }
    out, _ = built
    text = build.plugin_ptx(spec.TSJNET_INSTANCES[0], out, build_if_missing=False).decode()
    ptxas = str(Path(NVCC).with_name("ptxas"))
    below = {(7, 1): (7, 0), (7, 4): (7, 3), (7, 8): (7, 7), (8, 7): (8, 6)}
    for target in build.TARGETS:
        floor = build.ptx_isa_for(target)
        retargeted = re.sub(r"^\.target sm_86\s*$", f".target {target}", text, count=1, flags=re.MULTILINE)
        for isa, ok in ((floor, True), (below[floor], False)):
            ptx = tmp_path / f"{target}_{isa[0]}{isa[1]}.ptx"
            ptx.write_text(re.sub(r"^\.version .*$", f".version {isa[0]}.{isa[1]}", retargeted, count=1, flags=re.MULTILINE))
            done = subprocess.run(
                [ptxas, f"-arch={target}", str(ptx), "-o", str(tmp_path / "x.cubin")], capture_output=True, text=True
            )
            assert (done.returncode == 0) == ok, (target, isa, done.stderr[-500:])


def test_find_image_prefers_exact_then_compatible_cubin_then_ptx(built):
    out, _ = built
    tsj, other = spec.TSJNET_INSTANCES[0], ("f16", 3, 8)  # other: only in sm_86's full matrix
    expect = {
        ((8, 6), tsj): ("sm_86", "cubin"),
        ((8, 7), tsj): ("sm_87", "cubin"),
        ((8, 9), tsj): ("sm_89", "cubin"),
        ((9, 0), tsj): ("sm_90", "cubin"),
        ((12, 0), tsj): ("sm_120", "cubin"),
        ((12, 1), tsj): ("sm_120", "cubin"),
        ((10, 0), tsj): ("sm_90", "ptx"),
        ((8, 9), other): ("sm_86", "cubin"),
        ((9, 0), other): ("sm_86", "ptx"),
        ((12, 0), other): ("sm_86", "ptx"),
    }
    for (cc, instance), (target, kind) in expect.items():
        path, got_kind = build.find_image(cc, instance, out)
        assert (path.parent.name, got_kind) == (target, kind), (cc, instance)
        assert path.suffix == f".{kind}"
    assert build.find_image((7, 5), tsj, out) is None


def test_stale_builds_are_ignored(built, tmp_path):
    out, _ = built
    copy = tmp_path / "sm_89"
    shutil.copytree(out / "sm_89", copy)
    sidecar = json.loads((copy / "na2d.json").read_text())
    sidecar["source_hash"] = "0" * 16
    (copy / "na2d.json").write_text(json.dumps(sidecar))
    assert build.find_image((8, 9), spec.TSJNET_INSTANCES[0], tmp_path) is None


def test_ensure_image_compiles_a_missing_target(tmp_path):
    path, kind = build.ensure_image((7, 5), ("f16", 7, 32), tmp_path)
    assert (path.parent.name, kind) == ("sm_75", "cubin")
    assert build.cubin_entries(path.read_bytes()) != []
    assert build.ensure_image((7, 5), ("f16", 7, 32), tmp_path) == (path, kind)  # found, not rebuilt


def test_module_is_runnable():
    done = subprocess.run([sys.executable, "-m", "tsjnet_sdk.kernels.build", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--profile" in done.stdout


def test_core_also_compiles_with_nvrtc():
    """na2d_core.cuh claims NVRTC support (no system headers): keep that true for a run-time-compile path."""
    if importlib.util.find_spec("cuda") is None or importlib.util.find_spec("cuda.bindings") is None:
        pytest.skip("cuda-python (NVRTC bindings) not installed")
    from cuda.bindings import nvrtc

    core = (build.KERNEL_DIR / "na2d_core.cuh").read_text()
    source = (build.KERNEL_DIR / "na2d_kernels.cu").read_text().replace('#include "na2d_core.cuh"', core)
    err, prog = nvrtc.nvrtcCreateProgram(source.encode(), b"na2d_kernels.cu", 0, [], [])
    assert int(err) == 0
    opts = [
        b"--gpu-architecture=compute_86",
        b"-std=c++17",
        b"-DNA_ONE_T=na2d::half_bits",
        b"-DNA_ONE_TNAME=f16",
        b"-DNA_ONE_KS=7",
        b"-DNA_ONE_D=32",
    ]
    try:
        (result,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
    except RuntimeError as exc:  # libnvrtc missing
        pytest.skip(f"NVRTC unavailable: {exc}")
    _, size = nvrtc.nvrtcGetProgramLogSize(prog)
    # Mutable buffers: NVRTC writes into them (writing into `b" " * n` would corrupt Python's shared
    # bytes objects, e.g. the interned b" " when n == 1, and break unrelated code later in the process).
    log = bytearray(size)
    nvrtc.nvrtcGetProgramLog(prog, log)
    assert int(result) == 0, bytes(log).decode()
    _, size = nvrtc.nvrtcGetPTXSize(prog)
    ptx = bytearray(size)
    nvrtc.nvrtcGetPTX(prog, ptx)
    assert sorted(build.ptx_entries(bytes(ptx).decode().rstrip("\0 "))) == sorted(spec.entry_names([("f16", 7, 32)]))
