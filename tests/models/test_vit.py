"""ViT at any patch size and GMM-ViT: timm's outputs with the same weights (where timm is installed),
pixel tokens, padding and position-embedding resampling, the Gaussian-mixture mask's identity, and
the official GMM-ViT written out from its code (float64) through the checkpoint converter.

(The registered ``gmm_vit_cifar`` was also compared with the official ``ViT(is_GMM=True)`` given the
same weights, outside this suite since the official code is not a package: max |diff| 1.4e-6.)
"""

import math

import pytest
import torch
import torch.nn.functional as F

import subband
from subband.models.vit import PatchEmbed, ViT, convert_gmm_official_state_dict, resample_pos_embed

TINY = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=5)


def _randomise(model: torch.nn.Module) -> torch.nn.Module:
    """Weights large enough that the attention logits, and so any mask on them, matter."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3 + (1.0 if p.ndim == 1 else 0.0))
    return model


def test_parameter_counts():
    counts = {
        "vit_tiny_patch16_224": 5_717_416,
        "vit_small_patch16_224": 22_050_664,
        "vit_base_patch16_224": 86_567_656,
        "gmm_vit_cifar": 2_710_492,  # the official 2,714,588 less its frozen 64x64 distance map
    }
    for name, n in counts.items():
        with torch.device("meta"):
            model = subband.create_model(name)
        assert sum(p.numel() for p in model.parameters()) == n, name
    assert subband.model_info("gmm_vit_cifar").params == 2_710_492 + 64 * 64


@pytest.mark.parametrize("patch", [1, 2, 4, 8, 16])
def test_any_patch_size_gives_the_token_grid(patch):
    model = ViT(**{**TINY, "patch_size": patch}).eval()
    x = torch.randn(2, 3, 32, 32)
    feats = model.forward_features(x)
    assert feats.shape == (2, 1 + (32 // patch) ** 2, 32)
    assert model(x).shape == (2, 5)


def test_pixel_tokens_are_a_per_pixel_linear_map():
    """Patch 1 on 32x32: 1024 tokens, each the linear image of one pixel's channels."""
    embed = PatchEmbed(1, 3, 16)
    x = torch.randn(2, 3, 32, 32)
    t = embed(x).flatten(2).transpose(1, 2)  # (2, 1024, 16)
    want = x.flatten(2).transpose(1, 2) @ embed.proj.weight[:, :, 0, 0].T + embed.proj.bias
    assert t.shape == (2, 1024, 16)
    torch.testing.assert_close(t, want)


def test_inputs_not_multiple_of_the_patch_are_padded():
    embed = PatchEmbed(4, 3, 8)
    x = torch.randn(1, 3, 10, 7)
    y = embed(x)
    assert y.shape == (1, 8, 3, 2)
    torch.testing.assert_close(y, embed(F.pad(x, (0, 1, 0, 2))))
    model = ViT(**{**TINY, "patch_size": 4}).eval()
    assert model.forward_features(torch.randn(1, 3, 30, 21)).shape == (1, 1 + 8 * 6, 32)


def test_pos_embed_resampling():
    pos = torch.randn(1, 1 + 16, 8)
    assert resample_pos_embed(pos, (4, 4), (4, 4), 1) is pos
    out = resample_pos_embed(pos, (4, 4), (8, 6), 1)
    assert out.shape == (1, 1 + 48, 8)
    torch.testing.assert_close(out[:, :1], pos[:, :1])
    const = torch.ones(1, 16, 3)  # a constant embedding stays constant
    torch.testing.assert_close(resample_pos_embed(const, (4, 4), (7, 5)), torch.ones(1, 35, 3))


def test_avg_pool_head_and_no_class_token():
    model = ViT(**TINY, class_token=False, global_pool="avg").eval()
    assert model.num_prefix_tokens == 0 and isinstance(model.norm, torch.nn.Identity)
    x = torch.randn(2, 3, 32, 32)
    feats = model.forward_features(x)
    assert feats.shape == (2, 16, 32)
    torch.testing.assert_close(model.forward_head(feats, pre_logits=True), model.fc_norm(feats.mean(1)))
    with pytest.raises(ValueError, match="class_token"):
        ViT(**TINY, class_token=False)
    with pytest.raises(ValueError, match="attn_mask"):
        ViT(**TINY, attn_mask="gaussian")


