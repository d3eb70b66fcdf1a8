"""ConvNeXt-dcls: positions shared per stage (one parameter, every block's gradient), the official
checkpoint layout converted one-to-one, checkpoints round-trip, and ConvNeXt itself unchanged."""

import pytest
import torch

import subband
from subband.layers import DclsConv2d, dcls_kernel
from subband.models.convnext import ConvNeXt
from subband.models.convnext_dcls import ConvNeXtDcls, convert_official_state_dict

SMALL = dict(depths=(2, 1, 2, 1), dims=(8, 16, 24, 32), num_classes=5, kernel_count=6, dilated_kernel_size=7)


def test_blocks_use_dcls_with_positions_shared_per_stage():
    torch.manual_seed(0)
    model = ConvNeXtDcls(**SMALL)
    for stage, dim in zip(model.stages, SMALL["dims"]):
        assert stage.P.shape == (2, dim, 1, 6)
        assert stage.P.abs().max() <= 3  # clamped to the 7x7 window
        for block in stage.blocks:
            assert isinstance(block.conv_dw, DclsConv2d) and block.conv_dw.positions is stage.P
            assert block.conv_dw.groups == dim and block.conv_dw.padding == (3, 3) and block.conv_dw.version == "v0"
    assert not any(k.endswith("conv_dw.P") for k in model.state_dict())
    # the shared gradient is the sum of what each block would get from its own copy
    x = torch.randn(2, 3, 32, 32)
    model(x).square().sum().backward()
    stage = model.stages[0]
    got = stage.P.grad.clone()
    copies = [stage.P.detach().clone().requires_grad_() for _ in stage.blocks]
    for block, q in zip(stage.blocks, copies):
        block.conv_dw.kernel = lambda conv=block.conv_dw, q=q: dcls_kernel(conv.weight, q, (7, 7), "v0")
    model.zero_grad()
    model(x).square().sum().backward()
    torch.testing.assert_close(got, sum(q.grad for q in copies))


def _official_keys(depths):
    """Parameter names of K-H-Ismail/ConvNeXt-dcls's model, written out from its layout: ConvNeXt's,
    with ``dwconv.{weight, bias, P}`` in every block (P the stage's shared tensor)."""
    keys = {f"downsample_layers.0.{j}.{p}" for j in (0, 1) for p in ("weight", "bias")}
    for i in range(1, len(depths)):
        keys |= {f"downsample_layers.{i}.{j}.{p}" for j in (0, 1) for p in ("weight", "bias")}
    for i, d in enumerate(depths):
        for j in range(d):
            keys |= {f"stages.{i}.{j}.gamma", f"stages.{i}.{j}.dwconv.P"}
            for layer in ("dwconv", "norm", "pwconv1", "pwconv2"):
                keys |= {f"stages.{i}.{j}.{layer}.weight", f"stages.{i}.{j}.{layer}.bias"}
    return keys | {"norm.weight", "norm.bias", "head.weight", "head.bias"}


def test_official_checkpoint_converts_one_to_one():
    torch.manual_seed(1)
    model = ConvNeXtDcls(**SMALL)
    ours = model.state_dict()
    # an official state dict, made from ours by the inverse renaming (positions repeated per block)
    official = {}
    for key in _official_keys(SMALL["depths"]):
        parts = key.split(".")
        if parts[0] == "downsample_layers":
            name = (
                "stem." + ".".join(parts[2:])
                if parts[1] == "0"
                else f"stages.{parts[1]}.downsample." + ".".join(parts[2:])
            )
        elif parts[0] == "stages" and parts[-1] == "P":
            name = f"stages.{parts[1]}.P"
        elif parts[0] == "stages":
            layer = {"dwconv": "conv_dw", "pwconv1": "mlp.fc1", "pwconv2": "mlp.fc2"}.get(parts[3], parts[3])
            name = f"stages.{parts[1]}.blocks.{parts[2]}." + ".".join([layer, *parts[4:]])
        else:
            name = {"norm": "head.norm", "head": "head.fc"}[parts[0]] + "." + parts[1]
        official[key] = ours[name].clone()
    converted = convert_official_state_dict(official)
    assert set(converted) == set(ours)
    fresh = ConvNeXtDcls(**SMALL)
    fresh.load_state_dict(converted)
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(fresh.eval()(x), model.eval()(x))
    official["stages.0.1.dwconv.P"] = official["stages.0.1.dwconv.P"] + 1
    with pytest.raises(ValueError, match="must be shared"):
        convert_official_state_dict(official)


def test_checkpoint_round_trip_keeps_positions_shared(tmp_path):
    torch.manual_seed(2)
    model = subband.create_model("convnext_dcls_tiny", **SMALL).eval()
    subband.save_model(model, tmp_path / "m.safetensors")
    back = subband.load_model(tmp_path / "m.safetensors").eval()
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(back(x), model(x))
    assert all(b.conv_dw.positions is s.P for s in back.stages for b in s.blocks)


def test_clamp_parameters_and_convnext_unchanged():
    model = ConvNeXtDcls(**SMALL)
    with torch.no_grad():
        model.stages[1].P.fill_(9.0)
    model.clamp_parameters()
    assert model.stages[1].P.max().item() == 3.0
    plain = ConvNeXt((1, 1), (8, 16))
    assert all(isinstance(b.conv_dw, torch.nn.Conv2d) for s in plain.stages for b in s.blocks)
    # DCLS at 34 weights in 17x17 keeps ConvNeXt-T's parameter count (within the positions' share)
    with torch.device("meta"):
        dcls, base = subband.create_model("convnext_dcls_tiny"), subband.create_model("convnext_tiny")
    n_dcls, n_base = (sum(p.numel() for p in m.parameters()) for m in (dcls, base))
    assert n_dcls - n_base == -1440  # 15 fewer weights per channel and block, 68 shared positions per stage channel
