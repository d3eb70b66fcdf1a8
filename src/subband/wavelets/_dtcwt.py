"""Dual-tree complex wavelet transform (Kingsbury, "Complex wavelets for shift invariant analysis
and filtering of signals", ACHA 2001; Selesnick, Baraniuk, Kingsbury, "The dual-tree complex wavelet
transform", IEEE SPM 2005), 1-D and 2-D, forward and inverse, differentiable, on any device.

Two real wavelet trees whose filters are offset by a quarter sample (the q-shift filters) form the
real and imaginary parts of approximately analytic wavelets: the magnitude of a coefficient hardly
changes when the signal shifts (approximate shift invariance), and in 2-D there are six oriented
subbands (about +-15, +-45, +-75 degrees) instead of the real DWT's three. Level 1 uses a
biorthogonal pair (``biort``) without decimation between the trees; levels 2 and above use the
q-shift filters (``qshift``). Coefficients and boundary handling (half-sample symmetric extension;
a level whose input length is not a multiple of 4 is first extended by one sample at each end)
equal those of the ``dtcwt`` package, which the tests use as the oracle.

Layouts:
    1-D (:func:`dtcwt`, along ``axis``): ``lowpass (..., N / 2^J)`` real and
    ``highpasses[j] (..., N / 2^(j+1))`` complex, finest level first.
    2-D (:func:`dtcwt2`, along ``axes``): ``lowpass (..., H / 2^J, W / 2^J)`` real and
    ``highpasses[j] (..., 6, H / 2^(j+1), W / 2^(j+1))`` complex; the six orientations are ordered
    as in ``dtcwt``: 15, 45, 75, 105, 135, 165 degrees. Odd 2-D sizes are extended by repeating the
    last row/column first, and the inverse returns the extended size.

Example:
    >>> x = torch.randn(4, 64)
    >>> lo, hi = dtcwt(x, nlevels=3)
    >>> [h.shape for h in hi]
    [torch.Size([4, 32]), torch.Size([4, 16]), torch.Size([4, 8])]
    >>> torch.allclose(idtcwt((lo, hi)), x, atol=1e-5)
    True
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._dtcwt_filters import BIORT, QSHIFT

__all__ = ["dtcwt", "idtcwt", "dtcwt2", "idtcwt2", "dtcwt_filters", "DTCWT1d", "IDTCWT1d", "DTCWT2d", "IDTCWT2d"]

_BIORT_NAMES = ("h0o", "g0o", "h1o", "g1o")
_QSHIFT_NAMES = ("h0a", "h0b", "g0a", "g0b", "h1a", "h1b", "g1a", "g1b")
Coeffs = tuple[torch.Tensor, list[torch.Tensor]]


def dtcwt_filters(
    biort: str = "near_sym_a",
    qshift: str = "qshift_a",
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """The filters of a DTCWT as 1-D tensors: level 1 ``h0o, g0o, h1o, g1o`` (analysis/synthesis
    low/high) and q-shift ``h0a, h0b, g0a, g0b, h1a, h1b, g1a, g1b`` (trees a and b)."""
    if biort not in BIORT:
        raise ValueError(f"biort must be one of {sorted(BIORT)}, got {biort!r}")
    if qshift not in QSHIFT:
        raise ValueError(f"qshift must be one of {sorted(QSHIFT)}, got {qshift!r}")
    dtype = dtype or torch.get_default_dtype()
    pairs = [*zip(_BIORT_NAMES, BIORT[biort]), *zip(_QSHIFT_NAMES, QSHIFT[qshift])]
    return {name: torch.tensor(values, dtype=dtype, device=device) for name, values in pairs}


@functools.lru_cache(maxsize=256)
def _symmetric_index(n: int, before: int, after: int) -> torch.Tensor:
    """Indices of ``x`` extended by ``before``/``after`` samples with half-sample symmetry
    (``... x1 x0 | x0 x1 ... x_{n-1} | x_{n-1} x_{n-2} ...``), periodic with period ``2n``."""
    i = torch.arange(-before, n + after) % (2 * n)
    return torch.where(i < n, i, 2 * n - 1 - i)


def _extend(x: torch.Tensor, before: int, after: int) -> torch.Tensor:
    return x.index_select(-1, _symmetric_index(x.shape[-1], before, after).to(x.device))


def _corr(x: torch.Tensor, h: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """'valid' convolution of the last axis with ``h`` (correlation with the reversed filter)."""
    lead = x.shape[:-1]
    y = F.conv1d(x.reshape(-1, 1, x.shape[-1]), h.flip(0).view(1, 1, -1), stride=stride)  # (B, 1, n')
    return y.view(*lead, y.shape[-1])


def _filter(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Undecimated filtering of the last axis with symmetric extension (odd ``h``: same length)."""
    m2 = h.shape[0] // 2
    return _corr(_extend(x, m2, m2), h)


