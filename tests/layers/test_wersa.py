"""WERSA: the random-feature estimator converges to softmax attention, the Haar re-weighting is the
identity at unit weights, causality, gradients and errors."""

import pytest
import torch

from subband.layers import WERSA, attend
from subband.layers.wersa import positive_random_features, random_feature_attention


def _softmax_vs_features(m: int, causal: bool = False) -> float:
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 50, 8, generator=g, dtype=torch.float64) * 0.5 for _ in range(3))
    w = torch.randn(m, 8, generator=g, dtype=torch.float64)
    s = 8**0.25
    approx = random_feature_attention(
        positive_random_features(q / s, w, True), positive_random_features(k / s, w, False), v, causal
    )
    mask = torch.ones(50, 50, dtype=torch.bool).tril() if causal else None
    exact = attend(q, k, v, bias=mask)
    return float((approx - exact).abs().mean())


@pytest.mark.parametrize("causal", [False, True])
def test_random_features_converge_to_softmax_attention(causal):
    errors = [_softmax_vs_features(m, causal) for m in (16, 256, 8192)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.02


def test_haar_reweighting_at_unit_weights_is_the_identity():
    torch.manual_seed(0)
    layer = WERSA(32, num_heads=4, levels=3, features=16).double()
    x = torch.randn(2, 4, 37, 8, dtype=torch.float64)  # odd length: periodization pads, we crop
    ones = torch.ones(2, 4, 1, 4, dtype=torch.float64)
    torch.testing.assert_close(layer._reweight(x, ones), x)
    halved = ones.clone()
    halved[..., 0] = 0.5  # the approximation band only
    y = layer._reweight(x, halved)
    torch.testing.assert_close(y.mean(2), 0.5 * x.mean(2), atol=0.2, rtol=0)  # the mean lives in the approximation
    assert not torch.allclose(y, x)


def test_causal_outputs_ignore_the_future():
    torch.manual_seed(0)
    layer = WERSA(16, num_heads=2, levels=0, features=32, causal=True).double()
    x = torch.randn(1, 20, 16, dtype=torch.float64)
    y = layer(x)
    x2 = x.clone()
    x2[:, 12:] = torch.randn(1, 8, 16, dtype=torch.float64)
    torch.testing.assert_close(layer(x2)[:, :12], y[:, :12])


def test_shapes_gradcheck_and_errors():
    torch.manual_seed(0)
    layer = WERSA(8, num_heads=2, levels=2, features=8).double()
    with torch.no_grad():
        layer.scale_gain.uniform_(0.5, 1.5)
    x = torch.randn(1, 10, 8, dtype=torch.float64, requires_grad=True)
    assert layer(x).shape == (1, 10, 8)
    assert torch.autograd.gradcheck(layer, (x,))
    with pytest.raises(ValueError, match="divisible"):
        WERSA(10, num_heads=3)
    with pytest.raises(ValueError, match="levels"):
        WERSA(8, num_heads=2, levels=-1)
