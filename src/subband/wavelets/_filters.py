"""Filter banks: building them, apart from applying them.

A :class:`Wavelet` holds the four filters of a two-channel filter bank as float64 tensors.
It accepts any discrete wavelet name PyWavelets knows, a ``pywt.Wavelet`` object, or a custom
bank given as four sequences ``(dec_lo, dec_hi, rec_lo, rec_hi)``. Transforms call
:meth:`Wavelet.analysis` / :meth:`Wavelet.synthesis` to get the stacked filters in the dtype and
on the device of their input; those results are cached per (dtype, device).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import pywt
import torch

__all__ = ["Wavelet", "WaveletLike", "DISCRETE_WAVELETS", "MODES", "as_wavelet", "check_mode"]

#: Every discrete wavelet name PyWavelets provides (haar, db*, sym*, coif*, bior*, rbio*, dmey).
DISCRETE_WAVELETS: tuple[str, ...] = tuple(pywt.wavelist(kind="discrete"))

#: The nine boundary modes, named as in PyWavelets.
MODES: tuple[str, ...] = (
    "zero",
    "constant",
    "symmetric",
    "periodic",
    "smooth",
    "periodization",
    "reflect",
    "antisymmetric",
    "antireflect",
)


def check_mode(mode: str) -> str:
    """Return ``mode`` if it is one of :data:`MODES`, else raise ``ValueError`` listing them."""
    if mode not in MODES:
        raise ValueError(f"unknown boundary mode {mode!r}; valid modes are {', '.join(MODES)}")
    return mode


class Wavelet:
    """A two-channel filter bank with PyWavelets' filter conventions.

    Args:
        wavelet: a discrete wavelet name (``"db4"``), a ``pywt.Wavelet``, another
            :class:`Wavelet`, or four filters ``(dec_lo, dec_hi, rec_lo, rec_hi)`` of equal length.
        name: a name for a custom bank.

    Attributes:
        haar_sign: ``+-1`` when the bank is the orthonormal Haar bank (haar, db1, bior1.1, rbio1.1,
            or either sign of its high-pass filters), which the 2-D transforms compute as sums and
            differences; 0 for every other bank.

    Example:
        >>> w = Wavelet("haar")
        >>> w.dec_len
        2
        >>> w.analysis(torch.float32, torch.device("cpu")).shape
        torch.Size([2, 2])
    """

    def __init__(
        self,
        wavelet: str | pywt.Wavelet | Wavelet | Sequence[Sequence[float]],
        name: str | None = None,
    ) -> None:
        if isinstance(wavelet, Wavelet):
            bank, name = (wavelet.dec_lo, wavelet.dec_hi, wavelet.rec_lo, wavelet.rec_hi), wavelet.name
        elif isinstance(wavelet, str):
            if wavelet not in DISCRETE_WAVELETS:
                hint = (
                    " (a continuous wavelet has no filter bank)" if wavelet in pywt.wavelist(kind="continuous") else ""
                )
                raise ValueError(
                    f"unknown discrete wavelet {wavelet!r}{hint}; valid names are the families "
                    f"{', '.join(pywt.families())} with members such as "
                    f"haar, db1-db38, sym2-sym20, coif1-coif17, bior1.1-bior6.8, rbio1.1-rbio6.8, dmey"
                )
            bank, name = pywt.Wavelet(wavelet).filter_bank, wavelet
        elif isinstance(wavelet, pywt.Wavelet):
            bank, name = wavelet.filter_bank, name or wavelet.name
        else:
            bank = tuple(wavelet)  # type: ignore[arg-type]
            if len(bank) != 4:
                raise ValueError("a custom filter bank is four filters: (dec_lo, dec_hi, rec_lo, rec_hi)")
            name = name or "custom"
        filt = [torch.as_tensor(f, dtype=torch.float64, device="cpu").flatten() for f in bank]
        lengths = {f.numel() for f in filt}
        if len(lengths) != 1 or 0 in lengths:
            raise ValueError(f"the four filters must have one non-zero length, got {[f.numel() for f in filt]}")
        if lengths.pop() % 2:
            raise ValueError("filter length must be even, as in PyWavelets: pad the filters with a zero")
        self.dec_lo, self.dec_hi, self.rec_lo, self.rec_hi = filt
        self.name = name
        if isinstance(wavelet, Wavelet):
            self.haar_sign = wavelet.haar_sign
        else:  # inside a trace (torch.compile) from the given lists: a named wavelet built there is kept
            self.haar_sign = _haar_sign(bank if torch.compiler.is_compiling() else filt)
        self._cache: dict[tuple[str, torch.dtype, torch.device], torch.Tensor] = {}

    @property
    def dec_len(self) -> int:
        """Filter length (even)."""
        return int(self.dec_lo.numel())

    @property
    def filter_bank(self) -> tuple[list[float], list[float], list[float], list[float]]:
        return tuple(f.tolist() for f in (self.dec_lo, self.dec_hi, self.rec_lo, self.rec_hi))  # type: ignore[return-value]

    def _get(self, kind: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        key = (kind, dtype, torch.device(device))
        t = self._cache.get(key)
        if t is None:
            if kind == "analysis":  # flipped: conv layers cross-correlate
                t = torch.stack([self.dec_lo.flip(0), self.dec_hi.flip(0)])
            else:
                t = torch.stack([self.rec_lo, self.rec_hi])
            t = t.to(dtype=dtype, device=device)
            # learnable filters are rebuilt each call, inside the graph; so are the fake tensors of a
            # trace (torch.export, torch.compile), which must not outlive it
            if not t.requires_grad and type(t) is torch.Tensor and not torch.compiler.is_compiling():
                self._cache[key] = t
        return t

    def analysis(self, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
        """Decomposition filters, flipped for cross-correlation: shape ``(2, dec_len)`` (lo, hi)."""
        return self._get("analysis", dtype, torch.device(device))

    def synthesis(self, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
        """Reconstruction filters for transposed convolution: shape ``(2, dec_len)`` (lo, hi)."""
        return self._get("synthesis", dtype, torch.device(device))

    def __repr__(self) -> str:
        return f"Wavelet({self.name!r}, dec_len={self.dec_len})"


def _haar_sign(bank: Sequence[torch.Tensor] | Sequence[Sequence[float]]) -> int:
    """``h = +-1`` when ``bank`` is the orthonormal Haar bank, whose analysis filters (flipped for
    cross-correlation) and synthesis filters are both ``2**-0.5 [[1, 1], [h, -h]]``; else 0."""
    if all(type(f) is torch.Tensor for f in bank):
        filters = [f.tolist() for f in bank]
    elif all(isinstance(f, (list, tuple)) for f in bank):  # PyWavelets' filter_bank
        filters = [[float(v) for v in f] for f in bank]
    else:  # values unknown to a trace
        return 0
    if any(len(f) != 2 for f in filters):
        return 0
    s = 0.5**0.5
    for h in (1, -1):
        want = ([s, s], [-h * s, h * s], [s, s], [h * s, -h * s])
        if all(abs(u - v) <= 1e-15 for f, g in zip(filters, want) for u, v in zip(f, g)):
            return h
    return 0


WaveletLike = Union[str, "pywt.Wavelet", Wavelet, Sequence[Sequence[float]]]

_NAMED: dict[str, Wavelet] = {}


def as_wavelet(wavelet: WaveletLike) -> Wavelet:
    """Return a :class:`Wavelet` for ``wavelet``; named wavelets are built once and shared."""
    if isinstance(wavelet, Wavelet):
        return wavelet
    if isinstance(wavelet, str):
        w = _NAMED.get(wavelet)
        if w is None:
            w = Wavelet(wavelet)
            if type(w.dec_lo) is torch.Tensor:  # not the fake tensors of a trace (torch.export)
                _NAMED[wavelet] = w
        return w
    return Wavelet(wavelet)
