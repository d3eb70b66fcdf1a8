"""Dilated Reparam Block: a large depthwise kernel trained alongside parallel dilated small depthwise
kernels, each followed by BatchNorm, and merged after training into one large depthwise conv.

From "UniRepLKNet: A Universal Perception Large-Kernel ConvNet for Audio, Video, Point Cloud,
Time-Series and Image Recognition" (Ding, Zhang, Ge, Zhao, Song, Yue, Shan; arXiv 2311.15599) and
its journal version "Scaling Up Your Kernels" (arXiv 2410.08049).

A ``k x k`` kernel with dilation ``r`` is the same operator as a dense kernel of size
``r (k - 1) + 1`` that is zero between the taps (:func:`dilated_to_dense`), so every branch becomes
a sparse large kernel; zero-padded to the large size, the branches (with their BatchNorms folded
in) add up to one ``kernel_size x kernel_size`` depthwise conv with a bias (:meth:`fuse`).

Shape:
    ``(B, C, H, W) -> (B, C, H, W)`` (stride 1, "same" padding).

Example:
    >>> block = DilatedReparamBlock(8, 13).eval()
    >>> x = torch.randn(2, 8, 20, 20)
    >>> y = block(x)
    >>> block.fuse()
    >>> torch.allclose(block(x), y, atol=1e-5)
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .conv_bn import fold_bn

__all__ = ["DilatedReparamBlock", "dilated_to_dense", "DEFAULT_BRANCHES"]

# (kernel sizes, dilations) of the parallel branches for each large kernel size, as in the official
# configuration (AILab-CVC/UniRepLKNet, ``DilatedReparamBlock``).
DEFAULT_BRANCHES: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {
    17: ((5, 9, 3, 3, 3), (1, 2, 4, 5, 7)),
    15: ((5, 7, 3, 3, 3), (1, 2, 3, 5, 7)),
    13: ((5, 7, 3, 3, 3), (1, 2, 3, 4, 5)),
    11: ((5, 5, 3, 3, 3), (1, 2, 3, 4, 5)),
    9: ((5, 5, 3, 3), (1, 2, 3, 4)),
    7: ((5, 3, 3), (1, 2, 3)),
    5: ((3, 3), (1, 2)),
}


def dilated_to_dense(kernel: torch.Tensor, dilation: int) -> torch.Tensor:
    """The dense kernel equivalent to ``kernel`` applied with ``dilation``: taps spread ``dilation``
    apart with zeros between them.

    Shape:
        ``(..., kh, kw) -> (..., dilation * (kh - 1) + 1, dilation * (kw - 1) + 1)``

    ``F.conv2d(x, w, dilation=r, padding=p) == F.conv2d(x, dilated_to_dense(w, r), padding=p)``.
    """
    if dilation < 1:
        raise ValueError(f"dilation must be a positive integer, got {dilation}")
    if kernel.ndim < 2:
        raise ValueError(f"kernel needs two spatial dims (..., kh, kw), got shape {tuple(kernel.shape)}")
    if dilation == 1:
        return kernel
    kh, kw = kernel.shape[-2:]
    dense = kernel.new_zeros(*kernel.shape[:-2], dilation * (kh - 1) + 1, dilation * (kw - 1) + 1)
    dense[..., ::dilation, ::dilation] = kernel
    return dense


def _pad_to(kernel: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad the square ``(..., k, k)`` kernel to ``(..., size, size)`` around its centre."""
    p = (size - kernel.shape[-1]) // 2
    return F.pad(kernel, [p, p, p, p])


