"""A priori compressed convolution against its rebuilt kernel; the wave simulator against the
scheme's exact dispersion relation."""

import math

import pytest
import torch
import torch.nn.functional as F

from subband.compress import FactorizedConv2d, discrete_wave_frequency, wave_equation_dataset, wave_step


@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 0), (1, 2)])
def test_factorized_conv_equals_conv_with_its_kernel(stride, padding):
    torch.manual_seed(0)
    conv = FactorizedConv2d(5, 7, 3, rank=4, stride=stride, padding=padding).double()
    x = torch.randn(2, 5, 11, 11, dtype=torch.float64)
    want = F.conv2d(x, conv.kernel(), conv.last.bias, stride=stride, padding=padding)
    torch.testing.assert_close(conv(x), want)
    n = sum(p.numel() for p in conv.parameters())
    assert n == 4 * (5 + 3 + 3 + 7) + 7 < 7 * 5 * 9 + 7
    assert torch.autograd.gradcheck(lambda t: conv(t), (x[:1, :, :6, :6].clone().requires_grad_(),))


def test_wave_scheme_follows_its_dispersion_relation():
    """A standing mode sin(kx x) sin(ky y) started at rest evolves as cos(w t) with the scheme's
    discrete frequency, to rounding."""
    n, c = 32, 0.5
    kx, ky = 2 * math.pi * 3 / n, 2 * math.pi * 5 / n
    y, x = torch.meshgrid(torch.arange(n, dtype=torch.float64), torch.arange(n, dtype=torch.float64), indexing="ij")
    mode = torch.sin(kx * x) * torch.sin(ky * y)
    w = discrete_wave_frequency(kx, ky, c)
    u, prev = mode.clone(), mode * math.cos(w)  # exact state one step back
    for t in range(1, 60):
        u, prev = wave_step(u, prev, c), u
        torch.testing.assert_close(u, mode * math.cos(w * t), atol=1e-10, rtol=0)


def test_dataset_shapes_and_energy_stays_bounded():
    g = torch.Generator().manual_seed(0)
    x, y = wave_equation_dataset(8, size=24, horizon=5, generator=g)
    assert x.shape == (8, 2, 24, 24) and y.shape == (8, 1, 24, 24)
    assert torch.isfinite(y).all() and y.abs().max() <= 3 * x.abs().max()
    with pytest.raises(ValueError, match="courant"):
        wave_equation_dataset(1, courant=0.9)
