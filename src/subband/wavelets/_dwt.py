"""Discrete wavelet transforms with PyWavelets' names, argument order and coefficient layouts.

Single level: :func:`dwt`/:func:`idwt` (1-D), :func:`dwt2`/:func:`idwt2`, :func:`dwtn`/:func:`idwtn`.
Multilevel: :func:`wavedec`/:func:`waverec`, :func:`wavedec2`/:func:`waverec2`,
:func:`wavedecn`/:func:`waverecn`. Every function takes any number of leading batch dimensions,
follows the input's device and dtype, and is differentiable.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from typing import Any

import torch

from . import _core, _haar
from ._filters import Wavelet, WaveletLike, as_wavelet, check_mode

__all__ = [
    "dwt", "idwt", "dwt2", "idwt2", "dwtn", "idwtn",
    "wavedec", "waverec", "wavedec2", "waverec2", "wavedecn", "waverecn",
    "dwt_max_level", "dwt_coeff_len",
]  # fmt: skip

_HALF = (torch.float16, torch.bfloat16)
_MAX_AXES = 3  # conv3d is the widest convolution; more axes are done in chunks


# --------------------------------------------------------------------------- checks


def as_float_tensor(x: Any, what: str = "data") -> torch.Tensor:
    """Return ``x`` as a floating (or complex) tensor, or raise ``TypeError`` saying why not."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if not (x.is_floating_point() or x.is_complex()):
        raise TypeError(f"{what} must be a floating-point tensor, got {x.dtype}; convert it first, e.g. x.float()")
    return x


