"""One contract, tested over every registered model."""

import math

import pytest
import torch

import subband
from subband.models._features import FeaturePyramid

MODELS = subband.list_models()


def _cases(names: list[str]) -> list:
    """Models above 30M parameters (widths of a family whose smaller members run by default) are
    `slow` in the tests that build and run them; their counts and FLOPs are checked on meta."""
    big = [n for n in names if _size(n) > 30e6]
    return [pytest.param(n, marks=pytest.mark.slow) if n in big else n for n in names]


def _size(name: str) -> int:
    """The paper's parameter count, or the model's own (counted on meta) where the paper gives none."""
    return subband.model_info(name).params or _count(_meta(name))


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _meta(name: str, **overrides) -> torch.nn.Module:
    """The model with parameters on the meta device: shapes and FLOPs at no memory or init cost."""
    with torch.device("meta"):
        return subband.create_model(name, **overrides)


def _deployed(name: str) -> torch.nn.Module:
    """The model as papers count it: after ``fuse()`` (re-parameterised) where it has one."""
    model = _meta(name).eval()
    if hasattr(model, "fuse"):
        with torch.device("meta"):
            model.fuse()
    return model


@pytest.mark.parametrize("name", MODELS)
def test_paper_metadata(name):
    paper = subband.model_info(name)
    assert paper.title and paper.arxiv and paper.source


@pytest.mark.parametrize("name", MODELS)
def test_params_match_the_paper(name):
    paper = subband.model_info(name)
    if paper.params is None:
        pytest.skip("the paper reports no parameter count")
    counted = _count(_deployed(name))
    tol = 0.01 if paper.params_exact else 0.05
    assert abs(counted - paper.params) <= tol * paper.params, f"{name}: {counted} counted, paper {paper.params}"


@pytest.mark.parametrize("name", _cases(MODELS))
def test_forward_backward_reaches_every_parameter(name):
    torch.manual_seed(0)
    model = subband.create_model(name)
    if hasattr(model, "upscale"):  # super-resolution: LR in, SR out
        x = torch.rand(2, model.in_channels, 9, 7)
        y = model(x)
        assert y.shape == (2, model.in_channels, 9 * model.upscale, 7 * model.upscale)
    elif hasattr(model, "forward_features"):  # classifier
        x = torch.randn(2, 3, _side(model), _side(model))
        y = model(x)
        assert y.shape == (2, model.num_classes)
    elif hasattr(model, "num_classes"):  # segmentation: per-pixel scores at the input size
        d = model.size_divisor
        x = torch.randn(2, 3, d, 2 * d)
        y = model(x)
        assert y.shape == (2, model.num_classes, d, 2 * d)
    else:
        raise AssertionError(f"{name}: no contract case for this kind of model yet")
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    # connected to the output (zero-initialised scales, as in LSNet, may make a gradient exactly 0)
    dead = [n for n, p in model.named_parameters() if p.grad is None]
    assert not dead, f"no gradient reaches {dead}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_registry_behaviour():
    assert subband.list_models("espcn_*") == ["espcn_x2", "espcn_x3", "espcn_x4"]
    with pytest.raises(ValueError, match="unknown model 'espcn_x5'.*espcn_x2"):
        subband.create_model("espcn_x5")
    with pytest.raises(ValueError, match="already registered"):
        subband.register_model(subband.model_info("espcn_x3"), name="espcn_x3")(lambda **kw: None)
    m = subband.create_model("espcn_x3", in_channels=3)
    assert m.config == {"name": "espcn_x3", "overrides": {"in_channels": 3}}


CLASSIFIERS = [n for n in MODELS if hasattr(_meta(n), "forward_features")]


def _side(model: torch.nn.Module) -> int:
    """A small input side that still leaves the coarsest feature map at least one pixel."""
    return max(32, model.feature_info[-1]["reduction"])


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _as_map(model: torch.nn.Module, feats: torch.Tensor) -> torch.Tensor:
    """``forward_features`` as a map. Token models (timm's layout: ``num_prefix_tokens`` class/extra
    tokens, then the patch tokens, ``(B, N, C)``) give their square grid of patch tokens as ``(B, C, h, w)``."""
    n = getattr(model, "num_prefix_tokens", None)
    if n is None:
        return feats
    b, t, c = feats.shape
    side = math.isqrt(t - n)
    assert side * side == t - n, f"{t - n} patch tokens are not a square grid"
    return feats[:, n:].transpose(1, 2).reshape(b, c, side, side)  # (B, n + h*w, C) -> (B, C, h, w)