def _filter_down(x: torch.Tensor, ha: torch.Tensor, hb: torch.Tensor) -> torch.Tensor:
    """Filter the last axis with ``ha`` and ``hb`` and decimate by 2, interleaving the two trees:
    ``ha`` runs on the even-indexed samples of the extended signal, ``hb`` on the odd ones, each
    keeping every second output (so the trees sit a quarter sample apart at the new rate)."""
    n, m = x.shape[-1], ha.shape[0]
    if n % 4:
        raise ValueError(f"length must be a multiple of 4 at a q-shift level, got {n}")
    z = _extend(x, m, m)  # (..., n + 2m)
    ya = _corr(z[..., 0::2][..., 1:], ha, stride=2)  # (..., n/4)
    yb = _corr(z[..., 1::2][..., 1:], hb, stride=2)  # (..., n/4)
    pair = (ya, yb) if float((ha * hb).sum()) > 0 else (yb, ya)
    return torch.stack(pair, -1).flatten(-2)  # (..., n/4, 2) -> (..., n/2)


def _filter_up(x: torch.Tensor, ha: torch.Tensor, hb: torch.Tensor) -> torch.Tensor:
    """Interpolate the last axis by 2 with the synthesis pair ``ha``, ``hb``: the even and odd taps
    of each filter, run on one of two interleaved streams of the extended input, give the four
    output phases."""
    r, m = x.shape[-1], ha.shape[0]
    m2 = m // 2
    z = _extend(x, m2, m2)  # (..., r + m)
    count = (r + m - 2) // 2
    base = 1 if m2 % 2 else 2
    a, b = (base + 1, base) if float((ha * hb).sum()) > 0 else (base, base + 1)

    def stream(offset: int) -> torch.Tensor:
        return z[..., offset::2][..., :count]  # (..., count)

    if m2 % 2:
        phases = (
            _corr(stream(b), ha[0::2]),
            _corr(stream(a), hb[0::2]),
            _corr(stream(b), ha[1::2]),
            _corr(stream(a), hb[1::2]),
        )
    else:
        phases = (
            _corr(stream(b - 2), ha[1::2]),
            _corr(stream(a - 2), hb[1::2]),
            _corr(stream(b), ha[0::2]),
            _corr(stream(a), hb[0::2]),
        )
    return torch.stack(phases, -1).flatten(-2)  # (..., r/2, 4) -> (..., 2r)


def _on_rows(fn, x: torch.Tensor, *filters: torch.Tensor) -> torch.Tensor:
    """Apply a last-axis filter ``fn`` along axis -2."""
    return fn(x.transpose(-1, -2), *filters).transpose(-1, -2)


def _prepare(data: torch.Tensor, nlevels: int) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise TypeError(f"data must be a torch.Tensor, got {type(data).__name__}")
    if nlevels < 0:
        raise ValueError(f"nlevels must be >= 0, got {nlevels}")
    if data.is_complex():
        raise ValueError("the DTCWT takes real input")
    return data if data.is_floating_point() else data.to(torch.get_default_dtype())


def _edge_extend(x: torch.Tensor) -> torch.Tensor:
    """Repeat the first and last samples of the last axis once (a q-shift level needs length % 4 == 0)."""
    return torch.cat([x[..., :1], x, x[..., -1:]], -1)


def _complex_1d(hi: torch.Tensor) -> torch.Tensor:
    return torch.complex(hi[..., 0::2], hi[..., 1::2])  # (..., n) -> (..., n/2): tree a real, tree b imaginary


