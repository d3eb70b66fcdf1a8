"""Orthogonal two-band filter banks as lattices, for the flat 2-D passes on large CPU batches.

Along one axis, the two bands of an analysis are a 2x2 matrix of filters acting on the two phases
of the signal: ``u[j] = sum_t A[t] v[j + t]`` with ``v[j] = (x[2j], x[2j + 1])``, ``u = (lo, hi)``
and ``A[t][b][ph] = f[b][2t + ph]`` (the synthesis has the same form, bands in and phases out). When
the bank is orthogonal (haar, db, sym, coif, dmey) this matrix is paraunitary and factors into L
rotations with a one-sample advance of the second channel between them (Vaidyanathan and Hoang,
"Lattice structures for optimal design and robust implementation of two-channel perfect
reconstruction QMF banks", 1988). Each rotation, scaled so that one coefficient of each row is 1,
is two multiply-add passes, ``out0 = a + t0 * b`` and ``out1 = b + t1 * a``; the scales move to the
input, where they ride on the copy that splits or pads it. An axis then costs 2L passes over the
half-length channels instead of the direct form's 4L (two bands of 2L taps each).

The factorization runs once per filter bank (cached on the filter values); a bank that does not
factor to within the working precision (biorthogonal banks, rounded coefficients in float64) has
no lattice and keeps the direct passes.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import torch

from ._pad import band_border, interleave, phase_split


class Lattice(NamedTuple):
    """``stages[k] = (swap, t0, t1)``: with ``(a, b)`` the two channels (swapped if ``swap``), stage k
    computes ``(a + t0 b, b + t1 a)``; before every stage but the first the second channel advances
    one sample. ``scale`` multiplies the two input channels first."""

    stages: tuple[tuple[bool, float, float], ...]
    scale: tuple[float, float]


def lattice(taps: torch.Tensor) -> Lattice | None:
    """The lattice of the polyphase matrix ``taps (L, 2 outputs, 2 inputs)``, or None if it is not
    paraunitary to within ``taps``' precision."""
    tol = 64 * torch.finfo(taps.dtype).eps
    return _factor(tuple(taps.detach().cpu().double().flatten().tolist()), tol)


@functools.lru_cache(maxsize=128)
def _factor(taps: tuple[float, ...], tol: float) -> Lattice | None:
    A = np.array(taps).reshape(-1, 2, 2)
    scale = np.abs(A).max()
    if not scale > 0:
        return None
    # peel one rotation and one advance off the top degree at a time: with e1 spanning the columns
    # of A[0] and e2 those of A[-1] (orthogonal for a paraunitary A), R^T A(z) = diag(1, z) A'(z)
    rotations, rest = [], [a / scale for a in A]
    while len(rest) > 1:
        col = max(rest[0].T, key=lambda c: float(np.hypot(*c)))
        e1 = col / np.hypot(*col)
        R = np.array([[e1[0], -e1[1]], [e1[1], e1[0]]])
        B = [R.T @ a for a in rest]
        rest = [np.stack([B[t][0], B[t + 1][1]]) for t in range(len(B) - 1)]
        rotations.append(R)
    rotations.append(rest[0])
    # from the output back to the input, write each stage as (rows with a 1) @ diag(e), and push
    # diag(e) through the advance into the stage before
    e, stages = np.ones(2), []
    for R in rotations:  # rotations[0] is the last stage applied
        M = e[:, None] * R
        swap = abs(M[0, 0] * M[1, 1]) < abs(M[0, 1] * M[1, 0])
        piv = (1, 0) if swap else (0, 1)  # the column of each row's 1
        e = np.array([M[piv.index(0), 0], M[piv.index(1), 1]])
        if not np.all(np.abs(e) > 0):
            return None
        N = M / e[None, :]
        stages.append((swap, float(N[0, piv[1]]), float(N[1, piv[0]])))
    stages.reverse()
    if abs(e[0] - e[1]) <= 1e-13 * abs(e[0]):  # one scale (as for db2-db4): one number to multiply by
        e[1] = e[0]
    lat = Lattice(tuple(stages), (float(e[0] * scale), float(e[1] * scale)))
    err = np.abs(polyphase(lat) - A).max() / scale
    ok = err <= tol and max(max(abs(t0), abs(t1)) for _, t0, t1 in lat.stages) <= 4  # well conditioned
    return lat if ok else None


