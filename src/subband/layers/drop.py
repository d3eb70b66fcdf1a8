"""Stochastic depth (Huang et al., "Deep Networks with Stochastic Depth", arXiv 1603.09382): in
training, drop a residual branch for whole samples with probability ``p`` and scale the kept ones
by ``1 / (1 - p)``, so the expectation is unchanged; in eval, the identity.

Shape:
    ``(B, ...) -> (B, ...)``

Example:
    >>> DropPath(0.1).eval()(torch.ones(4, 3)).sum().item()
    12.0
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DropPath", "drop_path"]


def drop_path(x: torch.Tensor, p: float = 0.0, training: bool = False) -> torch.Tensor:
    """Zero whole samples of ``x`` with probability ``p`` (training only), rescaling the rest."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"drop probability must be in [0, 1), got {p}")
    if p == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1.0 - p)
    return x * keep.div_(1.0 - p)


class DropPath(nn.Module):
    """:func:`drop_path` as a module.

    Args:
        p: probability of dropping a sample's branch.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
