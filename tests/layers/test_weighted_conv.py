"""Weighted convolution: equal to the plain convolution of the explicitly weighted kernel (density
written out in numpy), ones == plain conv, same parameters as nn.ConvNd, module == function,
gradcheck with a trainable density, fused == unfused, official state dicts, clear errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from subband.layers import WeightedConv1d, WeightedConv2d, WeightedConv3d, weighted_conv, weighted_conv_density
from tests.tolerances import assert_close

CASES = {
    1: (WeightedConv1d, nn.Conv1d, F.conv1d),
    2: (WeightedConv2d, nn.Conv2d, F.conv2d),
    3: (WeightedConv3d, nn.Conv3d, F.conv3d),
}


pytestmark = pytest.mark.usefixtures("one_thread")


def _phi(den, ndim):
    """alpha = [den, 1, reversed(den)]; Phi[i, j, ...] = alpha[i] * alpha[j] * ..."""
    alpha = np.array([*den, 1.0, *den[::-1]])
    phi = np.ones([len(alpha)] * ndim)
    for idx in np.ndindex(phi.shape):
        phi[idx] = np.prod(alpha[list(idx)])
    return phi


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("trainable", [False, True])
def test_equals_conv_with_the_weighted_kernel(ndim, trainable):
    torch.manual_seed(ndim)
    cls, _, conv = CASES[ndim]
    den = [0.25, 0.125, 0.5] if ndim < 3 else [0.125, 0.75]  # exact in float32
    k = 2 * len(den) + 1
    layer = cls(4, 6, k, stride=2, padding=3, dilation=1, groups=2, den=den, trainable=trainable).double()
    nn.init.normal_(layer.bias)
    x = torch.randn(2, 4, *([11] * ndim), dtype=torch.float64)
    weighted = layer.weight * torch.as_tensor(_phi(den, ndim))
    assert_close(layer.density(), _phi(den, ndim))
    assert_close(layer(x), conv(x, weighted, layer.bias, 2, 3, 1, 2))
    assert_close(
        layer(x), weighted_conv(x, layer.weight, torch.tensor(den, dtype=torch.float64), layer.bias, 2, 3, 1, 2)
    )


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_density_of_ones_is_the_plain_convolution_with_the_same_parameters(ndim):
    torch.manual_seed(0)
    cls, plain_cls, _ = CASES[ndim]
    layer, plain = (
        cls(3, 5, 5, padding=2, padding_mode="reflect"),
        plain_cls(3, 5, 5, padding=2, padding_mode="reflect"),
    )
    assert [p.shape for p in layer.parameters()] == [p.shape for p in plain.parameters()]
    plain.load_state_dict(layer.state_dict(), strict=False)  # weight, bias; alfa and Phi are buffers
    x = torch.randn(2, 3, *([9] * ndim))
    torch.testing.assert_close(layer(x), plain(x), rtol=0, atol=0)
    trainable = cls(3, 5, 5, trainable=True)
    assert sum(p.numel() for p in trainable.parameters()) == sum(p.numel() for p in plain.parameters()) + 2


def test_trainable_density_gradcheck_and_gradient():
    torch.manual_seed(1)
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    den = torch.tensor([0.3, 0.8], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, d: weighted_conv(x, w, d, padding=1), (x, w, den))
    layer = WeightedConv2d(2, 3, 7, den=(0.27, 0.17, 0.54), trainable=True)
    layer(torch.randn(2, 2, 9, 9)).square().sum().backward()
    assert layer.den.grad is not None and (layer.den.grad != 0).all()
    fixed = WeightedConv2d(2, 3, 7, den=(0.27, 0.17, 0.54))
    assert [n for n, _ in fixed.named_parameters()] == ["weight", "bias"]


@pytest.mark.parametrize("trainable", [False, True])
def test_fused_equals_unfused_and_its_state_dict_still_describes_it(trainable):
    torch.manual_seed(2)
    layer = WeightedConv2d(4, 8, 5, padding=2, den=(0.2, 0.8), trainable=trainable)
    x = torch.randn(2, 4, 12, 12)
    with pytest.raises(RuntimeError, match="eval"):
        layer.fuse()
    layer.eval()
    want = layer(x)
    layer.fuse()
    assert layer.fused and "fused" in repr(layer)
    torch.testing.assert_close(layer(x), want, rtol=1e-5, atol=1e-5)
    fresh = WeightedConv2d(4, 8, 5, padding=2, den=(0.5, 0.5), trainable=trainable)
    fresh.load_state_dict(layer.state_dict())
    torch.testing.assert_close(fresh(x), want, rtol=1e-5, atol=1e-5)


def test_official_fixed_state_dict_loads_unchanged():
    """The official wConv2d stores weight, bias and the buffers alfa and Phi = outer(alfa, alfa)."""
    torch.manual_seed(3)
    den = [0.7]
    alfa = torch.tensor([*den, 1.0, *den])
    official = {"weight": torch.randn(4, 2, 3, 3), "bias": torch.randn(4), "alfa": alfa, "Phi": torch.outer(alfa, alfa)}
    layer = WeightedConv2d(2, 4, 3, padding=1, den=den)
    layer.load_state_dict(official)  # strict
    x = torch.randn(1, 2, 6, 6)
    torch.testing.assert_close(layer(x), F.conv2d(x, official["weight"] * official["Phi"], official["bias"], padding=1))


def test_errors():
    with pytest.raises(ValueError, match="odd and the same on every axis"):
        WeightedConv2d(2, 2, 4)
    with pytest.raises(ValueError, match="odd and the same on every axis"):
        WeightedConv2d(2, 2, (3, 5))
    with pytest.raises(ValueError, match="needs 2 den values"):
        WeightedConv2d(2, 2, 5, den=[0.5])
    with pytest.raises(ValueError, match="needs 0 den values"):
        WeightedConv1d(2, 2, 1, den=[0.5])
    with pytest.raises(ValueError, match="one-dimensional"):
        weighted_conv_density(torch.ones(2, 2), 2)
    with pytest.raises(ValueError, match="ndim must be"):
        weighted_conv_density(torch.ones(2), 4)
    with pytest.raises(ValueError, match="needs 1 den values"):
        weighted_conv(torch.randn(1, 1, 5, 5), torch.randn(1, 1, 3, 3), torch.ones(2))