class DilatedReparamBlock(nn.Module):
    """Depthwise ``kernel_size`` conv + BN, plus parallel dilated depthwise convs + BN; summed.

    Args:
        channels: input = output channels (every conv is depthwise).
        kernel_size: the large kernel, odd; it sets the default branches (:data:`DEFAULT_BRANCHES`,
            defined for 5, 7, ..., 17).
        branches: ``(kernel_size, dilation)`` of each parallel branch; each must be odd and span
            ``dilation * (k - 1) + 1 <= kernel_size``. Default: the official table.

    After :meth:`fuse`, the module holds only ``lk_origin`` (a biased depthwise conv) and computes
    the same function in eval mode. Module names follow the official implementation
    (``lk_origin``, ``origin_bn``, ``dil_conv_k{k}_{r}``, ``dil_bn_k{k}_{r}``), so its state dicts
    load unchanged.
    """

    def __init__(self, channels: int, kernel_size: int, branches: Sequence[tuple[int, int]] | None = None) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be positive, got {channels}")
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 3, got {kernel_size}")
        if branches is None:
            if kernel_size not in DEFAULT_BRANCHES:
                raise ValueError(
                    f"no default branches for kernel_size={kernel_size}; pass branches=((k, dilation), ...) "
                    f"or use one of {sorted(DEFAULT_BRANCHES)}"
                )
            branches = tuple(zip(*DEFAULT_BRANCHES[kernel_size]))
        branches = tuple((int(k), int(r)) for k, r in branches)
        for k, r in branches:
            if k < 1 or k % 2 == 0 or r < 1 or r * (k - 1) + 1 > kernel_size:
                raise ValueError(
                    f"branch (k={k}, dilation={r}) must have odd k, dilation >= 1 and span "
                    f"dilation*(k-1)+1 <= kernel_size={kernel_size}"
                )
        if len(set(branches)) != len(branches):
            raise ValueError(f"branches must be distinct, got {branches}")
        self.channels = channels
        self.kernel_size = kernel_size
        self.branches = branches
        self.fused = False
        self.lk_origin = nn.Conv2d(
            channels, channels, kernel_size, padding=kernel_size // 2, groups=channels, bias=False
        )
        self.origin_bn = nn.BatchNorm2d(channels)
        for k, r in branches:
            span = r * (k - 1) + 1
            conv = nn.Conv2d(channels, channels, k, padding=span // 2, dilation=r, groups=channels, bias=False)
            self.add_module(f"dil_conv_k{k}_{r}", conv)
            self.add_module(f"dil_bn_k{k}_{r}", nn.BatchNorm2d(channels))

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            return self.lk_origin(x)
        out = self.origin_bn(self.lk_origin(x))
        for k, r in self.branches:
            out = out + getattr(self, f"dil_bn_k{k}_{r}")(getattr(self, f"dil_conv_k{k}_{r}")(x))
        return out

    @torch.no_grad()
    def fused_kernel(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``(C, 1, K, K)`` weight and ``(C,)`` bias of the single conv equal to this block in eval."""
        if self.fused:
            return self.lk_origin.weight.clone(), self.lk_origin.bias.clone()
        weight, bias = fold_bn(self.lk_origin.weight, self.lk_origin.bias, self.origin_bn)
        for k, r in self.branches:
            w, b = fold_bn(getattr(self, f"dil_conv_k{k}_{r}").weight, None, getattr(self, f"dil_bn_k{k}_{r}"))
            weight = weight + _pad_to(dilated_to_dense(w, r), self.kernel_size)  # sparse large kernel
            bias = bias + b
        return weight, bias

    @torch.no_grad()
    def fuse(self) -> None:
        """Merge every branch and BatchNorm into ``lk_origin`` (in place; eval mode only)."""
        if self.fused:
            return
        if self.training:
            raise RuntimeError("fuse() folds BatchNorm running statistics: call .eval() first")
        weight, bias = self.fused_kernel()
        conv = nn.Conv2d(
            self.channels,
            self.channels,
            self.kernel_size,
            padding=self.kernel_size // 2,
            groups=self.channels,
            bias=True,
            device=weight.device,
            dtype=weight.dtype,
        )
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
        self.lk_origin = conv
        del self.origin_bn
        for k, r in self.branches:
            delattr(self, f"dil_conv_k{k}_{r}")
            delattr(self, f"dil_bn_k{k}_{r}")
        self.fused = True

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernel_size={self.kernel_size}, branches={self.branches}, fused={self.fused}"
