"""UniFormer: the local block against an explicit reference, the global block against
``nn.MultiheadAttention`` with the same weights (float64), gradcheck, exact parameter counts of the
official models, the stage layout and ``features_only`` maps, and the official checkpoint key mapping.

(Outputs were also compared with the official ``UniFormer`` given the same weights, outside this suite
since the official code is not a package: max |diff| <= 2.6e-6 for S, S+, B and B with layer scale.)
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import subband
from subband.models.uniformer import CBlock, ConvStem, SABlock, UniFormer, convert_official_state_dict

TINY = dict(depths=(1, 1, 2, 1), dims=(8, 16, 24, 32), head_dim=8, num_classes=5)


def _randomise(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial norm parameters, layer scales and BatchNorm statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim <= 1:
                p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.3, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)


def _bn(t: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    shape = (1, -1, 1, 1)
    scale = bn.weight.view(shape) / torch.sqrt(bn.running_var.view(shape) + bn.eps)
    return (t - bn.running_mean.view(shape)) * scale + bn.bias.view(shape)


def _conv(t: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    k = conv.weight.shape[-1]
    return F.conv2d(t, conv.weight, conv.bias, padding=k // 2, groups=conv.groups)


def test_cblock_matches_reference():
    torch.manual_seed(0)
    m = CBlock(6).double().eval()
    _randomise(m)
    x = torch.randn(2, 6, 7, 5, dtype=torch.float64)
    assert m.attn.weight.shape == (6, 1, 5, 5) and m.pos_embed.weight.shape == (6, 1, 3, 3)
    t = x + _conv(x, m.pos_embed)
    t = t + _conv(_conv(_conv(_bn(t, m.norm1), m.conv1), m.attn), m.conv2)
    t = t + _conv(F.gelu(_conv(_bn(t, m.norm2), m.mlp.fc1)), m.mlp.fc2)
    torch.testing.assert_close(m(x), t)


@pytest.mark.parametrize("init_values", [None, 0.5])
def test_sablock_matches_multihead_attention(init_values):
    torch.manual_seed(1)
    m = SABlock(12, num_heads=3, init_values=init_values).double().eval()
    _randomise(m)
    mha = nn.MultiheadAttention(12, 3, batch_first=True).double()
    with torch.no_grad():
        mha.in_proj_weight.copy_(m.attn.qkv.weight)
        mha.in_proj_bias.copy_(m.attn.qkv.bias)
        mha.out_proj.weight.copy_(m.attn.proj.weight)
        mha.out_proj.bias.copy_(m.attn.proj.bias)
    g1 = m.ls1.gamma if init_values else 1.0
    g2 = m.ls2.gamma if init_values else 1.0
    x = torch.randn(2, 12, 3, 5, dtype=torch.float64)
    y = x + _conv(x, m.pos_embed)
    t = torch.stack([y[:, :, i, j] for i in range(3) for j in range(5)], 1)  # row-major tokens
    a = F.layer_norm(t, (12,), m.norm1.weight, m.norm1.bias, 1e-6)
    t = t + g1 * mha(a, a, a, need_weights=False)[0]
    t = t + g2 * m.mlp.fc2(F.gelu(m.mlp.fc1(F.layer_norm(t, (12,), m.norm2.weight, m.norm2.bias, 1e-6))))
    expected = t.transpose(1, 2).reshape(2, 12, 3, 5)
    torch.testing.assert_close(m(x), expected)


def test_conv_stem_layouts():
    stem, down = ConvStem(3, 16), ConvStem(16, 32, stem=False)
    assert [type(x).__name__ for x in stem.proj] == ["Conv2d", "BatchNorm2d", "GELU", "Conv2d", "BatchNorm2d"]
    assert stem.proj[0].out_channels == 8 and stem.proj[0].bias is not None
    assert down(stem(torch.randn(1, 3, 33, 31))).shape == (1, 32, 5, 4)  # ceil(33 / 8), ceil(31 / 8)


@pytest.mark.parametrize(
    "name, official",
    [
        ("uniformer_small", 21_545_256),
        ("uniformer_small_plus", 24_032_552),
        ("uniformer_base", 49_776_552),
        ("uniformer_base_ls", 49_796_520),
    ],
)
def test_parameter_counts_exact(name, official):
    with torch.device("meta"):
        model = subband.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == official == subband.model_info(name).params


def test_stage_layout_and_heads():
    with torch.device("meta"):
        model = subband.create_model("uniformer_small")
    kinds = [[type(b).__name__ for b in s.blocks] for s in model.stages]
    assert kinds == [["CBlock"] * 3, ["CBlock"] * 4, ["SABlock"] * 8, ["SABlock"] * 3]
    assert [s.blocks[0].attn.num_heads for s in model.stages[2:]] == [5, 8]  # 320 / 64, 512 / 64
    assert isinstance(model.stages[3].norm, nn.BatchNorm2d) and isinstance(model.stages[2].norm, nn.Identity)
    with torch.device("meta"):
        plus = subband.create_model("uniformer_small_plus")
    assert [s.blocks[0].attn.num_heads for s in plus.stages[2:]] == [10, 16]  # head width 32


def test_features_and_head_on_a_non_square_input():
    torch.manual_seed(2)
    model = UniFormer(**TINY).eval()
    x = torch.randn(2, 3, 64, 96)
    maps = model.forward_intermediates(x, (0, 1, 2, 3))
    assert [tuple(f.shape) for f in maps] == [(2, 8, 16, 24), (2, 16, 8, 12), (2, 24, 4, 6), (2, 32, 2, 3)]
    feats = model.forward_features(x)
    torch.testing.assert_close(maps[-1], feats)
    torch.testing.assert_close(model(x), model.head.fc(feats.mean((2, 3))))


def test_layer_scale_only_on_attention_blocks_and_drop_path_schedule():
    model = UniFormer(**TINY, init_values=1e-6, drop_path_rate=0.5)
    assert all(b.ls1.gamma.eq(1e-6).all() and b.ls2.gamma.eq(1e-6).all() for s in model.stages[2:] for b in s.blocks)
    assert not any(hasattr(b, "ls1") for s in model.stages[:2] for b in s.blocks)
    rates = [getattr(b.drop_path, "p", 0.0) for s in model.stages for b in s.blocks]
    assert rates == pytest.approx([0.0, 0.125, 0.25, 0.375, 0.5])  # linear over all five blocks
    qkv = model.stages[2].blocks[0].attn.qkv  # 72 x 24 weights, truncated normal 0.02
    assert qkv.bias.abs().max() == 0 and qkv.weight.std().item() == pytest.approx(0.02, rel=0.15)


def test_tiny_uniformer_gradcheck_at_batch_one():
    torch.manual_seed(3)
    cfg = dict(depths=(1, 1, 1, 1), dims=(4, 4, 8, 8), head_dim=4, num_classes=3, in_chans=1)
    model = UniFormer(**cfg, conv_stem=True).double().eval()
    _randomise(model)
    x = torch.randn(1, 1, 32, 32, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model, (x,), fast_mode=True)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="not divisible by head_dim=64"):
        UniFormer(dims=(64, 128, 320, 500))
    with pytest.raises(ValueError, match="same length"):
        UniFormer(depths=(1, 1, 1), dims=(8, 16, 24, 32))


def _official_name(key: str) -> str:
    """subband's key -> the official one (the inverse of the mapping, written out per case)."""
    parts = key.split(".")
    if parts[0] == "stem":
        return "patch_embed1." + ".".join(parts[1:])
    if parts[0] == "head":
        return "head." + parts[2]
    i = int(parts[1])
    if parts[2] == "downsample":
        return f"patch_embed{i + 1}." + ".".join(parts[3:])
    if parts[2] == "norm":
        return "norm." + parts[3]
    rest = ".".join(parts[4:])
    rest = {"ls1.gamma": "gamma_1", "ls2.gamma": "gamma_2"}.get(rest, rest)
    return f"blocks{i + 1}.{parts[3]}.{rest}"