def _real_1d(w: torch.Tensor) -> torch.Tensor:
    return torch.stack((w.real, w.imag), -1).flatten(-2)  # (..., n/2) -> (..., n)


def _forward_1d(x: torch.Tensor, nlevels: int, f: dict[str, torch.Tensor]) -> Coeffs:
    if x.shape[-1] % 2:
        raise ValueError(f"the DTCWT needs an even length along the transform axis, got {x.shape[-1]}")
    if nlevels == 0:
        return x, []
    hi = [_complex_1d(_filter(x, f["h1o"]))]
    lo = _filter(x, f["h0o"])
    for _ in range(1, nlevels):
        if lo.shape[-1] % 4:
            lo = _edge_extend(lo)
        hi.append(_complex_1d(_filter_down(lo, f["h1b"], f["h1a"])))
        lo = _filter_down(lo, f["h0b"], f["h0a"])
    return lo, hi


def _inverse_1d(lo: torch.Tensor, hi: Sequence[torch.Tensor], f: dict[str, torch.Tensor]) -> torch.Tensor:
    z = lo
    for level in range(len(hi) - 1, 0, -1):
        z = _filter_up(z, f["g0b"], f["g0a"]) + _filter_up(_real_1d(hi[level]), f["g1b"], f["g1a"])
        want = 2 * hi[level - 1].shape[-1]
        if z.shape[-1] == want + 2:  # the forward extended this level by one sample at each end
            z = z[..., 1:-1]
        if z.shape[-1] != want:
            raise ValueError(f"highpass sizes do not fit together: level {level} gives {z.shape[-1]}, want {want}")
    if hi:
        z = _filter(z, f["g0o"]) + _filter(_real_1d(hi[0]), f["g1o"])
    return z


def _to_complex_pair(y: torch.Tensor) -> torch.Tensor:
    """Quads of a real ``(..., H, W)`` subband to the two complex orientations ``(..., 2, H/2, W/2)``."""
    s = math.sqrt(0.5)
    p = torch.complex(y[..., 0::2, 0::2], y[..., 0::2, 1::2]) * s  # (a + jb) / sqrt(2)
    q = torch.complex(y[..., 1::2, 1::2], -y[..., 1::2, 0::2]) * s  # (d - jc) / sqrt(2)
    return torch.stack((p - q, p + q), -3)


