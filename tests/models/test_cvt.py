"""CvT: the convolutional projection attention and the token embedding against explicit references
written from the paper's equations (float64), gradcheck, exact parameter counts against a closed form,
the class-token layout, the official checkpoint key mapping, and parity with Hugging Face's
``CvtForImageClassification`` given the same weights (skipped without ``transformers``).

(Outputs were also compared with the official ``ConvolutionalVisionTransformer`` given the same
weights, outside this suite since the official code is not a package: max |diff| 6.0e-7 (CvT-13), 5.4e-7
(CvT-21) and 2.0e-6 (CvT-W24).)
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import subband
from subband.models.cvt import (
    ConvEmbed,
    ConvProjectionAttention,
    CvT,
    QuickGELU,
    convert_hf_state_dict,
    convert_official_state_dict,
)

TINY = dict(dims=(8, 12, 16), depths=(1, 1, 2), num_heads=(1, 2, 4), num_classes=5)


def _randomise(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial norm parameters and BatchNorm statistics, so eval mode and every term matter."""
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


def _reference_attention(m: ConvProjectionAttention, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Eval-mode CvT attention head by head, the token map laid out by hand (token n + i*w + j at row
    i, column j), the spatial projections as explicit depthwise convs + BatchNorm or average pools."""
    b, _, c = x.shape
    n = m.num_prefix_tokens
    fmap = torch.empty(b, c, h, w, dtype=x.dtype)
    for i in range(h):
        for j in range(w):
            fmap[:, :, i, j] = x[:, n + i * w + j]

    def spatial(proj, stride):
        if m.method == "linear" or (m.method == "avg" and proj is m.conv_proj_q):
            t = fmap
        elif m.method == "avg":
            t = F.avg_pool2d(fmap, 3, stride, 1, ceil_mode=True)
        else:
            t = _bn(F.conv2d(fmap, proj.c.weight, None, stride, 1, groups=c), proj.bn)
        tokens = [t[:, :, i, j] for i in range(t.shape[2]) for j in range(t.shape[3])]
        return torch.cat([x[:, :n], torch.stack(tokens, 1)], 1)

    q = spatial(m.conv_proj_q, 1) @ m.proj_q.weight.T + m.proj_q.bias
    k = spatial(m.conv_proj_k, 2) @ m.proj_k.weight.T + m.proj_k.bias
    v = spatial(m.conv_proj_v, 2) @ m.proj_v.weight.T + m.proj_v.bias
    d = c // m.num_heads
    heads = []
    for g in range(m.num_heads):
        s = slice(g * d, (g + 1) * d)
        a = torch.softmax(q[..., s] @ k[..., s].transpose(1, 2) / math.sqrt(c), -1)  # the full width scales
        heads.append(a @ v[..., s])
    return torch.cat(heads, -1) @ m.proj.weight.T + m.proj.bias


@pytest.mark.parametrize("method", ["dw_bn", "avg", "linear"])
@pytest.mark.parametrize("prefix", [0, 1])
def test_conv_projection_attention_matches_reference(method, prefix):
    torch.manual_seed(0)
    m = ConvProjectionAttention(12, num_heads=3, method=method, num_prefix_tokens=prefix).double().eval()
    _randomise(m)
    h, w = 5, 6  # odd height: stride-2 keys on a 3x3 grid
    x = torch.randn(2, prefix + h * w, 12, dtype=torch.float64)
    y = m(x, (h, w))
    assert y.shape == x.shape
    torch.testing.assert_close(y, _reference_attention(m, x, h, w))


def test_conv_projection_strides_keys_and_values_not_queries():
    m = ConvProjectionAttention(8, num_heads=2, num_prefix_tokens=1).eval()
    fmap = torch.randn(1, 8, 7, 9)
    assert m.conv_proj_q(fmap).shape[-2:] == (7, 9)
    assert m.conv_proj_k(fmap).shape[-2:] == m.conv_proj_v(fmap).shape[-2:] == (4, 5)
    assert m(torch.randn(1, 1 + 7 * 9, 8), (7, 9)).shape == (1, 1 + 7 * 9, 8)


@pytest.mark.parametrize("train", [False, True])
def test_conv_projection_attention_gradcheck_at_batch_one(train):
    """Batch size 1 is where PyTorch's CPU BatchNorm backward goes wrong on mixed memory formats."""
    torch.manual_seed(1)
    m = ConvProjectionAttention(4, num_heads=2, num_prefix_tokens=1).double().train(train)
    _randomise(m)
    names = ["conv_proj_k.c.weight", "conv_proj_k.bn.weight", "conv_proj_q.bn.bias"]
    params = {n: p.detach().clone().requires_grad_() for n, p in m.named_parameters() if n in names}
    x = torch.randn(1, 1 + 3 * 4, 4, dtype=torch.float64, requires_grad=True)

    def f(t, *ps):
        return torch.func.functional_call(m, dict(zip(params, ps)), (t, (3, 4)))

    assert torch.autograd.gradcheck(f, (x, *params.values()))


def test_tiny_cvt_gradcheck_at_batch_one():
    torch.manual_seed(6)
    model = CvT(dims=(4, 4, 8), depths=(1, 1, 1), num_heads=(1, 2, 2), num_classes=3, in_chans=1).double().eval()
    _randomise(model)
    x = torch.randn(1, 1, 24, 20, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model, (x,), fast_mode=True)


def test_conv_embed_matches_reference():
    torch.manual_seed(2)
    m = ConvEmbed(3, 8, 7, 4, 2).double()
    _randomise(m)
    x = torch.randn(2, 3, 30, 21, dtype=torch.float64)
    t = F.conv2d(x, m.proj.weight, m.proj.bias, 4, 2)  # (2, 8, 7, 5)
    tokens = F.layer_norm(t.flatten(2).transpose(1, 2), (8,), m.norm.weight, m.norm.bias, 1e-5)
    torch.testing.assert_close(m(x).flatten(2).transpose(1, 2), tokens)
    assert m(x).shape == (2, 8, 7, 5)  # (30 + 4 - 7) // 4 + 1, (21 + 4 - 7) // 4 + 1


def test_quick_gelu_closed_form():
    x = torch.linspace(-6, 6, 101, dtype=torch.float64)
    torch.testing.assert_close(QuickGELU()(x), x / (1 + torch.exp(-1.702 * x)))
    assert (QuickGELU()(x) - F.gelu(x)).abs().max() < 0.03  # a close approximation, not the same function


def _closed_form_params(dims, depths, patches=(7, 3, 3), num_classes=1000, in_chans=3):
    total, prev = 0, in_chans
    for d, depth, k in zip(dims, depths, patches):
        total += k * k * prev * d + d + 2 * d  # embedding conv (bias) + LayerNorm
        block = 2 * 2 * d  # two LayerNorms
        block += 3 * (9 * d + 2 * d)  # depthwise 3x3 (no bias) + BatchNorm, for q, k, v
        block += 4 * (d * d + d)  # proj_q, proj_k, proj_v, proj
        block += 2 * 4 * d * d + 4 * d + d  # MLP
        total += depth * block
        prev = d
    return total + dims[-1] + 2 * dims[-1] + dims[-1] * num_classes + num_classes  # cls, norm, head


@pytest.mark.parametrize(
    "name, dims, depths, official",
    [
        ("cvt_13", (64, 192, 384), (1, 2, 10), 19_997_480),
        ("cvt_21", (64, 192, 384), (1, 4, 16), 31_622_696),
        ("cvt_w24", (192, 768, 1024), (2, 2, 20), 277_196_392),
    ],
)
def test_parameter_counts_exact(name, dims, depths, official):
    with torch.device("meta"):
        model = subband.create_model(name)
    counted = sum(p.numel() for p in model.parameters())
    assert counted == official == _closed_form_params(dims, depths) == subband.model_info(name).params


def test_class_token_only_in_last_stage_and_head_reads_it():
    torch.manual_seed(3)
    model = CvT(**TINY).eval()
    assert [s.cls_token is not None for s in model.stages] == [False, False, True]
    x = torch.randn(2, 3, 64, 96)
    feats = model.forward_features(x)
    assert feats.shape == (2, 1 + 4 * 6, 16)  # class token + the 16x-reduced grid
    tokens, _ = model.stages[2](model.forward_intermediates(x, (1,))[0])
    torch.testing.assert_close(feats, model.norm(tokens))
    torch.testing.assert_close(model.forward_head(feats, pre_logits=True), feats[:, 0])
    maps = model.forward_intermediates(x, (0, 1, 2))
    assert [tuple(f.shape) for f in maps] == [(2, 8, 16, 24), (2, 12, 8, 12), (2, 16, 4, 6)]
    torch.testing.assert_close(maps[2], feats[:, 1:].transpose(1, 2).reshape(2, 16, 4, 6))


def test_without_class_token_the_head_averages():
    torch.manual_seed(4)
    model = CvT(**TINY, cls_token=False).eval()
    assert model.num_prefix_tokens == 0 and all(s.cls_token is None for s in model.stages)
    x = torch.randn(2, 3, 32, 32)
    feats = model.forward_features(x)
    assert feats.shape == (2, 4, 16)
    torch.testing.assert_close(model(x), model.head(feats.mean(1)))


def test_official_initialisation_and_drop_path_schedule():
    model = CvT(**TINY, drop_path_rate=(0.0, 0.0, 0.1))
    assert [type(b.drop_path).__name__ for b in model.stages[2].blocks] == ["Identity", "DropPath"]
    assert model.stages[2].blocks[1].drop_path.p == pytest.approx(0.1)
    fc1 = model.stages[2].blocks[0].mlp.fc1  # 64 x 16 weights
    assert fc1.bias.abs().max() == 0 and fc1.weight.std().item() == pytest.approx(0.02, rel=0.15)
    assert model.stages[2].blocks[0].attn.conv_proj_q.bn.weight.eq(1).all()
    assert isinstance(model.stages[0].blocks[0].mlp.act, QuickGELU)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="method must be one of"):
        ConvProjectionAttention(8, 2, method="conv")
    with pytest.raises(ValueError, match="divisible by num_heads"):
        ConvProjectionAttention(10, 3)
    with pytest.raises(ValueError, match="one entry per stage"):
        CvT(dims=(8, 16), depths=(1, 1, 1))
    with pytest.raises(ValueError, match="drop_path_rate has 2 entries"):
        CvT(**TINY, drop_path_rate=(0.1, 0.2))


