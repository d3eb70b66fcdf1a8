"""Off-the-shelf features: what is pooled, and a linear probe that beats chance and raw pixels on
a case built so that it must."""

import pytest
import torch
from torch import nn

import subband
from subband.interpret import extract_features, linear_probe


def test_pooled_features_of_classifiers_and_modules():
    torch.manual_seed(0)
    model = subband.create_model("convnext_atto", num_classes=7).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        want = model.forward_head(model.forward_features(x), pre_logits=True)
        stage1 = model.forward_intermediates(x, [1])[0].mean((2, 3))
    torch.testing.assert_close(extract_features(model, x, batch_size=2), want)
    torch.testing.assert_close(extract_features(model, x, stage=1), stage1)
    conv = nn.Conv2d(3, 5, 3)
    torch.testing.assert_close(extract_features(conv, x), conv(x).mean((2, 3)).detach())
    with pytest.raises(ValueError, match="forward_intermediates"):
        extract_features(conv, x, stage=0)


def test_linear_probe_on_features_that_carry_the_label():
    """Pixels: noise with the class hidden in one pixel's sign pattern (not linearly separable);
    features: a product of two pixels, which is. The probe must see the difference."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 1, 4, 4, generator=g)
    y = (x[:, 0, 0, 0] * x[:, 0, 1, 1] > 0).long()
    feats = torch.stack([x[:, 0, 0, 0] * x[:, 0, 1, 1], torch.randn(600, generator=g)], 1)
    pixel_acc = linear_probe(x[:400], y[:400], x[400:], y[400:])
    feat_acc = linear_probe(feats[:400], y[:400], feats[400:], y[400:])
    assert feat_acc > 0.95 and pixel_acc < 0.7
