"""One contract, tested over every registered model."""

import pytest
import torch

import subband

MODELS = subband.list_models()


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", MODELS)
def test_paper_metadata(name):
    paper = subband.model_info(name)
    assert paper.title and paper.arxiv and paper.source


@pytest.mark.parametrize("name", MODELS)
def test_params_match_the_paper(name):
    paper = subband.model_info(name)
    if paper.params is None:
        pytest.skip("the paper reports no parameter count")
    counted = _count(subband.create_model(name))
    tol = 0.01 if paper.params_exact else 0.05
    assert abs(counted - paper.params) <= tol * paper.params, f"{name}: {counted} counted, paper {paper.params}"


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_reaches_every_parameter(name):
    torch.manual_seed(0)
    model = subband.create_model(name)
    if hasattr(model, "upscale"):  # super-resolution: LR in, SR out
        x = torch.rand(2, model.in_channels, 9, 7)
        y = model(x)
        assert y.shape == (2, model.in_channels, 9 * model.upscale, 7 * model.upscale)
    elif hasattr(model, "forward_features"):  # classifier
        x = torch.randn(2, 3, 32, 32)
        y = model(x)
        assert y.shape == (2, model.num_classes)
    else:
        raise AssertionError(f"{name}: no contract case for this kind of model yet")
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"no gradient reaches {dead}"


def test_registry_behaviour():
    assert subband.list_models("espcn_*") == ["espcn_x2", "espcn_x3", "espcn_x4"]
    with pytest.raises(ValueError, match="unknown model 'espcn_x5'.*espcn_x2"):
        subband.create_model("espcn_x5")
    with pytest.raises(ValueError, match="already registered"):
        subband.register_model(subband.model_info("espcn_x3"), name="espcn_x3")(lambda **kw: None)
    m = subband.create_model("espcn_x3", in_channels=3)
    assert m.config == {"name": "espcn_x3", "overrides": {"in_channels": 3}}


CLASSIFIERS = [n for n in MODELS if hasattr(subband.create_model(n), "forward_features")]


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifier_interface(name):
    model = subband.create_model(name).eval()
    x = torch.randn(2, 3, 32, 32)
    feats = model.forward_features(x)
    assert feats.shape[:2] == (2, model.num_features)
    info = model.feature_info[-1]
    assert info["num_chs"] == model.num_features and feats.shape[-1] == 32 // info["reduction"]
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

    model = subband.create_model(name)
    assert count_gmacs(model, default_input(model)) == pytest.approx(subband.model_info(name).gflops, rel=0.02)
