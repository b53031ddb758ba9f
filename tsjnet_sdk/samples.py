"""Procedural IR + visible sample pairs (numpy only), so that the SDK can demonstrate and check itself
without any data set: the public IVIF data sets cannot be redistributed with it.

:func:`night_scene` draws a street at night, the situation infrared + visible fusion exists for:

* visible (RGB): dark, low-contrast, noisy; fine texture (brick walls, lit windows, road markings,
  foliage) that the IR camera does not see; warm street-lamp glow; people and cars barely visible;
* infrared (grey): smooth background temperatures with little texture, warm people and vehicles
  (hot engines, tyres, exhaust), cold sky.

Deterministic for a given seed and size.
"""

from __future__ import annotations

import numpy as np


def _blur(img: np.ndarray, passes: int) -> np.ndarray:
    """Cheap separable box blur (edge-padded) repeated ``passes`` times: about a Gaussian."""
    out = img
    for _ in range(passes):
        p = np.pad(out, [(1, 1), (1, 1)] + [(0, 0)] * (out.ndim - 2), mode="edge")
        out = (p[:-2] + p[1:-1] + p[2:]) / 3.0
        out = (out[:, :-2] + out[:, 1:-1] + out[:, 2:]) / 3.0
    return out


def night_scene(height: int = 480, width: int = 640, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One registered pair: (ir uint8 [H, W], visible uint8 [H, W, 3] RGB). H, W >= 32."""
    if height < 32 or width < 32:
        raise ValueError(f"night_scene needs height, width >= 32, got {height}x{width}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = xx / width, yy / height
    horizon = 0.55 + 0.05 * np.sin(2 * np.pi * u * 1.3 + rng.uniform(0, 6))

    # --- layout: sky, buildings, ground ------------------------------------------------------
    sky = v < horizon
    vis = np.zeros((height, width, 3))
    ir = np.zeros((height, width))
    vis[sky] = [0.05, 0.06, 0.10]
    ir[sky] = 0.10 + 0.05 * v[sky]  # cold sky
    ground = ~sky
    vis[ground] = [0.09, 0.08, 0.07]
    ir[ground] = 0.35 + 0.15 * (v[ground] - horizon[ground])  # road still warm from the day
    # road markings: visible only (paint has the asphalt's temperature)
    stripes = ground & (np.abs(u - 0.5 - 0.3 * (v - 0.6)) < 0.006 + 0.01 * (v - 0.55)) & ((yy // 12) % 2 == 0)
    vis[stripes] = [0.30, 0.29, 0.22]

    x = 0
    while x < width:
        bw = int(rng.integers(width // 10, width // 4))
        top = int(height * rng.uniform(0.15, 0.4))
        x0, x1 = x, min(width, x + bw)
        block = (xx >= x0) & (xx < x1) & (yy >= top) & (yy < horizon * height)
        tone = rng.uniform(0.08, 0.16)
        brick = 0.04 * (((yy // 4 + (xx // 9) * 0) % 2) + ((xx + 5 * (yy // 4 % 2)) // 9 % 2)) - 0.04
        grain = rng.normal(0, 0.02, (height, width))
        for c, tint in enumerate((1.0, 0.85, 0.75)):
            vis[..., c] = np.where(block, tone * tint + brick + grain, vis[..., c])
        ir = np.where(block, 0.28 + rng.uniform(-0.04, 0.04), ir)  # facades: smooth, mid temperature
        # lit windows: bright in visible, only slightly warm in IR
        wy = (yy - top) % 28
        wx = (xx - x0) % 22
        lit = block & (wy > 8) & (wy < 20) & (wx > 5) & (wx < 15)
        lit &= rng.random((height, width)) < 2.0  # keep all; randomness per window below
        on = ((xx - x0) // 22 * 7 + (yy - top) // 28 * 13 + seed) % 3 == 0
        vis[lit & on] = [0.55, 0.45, 0.25]
        ir = np.where(lit & on, ir + 0.05, ir)
        x = x1 + int(rng.integers(0, width // 20))

    # foliage: strong visible texture, uniform IR
    for _ in range(3):
        cx, cy, r = (
            rng.uniform(0.1, 0.9) * width,
            horizon.mean() * height - rng.uniform(0, 0.1) * height,
            rng.uniform(0.05, 0.09) * width,
        )
        tree = (xx - cx) ** 2 + ((yy - cy) * 1.3) ** 2 < r**2
        leaves = rng.random((height, width)) < 0.5
        vis[tree] = np.where(leaves[tree, None], [0.05, 0.10, 0.04], [0.02, 0.05, 0.02])
        ir = np.where(tree, 0.22, ir)

    # street lamps: warm glow in visible, small hot spot in IR
    for lx in np.linspace(0.15, 0.85, 3) * width:
        ly = height * 0.3
        glow = np.exp(-((xx - lx) ** 2 + (yy - ly) ** 2) / (2 * (0.06 * width) ** 2))
        vis += glow[..., None] * np.array([0.35, 0.28, 0.12])
        ir += 0.25 * np.exp(-((xx - lx) ** 2 + (yy - ly) ** 2) / (2 * 3.0**2))

    # --- warm targets: people and cars (bright in IR, nearly invisible in visible) -------------
    for _ in range(int(rng.integers(3, 6))):
        px, py = rng.uniform(0.05, 0.95) * width, rng.uniform(0.65, 0.95) * height
        s = 0.04 * height + 0.12 * height * (py / height - 0.55)
        body = (np.abs(xx - px) < 0.18 * s) & (yy > py - s) & (yy < py - 0.2 * s)
        legs = (np.abs(np.abs(xx - px) - 0.1 * s) < 0.06 * s) & (yy >= py - 0.2 * s) & (yy < py)
        head = (xx - px) ** 2 + (yy - (py - 1.12 * s)) ** 2 < (0.12 * s) ** 2
        person = body | legs | head
        ir = np.where(person, 0.85 + 0.1 * head, ir)
        vis[person] = vis[person] * 0.6 + 0.03
    for _ in range(int(rng.integers(1, 3))):
        cx, cy = rng.uniform(0.1, 0.8) * width, rng.uniform(0.72, 0.9) * height
        cw, ch = 0.16 * width * (cy / height), 0.06 * width * (cy / height)
        car = (xx > cx) & (xx < cx + cw) & (yy > cy - ch) & (yy < cy)
        roof = (xx > cx + 0.25 * cw) & (xx < cx + 0.75 * cw) & (yy > cy - 1.6 * ch) & (yy <= cy - ch)
        ir = np.where(car | roof, 0.55, ir)
        engine = car & (xx > cx + 0.75 * cw)
        ir = np.where(engine, 0.9, ir)
        for wxc in (cx + 0.2 * cw, cx + 0.8 * cw):
            tyre = (xx - wxc) ** 2 + (yy - cy) ** 2 < (0.22 * ch) ** 2
            ir = np.where(tyre, 0.8, ir)
        vis[car | roof] = [0.07, 0.07, 0.09]
        lamps = car & (xx > cx + cw - 0.06 * cw) & (yy > cy - 0.6 * ch) & (yy < cy - 0.3 * ch)
        vis[lamps] = [0.9, 0.85, 0.6]

    # --- sensors: IR is smooth (optics) with mild noise; visible is noisy (low light, high gain) -----
    ir = _blur(ir, 2) + rng.normal(0, 0.01, ir.shape)
    vis = _blur(vis, 1) + rng.normal(0, 0.025, vis.shape) + rng.normal(0, 0.01, (height, width, 1))
    ir_u8 = np.clip(np.rint(ir * 255), 0, 255).astype(np.uint8)
    vis_u8 = np.clip(np.rint(np.clip(vis, 0, 1) ** 0.9 * 255), 0, 255).astype(np.uint8)
    return ir_u8, vis_u8


def sample_pairs(count: int = 3, height: int = 480, width: int = 640) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``count`` different night scenes as (name, ir, visible)."""
    return [(f"night_{i:02d}", *night_scene(height, width, seed=i)) for i in range(count)]
