"""The orthonormal Haar bank over k = 1, 2 or 3 axes as sums, differences and one complex product.

The bank is ``s [[1, 1], [h, -h]]`` (``s = 2**-0.5``, ``h = +-1``, :attr:`Wavelet.haar_sign`), one
2x2 butterfly on each pair of samples along each axis. Along every axis but the last, the two
phases of the axis are rows of contiguous memory apart: one ``addcmul`` with a broadcast sign
``[1, -1]`` writes their unscaled sum and difference as a new band axis, reading each pair of rows
once, while it is in cache, for both. Along the last axis the two samples of a pair are
neighbours: viewed as one complex number, the pair times ``(1 + h i) s^k`` is the butterfly with
every axis' scale folded in, one vectorised pass in place. The last axis' two bands stay
interleaved: the bands are views of one ``(B, 2, .., 2, *n, 2)`` tensor (a band axis per leading
axis, then the column slot), each with last stride 2, and the synthesis reads such pairs without a
copy (:func:`interleaved`). Passes over the data: k each way (in 1-D one, out of place). Under
``torch.compile`` the same passes run as two operators, ``subband::haar_analysis`` and
``subband::haar_synthesis``.

Band order is :func:`._core.band_keys`': bit ``k-1-i`` of the band index is set when axis ``i``
took the high-pass filter.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from . import _native
from ._pad import interleave


def _complex(t: torch.Tensor) -> torch.Tensor:
    """``t (..., 2n)`` as ``(..., n)`` complex (float32 -> complex64, float64 -> complex128)."""
    return t.view(torch.complex64 if t.dtype == torch.float32 else torch.complex128)


def _pairable(t: torch.Tensor) -> bool:
    """Whether ``t`` can be viewed as complex: last stride 1, other strides and offset even."""
    return t.stride(-1) == 1 and t.storage_offset() % 2 == 0 and all(s % 2 == 0 for s in t.stride()[:-1])


def _scaled(t: torch.Tensor, scale: complex) -> torch.Tensor:
    """``t (..., 2n)`` times ``scale`` as complex pairs, in new memory (``t`` is left as it was)."""
    if _pairable(t):
        out = t.new_empty(t.shape)
        torch.mul(_complex(t), scale, out=_complex(out))
    else:  # a fresh, aligned copy, scaled in place
        out = t.clone(memory_format=torch.contiguous_format)
        _complex(out).mul_(scale)
    return out


def _slots(h: int) -> tuple[int, int]:
    """The column slots of the last axis' low- and high-pass bands: ``(re, im) (1 + h i)`` puts
    ``re + im`` in the imaginary slot for ``h = 1``, in the real one for ``h = -1``."""
    return (1, 0) if h > 0 else (0, 1)


def analysis(x: torch.Tensor, h: int) -> torch.Tensor:
    """``x (B, *N)``, every N even -> the ``(B, 2, .., 2, *N/2 but the last, N_k)`` tensor whose
    views are the ``2**k`` bands (:func:`band_views`); new memory, contiguous. In 2-D on CPU, the
    C library's band-major ``(B, 4, *N/2)`` tensor when it is built (:mod:`._native`)."""
    if x.ndim == 3 and _native.usable(x):
        return _native.analysis(x, h)
    k = x.ndim - 1
    sign = x.new_tensor([1.0, -1.0]) if k > 1 else None
    y = x  # (B, 2, .., 2 (i band axes), n_1 .. n_i, N_{i+1} .. N_k)
    for i in range(k - 1):
        d = 1 + 2 * i  # axis i, after i band axes and i halved axes
        phases = y.unflatten(d, (y.shape[d] // 2, 2)).unsqueeze(1 + i)  # (.., 1 (new band), .., n_i, 2, ..)
        a, b = phases.select(d + 2, 0), phases.select(d + 2, 1)
        if h < 0:  # the high-pass is b - a
            a, b = b, a
        out = x.new_empty(a.shape[: 1 + i] + (2,) + a.shape[2 + i :])  # contiguous whatever x's strides
        y = torch.addcmul(a, sign.view((2,) + (1,) * (a.ndim - 2 - i)), b, out=out)
    scale = (1 + h * 1j) * 2 ** (-k / 2)
    if k == 1:  # the only pass: out of place
        return _scaled(x, scale)
    _complex(y).mul_(scale)
    return y


def band_views(y: torch.Tensor, h: int) -> tuple[torch.Tensor, ...]:
    """The ``2**k`` bands ``(B, *n)`` in :func:`analysis`' output ``y`` (``2k`` dims), as views with
    last stride 2, or the C library's band-major bands."""
    k = y.ndim // 2
    if k == 2 and y.shape[1] == 4:  # band-major (the passes' 2-D buffers have 2 there)
        return y.unbind(1)
    v = y.unflatten(-1, (-1, 2))  # (B, 2, .., 2, *n, column slot)
    lo, hi = _slots(h)
    out = []
    for b in range(2**k):
        lead = tuple((b >> (k - 1 - i)) & 1 for i in range(k - 1))
        out.append(v[(slice(None), *lead, ..., hi if b & 1 else lo)])
    return tuple(out)


def interleaved(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a`` and ``b`` side by side, ``(..., 2)``: a view when ``b`` is ``a`` one element further on
    in the same memory (the interleaved bands of :func:`down`), else interleaved in one pass."""
    same = a.shape == b.shape and a.stride() == b.stride() and a.dtype == b.dtype
    if same and b.storage_offset() == a.storage_offset() + 1:
        if a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr():
            return a.as_strided((*a.shape, 2), (*a.stride(), 1))
    return interleave(a, b).unflatten(-1, (-1, 2))


def synthesis(bands: Sequence[torch.Tensor], h: int) -> torch.Tensor:
    """The adjoint of :func:`down` and, the bank being orthonormal, its inverse: the ``2**k`` bands
    ``(B, *n)`` -> ``(B, *2n)``. Each pair of bands that differ in the last axis' bit is read as one
    interleaved pair (:func:`interleaved`); then the leading axes' phases are made from band pairs,
    last axis first, by one ``addcmul`` each (``a + h b``, ``a - h b``), and the result is multiplied
    in place by ``(1 - h i) s^k`` as complex pairs. In 2-D on CPU, the C library when it is built."""
    if bands[0].ndim == 3 and _native.usable(*bands) and all(b.shape == bands[0].shape for b in bands):
        return _native.synthesis(bands, h)
    k = bands[0].ndim - 1
    lo, hi = _slots(h)
    first = 1 if lo else 0  # the band of each pair whose samples sit in slot 0
    # (B, *n, 2) for each setting of the leading k-1 band bits, in band order
    parts = [interleaved(bands[2 * j + first], bands[2 * j + 1 - first]) for j in range(2 ** (k - 1))]
    sign = bands[0].new_tensor([h, -h]) if k > 1 else None
    for i in reversed(range(k - 1)):  # merge axis i's band bit (the last of those left) into its phases
        d = 2 + i  # the phase axis goes right after n_i: (B, n_1 .. n_i, 2, ..)
        merged = []
        for a, b in zip(parts[0::2], parts[1::2]):
            a, b = a.unsqueeze(d), b.unsqueeze(d)
            out = a.new_empty(a.shape[:d] + (2,) + a.shape[d + 1 :])
            merged.append(torch.addcmul(a, sign.view((2,) + (1,) * (a.ndim - d - 1)), b, out=out))
        parts = merged
    (y,) = parts  # (B, n_1, 2, .., n_k, 2)
    scale = (1 - h * 1j) * 2 ** (-k / 2)
    if k == 1 and any(y.data_ptr() == b.data_ptr() for b in bands):  # a view of the bands: out of place
        y = _scaled(y, scale)
    else:
        _complex(y).mul_(scale)
    return y.reshape(bands[0].shape[0], *(2 * n for n in bands[0].shape[1:]))


# Under torch.compile the passes run as two opaque operators: dynamo cannot trace a complex view of
# real memory, and inductor's fused loops read stride-2 pairs slower than these passes run. Their
# gradients are :class:`._core._Down`'s and :class:`._core._Up`'s, which call them.


@torch.library.custom_op("subband::haar_analysis", mutates_args=())
def _analysis_op(x: torch.Tensor, h: int) -> torch.Tensor:
    return analysis(x, h)


@_analysis_op.register_fake
def _(x: torch.Tensor, h: int) -> torch.Tensor:
    k = x.ndim - 1
    if k == 2 and _native.usable(x):
        return x.new_empty((x.shape[0], 4, x.shape[1] // 2, x.shape[2] // 2))
    return x.new_empty((x.shape[0],) + (2,) * (k - 1) + tuple(n // 2 for n in x.shape[1:-1]) + (x.shape[-1],))


@torch.library.custom_op("subband::haar_synthesis", mutates_args=())
def _synthesis_op(bands: list[torch.Tensor], h: int) -> torch.Tensor:
    return synthesis(bands, h)


@_synthesis_op.register_fake
def _(bands: list[torch.Tensor], h: int) -> torch.Tensor:
    b = bands[0]
    return b.new_empty((b.shape[0],) + tuple(2 * n for n in b.shape[1:]))


def down(x: torch.Tensor, h: int) -> tuple[torch.Tensor, ...]:
    """``x (B, *N)``, every N even -> the ``2**k`` bands ``(B, *N/2)`` (:func:`band_views`)."""
    return band_views(_analysis_op(x, h) if torch.compiler.is_compiling() else analysis(x, h), h)


def up(bands: Sequence[torch.Tensor], h: int) -> torch.Tensor:
    """The ``2**k`` bands ``(B, *n)`` -> ``(B, *2n)`` (:func:`synthesis`)."""
    return _synthesis_op(list(bands), h) if torch.compiler.is_compiling() else synthesis(bands, h)


# Several levels of the 2-D transform at once, in the C library (:mod:`._native`): each level's LL
# is consumed while in cache. Inputs and bands are ``(*lead, H, W)``; bands are listed finest level
# first, ``(LH, HL, HH)`` per level (band order 1, 2, 3), then the coarsest LL.


def _wavedec2(x: torch.Tensor, h: int, levels: int) -> list[torch.Tensor]:
    return _native.wavedec(x, h, levels)


def _waverec2(bands: Sequence[torch.Tensor], h: int) -> torch.Tensor:
    J = len(bands) // 3
    levels = [[None, *bands[3 * j : 3 * j + 3]] for j in range(J)]
    levels[-1][0] = bands[-1]
    return _native.waverec(levels, h)


class _Wavedec2(torch.autograd.Function):
    """The multilevel analysis; its backward is the synthesis of the gradients (the bank is
    orthonormal), differentiable in turn."""

    @staticmethod
    def forward(ctx, x, h, levels):  # type: ignore[no-untyped-def, override]
        ctx.h = h
        return tuple(_wavedec2(x, h, levels))

    @staticmethod
    def backward(ctx, *grads):  # type: ignore[no-untyped-def, override]
        return waverec2(grads, ctx.h), None, None


class _Waverec2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, *bands):  # type: ignore[no-untyped-def, override]
        ctx.h, ctx.levels = h, len(bands) // 3
        return _waverec2(bands, h)

    @staticmethod
    def backward(ctx, g):  # type: ignore[no-untyped-def, override]
        return None, *wavedec2(g, ctx.h, ctx.levels)


def fusable(x: torch.Tensor, levels: int) -> bool:
    """Whether :func:`wavedec2` runs on ``x (*lead, H, W)`` (the C library takes it; H and W
    divisible by ``2**levels``, where every boundary mode gives these coefficients)."""
    return levels >= 1 and x.numel() > 0 and all(n % 2**levels == 0 for n in x.shape[-2:]) and _native.usable(x)


def fusable_bands(bands: Sequence[torch.Tensor]) -> bool:
    """Whether :func:`waverec2` runs on these bands (in its order, shapes already checked)."""
    return bands[-1].numel() > 0 and _native.usable(*bands)


def wavedec2(x: torch.Tensor, h: int, levels: int) -> list[torch.Tensor]:
    """``levels`` levels of the analysis of ``x (*lead, H, W)`` (:func:`fusable`): ``[LH_1, HL_1,
    HH_1, .., HH_J, LL_J]``, level j's bands ``(*lead, H >> j, W >> j)``."""
    if torch.compiler.is_compiling():
        return _wavedec2_op(x, h, levels)
    if torch.is_grad_enabled() and x.requires_grad:
        return list(_Wavedec2.apply(x, h, levels))
    return _wavedec2(x, h, levels)


def waverec2(bands: Sequence[torch.Tensor], h: int) -> torch.Tensor:
    """The inverse of :func:`wavedec2` (bands of any strides)."""
    if torch.compiler.is_compiling():
        return _waverec2_op(list(bands), h)
    if torch.is_grad_enabled() and any(b.requires_grad for b in bands):
        return _Waverec2.apply(h, *bands)
    return _waverec2(bands, h)


# Compiled, the fused calls run as two operators (eagerly, the autograd functions above cost less
# per call); every band is a tensor of its own, as an operator's outputs may not share memory.


@torch.library.custom_op("subband::haar_wavedec2", mutates_args=())
def _wavedec2_op(x: torch.Tensor, h: int, levels: int) -> list[torch.Tensor]:
    return _wavedec2(x, h, levels)


@_wavedec2_op.register_fake
def _(x: torch.Tensor, h: int, levels: int) -> list[torch.Tensor]:
    *lead, H, W = x.shape
    bands = [x.new_empty(*lead, H >> j, W >> j) for j in range(1, levels + 1) for _ in range(3)]
    return [*bands, x.new_empty(*lead, H >> levels, W >> levels)]


@torch.library.custom_op("subband::haar_waverec2", mutates_args=())
def _waverec2_op(bands: list[torch.Tensor], h: int) -> torch.Tensor:
    return _waverec2(bands, h)


@_waverec2_op.register_fake
def _(bands: list[torch.Tensor], h: int) -> torch.Tensor:
    *lead, n1, n2 = bands[0].shape
    return bands[0].new_empty(*lead, 2 * n1, 2 * n2)


def _save_wavedec2(ctx, inputs, output) -> None:  # type: ignore[no-untyped-def]
    ctx.h = inputs[1]


def _save_waverec2(ctx, inputs, output) -> None:  # type: ignore[no-untyped-def]
    ctx.h, ctx.levels = inputs[1], len(inputs[0]) // 3


# each operator's gradient is the other (the bank is orthonormal)
_wavedec2_op.register_autograd(
    lambda ctx, grads: (_waverec2_op(list(grads), ctx.h), None, None), setup_context=_save_wavedec2
)
_waverec2_op.register_autograd(lambda ctx, g: (_wavedec2_op(g, ctx.h, ctx.levels), None), setup_context=_save_waverec2)
