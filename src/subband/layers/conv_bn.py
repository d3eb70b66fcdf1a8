"""Conv + BatchNorm: :func:`fold_bn` computes the single conv that equals a conv followed by an
eval-mode BatchNorm, and :class:`ConvBN` is a bias-free conv and its BatchNorm as one unit whose
:meth:`ConvBN.fuse` folds the BN into the conv in place (the deploy-time form).

Shape:
    that of the conv: ``(B, C_in, H, W) -> (B, C_out, H', W')``.

Example:
    >>> cb = ConvBN(4, 8, 3, padding=1).eval()
    >>> x = torch.randn(2, 4, 9, 9)
    >>> y = cb(x)
    >>> cb.fuse()
    >>> torch.allclose(cb(x), y, atol=1e-5)
    True
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ConvBN", "BNLinear", "fold_bn", "fuse_submodules"]


def fold_bn(weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of a conv (``weight`` of shape ``(C_out, ...)``) followed by ``bn`` in eval
    mode, as one conv: ``w * g / s`` and ``beta + (b - mean) * g / s`` with ``s = sqrt(var + eps)``."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    b = bn.running_mean.new_zeros(()) if bias is None else bias
    return weight * scale.reshape(-1, *([1] * (weight.ndim - 1))), bn.bias + (b - bn.running_mean) * scale


class ConvBN(nn.Sequential):
    """A bias-free conv (``c``) and BatchNorm (``bn``); :meth:`fuse` folds the BN into the conv.

    The four modes of "Efficient ConvBN Blocks for Transfer Learning and Beyond" (Huang et al.;
    arXiv 2305.11624): *Train* (``bn`` in training mode: batch statistics), *Eval* (``bn`` in eval
    mode: running statistics, a separate normalisation after the conv), *Tune* (``tune = True``
    with ``bn`` in eval mode: the running statistics are folded into the conv's weight and bias on
    the fly, ``conv(x, W * g / s, beta - mean * g / s)``; the same function and gradients as Eval
    for the conv weight and the BN affine parameters, at the cost of one convolution and no stored
    pre-normalisation activation) and *Deploy* (:meth:`fuse`: folded once, for inference).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups: of the conv.
        bn_weight_init: initial BN scale (0 makes a residual branch start as zero).
        eps: the BatchNorm's epsilon.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        bn_weight_init: float = 1.0,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.c = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(out_channels, eps=eps)
        self.bn_weight_init = bn_weight_init
        self.tune = False
        self.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tune and isinstance(self.bn, nn.BatchNorm2d) and not self.bn.training:
            weight, bias = fold_bn(self.c.weight, self.c.bias, self.bn)  # differentiable in c and bn's affine
            return self.c._conv_forward(x, weight, bias)
        return self.bn(self.c(x))

    def reset_parameters(self) -> None:
        self.c.reset_parameters()
        if isinstance(self.bn, nn.BatchNorm2d):
            self.bn.reset_parameters()
            nn.init.constant_(self.bn.weight, self.bn_weight_init)

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold ``bn`` (running statistics) into ``c`` in place; ``bn`` becomes the identity. Eval only."""
        if self.training:
            raise RuntimeError("fuse() folds the BatchNorm's running statistics: call .eval() first")
        if not isinstance(self.bn, nn.BatchNorm2d):
            return  # already fused
        weight, bias = fold_bn(self.c.weight, self.c.bias, self.bn)
        c = self.c
        fused = nn.Conv2d(
            c.in_channels,
            c.out_channels,
            c.kernel_size,
            c.stride,
            c.padding,
            c.dilation,
            c.groups,
            bias=True,
            device=weight.device,
            dtype=weight.dtype,
        )
        fused.weight.copy_(weight)
        fused.bias.copy_(bias)
        self.c, self.bn = fused, nn.Identity()


class BNLinear(nn.Module):
    """BatchNorm1d (``bn``) -> Linear (``fc``, truncated normal 0.02, zero bias), the classifier of
    LeViT-style networks; :meth:`fuse` folds the BN into the linear layer.

    Args:
        in_features, out_features: of the linear layer.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.bn: nn.Module = nn.BatchNorm1d(in_features)
        self.fc = nn.Linear(in_features, out_features)
        nn.init.trunc_normal_(self.fc.weight, std=0.02)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(x))  # (B, in_features) -> (B, out_features)

    @torch.no_grad()
    def fuse(self) -> None:
        """``fc(bn(x)) = (W diag(s)) x + (b + W t)`` with ``s, t`` the BN's eval scale and shift."""
        if self.training:
            raise RuntimeError("fuse() folds BatchNorm running statistics: call .eval() first")
        if not isinstance(self.bn, nn.BatchNorm1d):
            return
        bn = self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias - bn.running_mean * scale
        self.fc.bias += self.fc.weight @ shift
        self.fc.weight *= scale
        self.bn = nn.Identity()


def fuse_submodules(model: nn.Module) -> nn.Module:
    """Call ``fuse()`` in place on every submodule of ``model`` that has one (not on ``model``
    itself), in eval mode only; returns ``model``. A model's own ``fuse()`` is usually this."""
    if model.training:
        raise RuntimeError("fuse() folds BatchNorm running statistics: call .eval() first")
    for m in list(model.modules()):
        if m is not model and callable(getattr(m, "fuse", None)):
            m.fuse()
    return model
