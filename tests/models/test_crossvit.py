"""CrossViT: the fusion against the paper's equations written out head by head (float64), the branch
inputs against closed-form resizes and crops, the official checkpoint key mapping, exact parameter
counts of the official configurations, a closed-form multiply-accumulate count of every variant,
``features_only`` pruning against the unpruned model, and outputs against timm given the same weights
(where timm is installed).

(Outputs were also compared with the official IBM/CrossViT ``VisionTransformer`` given the same
weights, outside this suite since the official code is not a package: max |diff| <= 7.8e-7 for all
nine variants at inputs 240 and 224.)
"""

import math
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F

import subband
from subband.models._features import FeaturePyramid
from subband.models._profile import count_gmacs
from subband.models.crossvit import CrossAttentionBlock, CrossViT, MultiScaleBlock, convert_official_state_dict

# 48x48 input: S-branch 48 / patch 12 -> 4x4 tokens, L-branch 32 / patch 16 -> 2x2 tokens
TINY = dict(
    img_size=48,
    img_scale=(1.0, 32 / 48),
    patch_size=(12, 16),
    embed_dim=(16, 24),
    depth=((1, 2, 0), (1, 1, 0)),
    num_heads=(2, 3),
    mlp_ratio=(2.0, 3.0, 1.0),
    num_classes=7,
)

VARIANTS = {  # name: (widths, heads, L-branch blocks, MLP ratio, dagger, params counted, paper Table 2 GFLOPs)
    "crossvit_tiny_240": ((96, 192), 3, 4, 4, False, 7_014_800, 1.6),
    "crossvit_small_240": ((192, 384), 6, 4, 4, False, 26_856_272, 5.6),
    "crossvit_base_240": ((384, 768), 12, 4, 4, False, 105_025_232, 21.2),
    "crossvit_9_240": ((128, 256), 4, 3, 3, False, 8_553_296, 1.8),
    "crossvit_15_240": ((192, 384), 6, 5, 3, False, 27_528_464, 5.8),
    "crossvit_18_240": ((224, 448), 7, 6, 3, False, 43_271_408, 9.0),
    "crossvit_9_dagger_240": ((128, 256), 4, 3, 3, True, 8_776_592, 2.0),
    "crossvit_15_dagger_240": ((192, 384), 6, 5, 3, True, 28_209_008, 6.1),
    "crossvit_18_dagger_240": ((224, 448), 7, 6, 3, True, 44_266_976, 9.5),
}


def _tiny(**overrides) -> CrossViT:
    torch.manual_seed(0)
    model = CrossViT(**{**TINY, **overrides})
    _randomise(model)
    return model.eval()


