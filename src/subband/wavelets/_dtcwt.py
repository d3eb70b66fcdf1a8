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
    """Indices of ``x`` extended by ``before`` and ``after`` samples with half-sample symmetry
    (``... x1 x0 | x0 x1 ... x_{n-1} | x_{n-1} x_{n-2} ...``, period ``2n``)."""
    i = torch.arange(-before, n + after) % (2 * n)
    return torch.where(i < n, i, 2 * n - 1 - i)


def _extend(x: torch.Tensor, dim: int, before: int, after: int) -> torch.Tensor:
    """Half-sample symmetric extension of ``x`` along ``dim``."""
    n = x.shape[dim]
    if before <= n and after <= n:  # one concatenation: much faster than a gather along the last axis
        head = x.narrow(dim, 0, before).flip(dim)
        return torch.cat([head, x, x.narrow(dim, n - after, after).flip(dim)], dim)
    return x.index_select(dim, _symmetric_index(n, before, after).to(x.device))


Taps = list[tuple[int, int, float]]  # (input channel, position, value) of one output


def _taps(w: torch.Tensor, scale: Sequence[float] | None = None) -> list[Taps]:
    """Kernel ``(out, in, k)`` -> per output its nonzero taps, optionally scaled per output."""
    return [
        [(c, k, float(w[o, c, k]) * (1.0 if scale is None else scale[o])) for c in range(w.shape[1])
         for k in range(w.shape[2]) if w[o, c, k] != 0]
        for o in range(w.shape[0])
    ]  # fmt: skip


def _correlate(
    xs: Sequence[torch.Tensor], groups: Sequence[list[Taps]], dim: int, n: int, stride: int
) -> list[torch.Tensor]:
    """The forward of :func:`_apply`, without autograd: per output, one scaled strided slice
    added in place per tap."""
    cin = len(xs) // len(groups)
    index: list[slice] = [slice(None)] * xs[0].ndim
    outs = []
    for g, taps in enumerate(groups):
        for out_taps in taps:
            acc = None
            for c, k, v in out_taps:
                index[dim] = slice(k, k + (n - 1) * stride + 1, stride)
                x = xs[g * cin + c][tuple(index)]
                acc = x * v if acc is None else acc.add_(x, alpha=v)
            outs.append(acc)
    return outs


class _Taps(torch.autograd.Function):
    """:func:`_correlate` with its adjoint as the backward: each tap scatters the scaled output
    gradient back onto the strided slice it read (one in-place add per tap, instead of autograd's
    full-size zero tensor per slice)."""

    @staticmethod
    def forward(ctx, groups, dim, n, stride, *xs):  # type: ignore[override]
        ctx.meta = (groups, dim, n, stride, [x.shape for x in xs])
        return tuple(_correlate(xs, groups, dim, n, stride))

    @staticmethod
    def backward(ctx, *grads):  # type: ignore[override]
        groups, dim, n, stride, shapes = ctx.meta
        cin = len(shapes) // len(groups)
        ref = next(g for g in grads if g is not None)
        dxs = [ref.new_zeros(shape) for shape in shapes]
        index: list[slice] = [slice(None)] * len(shapes[0])
        o = 0
        for g, taps in enumerate(groups):
            for out_taps in taps:
                grad = grads[o]
                o += 1
                if grad is None:
                    continue
                for c, k, v in out_taps:
                    index[dim] = slice(k, k + (n - 1) * stride + 1, stride)
                    dxs[g * cin + c][tuple(index)].add_(grad, alpha=v)
        return (None, None, None, None, *dxs)


def _apply(
    xs: Sequence[torch.Tensor], groups: Sequence[list[Taps]], dim: int, n: int, stride: int
) -> list[torch.Tensor]:
    """Correlate channels ``xs`` (each ``(N, ...)``, extended along ``dim``) with the taps: group
    ``g`` reads channels ``g * cin ...`` and gives ``len(groups[g])`` outputs of length ``n`` at
    ``stride``. A tap is one scaled strided slice added in place: with filters of 5 to 20 taps on
    one or two channels this is several times faster on CPU than a (grouped) convolution."""
    if torch.is_grad_enabled() and any(x.requires_grad for x in xs):
        return list(_Taps.apply(groups, dim, n, stride, *xs))
    return _correlate(xs, groups, dim, n, stride)


