"""A priori compressed convolutions ("A priori compression of convolutional neural networks for wave
simulators", Sattari, Parsania et al.; arXiv 2304.04964) and the 2-D wave-equation data the
paper validates them on.

:class:`FactorizedConv2d` keeps a convolution's kernel ``W (out, in, k, k)`` in a rank-``R``
canonical polyadic (CP) format from the start of training: ``W[o, c, i, j] = sum_r A[o, r] B[c, r]
U[i, r] V[j, r]``, i.e. four one-way filters per rank-one term instead of one 3-way kernel per output.
It runs as a 1x1 conv (``in -> R``), a depthwise ``k x 1`` and a depthwise ``1 x k`` conv on the
``R`` channels, and a 1x1 conv (``R -> out``): ``R (in + 2k + out)`` weights instead of
``out in k^2``. :meth:`FactorizedConv2d.kernel` rebuilds the full kernel (the tests compare).

:func:`wave_equation_dataset` simulates ``u_tt = c^2 (u_xx + u_yy)`` on a periodic square grid with
the leapfrog finite-difference scheme (second order in space and time) from random Gaussian
pulses, and returns (state at t, state at t + horizon) pairs for learning the propagator.

Example:
    >>> conv = FactorizedConv2d(16, 32, 3, rank=4, padding=1)
    >>> conv(torch.randn(2, 16, 20, 20)).shape, sum(p.numel() for p in conv.parameters()) - 32
    (torch.Size([2, 32, 20, 20]), 216)
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["FactorizedConv2d", "wave_equation_dataset", "wave_step", "discrete_wave_frequency"]


class FactorizedConv2d(nn.Module):
    """A rank-``rank`` CP-format ``k x k`` convolution (see the module docstring).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, bias: as ``nn.Conv2d`` (square).
        rank: number of rank-one terms ``R``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        rank: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if min(in_channels, out_channels, kernel_size, rank, stride) < 1:
            raise ValueError("channels, kernel_size, rank and stride must be positive")
        self.k, self.rank, self.stride, self.padding = kernel_size, rank, stride, padding
        self.first = nn.Conv2d(in_channels, rank, 1, bias=False)  # B: (R, in)
        self.vertical = nn.Conv2d(rank, rank, (kernel_size, 1), (stride, 1), (padding, 0), groups=rank, bias=False)
        self.horizontal = nn.Conv2d(rank, rank, (1, kernel_size), (1, stride), (0, padding), groups=rank, bias=False)
        self.last = nn.Conv2d(rank, out_channels, 1, bias=bias)  # A: (out, R)

    def kernel(self) -> torch.Tensor:
        """The full ``(out, in, k, k)`` kernel the factors represent."""
        a = self.last.weight[:, :, 0, 0]  # (out, R)
        b = self.first.weight[:, :, 0, 0]  # (R, in)
        u = self.vertical.weight[:, 0, :, 0]  # (R, k)
        v = self.horizontal.weight[:, 0, 0, :]  # (R, k)
        return torch.einsum("or,rc,ri,rj->ocij", a, b, u, v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(self.horizontal(self.vertical(self.first(x))))

    def extra_repr(self) -> str:
        return f"kernel_size={self.k}, rank={self.rank}, stride={self.stride}, padding={self.padding}"


def _laplacian(u: torch.Tensor) -> torch.Tensor:
    return u.roll(1, -1) + u.roll(-1, -1) + u.roll(1, -2) + u.roll(-1, -2) - 4 * u  # periodic, dx = 1


def wave_step(u: torch.Tensor, u_prev: torch.Tensor, courant: float) -> torch.Tensor:
    """One leapfrog step of the 2-D wave equation on a periodic grid (``dx = 1``):
    ``u_next = 2u - u_prev + courant^2 * laplacian(u)`` with ``courant = c dt / dx``."""
    return 2 * u - u_prev + courant**2 * _laplacian(u)


def discrete_wave_frequency(kx: float, ky: float, courant: float) -> float:
    """The angular frequency per step of the mode ``sin(kx x) sin(ky y)`` under :func:`wave_step`:
    ``sin(w / 2) = courant * sqrt(sin^2(kx / 2) + sin^2(ky / 2))`` (the scheme's dispersion relation)."""
    return 2 * math.asin(courant * math.sqrt(math.sin(kx / 2) ** 2 + math.sin(ky / 2) ** 2))


def wave_equation_dataset(
    n: int,
    size: int = 32,
    horizon: int = 10,
    courant: float = 0.5,
    pulses: int = 2,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` of shape ``(n, 2, size, size)`` and ``(n, 1, size, size)``: the field at
    two consecutive steps ``(u_{t-1}, u_t)`` from random Gaussian pulses at rest, and the field
    ``horizon`` steps later. ``courant <= 1/sqrt(2)`` keeps the scheme stable."""
    if not 0 < courant <= 1 / math.sqrt(2):
        raise ValueError(f"courant must be in (0, 1/sqrt(2)] for a stable scheme, got {courant}")
    yy, xx = torch.meshgrid(
        torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64), indexing="ij"
    )
    u = torch.zeros(n, size, size, dtype=torch.float64)
    for _ in range(pulses):
        cy, cx = (torch.rand(2, n, 1, 1, generator=generator, dtype=torch.float64) * size).unbind(0)
        width = 1.5 + 2.5 * torch.rand(n, 1, 1, generator=generator, dtype=torch.float64)
        amp = torch.randn(n, 1, 1, generator=generator, dtype=torch.float64)
        dy = (yy - cy + size / 2) % size - size / 2  # periodic distance
        dx = (xx - cx + size / 2) % size - size / 2
        u += amp * torch.exp(-(dy**2 + dx**2) / (2 * width**2))
    burn = int(torch.randint(0, 20, (1,), generator=generator))
    prev = u.clone()  # at rest: u_{-1} = u_0
    for _ in range(burn):
        u, prev = wave_step(u, prev, courant), u
    start = torch.stack([prev, u], 1)
    for _ in range(horizon):
        u, prev = wave_step(u, prev, courant), u
    return start.float(), u.unsqueeze(1).float()