def polyphase(lat: Lattice) -> np.ndarray:
    """The ``(L, 2, 2)`` polyphase matrix a lattice computes (the inverse of :func:`lattice`)."""
    P = np.diag(lat.scale)[None]  # P[t]: coefficient of the advance by t samples
    for k, (swap, t0, t1) in enumerate(lat.stages):
        if k:  # advance the second channel
            P = np.concatenate([P, np.zeros((1, 2, 2))])
            P[:, 1] = np.roll(P[:, 1], 1, axis=0)
        M = np.array([[t0, 1.0], [1.0, t1]]) if swap else np.array([[1.0, t0], [t1, 1.0]])
        P = M @ P
    return P


def _run(
    lat: Lattice, a: torch.Tensor, b: torch.Tensor, spare: torch.Tensor, shift: int, out: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Apply ``lat``'s stages to the channels ``a`` and ``b`` (tensors of one shape, read along dim 0;
    an advance is ``shift`` entries). Each stage writes its first output into ``spare`` (at least as
    long) and its second in place, and the spent channel becomes the spare, so the channels move
    within three buffers; with ``out`` (two stacked outputs), the last stage writes there instead.
    Returns the two outputs (``len - (L-1) * shift`` long) and the spare."""
    n = a.shape[0]
    for k, (swap, t0, t1) in enumerate(lat.stages):
        if k:  # advance the second channel
            n -= shift
            a, b = a[:n], b[shift : shift + n]
        if swap:
            a, b = b, a
        if out is not None and k == len(lat.stages) - 1:
            torch.add(a, b, alpha=t0, out=out[0][:n])
            torch.add(b, a, alpha=t1, out=out[1][:n])
            return out[0][:n], out[1][:n], spare
        new = spare[:n]
        torch.add(a, b, alpha=t0, out=new)
        b.add_(a, alpha=t1)
        a, b, spare = new, b, a
    return a, b, spare


def _grid(v: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``shape`` starting where ``v`` starts (its buffer has room): rows of ``v``'s row stride
    (packed if ``v`` is flat), every earlier axis packed."""
    strides = [1, v.stride(0) if v.ndim > 1 else shape[-1]]
    for size in reversed(shape[1:-1]):
        strides.append(strides[-1] * size)
    return v.as_strided(shape, strides[::-1])


