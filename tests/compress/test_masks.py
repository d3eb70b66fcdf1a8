"""Explicit masks, the sparse MAC count and finalize() (same outputs, fewer parameters and FLOPs)."""

import pytest
import torch
from torch import nn

import subband
from subband.compress import (
    apply_masks,
    finalize,
    get_masks,
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
