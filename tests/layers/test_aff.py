"""The AFF mixer is a global dynamic convolution: x + (circular convolution of x with the kernel
its own spectrum produced), checked against an explicit circular convolution."""

import pytest
import torch

from subband.layers import AFFMixer


def _circular_conv(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """sum_{a,b} k[a, b] x[i - a, j - b] (mod H, W), per sample and channel, written out."""
    out = torch.zeros_like(x)
    for a in range(x.shape[-2]):
        for b in range(x.shape[-1]):
            out += k[..., a : a + 1, b : b + 1] * torch.roll(x, (a, b), (-2, -1))
    return out


@pytest.mark.parametrize("size", [(6, 8), (5, 7)])
def test_mixer_is_a_global_dynamic_convolution(size):
    torch.manual_seed(0)
    mixer = AFFMixer(8, num_blocks=2, sparsity_threshold=0.0).double()
    with torch.no_grad():
        for p in mixer.parameters():
            p.normal_(std=0.5)
    x = torch.randn(2, 8, *size, dtype=torch.float64)
    torch.testing.assert_close(mixer(x), x + _circular_conv(x, mixer.kernel(x)))
    x2 = torch.randn_like(x)
    assert not torch.allclose(mixer.kernel(x), mixer.kernel(x2))  # the filter adapts to the input


def test_soft_shrinkage_zeroes_small_mask_entries_and_gradcheck():
    torch.manual_seed(0)
    mixer = AFFMixer(4, num_blocks=2, sparsity_threshold=0.05).double()
    x = torch.randn(1, 4, 4, 6, dtype=torch.float64, requires_grad=True)
    m = mixer.mask(torch.fft.rfft2(x, norm="ortho"))
    assert (m == 0).float().mean() > 0.3  # with the official 0.02 init most entries are shrunk to 0
    with torch.no_grad():
        for p in mixer.parameters():
            p.normal_(std=0.5)
    assert torch.autograd.gradcheck(mixer, (x,))
    with pytest.raises(ValueError, match="divisible"):
        AFFMixer(10, num_blocks=4)
