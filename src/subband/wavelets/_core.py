"""The engine: separable analysis and synthesis over k axes at once.

Both directions are one convolution over the transformed axes (moved last, batch flattened):

- analysis: extend each axis (boundary mode), then ``conv{k}d`` with the ``2**k`` outer products
  of the two decomposition filters and stride 2. Output is band-stacked, ``(B, 2**k, *n)``; band
  ``b`` has bit ``k-1-i`` set when axis ``i`` took the high-pass filter (``'a'``=0, ``'d'``=1, so
  for 2-D: 0=aa, 1=ad, 2=da, 3=dd, PyWavelets' key order).
- synthesis (polyphase): a stride-1 ``conv{k}d`` from the ``2**k`` bands to the ``2**k`` output
  phases with kernels of length ``F/2``, then the phases are interleaved.

Index arithmetic (1-D, filter length F = 2L, PyWavelets' conventions):
  forward   y[o] = sum_k dec[F-1-k] * xe[2o + k]          xe: x extended by F-2 left
  inverse   x[2i+p] = sum_k c[i + k] * rec[2(L-1-k) + p]  (summed over the two bands)
  periodization extends by L-1 each side (forward) and the coefficients by L//2 (inverse).
Filters are built apart from their application (`analysis_kernel`, `synthesis_kernel`), so modules
can hold them as buffers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._filters import Wavelet
from ._pad import pad_axis

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def outer(filters: list[torch.Tensor]) -> torch.Tensor:
    """Outer products over axes: list of ``(2, L_i)`` -> ``(2**k, L_1, ..., L_k)``."""
    out = filters[0]
    for f in filters[1:]:
        # (b, *l) x (2, l') -> (b, 2, *l, l') -> (2b, *l, l')
        out = torch.einsum("b...,cl->bc...l", out, f).flatten(0, 1)
    return out


def analysis_kernel(wavelet: Wavelet, k: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Conv weight ``(2**k, 1, F, ..., F)`` for a k-axis analysis step."""
    f = wavelet.analysis(dtype, device)  # (2, F) flipped
    return outer([f] * k).unsqueeze(1)


def synthesis_kernel(wavelet: Wavelet, k: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Conv weight ``(2**k phases, 2**k bands, L, ..., L)`` for a k-axis polyphase synthesis."""
    r = wavelet.synthesis(dtype, device)  # (2 bands, F)
    L = r.shape[1] // 2
    # h[p, b, k] = rec_b[2(L-1-k) + p]  -> per axis (2 phases, 2 bands, L)
    h = r.view(2, L, 2).flip(1).permute(2, 0, 1)  # (p, b, k)
    per_axis = h.reshape(4, L)  # index p*2 + b
    w = outer([per_axis] * k)  # (4**k, L..): index bits interleave (p1 b1 p2 b2 ...)
    w = w.view((2, 2) * k + (L,) * k)
    perm = [2 * i for i in range(k)] + [2 * i + 1 for i in range(k)] + list(range(2 * k, 3 * k))
    return w.permute(perm).reshape((2**k, 2**k) + (L,) * k)


def out_len(n: int, flen: int, mode: str) -> int:
    """Coefficient length along one axis (PyWavelets' ``dwt_coeff_len``)."""
    return (n + 1) // 2 if mode == "periodization" else (n + flen - 1) // 2


def analysis(x: torch.Tensor, kernel: torch.Tensor, mode: str) -> torch.Tensor:
    """``x (B, *N)`` with ``k = x.ndim - 1`` axes -> band-stacked ``(B, 2**k, *n)``."""
    k = x.ndim - 1
    flen = kernel.shape[-1]
    for d in range(1, k + 1):
        n = x.shape[d]
        if mode == "periodization":
            if n % 2:
                x = pad_axis(x, 0, 1, "constant", d)
            x = pad_axis(x, flen // 2 - 1, flen // 2 - 1, "periodic", d)
        else:
            c = out_len(n, flen, mode)
            x = pad_axis(x, flen - 2, 2 * c - n, mode, d)
    # (B, *Np) -> (B, 1, *Np) -> conv stride 2 -> (B, 2**k, *n)
    return _CONV[k](x.unsqueeze(1), kernel, stride=2)


def synthesis(c: torch.Tensor, kernel: torch.Tensor, mode: str) -> torch.Tensor:
    """Band-stacked ``c (B, 2**k, *n)`` -> signal ``(B, *N)``; ``N = 2n - F + 2`` (``2n`` periodized)."""
    k = c.ndim - 2
    L = kernel.shape[-1]
    n = c.shape[2:]
    if mode == "periodization":
        a = L // 2
        for d in range(2, k + 2):
            c = pad_axis(c, a, a, "periodic", d)
    y = _CONV[k](c, kernel) if L > 1 else torch.einsum("pb,Bb...->Bp...", kernel.flatten(1), c)
    # (B, 2**k phases, *m) -> (B, 2, .., 2, *m) -> (B, m1, 2, m2, 2, ...) -> (B, 2m1, 2m2, ...)
    B, m = y.shape[0], y.shape[2:]
    y = y.reshape((B,) + (2,) * k + tuple(m))
    perm = [0] + [v for i in range(k) for v in (k + 1 + i, 1 + i)]
    y = y.permute(perm).reshape((B,) + tuple(2 * mi for mi in m))
    if mode == "periodization":
        start = 2 * (L // 2) - L + 1
        y = y[(slice(None),) + tuple(slice(start, start + 2 * ni) for ni in n)]
    return y


def band_keys(k: int) -> tuple[str, ...]:
    """Band keys in band-stack order: ``('aa', 'ad', 'da', 'dd')`` for k=2."""
    return tuple("".join("ad"[(b >> (k - 1 - i)) & 1] for i in range(k)) for b in range(2**k))


def max_level(n: int, flen: int) -> int:
    """PyWavelets' ``dwt_max_level``: ``floor(log2(n / (flen - 1)))``, at least 0."""
    if flen < 2 or n < flen - 1:
        return 0
    return int(math.floor(math.log2(n / (flen - 1))))
