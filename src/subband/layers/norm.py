"""Layer normalisation over the channels of an NCHW map (``LayerNorm2d``), as ConvNeXt and its
descendants use it between stages.

Shape:
    ``(B, C, H, W) -> (B, C, H, W)``, each pixel's ``C`` values normalised to zero mean and unit
    variance, then scaled and shifted per channel.

Example:
    >>> norm = LayerNorm2d(8)
    >>> norm(torch.randn(2, 8, 5, 5)).shape
    torch.Size([2, 8, 5, 5])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LayerNorm2d", "layer_norm_2d"]


def layer_norm_2d(
    x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float = 1e-6
) -> torch.Tensor:
    """``F.layer_norm`` over dim 1 of ``(B, C, H, W)``; a channels-last input costs no copy."""
    x = x.permute(0, 2, 3, 1)  # (B, C, H, W) -> (B, H, W, C)
    x = F.layer_norm(x, x.shape[-1:], weight, bias, eps)
    return x.permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)


class LayerNorm2d(nn.LayerNorm):
    """:func:`layer_norm_2d` as a module; parameters ``weight`` and ``bias`` of shape ``(C,)``.

    Args:
        num_channels: ``C``.
        eps: added to the variance (1e-6, as in ConvNeXt).
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__(num_channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return layer_norm_2d(x, self.weight, self.bias, self.eps)