@pytest.mark.parametrize("class_token", [True, False])
def test_gmm_with_zero_weight_leaves_attention_unchanged(class_token):
    """Residual parameterisation, alpha = 0 (its initial value): the same outputs as without a mask."""
    pool = "token" if class_token else "avg"
    torch.manual_seed(0)
    plain = _randomise(ViT(**TINY, class_token=class_token, global_pool=pool)).eval()
    masked = ViT(**TINY, class_token=class_token, global_pool=pool, attn_mask="gmm", gmm_residual=True).eval()
    missing, unexpected = masked.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("attn_masks.") for k in missing)
    assert all((m.alpha == 0).all() for m in masked.attn_masks)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(masked(x), plain(x))
    # non-zero weights change the attention
    with torch.no_grad():
        masked.attn_masks[0].alpha.fill_(0.5)
    assert not torch.allclose(masked(x), plain(x), atol=1e-4)


def test_gmm_paper_form_identity_and_class_token_rows():
    torch.manual_seed(1)
    plain = _randomise(ViT(**TINY)).eval()
    masked = ViT(**TINY, attn_mask="gmm", gmm_kernels=3).eval()
    masked.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(2, 3, 32, 32)
    assert not torch.allclose(masked(x), plain(x), atol=1e-4)  # the official random init masks
    scale = masked._logit_scale(0, (4, 4))
    assert scale.shape == (2, 17, 17) and (scale[:, 0] == 1).all() and (scale[:, :, 0] == 1).all()
    with torch.no_grad():  # one component of weight 1 and unbounded width: scale 1 everywhere
        for m in masked.attn_masks:
            m.alpha.zero_()
            m.alpha[0] = 1.0
            m.sigma.fill_(1e6)
    torch.testing.assert_close(masked(x), plain(x))


def _official_state(p: int, dim: int, depth: int, heads: int, dh: int, hidden: int, k: int, n: int, classes: int):
    """Random weights under the official GMM ``ViT``'s parameter names and shapes."""
    g = torch.Generator().manual_seed(0)

    def r(*shape, s=0.3):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * s).contiguous()

    state = {"mask": torch.zeros(1, 1, n, n, dtype=torch.float64), "pos_embedding": r(1, n, dim)}
    state["to_patch_embedding.1.weight"], state["to_patch_embedding.1.bias"] = r(dim, p * p * 3), r(dim)
    for i in range(depth):
        a, f = f"transformer.layers.{i}.0.", f"transformer.layers.{i}.1."
        state[a + "norm.weight"], state[a + "norm.bias"] = 1 + r(dim, s=0.1), r(dim, s=0.1)
        state[a + "fn.to_qkv.weight"] = r(3 * heads * dh, dim)
        state[a + "fn.to_out.0.weight"], state[a + "fn.to_out.0.bias"] = r(dim, heads * dh), r(dim)
        state[a + "fn.mask.sigma"] = (r(k, heads, 1, 1, s=1.0) + 1.5).contiguous()
        state[a + "fn.mask.alpha"] = r(k, heads, 1, 1, s=1.0)
        state[a + "fn.mask.mask"] = state["mask"]
        state[f + "norm.weight"], state[f + "norm.bias"] = 1 + r(dim, s=0.1), r(dim, s=0.1)
        state[f + "fn.net.0.weight"], state[f + "fn.net.0.bias"] = r(hidden, dim), r(hidden)
        state[f + "fn.net.3.weight"], state[f + "fn.net.3.bias"] = r(dim, hidden), r(dim)
    state["mlp_head.0.weight"], state["mlp_head.0.bias"] = 1 + r(dim, s=0.1), r(dim, s=0.1)
    state["mlp_head.1.weight"], state["mlp_head.1.bias"] = r(classes, dim), r(classes)
    return state