def normalize_axes(axes: Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    """Non-negative, unique axes; ``None`` means all of them."""
    if axes is None:
        return tuple(range(ndim))
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for a {ndim}-d tensor")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"axes must be unique, got {tuple(axes)}")
    if not out:
        raise ValueError("at least one axis is needed")
    return tuple(out)


def dwt_max_level(data_len: int, filter_len: int | WaveletLike) -> int:
    """Deepest useful level: ``floor(log2(data_len / (filter_len - 1)))`` (PyWavelets' rule)."""
    if not isinstance(filter_len, int):
        filter_len = as_wavelet(filter_len).dec_len
    if data_len < 0:
        raise ValueError("data_len must be >= 0")
    return _core.max_level(data_len, filter_len)


def dwt_coeff_len(data_len: int, filter_len: int | WaveletLike, mode: str) -> int:
    """Length of the coefficients one level of :func:`dwt` gives."""
    if not isinstance(filter_len, int):
        filter_len = as_wavelet(filter_len).dec_len
    return _core.out_len(data_len, filter_len, check_mode(mode))


def _check_level(sizes: Sequence[int], flen: int, level: int | None) -> int:
    """PyWavelets' rule (warn past ``dwt_max_level``), plus an error past ``log2(size)`` halvings."""
    top = min(_core.max_level(s, flen) for s in sizes)
    if level is None:
        return top
    if not isinstance(level, int) or isinstance(level, bool):
        raise TypeError(f"level must be an int or None, got {type(level).__name__}")
    if level < 0:
        raise ValueError(f"level must be >= 0, got {level}")
    hard = int(min(sizes)).bit_length() - 1  # floor(log2(size)): beyond it the signal is used up
    if level > hard:
        raise ValueError(
            f"level {level} is too high for sizes {tuple(sizes)}: a size of {min(sizes)} halves at most "
            f"{hard} times (and {top} levels avoid boundary effects with a filter of length {flen}, see dwt_max_level)"
        )
    if level > top:
        warnings.warn(
            f"Level value of {level} is too high: all coefficients will experience boundary effects.",
            UserWarning,
            stacklevel=3,
        )
    return level


# --------------------------------------------------------------------------- n-D single level


def _analyze(x: torch.Tensor, w: Wavelet, mode: str) -> tuple[torch.Tensor, ...]:
    """``(B, *N)`` -> the ``2**k`` bands ``(B, *n)``; more than three axes go in chunks."""
    k = x.ndim - 1
    if k <= _MAX_AXES:
        return _core.analysis(x, w, mode)
    kl, kc = k - _MAX_AXES, _MAX_AXES  # leading axes, last chunk
    B, Nl = x.shape[0], tuple(x.shape[1 : 1 + kl])
    y = torch.stack(_core.analysis(x.reshape((-1,) + tuple(x.shape[1 + kl :])), w, mode), 1)
    nc = tuple(y.shape[2:])
    # (B*prod Nl, 2**kc, *nc) -> (B, 2**kc, *nc, *Nl) -> (B*2**kc*prod nc, *Nl)
    y = y.reshape((B,) + Nl + (2**kc,) + nc)
    y = y.movedim(tuple(range(1, 1 + kl)), tuple(range(y.ndim - kl, y.ndim)))
    z = torch.stack(_analyze(y.reshape((-1,) + Nl), w, mode), 1)  # (B*2**kc*prod nc, 2**kl, *nl)
    nl = tuple(z.shape[2:])
    # (B, 2**kc, *nc, 2**kl, *nl) -> (B, 2**kl, 2**kc, *nl, *nc) -> (B, 2**k, *n)
    z = z.reshape((B, 2**kc) + nc + (2**kl,) + nl)
    perm = [0, 2 + kc, 1] + list(range(3 + kc, 3 + kc + kl)) + list(range(2, 2 + kc))
    return z.permute(perm).reshape((B, 2**k) + nl + nc).unbind(1)


def _synthesize(parts: list[torch.Tensor], w: Wavelet, mode: str) -> torch.Tensor:
    """The ``2**k`` bands ``(B, *n)`` -> ``(B, *N)``; the inverse of :func:`_analyze`."""
    k = parts[0].ndim - 1
    if k <= _MAX_AXES:
        return _core.synthesis(parts, w, mode)
    bands = torch.stack(parts, 1)
    kl, kc = k - _MAX_AXES, _MAX_AXES
    B, nl, nc = bands.shape[0], tuple(bands.shape[2 : 2 + kl]), tuple(bands.shape[2 + kl :])
    # (B, 2**kl, 2**kc, *nl, *nc) -> (B, 2**kc, *nc, 2**kl, *nl) -> (B*2**kc*prod nc, 2**kl, *nl)
    t = bands.reshape((B, 2**kl, 2**kc) + nl + nc)
    perm = [0, 2] + list(range(3 + kl, 3 + kl + kc)) + [1] + list(range(3, 3 + kl))
    x = _synthesize(list(t.permute(perm).reshape((-1, 2**kl) + nl).unbind(1)), w, mode)  # (B*2**kc*prod nc, *Nl)
    Nl = tuple(x.shape[1:])
    # (B, 2**kc, *nc, *Nl) -> (B, *Nl, 2**kc, *nc) -> (B*prod Nl, 2**kc, *nc)
    x = x.reshape((B, 2**kc) + nc + Nl)
    x = x.permute([0] + list(range(2 + kc, 2 + kc + kl)) + list(range(1, 2 + kc)))
    y = _core.synthesis(list(x.reshape((-1, 2**kc) + nc).unbind(1)), w, mode)
    return y.reshape((B,) + Nl + tuple(y.shape[1:]))


def _forward(x: torch.Tensor, w: Wavelet, mode: str, axes: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """``x`` -> dict of coefficients keyed like ``pywt.dwtn`` (one char per axis, in ``axes`` order)."""
    if x.is_complex():
        re, im = _forward(x.real, w, mode, axes), _forward(x.imag, w, mode, axes)
        return {key: torch.complex(re[key], im[key]) for key in re}
    for a in axes:
        if x.shape[a] < 1:
            raise ValueError(f"cannot transform an empty axis (axis {a} of shape {tuple(x.shape)})")
        if x.shape[a] < 2 and mode in ("reflect", "antireflect"):
            raise ValueError(f"mode {mode!r} needs at least 2 samples along each axis, axis {a} has 1")
    dtype = x.dtype
    k = len(axes)
    ends = tuple(range(x.ndim - k, x.ndim))
    xm = x.movedim(axes, ends) if axes != ends else x  # (*lead, *N)
    lead, sizes = tuple(xm.shape[: x.ndim - k]), tuple(xm.shape[x.ndim - k :])
    xb = xm.reshape((-1,) + sizes)
    if dtype in _HALF:  # computed in float32, returned in the input's dtype
        xb = xb.float()
    bands = _analyze(xb, w, mode)  # 2**k of (B, *n)
    n = tuple(bands[0].shape[1:])
    out = {key: band.reshape(lead + n) for key, band in zip(_core.band_keys(k), bands)}
    if axes != ends:
        out = {key: band.movedim(ends, axes) for key, band in out.items()}
    return {key: band.to(dtype) for key, band in out.items()} if dtype in _HALF else out


def _inverse(coeffs: dict[str, torch.Tensor | None], w: Wavelet, mode: str, axes: tuple[int, ...]) -> torch.Tensor:
    """Inverse of :func:`_forward`; missing or ``None`` entries count as zeros."""
    k = len(axes)
    keys = _core.band_keys(k)
    bad = [key for key in coeffs if key not in keys]
    if bad:
        raise ValueError(f"invalid coefficient keys {bad}: expected {k}-letter strings of 'a' and 'd'")
    given = {key: as_float_tensor(v, f"coefficient {key!r}") for key, v in coeffs.items() if v is not None}
    if not given:
        raise ValueError("at least one coefficient array must be given (not None)")
    shapes = {tuple(v.shape) for v in given.values()}
    if len(shapes) != 1:
        raise ValueError(
            "all coefficients must have one shape, got "
            + ", ".join(f"{key}: {tuple(v.shape)}" for key, v in given.items())
        )
    ref = next(iter(given.values()))
    if ref.ndim < k:
        raise ValueError(f"coefficients of shape {tuple(ref.shape)} have fewer than {k} axes")
    if any(v.is_complex() for v in given.values()):
        re = _inverse({kk: v.real for kk, v in given.items()}, w, mode, axes)
        im = _inverse({kk: v.imag if v.is_complex() else torch.zeros_like(v) for kk, v in given.items()}, w, mode, axes)
        return torch.complex(re, im)
    dtype = functools.reduce(torch.promote_types, (v.dtype for v in given.values()))
    work = torch.float32 if dtype in _HALF else dtype
    ends = tuple(range(ref.ndim - k, ref.ndim))
    moved = ref.movedim(axes, ends).shape if axes != ends else ref.shape
    lead, n = tuple(moved[: ref.ndim - k]), tuple(moved[ref.ndim - k :])
    if mode != "periodization" and any(2 * s - w.dec_len + 2 < 1 for s in n):
        raise ValueError(
            f"coefficients of shape {n} along the axes are too short for {w.name!r} (filter length {w.dec_len})"
        )
    if axes != ends:
        given = {key: v.movedim(axes, ends) for key, v in given.items()}
    parts = {key: (v if v.dtype == work else v.to(work)).reshape((-1,) + n) for key, v in given.items()}
    like = next(iter(parts.values()))
    x = _synthesize([parts[key] if key in parts else torch.zeros_like(like) for key in keys], w, mode)  # (B, *N)
    x = x.reshape(lead + tuple(x.shape[1:]))
    x = x.movedim(ends, axes) if axes != ends else x
    return x if x.dtype == dtype else x.to(dtype)


# --------------------------------------------------------------------------- public API


def dwtn(
    data: torch.Tensor, wavelet: WaveletLike, *, mode: str = "symmetric", axes: Sequence[int] | None = None
) -> dict[str, torch.Tensor]:
    """Single-level n-D DWT, like ``pywt.dwtn``.

    Args:
        data: floating tensor; every axis not in ``axes`` is a batch axis.
        wavelet: wavelet name, ``pywt.Wavelet``, :class:`Wavelet` or custom filter bank.
        mode: boundary mode (see :data:`MODES`).
        axes: axes to transform (default: all).

    Returns:
        dict keyed by ``'a'``/``'d'`` strings, one letter per axis in ``axes`` order
        (``'aa'``, ``'ad'``, ``'da'``, ``'dd'`` in 2-D).
    """
    data = as_float_tensor(data)
    return _forward(data, as_wavelet(wavelet), check_mode(mode), normalize_axes(axes, data.ndim))


def idwtn(
    coeffs: dict[str, torch.Tensor | None],
    wavelet: WaveletLike,
    *,
    mode: str = "symmetric",
    axes: Sequence[int] | None = None,
) -> torch.Tensor:
    """Single-level n-D inverse DWT, like ``pywt.idwtn``; ``None`` or missing keys are zeros."""
    if not isinstance(coeffs, dict):
        raise TypeError(f"coeffs must be a dict as returned by dwtn, got {type(coeffs).__name__}")
    ref = next((v for v in coeffs.values() if v is not None), None)
    k = len(next(iter(coeffs))) if coeffs else 0
    if axes is None:
        if ref is None:
            raise ValueError("at least one coefficient array must be given (not None)")
        axes = tuple(range(ref.ndim - k, ref.ndim)) if k else None
    ax = normalize_axes(axes, ref.ndim if ref is not None else max(axes) + 1)  # type: ignore[arg-type]
    return _inverse(coeffs, as_wavelet(wavelet), check_mode(mode), ax)


def dwt(
    data: torch.Tensor, wavelet: WaveletLike, *, mode: str = "symmetric", axis: int = -1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Single-level 1-D DWT along ``axis``: ``(cA, cD)``, like ``pywt.dwt``.

    Example:
        >>> cA, cD = dwt(torch.tensor([1., 2., 3., 4.]), "haar")
        >>> cA
        tensor([2.1213, 4.9497])
    """
    c = dwtn(data, wavelet, mode=mode, axes=(axis,))
    return c["a"], c["d"]


def idwt(
    cA: torch.Tensor | None, cD: torch.Tensor | None, wavelet: WaveletLike, *, mode: str = "symmetric", axis: int = -1
) -> torch.Tensor:
    """Single-level 1-D inverse DWT, like ``pywt.idwt``; either input may be ``None``."""
    ref = cA if cA is not None else cD
    if ref is None:
        raise ValueError("at least one of cA and cD must be given (not None)")
    return idwtn({"a": cA, "d": cD}, wavelet, mode=mode, axes=(normalize_axes((axis,), ref.ndim)[0],))


def dwt2(
    data: torch.Tensor, wavelet: WaveletLike, *, mode: str = "symmetric", axes: Sequence[int] = (-2, -1)
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Single-level 2-D DWT: ``(cA, (cH, cV, cD))``, like ``pywt.dwt2``."""
    if len(axes) != 2:
        raise ValueError(f"dwt2 needs exactly two axes, got {tuple(axes)}")
    c = dwtn(data, wavelet, mode=mode, axes=axes)
    return c["aa"], (c["da"], c["ad"], c["dd"])


def idwt2(
    coeffs: tuple, wavelet: WaveletLike, *, mode: str = "symmetric", axes: Sequence[int] = (-2, -1)
) -> torch.Tensor:
    """Single-level 2-D inverse DWT of ``(cA, (cH, cV, cD))``, like ``pywt.idwt2``."""
    if len(axes) != 2:
        raise ValueError(f"idwt2 needs exactly two axes, got {tuple(axes)}")
    cA, details = _unpack2(coeffs)
    cH, cV, cD = details
    ref = next((v for v in (cA, cH, cV, cD) if v is not None), None)
    if ref is None:
        raise ValueError("at least one coefficient array must be given (not None)")
    ax = normalize_axes(axes, ref.ndim)
    return _inverse({"aa": cA, "da": cH, "ad": cV, "dd": cD}, as_wavelet(wavelet), check_mode(mode), ax)


def _unpack2(coeffs: Any) -> tuple[Any, tuple[Any, Any, Any]]:
    try:
        cA, details = coeffs
        if details is None:
            details = (None, None, None)
        cH, cV, cD = details
    except (TypeError, ValueError):
        raise ValueError("2-D coefficients must be (cA, (cH, cV, cD))") from None
    return cA, (cH, cV, cD)


def wavedecn(
    data: torch.Tensor,
    wavelet: WaveletLike,
    *,
    mode: str = "symmetric",
    level: int | None = None,
    axes: Sequence[int] | None = None,
) -> list:
    """Multilevel n-D DWT: ``[cAn, {details_n}, ..., {details_1}]``, like ``pywt.wavedecn``."""
    data = as_float_tensor(data)
    w, mode, ax = as_wavelet(wavelet), check_mode(mode), normalize_axes(axes, data.ndim)
    level = _check_level([data.shape[a] for a in ax], w.dec_len, level)
    fused = _haar_wavedec(data, w, level, ax)
    if fused is not None:
        return fused
    out: list = []
    a = data
    for _ in range(level):
        c = _forward(a, w, mode, ax)
        a = c.pop("a" * len(ax))
        out.append(c)
    out.append(a)
    return out[::-1]


def waverecn(
    coeffs: Sequence, wavelet: WaveletLike, *, mode: str = "symmetric", axes: Sequence[int] | None = None
) -> torch.Tensor:
    """Inverse of :func:`wavedecn`, like ``pywt.waverecn``."""
    if not isinstance(coeffs, (list, tuple)) or len(coeffs) == 0:
        raise ValueError("coeffs must be a non-empty list [cAn, {details_n}, ..., {details_1}]")
    a, ds = coeffs[0], list(coeffs[1:])
    if not all(isinstance(d, dict) for d in ds):
        raise ValueError("detail coefficients must be dicts as returned by wavedecn")
    if not ds:
        return a
    ref = a if a is not None else next(v for d in ds for v in d.values() if v is not None)
    k = len(next(iter(ds[0]))) if ds[0] else (ref.ndim if axes is None else len(axes))
    ax = normalize_axes(axes if axes is not None else tuple(range(ref.ndim - k, ref.ndim)), ref.ndim)
    w, mode = as_wavelet(wavelet), check_mode(mode)
    fused = _haar_waverec(a, ds, w, ax)
    if fused is not None:
        return fused
    for level, d in enumerate(ds):
        d = {key: v for key, v in d.items()}
        a = _match(a, d, ax, len(ds) - level)
        d["a" * len(ax)] = a
        a = _inverse(d, w, mode, ax)
    return a


def _fusing(w: Wavelet, axes: tuple[int, ...]) -> bool:
    """Whether several levels may run at once (:func:`._haar.wavedec2`): the Haar bank, two axes,
    not traced for ``torch.export`` or the JIT (their graphs hold only PyTorch's operators)."""
    return bool(w.haar_sign) and len(axes) == 2 and not torch.compiler.is_exporting() and not torch.jit.is_tracing()


def _haar_wavedec(data: torch.Tensor, w: Wavelet, level: int, axes: tuple[int, ...]) -> list | None:
    """:func:`wavedecn`'s result in one pass over ``data`` (:func:`._haar.wavedec2`), or None where
    that does not apply."""
    if not _fusing(w, axes):
        return None
    ends = (data.ndim - 2, data.ndim - 1)
    x = data.movedim(axes, ends) if axes != ends else data
    if not _haar.fusable(x, level):
        return None
    bands = _haar.wavedec2(x, w.haar_sign, level)
    if axes != ends:
        bands = [b.movedim(ends, axes) for b in bands]
    return [bands[-1]] + [dict(zip(("ad", "da", "dd"), bands[3 * j : 3 * j + 3])) for j in reversed(range(level))]


def _haar_waverec(a: Any, ds: list[dict], w: Wavelet, axes: tuple[int, ...]) -> torch.Tensor | None:
    """:func:`waverecn`'s result in one pass (:func:`._haar.waverec2`), or None where that does not
    apply: every band given, as tensors of one dtype, each level twice the size of the next."""
    if not _fusing(w, axes) or not isinstance(a, torch.Tensor) or a.ndim < 2:
        return None
    if any(set(d) != {"ad", "da", "dd"} or not all(isinstance(v, torch.Tensor) for v in d.values()) for d in ds):
        return None
    ends = (a.ndim - 2, a.ndim - 1)
    bands = [d[key] for d in reversed(ds) for key in ("ad", "da", "dd")] + [a]  # finest level first
    if axes != ends:
        bands = [b.movedim(axes, ends) for b in bands]
    lead, (n1, n2), J = bands[-1].shape[:-2], bands[-1].shape[-2:], len(ds)
    if any(b.shape != lead + (n1 << (J - 1 - i // 3), n2 << (J - 1 - i // 3)) for i, b in enumerate(bands[:-1])):
        return None
    if not _haar.fusable_bands(bands):
        return None
    x = _haar.waverec2(bands, w.haar_sign)
    return x.movedim(ends, axes) if axes != ends else x


def _match(a: torch.Tensor | None, d: dict, axes: tuple[int, ...], level: int) -> torch.Tensor | None:
    """Crop the approximation by one sample where a deeper level left it one longer (as pywt)."""
    ref = next((v for v in d.values() if v is not None), None)
    if a is None or ref is None:
        return a
    if a.ndim != ref.ndim:
        raise ValueError(f"level {level}: approximation has {a.ndim} dims, details have {ref.ndim}")
    diff = [a.shape[i] - ref.shape[i] for i in range(a.ndim)]
    if any(df < 0 or df > 1 or (df and i not in axes) for i, df in enumerate(diff)):
        raise ValueError(
            f"level {level}: approximation of shape {tuple(a.shape)} does not fit details of shape {tuple(ref.shape)}"
        )
    return a[tuple(slice(s) for s in ref.shape)] if any(diff) else a


def wavedec(
    data: torch.Tensor, wavelet: WaveletLike, *, mode: str = "symmetric", level: int | None = None, axis: int = -1
) -> list[torch.Tensor]:
    """Multilevel 1-D DWT: ``[cAn, cDn, ..., cD1]``, like ``pywt.wavedec``."""
    c = wavedecn(data, wavelet, mode=mode, level=level, axes=(axis,))
    return [c[0]] + [d["d"] for d in c[1:]]


def waverec(
    coeffs: Sequence[torch.Tensor | None], wavelet: WaveletLike, *, mode: str = "symmetric", axis: int = -1
) -> torch.Tensor:
    """Inverse of :func:`wavedec`, like ``pywt.waverec``."""
    if not isinstance(coeffs, (list, tuple)) or len(coeffs) < 1:
        raise ValueError("coeffs must be a non-empty list [cAn, cDn, ..., cD1]")
    ref = next((c for c in coeffs if c is not None), None)
    if ref is None:
        raise ValueError("at least one coefficient array must be given (not None)")
    ax = (normalize_axes((axis,), ref.ndim)[0],)
    return waverecn([coeffs[0]] + [{"d": d} for d in coeffs[1:]], wavelet, mode=mode, axes=ax)


def wavedec2(
    data: torch.Tensor,
    wavelet: WaveletLike,
    *,
    mode: str = "symmetric",
    level: int | None = None,
    axes: Sequence[int] = (-2, -1),
) -> list:
    """Multilevel 2-D DWT: ``[cAn, (cHn, cVn, cDn), ..., (cH1, cV1, cD1)]``, like ``pywt.wavedec2``."""
    if len(axes) != 2:
        raise ValueError(f"wavedec2 needs exactly two axes, got {tuple(axes)}")
    c = wavedecn(data, wavelet, mode=mode, level=level, axes=axes)
    return [c[0]] + [(d["da"], d["ad"], d["dd"]) for d in c[1:]]


def waverec2(
    coeffs: Sequence, wavelet: WaveletLike, *, mode: str = "symmetric", axes: Sequence[int] = (-2, -1)
) -> torch.Tensor:
    """Inverse of :func:`wavedec2`, like ``pywt.waverec2``."""
    if len(axes) != 2:
        raise ValueError(f"waverec2 needs exactly two axes, got {tuple(axes)}")
    if not isinstance(coeffs, (list, tuple)) or len(coeffs) < 1:
        raise ValueError("coeffs must be a non-empty list [cAn, (cHn, cVn, cDn), ..., (cH1, cV1, cD1)]")
    ds = []
    for i, d in enumerate(coeffs[1:]):
        try:
            cH, cV, cD = d
        except (TypeError, ValueError):
            raise ValueError(f"detail entry {i + 1} must be a tuple (cH, cV, cD)") from None
        ds.append({"da": cH, "ad": cV, "dd": cD})
    return waverecn([coeffs[0]] + ds, wavelet, mode=mode, axes=axes)
