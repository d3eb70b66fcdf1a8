"""The scattering token mixer of SVT ("Scattering Vision Transformer: Spectral Mixing Matters",
Patro, Agneeswaran; NeurIPS 2023; arXiv 2311.01310): a one-level dual-tree complex wavelet
transform (DTCWT, :mod:`subband.wavelets`) splits a map into its lowpass band and six oriented
complex highpass bands; the lowpass is gated by a learned weight per channel and position, the
highpasses go through a complex two-layer MLP whose layers are *Einstein products*
(:func:`einstein_mix`: block-diagonal channel mixing, ``num_blocks`` blocks), and the inverse DTCWT
returns a map of the input's size.

:func:`einstein_mix` is ``einsum('...bd,bdk->...bk')``: ``x (..., blocks, d)`` times one ``(d, k)``
matrix per block. :func:`complex_einstein_mlp` is the spectral gating network on the highpasses,
``z -> W2 ReLU_c(W1 z + b1) + b2`` with complex ``W1, W2`` (each an Einstein weight) whose real and
imaginary parts are stored stacked, and ``ReLU_c`` applied to the real and imaginary parts separately.

:class:`ScatterMixer` is the mixer of the official ``SVT_channel_mixing`` (what SVT-H-S/B/L use in
their first stage). With ``token_mixing=True`` it is the official ``SVT_channel_token_mixing``
instead (defined in the official code, not used by its registered models): half of the channels go
through a depthwise 3x3 conv, the other half through the scattering path, whose highpasses are mixed
over channels and then over tokens (along the width, with one ``(w, w)`` complex matrix per row of
the highpass grid), and the two halves are interleaved channel by channel.

Layout: the official code calls ``pytorch_wavelets``' ``DTCWTForward(J=1, biort='near_sym_b',
qshift='qshift_b')``, whose highpass is ``(B, C, 6, H/2, W/2, 2)`` (real, imaginary last) and whose
lowpass is ``(B, C, H, W)`` (not decimated at level 1). :func:`subband.wavelets.dtcwt2` gives the same
lowpass and ``torch.view_as_real`` of its complex ``(B, C, 6, H/2, W/2)`` highpass is that tensor
(same orientation order, same ``1/sqrt(2)`` scaling; equal to float32 precision, the test suite
checks it where ``pytorch_wavelets`` imports), so the weights here have the official shapes and
act on the same coefficients.

Sizes: the lowpass gate has the size of the lowpass, i.e. of the input map rounded up to even (the
DTCWT repeats the last row/column of an odd size; the output is cropped back): ``(dim, 56, 56)`` for
the 56x56 first stage of a 224x224 image, as in the official code. At another input size the gate
is resampled (bicubic, anti-aliased) to the lowpass size, as position embeddings are; the official
code only runs at its build size. The token-mixing weights have no such resampling: with
``token_mixing=True`` a different size raises ``ValueError``.

Shape:
    ``(B, dim, H, W) -> (B, dim, H, W)``.

Example:
    >>> mixer = ScatterMixer(64, size=(56, 56))
    >>> mixer(torch.randn(2, 64, 56, 56)).shape
    torch.Size([2, 64, 56, 56])
    >>> mixer(torch.randn(2, 64, 8, 8)).shape  # the lowpass gate is resampled to 8x8
    torch.Size([2, 64, 8, 8])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..wavelets import DTCWT2d, IDTCWT2d

__all__ = ["einstein_mix", "complex_einstein_mlp", "ScatterMixer"]


def einstein_mix(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The Einstein product ``y[..., b, k] = sum_d x[..., b, d] * weight[b, d, k]``: a block-diagonal
    linear map whose ``b``-th block is ``weight[b]``.

    Shape:
        ``x (..., blocks, d)``, ``weight (blocks, d, k) -> (..., blocks, k)``.
    """
    if weight.ndim != 3:
        raise ValueError(f"weight must be (blocks, d, k), got shape {tuple(weight.shape)}")
    if x.ndim < 2 or x.shape[-2:] != weight.shape[:2]:
        raise ValueError(f"x must end in (blocks, d) = {tuple(weight.shape[:2])}, got shape {tuple(x.shape)}")
    return torch.einsum("...bd,bdk->...bk", x, weight)


