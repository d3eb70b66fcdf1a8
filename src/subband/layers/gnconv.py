"""Recursive gated convolution, g^n Conv (Rao et al., "HorNet: Efficient High-Order Spatial
Interactions with Recursive Gated Convolutions", arXiv 2207.14284), and the global filter it can
use as its spatial operator.

g^n Conv of order ``n`` on ``C`` channels uses the widths ``C_k = C / 2^(n-1-k)`` for
``k = 0..n-1`` (``C_{n-1} = C``). A 1x1 projection ``phi_in`` gives ``p_0`` (``C_0`` channels) and
``q`` (``C_0 + ... + C_{n-1}`` channels); one spatial operator ``f`` (a depthwise ``k x k`` conv,
or :class:`GlobalLocalFilter`) acts on ``q``, is scaled by ``s`` and split into ``q_0..q_{n-1}``.
Then

    p_1 = p_0 * q_0,    p_{k+1} = g_k(p_k) * q_k  (g_k: 1x1 conv C_{k-1} -> C_k),    y = phi_out(p_n)

so the output is a polynomial of degree ``n + 1`` in the input: order ``n`` gives ``n``-th order
spatial interactions with one large spatial operator.

The global filter (:func:`global_filter`) multiplies the 2-D real FFT of each channel by a learned
complex half-spectrum, i.e. a circular convolution with a learned kernel as large as the map. The
filter is stored at one grid (``(14, 8)`` is the half-spectrum of a 14x14 map: HorNet's stage 3 at
224x224 input); at other input sizes the real and imaginary parts are resized bilinearly with
``align_corners=True`` to the input's half-spectrum grid, exactly as the official code does, so an
official checkpoint gives the same outputs at every size. The resizing treats the unshifted
frequency grid as a smooth image, so negative frequencies (the upper rows) are blended with the
highest positive ones; at the stored size the filter is used unchanged. Differs from the official
code: the FFT runs in the input's dtype when that is float32 or float64 (float64 allows gradcheck);
half and bfloat16 inputs are transformed in float32 and cast back (the official code always
transforms in float32 and returns float32).

Shape:
    ``(B, C, H, W) -> (B, C, H, W)``, any ``H, W``.

Example:
    >>> conv = GnConv(64, order=3)
    >>> conv(torch.randn(2, 64, 14, 14)).shape
    torch.Size([2, 64, 14, 14])
    >>> GnConv(64, order=3, spatial="gf", gf_size=(14, 8))(torch.randn(2, 64, 9, 11)).shape
    torch.Size([2, 64, 9, 11])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .norm import LayerNorm2d

__all__ = ["GnConv", "GlobalLocalFilter", "global_filter", "gnconv_widths"]

_SPATIAL = ("dwconv", "gf")


def gnconv_widths(dim: int, order: int) -> list[int]:
    """Channels ``[C_0, ..., C_{n-1}] = [dim / 2^(n-1), ..., dim / 2, dim]`` of the recursion."""
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    if dim < 1 or dim % 2 ** (order - 1):
        raise ValueError(f"dim must be a positive multiple of 2**(order-1) = {2 ** (order - 1)}, got {dim}")
    return [dim // 2**k for k in range(order - 1, -1, -1)]


def global_filter(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per-channel circular convolution of ``x`` with a kernel given by its half-spectrum.

    ``irfft2(rfft2(x) * W)`` with ``W`` the complex filter ``weight[..., 0] + i weight[..., 1]``,
    resized (bilinear, ``align_corners=True``, real and imaginary parts separately) to the
    half-spectrum grid ``(H, W // 2 + 1)`` of ``x`` when it differs. Equal to the circular
    convolution of each channel with ``irfft2(W, s=(H, W))``.

    Args:
        x: real input ``(B, C, H, W)``.
        weight: real tensor ``(C, h, w, 2)``: the stored half-spectrum (real, imaginary).

    Returns:
        ``(B, C, H, W)``, dtype of ``x``.
    """
    if weight.ndim != 4 or weight.shape[-1] != 2 or weight.shape[0] != x.shape[1]:
        raise ValueError(f"weight must be (C, h, w, 2) with C = {x.shape[1]}, got {tuple(weight.shape)}")
    dtype = x.dtype
    if dtype not in (torch.float32, torch.float64):
        x = x.float()
    h, w = x.shape[-2:]
    grid = (h, w // 2 + 1)
    weight = weight.to(x.dtype)
    if tuple(weight.shape[1:3]) != grid:
        # (C, h, w, 2) -> (2, C, h, w): real and imaginary parts resized as two images of C channels
        weight = F.interpolate(weight.permute(3, 0, 1, 2), size=grid, mode="bilinear", align_corners=True)
        weight = weight.permute(1, 2, 3, 0)  # (2, C, H, W//2+1) -> (C, H, W//2+1, 2)
    spectrum = torch.fft.rfft2(x, dim=(-2, -1), norm="ortho")  # (B, C, H, W//2+1) complex
    spectrum = spectrum * torch.view_as_complex(weight.contiguous())
    return torch.fft.irfft2(spectrum, s=(h, w), dim=(-2, -1), norm="ortho").to(dtype)


class GlobalLocalFilter(nn.Module):
    """HorNet's global-local filter: LayerNorm, then half the channels through a 3x3 depthwise conv
    and half through :func:`global_filter`, interleaved, then LayerNorm.

    Args:
        dim: channels (even).
        h: rows of the stored half-spectrum (the map height it was made for).
        w: columns of the stored half-spectrum (``width // 2 + 1`` of that map).

    The output channels alternate local, global, local, ... (``2i``: the depthwise conv's channel
    ``i``, ``2i + 1``: the global filter's channel ``i``), as in the official code.
    Parameter names follow the official code (``dw``, ``complex_weight``, ``pre_norm``,
    ``post_norm``).
    """

    def __init__(self, dim: int, h: int = 14, w: int = 8) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"dim must be even and positive, got {dim}")
        if h < 1 or w < 1:
            raise ValueError(f"the filter grid h x w must be positive, got {h}x{w}")
        self.dim, self.h, self.w = dim, h, w
        half = dim // 2
        self.dw = nn.Conv2d(half, half, 3, padding=1, bias=False, groups=half)
        self.complex_weight = nn.Parameter(torch.empty(half, h, w, 2))
        self.pre_norm = LayerNorm2d(dim, eps=1e-6)
        self.post_norm = LayerNorm2d(dim, eps=1e-6)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.complex_weight, std=0.02)
        self.dw.reset_parameters()
        self.pre_norm.reset_parameters()
        self.post_norm.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre_norm(x)
        local, glob = x.chunk(2, dim=1)
        local, glob = self.dw(local), global_filter(glob, self.complex_weight)
        b, c, h, w = local.shape
        x = torch.stack([local, glob], dim=2)  # (B, C/2, 2, H, W): channel i -> outputs 2i, 2i+1
        return self.post_norm(x.reshape(b, 2 * c, h, w))  # (B, C/2, 2, H, W) -> (B, C, H, W)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, filter_grid=({self.h}, {self.w})"