@pytest.mark.parametrize("name", ["uniformer_small_plus", "uniformer_base_ls"])
def test_official_key_mapping(name):
    with torch.device("meta"):
        ours = subband.create_model(name).state_dict()
    official = {_official_name(k): v for k, v in ours.items()}
    assert {
        "norm.running_var",
        "head.weight",
        "patch_embed4.proj.weight" if name.endswith("_ls") else "patch_embed1.proj.0.weight",
    } <= set(official)
    assert ("blocks4.1.gamma_1" in official) == name.endswith("_ls")
    converted = convert_official_state_dict({f"module.{k}": v for k, v in official.items()})
    assert set(converted) == set(ours)
    examples = {
        "patch_embed3.norm.bias": "stages.2.downsample.norm.bias",
        "blocks3.7.attn.qkv.weight": "stages.2.blocks.7.attn.qkv.weight",
        "blocks1.0.mlp.fc1.weight": "stages.0.blocks.0.mlp.fc1.weight",
        "blocks4.2.gamma_2": "stages.3.blocks.2.ls2.gamma",
        "norm.running_mean": "stages.3.norm.running_mean",
        "head.bias": "head.fc.bias",
    }
    assert convert_official_state_dict(dict.fromkeys(examples)) == dict.fromkeys(examples.values())
