"""Differentiable discrete wavelet transforms with PyWavelets' API, on any device."""

from ._dtcwt import DTCWT1d, DTCWT2d, IDTCWT1d, IDTCWT2d, dtcwt, dtcwt2, dtcwt_filters, idtcwt, idtcwt2
from ._dwt import (
    dwt,
    dwt2,
    dwt_coeff_len,
    dwt_max_level,
    dwtn,
    idwt,
    idwt2,
    idwtn,
    wavedec,
    wavedec2,
    wavedecn,
    waverec,
    waverec2,
    waverecn,
)  # fmt: skip
from ._filters import DISCRETE_WAVELETS, MODES, Wavelet, as_wavelet
from ._pad import pad
from ._qwt import iqwt2, quaternion_from_polar, quaternion_polar, qwt2
from ._scattering import NONLINEARITIES, Scattering, deformation_sensitivity, make_frame, translation_sensitivity
from ._swt import iswt, iswt2, swt, swt2, swt_max_level
from .modules import DWT1d, DWT2d, DWT3d, IDWT1d, IDWT2d, IDWT3d, ISWT1d, ISWT2d, SWT1d, SWT2d

__all__ = [
    "DISCRETE_WAVELETS", "MODES", "Wavelet", "as_wavelet", "pad",
    "dwt", "idwt", "dwt2", "idwt2", "dwtn", "idwtn",
    "wavedec", "waverec", "wavedec2", "waverec2", "wavedecn", "waverecn",
    "swt", "iswt", "swt2", "iswt2",
    "Scattering", "make_frame", "translation_sensitivity", "deformation_sensitivity", "NONLINEARITIES",
    "qwt2", "iqwt2", "quaternion_polar", "quaternion_from_polar",
    "dtcwt", "idtcwt", "dtcwt2", "idtcwt2", "dtcwt_filters", "DTCWT1d", "IDTCWT1d", "DTCWT2d", "IDTCWT2d",
    "dwt_max_level", "dwt_coeff_len", "swt_max_level",
    "DWT1d", "IDWT1d", "DWT2d", "IDWT2d", "DWT3d", "IDWT3d", "SWT1d", "ISWT1d", "SWT2d", "ISWT2d",
]  # fmt: skip
