"""EET token pruning against an explicit computation (full softmax attention, the official score
formula, top-k by hand), the identity at keep 1.0, the FLOPs it saves, hooks that never outlive
their context, and the distillation loss against its formula."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import subband
from subband.compress import (
    EET_KEEP,
    TokenPruneBlock,
    capture_outputs,
    eet_distillation_loss,
    eet_token_scores,
    mask_top_patches,
    prune_tokens,
    record_token_scores,
    select_tokens,
)
from subband.layers import TransformerBlock
from subband.models._profile import count_gmacs
from tests.tolerances import assert_close


class TinyViT(nn.Module):
    """Patch conv, ``prefix`` leading tokens, position embedding, blocks, LayerNorm, head on token 0."""

    def __init__(self, dim=32, depth=4, heads=4, img=16, patch=2, classes=5, prefix=1):
        super().__init__()
        n = (img // patch) ** 2
        self.num_prefix_tokens = prefix
        self.patch_embed = nn.Conv2d(3, dim, patch, stride=patch)
        self.prefix = nn.Parameter(torch.randn(1, prefix, dim))
        self.pos_embed = nn.Parameter(0.5 * torch.randn(1, prefix + n, dim))
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def embed(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, C, h, w) -> (B, hw, C)
        return torch.cat([self.prefix.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed

    def forward_features(self, x):
        x = self.embed(x)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward(self, x):
        return self.head(self.forward_features(x)[:, 0])


def _model(**kw):
    torch.manual_seed(0)
    model = TinyViT(**kw).double().eval()
    with torch.no_grad():  # peaked, non-uniform attention
        for blk in model.blocks:
            blk.attn.qkv.weight.mul_(8.0)
    return model


def _explicit_scores(attn, x, p):
    """The official Attention.forward: explicit softmax matrix, A @ V, head-output norms of the
    patch tokens normalised over heads (+1e-8), times the class row, summed over heads."""
    b, n, c = x.shape
    h = attn.num_heads
    q, k, v = attn.qkv(x).view(b, n, 3, h, c // h).permute(2, 0, 3, 1, 4)
    a = (q @ k.transpose(-2, -1) * (c // h) ** -0.5).softmax(-1)  # (B, h, N, N)
    out = a @ v
    imp = out[..., p:, :].norm(dim=-1)
    imp = imp / (imp.sum(dim=1, keepdim=True) + 1e-8)
    return (a[:, :, 0, p:] * imp).sum(1)  # (B, N - P)


def _reference_forward(model, x, schedule, p):
    """Tokens through the blocks with the explicit score and a hand-made top-k after the chosen blocks."""
    t = model.embed(x)
    kept = {}
    for i, blk in enumerate(model.blocks):
        s = _explicit_scores(blk.attn, blk.norm1(t), p)
        t = blk(t)
        if i in schedule:
            n = t.shape[1] - p
            k = max(1, math.floor(schedule[i] * n + 1e-6))
            idx = [sorted(np.argsort(-row.numpy(), kind="stable")[:k].tolist()) for row in s]
            kept[i] = idx
            t = torch.stack([torch.cat([t[j, :p], t[j, p:][idx[j]]]) for j in range(len(t))])
    return model.head(model.norm(t)[:, 0]), t, kept


def test_scores_equal_the_explicit_attention_formula():
    model = _model()
    x = torch.randn(3, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad(), capture_outputs(model, ["blocks.2.norm1"]) as inp:
        with record_token_scores(model, [2, -1]) as scores:
            model(x)
    assert set(scores) == {2, -1}
    want = _explicit_scores(model.blocks[2].attn, inp["blocks.2.norm1"], 1)
    assert_close(scores[2], want)
    assert scores[2].shape == (3, 64)
    assert not torch.allclose(want, want.mean(1, keepdim=True))  # the score is not flat


def test_score_closed_forms():
    """Equal head-output norms: the heads' mean class attention; one head with output: its attention."""
    attn = torch.rand(2, 3, 9, dtype=torch.float64).softmax(-1)
    out = torch.randn(2, 3, 9, 4, dtype=torch.float64)
    out = out / out.norm(dim=-1, keepdim=True)
    assert_close(eet_token_scores(attn, out, 1), attn[:, :, 1:].sum(1) / (3 + 1e-8))
    out[:, 1:] = 0
    assert_close(eet_token_scores(attn, out, 2), attn[:, 0, 2:] / (1 + 1e-8))
    with pytest.raises(ValueError):
        eet_token_scores(attn, out, 0)
    with pytest.raises(ValueError):
        eet_token_scores(attn, out[:, :2], 1)