def _interleave(xs: Sequence[torch.Tensor], dim: int) -> torch.Tensor:
    """Phases ``xs`` (``P`` tensors of the same shape) -> one tensor with sample ``P j + p`` taken
    from phase ``p`` along ``dim``."""
    return torch.stack(list(xs), dim + 1).flatten(dim, dim + 1)


_S = math.sqrt(0.5)


class _Bank:
    """The DTCWT filters turned into the taps this implementation applies: both trees, both
    filters and (for the q-shift levels) all decimation/interpolation phases of one axis in one
    set of taps, so a level is one pass per axis. The ``1/sqrt(2)`` of the complex subbands is
    folded into the taps of the last pass that produces (or the first that reads) a highpass.

    - ``a1``: level-1 analysis ``[h0o, h1o]`` (flipped, centred in a common odd length ``mb``).
    - ``s1``: level-1 synthesis, ``g0o`` on the lowpass input and ``g1o`` on the highpass, summed.
    - ``aq``: q-shift analysis with stride 4 from sample 2 of an ``m``-sample extension, outputs in
      interleaving order ``[lo first, lo second, hi first, hi second]`` (which tree comes first
      depends on the sign of ``sum(ha * hb)``).
    - ``sq``: q-shift synthesis with stride 2 from sample ``start``: the four output phases from the
      lowpass (``g0``) and highpass (``g1``) inputs, summed.
    """

    def __init__(self, f: dict[str, torch.Tensor]) -> None:
        f = {k: v.detach().double().cpu() for k, v in f.items()}
        mb = max(f["h0o"].shape[0], f["h1o"].shape[0], f["g0o"].shape[0], f["g1o"].shape[0])
        self.pad1 = (mb // 2, mb // 2)

        def centred(h: torch.Tensor) -> torch.Tensor:
            p = (mb - h.shape[0]) // 2
            return F.pad(h.flip(0), (p, p))

        a1 = torch.stack([centred(f["h0o"]), centred(f["h1o"])]).unsqueeze(1)  # (2, 1, mb)
        s1 = torch.stack([centred(f["g0o"]), centred(f["g1o"])]).unsqueeze(0)  # (1, 2, mb)
        m = f["h0a"].shape[0]
        m2 = m // 2
        aq = torch.zeros(4, 1, 2 * m, dtype=torch.float64)
        for i, (ha, hb) in enumerate(((f["h0b"], f["h0a"]), (f["h1b"], f["h1a"]))):
            first, second = (2 * i, 2 * i + 1) if float((ha * hb).sum()) > 0 else (2 * i + 1, 2 * i)
            aq[first, 0, 0::2] = ha.flip(0)  # tree a: the even samples of the extension
            aq[second, 0, 1::2] = hb.flip(0)  # tree b: the odd samples
        phases = []  # (phase, input, offset, taps)
        for c, (ha, hb) in enumerate(((f["g0b"], f["g0a"]), (f["g1b"], f["g1a"]))):
            base = 1 if m2 % 2 else 2
            ia, ib = (base + 1, base) if float((ha * hb).sum()) > 0 else (base, base + 1)
            if m2 % 2:
                taps = ((ib, ha[0::2]), (ia, hb[0::2]), (ib, ha[1::2]), (ia, hb[1::2]))
            else:
                taps = ((ib - 2, ha[1::2]), (ia - 2, hb[1::2]), (ib, ha[0::2]), (ia, hb[0::2]))
            phases += [(p, c, o, t.flip(0)) for p, (o, t) in enumerate(taps)]
        start = min(o for _, _, o, _ in phases)
        sq = torch.zeros(4, 2, max(o for _, _, o, _ in phases) - start + 2 * (m2 - 1) + 1, dtype=torch.float64)
        for p, c, o, t in phases:
            sq[p, c, o - start :: 2][: t.shape[0]] = t
        self.pad_aq = (m - 2, m)
        self.pad_sq = (m2 - start, m2)
        # passes: the first axis (no scaling), the second axis (highpasses scaled by 1/sqrt(2))
        self.a1 = [_taps(a1)]
        self.a1_last = [_taps(a1, (1.0, _S)), _taps(a1, (_S, _S))]  # inputs: lowpass, highpass
        self.aq = [_taps(aq)]
        self.aq_last = [_taps(aq, (1.0, 1.0, _S, _S))] * 2 + [_taps(aq, (_S,) * 4)] * 2
        s1_hi = s1 * torch.tensor([1.0, _S], dtype=torch.float64).view(1, 2, 1)
        self.s1_first = [_taps(s1_hi), _taps(s1 * _S)]  # (lo, lh) and (hl, hh)
        self.s1 = [_taps(s1)]
        sq_hi = sq * torch.tensor([1.0, _S], dtype=torch.float64).view(1, 2, 1)
        self.sq_first = [_taps(sq_hi), _taps(sq * _S)]
        self.sq = [_taps(sq)]


def _prepare(data: torch.Tensor, nlevels: int) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise TypeError(f"data must be a torch.Tensor, got {type(data).__name__}")
    if nlevels < 0:
        raise ValueError(f"nlevels must be >= 0, got {nlevels}")
    if data.is_complex():
        raise ValueError("the DTCWT takes real input")
    return data if data.is_floating_point() else data.to(torch.get_default_dtype())


def _edge_extend(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Repeat the first and last samples along ``dim`` once (a q-shift level needs length % 4 == 0)."""
    return torch.cat([x.narrow(dim, 0, 1), x, x.narrow(dim, x.shape[dim] - 1, 1)], dim)


def _forward_1d(x: torch.Tensor, nlevels: int, bank: _Bank) -> Coeffs:
    """``x (..., n)`` -> lowpass ``(..., n / 2^J)``, complex highpasses."""
    n = x.shape[-1]
    if n % 2:
        raise ValueError(f"the DTCWT needs an even length along the transform axis, got {n}")
    if nlevels == 0:
        return x, []
    lead = x.shape[:-1]
    lo, hi = _apply([_extend(x.reshape(-1, n), 1, *bank.pad1)], bank.a1, 1, n, 1)  # (N, n) each
    highs = [torch.complex(hi[:, 0::2], hi[:, 1::2])]  # tree a real, tree b imaginary
    for _ in range(1, nlevels):
        if lo.shape[-1] % 4:
            lo = _edge_extend(lo, 1)
        n = lo.shape[-1]
        lo_a, lo_b, hi_a, hi_b = _apply([_extend(lo, 1, *bank.pad_aq)], bank.aq, 1, n // 4, 4)  # (N, n/4)
        lo = _interleave((lo_a, lo_b), 1)  # (N, n/2)
        highs.append(torch.complex(hi_a, hi_b))
    return lo.reshape(*lead, -1), [h.reshape(*lead, -1) for h in highs]


def _inverse_1d(lo: torch.Tensor, hi: Sequence[torch.Tensor], bank: _Bank) -> torch.Tensor:
    lead = lo.shape[:-1]
    z = lo.reshape(-1, lo.shape[-1])
    for level in range(len(hi) - 1, -1, -1):
        w = hi[level].reshape(z.shape[0], -1)
        h = torch.view_as_real(w).flatten(-2)  # (N, n/2) complex -> (N, n): trees interleaved
        if h.shape[-1] != z.shape[-1]:
            raise ValueError(f"highpass sizes do not fit together at level {level}: {h.shape[-1]} vs {z.shape[-1]}")
        n = z.shape[-1]
        if level == 0:
            (z,) = _apply([_extend(z, 1, *bank.pad1), _extend(h, 1, *bank.pad1)], bank.s1, 1, n, 1)
            break
        phases = _apply([_extend(z, 1, *bank.pad_sq), _extend(h, 1, *bank.pad_sq)], bank.sq, 1, n // 2, 2)
        z = _interleave(phases, 1)  # (N, 2n)
        if z.shape[-1] == 2 * hi[level - 1].shape[-1] + 2:  # the forward extended this level
            z = z[..., 1:-1]
    return z.reshape(*lead, -1)


def _orientations(horizontal: Sequence[torch.Tensor], diagonal: Sequence[torch.Tensor],
                  vertical: Sequence[torch.Tensor]) -> torch.Tensor:  # fmt: skip
    """Three subbands, each as quads (row tree, column tree) = aa, ab, ba, bb already scaled by
    ``1/sqrt(2)``, to the six complex orientations ``(N, 6, h, w)``: 15, 45, 75, 105, 135, 165
    degrees. A pair is ``(p - q, p + q)`` with ``p = aa + j ab`` and ``q = bb - j ba``."""

    def pair(q: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        aa, ab, ba, bb = q
        return torch.complex(aa - bb, ab + ba), torch.complex(aa + bb, ab - ba)

    (h1, h2), (d1, d2), (v1, v2) = pair(horizontal), pair(diagonal), pair(vertical)
    return torch.stack((h1, d1, v1, v2, d2, h2), 1)


def _stack_quads(*bands: Sequence[torch.Tensor]) -> torch.Tensor:
    """Three subbands' quads -> ``(N, 3, 4, h, w)``."""
    return torch.stack([torch.stack(list(q), 1) for q in bands], 1)


def _real_quads(w: torch.Tensor, i: int, j: int) -> torch.Tensor:
    """Orientations ``i``, ``j`` of ``w (N, 6, h, w)`` back to their real subband ``(N, 2h, 2w)``
    with the quads interleaved (up to the ``1/sqrt(2)`` folded into the synthesis taps)."""
    a, b = torch.view_as_real(w[:, i]), torch.view_as_real(w[:, j])  # (N, h, w, 2)
    p = a + b
    quads = torch.stack((p[..., 0], p[..., 1], a[..., 1] - b[..., 1], b[..., 0] - a[..., 0]), -1)  # (N, h, w, 4)
    n, h, wd = quads.shape[:3]
    return quads.view(n, h, wd, 2, 2).permute(0, 1, 3, 2, 4).reshape(n, 2 * h, 2 * wd)


def _band_quads(y: Sequence[torch.Tensor], row_band: int, col_band: int) -> list[torch.Tensor]:
    """The quads aa, ab, ba, bb of one band among the 16 maps of a q-shift level (``4 * row
    channel + column channel``, channels ``2 * band + tree``)."""
    return [y[4 * (2 * row_band + r) + 2 * col_band + c] for r in (0, 1) for c in (0, 1)]


def _forward_2d(x: torch.Tensor, nlevels: int, bank: _Bank, as_quads: bool = False) -> Coeffs:
    """Lowpass and, per level, the six complex orientations ``(..., 6, h, w)`` or, with
    ``as_quads``, the real quads ``(..., 3, 4, h, w)``: subbands (horizontal, diagonal, vertical) x
    trees (row, column) = aa, ab, ba, bb, scaled by ``1/sqrt(2)``."""
    combine = _stack_quads if as_quads else _orientations
    if x.ndim < 2:
        raise ValueError(f"dtcwt2 needs at least 2 dims, got shape {tuple(x.shape)}")
    if x.shape[-2] % 2:
        x = torch.cat([x, x[..., -1:, :]], -2)
    if x.shape[-1] % 2:
        x = torch.cat([x, x[..., -1:]], -1)
    if nlevels == 0:
        return x, []
    lead, (h, w) = x.shape[:-2], x.shape[-2:]
    xe = _extend(_extend(x.reshape(-1, h, w), 1, *bank.pad1), 2, *bank.pad1)  # filtering H keeps W's extension
    rows = _apply([xe], bank.a1, 1, h, 1)  # [lo, hi] along H, (N, H, W + ext)
    ll, vertical, horizontal, diagonal = _apply(rows, bank.a1_last, 2, w, 1)  # (N, H, W)

    def quads(band: torch.Tensor) -> list[torch.Tensor]:
        return [band[:, r::2, c::2] for r in (0, 1) for c in (0, 1)]

    highs = [combine(quads(horizontal), quads(diagonal), quads(vertical))]
    for _ in range(1, nlevels):
        if ll.shape[-2] % 4:
            ll = _edge_extend(ll, 1)
        if ll.shape[-1] % 4:
            ll = _edge_extend(ll, 2)
        h, w = ll.shape[-2:]
        lle = _extend(_extend(ll, 1, *bank.pad_aq), 2, *bank.pad_aq)
        rows = _apply([lle], bank.aq, 1, h // 4, 4)  # [lo 1st, lo 2nd, hi 1st, hi 2nd] along H
        y = _apply(rows, bank.aq_last, 2, w // 4, 4)  # 16 maps: 4 * row channel + column channel
        highs.append(combine(_band_quads(y, 1, 0), _band_quads(y, 1, 1), _band_quads(y, 0, 1)))
        lo = torch.stack(_band_quads(y, 0, 0), -1)  # (N, h, w, 4): trees (row, column)
        n, hq, wq = lo.shape[:3]
        ll = lo.view(n, hq, wq, 2, 2).permute(0, 1, 3, 2, 4).reshape(n, 2 * hq, 2 * wq)  # trees interleaved
    return ll.reshape(*lead, *ll.shape[-2:]), [hh.reshape(*lead, *hh.shape[1:]) for hh in highs]


def _inverse_2d(lo: torch.Tensor, hi: Sequence[torch.Tensor], bank: _Bank) -> torch.Tensor:
    lead = lo.shape[:-2]
    z = lo.reshape(-1, *lo.shape[-2:])
    for level in range(len(hi) - 1, -1, -1):
        w = hi[level]
        if w.ndim < 3 or w.shape[-3] != 6:
            raise ValueError(f"highpasses must be (..., 6, h, w), got {tuple(w.shape)} at level {level}")
        w = w.reshape(z.shape[0], 6, *w.shape[-2:])
        if (2 * w.shape[-2], 2 * w.shape[-1]) != tuple(z.shape[-2:]):
            raise ValueError(
                f"highpass sizes do not fit together at level {level}: {tuple(w.shape[-2:])} vs {tuple(z.shape[-2:])}"
            )
        bands = [z, _real_quads(w, 0, 5), _real_quads(w, 2, 3), _real_quads(w, 1, 4)]  # lo, lh, hl, hh
        h, wd = z.shape[-2:]
        # extend along H, filter along H (four bands -> two), then extend and filter along W
        if level == 0:
            y = _apply([_extend(b, 1, *bank.pad1) for b in bands], bank.s1_first, 1, h, 1)  # y1, y2
            (z,) = _apply([_extend(t, 2, *bank.pad1) for t in y], bank.s1, 2, wd, 1)
            break
        ph = _apply([_extend(b, 1, *bank.pad_sq) for b in bands], bank.sq_first, 1, h // 2, 2)  # phases of y1, y2
        rows = [_extend(_interleave(ph[:4], 1), 2, *bank.pad_sq), _extend(_interleave(ph[4:], 1), 2, *bank.pad_sq)]
        z = _interleave(_apply(rows, bank.sq, 2, wd // 2, 2), 2)  # (N, 2h, 2w)
        want = (2 * hi[level - 1].shape[-2], 2 * hi[level - 1].shape[-1])
        if z.shape[-2] == want[0] + 2:
            z = z[..., 1:-1, :]
        if z.shape[-1] == want[1] + 2:
            z = z[..., 1:-1]
    return z.reshape(*lead, *z.shape[-2:])


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
    lo, hi = _forward_1d(x.movedim(ax, -1), nlevels, _Bank(dtcwt_filters(biort, qshift, x.dtype, x.device)))
    return lo.movedim(-1, ax), [h.movedim(-1, ax) for h in hi]


def idtcwt(coeffs: Coeffs, *, biort: str = "near_sym_a", qshift: str = "qshift_a", axis: int = -1) -> torch.Tensor:
    """Inverse of :func:`dtcwt` (same filters and axis)."""
    lo, hi = coeffs
    ax = _norm_axis(axis, lo.ndim)
    bank = _Bank(dtcwt_filters(biort, qshift, lo.dtype, lo.device))
    return _inverse_1d(lo.movedim(ax, -1), [h.movedim(ax, -1) for h in hi], bank).movedim(-1, ax)


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
    lo, hi = _forward_2d(x.movedim((a, b), (-2, -1)), nlevels, _Bank(dtcwt_filters(biort, qshift, x.dtype, x.device)))
    return lo.movedim((-2, -1), (a, b)), hi


def idtcwt2(
    coeffs: Coeffs, *, biort: str = "near_sym_a", qshift: str = "qshift_a", axes: Sequence[int] = (-2, -1)
) -> torch.Tensor:
    """Inverse of :func:`dtcwt2` (same filters and axes)."""
    lo, hi = coeffs
    a, b = _axes(axes, lo.ndim)
    bank = _Bank(dtcwt_filters(biort, qshift, lo.dtype, lo.device))
    return _inverse_2d(lo.movedim((a, b), (-2, -1)), hi, bank).movedim((-2, -1), (a, b))


class _DTCWTModule(nn.Module):
    """Holds the filters as non-persistent buffers (they follow ``.to()``); the kernels applied are
    built from the exact constants at the input's dtype, so float64 modules are exact."""

    def __init__(self, biort: str, qshift: str) -> None:
        super().__init__()
        self.biort, self.qshift = biort, qshift
        for name, h in dtcwt_filters(biort, qshift).items():
            self.register_buffer(name, h, persistent=False)
        self._banks: dict[tuple, _Bank] = {}

    def _filters(self, dtype: torch.dtype) -> _Bank:
        key = (dtype, self.h0o.device)
        if key not in self._banks:  # fixed kernels, built once per dtype and device from the exact constants
            self._banks[key] = _Bank(dtcwt_filters(self.biort, self.qshift, dtype, self.h0o.device))
        return self._banks[key]

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
