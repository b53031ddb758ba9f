"""TSJNet model: parameter counts against the official code, shapes, any-size inputs, errors, training outputs."""

from __future__ import annotations

import pytest
import torch

from tsjnet_sdk.models import TSJNetConfig, create_model, get_config, list_configs

# Official counts (spec §6) less the 17,040 parameters the official code builds but never uses
# (NAT norm/avgpool/conv_head: 8,448 per NAT-mini x 2; the DSM's SpatialAttention: 72 x 2).
OFFICIAL_TOTAL_WITH_RPB = 45_133_055
OFFICIAL_TOTAL_WITHOUT_RPB = 45_082_355
OFFICIAL_UNUSED = 17_040


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_official_parameter_counts():
    model = create_model("tsjnet")
    assert n_params(model) == OFFICIAL_TOTAL_WITH_RPB - OFFICIAL_UNUSED == 45_116_015
    assert n_params(create_model("tsjnet", nat_rpb=False)) == OFFICIAL_TOTAL_WITHOUT_RPB - OFFICIAL_UNUSED
    # Per module, spec §6 (minus the unused parts of each).
    assert n_params(model.encoder.patch_embed) == 27
    assert n_params(model.encoder.trunk.stem) == 113_088
    assert n_params(model.encoder.trunk.blocks) == 630_272
    assert n_params(model.encoder.refine) == 1_548_736
    assert n_params(model.encoder.base) == 20_307_494 - 8_448
    assert n_params(model.encoder.base.nat.tokenizer) + n_params(model.encoder.base.nat.tokenizer_norm) == 37_088
    assert [n_params(level) for level in model.encoder.base.nat.levels] == [126_198, 664_208, 3_958_704, 13_151_440]
    assert [n_params(d) for d in model.encoder.base.nat.downsamplers] == [73_984, 295_424, 1_180_672]
    assert n_params(model.encoder.detail) == 139_848 - 72
    assert n_params(model.base_fuse) == 20_307_494 - 8_448
    assert n_params(model.detail_fuse) == 139_848 - 72
    assert n_params(model.decoder) == 1_946_248
    assert n_params(model.decoder.attention) == 136
    assert n_params(model.decoder.trunk) == 760_064
    assert n_params(model.decoder.head) == 1_181_952


def test_rpb_shape_and_nat_hyperparameters():
    model = create_model("tsjnet")
    attn = model.encoder.base.nat.levels[3][0].attn
    assert attn.num_heads == 16 and attn.kernel_size == 7
    assert tuple(attn.rpb.shape) == (16, 13, 13)
    assert [len(level) for level in model.encoder.base.nat.levels] == [3, 4, 6, 5]


@pytest.mark.parametrize("size", [(64, 64), (45, 70), (33, 100)])
def test_any_size_forward_shapes_and_ranges(size):
    torch.manual_seed(0)
    model = create_model("tsjnet-tiny").eval()
    ir, vis = torch.rand(2, 1, *size), torch.rand(2, 1, *size)
    with torch.no_grad():
        out = model(ir, vis, reconstruct=True)
    assert out.fused.shape == (2, 1, *size)
    assert out.attention.shape == (2, 8, *size)
    assert out.ir_recon.shape == out.vis_recon.shape == (2, 1, *size)
    assert out.base_ir.shape == out.detail_vis.shape == (2, 8, *size)
    for t in (out.fused, out.attention, out.ir_recon):
        assert t.min() > 0 and t.max() < 1  # sigmoid outputs
    assert model(ir, vis).ir_recon is None  # reconstructions only when asked
    assert torch.equal(model.fuse(ir, vis), out.fused)


def test_padding_is_identity_for_multiples_of_32_and_crops_consistently():
    torch.manual_seed(0)
    model = create_model("tsjnet-tiny").eval()
    ir, vis = torch.rand(1, 1, 64, 96), torch.rand(1, 1, 64, 96)
    with torch.no_grad():
        full = model.fuse(ir, vis)
        # Removing a strip reflect-pads it back: the centre of the image barely changes, the shape follows.
        cropped = model.fuse(ir[..., :60, :90], vis[..., :60, :90])
    assert cropped.shape == (1, 1, 60, 90)
    assert (full[..., 16:44, 16:74] - cropped[..., 14:42, 13:71]).abs().mean() < 0.05


def test_full_config_forward_small_input():
    torch.manual_seed(0)
    model = create_model("tsjnet").eval()
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        fused = model.fuse(x, x.flip(-1))
    assert fused.shape == (1, 1, 64, 64) and torch.isfinite(fused).all()


def test_training_step_reaches_every_parameter():
    torch.manual_seed(0)
    model = create_model("tsjnet-tiny").train()  # batch 2: the ResNeSt GAP-BN needs batch > 1 in training
    ir, vis = torch.rand(2, 1, 64, 64), torch.rand(2, 1, 64, 64)
    out = model(ir, vis, reconstruct=True)
    loss = (
        (out.fused - vis).pow(2).mean()
        + out.attention.mean()
        + (out.ir_recon - ir).pow(2).mean()
        + (out.vis_recon - vis).pow(2).mean()
    )
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert no_grad == []


def test_input_errors_are_clear():
    model = create_model("tsjnet-tiny").eval()
    x = torch.rand(1, 1, 64, 64)
    with pytest.raises(ValueError, match="same shape"):
        model(x, torch.rand(1, 1, 64, 80))
    with pytest.raises(ValueError, match=r"luminance, not RGB"):
        model(x, torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r"x\[None, None\]"):
        model(x[0, 0], x[0, 0])
    with pytest.raises(TypeError, match="floats in \\[0, 1\\]"):
        model((x * 255).to(torch.uint8), (x * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="too small"):
        model(torch.rand(1, 1, 16, 64), torch.rand(1, 1, 16, 64))
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        model(x.numpy(), x)


def test_configs_registry_and_json_round_trip():
    assert {"tsjnet", "tsjnet-tiny", "tsjnet-small"} <= set(list_configs())
    cfg = get_config("tsjnet-small", nat_rpb=False)
    assert TSJNetConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(KeyError, match="unknown TSJNet config"):
        get_config("tsjnet-huge")
    with pytest.raises(ValueError, match="divisible"):
        TSJNetConfig(nat_heads=(3, 4, 8, 16))
    with pytest.raises(ValueError, match="newer tsjnet-sdk"):
        TSJNetConfig.from_dict({**cfg.to_dict(), "future_field": 1})


def test_eval_runs_the_encoder_once_on_both_modalities_with_the_same_values():
    # Inference stacks IR and visible on the batch axis for one encoder pass; training keeps two passes.
    torch.manual_seed(0)
    model = create_model(get_config("tsjnet-tiny")).eval()
    ir, vis = torch.rand(2, 1, 64, 96), torch.rand(2, 1, 64, 96)
    calls = []
    model.encoder.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    with torch.no_grad():
        out = model(ir, vis)
        base_vis, detail_vis = model.encoder(vis)  # 64 x 96: a multiple of 32, no padding
    assert calls[0] == 4  # one pass, both modalities of both samples
    assert torch.allclose(out.base_vis, base_vis, atol=1e-5)
    assert torch.allclose(out.detail_vis, detail_vis, atol=1e-5)
    model.train()
    calls.clear()
    model(ir, vis)
    assert calls == [2, 2]
