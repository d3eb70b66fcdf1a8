"""LS (Large-Small) convolution (Wang, Chen, Lin, Han, Ding, "LSNet: See Large, Focus Small",
arXiv 2503.23135): a large-kernel *perception* branch computes, at every pixel, the weights of a
small kernel that then *aggregates* the pixel's small neighbourhood.

- Large-kernel perception (:class:`LKP`): 1x1 Conv-BN to ``C/2``, ReLU, ``7x7`` depthwise Conv-BN,
  1x1 Conv-BN, ReLU, then a 1x1 conv to ``(C / G) * k^2`` channels and a GroupNorm with one group
  per kernel (``k^2`` channels): the per-pixel weights ``w`` of shape ``(B, C/G, k^2, H, W)``.
- Small-kernel aggregation (:func:`ska`): ``y[b, c, h, w] = sum_{i,j} x[b, c, h+i-r, w+j-r]
  * w[b, c mod (C/G), i k + j, h, w]`` with ``r = (k-1)/2`` and zero padding: a depthwise ``k x k``
  convolution whose kernel changes from pixel to pixel, shared by the ``G`` channels
  ``c, c + C/G, c + 2C/G, ...``.
- :class:`LSConv`: ``BN(ska(x, LKP(x))) + x``.

The official code runs the aggregation as a Triton GPU kernel; here it is a loop over the ``k^2``
taps with a hand-written backward (no ``k^2``-times larger unfolded copy of the input), which runs
on any device. The official FLOP count replaces it by a static depthwise conv; this is the same
number of multiply-adds, ``k^2`` per output element, which ``torch.utils.flop_counter`` does not see.

Shape:
    ``(B, C, H, W) -> (B, C, H, W)``; ``C`` divisible by ``2`` and by ``groups``.

Example:
    >>> conv = LSConv(64)
    >>> conv(torch.randn(2, 64, 14, 14)).shape
    torch.Size([2, 64, 14, 14])
    >>> x, w = torch.randn(2, 16, 5, 5), torch.randn(2, 4, 9, 5, 5)
    >>> ska(x, w).shape
    torch.Size([2, 16, 5, 5])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from .conv_bn import ConvBN

__all__ = ["ska", "SKA", "LKP", "LSConv"]


def _check(x: torch.Tensor, weight: torch.Tensor) -> int:
    if x.ndim != 4 or weight.ndim != 5:
        raise ValueError(
            f"ska expects x (B, C, H, W) and weight (B, C_w, k*k, H, W), got {tuple(x.shape)}, {tuple(weight.shape)}"
        )
    b, c, h, w = x.shape
    k = math.isqrt(weight.shape[2])
    if k * k != weight.shape[2] or k % 2 == 0:
        raise ValueError(f"weight.shape[2] must be k*k for an odd k, got {weight.shape[2]}")
    if weight.shape[0] != b or tuple(weight.shape[3:]) != (h, w) or weight.shape[1] < 1 or c % weight.shape[1]:
        raise ValueError(
            f"weight must be (B={b}, C_w, k*k, H={h}, W={w}) with C={c} divisible by C_w, got {tuple(weight.shape)}"
        )
    return k


class _SKA(torch.autograd.Function):
    """Loop over the k*k taps forward and backward; each step touches views of a padded copy."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, k: int) -> torch.Tensor:
        b, c, h, w = x.shape
        cw, r = weight.shape[1], k // 2
        xp = F.pad(x, (r, r, r, r)).view(b, c // cw, cw, h + 2 * r, w + 2 * r)  # (B, G, C_w, H+2r, W+2r)
        out = x.new_zeros(b, c // cw, cw, h, w)
        for i in range(k):
            for j in range(k):
                out.addcmul_(xp[..., i : i + h, j : j + w], weight[:, None, :, i * k + j])
        ctx.save_for_backward(x, weight)
        ctx.k = k
        return out.view(b, c, h, w)  # (B, G, C_w, H, W) -> (B, C, H, W)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        k = ctx.k
        b, c, h, w = x.shape
        cw, r = weight.shape[1], k // 2
        grad = grad.contiguous().view(b, c // cw, cw, h, w)  # (B, C, H, W) -> (B, G, C_w, H, W)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            gp = x.new_zeros(b, c // cw, cw, h + 2 * r, w + 2 * r)
            for i in range(k):
                for j in range(k):
                    gp[..., i : i + h, j : j + w].addcmul_(grad, weight[:, None, :, i * k + j])
            grad_x = gp[..., r : r + h, r : r + w].reshape(b, c, h, w)
        if ctx.needs_input_grad[1]:
            xp = F.pad(x, (r, r, r, r)).view(b, c // cw, cw, h + 2 * r, w + 2 * r)
            grad_w = torch.empty_like(weight)
            for i in range(k):
                for j in range(k):
                    grad_w[:, :, i * k + j] = (xp[..., i : i + h, j : j + w] * grad).sum(1)
        return grad_x, grad_w, None


def ska(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Small-kernel aggregation: a depthwise ``k x k`` conv with a different kernel at every pixel.

    Args:
        x: ``(B, C, H, W)``.
        weight: ``(B, C_w, k*k, H, W)``, ``k`` odd, ``C`` divisible by ``C_w``; channel ``c`` of ``x``
            uses ``weight[:, c % C_w]`` (so ``G = C / C_w`` channels share each kernel), tap
            ``i * k + j`` is offset ``(i - k // 2, j - k // 2)``.

    Returns:
        ``(B, C, H, W)``: ``sum_{i,j} x[b, c, h+i-r, w+j-r] * weight[b, c % C_w, i k + j, h, w]``,
        zero outside the map. Differentiable once in ``x`` and ``weight``.
    """
    return _SKA.apply(x, weight, _check(x, weight))


class SKA(nn.Module):
    """:func:`ska` as a module (no parameters): ``forward(x, weight)``."""

    def forward(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return ska(x, weight)


class LKP(nn.Module):
    """Large-kernel perception: the per-pixel small kernels for :func:`ska`.

    Args:
        dim: input channels ``C`` (even, divisible by ``groups``).
        large_kernel: depthwise kernel size of the perception (odd).
        small_kernel: size ``k`` of the generated kernels (odd).
        groups: ``G``, channels sharing one generated kernel; ``C / G`` kernels per pixel.

    Shape:
        ``(B, C, H, W) -> (B, C / G, k*k, H, W)``

    Parameter names follow the official code (``cv1``..``cv4``, ``norm``).
    """

    def __init__(self, dim: int, large_kernel: int = 7, small_kernel: int = 3, groups: int = 8) -> None:
        super().__init__()
        if dim < 2 or dim % 2 or groups < 1 or dim % groups:
            raise ValueError(f"dim must be even and divisible by groups, got dim={dim}, groups={groups}")
        for name, k in (("large_kernel", large_kernel), ("small_kernel", small_kernel)):
            if k < 1 or k % 2 == 0:
                raise ValueError(f"{name} must be odd and positive, got {k}")
        half, kernels = dim // 2, dim // groups
        self.dim, self.large_kernel, self.small_kernel, self.groups = dim, large_kernel, small_kernel, groups
        self.cv1 = ConvBN(dim, half)
        self.act = nn.ReLU()
        self.cv2 = ConvBN(half, half, large_kernel, padding=large_kernel // 2, groups=half)
        self.cv3 = ConvBN(half, half)
        self.cv4 = nn.Conv2d(half, small_kernel**2 * kernels, 1)
        self.norm = nn.GroupNorm(kernels, small_kernel**2 * kernels)

    def reset_parameters(self) -> None:
        for m in (self.cv1, self.cv2, self.cv3, self.cv4, self.norm):
            m.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.cv3(self.cv2(self.act(self.cv1(x)))))
        w = self.norm(self.cv4(x))
        b, _, h, width = w.shape
        return w.view(b, self.dim // self.groups, self.small_kernel**2, h, width)  # (B, C/G * k*k, H, W) -> 5-D

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, large_kernel={self.large_kernel}, small_kernel={self.small_kernel}, groups={self.groups}"
        )


class LSConv(nn.Module):
    """LS convolution with its residual: ``BN(ska(x, LKP(x))) + x``.

    Args:
        dim: channels ``C`` (even, divisible by ``groups``).
        large_kernel: perception kernel size (7 in LSNet).
        small_kernel: aggregation kernel size (3 in LSNet).
        groups: channels sharing one dynamic kernel (8 in LSNet).
    """

    def __init__(self, dim: int, large_kernel: int = 7, small_kernel: int = 3, groups: int = 8) -> None:
        super().__init__()
        self.lkp = LKP(dim, large_kernel, small_kernel, groups)
        self.ska = SKA()
        self.bn = nn.BatchNorm2d(dim)

    def reset_parameters(self) -> None:
        self.lkp.reset_parameters()
        self.bn.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.ska(x, self.lkp(x))) + x

    def fuse(self) -> None:
        """Fold the BatchNorms inside the perception branch (the one after the aggregation stays:
        its channels share dynamic kernels, so it cannot move into them). Eval only."""
        if self.training:
            raise RuntimeError("fuse() folds BatchNorm running statistics: call .eval() first")
        for m in (self.lkp.cv1, self.lkp.cv2, self.lkp.cv3):
            m.fuse()
