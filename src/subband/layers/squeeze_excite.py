"""Squeeze-and-excitation ("Squeeze-and-Excitation Networks", Hu, Shen, Albanie, Sun, Wu;
arXiv 1709.01507): each channel is scaled by a gate computed from the global mean of all channels,
``x * gate(fc2(act(fc1(mean_hw(x)))))`` with 1x1 convs ``fc1: C -> hidden`` and ``fc2: hidden -> C``.

Shape:
    ``(B, C, H, W) -> (B, C, H, W)``.

Args:
    dim: channels ``C``.
    hidden: width of the bottleneck.
    act_layer: activation class between the two convs (ReLU).
    gate: the gating function (``torch.sigmoid``).

Example:
    >>> se = SqueezeExcite(16, 4)
    >>> se(torch.randn(2, 16, 7, 7)).shape
    torch.Size([2, 16, 7, 7])
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["SqueezeExcite", "make_divisible"]


def make_divisible(v: float, divisor: int = 8) -> int:
    """``v`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``), as in MobileNet."""
    return max(divisor, int(v + divisor / 2) // divisor * divisor)


class SqueezeExcite(nn.Module):
    def __init__(
        self,
        dim: int,
        hidden: int,
        act_layer: type[nn.Module] = nn.ReLU,
        gate: Callable[[torch.Tensor], torch.Tensor] = torch.sigmoid,
    ) -> None:
        super().__init__()
        if dim < 1 or hidden < 1:
            raise ValueError(f"dim and hidden must be positive, got dim={dim}, hidden={hidden}")
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = act_layer()
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.gate = gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)  # (B, C, H, W) -> (B, C, 1, 1)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))
