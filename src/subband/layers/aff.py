"""The adaptive frequency filtering (AFF) token mixer ("Adaptive Frequency Filters As Efficient
Global Token Mixers", Huang, Zhang, Sun, Chen, Lu, Zhou, Zhang; ICCV 2023, arXiv 2307.14008).

The map goes to the frequency domain (``rfft2``, orthonormal); a semantic-adaptive mask is computed
from that spectrum by a two-layer complex MLP whose weights are block-diagonal over ``num_blocks``
channel groups (ReLU between, soft-shrinkage after: many mask entries become exactly zero); the
spectrum is multiplied by the mask, transformed back, and added to the input:

    y = x + irfft2(M(X) * X),    X = rfft2(x).

Multiplying spectra is circular convolution, so the mixer is a *global dynamic convolution*: its
output equals ``x`` plus the circular convolution of each channel with the kernel
``irfft2(M(X))`` that this very input produced (:meth:`AFFMixer.kernel`; the tests check it
against an explicit circular convolution). Parameter names and initialisation follow the official
``AFNO2D_channelfirst`` (microsoft/TokenMixers).

Shape:
    ``(B, C, H, W) -> (B, C, H, W)``; ``C`` divisible by ``num_blocks``.

Example:
    >>> mixer = AFFMixer(32, num_blocks=8)
    >>> mixer(torch.randn(2, 32, 14, 14)).shape
    torch.Size([2, 32, 14, 14])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AFFMixer"]


def _fft_dtype(x: torch.Tensor) -> torch.Tensor:
    """Half precision goes through the FFT in float32 (as the official code, under autocast)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


class AFFMixer(nn.Module):
    """AFF token mixer.

    Args:
        dim: channels ``C``.
        num_blocks: channel groups of the block-diagonal complex MLP.
        hidden_factor: hidden width of the MLP over the group width.
        sparsity_threshold: soft-shrinkage threshold of the mask.
    """

    def __init__(self, dim: int, num_blocks: int = 8, hidden_factor: int = 1, sparsity_threshold: float = 0.01) -> None:
        super().__init__()
        if dim % num_blocks:
            raise ValueError(f"dim ({dim}) must be divisible by num_blocks ({num_blocks})")
        self.dim, self.num_blocks, self.block = dim, num_blocks, dim // num_blocks
        self.hidden = self.block * hidden_factor
        self.sparsity_threshold = sparsity_threshold
        # (real, imaginary) x blocks x in x out, as the official parameters
        self.w1 = nn.Parameter(torch.empty(2, num_blocks, self.block, self.hidden))
        self.b1 = nn.Parameter(torch.empty(2, num_blocks, self.hidden))
        self.w2 = nn.Parameter(torch.empty(2, num_blocks, self.hidden, self.block))
        self.b2 = nn.Parameter(torch.empty(2, num_blocks, self.block))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in (self.w1, self.b1, self.w2, self.b2):
            nn.init.normal_(p, std=0.02)

    def mask(self, spectrum: torch.Tensor) -> torch.Tensor:
        """The complex mask ``M(X)`` for a spectrum ``(B, C, H, W//2 + 1)``."""
        b, c, h, w = spectrum.shape
        z = spectrum.reshape(b, self.num_blocks, self.block, h, w)  # (B, k, i, h, w)

        def linear(re, im, weight, bias):  # complex block-diagonal 1x1 map
            out_re = torch.einsum("bkihw,kio->bkohw", re, weight[0]) - torch.einsum("bkihw,kio->bkohw", im, weight[1])
            out_im = torch.einsum("bkihw,kio->bkohw", im, weight[0]) + torch.einsum("bkihw,kio->bkohw", re, weight[1])
            return out_re + bias[0][:, :, None, None], out_im + bias[1][:, :, None, None]

        re, im = linear(z.real, z.imag, self.w1, self.b1)
        re, im = linear(F.relu(re), F.relu(im), self.w2, self.b2)
        m = F.softshrink(torch.stack([re, im], -1), self.sparsity_threshold)
        return torch.view_as_complex(m.contiguous()).reshape(b, c, h, w)

    def kernel(self, x: torch.Tensor) -> torch.Tensor:
        """The ``(B, C, H, W)`` circular-convolution kernel the mixer applies to ``x``."""
        xf = torch.fft.rfft2(_fft_dtype(x), norm="ortho")
        return torch.fft.irfft2(self.mask(xf), s=x.shape[-2:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        xf = torch.fft.rfft2(_fft_dtype(x), norm="ortho")  # (B, C, H, W//2 + 1)
        y = torch.fft.irfft2(self.mask(xf) * xf, s=x.shape[-2:], norm="ortho")
        return x + y.to(dtype)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_blocks={self.num_blocks}, sparsity_threshold={self.sparsity_threshold}"
