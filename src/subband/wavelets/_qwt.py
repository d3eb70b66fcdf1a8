"""Quaternion wavelet transform (Chan, Choi, Baraniuk, "Coherent multiscale image processing using
dual-tree quaternion wavelets", IEEE TIP 2008; Bülow's quaternionic analytic signal), built on the
2-D dual-tree complex wavelet transform of :mod:`subband.wavelets._dtcwt`.

Each subband of the 2-D dual tree has four real coefficients per position, one per tree pair
(row tree, column tree) = ``aa, ab, ba, bb``, the second tree being approximately the Hilbert
transform of the first. Read as one quaternion ``q = aa + i ab + j ba + k bb`` (``i``: Hilbert pair
along the columns, ``j``: along the rows), a coefficient has a magnitude ``|q|`` (nearly
shift-invariant) and three phases ``q = |q| e^{i phi} e^{k psi} e^{j theta}``: ``phi`` and ``theta`` encode
the horizontal and vertical shifts of the local feature, ``psi`` its texture/orientation mixture.

Layouts: :func:`qwt2` returns ``(lowpass (..., H/2^J, W/2^J), [q_1, ..., q_J])`` with
``q_j (..., 3, 4, h_j, w_j)``: subbands (horizontal, diagonal, vertical) x components (1, i, j, k).
The scale is that of the DTCWT (coefficients carry its ``1/sqrt(2)``), so
``|q|^2 = (|z_1|^2 + |z_2|^2) / 2`` for the subband's two complex DTCWT orientations ``z_1, z_2``.

Example:
    >>> x = torch.randn(2, 64, 64)
    >>> lo, qs = qwt2(x, 2)
    >>> qs[0].shape
    torch.Size([2, 3, 4, 32, 32])
    >>> mag, phi, theta, psi = quaternion_polar(qs[0])
    >>> torch.allclose(iqwt2((lo, qs)), x, atol=1e-5)
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ._dtcwt import _Bank, _forward_2d, _inverse_2d, _orientations, _prepare, dtcwt_filters

__all__ = ["qwt2", "iqwt2", "quaternion_polar", "quaternion_from_polar"]

Coeffs = tuple[torch.Tensor, list[torch.Tensor]]


def qwt2(data: torch.Tensor, nlevels: int = 3, *, biort: str = "near_sym_a", qshift: str = "qshift_a") -> Coeffs:
    """2-D quaternion wavelet transform over the last two axes (see the module docstring)."""
    x = _prepare(data, nlevels)
    return _forward_2d(x, nlevels, _Bank(dtcwt_filters(biort, qshift, x.dtype, x.device)), as_quads=True)


def iqwt2(coeffs: Coeffs, *, biort: str = "near_sym_a", qshift: str = "qshift_a") -> torch.Tensor:
    """Inverse of :func:`qwt2` (same filters)."""
    lo, qs = coeffs
    highs = []
    for level, q in enumerate(qs):
        if q.ndim < 4 or tuple(q.shape[-4:-2]) != (3, 4):
            raise ValueError(
                f"quaternion coefficients must be (..., 3, 4, h, w), got {tuple(q.shape)} at level {level}"
            )
        q = q.reshape(-1, 3, 4, *q.shape[-2:])
        bands = [q[:, b].unbind(1) for b in range(3)]  # (aa, ab, ba, bb) per subband
        highs.append(_orientations(*bands))
    bank = _Bank(dtcwt_filters(biort, qshift, lo.dtype, lo.device))
    z = _inverse_2d(lo.reshape(-1, *lo.shape[-2:]), highs, bank)  # (N, H, W)
    return z.reshape(*lo.shape[:-2], *z.shape[-2:])


def _product(p: Sequence[torch.Tensor], q: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """Hamilton product of quaternions given as components (1, i, j, k)."""
    a1, b1, c1, d1 = p
    a2, b2, c2, d2 = q
    return (
        a1 * a2 - b1 * b2 - c1 * c2 - d1 * d2,
        a1 * b2 + b1 * a2 + c1 * d2 - d1 * c2,
        a1 * c2 - b1 * d2 + c1 * a2 + d1 * b2,
        a1 * d2 + b1 * c2 - c1 * b2 + d1 * a2,
    )


def quaternion_from_polar(
    magnitude: torch.Tensor, phi: torch.Tensor, theta: torch.Tensor, psi: torch.Tensor
) -> torch.Tensor:
    """``|q| e^{i phi} e^{k psi} e^{j theta}`` with the components (1, i, j, k) stacked in dim -3."""
    zero = torch.zeros_like(phi)
    e_i = (torch.cos(phi), torch.sin(phi), zero, zero)
    e_k = (torch.cos(psi), zero, zero, torch.sin(psi))
    e_j = (torch.cos(theta), zero, torch.sin(theta), zero)
    q = _product(_product(e_i, e_k), e_j)
    return torch.stack([magnitude * t for t in q], -3)


def quaternion_polar(q: torch.Tensor, eps: float = 1e-12) -> tuple[torch.Tensor, ...]:
    """Magnitude and phases of quaternions with components (1, i, j, k) in dim -3:
    ``q = |q| e^{i phi} e^{k psi} e^{j theta}`` with ``phi in (-pi, pi]``, ``theta in [-pi/2, pi/2]``,
    ``psi in [-pi/4, pi/4]`` (Bülow's formulas). Where ``|psi| = pi/4`` (a singular point) the
    split between ``phi`` and ``theta`` is not unique; the one returned still reproduces ``q``.

    Returns:
        ``(magnitude, phi, theta, psi)``, each shaped like ``q`` without dim -3.
    """
    if q.ndim < 3 or q.shape[-3] != 4:
        raise ValueError(f"quaternions must have 4 components in dim -3, got shape {tuple(q.shape)}")
    magnitude = torch.linalg.vector_norm(q, dim=-3)
    a, b, c, d = (q / magnitude.clamp_min(eps).unsqueeze(-3)).unbind(-3)
    psi = -0.5 * torch.asin((2 * (b * c - a * d)).clamp(-1.0, 1.0))
    phi = 0.5 * torch.atan2(2 * (c * d + a * b), a * a - b * b + c * c - d * d)
    theta = 0.5 * torch.atan2(2 * (b * d + a * c), a * a + b * b - c * c - d * d)
    # the half-angle formulas fix phi only up to pi: pick the branch whose product is +q, not -q
    back = quaternion_from_polar(torch.ones_like(phi), phi, theta, psi)
    flip = (back * torch.stack((a, b, c, d), -3)).sum(-3) < 0
    phi = torch.where(flip, torch.where(phi > 0, phi - math.pi, phi + math.pi), phi)
    return magnitude, phi, theta, psi
