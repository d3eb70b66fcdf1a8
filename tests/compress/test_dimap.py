"""DIMAP: the data-free score, the modules, the per-module thresholds and the FLOPs budget."""

import collections
import inspect

import pytest
import torch
from torch import nn

import subband
from subband.compress import dimap_masks, dimap_modules, dimap_prune, dimap_scores, finalize, get_masks, sparse_macs


def _vit() -> nn.Module:
    torch.manual_seed(0)
    cfg = dict(img_size=16, patch_size=4, num_classes=5, embed_dim=32, depth=2, num_heads=4)
    return subband.create_model("vit_tiny_patch16_224", **cfg).eval()


def _explicit_scores(w: torch.Tensor) -> torch.Tensor:
    """Eq. 10 term by term: sort descending; Imp(w_j) = w_j^2 / sum_{i <= j} w_i^2."""
    flat = w.flatten().double().tolist()
    order = sorted(range(len(flat)), key=lambda i: -abs(flat[i]))
    out, running = [0.0] * len(flat), 0.0
    for i in order:
        running += flat[i] ** 2
        out[i] = flat[i] ** 2 / running
    return torch.tensor(out, dtype=torch.float64).view(w.shape)


def test_score_equals_the_papers_formula():
    w = torch.tensor([[0.5, -2.0, 0.1], [1.0, -0.3, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(dimap_scores(w), _explicit_scores(w))
    assert dimap_scores(w)[0, 1] == 1.0  # the largest weight of a layer always scores 1
    w = torch.randn(7, 5)
    torch.testing.assert_close(dimap_scores(w).double(), _explicit_scores(w), rtol=1e-5, atol=1e-7)
    order_w = w.abs().flatten().argsort()
    assert torch.equal(dimap_scores(w).flatten().argsort(), order_w), "magnitude order kept within a layer"
    assert torch.equal(dimap_scores(torch.zeros(3, 3)), torch.zeros(3, 3))


def test_takes_no_data():
    for fn in (dimap_scores, dimap_masks, dimap_prune):
        params = set(inspect.signature(fn).parameters)
        assert not params & {"x", "data", "batches", "inputs", "loader", "example_input"}
    model = _vit()
    a, b = dimap_masks(model, amount=0.4), dimap_masks(model, amount=0.4)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_modules_follow_the_paper():
    groups = dimap_modules(_vit())
    assert groups == {f"blocks.{i}.{n}": r for i in range(2) for n, r in
                      (("attn.qkv", "qkv"), ("attn.proj", "proj"), ("mlp.fc1", "mlp"), ("mlp.fc2", "mlp"))}  # fmt: skip
    assert set(dimap_modules(_vit(), "model").values()) == {"model"}
    with torch.device("meta"):  # hierarchical models: roles by name; patch embeddings, convs, head stay out
        cvt = dimap_modules(subband.create_model("cvt_13"))
    assert {n.rsplit(".", 1)[-1] for n, r in cvt.items() if r == "qkv"} == {"proj_q", "proj_k", "proj_v"}
    assert all(n.endswith("attn.proj") for n, r in cvt.items() if r == "proj")
    assert not any("patch_embed" in n or n == "head" for n in cvt)
    with torch.device("meta"):  # Swin-T, the paper's model: 12 blocks; patch merging is auxiliary
        swin = dimap_modules(subband.create_model("swin_tiny_patch4_window7_224"))
    assert sorted(collections.Counter(swin.values()).items()) == [("mlp", 24), ("proj", 12), ("qkv", 12)]
    assert not any("downsample" in n or "head" in n or "patch_embed" in n for n in swin)
    with pytest.raises(ValueError, match="no prunable"):
        dimap_modules(nn.Sequential(nn.Linear(3, 3)))
    with pytest.raises(ValueError, match="modules must be"):
        dimap_modules(_vit(), "layer")


def test_each_module_drops_its_lowest_scores():
    model = _vit()
    masks = dimap_masks(model, amount=0.4)
    groups = dimap_modules(model)
    for module in ("qkv", "proj", "mlp"):
        names = [n for n, r in groups.items() if r == module]
        scores = torch.cat([_explicit_scores(model.get_submodule(n).weight.detach()).flatten() for n in names])
        keep = torch.cat([masks[n].flatten() for n in names])
        assert (~keep).sum() == round(0.4 * scores.numel())  # one threshold per module
        assert scores[keep].min() >= scores[~keep].max()
        per_layer = [masks[n].float().mean().item() for n in names]
        assert max(per_layer) - min(per_layer) > 0, "layers of a module are pruned by different amounts"


def test_flops_budget_and_finalize():
    model = _vit()
    pruned = dimap_prune(model, flops=0.6, input_size=(3, 16, 16))
    x = torch.randn(2, 3, 16, 16)
    ratio = sparse_macs(pruned, x) / sparse_macs(model, x)
    assert 0.58 < ratio <= 0.6 + 1e-9
    assert set(get_masks(pruned)) == set(dimap_modules(model))
    final = finalize(pruned)
    torch.testing.assert_close(final(x), pruned(x), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="exactly one"):
        dimap_masks(model)
    with pytest.raises(ValueError, match="out of reach"):
        dimap_masks(model, flops=0.01, input_size=(3, 16, 16))
