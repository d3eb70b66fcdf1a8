"""LPViT: Taylor block importance, distortion curves against explicit sums, the FLOPs budget."""

import math

import pytest
import torch
from torch import nn

from subband.compress import (
    block_mask,
    block_scores,
    calibration_gradients,
    finalize,
    get_masks,
    lpvit_curves,
    lpvit_prune,
    sparse_macs,
)
from tests.compress.test_masks import _vit


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