def complex_einstein_mlp(
    real: torch.Tensor,
    imag: torch.Tensor,
    w1: torch.Tensor,
    b1: torch.Tensor,
    w2: torch.Tensor,
    b2: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two complex Einstein-product layers with a ReLU on the real and imaginary parts between them:
    ``z1 = ReLU(Re u) + j ReLU(Im u)``, ``u = W1 z + b1``; ``W2 z1 + b2`` (``z = real + j imag``).

    Shape:
        ``real``, ``imag`` ``(..., blocks, d)``; ``w1 (2, blocks, d, d)``, ``w2 (2, blocks, d, k)``
        (real part, imaginary part); ``b1 (2, blocks, d)``, ``b2 (2, blocks, k)``
        ``-> (real, imag)``, each ``(..., blocks, k)``.
    """
    for name, w, ndim in (("w1", w1, 4), ("b1", b1, 3), ("w2", w2, 4), ("b2", b2, 3)):
        if w.ndim != ndim or w.shape[0] != 2:
            raise ValueError(f"{name} must stack (real, imaginary) parts in dim 0 of {ndim} dims, got {tuple(w.shape)}")
    r = F.relu(einstein_mix(real, w1[0]) - einstein_mix(imag, w1[1]) + b1[0])
    i = F.relu(einstein_mix(real, w1[1]) + einstein_mix(imag, w1[0]) + b1[1])
    return (
        einstein_mix(r, w2[0]) - einstein_mix(i, w2[1]) + b2[0],
        einstein_mix(r, w2[1]) + einstein_mix(i, w2[0]) + b2[1],
    )


def _pair(v: int | tuple[int, int], name: str) -> tuple[int, int]:
    out = (v, v) if isinstance(v, int) else tuple(v)
    if len(out) != 2 or min(out) < 1:
        raise ValueError(f"{name} must be a positive int or a pair of them, got {v}")
    return out  # type: ignore[return-value]


class ScatterMixer(nn.Module):
    """SVT's spectral mixer: DTCWT (one level), lowpass gate, complex Einstein MLP on the six
    highpasses, inverse DTCWT (see the module docstring).

    Parameters keep the official names: ``complex_weight_ll`` (the lowpass gate,
    ``(width, H', W')``, ``H', W'`` = ``size`` rounded up to even), ``complex_weight_lh_{1,2}``
    (``(2, num_blocks, d, d)``, ``d = width / num_blocks``) and ``complex_weight_lh_b{1,2}``
    (``(2, num_blocks, d)``); with ``token_mixing`` also ``complex_weight_lh_{1,2}_t``
    (``(2, H'/2, W'/2, W'/2)``), ``complex_weight_lh_b{1,2}_t`` (``(2, H'/2, W'/2)``) and ``conv``
    (depthwise 3x3). ``width`` is ``dim``, or ``dim / 2`` with ``token_mixing``.

    Args:
        dim: channels.
        size: the input map size ``(H, W)`` the lowpass gate (and token weights) are made for.
        num_blocks: blocks of the channel Einstein product (4 in SVT); divides the width.
        token_mixing: the official channel + token variant (see the module docstring).
        biort, qshift: DTCWT filters (SVT: ``near_sym_b``, ``qshift_b``).

    Shape:
        ``(B, dim, H, W) -> (B, dim, H, W)``.
    """

    def __init__(
        self,
        dim: int,
        size: int | tuple[int, int] = 56,
        num_blocks: int = 4,
        token_mixing: bool = False,
        biort: str = "near_sym_b",
        qshift: str = "qshift_b",
    ) -> None:
        super().__init__()
        if token_mixing and dim % 2:
            raise ValueError(f"token_mixing splits the channels in two: dim must be even, got {dim}")
        width = dim // 2 if token_mixing else dim
        if num_blocks < 1 or width % num_blocks:
            raise ValueError(f"num_blocks ({num_blocks}) must be positive and divide the mixed width ({width})")
        self.dim, self.width, self.num_blocks, self.token_mixing = dim, width, num_blocks, token_mixing
        self.size = _pair(size, "size")
        lh, lw = (s + s % 2 for s in self.size)  # the lowpass size: odd sizes are extended by one
        d = width // num_blocks
        self.complex_weight_ll = nn.Parameter(torch.empty(width, lh, lw))
        self.complex_weight_lh_1 = nn.Parameter(torch.empty(2, num_blocks, d, d))
        self.complex_weight_lh_2 = nn.Parameter(torch.empty(2, num_blocks, d, d))
        self.complex_weight_lh_b1 = nn.Parameter(torch.empty(2, num_blocks, d))
        self.complex_weight_lh_b2 = nn.Parameter(torch.empty(2, num_blocks, d))
        if token_mixing:
            hh, hw = lh // 2, lw // 2  # the highpass grid
            self.conv = nn.Conv2d(width, width, 3, padding=1, groups=width)
            self.complex_weight_lh_1_t = nn.Parameter(torch.empty(2, hh, hw, hw))
            self.complex_weight_lh_2_t = nn.Parameter(torch.empty(2, hh, hw, hw))
            self.complex_weight_lh_b1_t = nn.Parameter(torch.empty(2, hh, hw))
            self.complex_weight_lh_b2_t = nn.Parameter(torch.empty(2, hh, hw))
        self.xfm = DTCWT2d(nlevels=1, biort=biort, qshift=qshift)
        self.ifm = IDTCWT2d(biort=biort, qshift=qshift)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official initialisation: every spectral weight and bias normal with std 0.02."""
        for name, p in self.named_parameters():
            if name.startswith("complex_weight"):
                nn.init.normal_(p, std=0.02)
        if self.token_mixing:
            self.conv.reset_parameters()

    def _gate(self, shape: tuple[int, int]) -> torch.Tensor:
        w = self.complex_weight_ll
        if tuple(w.shape[-2:]) == shape:
            return w
        return F.interpolate(w.unsqueeze(0), size=shape, mode="bicubic", align_corners=False, antialias=True)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.dim:
            raise ValueError(f"expected (B, {self.dim}, H, W), got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if self.token_mixing and (h, w) != self.size:
            raise ValueError(f"token_mixing has weights for a {self.size[0]}x{self.size[1]} map, got {h}x{w}")
        dtype = x.dtype
        if dtype in (torch.float16, torch.bfloat16):  # the official code runs the transform in float32
            x = x.float()
        if self.token_mixing:
            x1, x = x.chunk(2, dim=1)
            x1 = self.conv(x1)
        lo, (hi,) = self.xfm(x)  # (B, C, H', W') real, (B, C, 6, H'/2, W'/2) complex
        lo = lo * self._gate(tuple(lo.shape[-2:]))
        b, c, _, hh, hw = hi.shape
        z = hi.permute(0, 2, 3, 4, 1).reshape(b, 6, hh, hw, self.num_blocks, -1)  # (B, 6, h, w, blocks, d)
        real, imag = complex_einstein_mlp(
            z.real,
            z.imag,
            self.complex_weight_lh_1,
            self.complex_weight_lh_b1,
            self.complex_weight_lh_2,
            self.complex_weight_lh_b2,
        )
        real = real.reshape(b, 6, hh, hw, c).permute(0, 4, 1, 2, 3)  # (B, 6, h, w, C) -> (B, C, 6, h, w)
        imag = imag.reshape(b, 6, hh, hw, c).permute(0, 4, 1, 2, 3)
        if self.token_mixing:  # rows of the highpass grid as blocks, its columns mixed
            real, imag = complex_einstein_mlp(
                real,
                imag,
                self.complex_weight_lh_1_t,
                self.complex_weight_lh_b1_t,
                self.complex_weight_lh_2_t,
                self.complex_weight_lh_b2_t,
            )
        y = self.ifm((lo, [torch.complex(real, imag)]))[..., :h, :w]  # crop an odd size's extension
        if self.token_mixing:
            y = torch.stack([x1, y], 2).reshape(b, self.dim, h, w)  # (B, C/2, 2, H, W): halves interleaved
        return y.to(dtype)

    def extra_repr(self) -> str:
        t = ", token_mixing=True" if self.token_mixing else ""
        return f"dim={self.dim}, size={self.size}, num_blocks={self.num_blocks}{t}"
