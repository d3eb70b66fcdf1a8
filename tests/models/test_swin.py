"""Swin Transformer: timm's outputs from timm's weights; the window/shift rule; odd input sizes."""

import pytest
import torch

import subband
from subband.models.swin import SwinTransformer, convert_timm_swin_state_dict


def _timm_pair(name: str | None = None, **cfg):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    theirs = (timm.create_model(name) if name else timm.models.swin_transformer.SwinTransformer(**cfg)).eval()
    ours = (subband.create_model(name) if name else SwinTransformer(**cfg)).eval()
    ours.load_state_dict(convert_timm_swin_state_dict(theirs.state_dict()), strict=True)
    return theirs, ours


def test_small_swin_equals_timm():
    """Two stages, shifted windows with the region mask, patch merging, at 56 x 56."""
    cfg = dict(img_size=56, embed_dim=32, depths=(2, 2), num_heads=(2, 4), window_size=7, num_classes=10)
    theirs, ours = _timm_pair(**cfg)
    theirs.double(), ours.double()
    x = torch.randn(2, 3, 56, 56, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-10)
        torch.testing.assert_close(ours.forward_features(x), theirs.forward_features(x).permute(0, 3, 1, 2))


@pytest.mark.slow
def test_swin_tiny_equals_timm():
    theirs, ours = _timm_pair("swin_tiny_patch4_window7_224")
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-5)


def test_windows_and_shifts():
    with torch.device("meta"):
        model = subband.create_model("swin_tiny_patch4_window7_224")
    got = [[(b.attn.window_size, b.attn.shift) for b in stage.blocks] for stage in model.layers]
    assert got[0] == [((7, 7), 0), ((7, 7), 3)] and got[2][4:] == [((7, 7), 0), ((7, 7), 3)]
    assert got[3] == [((7, 7), 0), ((7, 7), 0)], "the 7x7 map of stage 4 is one window, never shifted"
    small = SwinTransformer(img_size=32, embed_dim=16, depths=(2, 2), num_heads=(1, 2))  # maps 8 and 4
    assert [b.attn.window_size for b in small.layers[1].blocks] == [(4, 4), (4, 4)]
    assert [b.attn.shift for b in small.layers[1].blocks] == [0, 0]


def test_odd_input_sizes_are_padded():
    model = SwinTransformer(img_size=56, embed_dim=16, depths=(2, 2, 2), num_heads=(1, 2, 4), num_classes=3).eval()
    x = torch.randn(1, 3, 45, 61)
    assert torch.isfinite(model(x)).all()
    maps = subband.models._features.FeaturePyramid(model)(x)
    assert [tuple(m.shape[-2:]) for m in maps] == [(12, 16), (6, 8), (3, 4)]
