"""The attention core against torch.nn.MultiheadAttention and written-out formulas."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from subband.layers import Attention, CrossAttention, RelativePositionBias, WindowAttention, attend


def _explicit(q, k, v, bias=None, logit_scale=None):
    logits = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if logit_scale is not None:
        logits = logits * logit_scale
    if bias is not None:
        logits = logits + bias
    return torch.softmax(logits, -1) @ v


def test_attend_is_softmax_attention_on_both_paths():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, n, 8, dtype=torch.float64) for n in (5, 7, 7))
    bias = torch.randn(3, 5, 7, dtype=torch.float64)
    scale = torch.rand(3, 5, 7, dtype=torch.float64) + 0.5
    torch.testing.assert_close(attend(q, k, v, bias=bias), _explicit(q, k, v, bias))
    torch.testing.assert_close(attend(q, k, v, bias=bias, logit_scale=scale), _explicit(q, k, v, bias, scale))
    # the SDPA path and the explicit path agree
    torch.testing.assert_close(attend(q, k, v, bias=bias, logit_scale=torch.ones(())), attend(q, k, v, bias=bias))
    keep = torch.rand(5, 7) > 0.3
    keep[:, 0] = True
    want = _explicit(q, k, v, torch.zeros(5, 7, dtype=torch.float64).masked_fill(~keep, float("-inf")))
    torch.testing.assert_close(attend(q, k, v, bias=keep), want)
    torch.testing.assert_close(attend(q, k, v, bias=keep, logit_scale=torch.ones(())), want)


def test_attend_gradcheck_explicit_path():
    torch.manual_seed(0)
    args = [torch.randn(1, 2, n, 3, dtype=torch.float64, requires_grad=True) for n in (3, 4, 4)]
    scale = torch.rand(2, 3, 4, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda q, k, v, s, b: attend(q, k, v, bias=b, logit_scale=s), (*args, scale, bias))


def test_attend_rejects_bad_shapes():
    with pytest.raises(ValueError, match="B, heads"):
        attend(torch.randn(2, 5, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match="differ"):
        attend(torch.randn(1, 2, 5, 8), torch.randn(1, 2, 5, 4), torch.randn(1, 2, 5, 8))


def test_attention_equals_multihead_attention():
    torch.manual_seed(0)
    ours = Attention(24, num_heads=4, qkv_bias=True).eval()
    ref = nn.MultiheadAttention(24, 4, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(ours.qkv.weight)
        ref.in_proj_bias.copy_(ours.qkv.bias)
        ref.out_proj.weight.copy_(ours.proj.weight)
        ref.out_proj.bias.copy_(ours.proj.bias)
    x = torch.randn(3, 10, 24)
    torch.testing.assert_close(ours(x), ref(x, x, x, need_weights=False)[0], rtol=1e-5, atol=1e-6)
    mask = torch.rand(10, 10) > 0.5
    mask.fill_diagonal_(True)
    want = ref(x, x, x, attn_mask=~mask, need_weights=False)[0]  # MHA's boolean mask marks what to drop
    torch.testing.assert_close(ours(x, bias=mask), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="divisible"):
        Attention(10, num_heads=3)
    assert Attention(10, num_heads=3, head_dim=4).qkv.out_features == 36


def test_cross_attention_equals_multihead_attention():
    torch.manual_seed(0)
    ours = CrossAttention(16, num_heads=2, qkv_bias=True, context_dim=12).eval()
    ref = nn.MultiheadAttention(16, 2, kdim=12, vdim=12, batch_first=True).eval()
    with torch.no_grad():
        ref.q_proj_weight.copy_(ours.wq.weight)
        ref.k_proj_weight.copy_(ours.wk.weight)
        ref.v_proj_weight.copy_(ours.wv.weight)
        ref.in_proj_bias.copy_(torch.cat([ours.wq.bias, ours.wk.bias, ours.wv.bias]))
        ref.out_proj.weight.copy_(ours.proj.weight)
        ref.out_proj.bias.copy_(ours.proj.bias)
    x, ctx = torch.randn(2, 1, 16), torch.randn(2, 9, 12)
    torch.testing.assert_close(ours(x, ctx), ref(x, ctx, ctx, need_weights=False)[0], rtol=1e-5, atol=1e-6)


def test_relative_position_bias_indexes_offsets():
    rpb = RelativePositionBias((2, 3), num_heads=2)
    bias = rpb()  # (2, 6, 6)
    table = rpb.relative_position_bias_table.detach()
    for i in range(6):
        for j in range(6):
            dy, dx = i // 3 - j // 3, i % 3 - j % 3
            torch.testing.assert_close(bias[:, i, j].detach(), table[(dy + 1) * 5 + dx + 2])


def _window_reference(module: WindowAttention, x: torch.Tensor) -> torch.Tensor:
    """Dense attention over the padded, rolled map: token i attends to j iff both lie in the same
    window, j is a real (unpadded) token or j == i, and no cyclic wrap separates them."""
    b, h, w, c = x.shape
    (wh, ww), s = module.window_size, module.shift
    hp, wp = h + (-h % wh), w + (-w % ww)
    xp = F.pad(x, (0, 0, 0, wp - w, 0, hp - h)).roll((-s, -s), (1, 2))
    ys, xs = torch.meshgrid(torch.arange(hp), torch.arange(wp), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()  # rolled positions
    oy, ox = (ys + s) % hp, (xs + s) % wp  # positions before the roll
    same_window = (ys[:, None] // wh == ys[None] // wh) & (xs[:, None] // ww == xs[None] // ww)
    no_wrap = (oy[:, None] - oy[None] == ys[:, None] - ys[None]) & (ox[:, None] - ox[None] == xs[:, None] - xs[None])
    real = (oy < h) & (ox < w)
    keep = same_window & no_wrap & real[None] | torch.eye(hp * wp, dtype=torch.bool)
    table = module.relative_position.relative_position_bias_table
    rel = (ys[:, None] - ys[None] + wh - 1) * (2 * ww - 1) + (xs[:, None] - xs[None] + ww - 1)
    bias = table[rel.clamp(0, table.shape[0] - 1)].permute(2, 0, 1)  # (heads, N, N), used only inside windows
    bias = bias.masked_fill(~keep, float("-inf"))
    y = module.attn(xp.reshape(b, hp * wp, c), bias=bias).view(b, hp, wp, c).roll((s, s), (1, 2))
    return y[:, :h, :w]


@pytest.mark.parametrize("size,shift", [((8, 12), 0), ((8, 12), 2), ((9, 10), 0), ((9, 10), 3)])
def test_window_attention_equals_masked_dense_attention(size, shift):
    torch.manual_seed(0)
    module = WindowAttention(16, num_heads=2, window_size=4, shift=shift).double().eval()
    x = torch.randn(2, *size, 16, dtype=torch.float64)
    y = module(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    torch.testing.assert_close(y, _window_reference(module, x))


def test_window_attention_validates():
    with pytest.raises(ValueError, match="shift"):
        WindowAttention(16, 2, window_size=4, shift=4)
    with pytest.raises(ValueError, match="window_size"):
        WindowAttention(16, 2, window_size=0)


def test_transformer_block_is_its_formula():
    from subband.layers import TransformerBlock

    torch.manual_seed(0)
    block = TransformerBlock(16, num_heads=2, init_values=0.5).double().eval()
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    bias = torch.randn(2, 5, 5, dtype=torch.float64)
    h = x + 0.5 * block.attn(F.layer_norm(x, (16,), block.norm1.weight, block.norm1.bias, 1e-6), bias=bias)
    want = h + 0.5 * block.mlp(F.layer_norm(h, (16,), block.norm2.weight, block.norm2.bias, 1e-6))
    torch.testing.assert_close(block(x, bias=bias), want)
    assert {k.split(".")[0] for k in block.state_dict()} == {"norm1", "attn", "ls1", "norm2", "mlp", "ls2"}
