"""Where does a fusion model lose detail? Per-scale energy on a training run's VALIDATION pairs.

    PYTHONPATH=. python benchmarks/detail_energy.py training/configs/edge_balanced.toml \
        --model tsjnet_sdk/weights/tsjnet-edge.safetensors [--out benchmarks/results/detail_energy.json]

Only the validation pairs held out of the training pool are used (never an evaluation set). For each
pair it decomposes the IR image I, the visible luma V, the model's fused F, the pixel average and the
Laplacian-pyramid baseline into the same Laplacian pyramid (tsjnet_sdk.baselines) and reports per level

* ``rms``: RMS of the band (how much energy the level holds);
* ``corr_lp``: correlation of the band with the max-abs band of the sources (the pyramid's choice):
  does the method keep the *right* detail, not just as much of it;

and which loss term binds: the norm of d term / dF of each weighted term of the run's fusion loss at
the given weights (the term with the largest gradient pulls F hardest).

The metrics also score an analytic per-scale blend rule, ``local_energy_rule`` (what a head that
predicts per-scale blend weights instead of pixels could reach): the pyramid with its hard max-abs
choice replaced by soft weights from each band's local energy, w_I = M_I^2 / (M_I^2 + M_V^2) with M the mean of the band's squares in a
3x3 window.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tsjnet_sdk.baselines import average_fusion, laplacian_pyramid, laplacian_pyramid_fusion

LEVELS = 5


def bands(x: np.ndarray) -> list[np.ndarray]:
    """The LEVELS detail bands and the base of ``x`` [H, W] in [0, 1]."""
    return laplacian_pyramid(np.asarray(x, np.float64), LEVELS)


def band_stats(images: dict[str, np.ndarray], ir: np.ndarray, vis: np.ndarray) -> dict[str, dict[str, list[float]]]:
    """{method: {"rms": [per level], "corr_lp": [per level]}} for one pair."""
    bi, bv = bands(ir), bands(vis)
    chosen = [np.where(np.abs(a) >= np.abs(b), a, b) for a, b in zip(bi[:-1], bv[:-1])]
    out: dict[str, dict[str, list[float]]] = {}
    for name, img in images.items():
        bf = bands(img)
        rms = [float(np.sqrt(np.mean(b**2))) for b in bf[:-1]]
        corr = [float(np.corrcoef(b.ravel(), c.ravel())[0, 1]) for b, c in zip(bf[:-1], chosen)]
        out[name] = {"rms": rms, "corr_lp": corr}
    return out


def local_energy_fusion(ir: np.ndarray, vis: np.ndarray, window: int = 3) -> np.ndarray:
    """Laplacian-pyramid fusion whose detail bands are blended with soft local-energy weights (base:
    the average, as the baseline's); [H, W] in [0, 1]."""
    from scipy.ndimage import uniform_filter

    from tsjnet_sdk.baselines import reconstruct

    bi, bv = bands(ir), bands(vis)
    fused = []
    for a, b in zip(bi[:-1], bv[:-1]):
        ea, eb = uniform_filter(a * a, window) ** 2, uniform_filter(b * b, window) ** 2
        w = ea / (ea + eb + 1e-12)
        fused.append(w * a + (1 - w) * b)
    fused.append(0.5 * (bi[-1] + bv[-1]))
    return np.clip(reconstruct(fused), 0, 1)


def binding_terms(trainer: Any, ir: Any, vis: Any) -> dict[str, float]:
    """||d (w_t term_t) / dF|| per loss term at the model's output (F treated as a free tensor)."""
    import torch

    with torch.no_grad():
        out = trainer.model(ir, vis)
    fused = out.fused.detach().float().clone().requires_grad_(True)
    loss = trainer.fusion_loss
    result = {}
    for term, weight in loss.weights.items():
        if not weight or term in ("diversity", "recon_ir", "recon_vis"):
            continue
        single = type(loss)(
            **{**{t: 0.0 for t in loss.TERMS}, term: weight},
            ssim_mode=loss.ssim_mode,
            intensity_target=loss.intensity_target,
            blend_beta=loss.blend_beta,
            intensity_sigma=loss.intensity_sigma,
            gradient_target=loss.gradient_target,
            gradient_scales=loss.gradient_scales,
        )
        total, _ = single(ir, vis, out._replace(fused=fused))
        (g,) = torch.autograd.grad(total, fused)
        result[term] = float(g.norm())
    return result


def detail_energy(config: str, model: str, out: str | None = None) -> dict[str, Any]:
    """Measure per-scale detail energy and the binding loss terms of ``model`` on ``config``'s validation pairs;
    print the JSON and write it to ``out`` when given (``tsjnet dev detail-energy``)."""
    import torch

    from tsjnet_sdk.models import load_checkpoint
    from tsjnet_sdk.training.config import load_config
    from tsjnet_sdk.training.trainer import Trainer

    torch.set_num_threads(1)
    cfg = load_config(config)
    trainer = Trainer(cfg)
    trainer.device = torch.device("cpu")
    trainer._setup_data()
    trainer.cfg.model.init = model
    trainer._setup_model()  # the run's loss; the model is replaced by the weights under test
    trainer.model = load_checkpoint(model).eval()
    per: dict[str, dict[str, list[list[float]]]] = {}
    metrics: dict[str, dict[str, list[float]]] = {}
    binds: dict[str, list[float]] = {}
    for i in range(len(trainer.val_set)):
        s = trainer.val_set[i]
        ir_t, vis_t = s["ir"][None], s["vis"][None]
        with torch.no_grad():
            fused = trainer.model(ir_t, vis_t).fused.float().clamp(0, 1)[0, 0].numpy()
        ir, vis = s["ir"][0].numpy(), s["vis"][0].numpy()
        images = {
            "ir": ir,
            "vis": vis,
            "model": fused,
            "average": average_fusion(ir, vis),
            "laplacian": laplacian_pyramid_fusion(ir, vis),
            "local_energy_rule": local_energy_fusion(ir, vis),
        }
        for name, st in band_stats(images, ir, vis).items():
            for k, v in st.items():
                per.setdefault(name, {}).setdefault(k, []).append(v)
        for name in ("model", "average", "laplacian", "local_energy_rule"):
            for k, v in trainer._metric_fn(ir, vis, np.clip(images[name], 0, 1).astype(np.float32)).items():
                metrics.setdefault(name, {}).setdefault(k, []).append(v)
        for k, v in binding_terms(trainer, ir_t, vis_t).items():
            binds.setdefault(k, []).append(v)
    result = {
        "config": config,
        "model": model,
        "pairs": len(trainer.val_set),
        "levels": LEVELS,
        "bands": {n: {k: np.nanmean(np.array(v), axis=0).round(5).tolist() for k, v in st.items()} for n, st in per.items()},
        "metrics": {n: {k: round(float(np.nanmean(v)), 4) for k, v in m.items()} for n, m in metrics.items()},
        "grad_norm_dF": {k: round(float(np.mean(v)), 6) for k, v in binds.items()},
    }
    text = json.dumps(result, indent=1)
    print(text)
    if out:
        from tsjnet_sdk.atomic import write_bytes_atomic

        write_bytes_atomic(Path(out), text.encode())
    return result


if __name__ == "__main__":
    # `python -m tsjnet_sdk.benchmarks.detail_energy` = `tsjnet dev detail-energy`; the CLI is imported only here.
    from tsjnet_sdk.benchmarks.cli import detail_energy_command
    from tsjnet_sdk.cli_support import run_command

    raise SystemExit(run_command(detail_energy_command, None, "python -m tsjnet_sdk.benchmarks.detail_energy"))