def _from_complex_pair(w0: torch.Tensor, w1: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_to_complex_pair`: ``(..., H, W)`` twice -> real ``(..., 2H, 2W)``."""
    s = math.sqrt(0.5)
    p, q = (w0 + w1) * s, (w0 - w1) * s
    even = torch.stack((p.real, p.imag), -1).flatten(-2)  # (..., H, 2W)
    odd = torch.stack((q.imag, -q.real), -1).flatten(-2)
    return torch.stack((even, odd), -2).flatten(-3, -2)  # (..., H, 2, 2W) -> (..., 2H, 2W)


def _orientations(horizontal: torch.Tensor, diagonal: torch.Tensor, vertical: torch.Tensor) -> torch.Tensor:
    """Three complex pairs ``(..., 2, h, w)`` to the six orientations 15, 45, 75, 105, 135, 165 degrees."""
    parts = (horizontal[..., 0, :, :], diagonal[..., 0, :, :], vertical[..., 0, :, :])
    parts += (vertical[..., 1, :, :], diagonal[..., 1, :, :], horizontal[..., 1, :, :])
    return torch.stack(parts, -3)  # (..., 6, h, w)


def _forward_2d(x: torch.Tensor, nlevels: int, f: dict[str, torch.Tensor]) -> Coeffs:
    if x.ndim < 2:
        raise ValueError(f"dtcwt2 needs at least 2 dims, got shape {tuple(x.shape)}")
    if x.shape[-2] % 2:
        x = torch.cat([x, x[..., -1:, :]], -2)
    if x.shape[-1] % 2:
        x = torch.cat([x, x[..., -1:]], -1)
    if nlevels == 0:
        return x, []
    lo, hi = _on_rows(_filter, x, f["h0o"]), _on_rows(_filter, x, f["h1o"])  # along H
    highs = [
        _orientations(
            _to_complex_pair(_filter(hi, f["h0o"])),  # along W
            _to_complex_pair(_filter(hi, f["h1o"])),
            _to_complex_pair(_filter(lo, f["h1o"])),
        )
    ]
    ll = _filter(lo, f["h0o"])
    for _ in range(1, nlevels):
        if ll.shape[-2] % 4:
            ll = _edge_extend(ll.transpose(-1, -2)).transpose(-1, -2)
        if ll.shape[-1] % 4:
            ll = _edge_extend(ll)
        lo = _on_rows(_filter_down, ll, f["h0b"], f["h0a"])
        hi = _on_rows(_filter_down, ll, f["h1b"], f["h1a"])
        highs.append(
            _orientations(
                _to_complex_pair(_filter_down(hi, f["h0b"], f["h0a"])),
                _to_complex_pair(_filter_down(hi, f["h1b"], f["h1a"])),
                _to_complex_pair(_filter_down(lo, f["h1b"], f["h1a"])),
            )
        )
        ll = _filter_down(lo, f["h0b"], f["h0a"])
    return ll, highs


def _inverse_2d(lo: torch.Tensor, hi: Sequence[torch.Tensor], f: dict[str, torch.Tensor]) -> torch.Tensor:
    z = lo
    for level in range(len(hi) - 1, -1, -1):
        w = hi[level]
        if w.ndim < 3 or w.shape[-3] != 6:
            raise ValueError(f"highpasses must be (..., 6, h, w), got {tuple(w.shape)} at level {level}")
        lh = _from_complex_pair(w[..., 0, :, :], w[..., 5, :, :])
        hl = _from_complex_pair(w[..., 2, :, :], w[..., 3, :, :])
        hh = _from_complex_pair(w[..., 1, :, :], w[..., 4, :, :])
        if level:
            up = _filter_up
            g0, g1 = (f["g0b"], f["g0a"]), (f["g1b"], f["g1a"])
        else:
            up = _filter
            g0, g1 = (f["g0o"],), (f["g1o"],)
        y1 = _on_rows(up, z, *g0) + _on_rows(up, lh, *g1)
        y2 = _on_rows(up, hl, *g0) + _on_rows(up, hh, *g1)
        z = up(y1, *g0) + up(y2, *g1)
        if level:
            want = (2 * hi[level - 1].shape[-2], 2 * hi[level - 1].shape[-1])
            if z.shape[-2] == want[0] + 2:
                z = z[..., 1:-1, :]
            if z.shape[-1] == want[1] + 2:
                z = z[..., 1:-1]
            if tuple(z.shape[-2:]) != want:
                raise ValueError(
                    f"highpass sizes do not fit together at level {level}: {tuple(z.shape[-2:])} vs {want}"
                )
    return z


def _norm_axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for {ndim} dims")
    return axis % ndim


def dtcwt(
    data: torch.Tensor, nlevels: int = 3, *, biort: str = "near_sym_a", qshift: str = "qshift_a", axis: int = -1
) -> Coeffs:
    """1-D DTCWT along ``axis``: ``(lowpass, [highpass level 1, ..., level nlevels])``.

    Args:
        data: real tensor; its length along ``axis`` must be even.
        nlevels: number of levels.
        biort: level-1 filters (``near_sym_a``, ``near_sym_b``, ``legall``, ``antonini``).
        qshift: filters of levels 2 and above (``qshift_a``, ``qshift_b``, ``qshift_c``, ``qshift_d``,
            ``qshift_06``).
        axis: the transform axis.
    """
    x = _prepare(data, nlevels)
    ax = _norm_axis(axis, x.ndim)
    lo, hi = _forward_1d(x.movedim(ax, -1), nlevels, dtcwt_filters(biort, qshift, x.dtype, x.device))
    return lo.movedim(-1, ax), [h.movedim(-1, ax) for h in hi]


def idtcwt(coeffs: Coeffs, *, biort: str = "near_sym_a", qshift: str = "qshift_a", axis: int = -1) -> torch.Tensor:
    """Inverse of :func:`dtcwt` (same filters and axis)."""
    lo, hi = coeffs
    ax = _norm_axis(axis, lo.ndim)
    f = dtcwt_filters(biort, qshift, lo.dtype, lo.device)
    return _inverse_1d(lo.movedim(ax, -1), [h.movedim(ax, -1) for h in hi], f).movedim(-1, ax)


def _axes(axes: Sequence[int], ndim: int) -> tuple[int, int]:
    if len(axes) != 2:
        raise ValueError(f"axes must be two axes, got {axes}")
    a, b = (_norm_axis(ax, ndim) for ax in axes)
    if a == b:
        raise ValueError(f"axes must differ, got {axes}")
    return a, b


def dtcwt2(
    data: torch.Tensor,
    nlevels: int = 3,
    *,
    biort: str = "near_sym_a",
    qshift: str = "qshift_a",
    axes: Sequence[int] = (-2, -1),
) -> Coeffs:
    """2-D DTCWT over ``axes``: ``(lowpass, [highpasses (..., 6, h_j, w_j) complex per level])``.
    The six orientations come just before the two transform axes, which are moved last."""
    x = _prepare(data, nlevels)
    a, b = _axes(axes, x.ndim)
    lo, hi = _forward_2d(x.movedim((a, b), (-2, -1)), nlevels, dtcwt_filters(biort, qshift, x.dtype, x.device))
    return lo.movedim((-2, -1), (a, b)), hi


def idtcwt2(
    coeffs: Coeffs, *, biort: str = "near_sym_a", qshift: str = "qshift_a", axes: Sequence[int] = (-2, -1)
) -> torch.Tensor:
    """Inverse of :func:`dtcwt2` (same filters and axes)."""
    lo, hi = coeffs
    a, b = _axes(axes, lo.ndim)
    f = dtcwt_filters(biort, qshift, lo.dtype, lo.device)
    return _inverse_2d(lo.movedim((a, b), (-2, -1)), hi, f).movedim((-2, -1), (a, b))


class _DTCWTModule(nn.Module):
    """Holds the filters as non-persistent buffers (built once, follow ``.to()``)."""

    def __init__(self, biort: str, qshift: str) -> None:
        super().__init__()
        self.biort, self.qshift = biort, qshift
        for name, h in dtcwt_filters(biort, qshift).items():
            self.register_buffer(name, h, persistent=False)

    def _filters(self, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        return {n: getattr(self, n).to(dtype) for n in (*_BIORT_NAMES, *_QSHIFT_NAMES)}

    def extra_repr(self) -> str:
        return f"biort={self.biort!r}, qshift={self.qshift!r}"


class DTCWT1d(_DTCWTModule):
    """:func:`dtcwt` over the last axis as a module: ``x (..., N) -> (lowpass, highpasses)``."""

    def __init__(self, nlevels: int = 3, biort: str = "near_sym_a", qshift: str = "qshift_a") -> None:
        super().__init__(biort, qshift)
        self.nlevels = nlevels

    def forward(self, x: torch.Tensor) -> Coeffs:
        x = _prepare(x, self.nlevels)
        return _forward_1d(x, self.nlevels, self._filters(x.dtype))


class IDTCWT1d(_DTCWTModule):
    """:func:`idtcwt` over the last axis as a module."""

    def __init__(self, biort: str = "near_sym_a", qshift: str = "qshift_a") -> None:
        super().__init__(biort, qshift)

    def forward(self, coeffs: Coeffs) -> torch.Tensor:
        return _inverse_1d(coeffs[0], coeffs[1], self._filters(coeffs[0].dtype))


class DTCWT2d(_DTCWTModule):
    """:func:`dtcwt2` over the last two axes as a module: ``(..., H, W) -> (lowpass, highpasses)``."""

    def __init__(self, nlevels: int = 3, biort: str = "near_sym_a", qshift: str = "qshift_a") -> None:
        super().__init__(biort, qshift)
        self.nlevels = nlevels

    def forward(self, x: torch.Tensor) -> Coeffs:
        x = _prepare(x, self.nlevels)
        return _forward_2d(x, self.nlevels, self._filters(x.dtype))


class IDTCWT2d(_DTCWTModule):
    """:func:`idtcwt2` over the last two axes as a module."""

    def __init__(self, biort: str = "near_sym_a", qshift: str = "qshift_a") -> None:
        super().__init__(biort, qshift)

    def forward(self, coeffs: Coeffs) -> torch.Tensor:
        return _inverse_2d(coeffs[0], coeffs[1], self._filters(coeffs[0].dtype))