@pytest.mark.parametrize("prefix", [1, 2])
def test_pruned_forward_equals_explicit_top_k(prefix):
    model = _model(prefix=prefix)
    schedule = {1: 0.7, 2: 0.5, 3: 0.25}
    x = torch.randn(3, 3, 16, 16, dtype=torch.float64)
    pruned = prune_tokens(model, list(schedule.items()))
    names = [f"blocks.{i}.kept" for i in schedule]
    with torch.no_grad(), capture_outputs(pruned, names + ["norm"]) as out:
        y = pruned(x)
        want, tokens, kept = _reference_forward(model, x, schedule, prefix)
    assert_close(y, want)
    assert out["norm"].shape == (3, prefix + 5, 32)  # 64 -> 44 -> 22 -> 5 patch tokens
    assert_close(out["norm"], model.norm(tokens))
    for i in schedule:
        assert out[f"blocks.{i}.kept"].tolist() == kept[i]
    assert not torch.allclose(y, model(x), atol=1e-3)  # pruning changed the output


def test_keep_one_is_the_original_model_exactly():
    model = _model().float()
    x = torch.randn(2, 3, 16, 16)
    pruned = prune_tokens(model, [(0, 1.0), (2, 1.0)])
    assert torch.equal(pruned(x), model(x))
    assert sum(isinstance(m, TokenPruneBlock) for m in pruned.modules()) == 2
    assert not any(isinstance(m, TokenPruneBlock) for m in model.modules())  # the original is untouched
    for (ka, a), (kb, b) in zip(model.state_dict().items(), pruned.state_dict().items()):
        assert kb.replace(".block.", ".") == ka and torch.equal(a, b)


def test_select_tokens_keeps_prefix_and_top_k_in_order():
    x = torch.arange(2 * 7 * 3, dtype=torch.float64).view(2, 7, 3)
    scores = torch.tensor([[0.1, 0.9, 0.3, 0.8, 0.2], [5.0, 4.0, 3.0, 2.0, 1.0]])
    y, idx = select_tokens(x, scores, 0.6, num_prefix_tokens=2)  # floor(0.6 * 5) = 3
    assert idx.tolist() == [[1, 2, 3], [0, 1, 2]]
    assert torch.equal(y[:, :2], x[:, :2])
    assert torch.equal(y[0, 2:], x[0, [3, 4, 5]]) and torch.equal(y[1, 2:], x[1, [2, 3, 4]])
    assert select_tokens(x, scores, 0.01, 2)[0].shape == (2, 3, 3)  # at least one patch token


def test_gmacs_drop_by_the_pruned_blocks_cost():
    """count_gmacs(pruned) = count_gmacs(model) - sum over later blocks of (cost at N - cost at the
    pruned length) + the score's class-query row (h * N * d MACs per pruning block)."""
    torch.manual_seed(0)
    model = TinyViT(dim=32, depth=4, heads=4, img=32, patch=2).eval()  # 256 patch tokens
    x = torch.randn(1, 3, 32, 32)
    pruned = prune_tokens(model, [(0, 0.5), (2, 0.5)])
    lengths = [257, 129, 129, 65]  # tokens entering each block
    block = model.blocks[0]

    def cost(n):
        return count_gmacs(block, torch.randn(1, n, 32))

    saved = sum(cost(257) - cost(n) for n in lengths)
    probe = (4 * 257 * 8 + 4 * 129 * 8) / 1e9
    full, small = count_gmacs(model, x), count_gmacs(pruned, x)
    assert small == pytest.approx(full - saved + probe, rel=1e-9)
    assert small < 0.6 * full


