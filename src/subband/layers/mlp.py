"""The transformer/ConvNeXt MLP: ``fc1`` expands the channels, an activation, ``fc2`` projects back.
With ``use_conv=True`` the two layers are 1x1 convolutions over NCHW maps, otherwise linear layers
over the last dimension (same parameters up to the trailing ``1, 1`` of the conv weights).

Shape:
    ``(..., in_features) -> (..., out_features)``; with ``use_conv``,
    ``(B, in_features, H, W) -> (B, out_features, H, W)``.

Example:
    >>> Mlp(8, 32)(torch.randn(2, 5, 8)).shape
    torch.Size([2, 5, 8])
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Mlp"]


class Mlp(nn.Module):
    """Two-layer MLP.

    Args:
        in_features: input channels.
        hidden_features: channels after ``fc1`` (default ``4 * in_features``).
        out_features: output channels (default ``in_features``).
        act_layer: activation class (GELU).
        drop: dropout after the activation and after ``fc2``.
        use_conv: 1x1 convolutions on NCHW instead of linear layers on the last dim.
        bias: biases in both layers.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int | None = None,
        out_features: int | None = None,
        act_layer: type[nn.Module] = nn.GELU,
        drop: float = 0.0,
        use_conv: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__()
        hidden_features = hidden_features or 4 * in_features
        out_features = out_features or in_features
        layer = (lambda i, o: nn.Conv2d(i, o, 1, bias=bias)) if use_conv else (lambda i, o: nn.Linear(i, o, bias=bias))
        self.fc1 = layer(in_features, hidden_features)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = layer(hidden_features, out_features)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))