def _randomise(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial norms and biases, so every term matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 1:
                p.add_(0.2 * torch.randn(p.shape, generator=g, dtype=p.dtype))


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _reference_fusion(blk: CrossAttentionBlock, x: torch.Tensor) -> torch.Tensor:
    """The paper's cross-attention: the first token is the only query, keys and values are all
    tokens; ``x_0 + W_o softmax(q k^T / sqrt(d)) v`` head by head, on LayerNorm(x)."""
    a = blk.attn
    y = F.layer_norm(x, x.shape[-1:], blk.norm1.weight, blk.norm1.bias, blk.norm1.eps)
    q = y[:, :1] @ a.wq.weight.T + a.wq.bias  # (B, 1, C)
    k = y @ a.wk.weight.T + a.wk.bias
    v = y @ a.wv.weight.T + a.wv.bias
    d = a.head_dim
    heads = []
    for h in range(a.num_heads):
        s = slice(h * d, (h + 1) * d)
        attn = torch.softmax(q[..., s] @ k[..., s].transpose(1, 2) / math.sqrt(d), dim=-1)  # (B, 1, N)
        heads.append(attn @ v[..., s])
    return x[:, :1] + torch.cat(heads, -1) @ a.proj.weight.T + a.proj.bias


def test_cross_attention_block_matches_the_paper():
    torch.manual_seed(0)
    blk = CrossAttentionBlock(24, num_heads=3).double()
    _randomise(blk)
    x = torch.randn(2, 1 + 9, 24, dtype=torch.float64)
    out = blk(x)
    assert out.shape == (2, 1, 24)
    torch.testing.assert_close(out, _reference_fusion(blk, x))


def test_multiscale_block_fuses_only_the_class_tokens():
    """Patch tokens leave as the branch's blocks made them; class token ``i`` becomes
    ``g_i(f_i(cls_i) + CA(LN([f_i(cls_i) || patches_j])))`` with ``j`` the other branch."""
    torch.manual_seed(1)
    blk = MultiScaleBlock((16, 24), (1, 2, 0), (2, 3), (2.0, 2.0, 1.0)).double().eval()
    _randomise(blk)
    xs = [torch.randn(2, 1 + 16, 16, dtype=torch.float64), torch.randn(2, 1 + 4, 24, dtype=torch.float64)]
    out = blk(xs)
    inner = [blk.blocks[i](xs[i]) for i in range(2)]
    for i, j in ((0, 1), (1, 0)):
        torch.testing.assert_close(out[i][:, 1:], inner[i][:, 1:])
        f, g = blk.projs[i], blk.revert_projs[i]
        cls = f(inner[i][:, :1])  # (B, 1, C_j)
        fused = _reference_fusion(blk.fusion[i], torch.cat([cls, inner[j][:, 1:]], 1))
        torch.testing.assert_close(out[i][:, :1], g(fused))
        assert not torch.allclose(out[i][:, :1], inner[i][:, :1])


def test_branches_see_the_input_resized_or_cropped():
    seen: dict[int, torch.Tensor] = {}
    for crop in (False, True):
        model = _tiny(crop_scale=crop)
        for i, pe in enumerate(model.patch_embed):
            pe.register_forward_pre_hook(lambda m, a, i=i: seen.__setitem__(i, a[0]))
        x48, x32 = torch.randn(1, 3, 48, 48), torch.randn(1, 3, 32, 32)
        model(x48)
        assert seen[0] is x48
        small = x48[..., 8:40, 8:40] if crop else F.interpolate(x48, size=(32, 32), mode="bicubic", align_corners=False)
        torch.testing.assert_close(seen[1], small)
        model(x32)  # smaller than the S-branch's 48: resized in both modes
        torch.testing.assert_close(seen[0], F.interpolate(x32, size=(48, 48), mode="bicubic", align_corners=False))
        assert seen[1] is x32


def test_heads_pooling_and_token_outputs():
    model = _tiny()
    x = torch.randn(2, 3, 40, 56)  # any size: each branch resizes it
    tokens = model.forward_tokens(x)
    assert [t.shape for t in tokens] == [(2, 1 + 16, 16), (2, 1 + 4, 24)]
    feats = model.forward_features(x)
    assert feats.shape == (2, 40, 1, 1)
    torch.testing.assert_close(feats.flatten(1), torch.cat([tokens[0][:, 0], tokens[1][:, 0]], 1))
    logits = (model.head[0](tokens[0][:, 0]) + model.head[1](tokens[1][:, 0])) / 2  # mean of the branch heads
    torch.testing.assert_close(model(x), logits)
    torch.testing.assert_close(model.forward_head(tokens), logits)
    model.reset_classifier(0, global_pool="avg")
    means = torch.cat([tokens[0][:, 1:].mean(1), tokens[1][:, 1:].mean(1)], 1)
    torch.testing.assert_close(model(x), means)
    with pytest.raises(ValueError, match="global_pool"):
        model.reset_classifier(3, global_pool="max")


@pytest.mark.parametrize("indices", [(0,), (1,), (2,), (0, 1), (1, 2), (0, 1, 2)])
@pytest.mark.parametrize("pool", ["token", "avg"])
def test_features_only_pruning_keeps_the_maps_and_uses_every_parameter(indices, pool):
    full = _tiny(global_pool=pool)
    x = torch.randn(2, 3, 48, 48)
    want = full.forward_intermediates(x, indices)
    tokens = full.forward_tokens(x)
    for i, fmap in zip(indices, want):
        if i < 2:  # the branch's normalised patch tokens as a map
            torch.testing.assert_close(fmap, tokens[i][:, 1:].transpose(1, 2).reshape(fmap.shape))
        else:
            torch.testing.assert_close(fmap, full.forward_features(x))
    net = FeaturePyramid(_tiny(global_pool=pool), out_indices=indices)
    maps = net(x)
    for fmap, ref, info in zip(maps, want, net.feature_info):
        torch.testing.assert_close(fmap, ref)
        assert fmap.shape[1] == info["num_chs"]
    assert _count(net) < _count(full)
    sum(m.square().mean() for m in maps).backward()
    assert all(p.grad is not None for p in net.parameters())
    with pytest.raises(ValueError, match="pruned"):
        net.model.forward_tokens(x)


def test_feature_info_of_the_240_models():
    with torch.device("meta"):
        model = subband.create_model("crossvit_small_240")
    assert model.feature_info.channels() == [192, 384, 576]
    assert model.feature_info.reduction() == [12, Fraction(240, 14), 240]  # 20x20, 14x14 and 1x1 maps at 240
    net = subband.create_model("crossvit_tiny_240", features_only=True)
    assert [m.shape for m in net(torch.randn(1, 3, 224, 224))] == [(1, 96, 20, 20), (1, 192, 14, 14), (1, 288, 1, 1)]


@pytest.mark.parametrize("name", VARIANTS)
def test_variants_match_the_official_configuration(name):
    widths, heads, blocks, ratio, dagger, params, _ = VARIANTS[name]
    with torch.device("meta"):
        model = subband.create_model(name)
    assert _count(model) == params == subband.model_info(name).params
    assert model.embed_dim == widths and model.img_size_scaled == [(240, 240), (224, 224)]
    assert len(model.blocks) == 3 and [len(b) for b in model.blocks[0].blocks] == [1, blocks]
    attn = model.blocks[0].blocks[1][0].attn
    assert attn.num_heads == heads and model.blocks[0].fusion[0].attn.num_heads == heads
    assert model.blocks[0].blocks[0][0].mlp.fc1.out_features == ratio * widths[0]
    assert isinstance(model.patch_embed[0].proj, torch.nn.Sequential) == dagger


def _closed_form_gmacs(widths, blocks, ratio, dagger, classes=1000):
    """Multiply-accumulates of the linear layers, convolutions and attention products at 240."""
    total = 0
    tokens = (400, 196)  # 20x20 at 240 / 12, 14x14 at 224 / 16
    for c, n, side, p in zip(widths, tokens, (240, 224), (12, 16)):
        if dagger:
            s1, s2 = side // 4, int(n**0.5) * (1 if p == 12 else 2)  # the maps after the first two convs
            total += s1 * s1 * (c // 4) * 3 * 49 + s2 * s2 * (c // 2) * (c // 4) * 9 + n * c * (c // 2) * 9
        else:
            total += n * c * 3 * p * p
        total += classes * c
    for _ in range(3):  # encoders
        for c, n, depth in zip(widths, tokens, (1, blocks)):
            t = n + 1
            total += depth * (t * (4 + 2 * ratio) * c * c + 2 * t * t * c)
        for ci, cj, nj in ((widths[0], widths[1], tokens[1]), (widths[1], widths[0], tokens[0])):
            # f, wq, wk and wv over the 1 + N_j tokens, the two attention products of one query, proj, g
            total += ci * cj + cj * cj + 2 * (1 + nj) * cj * cj + 2 * (1 + nj) * cj + cj * cj + cj * ci
    return total / 1e9


@pytest.mark.parametrize("name", VARIANTS)
def test_recorded_gmacs_are_the_closed_form_and_round_to_the_paper(name):
    widths, _, blocks, ratio, dagger, _, table2 = VARIANTS[name]
    recorded = subband.model_info(name).gflops
    assert recorded == pytest.approx(_closed_form_gmacs(widths, blocks, ratio, dagger), abs=5e-4)
    assert round(recorded, 1) == table2


@pytest.mark.parametrize("name", ["crossvit_tiny_240", "crossvit_9_dagger_240"])
def test_counted_gmacs_equal_the_closed_form(name):
    widths, _, blocks, ratio, dagger, _, _ = VARIANTS[name]
    with torch.device("meta"):
        model = subband.create_model(name)
        x = torch.randn(1, 3, 240, 240)
    assert count_gmacs(model, x) == pytest.approx(_closed_form_gmacs(widths, blocks, ratio, dagger), rel=1e-9)


def test_official_checkpoint_names_load():
    model = _tiny()
    official = {
        k.replace("pos_embed_", "pos_embed.").replace("cls_token_", "cls_token."): v
        for k, v in model.state_dict().items()
    }
    assert "pos_embed.1" in official and "cls_token.0" in official
    for wrapped in (official, {"model": {f"module.{k}": v for k, v in official.items()}}):
        fresh = CrossViT(**TINY)
        fresh.load_state_dict(convert_official_state_dict(wrapped))  # strict
        x = torch.randn(1, 3, 48, 48)
        torch.testing.assert_close(fresh.eval()(x), model(x))


def test_invalid_configurations_raise():
    with pytest.raises(ValueError, match="embed_dim needs one entry per branch"):
        CrossViT(**{**TINY, "embed_dim": (16,)})
    with pytest.raises(ValueError, match="global_pool"):
        CrossViT(**{**TINY, "global_pool": "max"})
    with pytest.raises(ValueError, match="multi_conv patch embedding exists for patch sizes 12 and 16"):
        CrossViT(**{**TINY, "img_size": 64, "patch_size": (8, 16), "img_scale": (1.0, 1.0), "multi_conv": True})
    with pytest.raises(ValueError, match="not a multiple of its patch size"):
        CrossViT(**{**TINY, "img_size": 50})
    with pytest.raises(ValueError, match="depth must hold 2 positive block counts"):
        CrossViT(**{**TINY, "depth": ((1, 0, 0),)})


# timm given the same weights


def _timm_pair(name: str | None = None, **kwargs):
    timm = pytest.importorskip("timm")
    from timm.models.crossvit import CrossVit

    torch.manual_seed(0)
    ref = (timm.create_model(name, **kwargs) if name else CrossVit(**{**TINY, **kwargs})).eval()
    _randomise(ref)
    ours = subband.create_model(name, **kwargs) if name else CrossViT(**{**TINY, **kwargs})
    ours.load_state_dict(ref.state_dict())  # strict: the same names
    return ours.eval(), ref


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"global_pool": "avg"},
        {"crop_scale": True},
        {"multi_conv": True, "embed_dim": (16, 32), "num_heads": (2, 4)},
    ],
)
def test_same_outputs_as_timm_small_configuration(kwargs):
    ours, ref = _timm_pair(**kwargs)
    for side in (48, 32, 40):
        x = torch.randn(2, 3, side, side)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=0)
            for a, b in zip(ours.forward_tokens(x), ref.forward_features(x)):
                torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
            torch.testing.assert_close(
                ours.forward_head(ours.forward_features(x), pre_logits=True),
                ref.forward_head(ref.forward_features(x), pre_logits=True),
                atol=1e-5,
                rtol=0,
            )


@pytest.mark.parametrize("name", ["crossvit_tiny_240", "crossvit_9_dagger_240"])
def test_same_outputs_as_timm_registered_models(name):
    ours, ref = _timm_pair(name)
    assert _count(ours) == _count(ref) == VARIANTS[name][5]
    for side in (240, 224):  # 240: L-branch resized to 224; 224: S-branch resized to 240
        x = torch.randn(1, 3, side, side)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=0)
