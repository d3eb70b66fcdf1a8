"""ConvNeXt: timm parity given the same weights (where timm imports), the official checkpoint
key mapping, and the block's training-time pieces."""

import pytest
import torch

import subband
from subband.models.convnext import ConvNeXt, convert_official_state_dict


@pytest.mark.parametrize("name", ["convnext_atto", "convnext_tiny"])
def test_timm_state_dict_loads_and_gives_the_same_logits(name):
    timm = pytest.importorskip("timm")
    ref = timm.create_model(name).eval()
    ours = subband.create_model(name).eval()
    ours.load_state_dict(ref.state_dict())  # strict: every key and shape as timm's
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
        feats = ref.forward_intermediates(x, intermediates_only=True)
        for a, b in zip(subband.create_model(name, features_only=True).eval()(x), feats):
            assert a.shape == b.shape


def _official_keys(depths, dims):
    """Parameter names of facebookresearch/ConvNeXt's model, written out from its layout."""
    keys = {"downsample_layers.0.0.weight", "downsample_layers.0.0.bias"}
    keys |= {"downsample_layers.0.1.weight", "downsample_layers.0.1.bias"}
    for i in range(1, len(depths)):
        keys |= {f"downsample_layers.{i}.{j}.{p}" for j in (0, 1) for p in ("weight", "bias")}
    for i, d in enumerate(depths):
        for j in range(d):
            keys.add(f"stages.{i}.{j}.gamma")
            for layer in ("dwconv", "norm", "pwconv1", "pwconv2"):
                keys |= {f"stages.{i}.{j}.{layer}.weight", f"stages.{i}.{j}.{layer}.bias"}
    return keys | {"norm.weight", "norm.bias", "head.weight", "head.bias"}


def test_official_checkpoint_keys_convert():
    depths, dims = (1, 2, 1, 1), (8, 16, 24, 32)
    model = ConvNeXt(depths, dims, num_classes=5)
    keys = _official_keys(depths, dims)
    converted = convert_official_state_dict({k: k for k in keys})
    assert set(converted) == set(model.state_dict())
    # one-to-one, so a renamed copy of the model's own weights loads back into a fresh model
    official = {converted[k]: v.clone() for k, v in model.state_dict().items()}
    fresh = ConvNeXt(depths, dims, num_classes=5)
    fresh.load_state_dict(convert_official_state_dict(official))
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(fresh.eval()(x), model.eval()(x))


def test_layer_scale_drop_path_and_errors():
    model = ConvNeXt((2, 2), (8, 16), num_classes=3, drop_path_rate=0.3, ls_init_value=None)
    rates = [b.drop_path.p for s in model.stages for b in s.blocks]
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert all(b.gamma is None for s in model.stages for b in s.blocks)
    x = torch.randn(4, 3, 32, 32)
    model.eval()
    torch.testing.assert_close(model(x), model(x))  # stochastic depth is off in eval
    model.train()
    torch.manual_seed(0)
    a = model(x)
    torch.manual_seed(1)
    assert not torch.allclose(a, model(x))  # and on in training
    with pytest.raises(ValueError, match="same length"):
        ConvNeXt((2, 2, 2), (8, 16))


def test_channels_last_changes_nothing():
    torch.manual_seed(0)
    model = subband.create_model("convnext_atto", num_classes=7).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model.stages(model.stem(x))  # NCHW throughout
        torch.testing.assert_close(model.forward_features(x), ref, rtol=1e-5, atol=1e-5)