class GnConv(nn.Module):
    """Recursive gated convolution of order ``order`` (see the module docstring).

    Args:
        dim: channels ``C`` in and out; a multiple of ``2**(order - 1)``.
        order: interaction order ``n >= 1``.
        spatial: the operator on the gating branch: ``"dwconv"`` (depthwise ``kernel_size`` conv
            with bias) or ``"gf"`` (:class:`GlobalLocalFilter`).
        kernel_size: depthwise kernel size (odd) for ``"dwconv"``.
        gf_size: ``(h, w)`` grid of the stored global filter for ``"gf"``.
        scale: ``s``, the factor on the spatial operator's output (HorNet: 1/3).

    Parameter names follow the official code (``proj_in``, ``dwconv``, ``pws``, ``proj_out``).
    """

    def __init__(
        self,
        dim: int,
        order: int = 5,
        spatial: str = "dwconv",
        kernel_size: int = 7,
        gf_size: tuple[int, int] = (14, 8),
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        if spatial not in _SPATIAL:
            raise ValueError(f"spatial must be one of {_SPATIAL}, got {spatial!r}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        self.dims = gnconv_widths(dim, order)
        self.dim, self.order, self.spatial, self.scale = dim, order, spatial, scale
        gate = sum(self.dims)  # channels of q = (q_0, ..., q_{n-1})
        self.proj_in = nn.Conv2d(dim, self.dims[0] + gate, 1)  # dims[0] + gate = 2 * dim
        if spatial == "dwconv":
            self.dwconv: nn.Module = nn.Conv2d(gate, gate, kernel_size, padding=kernel_size // 2, groups=gate)
        else:
            if gate % 2:
                raise ValueError(f"spatial='gf' needs an even gate width; dim={dim}, order={order} gives {gate}")
            self.dwconv = GlobalLocalFilter(gate, *gf_size)
        self.pws = nn.ModuleList(nn.Conv2d(self.dims[k], self.dims[k + 1], 1) for k in range(order - 1))
        self.proj_out = nn.Conv2d(dim, dim, 1)

    def reset_parameters(self) -> None:
        for m in (self.proj_in, self.dwconv, *self.pws, self.proj_out):
            m.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, q = self.proj_in(x).split((self.dims[0], sum(self.dims)), dim=1)  # (B, C_0, H, W), (B, sum C_k, H, W)
        q = (self.dwconv(q) * self.scale).split(self.dims, dim=1)
        p = p * q[0]
        for k, pw in enumerate(self.pws, start=1):
            p = pw(p) * q[k]
        return self.proj_out(p)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, order={self.order}, widths={self.dims}, spatial={self.spatial!r}, scale={self.scale:.4g}"
        )