@pytest.mark.parametrize("name", _cases(CLASSIFIERS))
def test_classifier_interface(name):
    model = subband.create_model(name).eval()
    side = _side(model)
    x = torch.randn(2, 3, side, side)
    feats = model.forward_features(x)
    fmap = _as_map(model, feats)
    assert fmap.shape[:2] == (2, model.num_features)
    info = model.feature_info[-1]
    assert info["num_chs"] == model.num_features and fmap.shape[-1] == _ceil(side, info["reduction"])
    pooled = model.forward_head(feats, pre_logits=True)
    assert pooled.shape == (2, model.num_features)
    torch.testing.assert_close(model.forward_head(feats), model(x))
    model.reset_classifier(5)
    assert model.num_classes == 5 and model(x).shape == (2, 5)
    model.reset_classifier(0)
    assert model(x).shape == (2, model.num_features)


@pytest.mark.parametrize("name", [n for n in MODELS if subband.model_info(n).gflops])
def test_macs_match_the_paper(name):
    from subband.models._profile import count_gmacs, default_input

    model = _deployed(name)
    with torch.device("meta"):
        x = default_input(model)
    assert count_gmacs(model, x) == pytest.approx(subband.model_info(name).gflops, rel=0.02)


@pytest.mark.parametrize("name", _cases(CLASSIFIERS))
def test_features_only_pyramid(name):
    full = subband.create_model(name).eval()
    side = _side(full)
    x = torch.randn(2, 3, side, side)
    last = full.forward_features(x)
    taps = full.feature_info
    net = FeaturePyramid(full)  # what create_model(name, features_only=True) returns
    maps = net(x)
    assert len(maps) == len(net.feature_info) == len(taps)
    for fmap, info in zip(maps, net.feature_info):
        assert fmap.shape == (2, info["num_chs"], _ceil(side, info["reduction"]), _ceil(side, info["reduction"]))
    torch.testing.assert_close(maps[-1], _as_map(full, last))  # the last tap is what forward_features returns
    # a subset prunes the layers after the last tap, and every remaining parameter is used
    size = _count(net)
    first = FeaturePyramid(net.model, out_indices=(0,))
    assert first.feature_info.channels() == [taps[0]["num_chs"]] and _count(first) < size
    (fmap,) = first(x)
    fmap.square().mean().backward()
    assert all(p.grad is not None for p in first.parameters())


def test_features_only_arguments():
    net = subband.create_model("convnext_atto", features_only=True, out_indices=(1, 3))
    assert isinstance(net, FeaturePyramid) and net.feature_info.reduction() == [8, 32]
    assert net.config == {"name": "convnext_atto", "overrides": {"features_only": True, "out_indices": (1, 3)}}
    with pytest.raises(ValueError, match="features_only"):
        subband.create_model("espcn_x2", features_only=True)
    with pytest.raises(ValueError, match="out_indices only applies"):
        subband.create_model(CLASSIFIERS[0], out_indices=(0,))
    with pytest.raises(ValueError, match="feature maps 0.."):
        subband.create_model(CLASSIFIERS[0], features_only=True, out_indices=(99,))
    last = len(subband.create_model(CLASSIFIERS[0]).feature_info) - 1
    assert subband.create_model(CLASSIFIERS[0], features_only=True, out_indices=(-1,)).out_indices == (last,)
    assert subband.create_model(CLASSIFIERS[0], features_only=True, out_indices=2).out_indices == (last - 1, last)


def test_macs_count_attention_on_cpu_as_on_meta():
    """On CPU, SDPA runs a fused kernel the flop counter does not know; the count adds it."""
    from subband.models._profile import count_gmacs

    attn = subband.layers.Attention(64, 4)
    x = torch.randn(2, 50, 64)
    with torch.device("meta"):
        attn_meta, x_meta = subband.layers.Attention(64, 4), torch.randn(2, 50, 64)
    products = 2 * 50 * 50 * 64 * 2  # q k^T and (attention) v, batch 2, all heads
    linear = 2 * 50 * (64 * 192 + 64 * 64)
    assert count_gmacs(attn, x) == count_gmacs(attn_meta, x_meta) == pytest.approx((products + linear) / 1e9)
