"""Explicit masks, finalize() and LPViT block pruning."""

import math

import pytest
import torch
from torch import nn

import subband
from subband.compress import (
    apply_masks,
    block_mask,
    block_scores,
    calibration_gradients,
    finalize,
    get_masks,
    lpvit_curves,
    lpvit_prune,
    sparse_macs,
)
from subband.layers import Mlp, WindowAttention
from subband.models._profile import count_gmacs, count_params


def _vit(**kw) -> nn.Module:
    torch.manual_seed(0)
    cfg = dict(img_size=16, patch_size=4, num_classes=5, embed_dim=32, depth=2, num_heads=4)
    model = subband.create_model("vit_tiny_patch16_224", **{**cfg, **kw})
    with torch.no_grad():  # non-zero biases, so that folding them is checked
        for m in model.modules():
            if isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.normal_(0, 0.1)
    return model


def _head_and_unit_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """Masks that empty: block 0 head 1's value rows, block 1 head 2's proj columns, MLP units 0-9
    of block 0 (fc1 rows: bias folding) and 10-19 of block 1 (fc2 columns), plus scattered zeros."""
    masks = {n: torch.rand_like(m.weight) > 0.3 for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    h, d = 4, 8
    masks["blocks.0.attn.qkv"][2 * h * d + d : 2 * h * d + 2 * d] = False
    masks["blocks.1.attn.proj"][:, 2 * d : 3 * d] = False
    masks["blocks.0.mlp.fc1"][:10] = False
    masks["blocks.1.mlp.fc2"][:, 10:20] = False
    del masks["head"]
    return masks


def test_masks_keep_pruned_weights_zero_through_optimizer_steps():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 4))
    masks = {"0": torch.rand(16, 8) > 0.5, "2": torch.rand(4, 16) > 0.5}
    masked = apply_masks(net, masks)
    assert not get_masks(net), "the original is left unmasked"
    before = {n: masked.get_submodule(n).weight.detach().clone() for n in masks}
    for opt in (torch.optim.AdamW(masked.parameters(), lr=0.1, weight_decay=0.1),
                torch.optim.SGD(masked.parameters(), lr=0.1, momentum=0.9)):  # fmt: skip
        for _ in range(3):
            opt.zero_grad()
            masked(torch.randn(5, 8)).square().mean().backward()
            opt.step()
    for n, mask in masks.items():
        w = masked.get_submodule(n).weight
        assert torch.equal(w[~mask], torch.zeros_like(w[~mask]))
        assert not torch.equal(w[mask], before[n][mask]), "the kept weights train"
        assert torch.equal(get_masks(masked)[n], mask)


