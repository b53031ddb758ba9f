"""GPU verification section 1: kernel images (an image per instance; registers, smem, occupancy).

Split out of benchmarks/gpu_verify.py (the entry point); see its docstring for the whole run.
"""

from __future__ import annotations

import contextlib
import json
import time

from tsjnet_sdk.benchmarks.gpu_verify_core import (
    FAIL,
    INFO,
    PASS,
    SKIPPED,
    Ctx,
)
from tsjnet_sdk.benchmarks.gpu_verify_helpers import (
    _binding,
    _device,
)


# ---------------------------------------------------------------------------------------------------
# Section 1: kernel images
# ---------------------------------------------------------------------------------------------------
def section_kernel_images(ctx: Ctx) -> None:
    from tsjnet_sdk.kernels import build, spec

    out = build.default_out_dir()
    ctx.data("kernels_dir", str(out))
    ctx.data("source_hash", build.source_hash())
    manifest = out / "manifest.json"
    if manifest.is_file():
        with contextlib.suppress(ValueError, OSError):
            m = json.loads(manifest.read_text())
            ctx.data("manifest", {k: m.get(k) for k in ("profile", "source_hash", "nvcc", "targets", "seconds_total")})
    if ctx.dry_run:
        cc = (9, 0)
        found = {i: build.find_image(cc, i, out) for i in spec.TSJNET_INSTANCES}
        ctx.check(
            "image lookup",
            INFO,
            f"dry run: sm_90 images found for {sum(v is not None for v in found.values())}"
            f"/{len(found)} TSJNet instances in {out}",
        )
        ctx.check("images for every instance", SKIPPED, "dry run: no GPU")
        return
    import torch

    device = _device(ctx)
    cc = torch.cuda.get_device_capability(device)
    target = f"sm_{cc[0]}{cc[1]}"
    missing = [i for i in spec.FULL_MATRIX if build.find_image(cc, i, out) is None]
    if missing:
        if build.find_nvcc() is None:
            ctx.check(
                "images for every instance",
                FAIL,
                f"{len(missing)} instances have no image for {target} in {out} "
                "and nvcc is absent: pass --kernels-dir with a full build",
            )
        elif ctx.enough(40, "compile missing instances"):
            t0 = time.monotonic()
            build.compile_module(out, target, missing, name="na2d_verify")
            ctx.data("compiled", {"target": target, "instances": len(missing), "seconds": time.monotonic() - t0})
            missing = [i for i in spec.FULL_MATRIX if build.find_image(cc, i, out) is None]
    if not missing:
        kinds = {"{}_k{}_d{}".format(*i): build.find_image(cc, i, out)[1] for i in spec.FULL_MATRIX}  # type: ignore[index]
        ctx.data("image_kinds", kinds)
        ctx.check(
            "images for every instance",
            PASS,
            f"{len(kinds)} instances: "
            f"{sum(k == 'cubin' for k in kinds.values())} cubin, {sum(k == 'ptx' for k in kinds.values())} ptx",
        )
    tb = _binding()
    driver = tb._driver()
    attrs = {}
    for dtype, ks, d in spec.TSJNET_INSTANCES:
        for rpb in (False, True):
            name = spec.entry_name(dtype, ks, d, rpb)

            def one(name: str = name, dtype: str = dtype, ks: int = ks, d: int = d, rpb: bool = rpb) -> None:
                fn = tb._function(device.index, dtype, ks, d, rpb)
                a = driver.CUfunction_attribute
                get = lambda attr: tb._check(driver, driver.cuFuncGetAttribute(attr, fn), "cuFuncGetAttribute")  # noqa: E731
                threads = spec.kernel_config(dtype, ks, d).threads
                occ = tb._check(
                    driver,
                    driver.cuOccupancyMaxActiveBlocksPerMultiprocessor(fn, threads, 0),
                    "cuOccupancyMaxActiveBlocksPerMultiprocessor",
                )
                attrs[name] = {
                    "registers": get(a.CU_FUNC_ATTRIBUTE_NUM_REGS),
                    "local_bytes": get(a.CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES),
                    "static_smem": get(a.CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES),
                    "threads": threads,
                    "blocks_per_sm": occ,
                    "image": build.find_image(cc, (dtype, ks, d), out)[1],
                }  # type: ignore[index]
                ok = attrs[name]["local_bytes"] == 0 and occ >= 1
                ctx.check(f"load {name}", PASS if ok else FAIL, f"{attrs[name]}")

            ctx.attempt(f"load {name}", one)
    ctx.data("entry_attributes", attrs)
