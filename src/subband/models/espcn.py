"""ESPCN: "Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel
Convolutional Neural Network" (Shi et al., CVPR 2016, arXiv 1609.05158).

All features are computed at low resolution; the last convolution predicts ``r**2`` values per
output channel, and a periodic shuffle (``nn.PixelShuffle``) rearranges them into the ``r``-times
larger image. Configuration from the paper (Sec. 3.2): three layers, 5x5 -> 64, 3x3 -> 32,
3x3 -> C r^2, tanh after the hidden layers, trained on the Y channel (C = 1).

Differs from the paper: 'same' zero padding, so the output is exactly ``r`` times the input (the
paper trains on unpadded sub-images). There is no official implementation; the layer shapes were
checked against the paper's text and its parameter count follows from them (x3: 22,729).
"""

from __future__ import annotations

import torch
from torch import nn

from ._registry import Paper, register_model

__all__ = ["ESPCN"]


class ESPCN(nn.Module):
    """Sub-pixel convolutional super-resolution network.

    Shape:
        ``(B, in_channels, h, w) -> (B, in_channels, h * upscale, w * upscale)``

    Args:
        upscale: the magnification ``r``.
        in_channels: image channels (1 for the Y channel, as in the paper).
        widths: channels of the hidden layers.
        kernel_sizes: kernel size of each of the three convolutions.

    Example:
        >>> net = ESPCN(upscale=3)
        >>> net(torch.rand(1, 1, 16, 16)).shape
        torch.Size([1, 1, 48, 48])
    """

    def __init__(
        self,
        upscale: int = 3,
        in_channels: int = 1,
        widths: tuple[int, int] = (64, 32),
        kernel_sizes: tuple[int, int, int] = (5, 3, 3),
    ) -> None:
        super().__init__()
        if upscale < 1:
            raise ValueError(f"upscale must be >= 1, got {upscale}")
        self.upscale = upscale
        self.in_channels = in_channels
        chans = (in_channels, *widths, in_channels * upscale**2)
        self.convs = nn.ModuleList(
            nn.Conv2d(cin, cout, k, padding=k // 2) for cin, cout, k in zip(chans[:-1], chans[1:], kernel_sizes)
        )
        self.shuffle = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs[:-1]:
            x = torch.tanh(conv(x))
        # (B, C r^2, h, w) -> (B, C, h r, w r)
        return self.shuffle(self.convs[-1](x))


def _paper(params: int, scale: int) -> Paper:
    return Paper(
        title="Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel Convolutional Neural Network",
        arxiv="1609.05158",
        params=params,
        source=f"paper Sec. 3.2 layer configuration (5x5/64, 3x3/32, 3x3/r^2, r={scale}); no official code",
    )


@register_model(_paper(21_284, 2))
def espcn_x2(**kwargs) -> ESPCN:
    return ESPCN(upscale=2, **kwargs)


@register_model(_paper(22_729, 3))
def espcn_x3(**kwargs) -> ESPCN:
    return ESPCN(upscale=3, **kwargs)


@register_model(_paper(24_752, 4))
def espcn_x4(**kwargs) -> ESPCN:
    return ESPCN(upscale=4, **kwargs)
