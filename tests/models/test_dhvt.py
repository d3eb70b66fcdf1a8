"""DHVT: head-token attention and DAFF against loop-by-loop references written from the paper's
equations (float64), gradcheck, the SOPE layouts of the official code, the official checkpoint key
mapping, exact parameter counts and a closed-form multiply-accumulate count of every variant.

(Outputs were also compared with the official ``VisionTransformer(apply_dhvt=True)`` given the same
weights, outside this suite since the official code is not a package: max |diff| <= 5.4e-7 for all
four variants.)
"""

import math

import pytest
import torch
import torch.nn.functional as F

import subband
from subband.layers import ConvBN
from subband.models._profile import count_gmacs
from subband.models.dhvt import DAFF, DHVT, SOPE, HeadTokenAttention, convert_official_state_dict

TINY = dict(patch_size=4, embed_dim=32, depth=2, num_heads=4, num_classes=10)

VARIANTS = {  # name: (patch, width, heads, params of the official model built and counted)
    "dhvt_tiny_cifar_patch4": (4, 192, 4, 6_008_650),
    "dhvt_small_cifar_patch4": (4, 384, 8, 23_425_450),
    "dhvt_tiny_cifar_patch2": (2, 192, 4, 5_845_162),
    "dhvt_small_cifar_patch2": (2, 384, 8, 22_766_698),
}


def _randomise(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics and norm/affine parameters, so eval mode and every term matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim <= 1 or "affine" in name:
                p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.3, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)


def _reference_hi_mhsa(m: HeadTokenAttention, x: torch.Tensor) -> torch.Tensor:
    """HI-MHSA head by head, from the paper's description."""
    b, n, c = x.shape
    h = m.num_heads
    d = c // h
    tokens = []
    for g in range(h):
        t = x[:, :, g * d : (g + 1) * d].mean(1) @ m.ht_proj.weight.T + m.ht_proj.bias  # (B, C)
        parts = [
            F.layer_norm(t[:, j * d : (j + 1) * d], (d,), m.ht_norm.weight, m.ht_norm.bias, m.ht_norm.eps)
            for j in range(h)
        ]
        tokens.append(F.gelu(torch.cat(parts, 1)) + m.pos_embed[0, g])
    z = torch.cat([x, torch.stack(tokens, 1)], 1)  # (B, N + h, C)
    q, k, v = (z @ m.qkv.weight.T + m.qkv.bias).split(c, -1)
    heads = []
    for g in range(h):
        s = slice(g * d, (g + 1) * d)
        a = torch.softmax(q[..., s] @ k[..., s].transpose(1, 2) / math.sqrt(d), -1)
        heads.append(a @ v[..., s])
    y = torch.cat(heads, -1) @ m.proj.weight.T + m.proj.bias
    return torch.cat([y[:, :1] + y[:, n:].mean(1, keepdim=True), y[:, 1:n]], 1)


def test_head_token_attention_matches_reference():
    torch.manual_seed(0)
    m = HeadTokenAttention(24, num_heads=3, qkv_bias=True).double()
    _randomise(m)
    x = torch.randn(2, 1 + 4 * 5, 24, dtype=torch.float64)
    torch.testing.assert_close(m(x), _reference_hi_mhsa(m, x))
    assert m.head_tokens(x).shape == (2, 3, 24)


def test_head_tokens_masked_out_reduce_to_plain_attention():
    """With the head tokens hidden as keys, patch tokens get exactly ``Attention``'s output and the
    class token gets it plus the head tokens' mean (the ``bias`` argument reaches ``attend``)."""
    torch.manual_seed(1)
    m = HeadTokenAttention(16, num_heads=2, qkv_bias=True).double()
    x = torch.randn(2, 10, 16, dtype=torch.float64)
    keep = torch.ones(10 + 2, 10 + 2, dtype=torch.bool)
    keep[:, 10:] = False  # no query sees a head token
    y = m(x, bias=keep)
    plain = super(HeadTokenAttention, m).forward(x)  # the same weights without head tokens
    torch.testing.assert_close(y[:, 1:], plain[:, 1:])
    full = super(HeadTokenAttention, m).forward(torch.cat([x, m.head_tokens(x)], 1), bias=keep)
    torch.testing.assert_close(y[:, :1], plain[:, :1] + full[:, 10:].mean(1, keepdim=True))


