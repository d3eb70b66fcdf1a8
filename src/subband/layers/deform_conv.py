"""Deformable convolution v1 in pure PyTorch: every kernel tap samples the input at its regular grid
position plus a learned, per-pixel fractional offset (bilinear interpolation), then the samples
are combined by the ordinary kernel.

Paper: Dai et al., "Deformable Convolutional Networks" (arXiv 1703.06211). Semantics checked
against the CUDA op that SEPC (arXiv 2005.03101, jshilong/SEPC) calls, mmdetection v1.x
``mmdet/ops/dcn`` (``DeformConv`` / ``deform_conv``): v1, no modulation mask (not DCNv2); the
output pixel ``(h, w)`` and tap ``(i, j)`` read the input at

    ``y = h * stride - pad + i * dilation + dy[g, i*kw + j, h, w]``
    ``x = w * stride - pad + j * dilation + dx[g, i*kw + j, h, w]``

with the offset channels laid out per deformable group ``g`` as ``2 * kh * kw`` consecutive
channels ``(dy_0, dx_0, dy_1, dx_1, ...)`` (the same layout as ``torchvision.ops.deform_conv2d``);
input channels are split into the deformable groups contiguously. Bilinear sampling treats pixels
outside the map as zero (a point with ``y <= -1`` or ``y >= H`` reads zero, a point in between
blends the border pixel with zero), which is ``F.grid_sample(..., padding_mode="zeros")``.

Here the samples come from one ``F.grid_sample`` per call (an im2col of shape
``(B, C * kh * kw, H_out * W_out)``, as the CUDA op builds) followed by one matmul; memory is that
of the im2col, ``kh * kw`` times the input. Autograd gives the gradients for input, offsets,
weight and bias. :class:`DeformConv2d` predicts its offsets with its own convolution (same
kernel, stride, padding and dilation), initialised to zero, so at initialisation it is the plain
convolution with the same weights.

Shape:
    ``input (B, C_in, H, W)``, ``offset (B, 2 * G_d * kh * kw, H_out, W_out)``,
    ``weight (C_out, C_in / groups, kh, kw)`` -> ``(B, C_out, H_out, W_out)`` with ``H_out`` as
    ``nn.Conv2d``'s.

Example:
    >>> conv = DeformConv2d(8, 16, 3, padding=1)
    >>> x = torch.randn(2, 8, 12, 12)
    >>> conv(x).shape
    torch.Size([2, 16, 12, 12])
    >>> offset = torch.zeros(2, 18, 12, 12)
    >>> torch.allclose(deform_conv2d(x, offset, conv.weight, conv.bias, padding=1),
    ...                F.conv2d(x, conv.weight, conv.bias, padding=1), atol=1e-5)
    True
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

__all__ = ["deform_conv2d", "DeformConv2d"]

_IntPair = int | tuple[int, int]


def _out_size(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def deform_conv2d(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: _IntPair = 1,
    padding: _IntPair = 0,
    dilation: _IntPair = 1,
    groups: int = 1,
) -> torch.Tensor:
    """Deformable convolution v1; the deformable group count is ``offset.shape[1] // (2 * kh * kw)``.

    Args:
        input: ``(B, C_in, H, W)``.
        offset: ``(B, 2 * G_d * kh * kw, H_out, W_out)`` in pixels, ``(dy, dx)`` per tap, taps
            row-major, deformable groups outermost (mmcv / torchvision layout).
        weight: ``(C_out, C_in / groups, kh, kw)``.
        bias: ``(C_out,)`` or ``None``.
        stride, padding, dilation, groups: as ``F.conv2d`` (padding: zeros, integers only).
    """
    if input.ndim != 4 or weight.ndim != 4 or offset.ndim != 4:
        raise ValueError(
            "deform_conv2d expects input (B, C, H, W), offset (B, 2*G*kh*kw, H_out, W_out) and weight "
            f"(C_out, C_in/groups, kh, kw), got {tuple(input.shape)}, {tuple(offset.shape)}, {tuple(weight.shape)}"
        )
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    b, c, h, w = input.shape
    c_out, c_g, kh, kw = weight.shape
    if groups < 1 or c != c_g * groups or c_out % groups:
        raise ValueError(f"weight {tuple(weight.shape)} with groups={groups} does not fit {c} input channels")
    k = kh * kw
    ho, wo = _out_size(h, kh, sh, ph, dh), _out_size(w, kw, sw, pw, dw)
    g_d = offset.shape[1] // (2 * k)
    if ho < 1 or wo < 1:
        raise ValueError(f"the kernel does not fit the padded input {tuple(input.shape[2:])}")
    if offset.shape[0] != b or g_d < 1 or offset.shape[1] != 2 * k * g_d or tuple(offset.shape[2:]) != (ho, wo):
        raise ValueError(f"offset must be (B={b}, 2*G_d*{k}, {ho}, {wo}), got {tuple(offset.shape)}")
    if c % g_d:
        raise ValueError(f"{c} input channels are not divisible by {g_d} deformable groups")
    if bias is not None and bias.shape != (c_out,):
        raise ValueError(f"bias must be ({c_out},), got {tuple(bias.shape)}")

    off = offset.view(b, g_d, k, 2, ho, wo)  # (B, G_d, K, (dy, dx), H_out, W_out)
    kw_ = dict(device=input.device, dtype=input.dtype)
    tap_y = (torch.arange(kh, **kw_) * dh).repeat_interleave(kw)  # (K,): i * dilation for tap i*kw + j
    tap_x = (torch.arange(kw, **kw_) * dw).repeat(kh)  # (K,)
    base_y = tap_y.view(k, 1, 1) + (torch.arange(ho, **kw_) * sh - ph).view(1, ho, 1)  # (K, H_out, 1)
    base_x = tap_x.view(k, 1, 1) + (torch.arange(wo, **kw_) * sw - pw).view(1, 1, wo)  # (K, 1, W_out)
    py, px = base_y + off[:, :, :, 0], base_x + off[:, :, :, 1]  # (B, G_d, K, H_out, W_out) in pixels
    # grid_sample (align_corners=False) maps pixel p of a size-n axis to (2p + 1) / n - 1; valid for n = 1
    grid = torch.stack(((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), dim=-1)  # (B, G_d, K, H_out, W_out, 2)
    grid = grid.view(b * g_d, k * ho, wo, 2)
    cols = F.grid_sample(
        input.reshape(b * g_d, c // g_d, h, w), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )  # (B*G_d, C/G_d, K*H_out, W_out)
    cols = cols.view(b, groups, c_g * k, ho * wo)  # (B, groups, C_in/groups * K, L): channel-major, tap-minor
    out = torch.matmul(weight.reshape(groups, c_out // groups, c_g * k), cols)  # (B, groups, C_out/groups, L)
    out = out.view(b, c_out, ho, wo)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


class DeformConv2d(nn.Module):
    """Deformable convolution v1 with offsets predicted from the input by a zero-initialised conv.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias:
            as ``nn.Conv2d`` (zero padding).
        deformable_groups: input channel groups with their own offsets (``in_channels`` divisible).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _IntPair,
        stride: _IntPair = 1,
        padding: _IntPair = 0,
        dilation: _IntPair = 1,
        groups: int = 1,
        deformable_groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if min(in_channels, out_channels, groups, deformable_groups) < 1:
            raise ValueError("in_channels, out_channels, groups and deformable_groups must be positive")
        if in_channels % groups or out_channels % groups or in_channels % deformable_groups:
            raise ValueError(
                f"in_channels={in_channels} and out_channels={out_channels} must be divisible by groups={groups}, "
                f"and in_channels by deformable_groups={deformable_groups}"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.dilation = _pair(padding), _pair(dilation)
        self.deformable_groups = deformable_groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        kh, kw = self.kernel_size
        self.conv_offset = nn.Conv2d(
            in_channels, 2 * deformable_groups * kh * kw, self.kernel_size, self.stride, self.padding, self.dilation
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.Conv2d``'s initialisation for weight and bias; zero offsets (the plain conv)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.weight[0].numel())
            nn.init.uniform_(self.bias, -bound, bound)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        offset = self.conv_offset(x)  # (B, 2 * G_d * kh * kw, H_out, W_out)
        return deform_conv2d(x, offset, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        s += f", padding={self.padding}, dilation={self.dilation}, groups={self.groups}"
        return s + f", deformable_groups={self.deformable_groups}, bias={self.bias is not None}"
