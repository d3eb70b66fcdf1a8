"""ChannelViT: every channel subset, one channel == a plain ViT on that channel (exact identity),
invariance to the order of the channels, HCS's two-level distribution (statistically) and its use in
training, the token layout, and the official checkpoint layouts.

(Outputs were also compared with the official ``hcs_channelvit_small`` given the same weights,
outside this suite since the official code is not a package: max |diff| <= 3.4e-6, all channels and
subsets, at 224, 96 and 32 pixels.)
"""

import itertools

import pytest
import torch

import subband
from subband.models.channelvit import ChannelViT, convert_official_state_dict, hierarchical_channel_sampling
from subband.models.vit import ViT

TINY = dict(img_size=32, patch_size=8, in_chans=3, embed_dim=32, depth=2, num_heads=2, num_classes=4)


def _model(**kw) -> ChannelViT:
    torch.manual_seed(0)
    model = ChannelViT(**{**TINY, **kw})
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # larger weights than the init, so every term shows in the outputs
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.2)
    return model.eval()


def test_parameter_counts_are_the_official_backbones_plus_heads():
    for name, backbone, head in [
        ("channelvit_small_patch16", 21_470_208, 385_000),
        ("channelvit_small_patch8", 21_624_192, 161 * 384 + 161),
    ]:
        with torch.device("meta"):
            model = subband.create_model(name)
        assert sum(p.numel() for p in model.parameters()) == backbone + head == subband.model_info(name).params


def test_runs_with_every_non_empty_subset_of_channels():
    model = _model()
    x = torch.randn(2, 3, 32, 32)
    outs = {}
    for k in (1, 2, 3):
        for subset in itertools.combinations(range(3), k):
            xi = x[:, list(subset)]
            y = model(xi, channels=list(subset))
            assert y.shape == (2, 4) and torch.isfinite(y).all()
            # the same indices given per sample
            torch.testing.assert_close(model(xi, channels=torch.tensor(subset).expand(2, -1)), y)
            tokens = model.forward_tokens(xi, channels=subset)
            assert tokens.shape == (2, 1 + k * 16, 32)
            outs[subset] = y
    assert len(outs) == 7
    # the channel embedding matters: channel 0's image read as channel 1 gives another output
    assert not torch.allclose(model(x[:, [0]], channels=[1]), outs[(0,)], atol=1e-4)
    torch.testing.assert_close(model(x), outs[(0, 1, 2)])  # default: channels 0..C-1


def test_one_channel_equals_a_plain_vit_on_that_channel():
    """Shared projection + channel embedding of channel c == a 1-channel ViT whose patch-conv bias
    absorbs the embedding; everything else is the same weights."""
    model = _model()
    x = torch.randn(2, 1, 32, 32)
    for c in range(3):
        vit = ViT(img_size=32, patch_size=8, in_chans=1, embed_dim=32, depth=2, num_heads=2, num_classes=4)
        state = {k: v for k, v in model.state_dict().items() if not k.startswith("patch_embed.")}
        state["patch_embed.proj.weight"] = model.patch_embed.proj.weight[:, :, 0]  # (D, 1, 1, p, p) -> (D, 1, p, p)
        state["patch_embed.proj.bias"] = model.patch_embed.proj.bias + model.patch_embed.channel_embed.weight[c]
        vit.load_state_dict(state, strict=True)
        torch.testing.assert_close(model(x, channels=[c]), vit.eval()(x))
        torch.testing.assert_close(model.forward_features(x, channels=[c]), vit.forward_features(x))


def test_channel_order_does_not_matter():
    model = _model()
    x = torch.randn(2, 3, 32, 32)
    ref = model(x)
    for perm in ([2, 0, 1], [1, 0, 2]):
        torch.testing.assert_close(model(x[:, perm], channels=perm), ref)
        torch.testing.assert_close(model.forward_features(x[:, perm], channels=perm), model.forward_features(x))


def test_forward_features_is_the_class_token_and_the_channel_mean():
    model = _model()
    x = torch.randn(2, 3, 32, 32)
    tokens = model.forward_tokens(x)  # (2, 1 + 3 * 16, 32)
    feats = model.forward_features(x)
    torch.testing.assert_close(feats[:, 0], tokens[:, 0])
    torch.testing.assert_close(feats[:, 1:], tokens[:, 1:].view(2, 3, 16, 32).mean(1))
    (last,) = model.forward_intermediates(x, [1])
    torch.testing.assert_close(last, feats[:, 1:].transpose(1, 2).reshape(2, 32, 4, 4))


def test_hcs_samples_the_count_uniformly_then_the_channels_uniformly():
    g = torch.Generator().manual_seed(0)
    c, n = 4, 4000
    draws = [hierarchical_channel_sampling(c, generator=g) for _ in range(n)]
    assert all(len(set(d.tolist())) == len(d) and 0 <= int(d.min()) and int(d.max()) < c for d in draws)
    # number of channels: uniform on 1..4 (expected 1000 each, sd 27; bound at 6 sd)
    counts = torch.bincount(torch.tensor([len(d) for d in draws]), minlength=c + 1)[1:]
    assert (counts - n / c).abs().max() < 6 * (n * 0.25 * 0.75) ** 0.5, counts
    # given two channels: each of the 6 pairs equally likely (expected ~167 each, sd ~12)
    pairs = [tuple(sorted(d.tolist())) for d in draws if len(d) == 2]
    per_pair = torch.tensor([pairs.count(p) for p in itertools.combinations(range(c), 2)], dtype=torch.float)
    assert (per_pair - len(pairs) / 6).abs().max() < 6 * (len(pairs) * (1 / 6) * (5 / 6)) ** 0.5, per_pair
    # the order is random too: of the pairs holding channel 3, about half list it first
    firsts = [d[0].item() == 3 for d in draws if len(d) == 2 and 3 in d.tolist()]
    assert abs(sum(firsts) / len(firsts) - 0.5) < 0.15


def test_training_mode_drops_channels_with_hcs_and_eval_does_not():
    model = _model()
    x = torch.randn(2, 3, 32, 32)
    for seed in range(4):
        torch.manual_seed(seed)
        keep = hierarchical_channel_sampling(3)
        torch.manual_seed(seed)
        y = model.train()(x)  # no dropout in TINY: only HCS differs from eval
        torch.testing.assert_close(y, model.eval()(x[:, keep], channels=keep))
    model.hcs = False
    torch.testing.assert_close(model.train()(x), model.eval()(x))


def test_channel_arguments_are_checked():
    model = _model()
    x = torch.randn(2, 2, 32, 32)
    with pytest.raises(ValueError, match="indices"):
        model(x, channels=[0, 1, 2])
    with pytest.raises(ValueError, match="0..2"):
        model(x, channels=[0, 3])
    with pytest.raises(ValueError, match="knows 3"):
        model(torch.randn(1, 4, 32, 32))


def test_official_checkpoint_layouts_convert():
    model = _model()
    state = model.state_dict()
    # the supervised module (backbone. / classifier.) with the non-HCS channel embedding (1, D, C, 1, 1)
    official = {f"backbone.{k}": v for k, v in state.items() if not k.startswith("head.")}
    table = official.pop("backbone.patch_embed.channel_embed.weight")  # (C, D)
    official["backbone.patch_embed.channel_embed"] = table.t()[None, :, :, None, None]
    official.update({f"classifier.{k[5:]}": v for k, v in state.items() if k.startswith("head.")})
    converted = convert_official_state_dict(official)
    assert converted.keys() == state.keys()
    for k, v in state.items():
        torch.testing.assert_close(converted[k], v)