def test_paper_schedule_on_a_224_vit():
    """EET_KEEP on 196 patch tokens: 98, 49, 12 after blocks 3, 7, 9 (the official counts)."""
    torch.manual_seed(0)
    model = TinyViT(dim=16, depth=12, heads=2, img=224, patch=16).eval()
    pruned = prune_tokens(model, EET_KEEP)
    names = [f"blocks.{i}.kept" for i, _ in EET_KEEP]
    with torch.no_grad(), capture_outputs(pruned, names) as kept:
        pruned(torch.randn(1, 3, 224, 224))
    assert [kept[n].shape[1] for n in names] == [98, 49, 12]


def test_backward_through_the_pruned_model_reaches_every_parameter():
    model = _model().float().train()
    pruned = prune_tokens(model, [(1, 0.5)])
    pruned(torch.randn(2, 3, 16, 16)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in pruned.parameters())


def _hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_hooks_are_removed_even_when_forward_raises():
    model = _model()
    pruned = prune_tokens(model, [(1, 0.5)])
    bad = torch.randn(2, 3, 24, 24, dtype=torch.float64)  # position embedding of the wrong length
    with pytest.raises(RuntimeError):
        with capture_outputs(pruned, ["blocks.0", "norm"]), record_token_scores(pruned, [0, 1]):
            assert _hooks(pruned) == 2 + 2 * 2
            pruned(bad)
    assert _hooks(pruned) == 0
    with pytest.raises(RuntimeError):  # the pruning block's own probe when its block raises
        pruned.blocks[1](torch.randn(2, 10, 31, dtype=torch.float64))
    assert _hooks(pruned) == 0
    with pytest.raises(AttributeError):  # a bad name: the hooks already placed are removed
        with capture_outputs(pruned, ["blocks.0", "nope"]):
            pass
    assert _hooks(pruned) == 0


def test_invalid_arguments():
    model = _model()
    for keep in ([(0, 0.0)], [(0, 1.5)], [(4, 0.5)], [(1, 0.5), (-3, 0.5)]):
        with pytest.raises(ValueError):
            prune_tokens(model, keep)
    with pytest.raises(ValueError, match="num_prefix_tokens"):
        prune_tokens(model, [(0, 0.5)], num_prefix_tokens=0)
    with pytest.raises(ValueError, match="blocks"):
        prune_tokens(nn.Linear(2, 2), [(0, 0.5)])
    with pytest.raises(ValueError, match="bias"):
        prune_tokens(model, [(0, 0.5)]).blocks[0](torch.randn(1, 65, 32).double(), bias=torch.zeros(65, 65))
    with pytest.raises(ValueError, match="attn"):
        TokenPruneBlock(nn.Linear(4, 4), 0.5)


def test_subband_vit_and_timm_vit_prune_alike():
    """The wrapper needs only timm's attention layout: a timm ViT and subband's ViT with the same
    weights give the same pruned outputs (timm's fused attention, its own ``scale``)."""
    timm = pytest.importorskip("timm")
    if "vit_tiny_patch16_224" not in subband.list_models():
        pytest.skip("subband.models.vit not available")
    torch.manual_seed(0)
    cfg = dict(img_size=32, patch_size=4, embed_dim=48, depth=4, num_heads=3, num_classes=7)
    ref = timm.models.vision_transformer.VisionTransformer(**cfg).eval()
    ours = subband.create_model("vit_tiny_patch16_224", **cfg).eval()
    ours.load_state_dict(ref.state_dict())
    keep = [(0, 0.6), (2, 0.5)]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        a, b = prune_tokens(ref, keep)(x), prune_tokens(ours, keep)(x)
        full = ours(x)
    assert_close(a, b)
    assert not torch.allclose(a, full, atol=1e-4)


