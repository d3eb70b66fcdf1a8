"""The engine: separable analysis and synthesis over k axes at once.

Both directions are convolutions over the transformed axes (moved last, batch flattened):

- analysis: extend each axis (boundary mode), then ``conv{k}d`` with the ``2**k`` outer products
  of the two decomposition filters and stride 2. The ``2**k`` bands come out as views of one
  band-stacked ``(B, 2**k, *n)`` tensor; band ``b`` has bit ``k-1-i`` set when axis ``i`` took the
  high-pass filter (``'a'``=0, ``'d'``=1, so for 2-D: 0=aa, 1=ad, 2=da, 3=dd, PyWavelets' key order).
- synthesis (polyphase): a stride-1 ``conv{k}d`` from the ``2**k`` bands (a list, in that order) to
  the ``2**k`` output phases with kernels of length ``F/2``, then the phases are interleaved.
- in 2-D, filters longer than two go one axis at a time: as row and column convolutions
  (`_down2_conv`, `_up2_conv`) or, on large CPU batches, as flat multiply-add passes on
  phase-split memory: for orthogonal banks a lattice of 2x2 steps (`_lattice.down2`, `_lattice.up2`),
  for the others the filter taps (`_down2_flat`, `_up2_flat`); `_flat_2d` chooses. Other two-tap
  banks than Haar are multiply-adds (`_down2_pairs`, `_up2_pairs`).
- the orthonormal Haar bank, in 1-D, 2-D and 3-D, is sums and differences along the leading axes
  and a complex product along the last (:mod:`._haar`): k passes over contiguous memory each way.
- in 1-D, filters longer than two run on large CPU batches as the same flat passes (a lattice,
  `_lattice.down1`/`_lattice.up1`, or the taps, `_down1_flat`/`_up1_flat`; `_flat_1d` chooses).
- in 3-D, filters longer than two run on large CPU batches as the 2-D flat passes over the last
  two axes and the same along the first (`_lattice.down3`/`_lattice.up3`, `_down3_flat`/`_up3_flat`;
  `_flat_3d` chooses).

Index arithmetic (1-D, filter length F = 2L, PyWavelets' conventions):
  forward   y[o] = sum_k dec[F-1-k] * xe[2o + k]          xe: x extended by F-2 left
  inverse   x[2i+p] = sum_k c[i + k] * rec[2(L-1-k) + p]  (summed over the two bands)
  periodization extends by L-1 each side (forward) and the coefficients by L//2 (inverse).
Filters are built apart from their application (`down_kernel`, `up_kernel`), so modules can hold
them as buffers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from . import _haar, _lattice, _native
from ._filters import Wavelet
from ._pad import band_border, fold_axes, interleave, pad_axes, phase_split

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def outer(filters: list[torch.Tensor]) -> torch.Tensor:
    """Outer products over axes: list of ``(2, L_i)`` -> ``(2**k, L_1, ..., L_k)``."""
    out = filters[0]
    for f in filters[1:]:
        # (b, *l) x (2, l') -> (b, 2, *l, l') -> (2b, *l, l')
        out = torch.einsum("b...,cl->bc...l", out, f).flatten(0, 1)
    return out


def down_kernel(filters: torch.Tensor, k: int) -> torch.Tensor:
    """Stride-2 conv weight ``(2**k, 1, F, ..., F)`` from a ``(2, F)`` pair of correlation filters."""
    return outer([filters] * k).unsqueeze(1)


def synthesis_taps(filters: torch.Tensor) -> torch.Tensor:
    """The ``(2, F)`` synthesis filters as one-axis polyphase taps ``(2 phases, 2 bands, L)``:
    ``h[p, b, k] = filters[b, 2(L-1-k) + p]``, the weight of band sample ``i + k`` in output
    sample ``2i + p``."""
    return filters.view(2, filters.shape[1] // 2, 2).flip(1).permute(2, 0, 1)


def up_kernel(filters: torch.Tensor, k: int) -> torch.Tensor:
    """Polyphase conv weight ``(2**k phases, 2**k bands, L, ..., L)``: the transposed stride-2
    convolution with the ``(2, F)`` filters, written as a stride-1 convolution per output phase."""
    L = filters.shape[1] // 2
    h = synthesis_taps(filters)  # per axis (2 phases, 2 bands, L)
    w = outer([h.reshape(4, L)] * k)  # (4**k, L..): index bits interleave (p1 b1 p2 b2 ...)
    w = w.view((2, 2) * k + (L,) * k)
    perm = [2 * i for i in range(k)] + [2 * i + 1 for i in range(k)] + list(range(2 * k, 3 * k))
    return w.permute(perm).reshape((2**k, 2**k) + (L,) * k)


def _zero_pad(x: torch.Tensor, p: int) -> torch.Tensor:
    """Zero-pad every axis after the first two by ``p`` on both sides."""
    return F.pad(x, (p, p) * (x.ndim - 2)) if p else x


# ----- the 2-D path for filters longer than two: flat multiply-add passes
#
# Along an axis whose samples are contiguous, a correlation is the same flat buffer read at shifted
# offsets, so each tap is one contiguous multiply-add pass over the whole batch. Outputs near the
# end of a row read into the next row; they are computed and cropped. The analysis splits the
# columns into their two phases first (the one copy of the forward), so the column taps are
# contiguous; the synthesis ends by interleaving the two column phases. Two calls per tap and axis
# against the convolutions' one per axis, so this wins on large batches only (`_flat_2d`).


def _mac(out: torch.Tensor, srcs: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """``out = sum_k weights[k] * srcs[k]``, one pass per tap (weights as numbers: these passes run
    on the CPU only, and a number is the cheapest operand to dispatch)."""
    torch.mul(srcs[0], weights[0], out=out)
    for s, w in zip(srcs[1:], weights[1:]):
        out.add_(s, alpha=w)
    return out


def _down1_flat(x: torch.Tensor, filters: torch.Tensor, p: int) -> torch.Tensor:
    """``x (B, N)``, N even, zero-padded by ``2p`` each side -> ``(B, 2, n)``: the 1-D analysis as
    flat passes over the two phases (oneDNN's one-channel stride-2 ``conv1d`` slows down badly on
    long batches: 10-12 ms against 0.8 ms for these passes and 0.45 ms for the lattice on 16
    signals of 65536 samples with db4)."""
    B, L = x.shape[0], filters.shape[1] // 2
    Nh = x.shape[1] // 2 + 2 * p
    xs = x.new_zeros(2, B, Nh) if p else x.new_empty(2, B, Nh)
    xs[:, :, p : Nh - p].copy_(x.view(B, Nh - 2 * p, 2).permute(2, 0, 1))
    # tap 2t + phase of output j reads xs[phase, j + t], flat over (B, N/2)
    xs = xs.view(2, -1)
    T = xs.shape[1] - L + 1
    taps = [xs[k % 2, k // 2 : k // 2 + T] for k in range(2 * L)]
    out = x.new_empty(2, B, Nh)
    for b, w in enumerate(filters.tolist()):
        _mac(out[b].view(-1)[:T], taps, w)
    return out[:, :, : Nh - L + 1].transpose(0, 1)


def _up1_flat(bands: Sequence[torch.Tensor], filters: torch.Tensor, p: int) -> torch.Tensor:
    """Two bands ``(B, m)``, each zero-padded by ``p`` -> ``(B, 2m')``, m' = m + 2p - L + 1."""
    B, M, L = bands[0].shape[0], bands[0].shape[1] + 2 * p, filters.shape[1] // 2
    c = bands[0].new_zeros(2, B, M) if p else bands[0].new_empty(2, B, M)
    for b, dst in zip(bands, c):
        dst[:, p : M - p].copy_(b)
    c = c.view(2, -1)
    T = c.shape[1] - L + 1
    taps = [c[b, k : k + T] for b in range(2) for k in range(L)]
    y = c.new_empty(2, B, M)  # (phase, ...)
    for ph, g in enumerate(synthesis_taps(filters).reshape(2, 2 * L).tolist()):
        _mac(y[ph].view(-1)[:T], taps, g)
    m = M - L + 1
    return interleave(y[0, :, :m], y[1, :, :m])


def _down2_flat(x: torch.Tensor, filters: torch.Tensor, q: int, mode: str = "zero") -> torch.Tensor:
    """``x (B, H, W)``, H and W even, extended by ``q`` samples each side in ``mode`` -> ``(B, 4, m, n)``:
    views of band-major memory, each band's rows contiguous."""
    B = x.shape[0]
    L = filters.shape[1] // 2
    Hh, Wh = x.shape[1] // 2 + q, x.shape[2] // 2 + q
    m, n = Hh - L + 1, Wh - L + 1
    # split the columns into their phases, the one copy of the forward (the extension becomes a
    # border): (col phase, B, H/2, row phase, W/2)
    xs = x.new_empty(2, B, Hh, 2, Wh)
    phase_split(xs, x, q, mode)
    f = filters.tolist()
    # columns: tap 2t + phase of output j reads xs[phase, j + t]; flat over (B, H/2, row phase, W/2)
    xs = xs.view(2, -1)
    T = xs.shape[1] - L + 1
    taps = [xs[k % 2, k // 2 : k // 2 + T] for k in range(2 * L)]
    cols = x.new_empty(2, B * Hh, 2, Wh)  # (bw, B * H/2, row phase, W/2)
    for bw in range(2):
        _mac(cols[bw].view(-1)[:T], taps, f[bw])
    # rows: tap 2t + phase of output row i reads row i + t of that row phase
    R = B * Hh - L + 1
    out = xs.view(4, B, Hh, Wh)  # xs is spent
    for bw in range(2):
        taps = [cols[bw, k // 2 : k // 2 + R, k % 2] for k in range(2 * L)]
        for bh in range(2):
            _mac(out[2 * bh + bw].view(B * Hh, Wh)[:R], taps, f[bh])
    # outputs whose taps ran into the next row (or image) are cropped
    return out[:, :, :m, :n].transpose(0, 1)


def _up2_flat(bands: Sequence[torch.Tensor], filters: torch.Tensor, p: int, mode: str = "zero") -> torch.Tensor:
    """Four bands ``(B, m, n)``, each extended by ``p`` in ``mode`` (zero or periodic) ->
    ``(B, 2m', 2n')``, m' = m + 2p - L + 1."""
    B, M, N = bands[0].shape[0], bands[0].shape[1] + 2 * p, bands[0].shape[2] + 2 * p
    L = filters.shape[1] // 2
    m, n = M - L + 1, N - L + 1
    g = synthesis_taps(filters).reshape(2, 2 * L).tolist()  # g[phase] over (band, k)
    buf = None
    if p or not all(b.is_contiguous() for b in bands):  # one buffer for the four, with their border of p
        buf = bands[0].new_empty(4, B, M, N)
        for b, dst in zip(bands, buf):
            dst[:, p : M - p, p : N - p].copy_(b)
        if p:
            band_border(buf, p, mode)
        bands = buf.unbind(0)
    c = [b.view(-1) for b in bands]
    # along the columns' axis: tap k of row i reads band row i + k, flat over (B, M, N)
    T = B * M * N - (L - 1) * N
    rows = c[0].new_empty(2, 2, B * M * N)  # (bw, row phase, ...)
    for bw in range(2):
        taps = [c[2 * bh + bw][k * N : k * N + T] for bh in range(2) for k in range(L)]
        for ph in range(2):
            _mac(rows[bw, ph, :T], taps, g[ph])
    # along the rows: tap k of column j reads column j + k, flat over (row phase, B, M, N)
    T = 2 * B * M * N - L + 1
    taps = [rows[bw].view(-1)[k : k + T] for bw in range(2) for k in range(L)]
    y = c[0].new_empty(2, 2, B, M, N) if buf is None else buf.view(2, 2, B, M, N)  # (col phase, row phase, ...)
    for q in range(2):
        _mac(y[q].view(-1)[:T], taps, g[q])
    del taps, rows  # spent: freed before the output is allocated
    # crop, and interleave the two column phases
    y = y[:, :, :, :m, :n].permute(0, 2, 3, 1, 4)  # (col phase, B, m, row phase, n)
    return interleave(y[0], y[1]).view(B, 2 * m, 2 * n)


def _down3_flat(x: torch.Tensor, filters: torch.Tensor, p: int) -> tuple[torch.Tensor, ...]:
    """``x (B, D, H, W)``, every size even, zero-padded by ``2p`` each side -> the eight bands
    ``(B, d, h, w)``: :func:`_down2_flat` over the last two axes, then the taps along depth (tap
    2t + phase of output plane j reads plane 2(j + t) + phase)."""
    B, L = x.shape[0], filters.shape[1] // 2
    if p:
        x = F.pad(x, (0, 0, 0, 0, 2 * p, 2 * p))
    Dp = x.shape[1]
    T = Dp // 2 - L + 1
    f = filters.tolist()
    lo, hi = [], []
    for band in _down2_flat(x.reshape(B * Dp, *x.shape[2:]), filters, 2 * p).unbind(1):
        v = band.view(B, Dp // 2, 2, *band.shape[1:])  # (B, depth/2, depth phase, h, w)
        taps = [v[:, k // 2 : k // 2 + T, k % 2] for k in range(2 * L)]
        out = band.new_empty(2, B, T, *band.shape[1:])
        for b in range(2):
            _mac(out[b], taps, f[b])
        lo.append(out[0])
        hi.append(out[1])
    return (*lo, *hi)


def _up3_flat(bands: Sequence[torch.Tensor], filters: torch.Tensor, p: int) -> torch.Tensor:
    """Eight bands ``(B, d, h, w)``, each zero-padded by ``p`` -> ``(B, 2d', 2h', 2w')``: the taps
    along depth (tap k of output plane i reads band plane i + k), then :func:`_up2_flat`."""
    B, d, h, w = bands[0].shape
    L = filters.shape[1] // 2
    M = d + 2 * p
    m = M - L + 1
    g = synthesis_taps(filters).reshape(2, 2 * L).tolist()  # g[phase] over (band, k)
    planes = []
    for j in range(4):
        c = bands[0].new_zeros(2, B, M, h, w) if p else bands[0].new_empty(2, B, M, h, w)
        for dst, b in zip(c, (bands[j], bands[4 + j])):
            dst[:, p : M - p].copy_(b)
        taps = [c[b, :, k : k + m] for b in range(2) for k in range(L)]
        out = c.new_empty(B, m, 2, h, w)  # the two depth phases, interleaved
        for ph in range(2):
            _mac(out[:, :, ph], taps, g[ph])
        planes.append(out.view(B * 2 * m, h, w))
    y = _up2_flat(planes, filters, p)
    return y.view(B, 2 * m, *y.shape[1:])


# ----- the 2-D path for filters longer than two, as row and column convolutions
#
# A row convolution then a column convolution (about 2F multiply-adds per coefficient instead of the
# F*F of the outer-product kernel), arranged so that the column phase split of the analysis and the
# column interleave of the synthesis are views of channels-last memory, and with the zero padding
# of `zero` mode inside the convolutions.


def _split_kernels(filters: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Analysis weights: rows ``(bh, row phase, L, 1)``, then columns ``((bh, bw), (col phase, bh), 1, L)``."""
    L = filters.shape[1] // 2
    h = filters.view(2, L, 2).permute(0, 2, 1)  # (band, phase, k) = filters[band, 2k + phase]
    eye = torch.eye(2, dtype=h.dtype, device=h.device)
    cols = torch.einsum("ac,bpk->abpck", eye, h).reshape(4, 4, 1, L)  # block-diagonal in bh
    return h.unsqueeze(3), cols


def _merge_kernels(filters: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthesis weights: rows ``((row phase, bw), (bh, bw), L, 1)``, columns ``((row phase, col phase),
    (row phase, bw), 1, L)``; both block-diagonal in the axis they do not touch."""
    L = filters.shape[1] // 2
    h = synthesis_taps(filters)  # (phase, band, k)
    eye = torch.eye(2, dtype=h.dtype, device=h.device)
    rows = torch.einsum("pbk,wv->pwbvk", h, eye).reshape(4, 4, L, 1)
    cols = torch.einsum("ac,pbk->apcbk", eye, h).reshape(4, 4, 1, L)
    return rows, cols


def _down2_conv(x: torch.Tensor, filters: torch.Tensor, p: int) -> torch.Tensor:
    """``x (B, H, W)``, H and W even, zero-padded by ``2p`` each side -> channels-last ``(B, 4, m, n)``."""
    rows, cols = _split_kernels(filters)
    B, H, W = x.shape
    # (B, H, W) -> (B, 2 row phases, H/2, W), channels-last: the one copy of the forward
    z = x.view(B, H // 2, 2, W).permute(0, 2, 1, 3).contiguous(memory_format=torch.channels_last)
    r = F.conv2d(z, rows, padding=(p, 0))  # (B, bh, m, W); memory (B, m, W, bh)
    m = r.shape[2]
    # memory (B, m, W/2, col phase, bh) is channels-last (B, 4, m, W/2) with channel (col phase, bh)
    q = r.permute(0, 2, 3, 1).reshape(B, m, W // 2, 4).permute(0, 3, 1, 2)
    return F.conv2d(q, cols, padding=(0, p))  # (B, (bh, bw), m, n), channels-last


def _up2_conv(c: torch.Tensor, filters: torch.Tensor, p: int) -> torch.Tensor:
    """Channels-last bands ``c (B, 4, m, n)`` zero-padded by ``p`` -> ``(B, 2m', 2n')``, m' = m + 2p - L + 1."""
    rows, cols = _merge_kernels(filters)
    c = c.contiguous(memory_format=torch.channels_last)
    r = F.conv2d(c, rows, padding=(p, 0))  # (B, (row phase, bw), m', n)
    y = F.conv2d(r, cols, padding=(0, p))  # (B, (row phase, col phase), m', n')
    del r  # spent: freed before the output is allocated
    B, _, m, n = y.shape
    # memory (B, m', n', row phase, col phase) -> (B, m', row phase, n', col phase): the one copy
    return y.permute(0, 2, 3, 1).reshape(B, m, n, 2, 2).transpose(2, 3).reshape(B, 2 * m, 2 * n)


def _down_raw(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The general path: ``(B, *Np)`` -> ``(B, 2**k, *n)``, one stride-2 convolution."""
    return CONV[x.ndim - 1](x.unsqueeze(1), w, stride=2)


def _up_raw(c: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    k, L = c.ndim - 2, w.shape[-1]
    if k == 2 and L > 1:  # channels-last is faster for this 4 -> 4 channel convolution
        c = c.contiguous(memory_format=torch.channels_last)
    y = CONV[k](c, w) if L > 1 else torch.einsum("pb,Bb...->Bp...", w.flatten(1), c)
    # (B, 2**k phases, *m) -> (B, 2, .., 2, *m) -> (B, m1, 2, m2, 2, ...) -> (B, 2m1, 2m2, ...)
    B, m = y.shape[0], y.shape[2:]
    y = y.reshape((B,) + (2,) * k + tuple(m))
    perm = [0] + [v for i in range(k) for v in (k + 1 + i, 1 + i)]
    return y.permute(perm).reshape((B,) + tuple(2 * mi for mi in m))


def _down2_pairs(x: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """Two-tap filters (Haar) in 2-D: ``(B, H, W)``, H and W even -> ``(B, 4, H/2, W/2)`` as sums of
    sample pairs (oneDNN's one-channel 2x2 stride-2 convolution ran at 5 or at 20 ms per call on the
    benchmark batch, depending on the process; these multiply-adds take 3-5)."""
    B, H, W = x.shape
    v = x.view(B, H // 2, 2, W // 2, 2)  # (B, m, row tap, n, col tap)
    out = x.new_empty(B, 4, H // 2, W // 2)
    for bh in range(2):
        rows = torch.mul(v[:, :, 0], filters[bh, 0]).addcmul_(v[:, :, 1], filters[bh, 1])  # (B, m, n, col tap)
        for bw in range(2):
            band = out[:, 2 * bh + bw]
            torch.mul(rows[..., 0], filters[bw, 0], out=band).addcmul_(rows[..., 1], filters[bw, 1])
    return out


def _flat_2d(t: torch.Tensor, numel: int, flen: int, lattice: bool) -> bool:
    """Whether the flat passes beat the two convolutions for ``numel`` samples of ``t``'s dtype and
    device, as a lattice (orthogonal banks, :mod:`._lattice`) or in direct form (measured on a 2-core
    x86 CPU: oneDNN has no float64 kernels; in float32 the lattice wins from about 65 thousand
    samples with filters of up to 14 taps and from about 200 thousand with up to 20, the direct form
    from about 200 thousand with up to 14 taps, and the convolutions' fewer calls below that or with
    longer filters)."""
    if t.device.type != "cpu" or torch.jit.is_tracing():  # the passes write into views: no tracing
        return False
    if t.dtype == torch.float64:
        return numel >= 1 << 16
    if lattice:
        return flen <= 20 and numel >= (1 << 16 if flen <= 14 else 3 << 16)
    return flen <= 14 and numel >= 3 << 16


def _flat_1d(t: torch.Tensor, numel: int, flen: int) -> bool:
    """Whether the flat passes (a lattice or the filter taps) beat ``conv1d`` for ``numel`` samples
    (measured on a 2-core x86 CPU: from about 32 thousand samples with up to 14 taps, 128 thousand
    with more; oneDNN's one-channel stride-2 ``conv1d`` falls far behind on long batches)."""
    if t.device.type != "cpu" or torch.jit.is_tracing():
        return False
    return numel >= (1 << 15 if flen <= 14 else 1 << 17)


def _flat_3d(t: torch.Tensor, numel: int, flen: int) -> bool:
    """Whether the 3-D flat passes (the lattice, :func:`._lattice.down3`, or the filter taps,
    :func:`_down3_flat`) beat ``conv3d``, whose cost grows with the cube of the filter length
    (measured on a 2-core x86 CPU, from about 2 million samples with 4 taps, 260 thousand with 8 and
    80 thousand with 12: 1.5-11x faster above that)."""
    if t.device.type != "cpu" or torch.jit.is_tracing():
        return False
    return numel * flen**3 >= 1 << 27


def _lattice_of(t: torch.Tensor, numel: int, filters: torch.Tensor, up: bool) -> _lattice.Lattice | None:
    """The lattice of ``filters`` used for the analysis (or, with ``up``, the synthesis) when a flat
    path could run (the factorization is cached, but reading the filters is not free for small
    inputs, and a trace must not read them)."""
    if t.device.type != "cpu" or numel < 1 << 15 or torch.jit.is_tracing():
        return None
    # polyphase taps (L, outputs, inputs): bands from phases, or phases from bands
    return _lattice.lattice(synthesis_taps(filters).permute(2, 0, 1) if up else filters.view(2, -1, 2).transpose(0, 1))


def _extend_by(x: torch.Tensor, q: int, mode: str) -> torch.Tensor:
    """``x (B, *N)`` extended by ``q`` samples on each side of every axis after the first."""
    if mode == "zero":
        return _zero_pad(x.unsqueeze(1), q).squeeze(1)
    return pad_axes(x, [(q, q)] * (x.ndim - 1), mode) if q else x


def _width(p: int, filters: torch.Tensor, mode: str) -> int:
    """Samples the analysis extends each side by: ``2p``, or in ``periodization`` ``L-1`` (the
    extension that keeps ``n/2`` outputs)."""
    return filters.shape[1] // 2 - 1 if mode == "periodization" else 2 * p


def _down_any(
    x: torch.Tensor, filters: torch.Tensor, p: int, haar: int, mode: str = "zero"
) -> tuple[torch.Tensor, ...]:
    even = all(n % 2 == 0 for n in x.shape[1:])
    if haar and even and p == 0 and x.ndim <= 4 and not torch.jit.is_tracing():  # writes into views: no tracing
        return _haar.down(x, haar)
    q = _width(p, filters, mode)
    if x.ndim <= 3 and filters.shape[1] > 2 and not torch.jit.is_tracing() and _native.usable(x, filters):
        analyse = _native.bank_analysis1 if x.ndim == 2 else _native.bank_analysis2
        return analyse(_extend_by(x, q, mode), filters)  # 1-D or 2-D on CPU, one pass in C
    if x.ndim == 3 and even and filters.shape[1] > 2 and (q % 2 == 0 or q < min(x.shape[1:])):
        # the 2-D flat passes lay down the extension as a border
        lat = _lattice_of(x, x.numel(), filters, up=False)
        if _flat_2d(x, x.numel(), filters.shape[1], lat is not None):
            return _lattice.down2(x, lat, q, mode=mode) if lat else _down2_flat(x, filters, q, mode).unbind(1)
    if mode != "zero":  # the other paths pad zeros themselves, or read an extended copy
        x, p = _extend_by(x, q, mode), 0
    if x.ndim == 2 and x.shape[1] % 2 == 0 and filters.shape[1] > 2 and _flat_1d(x, x.numel(), filters.shape[1]):
        lat = _lattice_of(x, x.numel(), filters, up=False)
        return _lattice.down1(x, lat, p) if lat else _down1_flat(x, filters, p).unbind(1)
    if x.ndim == 4 and even and filters.shape[1] > 2 and _flat_3d(x, x.numel(), filters.shape[1]):
        lat = _lattice_of(x, x.numel(), filters, up=False)
        return _lattice.down3(x, lat, p) if lat else _down3_flat(x, filters, p)
    if x.ndim == 3 and even:
        if filters.shape[1] > 2:
            return _down2_conv(x, filters, p).unbind(1)
        if p == 0 and not torch.jit.is_tracing():  # its writes into views do not survive tracing (ONNX)
            return _down2_pairs(x, filters).unbind(1)
    return _down_raw(_extend_by(x, 2 * p, "zero"), down_kernel(filters, x.ndim - 1)).unbind(1)


def _up2_pairs(c: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """The transposed stride-2 convolution with two-tap filters (the adjoint of :func:`_down2_pairs`;
    its inverse with the synthesis filters): ``(B, 4, m, n)`` -> ``(B, 2m, 2n)``, each output 2x2
    block a combination of the four bands."""
    B, _, m, n = c.shape
    out = c.new_empty(B, m, 2, n, 2)  # (B, m, row phase, n, col phase)
    cols = c.new_empty(2, B, m, n, 2)  # along the columns first: (row band, B, m, n, col phase)
    for bh in range(2):
        for q in range(2):
            torch.mul(c[:, 2 * bh], filters[0, q], out=cols[bh, ..., q]).addcmul_(c[:, 2 * bh + 1], filters[1, q])
    for ph in range(2):
        torch.mul(cols[0], filters[0, ph], out=out[:, :, ph]).addcmul_(cols[1], filters[1, ph])
    return out.view(B, 2 * m, 2 * n)


def _up_any(
    bands: Sequence[torch.Tensor], filters: torch.Tensor, p: int, haar: int, mode: str = "zero"
) -> torch.Tensor:
    if haar and p == 0 and len(bands) <= 8 and not torch.jit.is_tracing():
        return _haar.up(bands, haar)
    if len(bands) <= 4 and filters.shape[1] > 2 and not torch.jit.is_tracing() and _native.usable(*bands, filters):
        bands = [_extend_by(b, p, mode) for b in bands] if p else bands
        synthesise = _native.bank_synthesis1 if len(bands) == 2 else _native.bank_synthesis2
        return synthesise(bands, synthesis_taps(filters))  # 1-D or 2-D on CPU, one pass in C
    if len(bands) == 4 and filters.shape[1] > 2 and (mode == "zero" or p <= min(bands[0].shape[-2:])):
        numel = 4 * bands[0].numel()  # the 2-D flat passes lay down the border as they copy the bands in
        lat = _lattice_of(bands[0], numel, filters, up=True)
        if _flat_2d(bands[0], numel, filters.shape[1], lat is not None):
            return _lattice.up2(bands, lat, p, mode) if lat else _up2_flat(bands, filters, p, mode)
    if mode != "zero":  # the other paths pad zeros themselves, or read extended copies
        bands, p = [_extend_by(b, p, mode) for b in bands], 0
    if len(bands) == 2 and filters.shape[1] > 2 and _flat_1d(bands[0], 2 * bands[0].numel(), filters.shape[1]):
        lat = _lattice_of(bands[0], 2 * bands[0].numel(), filters, up=True)
        return _lattice.up1(bands, lat, p) if lat else _up1_flat(bands, filters, p)
    if len(bands) == 8 and filters.shape[1] > 2 and _flat_3d(bands[0], 8 * bands[0].numel(), filters.shape[1]):
        lat = _lattice_of(bands[0], 8 * bands[0].numel(), filters, up=True)
        return _lattice.up3(bands, lat, p) if lat else _up3_flat(bands, filters, p)
    if len(bands) == 4:
        if filters.shape[1] > 2:  # stacked channels-last, the layout the convolutions read without a copy
            return _up2_conv(torch.stack(list(bands), -1).movedim(-1, 1), filters, p)
        if p == 0 and not torch.jit.is_tracing():
            return _up2_pairs(torch.stack(list(bands), 1), filters)
    c = torch.stack(list(bands), 1)
    return _up_raw(_zero_pad(c, p), up_kernel(filters, c.ndim - 2))


class _Down(torch.autograd.Function):
    """Stride-2 analysis convolution (input extended by ``2p`` per side in ``mode``, by ``L-1`` in
    ``periodization``) whose backward is the polyphase synthesis with padding ``L-1-p`` (for zero
    padding; for another extension, with ``L-1`` and then the extension's adjoint; for periodization,
    of the periodically extended gradients, as the inverse): its exact adjoint (PyTorch's own conv backward goes
    through a transposed convolution, several times slower). ``haar`` is :attr:`Wavelet.haar_sign`
    of the bank the filters come from (0: any filters)."""

    @staticmethod
    def forward(ctx, x, filters, p, haar, mode):  # type: ignore[no-untyped-def, override]
        ctx.save_for_backward(filters)
        ctx.size, ctx.p, ctx.haar, ctx.mode = x.shape[1:], p, haar, mode
        # one output per band: their gradients reach the backward apart, with no stacking copy
        return _down_any(x, filters, p, haar, mode)

    @staticmethod
    def backward(ctx, *grads):  # type: ignore[no-untyped-def, override]
        (filters,) = ctx.saved_tensors
        L, p = filters.shape[1] // 2, ctx.p
        if ctx.mode == "periodization":  # circular: the transposed convolution of the wrapped gradients
            gx = _periodized(_up_grad(filters, L // 2, ctx.haar, "periodic", grads), L, ctx.size)
        elif ctx.mode != "zero":  # the gradient of the extended input, folded back
            gx = _up_grad(filters, L - 1, ctx.haar, "zero", grads)
            gx = fold_axes(gx, (gx.shape[0], *ctx.size), [(2 * p, 2 * p)] * len(ctx.size), ctx.mode)
        else:
            gx = _up_grad(filters, L - 1 - p, ctx.haar, "zero", grads)
            extra = [s - t for s, t in zip(ctx.size, gx.shape[1:])]  # odd sizes: the last sample is unused
            if any(extra):
                gx = F.pad(gx, [v for e in reversed(extra) for v in (0, e)])
        return gx, None, None, None, None


class _Up(torch.autograd.Function):
    """Polyphase synthesis of the ``2**k`` bands (each extended by ``p`` in ``mode``, zero or
    periodic) whose backward is the stride-2 convolution with padding ``L-1-p`` (for zero padding;
    for the periodic extension, with ``L-1`` and then the extension's adjoint), its adjoint."""

    @staticmethod
    def forward(ctx, filters, p, haar, mode, *bands):  # type: ignore[no-untyped-def, override]
        ctx.save_for_backward(filters)
        ctx.p, ctx.haar, ctx.mode, ctx.shape = p, haar, mode, bands[0].shape
        return _up_any(bands, filters, p, haar, mode)

    @staticmethod
    def backward(ctx, g):  # type: ignore[no-untyped-def, override]
        (filters,) = ctx.saved_tensors
        L, p, k = filters.shape[1] // 2, ctx.p, len(ctx.shape) - 1
        if ctx.mode == "zero":
            return (None, None, None, None, *_down_grad(g, filters, L - 1 - p, ctx.haar))
        grads = _down_grad(g, filters, L - 1, ctx.haar)  # of the extended bands, folded back
        return (None, None, None, None, *(fold_axes(gb, ctx.shape, [(p, p)] * k, ctx.mode) for gb in grads))


def _up_grad(filters: torch.Tensor, p: int, haar: int, mode: str, grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """:class:`_Up` inside a backward; when compiled (only for Haar) without autograd, as dynamo
    cannot trace an autograd Function's apply in another's backward (so no double backward there)."""
    if torch.compiler.is_compiling():
        return _up_any(grads, filters, p, haar, mode)
    return _Up.apply(filters, p, haar, mode, *grads)


def _down_grad(g: torch.Tensor, filters: torch.Tensor, p: int, haar: int) -> tuple[torch.Tensor, ...]:
    """:class:`_Down` (zero padding) inside a backward, as :func:`_up_grad`."""
    if torch.compiler.is_compiling():
        return _down_any(g, filters, p, haar)
    return _Down.apply(g, filters, p, haar, "zero")


def _down_stencil(x: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """:func:`down` as strided slices and multiply-adds, one axis after the other: slow eagerly, but
    ``torch.compile`` fuses it into loops that run 1-2x faster than the eager convolutions on CPU."""
    k, flen = x.ndim - 1, filters.shape[1]
    y = x.unsqueeze(1)  # (B, bands so far, *Np)
    for d in range(2, k + 2):
        n = (y.shape[d] - flen) // 2 + 1
        taps = [y[(slice(None),) * d + (slice(j, j + 2 * n - 1, 2),)] for j in range(flen)]
        lo = sum(filters[0, j] * t for j, t in enumerate(taps))
        hi = sum(filters[1, j] * t for j, t in enumerate(taps))
        y = torch.stack([lo, hi], 2).flatten(1, 2)  # the new band bit is the least significant
    return y


def _up_stencil(c: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """:func:`up` as multiply-adds per output phase, one axis after the other (for ``torch.compile``)."""
    k, L = c.ndim - 2, filters.shape[1] // 2
    h = synthesis_taps(filters)  # (phase, band, tap)
    y = c.reshape((c.shape[0],) + (2,) * k + tuple(c.shape[2:]))  # (B, 2, .., 2, *n)
    for _ in range(k):
        # contract the leading band bit; its axis sits at dim k once that bit is gone
        bands = y.unbind(1)
        m = bands[0].shape[k] - L + 1
        phases = [sum(h[p, b, j] * bands[b].narrow(k, j, m) for b in range(2) for j in range(L)) for p in range(2)]
        y = torch.stack(phases, k + 1).flatten(k, k + 1)  # interleave the two phases
    return y


def _haar_op(haar: int, pad: int, sizes: Sequence[int], filters: torch.Tensor) -> bool:
    """Whether compiled code runs the Haar passes (as :mod:`._haar`'s operators) rather than the
    stencil: fixed Haar filters, even sizes, up to three axes, and not for ``torch.export``, whose
    graphs must hold only PyTorch's own operators (ONNX)."""
    if not haar or pad or len(sizes) > 3 or any(n % 2 for n in sizes) or filters.requires_grad:
        return False
    return not torch.compiler.is_exporting()


def down(
    x: torch.Tensor, filters: torch.Tensor, pad: int = 0, haar: int = 0, mode: str = "zero"
) -> tuple[torch.Tensor, ...]:
    """``x (B, *Np)``, extended by ``2 * pad`` samples on each side of each axis (boundary ``mode``;
    ``periodization``: by ``F/2 - 1``, ``pad`` unused),
    correlated with the outer products of ``filters (2, F)``, stride 2: the ``2**k`` bands ``(B, *n)`` in
    :func:`band_keys` order (views, not necessarily contiguous: in 2-D of one buffer, a channels-last or
    band-major ``(B, 2**k, *n)`` tensor, in the lattice path two band pairs with contiguous rows, for
    Haar a ``(B, 2, .., 2, *n, 2)`` tensor with the last axis' bands interleaved).
    ``haar = +-1`` says the filters are the orthonormal Haar bank (:attr:`Wavelet.haar_sign`)."""
    k = x.ndim - 1
    if torch.compiler.is_compiling():
        if _haar_op(haar, pad, x.shape[1:], filters):
            return _Down.apply(x, filters, pad, haar, mode)
        return _down_stencil(_extend_by(x, _width(pad, filters, mode), mode), filters).unbind(1)
    if filters.requires_grad:  # learnable filters: let autograd see the plain convolution
        return _down_raw(_extend_by(x, _width(pad, filters, mode), mode), down_kernel(filters, k)).unbind(1)
    if not (torch.is_grad_enabled() and x.requires_grad):  # no graph to record: skip the autograd function
        return _down_any(x, filters, pad, haar, mode)
    return _Down.apply(x, filters, pad, haar, mode)


def up(
    bands: Sequence[torch.Tensor], filters: torch.Tensor, haar: int = 0, pad: int = 0, mode: str = "zero"
) -> torch.Tensor:
    """Transposed stride-2 convolution of the ``2**k`` bands ``(B, *n)`` (in :func:`band_keys`
    order), each extended by ``pad`` on each side of each axis (``mode`` zero or periodic), with
    ``filters (2, F)``, keeping outputs ``F-2 .. 2n'-1`` of the full result (``n' = n + 2 pad``):
    ``(B, *(2n' - F + 2))``."""
    if torch.compiler.is_compiling():
        if _haar_op(haar, pad, [2 * n for n in bands[0].shape[1:]], filters):
            return _Up.apply(filters, pad, haar, mode, *bands)
        return _up_stencil(torch.stack([_extend_by(b, pad, mode) for b in bands], 1), filters)
    if filters.requires_grad:  # learnable filters: let autograd see the plain transposed convolution
        c = torch.stack([_extend_by(b, pad, mode) for b in bands], 1)
        return _up_raw(c, up_kernel(filters, bands[0].ndim - 1))
    if not (torch.is_grad_enabled() and any(b.requires_grad for b in bands)):
        return _up_any(bands, filters, pad, haar, mode)
    return _Up.apply(filters, pad, haar, mode, *bands)


def out_len(n: int, flen: int, mode: str) -> int:
    """Coefficient length along one axis (PyWavelets' ``dwt_coeff_len``)."""
    return (n + 1) // 2 if mode == "periodization" else (n + flen - 1) // 2


def analysis(x: torch.Tensor, w: Wavelet, mode: str) -> tuple[torch.Tensor, ...]:
    """``x (B, *N)`` with ``k = x.ndim - 1`` axes -> the ``2**k`` bands ``(B, *n)``."""
    flen = w.dec_len
    # eagerly, zero mode's F-2 zeros on each side are padded inside the convolution; compiled, the
    # padded copy is the faster input (the stencil's loads then need no bounds checks)
    if mode == "zero" and not torch.compiler.is_compiling():
        odd = [v for n in reversed(x.shape[1:]) for v in (0, n % 2)]
        return down(F.pad(x, odd) if any(odd) else x, w.analysis(x.dtype, x.device), flen // 2 - 1, w.haar_sign)
    if mode == "periodization":  # odd sizes first repeat their last sample; down extends by F/2-1
        x = pad_axes(x, [(0, n % 2) for n in x.shape[1:]], "constant")
        return down(x, w.analysis(x.dtype, x.device), 0, w.haar_sign, mode)
    if flen > 2 and all(n % 2 == 0 for n in x.shape[1:]) and not torch.compiler.is_compiling():
        # even sizes: F-2 on each side, extended inside (by the 2-D flat passes as they split the phases)
        return down(x, w.analysis(x.dtype, x.device), flen // 2 - 1, w.haar_sign, mode)
    x = pad_axes(x, [(flen - 2, 2 * out_len(n, flen, mode) - n) for n in x.shape[1:]], mode)
    return down(x, w.analysis(x.dtype, x.device), 0, w.haar_sign)


def synthesis(bands: Sequence[torch.Tensor], w: Wavelet, mode: str) -> torch.Tensor:
    """The ``2**k`` bands ``(B, *n)`` (:func:`band_keys` order) -> signal ``(B, *N)``;
    ``N = 2n - F + 2`` (``2n`` periodized)."""
    g = w.synthesis(bands[0].dtype, bands[0].device)
    if mode == "periodization":
        L = w.dec_len // 2
        y = up(bands, g, w.haar_sign, L // 2, "periodic")
        return _periodized(y, L, [2 * n for n in bands[0].shape[1:]])
    return up(bands, g, w.haar_sign)


def _periodized(y: torch.Tensor, L: int, sizes: Sequence[int]) -> torch.Tensor:
    """The circular result inside ``y``, a transposed convolution (filters of ``2L`` taps) of bands
    periodically extended by ``L // 2``: ``sizes`` samples per axis from ``2 (L // 2) - L + 1``."""
    start = 2 * (L // 2) - L + 1
    return y[(slice(None), *(slice(start, start + n) for n in sizes))]


def _keys(k: int) -> tuple[str, ...]:
    return tuple("".join("ad"[(b >> (k - 1 - i)) & 1] for i in range(k)) for b in range(2**k))


_KEYS = {k: _keys(k) for k in range(1, 9)}  # built once (functools.cache would warn under torch.compile)


def band_keys(k: int) -> tuple[str, ...]:
    """Band keys in band-stack order: ``('aa', 'ad', 'da', 'dd')`` for k=2."""
    return _KEYS[k] if k in _KEYS else _keys(k)


def max_level(n: int, flen: int) -> int:
    """PyWavelets' ``dwt_max_level``: ``floor(log2(n / (flen - 1)))``, at least 0."""
    if flen < 2 or n < flen - 1:
        return 0
    return int(math.floor(math.log2(n / (flen - 1))))