def test_apply_masks_intersects_and_checks_shapes():
    net = nn.Linear(4, 3)
    a, b = torch.rand(3, 4) > 0.5, torch.rand(3, 4) > 0.5
    twice = apply_masks(apply_masks(net, {"": a}), {"": b})
    assert torch.equal(get_masks(twice)[""], a & b)
    with pytest.raises(ValueError, match="shape"):
        apply_masks(net, {"": torch.ones(4, 3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="not an nn.Linear"):
        apply_masks(nn.Sequential(nn.ReLU()), {"0": torch.ones(1)})


def test_sparse_macs_drop_the_products_of_zero_weights():
    net = nn.Sequential(nn.Linear(8, 16), nn.Conv1d(1, 1, 1))  # the conv1d is counted densely
    mask = torch.ones(16, 8, dtype=torch.bool)
    mask[:, :3] = False
    masked = apply_masks(net[:1], {"0": mask})
    x = torch.randn(2, 3, 8)  # 6 rows
    assert sparse_macs(net[:1], x) * 1e9 == pytest.approx(6 * 16 * 8)
    assert sparse_macs(masked, x) * 1e9 == pytest.approx(6 * 16 * 5)
    assert count_gmacs(masked, x) * 1e9 == pytest.approx(6 * 16 * 8), "count_gmacs still counts dense"


@pytest.mark.parametrize("attn_mask", [None, "gmm"])
def test_finalize_removes_heads_and_units_with_the_same_outputs(attn_mask):
    model = _vit(attn_mask=attn_mask).eval()
    if attn_mask == "gmm":  # a per-head multiplicative mask: the kept heads must get theirs
        for m in model.attn_masks:
            for p in m.parameters():
                p.data.uniform_(0.5, 1.5)
    masked = apply_masks(model, _head_and_unit_masks(model))
    final = finalize(masked)
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        want, got = masked(x), final(x)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    assert final.blocks[0].attn.num_heads == 3 and final.blocks[1].attn.num_heads == 3
    assert final.blocks[0].mlp.fc1.out_features == 118 and final.blocks[1].mlp.fc2.in_features == 118
    heads = 3 * 8 * (32 + 1) + 8 * 32  # qkv rows and biases, proj columns
    units = 32 + 1 + 32  # fc1 row and bias, fc2 column
    assert count_params(final) == count_params(model) - 2 * heads - 20 * units
    assert count_gmacs(final, x) < count_gmacs(masked, x)
    assert get_masks(final) == {} and get_masks(masked), "the masked model stays as it was"


def test_finalize_window_attention_narrows_the_relative_position_bias():
    torch.manual_seed(0)
    attn = WindowAttention(16, num_heads=4, window_size=4, shift=2).eval()
    with torch.no_grad():
        attn.relative_position.relative_position_bias_table.normal_()
    mask = torch.ones_like(attn.attn.qkv.weight, dtype=torch.bool)
    mask[2 * 16 : 2 * 16 + 4] = False  # head 0's values
    masked = apply_masks(attn, {"attn.qkv": mask})
    final = finalize(masked)
    x = torch.randn(2, 7, 9, 16)
    torch.testing.assert_close(final(x), masked(x), rtol=0, atol=1e-5)
    assert final.attn.num_heads == 3 and final.attn.head_index.tolist() == [1, 2, 3]


@pytest.mark.parametrize("kind", ["sequential", "mlp_conv"])
def test_finalize_plain_linear_pairs_and_conv_mlps(kind):
    torch.manual_seed(0)
    if kind == "sequential":
        net = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Dropout(0.1), nn.Linear(12, 5)).eval()
        masks = {"0": torch.ones(12, 6, dtype=torch.bool), "3": torch.ones(5, 12, dtype=torch.bool)}
        masks["0"][[1, 4]] = False
        masks["3"][:, 7] = False
        x, width = torch.randn(4, 6), lambda m: m[0].out_features
    else:
        net = nn.Sequential(Mlp(6, 12, use_conv=True)).eval()
        masks = {"0.fc1": torch.ones(12, 6, 1, 1, dtype=torch.bool), "0.fc2": torch.ones(6, 12, 1, 1, dtype=torch.bool)}
        masks["0.fc1"][[1, 4]] = False
        masks["0.fc2"][:, 7] = False
        x, width = torch.randn(2, 6, 3, 3), lambda m: m[0].fc1.out_channels
    masked = apply_masks(net, masks)
    final = finalize(masked)
    torch.testing.assert_close(final(x), masked(x), rtol=0, atol=1e-6)
    assert width(final) == 9


def _explicit_block_means(score: torch.Tensor, bh: int, bw: int) -> torch.Tensor:
    rows, cols = math.ceil(score.shape[0] / bh), math.ceil(score.shape[1] / bw)
    out = torch.empty(rows, cols, dtype=torch.float64)
    for i in range(rows):
        for j in range(cols):
            out[i, j] = score[i * bh : (i + 1) * bh, j * bw : (j + 1) * bw].double().mean()
    return out


def test_taylor_importance_equals_an_explicit_computation():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 13), nn.GELU(), nn.Linear(13, 3))
    batches = [torch.randn(4, 10) for _ in range(3)]
    grads = calibration_gradients(net, batches, layers=["0", "2"])
    for name, layer in (("0", net[0]), ("2", net[2])):
        explicit = torch.zeros_like(layer.weight)
        for x in batches:
            net.zero_grad()
            net(x).pow(2).mean().backward()
            explicit += layer.weight.grad / len(batches)
        torch.testing.assert_close(grads[name], explicit)
        score = (layer.weight * grads[name]).abs().detach()
        torch.testing.assert_close(block_scores(score, (4, 3)).double(), _explicit_block_means(score, 4, 3))

    # the distortion curve, point by point, against the second-order formula with explicit masks
    w, g = net[0].weight.detach().double(), grads["0"].double()
    curves = lpvit_curves(w, g, (4, 3), steps=10)
    scores = _explicit_block_means((w * g).abs(), 4, 3)
    for k in range(11):
        keep = int(scores.numel() * (1 - k / 10) + 1e-9)
        mask = block_mask(scores, keep, (4, 3), w.shape)
        assert int(curves["kept"][k]) == int(mask.sum())
        dw = w * mask - w
        want = (dw * g).square().mean() + 0.5 * (g * dw).sum() ** 2 + 0.5e-7 * dw.square().sum()
        torch.testing.assert_close(curves["distortion"][k], want)


def test_block_mask_keeps_the_highest_scoring_blocks():
    scores = torch.tensor([[0.1, 5.0], [3.0, 0.2]])
    mask = block_mask(scores, 2, (2, 3), (4, 5))  # ragged last column block (3 + 2 columns)
    assert mask[:2, 3:].all() and mask[2:, :3].all() and not mask[:2, :3].any() and not mask[2:, 3:].any()


@pytest.mark.parametrize("flops", [0.3, 0.6])
@pytest.mark.parametrize("power_weight", [0.0, 1.0])
def test_lpvit_meets_the_flops_budget_with_block_masks(flops, power_weight):
    model = _vit()
    batches = [torch.randn(4, 3, 16, 16) for _ in range(2)]
    pruned = lpvit_prune(model, batches, flops=flops, block=(8, 8), power_weight=power_weight, steps=20)
    x = batches[0]
    ratio = sparse_macs(pruned, x) / sparse_macs(model, x)
    assert flops - 0.05 < ratio <= flops + 1e-9
    masks = get_masks(pruned)
    assert "head" not in masks and len(masks) == 8
    for mask in masks.values():  # every 8x8 block is kept or dropped whole
        sums = mask.double().view(mask.shape[0] // 8, 8, mask.shape[1] // 8, 8).sum((1, 3))
        assert ((sums == 0) | (sums == 64)).all()
        assert sums.count_nonzero() >= 1, "every layer keeps some blocks"
    model.eval()
    final = finalize(pruned.eval())
    torch.testing.assert_close(final(x), pruned(x), rtol=0, atol=1e-5)


def test_lpvit_errors():
    with pytest.raises(ValueError, match="no prunable layer"):
        lpvit_prune(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()), [torch.randn(1, 3, 8, 8)])
    with pytest.raises(ValueError, match="flops"):
        lpvit_prune(_vit(), [torch.randn(1, 3, 16, 16)], flops=1.5)
    with pytest.raises(ValueError, match="out of reach"):
        lpvit_prune(_vit(), [torch.randn(1, 3, 16, 16)], flops=0.01, block=8)