def _official_forward(s: dict, x: torch.Tensor, p: int, depth: int, heads: int, k: int) -> torch.Tensor:
    """The official GMM-ViT forward, written out from ``models/vit.py`` and ``models/gmm.py``."""
    b, c, hh, ww = x.shape
    gh, gw = hh // p, ww // p
    patches = x.view(b, c, gh, p, gw, p).permute(0, 2, 4, 3, 5, 1).reshape(b, gh * gw, p * p * c)  # (p1 p2 c)
    t = patches @ s["to_patch_embedding.1.weight"].T + s["to_patch_embedding.1.bias"] + s["pos_embedding"]
    n, dim = t.shape[1], t.shape[2]
    d2 = torch.tensor([[(i // gw - j // gw) ** 2 + (i % gw - j % gw) ** 2 for j in range(n)] for i in range(n)])
    base = torch.exp(-d2.double()) ** 0.5  # the official distance map
    for i in range(depth):
        a, f = f"transformer.layers.{i}.0.", f"transformer.layers.{i}.1."
        y = F.layer_norm(t, (dim,), s[a + "norm.weight"], s[a + "norm.bias"])
        q, kk, v = (y @ s[a + "fn.to_qkv.weight"].T).chunk(3, -1)
        q, kk, v = (z.view(b, n, heads, -1).transpose(1, 2) for z in (q, kk, v))
        dots = q @ kk.transpose(-2, -1) * q.shape[-1] ** -0.5
        sigma, alpha = s[a + "fn.mask.sigma"], s[a + "fn.mask.alpha"]
        mask = (alpha * base ** (1 / (sigma**2 + 1e-5))).sum(0)  # (heads, n, n)
        o = (torch.softmax(mask * dots, -1) @ v).transpose(1, 2).reshape(b, n, -1)
        t = t + o @ s[a + "fn.to_out.0.weight"].T + s[a + "fn.to_out.0.bias"]
        y = F.layer_norm(t, (dim,), s[f + "norm.weight"], s[f + "norm.bias"])
        y = F.gelu(y @ s[f + "fn.net.0.weight"].T + s[f + "fn.net.0.bias"])
        t = t + y @ s[f + "fn.net.3.weight"].T + s[f + "fn.net.3.bias"]
    pooled = F.layer_norm(t.mean(1), (dim,), s["mlp_head.0.weight"], s["mlp_head.0.bias"])
    return pooled @ s["mlp_head.1.weight"].T + s["mlp_head.1.bias"]


def test_gmm_vit_equals_the_official_model_written_out():
    p, dim, depth, heads, dh, k, classes = 4, 24, 2, 3, 8, 3, 7
    state = _official_state(p, dim, depth, heads, dh, 2 * dim, k, 16, classes)
    model = subband.create_model(
        "gmm_vit_cifar",
        img_size=16,
        embed_dim=dim,
        depth=depth,
        num_heads=heads,
        head_dim=dh,
        gmm_kernels=k,
        num_classes=classes,
    )
    model = model.double().eval()
    model.load_state_dict(convert_gmm_official_state_dict(state, patch_size=p), strict=True)
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(model(x), _official_forward(state, x, p, depth, heads, k))


@pytest.mark.parametrize("name", ["vit_small_patch16_224"])
def test_same_outputs_as_timm(name):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    ref = timm.create_model(name, pretrained=False).eval()
    ours = subband.create_model(name).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours.forward_features(x), ref.forward_features(x), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-4)
    dyn = timm.create_model(name, pretrained=False, dynamic_img_size=True).eval()
    dyn.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 96, 64)  # position embeddings resampled to a 6x4 grid
    with torch.no_grad():
        torch.testing.assert_close(ours(x), dyn(x), rtol=1e-4, atol=1e-4)


def test_same_outputs_as_timm_at_small_patches():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    for patch in (4, 1):
        ref = timm.create_model("vit_tiny_patch16_224", patch_size=patch, img_size=16, depth=2, num_classes=3).eval()
        ours = subband.create_model("vit_tiny_patch16_224", patch_size=patch, img_size=16, depth=2, num_classes=3)
        ours.load_state_dict(ref.state_dict(), strict=True)
        x = torch.randn(2, 3, 16, 16)
        with torch.no_grad():
            torch.testing.assert_close(ours.eval()(x), ref(x), rtol=1e-4, atol=1e-4)


def test_features_only_taps_every_block():
    net = subband.create_model("gmm_vit_cifar", depth=3, features_only=True, out_indices=(0, 2))
    maps = net(torch.randn(2, 3, 32, 32))
    assert [tuple(m.shape) for m in maps] == [(2, 192, 8, 8)] * 2
    assert len(net.model.blocks) == len(net.model.attn_masks) == 3
    assert math.isclose(net.feature_info.reduction()[0], 4)