def down1(x: torch.Tensor, lat: Lattice, p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x (B, N)``, N even, zero-padded by ``2p`` each side -> the two bands ``(B, n)``, views with
    contiguous rows into one buffer of 1.5x the input."""
    B, L = x.shape[0], len(lat.stages)
    Nh = x.shape[1] // 2 + 2 * p
    G = B * Nh
    buf = x.new_empty(3, G + L)  # the two phases and a spare, with room for the L-1 samples they move by
    # split into the two phases and scale them, the one copy of the forward: (phase, B, N/2)
    xs = buf[:2, :G].view(2, B, Nh)
    e0, e1 = lat.scale
    s: float | torch.Tensor = e0 if e0 == e1 else torch.tensor(lat.scale, dtype=x.dtype).view(2, 1, 1)
    torch.mul(x.view(B, Nh - 2 * p, 2).permute(2, 0, 1), s, out=xs[:, :, p : Nh - p])
    if p:
        xs[..., :p].zero_()
        xs[..., Nh - p :].zero_()
    # flat over (B, N/2): an advance is one sample, and outputs near the end of a row read into the
    # next row (they are cropped)
    lo, hi, _ = _run(lat, buf[0], buf[1], buf[2], 1)
    n = Nh - L + 1
    return _grid(lo, (B, Nh))[:, :n], _grid(hi, (B, Nh))[:, :n]


def up1(bands: tuple[torch.Tensor, ...] | list[torch.Tensor], lat: Lattice, p: int) -> torch.Tensor:
    """Two bands ``(B, m)``, each zero-padded by ``p`` -> ``(B, 2m')``, m' = m + 2p - L + 1."""
    B, M = bands[0].shape[0], bands[0].shape[1] + 2 * p
    L = len(lat.stages)
    Q = B * M
    buf = bands[0].new_empty(3, Q + L)  # the two bands, scaled, zero border of p, and a spare
    c = buf[:2, :Q].view(2, B, M)
    for b, dst, e in zip(bands, c, lat.scale):
        torch.mul(b, e, out=dst[:, p : M - p])
    if p:
        c[..., :p].zero_()
        c[..., M - p :].zero_()
    y0, y1, _ = _run(lat, buf[0], buf[1], buf[2], 1)  # the two phases, flat over (B, M)
    # crop, and interleave the two phases
    m = M - L + 1
    return interleave(_grid(y0, (B, M))[:, :m], _grid(y1, (B, M))[:, :m])


def down2(x: torch.Tensor, lat: Lattice, q: int, gain: float = 1.0, mode: str = "zero") -> tuple[torch.Tensor, ...]:
    """As the direct flat passes: ``x (B, H, W)``, H and W even, extended by ``q`` samples each side in
    ``mode`` -> the four bands ``(B, m, n)``, views with contiguous rows into a buffer of the input's
    size and (for some banks) a second of half of it (``gain`` multiplies the input, for free)."""
    B, L = x.shape[0], len(lat.stages)
    Hh, Wh = x.shape[1] // 2 + q, x.shape[2] // 2 + q
    m, n = Hh - L + 1, Wh - L + 1
    G = B * Hh * 2 * Wh
    # three regions: the two column phases and a spare, each with room past its end for the L-1
    # rows the channels move by. The spare is a buffer of its own: where the stages leave the bands
    # in the first two regions (db2, db4, coif3), it is freed on return.
    buf = x.new_empty(2, G + 2 * L * (Wh + 1))
    # split the columns into their phases and scale them, the one copy of the forward (the extension
    # becomes a border): (col phase, B, H/2, row phase, W/2)
    e0, e1 = lat.scale
    s: float | torch.Tensor = gain * e0 * e0  # (col phase, row phase) takes e[col] * e[row]
    if e0 != e1:
        s = gain * torch.tensor([[e0 * e0, e0 * e1], [e1 * e0, e1 * e1]], dtype=x.dtype).view(2, 1, 1, 2, 1)
    phase_split(buf[:, :G].view(2, B, Hh, 2, Wh), x, q, mode, s)
    # columns: the column phases are the channels, flat over (B, H/2, row phase, W/2); an advance is
    # one sample, and outputs near the end of a row read into the next row (they are cropped)
    lo, hi, free = _run(lat, buf[0], buf[1], torch.empty_like(buf[0]), 1)
    # rows: the row phases of each column band are the channels; an advance is one row, and outputs
    # in the last L-1 rows of an image read into the next one (they are cropped). The region the
    # column bands left free gives each its spare half.
    R = B * Hh
    spare = _grid(free, (2, R, Wh))
    out = []
    for bw, c in enumerate((lo, hi)):
        phases = _grid(c, (R, 2, Wh)).unbind(1)
        rows = _run(lat, *phases, spare[bw], 1)[:2]  # (bh)
        out.append([_grid(r, (B, Hh, Wh))[:, :m, :n] for r in rows])
    return tuple(out[bw][bh] for bh in range(2) for bw in range(2))


def up2(bands: tuple[torch.Tensor, ...] | list[torch.Tensor], lat: Lattice, p: int, mode: str = "zero") -> torch.Tensor:
    """As the direct flat passes: four bands ``(B, m, n)``, each extended by ``p`` in ``mode`` (zero or periodic) ->
    ``(B, 2m', 2n')``, m' = m + 2p - L + 1. Works in place in five slots of one band each (the four
    bands and a spare), beside the output."""
    B, M, N = bands[0].shape[0], bands[0].shape[1] + 2 * p, bands[0].shape[2] + 2 * p
    L = len(lat.stages)
    m, n = M - L + 1, N - L + 1
    Q = B * M * N
    # each slot has room past its end for the L-1 rows and samples its channel may have moved by
    slots = bands[0].new_empty(5, Q + L * (N + 1))
    # the four bands, scaled (band (bh, bw) by scale[bh] * scale[bw]), with their border of p
    c = slots[:4, :Q].view(4, B, M, N)
    for i, (b, dst) in enumerate(zip(bands, c)):
        torch.mul(b, lat.scale[i // 2] * lat.scale[i % 2], out=dst[:, p : M - p, p : N - p])
    if p:
        band_border(c, p, mode)
    # rows: bands (0, bw) and (1, bw) are the channels, flat over (B, M, N); an advance is one row,
    # and outputs in the last L-1 rows of an image read into the next one (they are cropped)
    spare = slots[4, :Q]
    rows = []  # [bw][row phase]
    for bw in range(2):
        *y, spare = _run(lat, slots[bw, :Q], slots[2 + bw, :Q], spare.as_strided((Q,), (1,)), N)
        rows.append(y)
    # columns: for each row phase, its two column bands are the channels; an advance is one sample
    out = c.new_empty(B, m, 2, 2 * n)  # (B, m, row phase, 2n)
    for ph in range(2):
        *y, spare = _run(lat, rows[0][ph], rows[1][ph], spare.as_strided(rows[0][ph].shape, (1,)), 1)
        # crop, and interleave the two column phases into this row phase
        interleave(*(_grid(v, (B, M, N))[:, :m, :n] for v in y), out=out[:, :, ph])
    return out.view(B, 2 * m, 2 * n)


def down3(x: torch.Tensor, lat: Lattice, p: int) -> tuple[torch.Tensor, ...]:
    """``x (B, D, H, W)``, every size even, zero-padded by ``2p`` each side -> the eight bands
    ``(B, d, h, w)``: :func:`down2` over the last two axes, then the lattice along the first, in
    place on its bands (their depth phases are the channels; an advance is one plane)."""
    B = x.shape[0]
    if p:
        x = torch.nn.functional.pad(x, (0, 0, 0, 0, 2 * p, 2 * p))
    Dp = x.shape[1]
    e0, e1 = lat.scale
    bands = down2(x.reshape(B * Dp, *x.shape[2:]), lat, 2 * p, gain=e0 if e0 == e1 else 1.0)
    lo, hi = [], []
    for band in bands:
        v = band.view(B, Dp // 2, 2, *band.shape[1:]).movedim(1, 0)  # (depth/2, B, 2 phases, h, w)
        a, b = v[:, :, 0], v[:, :, 1]
        if e0 != e1:
            a.mul_(e0)
            b.mul_(e1)
        c = _run(lat, a, b, torch.empty_like(a, memory_format=torch.contiguous_format), 1)
        lo.append(c[0].movedim(0, 1))
        hi.append(c[1].movedim(0, 1))
    return (*lo, *hi)


def up3(bands: tuple[torch.Tensor, ...] | list[torch.Tensor], lat: Lattice, p: int) -> torch.Tensor:
    """Eight bands ``(B, d, h, w)``, each zero-padded by ``p`` -> ``(B, 2d', 2h', 2w')``: the lattice
    along the first axis (pairs of bands that differ there are the channels), then :func:`up2`."""
    B, d, h, w = bands[0].shape
    L = len(lat.stages)
    M = d + 2 * p
    m = M - L + 1
    planes = []
    for j in range(4):
        c = bands[0].new_empty(2, M, B, h, w)  # (band along depth, depth, ...): scaled, zero border of p
        for dst, b, e in zip(c, (bands[j], bands[4 + j]), lat.scale):
            torch.mul(b.movedim(1, 0), e, out=dst[p : M - p])
        if p:
            c[:, :p].zero_()
            c[:, M - p :].zero_()
        out = bands[0].new_empty(B, m, 2, h, w)  # the two depth phases, interleaved
        _run(lat, c[0], c[1], torch.empty_like(c[0]), 1, out=out.permute(2, 1, 0, 3, 4))
        planes.append(out.view(B * 2 * m, h, w))
    y = up2(planes, lat, p)
    return y.view(B, 2 * m, *y.shape[1:])