def test_mask_top_patches_blacks_out_the_top_patches():
    torch.manual_seed(0)
    images = torch.rand(2, 3, 10, 10) + 1.0  # 4-pixel patches: a 3 x 3 grid, the last row/column cut
    scores = torch.rand(2, 9)
    out = mask_top_patches(images, scores, 2, patch_size=4)
    want = images.clone()
    for b in range(2):
        for i in scores[b].argsort(descending=True)[:2].tolist():
            r, c = divmod(i, 3)
            want[b, :, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4] = 0
    assert torch.equal(out, want)
    assert (out == 0).sum() < images.numel()  # something survives
    assert torch.equal(mask_top_patches(images, scores, 0, 4), images)
    with pytest.raises(ValueError):
        mask_top_patches(images, torch.rand(2, 4), 1, 4)


def test_distillation_loss_equals_its_formula():
    torch.manual_seed(0)
    logits = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    codes = torch.randn(4, 8, dtype=torch.float64, requires_grad=True)
    t_logits = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    t_codes = torch.randn(4, 8, dtype=torch.float64, requires_grad=True)
    masked = torch.randn(4, 6, dtype=torch.float64)
    labels = torch.tensor([0, 5, 2, 2])
    target = torch.randn(4, 8, dtype=torch.float64).sign()
    loss = eet_distillation_loss(
        (logits, codes), (t_logits, t_codes), labels=labels, target_codes=target, masked_logits=masked, kl_weight=0.5
    )
    s, t, lg, m = codes.detach().numpy(), t_codes.detach().numpy(), logits.detach().numpy(), masked.numpy()

    def ce(z):
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        return -logp[np.arange(4), labels.numpy()].mean()

    cos = (s * t).sum(1) / np.linalg.norm(s, axis=1) / np.linalg.norm(t, axis=1)
    ps = np.exp(lg / 3) / np.exp(lg / 3).sum(1, keepdims=True)
    tl = t_logits.detach().numpy()
    pt = np.exp(tl / 3) / np.exp(tl / 3).sum(1, keepdims=True)
    kl = 9 * (pt * (np.log(pt) - np.log(ps))).sum(1).mean()
    want = dict(
        classification=ce(lg), region=ce(m), codes=((s - target.numpy()) ** 2).mean(), transfer=(1 - cos).mean()
    )
    for name, value in want.items():
        assert_close(getattr(loss, name), torch.tensor(value))
    assert_close(loss.kl, torch.tensor(kl))
    total = 0.1 * (want["classification"] + want["region"]) + want["codes"] + want["transfer"] + 0.5 * kl
    assert_close(loss.total, torch.tensor(total))
    loss.total.backward()
    assert t_logits.grad is None and t_codes.grad is None  # the teacher is not trained through this loss
    assert codes.grad is not None and logits.grad is not None


def test_distillation_loss_transfer_term_is_scale_free_and_optional_terms_vanish():
    codes = torch.randn(3, 16)
    same = eet_distillation_loss((torch.randn(3, 4), codes), (torch.randn(3, 4), 2.5 * codes))
    assert same.transfer.item() == pytest.approx(0.0, abs=1e-6)
    assert same.classification == 0 and same.region == 0 and same.codes == 0 and same.kl == 0
    opposite = eet_distillation_loss((torch.randn(3, 4), codes), (torch.randn(3, 4), -codes))
    assert opposite.total.item() == pytest.approx(2.0, abs=1e-6)
    with pytest.raises(ValueError, match="labels"):
        eet_distillation_loss((codes, codes), (codes, codes), masked_logits=codes)


def test_region_guidance_pipeline_masks_the_teachers_most_attended_patches():
    """record_token_scores on the teacher's last block feeds mask_top_patches (the official DRG step)."""
    teacher = _model().float()
    x = torch.rand(2, 3, 16, 16) + 0.5
    with torch.no_grad(), record_token_scores(teacher, [-1]) as scores:
        teacher(x)
    masked = mask_top_patches(x, scores[-1], 4, patch_size=2)
    zero = (masked == 0).all(1).view(2, 8, 2, 8, 2).all(4).all(2).flatten(1)  # (B, 64): patch fully zero
    top = scores[-1].topk(4, dim=1).indices.sort(1).values
    assert torch.equal(zero.nonzero()[:, 1].view(2, 4), top)
    assert F.mse_loss(masked, x) > 0