def test_official_key_mapping():
    ours = set(CvT(**TINY).state_dict())
    official = {k.replace("stages.", "stage").replace(".c.", ".conv.") for k in ours}
    assert "stage2.blocks.1.attn.conv_proj_k.conv.weight" in official and "stage2.cls_token" in official
    assert set(convert_official_state_dict({f"module.{k}": torch.zeros(1) for k in official})) == ours


def test_hugging_face_parity():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(5)
    # (Hugging Face indexes its per-block drop-path rates by the stage, so depth[i] > i)
    config = transformers.CvtConfig(embed_dim=[8, 12, 16], num_heads=[1, 2, 4], depth=[1, 2, 3], num_labels=5)
    hf = transformers.CvtForImageClassification(config).eval()
    _randomise(hf)
    ours = CvT(**{**TINY, "depths": (1, 2, 3)}, act_layer=nn.GELU).eval()
    ours.load_state_dict(convert_hf_state_dict(hf.state_dict()), strict=True)
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), hf(pixel_values=x).logits, rtol=1e-5, atol=1e-5)
    # the key mapping covers the full CvT-13 layout
    with torch.device("meta"):
        full = transformers.CvtForImageClassification(transformers.CvtConfig(num_labels=1000))
        mine = subband.create_model("cvt_13")
    converted = convert_hf_state_dict(full.state_dict())
    assert {k: tuple(v.shape) for k, v in converted.items()} == {
        k: tuple(v.shape) for k, v in mine.state_dict().items()
    }
