"""The WaveMix token mixer (Jeevan et al., "WaveMix: A Resource-efficient Neural Network for Image
Analysis", arXiv 2205.14375).

A 1x1 convolution reduces ``C`` channels to ``C/4``; a ``levels``-level 2-D Haar DWT turns them into
``C`` channels (approximation + three details) at each scale ``H/2^j``; per scale an MLP of 1x1
convolutions (``C -> mult C -> ff_channel``) and a 4x4 stride-2 transposed convolution bring the
features one scale up, where they join the next finer scale; the finest output has ``C`` channels
at ``H x W``. The caller adds the residual.

Shape:
    ``(B, C, H, W) -> (B, C, H, W)``; ``H`` and ``W`` divisible by ``2**levels``; ``C`` by 4.

Example:
    >>> block = WaveMixBlock(dim=64, levels=2)
    >>> block(torch.randn(2, 64, 16, 16)).shape
    torch.Size([2, 64, 16, 16])
"""

from __future__ import annotations

import torch
from torch import nn

from ..wavelets import DWT2d

__all__ = ["WaveMixBlock"]


def _feedforward(c_in: int, dim: int, mult: int, ff_channel: int, c_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, dim * mult, 1),
        nn.GELU(),
        nn.Dropout(dropout),
        nn.Conv2d(dim * mult, ff_channel, 1),
        nn.ConvTranspose2d(ff_channel, c_out, 4, stride=2, padding=1),  # (h, w) -> (2h, 2w)
        nn.BatchNorm2d(c_out),
    )


class WaveMixBlock(nn.Module):
    """WaveMix mixing block (without the residual).

    Args:
        dim: channels ``C`` in and out (divisible by 4).
        levels: DWT levels (1 for WaveMix-Lite).
        mult: MLP expansion.
        ff_channel: MLP output channels before the transposed convolution.
        dropout: dropout after the MLP's activation.

    Parameter names follow the official code (``reduction``, ``feedforward`` for one level,
    ``feedforward1..L`` for more), so its state dicts load unchanged.
    """

    def __init__(self, dim: int, levels: int = 1, mult: int = 2, ff_channel: int | None = None, dropout: float = 0.5):
        super().__init__()
        if dim % 4:
            raise ValueError(f"dim must be divisible by 4, got {dim}")
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        ff_channel = ff_channel or dim
        self.dim, self.levels = dim, levels
        self.reduction = nn.Conv2d(dim, dim // 4, 1)
        self.dwt = DWT2d("haar", level=1, mode="zero")  # applied once per scale
        for j in range(1, levels + 1):  # scale j: input C (+ C/2 from scale j+1), output C at j=1 else C/2
            c_in = dim + (dim // 2 if j < levels else 0)
            c_out = dim if j == 1 else dim // 2
            name = "feedforward" if levels == 1 else f"feedforward{j}"
            self.add_module(name, _feedforward(c_in, dim, mult, ff_channel, c_out, dropout))

    def _ff(self, j: int) -> nn.Module:
        return getattr(self, "feedforward" if self.levels == 1 else f"feedforward{j}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if h % 2**self.levels or w % 2**self.levels:
            raise ValueError(f"height and width must be divisible by {2**self.levels}, got {h}x{w}")
        # per scale j: the approximation and the three details, each (B, C/4, H/2^j, W/2^j)
        feats, a = [], self.reduction(x)
        for _ in range(self.levels):
            a, details = self.dwt(a)
            # (B, C/4, 3, h, w) -> (B, 3C/4, h, w): channel-major, as the official reshape
            feats.append(torch.cat([a, torch.stack(details, 2).flatten(1, 2)], 1))
        out = self._ff(self.levels)(feats[-1])
        for j in range(self.levels - 1, 0, -1):  # coarse to fine
            out = self._ff(j)(torch.cat([feats[j - 1], out], 1))
        return out
