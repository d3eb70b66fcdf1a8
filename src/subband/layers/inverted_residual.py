"""The MobileNetV2 inverted residual block ("MobileNetV2: Inverted Residuals and Linear
Bottlenecks", Sandler et al.; arXiv 1801.04381): 1x1 expansion Conv-BN-act (left out when
``expand_ratio == 1``), 3x3 depthwise Conv-BN-act (the stride), 1x1 linear projection Conv-BN, and
the input added back when stride and width are unchanged. The hidden width is
``make_divisible(round(in_channels * expand_ratio), 8)``; parameter names follow CVNets
(``block.exp_1x1``, ``block.conv_3x3``, ``block.red_1x1``), whose MobileViT / AFFNet models use it.

Shape:
    ``(B, C_in, H, W) -> (B, C_out, H / stride, W / stride)``.

Example:
    >>> block = InvertedResidual(16, 16, expand_ratio=4)
    >>> block(torch.randn(2, 16, 8, 8)).shape
    torch.Size([2, 16, 8, 8])
"""

from __future__ import annotations

import torch
from torch import nn

from .conv_bn import ConvBN
from .squeeze_excite import make_divisible

__all__ = ["InvertedResidual"]


class InvertedResidual(nn.Module):
    """Args:
    in_channels, out_channels: widths.
    stride: of the depthwise conv (1 or 2).
    expand_ratio: hidden width over ``in_channels``.
    dilation: of the depthwise conv.
    act_layer: activation after the expansion and the depthwise conv (SiLU, as MobileViT).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        expand_ratio: float = 4.0,
        dilation: int = 1,
        act_layer: type[nn.Module] = nn.SiLU,
    ) -> None:
        super().__init__()
        if stride not in (1, 2) or expand_ratio <= 0 or min(in_channels, out_channels) < 1:
            raise ValueError(
                f"need stride 1 or 2, a positive expand_ratio and widths, got stride={stride}, "
                f"expand_ratio={expand_ratio}, {in_channels} -> {out_channels}"
            )
        hidden = make_divisible(int(round(in_channels * expand_ratio)), 8)
        layers: dict[str, nn.Module] = {}
        if expand_ratio != 1:
            layers["exp_1x1"] = nn.Sequential(ConvBN(in_channels, hidden, 1), act_layer())
        layers["conv_3x3"] = nn.Sequential(
            ConvBN(hidden, hidden, 3, stride, dilation, dilation, groups=hidden), act_layer()
        )
        layers["red_1x1"] = ConvBN(hidden, out_channels, 1)
        self.block = nn.Sequential()
        for name, layer in layers.items():
            self.block.add_module(name, layer)
        self.use_res_connect = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.use_res_connect else self.block(x)
