"""DuoFormer: the multi-scale patch tokens equal an explicit index reference (the layout of the
authors' code), the token count per patch (6 for two scales, 86 for four), the model on two
different subband backbones, the resized position embedding, and clear errors."""

import pytest
import torch

from subband.models.duoformer import DuoFormer, multiscale_patch_tokens
from tests.tolerances import assert_close


def test_patch_tokens_follow_the_region_index():
    torch.manual_seed(0)
    gh, gw = 2, 3
    maps = [torch.randn(2, 5, gh * k, gw * k) for k in (1, 2, 4)]  # coarsest first
    got = multiscale_patch_tokens(maps, (gh, gw))
    assert got.shape == (2, gh * gw, 1 + 4 + 16, 5)
    for r in range(gh):
        for c in range(gw):
            want = [m[:, :, k * r + i, k * c + j] for m, k in zip(maps, (1, 2, 4)) for i in range(k) for j in range(k)]
            assert_close(got[:, r * gw + c], torch.stack(want, dim=1))


@pytest.mark.parametrize("scales,tokens", [(2, 6), (4, 86)])
def test_tokens_per_patch(scales, tokens):
    model = DuoFormer("convnext_atto", scales=scales, embed_dim=32, depth=1, num_heads=2, num_classes=3)
    assert model.scale_pos_embed.shape == (1, 1, tokens, 32)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 3)


@pytest.mark.parametrize("backbone", ["convnext_atto", "spartan_t"])
def test_runs_on_subband_backbones(backbone):
    torch.manual_seed(1)
    model = DuoFormer(backbone, embed_dim=32, depth=2, num_heads=2, num_classes=4, img_size=64)
    x = torch.randn(2, 3, 64, 64)
    y = model(x)
    assert y.shape == (2, 4)
    y.square().sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    feats = model.forward_features(x)
    assert feats.shape == (2, 1 + 4, 32)  # class token and a 2x2 grid of scale tokens


def test_position_embedding_is_resized_for_other_inputs():
    model = DuoFormer("convnext_atto", embed_dim=32, depth=1, num_heads=2, num_classes=3, img_size=64).eval()
    assert model._pos_embed(2, 2) is model.pos_embed
    pos = model._pos_embed(3, 4)
    assert pos.shape == (1, 1 + 12, 32) and torch.equal(pos[:, 0], model.pos_embed[:, 0])
    assert model(torch.randn(1, 3, 96, 128)).shape == (1, 3)


def test_bad_inputs():
    model = DuoFormer("convnext_atto", embed_dim=32, depth=1, num_heads=2, num_classes=3)
    with pytest.raises(ValueError, match="multiple of the patch size"):
        model(torch.randn(1, 3, 40, 32))
    with pytest.raises(ValueError, match="last 5 of 4"):
        DuoFormer("convnext_atto", scales=5)
    with pytest.raises(ValueError, match="feature_info"):
        DuoFormer(torch.nn.Conv2d(3, 3, 1))
    with pytest.raises(ValueError, match="does not tile"):
        multiscale_patch_tokens([torch.randn(1, 2, 3, 3)], (2, 2))
