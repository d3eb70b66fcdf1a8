"""``nn.Module`` wrappers: the transforms as layers, with their filters held as buffers.

Each module calls the matching function (``DWT2d`` -> :func:`wavedec2`, ``IDWT2d`` ->
:func:`waverec2`, ...) and returns exactly what it returns. The filter bank lives in
non-persistent buffers, so ``.to(device)`` / ``.double()`` move it with the module and it is not
written into checkpoints.

Example:
    >>> dwt, idwt = DWT2d("db2", level=2, mode="periodization"), IDWT2d("db2", mode="periodization")
    >>> x = torch.randn(4, 3, 32, 32)
    >>> coeffs = dwt(x)
    >>> torch.allclose(idwt(coeffs), x, atol=1e-5)
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from . import _dwt, _swt
from ._filters import Wavelet, WaveletLike, as_wavelet, check_mode

__all__ = ["DWT1d", "IDWT1d", "DWT2d", "IDWT2d", "DWT3d", "IDWT3d", "SWT1d", "ISWT1d", "SWT2d", "ISWT2d"]


class _BufferBank(Wavelet):
    """A :class:`Wavelet` whose float32 filters are read from a module's buffers (so they follow
    ``.to()``); float64 and half-precision inputs get filters rounded from the exact constants."""

    def __init__(self, wavelet: Wavelet, owner: nn.Module) -> None:
        super().__init__(wavelet)
        self._owner = owner

    def analysis(self, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
        buf = self._owner.dec_filters  # float32; other dtypes come from the exact constants
        return buf.to(device=device) if dtype == buf.dtype == torch.float32 else super().analysis(dtype, device)

    def synthesis(self, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
        buf = self._owner.rec_filters
        return buf.to(device=device) if dtype == buf.dtype == torch.float32 else super().synthesis(dtype, device)


class _Transform(nn.Module):
    """Shared body: a filter bank in buffers and one transform function with fixed options."""

    fn: Callable[..., Any]

    def __init__(self, wavelet: WaveletLike = "haar", **options: Any) -> None:
        super().__init__()
        w = as_wavelet(wavelet)
        if "mode" in options:
            check_mode(options["mode"])
        self.options = options
        # (lo, hi) rows: analysis flipped for cross-correlation, synthesis as is; on the default
        # device (so a model built under ``torch.device("meta")`` costs nothing)
        device = torch.empty(0).device
        self.register_buffer("dec_filters", w.analysis(torch.float32, "cpu").to(device, copy=True), persistent=False)
        self.register_buffer("rec_filters", w.synthesis(torch.float32, "cpu").to(device, copy=True), persistent=False)
        self.bank = _BufferBank(w, self)

    def forward(self, x: Any) -> Any:
        return type(self).fn(x, self.bank, **self.options)

    def extra_repr(self) -> str:
        return ", ".join([repr(self.bank.name)] + [f"{k}={v!r}" for k, v in self.options.items()])


class DWT1d(_Transform):
    """Multilevel 1-D DWT as a layer: ``x -> [cAn, cDn, ..., cD1]`` (see :func:`wavedec`).

    Args:
        wavelet: wavelet name, ``pywt.Wavelet``, :class:`Wavelet` or custom filter bank.
        level: number of levels (``None``: the maximum for the input).
        mode: boundary mode.
        axis: axis to transform.
    """

    fn = staticmethod(_dwt.wavedec)

    def __init__(
        self, wavelet: WaveletLike = "haar", *, level: int | None = 1, mode: str = "symmetric", axis: int = -1
    ):
        super().__init__(wavelet, level=level, mode=mode, axis=axis)


class IDWT1d(_Transform):
    """Inverse of :class:`DWT1d` (see :func:`waverec`)."""

    fn = staticmethod(_dwt.waverec)

    def __init__(self, wavelet: WaveletLike = "haar", *, mode: str = "symmetric", axis: int = -1):
        super().__init__(wavelet, mode=mode, axis=axis)


class DWT2d(_Transform):
    """Multilevel 2-D DWT as a layer: ``x -> [cAn, (cHn, cVn, cDn), ..., (cH1, cV1, cD1)]``.

    Shape: ``(*, H, W)`` in; each level halves ``H`` and ``W`` (rounded as :func:`dwt_coeff_len`).
    """

    fn = staticmethod(_dwt.wavedec2)

    def __init__(
        self,
        wavelet: WaveletLike = "haar",
        *,
        level: int | None = 1,
        mode: str = "symmetric",
        axes: tuple[int, int] = (-2, -1),
    ):
        super().__init__(wavelet, level=level, mode=mode, axes=axes)


class IDWT2d(_Transform):
    """Inverse of :class:`DWT2d` (see :func:`waverec2`)."""

    fn = staticmethod(_dwt.waverec2)

    def __init__(self, wavelet: WaveletLike = "haar", *, mode: str = "symmetric", axes: tuple[int, int] = (-2, -1)):
        super().__init__(wavelet, mode=mode, axes=axes)


class DWT3d(_Transform):
    """Multilevel 3-D DWT for volumes: ``x -> [cAn, {details_n}, ..., {details_1}]`` (see :func:`wavedecn`).

    Detail dicts are keyed ``'aad'``, ``'ada'``, ... (one letter per axis of ``axes``).
    """

    fn = staticmethod(_dwt.wavedecn)

    def __init__(
        self,
        wavelet: WaveletLike = "haar",
        *,
        level: int | None = 1,
        mode: str = "symmetric",
        axes: tuple[int, int, int] = (-3, -2, -1),
    ):
        super().__init__(wavelet, level=level, mode=mode, axes=axes)


class IDWT3d(_Transform):
    """Inverse of :class:`DWT3d` (see :func:`waverecn`)."""

    fn = staticmethod(_dwt.waverecn)

    def __init__(
        self, wavelet: WaveletLike = "haar", *, mode: str = "symmetric", axes: tuple[int, int, int] = (-3, -2, -1)
    ):
        super().__init__(wavelet, mode=mode, axes=axes)


class SWT1d(_Transform):
    """Stationary 1-D transform as a layer (see :func:`swt`); outputs keep the input's length."""

    fn = staticmethod(_swt.swt)

    def __init__(
        self,
        wavelet: WaveletLike = "haar",
        *,
        level: int | None = 1,
        axis: int = -1,
        trim_approx: bool = False,
        norm: bool = False,
    ):
        super().__init__(wavelet, level=level, axis=axis, trim_approx=trim_approx, norm=norm)


class ISWT1d(_Transform):
    """Inverse of :class:`SWT1d` (see :func:`iswt`)."""

    fn = staticmethod(_swt.iswt)

    def __init__(self, wavelet: WaveletLike = "haar", *, axis: int = -1, norm: bool = False):
        super().__init__(wavelet, axis=axis, norm=norm)


class SWT2d(_Transform):
    """Stationary 2-D transform as a layer (see :func:`swt2`)."""

    fn = staticmethod(_swt.swt2)

    def __init__(
        self,
        wavelet: WaveletLike = "haar",
        *,
        level: int | None = 1,
        axes: tuple[int, int] = (-2, -1),
        trim_approx: bool = False,
        norm: bool = False,
    ):
        super().__init__(wavelet, level=level, axes=axes, trim_approx=trim_approx, norm=norm)


class ISWT2d(_Transform):
    """Inverse of :class:`SWT2d` (see :func:`iswt2`)."""

    fn = staticmethod(_swt.iswt2)

    def __init__(self, wavelet: WaveletLike = "haar", *, axes: tuple[int, int] = (-2, -1), norm: bool = False):
        super().__init__(wavelet, axes=axes, norm=norm)