def _reference_daff(m: DAFF, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """DAFF in eval mode, the token map laid out by hand (token 1 + i*w + j at row i, column j)."""

    def bn(t, norm):
        shape = (1, -1, 1, 1)
        return (t - norm.running_mean.view(shape)) / torch.sqrt(norm.running_var.view(shape) + norm.eps) * (
            norm.weight.view(shape)
        ) + norm.bias.view(shape)

    b, _, c = x.shape
    t = torch.empty(b, c, h, w, dtype=x.dtype)
    for i in range(h):
        for j in range(w):
            t[:, :, i, j] = x[:, 1 + i * w + j]
    t = F.gelu(bn(F.conv2d(t, m.conv1.weight, m.conv1.bias), m.bn1))
    t = t + F.gelu(bn(F.conv2d(t, m.conv2.weight, m.conv2.bias, padding=1, groups=t.shape[1]), m.bn2))
    t = bn(F.conv2d(t, m.conv3.weight, m.conv3.bias), m.bn3)
    s = t.mean((2, 3))
    weight = F.gelu(s @ m.aggregate.fc1.weight.T + m.aggregate.fc1.bias) @ m.aggregate.fc2.weight.T
    cls = x[:, :1] * (weight + m.aggregate.fc2.bias)[:, None]
    patches = torch.stack([t[:, :, i, j] for i in range(h) for j in range(w)], 1)
    return torch.cat([cls, patches], 1)


def test_daff_matches_reference_on_a_non_square_grid():
    torch.manual_seed(2)
    m = DAFF(8, 20).double().eval()
    _randomise(m)
    x = torch.randn(2, 1 + 3 * 5, 8, dtype=torch.float64)
    torch.testing.assert_close(m(x, (3, 5)), _reference_daff(m, x, 3, 5))
    with pytest.raises(ValueError, match="tokens"):
        m(x, (4, 4))


def test_daff_without_aggregation_passes_the_class_token():
    m = DAFF(8, 16).eval()
    x = torch.randn(2, 1 + 9, 8)
    y = m(x, (3, 3))
    m.aggregate = None
    y2 = m(x, (3, 3))
    torch.testing.assert_close(y2[:, 0], x[:, 0])
    torch.testing.assert_close(y2[:, 1:], y[:, 1:])


def test_gradcheck_float64():
    torch.manual_seed(3)
    attn = HeadTokenAttention(8, num_heads=2, qkv_bias=True).double()
    x = torch.randn(1, 1 + 4, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(attn, (x,))
    daff = DAFF(4, 8).double().eval()
    _randomise(daff)
    assert torch.autograd.gradcheck(lambda t: daff(t, (2, 2)), (x[..., :4].detach().requires_grad_(),))


@pytest.mark.parametrize("train, batch", [(False, 1), (False, 2), (True, 1), (True, 2)])
def test_gradcheck_whole_model(train, batch):
    """Exact gradients through SOPE, the blocks and the head, also at batch size 1 and in eval mode,
    where PyTorch's CPU BatchNorm backward goes wrong without the contiguous-gradient guard."""
    torch.manual_seed(4)
    model = DHVT(patch_size=4, embed_dim=16, depth=1, num_heads=2, num_classes=3).double().train(train)
    _randomise(model)
    x = torch.randn(batch, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model, (x,))


@pytest.mark.parametrize(
    "patch, widths, gelus",
    [(2, [64], [1]), (4, [32, 64], [1]), (8, [16, 32, 64], [1, 3]), (16, [8, 16, 32, 64], [1, 3, 5])],
)
def test_sope_layout_and_shapes(patch, widths, gelus):
    """Official layouts: patch 2 = [conv, GELU]; 4 = [conv, GELU, conv]; 16 = four convs, GELU between."""
    m = SOPE(patch, in_chans=3, embed_dim=64).eval()
    convs = [i for i, layer in enumerate(m.proj) if isinstance(layer, ConvBN)]
    assert [m.proj[i].c.out_channels for i in convs] == widths
    assert [i for i, layer in enumerate(m.proj) if isinstance(layer, torch.nn.GELU)] == gelus
    assert all(m.proj[i].c.stride == (2, 2) and m.proj[i].c.kernel_size == (3, 3) for i in convs)
    assert m(torch.randn(2, 3, 33, 20)).shape == (2, 64, math.ceil(33 / patch), math.ceil(20 / patch))


def test_sope_affines_scale_input_and_output():
    m = SOPE(2, in_chans=1, embed_dim=8).eval()
    x = torch.randn(2, 1, 6, 6)
    y = m(x)
    with torch.no_grad():
        m.post_affine.alpha.fill_(2.0)
        m.post_affine.beta.fill_(0.5)
    torch.testing.assert_close(m(x), 2 * y + 0.5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="power of two"):
        SOPE(3)
    with pytest.raises(ValueError, match="power of two"):
        SOPE(1)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        DHVT(embed_dim=30, num_heads=4)
    with pytest.raises(ValueError, match="odd"):
        DAFF(8, 16, kernel_size=4)


def test_any_input_size_and_channels():
    model = DHVT(**{**TINY, "in_chans": 1}).eval()
    x = torch.randn(2, 1, 28, 20)
    tokens = model.forward_features(x)
    assert tokens.shape == (2, 1 + 7 * 5, 32)
    (fmap,) = model.forward_intermediates(x, (1,))
    torch.testing.assert_close(fmap, tokens[:, 1:].transpose(1, 2).reshape(2, 32, 7, 5))
    assert model(x).shape == (2, 10)


def _official_keys(depth: int, patch_convs: int) -> set[str]:
    """State-dict names of the official ``VisionTransformer(apply_dhvt=True)``, written out from its layout."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {"cls_token", "norm.weight", "norm.bias", "head.weight", "head.bias"}
    keys |= {f"patch_embed.{a}.{p}" for a in ("pre_affine", "post_affine") for p in ("alpha", "beta")}
    for i in range(patch_convs):
        keys |= {f"patch_embed.proj.{2 * i}.0.weight"} | {f"patch_embed.proj.{2 * i}.1.{p}" for p in bn}
    for b in range(depth):
        pre = f"blocks.{b}."
        for lin in ("attn.qkv", "attn.proj", "attn.ht_proj", "attn.ht_norm", "norm1", "norm2", "mlp.compress"):
            keys |= {pre + lin + ".weight", pre + lin + ".bias"}
        keys |= {pre + "mlp.excitation.weight", pre + "mlp.excitation.bias", pre + "attn.pos_embed"}
        for j in (1, 2, 3):
            keys |= {f"{pre}mlp.conv{j}.weight", f"{pre}mlp.conv{j}.bias"} | {f"{pre}mlp.bn{j}.{p}" for p in bn}
    return keys


def test_official_checkpoint_keys_map_onto_ours():
    official = sorted(_official_keys(depth=2, patch_convs=2))
    # official names with a DistributedDataParallel prefix; each value is the key's index
    converted = convert_official_state_dict({"module." + k: torch.tensor(float(i)) for i, k in enumerate(official)})
    assert set(converted) == set(DHVT(**TINY).state_dict())
    assert converted["patch_embed.proj.2.c.weight"] == official.index("patch_embed.proj.2.0.weight")
    assert converted["patch_embed.proj.0.bn.running_var"] == official.index("patch_embed.proj.0.1.running_var")
    assert converted["blocks.1.mlp.aggregate.fc2.bias"] == official.index("blocks.1.mlp.excitation.bias")
    assert converted["blocks.0.mlp.aggregate.fc1.weight"] == official.index("blocks.0.mlp.compress.weight")
    assert converted["blocks.1.mlp.bn2.weight"] == official.index("blocks.1.mlp.bn2.weight")


@pytest.mark.parametrize("name", VARIANTS)
def test_exact_parameter_counts(name):
    with torch.device("meta"):
        model = subband.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == VARIANTS[name][3]


def _closed_form_gmacs(patch: int, dim: int, heads: int, side: int = 32, depth: int = 12, classes: int = 100):
    """Multiply-accumulates by hand: SOPE convs, per block the qkv/proj/head-token projections on
    ``N + heads`` tokens, the two attention products, DAFF's convs and aggregation; the head.
    Returns (total, attention products), in billions."""
    macs, cin, hw = 0, 3, side
    n = patch.bit_length() - 1
    for i in range(n):
        cout, hw = dim >> (n - 1 - i), -(-hw // 2)
        macs, cin = macs + 9 * cin * cout * hw * hw, cout
    p = hw * hw
    t, hidden = 1 + p + heads, 4 * dim
    products = 2 * t * t * dim
    block = 4 * t * dim * dim + dim * dim + products + 2 * p * dim * hidden + 9 * p * hidden + 2 * dim * (dim // 4)
    return (macs + depth * block + dim * classes) / 1e9, depth * products / 1e9


@pytest.mark.parametrize("name", VARIANTS)
def test_macs_closed_form_and_metadata(name):
    patch, dim, heads, _ = VARIANTS[name]
    total, products = _closed_form_gmacs(patch, dim, heads)
    with torch.device("meta"):
        model = subband.create_model(name)
        x = torch.randn(1, 3, 32, 32)
    assert count_gmacs(model, x) == pytest.approx(total, rel=1e-9)
    paper = subband.model_info(name)
    assert paper.gflops == round(total, 3)
    assert f"the count is {round(total - products, 3)} GMACs" in paper.notes
