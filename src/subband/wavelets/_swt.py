"""Stationary (undecimated, "a trous") wavelet transform, like ``pywt.swt`` / ``pywt.swt2``.

Level ``j`` filters the approximation of level ``j-1`` with the decomposition filters dilated by
``2**(j-1)``, on a periodic extension, without down-sampling. The inverse averages the undecimated
synthesis: ``a_{j-1} = (r_lo * a_j + r_hi * d_j) / 2`` per axis, which is what PyWavelets' iswt
computes (it uses only the deepest approximation, as here).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from . import _core
from ._dwt import _HALF, _unpack2, as_float_tensor, normalize_axes
from ._filters import Wavelet, WaveletLike, as_wavelet
from ._pad import pad_axis

__all__ = ["swt", "iswt", "swt2", "iswt2", "swt_max_level"]


def swt_max_level(input_len: int) -> int:
    """How many times ``input_len`` halves evenly: the deepest stationary level (pywt's rule)."""
    if input_len < 1:
        raise ValueError("input_len must be >= 1")
    return (input_len & -input_len).bit_length() - 1


def _bank(wavelet: WaveletLike, norm: bool) -> Wavelet:
    w = as_wavelet(wavelet)
    if not norm:
        return w
    s = 1 / math.sqrt(2)
    return Wavelet([f * s for f in (w.dec_lo, w.dec_hi, w.rec_lo, w.rec_hi)], name=f"{w.name}/sqrt2")


def _check(x: torch.Tensor, axes: tuple[int, ...], level: int | None, start_level: int) -> int:
    if start_level < 0:
        raise ValueError(f"start_level must be >= 0, got {start_level}")
    top = min(swt_max_level(x.shape[a]) for a in axes) - start_level
    if level is None:
        level = top
    if level < 1:
        raise ValueError(f"level must be >= 1, got {level}" if level is not None else "no stationary level fits")
    if level > top:
        raise ValueError(
            f"level {level} is too high: sizes {tuple(x.shape[a] for a in axes)} with start_level "
            f"{start_level} allow at most {top} (each level needs the size to halve evenly)"
        )
    return level


def _forward(x: torch.Tensor, w: Wavelet, axes: tuple[int, ...], level: int, start_level: int) -> list[torch.Tensor]:
    """Band-stacked levels, shallowest first: each ``(*lead, 2**k, *N)`` with axes moved last."""
    k = len(axes)
    ends = tuple(range(x.ndim - k, x.ndim))
    xm = x.movedim(axes, ends)
    lead, sizes = tuple(xm.shape[: x.ndim - k]), tuple(xm.shape[x.ndim - k :])
    a = xm.reshape((-1, 1) + sizes)  # (B, 1, *N)
    kernel = _core.down_kernel(w.analysis(a.dtype, a.device), k)
    half = w.dec_len // 2
    out = []
    for j in range(start_level, start_level + level):
        d = 2**j
        for ax in range(2, 2 + k):
            a = pad_axis(a, d * (half - 1), d * half, "periodic", ax)
        y = _core.CONV[k](a, kernel, dilation=d)  # (B, 2**k, *N)
        out.append(y.reshape(lead + (2**k,) + sizes))
        a = y[:, :1]
    return out


def _inverse(levels: list[torch.Tensor], w: Wavelet, k: int, norm: bool) -> torch.Tensor:
    """Inverse of :func:`_forward` from band-stacked levels (shallowest first), axes last.

    With ``norm`` the filters are already scaled by ``1/sqrt(2)`` each way, so no averaging."""
    top = levels[-1]
    lead, sizes = tuple(top.shape[: top.ndim - k - 1]), tuple(top.shape[top.ndim - k :])
    r = w.synthesis(top.dtype, top.device).flip(-1)  # correlation with the reversed filters
    kernel = (_core.outer([r] * k) / (1 if norm else 2**k)).unsqueeze(0)  # (1, 2**k, F, .., F)
    half = w.dec_len // 2
    a = top.reshape((-1, 2**k) + sizes)[:, :1]
    for j in reversed(range(len(levels))):
        d = 2**j  # pywt's iswt always starts at level 0
        c = torch.cat([a, levels[j].reshape((-1, 2**k) + sizes)[:, 1:]], 1)
        for ax in range(2, 2 + k):
            c = pad_axis(c, d * half, d * (half - 1), "periodic", ax)
        a = _core.CONV[k](c, kernel, dilation=d)
    return a.reshape(lead + sizes)


def _prep(x: torch.Tensor) -> tuple[torch.Tensor, torch.dtype]:
    x = as_float_tensor(x)
    return (x.float() if x.dtype in _HALF else x), x.dtype


def swt(
    data: torch.Tensor,
    wavelet: WaveletLike,
    *,
    level: int | None = None,
    start_level: int = 0,
    axis: int = -1,
    trim_approx: bool = False,
    norm: bool = False,
) -> list:
    """Multilevel 1-D stationary wavelet transform, like ``pywt.swt``.

    Returns ``[(cAn, cDn), ..., (cA1, cD1)]``, or with ``trim_approx`` ``[cAn, cDn, ..., cD1]``;
    every array has the input's shape. The length along ``axis`` must be divisible by
    ``2**(start_level + level)``. ``norm=True`` scales the filters by ``1/sqrt(2)`` so that an
    orthogonal wavelet preserves energy.
    """
    x, dtype = _prep(data)
    ax = normalize_axes((axis,), x.ndim)
    level = _check(x, ax, level, start_level)
    if x.is_complex():
        re = swt(x.real, wavelet, level=level, start_level=start_level, axis=axis, trim_approx=trim_approx, norm=norm)
        im = swt(x.imag, wavelet, level=level, start_level=start_level, axis=axis, trim_approx=trim_approx, norm=norm)
        return [_cplx(r, i) for r, i in zip(re, im)]
    levels = _forward(x, _bank(wavelet, norm), ax, level, start_level)
    pairs = [tuple(y.select(-2, b).movedim(-1, ax[0]).to(dtype) for b in range(2)) for y in reversed(levels)]
    if trim_approx:
        return [pairs[0][0]] + [p[1] for p in pairs]
    return pairs


def _cplx(r, i):  # type: ignore[no-untyped-def]
    if isinstance(r, torch.Tensor):
        return torch.complex(r, i)
    return type(r)(_cplx(a, b) for a, b in zip(r, i))


def iswt(coeffs: Sequence, wavelet: WaveletLike, *, norm: bool = False, axis: int = -1) -> torch.Tensor:
    """Inverse of :func:`swt` (either output format), like ``pywt.iswt``."""
    if not isinstance(coeffs, (list, tuple)) or not coeffs:
        raise ValueError("coeffs must be a non-empty list as returned by swt")
    if isinstance(coeffs[0], torch.Tensor):  # trim_approx format
        cA, details = coeffs[0], list(coeffs[1:])
    else:
        cA, details = coeffs[0][0], [c[1] for c in coeffs]
    parts = [as_float_tensor(c, "coefficient") for c in [cA, *details]]
    if len({tuple(p.shape) for p in parts}) != 1:
        raise ValueError(f"all stationary coefficients must have one shape, got {[tuple(p.shape) for p in parts]}")
    if any(p.is_complex() for p in parts):
        re = iswt([parts[0].real] + [p.real for p in parts[1:]], wavelet, norm=norm, axis=axis)
        im = iswt([_imag(parts[0])] + [_imag(p) for p in parts[1:]], wavelet, norm=norm, axis=axis)
        return torch.complex(re, im)
    ax = normalize_axes((axis,), cA.ndim)[0]
    dtype = parts[0].dtype
    work = torch.float32 if dtype in _HALF else dtype
    # band-stacked per level, shallowest first: (*lead, 2, N) with the axis last
    levels = [torch.stack([cA.movedim(ax, -1), d.movedim(ax, -1)], -2).to(work) for d in reversed(details)]
    return _inverse(levels, _bank(wavelet, norm), 1, norm).movedim(-1, ax).to(dtype)


def _imag(t: torch.Tensor) -> torch.Tensor:
    return t.imag if t.is_complex() else torch.zeros_like(t)


def swt2(
    data: torch.Tensor,
    wavelet: WaveletLike,
    *,
    level: int | None = None,
    start_level: int = 0,
    axes: Sequence[int] = (-2, -1),
    trim_approx: bool = False,
    norm: bool = False,
) -> list:
    """Multilevel 2-D stationary wavelet transform, like ``pywt.swt2``.

    Returns ``[(cAn, (cHn, cVn, cDn)), ..., (cA1, (cH1, cV1, cD1))]``, or with ``trim_approx``
    ``[cAn, (cHn, cVn, cDn), ..., (cH1, cV1, cD1)]``.
    """
    if len(axes) != 2:
        raise ValueError(f"swt2 needs exactly two axes, got {tuple(axes)}")
    x, dtype = _prep(data)
    if x.is_complex():
        raise TypeError("swt2 takes real tensors; transform .real and .imag apart")
    ax = normalize_axes(axes, x.ndim)
    level = _check(x, ax, level, start_level)
    levels = _forward(x, _bank(wavelet, norm), ax, level, start_level)
    ends = (x.ndim - 2, x.ndim - 1)

    def band(y: torch.Tensor, b: int) -> torch.Tensor:
        return y.select(-3, b).movedim(ends, ax).to(dtype)

    # band order aa, ad, da, dd -> cA, (cH=da, cV=ad, cD=dd)
    out = [(band(y, 0), (band(y, 2), band(y, 1), band(y, 3))) for y in reversed(levels)]
    if trim_approx:
        return [out[0][0]] + [o[1] for o in out]
    return out


def iswt2(
    coeffs: Sequence, wavelet: WaveletLike, *, norm: bool = False, axes: Sequence[int] = (-2, -1)
) -> torch.Tensor:
    """Inverse of :func:`swt2` (either output format), like ``pywt.iswt2``."""
    if len(axes) != 2:
        raise ValueError(f"iswt2 needs exactly two axes, got {tuple(axes)}")
    if not isinstance(coeffs, (list, tuple)) or not coeffs:
        raise ValueError("coeffs must be a non-empty list as returned by swt2")
    if isinstance(coeffs[0], torch.Tensor):
        cA, details = coeffs[0], [tuple(d) for d in coeffs[1:]]
    else:
        cA, details = coeffs[0][0], [_unpack2(c)[1] for c in coeffs]
    parts = [as_float_tensor(c, "coefficient") for c in [cA, *[t for d in details for t in d]]]
    if len({tuple(p.shape) for p in parts}) != 1:
        raise ValueError(
            f"all stationary coefficients must have one shape, got {sorted({tuple(p.shape) for p in parts})}"
        )
    ax = normalize_axes(axes, cA.ndim)
    ends = (cA.ndim - 2, cA.ndim - 1)
    dtype = parts[0].dtype
    work = torch.float32 if dtype in _HALF else dtype

    def mv(t: torch.Tensor) -> torch.Tensor:
        return t.movedim(ax, ends).to(work)

    levels = [torch.stack([mv(cA), mv(cV), mv(cH), mv(cD)], -3) for cH, cV, cD in reversed(details)]
    return _inverse(levels, _bank(wavelet, norm), 2, norm).movedim(ends, ax).to(dtype)
