"""Dilated convolution with learnable spacings (DCLS): each filter has ``kernel_count`` weights at
learnable, continuous positions inside a ``dilated_kernel_size`` window; interpolation spreads every
weight onto the grid, giving a dense kernel for an ordinary convolution.

Papers: Khalfaoui-Hassani, Pellegrini, Masquelier, "Dilated convolution with learnable spacings"
(arXiv 2112.03740; bilinear interpolation, version ``"v0"``) and "Dilated Convolution with
Learnable Spacings: beyond bilinear interpolation" (arXiv 2306.00817; normalised triangle ``"v1"``,
triangle of learnable width ``"max"``, Gaussian of learnable width ``"gauss"``).

With weight ``w``, position ``p`` (relative to the window's centre ``size // 2``) and width ``s``
(``|SIG| + 0.27`` for ``gauss``, ``|SIG| + 1`` for ``max``), the footprint of a weight is a product
over the kernel axes of a profile that, along one axis at grid point ``x``, is

- ``v0``: ``1 - frac(p)`` at ``floor(p)``, ``frac(p)`` at ``floor(p) + 1`` (bilinear, unnormalised);
- ``v1``: ``max(0, 1 - |x - p|)``; ``max``: ``max(0, s - |x - p|)``; ``gauss``: ``exp(-(x - p)^2 / 2s^2)``;

and the three last are normalised to sum to one over the window (``/ (sum + 1e-7)``, as the official
package does). Points falling outside the window are dropped. ``v0`` scatters each weight onto its
``2^ndim`` neighbours (work independent of the window size); the others build one profile per axis,
``(out * in/groups, count, size)``, and take their outer product with one batched matrix product
(the official package builds a ``window x count`` tensor per filter instead).

The official ``dcls`` package (``DCLS.construct.modules``) stores ``P`` and ``SIG`` as
``(ndim, out, in/groups, count)`` like this module, but orders the axes differently for some
versions; :func:`convert_dcls_package_state_dict` maps its state dicts here. Depthwise 2-D layers
(``groups == in_channels == out_channels``, stride 1) take a fast path on the CPU: kernels of 15
and more run in channels-last memory format, and on maps at least as large as the kernel their
weight gradient is computed with FFTs (PyTorch's own is tens of times slower there).

Shape:
    ``(B, in_channels, *spatial) -> (B, out_channels, *spatial_out)``, as
    ``nn.ConvNd(kernel_size=dilated_kernel_size)`` with the same stride and padding.

Example:
    >>> conv = DclsConv2d(96, 96, kernel_count=34, dilated_kernel_size=17, padding=8, groups=96)
    >>> conv(torch.randn(2, 96, 28, 28)).shape
    torch.Size([2, 96, 28, 28])
    >>> conv.kernel().shape  # the dense kernel the convolution uses
    torch.Size([96, 1, 17, 17])
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

__all__ = ["DclsConv1d", "DclsConv2d", "DclsConv3d", "dcls_kernel", "convert_dcls_package_state_dict"]

VERSIONS = ("v0", "v1", "gauss", "max")
_SIGMA_OFFSET = {"gauss": 0.27, "max": 1.0}
_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_EPS = 1e-7


def _profile(p: torch.Tensor, sigma: torch.Tensor | None, size: int, version: str) -> torch.Tensor:
    """Interpolation profiles ``(..., size)`` of positions ``p`` (``(..., 1)``, window coordinates)."""
    d = torch.arange(size, dtype=p.dtype, device=p.device) - p  # (..., size): grid point minus position
    if version == "v1":
        return (1 - d.abs()).relu()
    s = sigma.abs() + _SIGMA_OFFSET[version]  # type: ignore[union-attr]
    if version == "gauss":
        return torch.exp(-0.5 * (d / s) ** 2)
    return (s - d.abs()).relu()


def _profiles(
    positions: torch.Tensor, sigma: torch.Tensor | None, sizes: Sequence[int], version: str
) -> list[torch.Tensor]:
    """Per axis, the interpolation profile ``(M, count, size)`` of every weight on that axis's grid
    (``v1``, ``gauss``, ``max``)."""
    n = positions.shape[-1]
    p = positions.reshape(len(sizes), -1, n, 1)  # (ndim, M, count, 1)
    s = None if sigma is None else sigma.reshape(p.shape)
    if len(set(sizes)) == 1:  # a square window: every axis in one go
        return list(_profile(p + sizes[0] // 2, s, sizes[0], version).unbind(0))
    return [_profile(p[a] + k // 2, None if s is None else s[a], k, version) for a, k in enumerate(sizes)]


def _bilinear_kernel(weight: torch.Tensor, positions: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
    """``v0``: each weight split onto the ``2^ndim`` grid points around it (those inside the window),
    added into a zero kernel; ``O(count * 2^ndim)`` work per filter, whatever the window size."""
    n = weight.shape[-1]
    w = weight.reshape(-1, n)  # (M, count)
    axes = []
    for axis, size in enumerate(sizes):
        p = positions[axis].reshape(-1, n) + size // 2  # (M, count), window coordinates
        floor = p.detach().floor()
        axes.append((floor, p - floor, size, math.prod(sizes[axis + 1 :])))  # d frac/dp = 1, also at integers
    index, values = [], []
    for corner in itertools.product((0, 1), repeat=len(sizes)):  # the neighbours floor(p) + corner
        value, flat, inside = w, 0, None
        for (floor, frac, size, stride), step in zip(axes, corner):
            point = floor + step
            ok = (point >= 0) & (point < size)
            inside = ok if inside is None else inside & ok
            value = value * (frac if step else 1 - frac)
            flat = flat + point * stride
        index.append(torch.where(inside, flat, 0).long())  # type: ignore[arg-type]
        values.append(torch.where(inside, value, 0.0))  # type: ignore[arg-type]
    kernel = w.new_zeros(w.shape[0], math.prod(sizes))  # (M, prod(sizes))
    kernel = kernel.scatter_add(1, torch.cat(index, 1), torch.cat(values, 1))
    return kernel.reshape(*weight.shape[:2], *sizes)


def dcls_kernel(
    weight: torch.Tensor,
    positions: torch.Tensor,
    dilated_kernel_size: Sequence[int],
    version: str = "gauss",
    sigma: torch.Tensor | None = None,
) -> torch.Tensor:
    """The dense DCLS kernel: ``count`` weights per filter spread onto the window by interpolation.

    Args:
        weight: ``(out, in/groups, count)``.
        positions: ``(ndim, out, in/groups, count)``; ``positions[d]`` is the offset along kernel axis
            ``d`` from the window's centre (``size // 2``), in grid steps.
        dilated_kernel_size: window size per axis (``ndim`` ints).
        version: ``"v0"`` bilinear, ``"v1"`` normalised triangle, ``"gauss"`` normalised Gaussian,
            ``"max"`` normalised triangle of learnable width.
        sigma: ``(ndim, out, in/groups, count)`` raw widths for ``"gauss"`` and ``"max"``.

    Returns:
        ``(out, in/groups, *dilated_kernel_size)``, differentiable in weight, positions and sigma.
    """
    sizes = tuple(int(s) for s in dilated_kernel_size)
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
    if weight.ndim != 3 or positions.shape != (len(sizes), *weight.shape):
        raise ValueError(
            f"weight must be (out, in/groups, count) and positions ({len(sizes)}, out, in/groups, count); "
            f"got {tuple(weight.shape)} and {tuple(positions.shape)}"
        )
    if version in _SIGMA_OFFSET and (sigma is None or sigma.shape != positions.shape):
        raise ValueError(f"version {version!r} needs sigma of shape {tuple(positions.shape)}")
    if version == "v0":
        return _bilinear_kernel(weight, positions, sizes)
    o, i, n = weight.shape
    phis = _profiles(positions, sigma, sizes, version)
    total = phis[0].sum(-1)  # normalise each weight's footprint: its sum over the window is a product of axis sums
    for phi in phis[1:]:
        total = total * phi.sum(-1)
    scale = weight.reshape(-1, n) / (total + _EPS)  # (M, count)
    tail = phis[0].new_ones(phis[0].shape[:2] + (1,))  # (M, count, 1): outer product of the later axes
    for phi in phis[1:]:
        tail = (tail.unsqueeze(-1) * phi.unsqueeze(-2)).flatten(-2)  # (M, count, a) x (M, count, b) -> (M, count, a*b)
    head = (phis[0] * scale.unsqueeze(-1)).transpose(1, 2)  # (M, size_0, count)
    return torch.bmm(head, tail).reshape(o, i, *sizes)  # (M, size_0, rest) -> (out, in/groups, *sizes)


# ---------------------------------------------------------------- depthwise 2-D fast path (CPU)

_FFT_MIN_KERNEL = 15  # PyTorch's CPU depthwise weight gradient falls off a cliff from this kernel size on


def _depthwise_weight_grad(
    x: torch.Tensor, gy: torch.Tensor, kernel_size: tuple[int, int], padding: tuple[int, int], method: str
) -> torch.Tensor:
    """``dL/dw`` of a stride-1 depthwise conv: per channel, the correlation of the padded input with
    the output gradient, summed over the batch (``"fft"``: one FFT per map; ``"native"``: PyTorch's)."""
    (kh, kw), (ph, pw) = kernel_size, padding
    c = x.shape[1]
    if method == "native":
        w = x.new_empty(c, 1, kh, kw)
        mask = [False, True, False]
        return torch.ops.aten.convolution_backward(gy, x, w, None, [1, 1], [ph, pw], [1, 1], False, [0, 0], c, mask)[1]
    xp = F.pad(x, (pw, pw, ph, ph))
    size = xp.shape[-2:]  # the padded input is long enough that the circular correlation never wraps
    spec = torch.fft.rfft2(xp, s=size) * torch.fft.rfft2(gy, s=size).conj()  # (B, C, Hp, Wp/2 + 1)
    corr = torch.fft.irfft2(spec.sum(0), s=size)  # (C, Hp, Wp)
    return corr[:, None, :kh, :kw].contiguous()  # (C, 1, kh, kw)


def _large(weight: torch.Tensor) -> bool:
    return max(weight.shape[-2:]) >= _FFT_MIN_KERNEL


class _DepthwiseConv2d(torch.autograd.Function):
    """Stride-1 depthwise conv2d with a fast CPU weight gradient for large kernels."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding):  # type: ignore[override]
        fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        if _large(weight):  # the channels-last kernel is several times faster for large kernels
            x = x.contiguous(memory_format=torch.channels_last)
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.has_bias = padding, bias is not None
        return F.conv2d(x, weight, bias, 1, padding, 1, weight.shape[0]).contiguous(memory_format=fmt)

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        c, padding = weight.shape[0], list(ctx.padding)
        gx = gw = gb = None
        if _large(weight):
            gy = gy.contiguous(memory_format=torch.channels_last)
        if ctx.needs_input_grad[0]:
            mask = [True, False, False]
            gx = torch.ops.aten.convolution_backward(
                gy, x, weight, None, [1, 1], padding, [1, 1], False, [0, 0], c, mask
            )
            gx = gx[0]
        if ctx.needs_input_grad[1]:
            out_area = gy.shape[-2] * gy.shape[-1]
            fft = _large(weight) and out_area >= weight.shape[-2] * weight.shape[-1]
            gw = _depthwise_weight_grad(x, gy, weight.shape[-2:], ctx.padding, "fft" if fft else "native")
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = gy.sum((0, 2, 3))
        return gx, gw, gb, None


# ---------------------------------------------------------------- modules


class _DclsNd(nn.Module):
    _ndim = 0

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_count: int,
        dilated_kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        version: str = "gauss",
    ) -> None:
        super().__init__()
        d = self._ndim
        sizes = _tuple(dilated_kernel_size, d, "dilated_kernel_size")
        strides, pads = _tuple(stride, d, "stride"), _tuple(padding, d, "padding")
        if version not in VERSIONS:
            raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        if min(in_channels, out_channels, groups, kernel_count) < 1:
            raise ValueError("in_channels, out_channels, groups and kernel_count must be positive")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible by groups ({groups})"
            )
        if min(sizes) < 1 or min(strides) < 1 or min(pads) < 0:
            raise ValueError(
                f"need dilated_kernel_size >= 1, stride >= 1, padding >= 0; got {sizes}, {strides}, {pads}"
            )
        self.in_channels, self.out_channels, self.kernel_count, self.groups = (
            in_channels,
            out_channels,
            kernel_count,
            groups,
        )
        self.dilated_kernel_size, self.stride, self.padding = sizes, strides, pads
        self.padding_mode, self.version = padding_mode, version
        shape = (out_channels, in_channels // groups, kernel_count)
        self.weight = nn.Parameter(torch.empty(shape))
        self.P = nn.Parameter(torch.empty(d, *shape))
        self.SIG = nn.Parameter(torch.empty(d, *shape)) if version in _SIGMA_OFFSET else None
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self._shared: tuple[nn.Parameter, ...] = ()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official initialisation: Kaiming-uniform weights and bias, positions ~ N(0, 0.5)
        clamped to the window, ``SIG`` 0.23 (``gauss``: width 0.5) or 0 (``max``: width 1)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.weight.shape[1] * self.kernel_count)
            nn.init.uniform_(self.bias, -bound, bound)
        if self.P is not None:
            nn.init.normal_(self.P, 0.0, 0.5)
            self.clamp_parameters()
        if self.SIG is not None:
            nn.init.constant_(self.SIG, 0.23 if self.version == "gauss" else 0.0)

    @property
    def positions(self) -> torch.Tensor:
        """``(ndim, out, in/groups, count)`` kernel positions (own, or shared with :meth:`share_positions`)."""
        return self._shared[0] if self._shared else self.P  # type: ignore[return-value]

    def share_positions(self, positions: nn.Parameter) -> None:
        """Use ``positions`` (registered by an owner module, e.g. a network stage) instead of own ones."""
        want = (self._ndim, *self.weight.shape)
        if positions.shape != want:
            raise ValueError(f"shared positions must have shape {want}, got {tuple(positions.shape)}")
        self.P = None  # type: ignore[assignment]
        self._shared = (positions,)

    @torch.no_grad()
    def clamp_parameters(self) -> None:
        """Clamp the positions to the window (the official training calls this after every step)."""
        p = self.positions
        for axis, size in enumerate(self.dilated_kernel_size):
            p[axis].clamp_(-(size // 2), size // 2)

    def kernel(self) -> torch.Tensor:
        """The dense ``(out, in/groups, *dilated_kernel_size)`` kernel (see :func:`dcls_kernel`)."""
        return dcls_kernel(self.weight, self.positions, self.dilated_kernel_size, self.version, self.SIG)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel()
        padding: tuple[int, ...] = self.padding
        if self.padding_mode != "zeros":
            x = F.pad(x, [q for p in reversed(self.padding) for q in (p, p)], mode=self.padding_mode)
            padding = (0,) * self._ndim
        depthwise = self.groups == self.in_channels == self.out_channels and x.device.type == "cpu"
        if self._ndim == 2 and depthwise and self.stride == (1, 1):
            return _DepthwiseConv2d.apply(x, k, self.bias, padding)
        conv = (F.conv1d, F.conv2d, F.conv3d)[self._ndim - 1]
        return conv(x, k, self.bias, self.stride, padding, 1, self.groups)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_count={self.kernel_count}, "
        s += f"dilated_kernel_size={self.dilated_kernel_size}, stride={self.stride}, padding={self.padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        s += f", version={self.version!r}"
        return s + (", shared positions" if self._shared else "")


def _tuple(v: int | Sequence[int], n: int, name: str) -> tuple[int, ...]:
    out = (int(v),) * n if isinstance(v, int) else tuple(int(u) for u in v)
    if len(out) != n:
        raise ValueError(f"{name} needs 1 or {n} values, got {v!r}")
    return out


_ARGS = """
    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_count: learnable weights (and positions) per filter.
        dilated_kernel_size: window the positions live in (odd sizes keep the centre on the grid).
        stride: convolution stride.
        padding: padding on each side, per axis.
        groups: blocked connections, as in ``nn.ConvNd`` (``groups == channels``: depthwise).
        bias: add a learnable bias.
        padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``.
        version: interpolation, ``"v0"`` (bilinear), ``"v1"`` (normalised triangle), ``"gauss"``
            (normalised Gaussian, learnable widths ``SIG``) or ``"max"`` (normalised triangle,
            learnable widths ``SIG``).

    Parameters ``weight (out, in/groups, count)``, ``P (ndim, out, in/groups, count)``,
    ``SIG`` (same, ``gauss``/``max`` only) and ``bias``, named as in the official ``dcls`` package.
"""


class DclsConv1d(_DclsNd):
    __doc__ = "1-D convolution with learnable spacings (see the module docstring).\n" + _ARGS
    _ndim = 1


class DclsConv2d(_DclsNd):
    __doc__ = "2-D convolution with learnable spacings (see the module docstring).\n" + _ARGS
    _ndim = 2


class DclsConv3d(_DclsNd):
    __doc__ = "3-D convolution with learnable spacings (see the module docstring).\n" + _ARGS
    _ndim = 3


def _package_axes(ndim: int, version: str) -> tuple[int, ...]:
    """For each of our kernel axes, the index into the ``dcls`` package's ``P``/``SIG`` first dim."""
    if ndim == 1:
        return (0,)
    if version == "v0":
        return (0, 1) if ndim == 2 else (0, 2, 1)
    return tuple(reversed(range(ndim)))


def convert_dcls_package_state_dict(state: dict[str, torch.Tensor], version: str) -> dict[str, torch.Tensor]:
    """Reorder the ``P`` and ``SIG`` axes of a ``dcls`` package (``DclsNd``) state dict to this
    module's order (every ``...P`` / ``...SIG`` entry; other keys pass through).

    The package indexes ``P[0]`` along the kernel's first axis for 2-D ``"v0"`` (so ConvNeXt-dcls
    checkpoints need no change), along the last axis for the other versions, and in the order
    (0, 2, 1) for 3-D ``"v0"``; it assumes square (cubic) windows in those cases.
    """
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
    out = {}
    for key, value in state.items():
        if key.rsplit(".", 1)[-1] in ("P", "SIG"):
            value = value[list(_package_axes(value.shape[0], version))]
        out[key] = value
    return out
