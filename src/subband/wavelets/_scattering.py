"""A generalised scattering feature extractor ("A Mathematical Theory of Deep Convolutional Neural
Networks for Feature Extraction", Wiatowski, Bölcskei; IEEE Trans. IT 2018, arXiv 1512.06293),
1-D and 2-D, on any device, differentiable.

Layer ``n`` has a frame of filters ``{g_lambda}`` (a semi-discrete frame: Morlet wavelets as in
Mallat's scattering, Gabor / Weyl-Heisenberg atoms, or learned filters), a non-linearity ``M_n``
(modulus, ReLU, tanh or a shifted logistic, all Lipschitz), a pooling ``P_n`` (sub-sampling, or
averaging then sub-sampling, by ``pool``), and an output-generating atom ``chi_n`` (a Gaussian
low-pass). Every path ``q = (lambda_1, ..., lambda_n)`` gives

    U[q] f = P_n(M_n(U[q'] f * g_lambda_n)),       features of layer n:  (U[q] f) * chi_n,

and the extractor returns, per layer, the features of all its paths. Convolutions are circular
(FFT); frames are built once (``make_frame``) apart from their application.

The paper's claims can be measured with :func:`translation_sensitivity` (relative change of each
layer's features under shifts: it falls with depth when pooling is used) and
:func:`deformation_sensitivity` (change under a smooth displacement field), and its Lipschitz
bound ``||Phi(f) - Phi(h)|| <= ||f - h||`` (for frames with Bessel bound at most 1 and 1-Lipschitz
non-linearities) with :meth:`Scattering.lipschitz_ratio`.

Example:
    >>> sc = Scattering((64,), layers=2, scales=4)
    >>> feats = sc(torch.randn(3, 64))
    >>> [f.shape for f in feats]
    [torch.Size([3, 1, 64]), torch.Size([3, 4, 32]), torch.Size([3, 16, 16])]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Scattering", "make_frame", "translation_sensitivity", "deformation_sensitivity", "NONLINEARITIES"]

NONLINEARITIES = {
    "modulus": lambda z: z.abs(),
    "relu": lambda z: F.relu(z.real),
    "tanh": lambda z: torch.tanh(z.real),
    "logistic": lambda z: torch.sigmoid(z.real) - 0.5,  # shifted so that 0 maps to 0; Lipschitz 1/4
}


def _freqs(shape: Sequence[int], device=None) -> list[torch.Tensor]:
    """Angular frequencies of a DFT grid, one broadcastable tensor per axis."""
    out = []
    for i, n in enumerate(shape):
        w = 2 * math.pi * torch.fft.fftfreq(n, device=device, dtype=torch.float64)
        out.append(w.view(*([1] * i), n, *([1] * (len(shape) - i - 1))))
    return out


def make_frame(
    shape: Sequence[int], kind: str = "morlet", scales: int = 4, orientations: int = 4, sigma: float = 0.8
) -> tuple[torch.Tensor, torch.Tensor]:
    """Filters in the Fourier domain for signals of ``shape`` (1-D or 2-D): ``(filters (K, *shape),
    lowpass (*shape))``, normalised so that ``|phi^|^2 + sum_k |g_k^|^2 <= 1`` everywhere (a Bessel
    bound of 1).

    Args:
        kind: ``"morlet"`` (wavelets at ``scales`` dyadic scales, ``orientations`` directions in
            2-D; zero mean), or ``"gabor"`` (Weyl-Heisenberg: one Gaussian window modulated to
            ``scales`` frequencies per direction, spaced evenly).
        sigma: bandwidth of the mother filter (in units of its centre frequency).
    """
    if kind not in ("morlet", "gabor"):
        raise ValueError(f"kind must be 'morlet' or 'gabor', got {kind!r}")
    if len(shape) not in (1, 2):
        raise ValueError(f"shape must be 1-D or 2-D, got {tuple(shape)}")
    w = _freqs(shape)
    dirs = [(1.0,)] if len(shape) == 1 else [
        (math.cos(math.pi * t / orientations), math.sin(math.pi * t / orientations)) for t in range(orientations)
    ]  # fmt: skip
    filters = []
    for j in range(scales):
        for d in dirs:
            if kind == "morlet":
                xi, bw = 0.75 * math.pi / 2**j, sigma * 0.75 * math.pi / 2**j
            else:
                xi, bw = math.pi * (scales - j) / (scales + 1), sigma * math.pi / (2 * (scales + 1))
            proj = sum(wi * di for wi, di in zip(w, d))
            dist2 = sum((wi - xi * di) ** 2 for wi, di in zip(w, d))
            g = torch.exp(-dist2 / (2 * bw**2))
            if kind == "morlet":  # subtract the Gaussian's own envelope at 0 to make the mean zero
                g = g - math.exp(-(xi**2) / (2 * bw**2)) * torch.exp(-sum(wi**2 for wi in w) / (2 * bw**2))
                g = torch.where(proj >= 0, g, torch.zeros_like(g)) if len(shape) == 1 else g
            filters.append(g)
    bank = torch.stack(filters)  # (K, *shape), real in the Fourier domain
    low_bw = 0.75 * math.pi / 2**scales * sigma * 2
    lowpass = torch.exp(-sum(wi**2 for wi in w) / (2 * low_bw**2))
    total = lowpass**2 + (bank**2).sum(0)
    norm = total.max().sqrt()
    return (bank / norm).float(), (lowpass / norm).float()


class Scattering(nn.Module):
    """The extractor: ``forward(x (B, *shape)) -> [features of layer 0, 1, ..., layers]``, layer
    ``n`` of shape ``(B, K^n, *shape / pool^n)``.

    Args:
        shape: the signal shape (1-D ``(N,)`` or 2-D ``(H, W)``).
        layers: depth.
        frame: ``"morlet"``, ``"gabor"``, ``"learned"`` (trainable filters, initialised as Morlet),
            or the frames themselves: ``layers + 1`` pairs ``(filters (K_n, *shape_n), lowpass
            (*shape_n))`` in the Fourier domain, ``shape_n = shape / pool^n`` (the last pair's
            filters are not used and may be ``None``), e.g. another library's filter bank.
        nonlinearity: one of :data:`NONLINEARITIES` (or a list, one per layer).
        pool: pooling factor per layer (1: none).
        pooling: ``"subsample"`` or ``"average"`` (average over the pooling window, then subsample).
        scales, orientations, sigma: passed to :func:`make_frame`.
    """

    def __init__(
        self,
        shape: Sequence[int],
        layers: int = 2,
        frame: str | Sequence[tuple[torch.Tensor | None, torch.Tensor]] = "morlet",
        nonlinearity: str | Sequence[str] = "modulus",
        pool: int = 2,
        pooling: str = "subsample",
        scales: int = 4,
        orientations: int = 4,
        sigma: float = 0.8,
    ) -> None:
        super().__init__()
        self.shape, self.layers, self.pool, self.pooling = tuple(shape), layers, pool, pooling
        nl = [nonlinearity] * layers if isinstance(nonlinearity, str) else list(nonlinearity)
        if len(nl) != layers or any(n not in NONLINEARITIES for n in nl):
            raise ValueError(
                f"nonlinearity must be one of {sorted(NONLINEARITIES)} (or one per layer), got {nonlinearity}"
            )
        if pooling not in ("subsample", "average") or pool < 1:
            raise ValueError(f"pooling must be 'subsample' or 'average' and pool >= 1, got {pooling!r}, {pool}")
        if any(s % pool**layers for s in self.shape):
            raise ValueError(f"shape {self.shape} must be divisible by pool**layers = {pool**layers}")
        self.nonlinearities = nl
        given = not isinstance(frame, str)
        if given and len(frame) != layers + 1:
            raise ValueError(
                f"a given frame needs layers + 1 = {layers + 1} (filters, lowpass) pairs, got {len(frame)}"
            )
        if not given and frame not in ("morlet", "gabor", "learned"):
            raise ValueError(
                f"frame must be 'morlet', 'gabor', 'learned' or a list of (filters, lowpass), got {frame!r}"
            )
        # one frame per layer resolution (the signal shrinks by ``pool`` per layer)
        for n in range(layers + 1):
            size = [s // pool**n for s in self.shape]
            if given:
                bank, low = frame[n]
                bank = torch.zeros(0, *size) if bank is None else torch.as_tensor(bank)
                low = torch.as_tensor(low)
                if tuple(low.shape) != tuple(size) or tuple(bank.shape[1:]) != tuple(size):
                    raise ValueError(f"frame {n} must be filters (K, {size}) and lowpass {size}, got "
                                     f"{tuple(bank.shape)} and {tuple(low.shape)}")  # fmt: skip
            else:
                bank, low = make_frame(size, "morlet" if frame == "learned" else frame, scales, orientations, sigma)
            if frame == "learned":
                self.register_parameter(f"filters{n}", nn.Parameter(bank))
            else:
                self.register_buffer(f"filters{n}", bank, persistent=False)
            self.register_buffer(f"lowpass{n}", low, persistent=False)
        self.frame = "given" if given else frame

    def _conv(self, x: torch.Tensor, filt: torch.Tensor) -> torch.Tensor:
        """Circular convolution of ``x (B, P, *s)`` with Fourier-domain filters ``(K, *s)``:
        ``(B, P * K, *s)`` complex."""
        dims = tuple(range(-len(self.shape), 0))
        xf = torch.fft.fftn(x, dim=dims).unsqueeze(2)  # (B, P, 1, *s)
        y = torch.fft.ifftn(xf * filt, dim=dims)  # (B, P, K, *s)
        return y.flatten(1, 2)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool == 1:
            return x
        b, c = x.shape[:2]
        if self.pooling == "average":
            pooled = (F.avg_pool1d if len(self.shape) == 1 else F.avg_pool2d)(x.flatten(0, 1).unsqueeze(1), self.pool)
            return pooled.view(b, c, *pooled.shape[2:])
        return x[(..., *[slice(None, None, self.pool)] * len(self.shape))]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if tuple(x.shape[-len(self.shape) :]) != self.shape:
            raise ValueError(f"expected signals of shape {self.shape}, got {tuple(x.shape)}")
        dims = tuple(range(-len(self.shape), 0))
        u = x.unsqueeze(1)  # (B, 1 path, *s)
        feats = []
        for n in range(self.layers + 1):
            low = getattr(self, f"lowpass{n}")
            feats.append(torch.fft.ifftn(torch.fft.fftn(u, dim=dims) * low, dim=dims).real)
            if n == self.layers:
                break
            z = self._conv(u, getattr(self, f"filters{n}"))
            u = self._pool(NONLINEARITIES[self.nonlinearities[n]](z))
        return feats

    @torch.no_grad()
    def lipschitz_ratio(self, f: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``||Phi(f) - Phi(h)|| / ||f - h||`` per sample over all layers' features; a layer's
        squared norm is weighted by its pooling area (``pool^(d n)``, the paper's normalisation).
        The paper's bound (<= 1) is exact here without pooling (``pool=1``); discrete
        sub-sampling aliases, so with pooling the ratio is a measurement, not a guarantee."""
        a, b = self(f), self(h)
        d = len(self.shape)
        num = sum((x - y).pow(2).flatten(1).sum(1) * self.pool ** (d * n) for n, (x, y) in enumerate(zip(a, b)))
        return num.sqrt() / (f - h).flatten(1).pow(2).sum(1).sqrt()


def translation_sensitivity(extractor: Scattering, x: torch.Tensor, shifts: Sequence[int]) -> list[float]:
    """Per layer, the mean over ``shifts`` (circular, along the last axis) of
    ``||Phi_n(T_t x) - Phi_n(x)|| / ||Phi_n(x)||``: falls with depth when the features become
    more translation-invariant."""
    with torch.no_grad():
        base = extractor(x)
        out = [0.0] * len(base)
        for t in shifts:
            moved = extractor(torch.roll(x, t, dims=-1))
            for n, (a, b) in enumerate(zip(base, moved)):
                out[n] += float((a - b).norm() / a.norm().clamp_min(1e-12)) / len(shifts)
    return out


def deformation_sensitivity(extractor: Scattering, x: torch.Tensor, amplitude: float, seed: int = 0) -> list[float]:
    """Per layer, ``||Phi_n(F_tau x) - Phi_n(x)|| / ||Phi_n(x)||`` for a smooth random displacement
    field ``tau`` of maximal size ``amplitude`` samples (linear interpolation, circular)."""
    g = torch.Generator().manual_seed(seed)
    n = x.shape[-1]
    grid = torch.arange(n, dtype=torch.float64)
    field = sum(torch.randn((), generator=g, dtype=torch.float64) * torch.sin(2 * math.pi * k * grid / n + k)
                for k in (1, 2, 3))  # fmt: skip
    tau = amplitude * field / field.abs().max()
    pos = (grid - tau) % n
    lo = pos.floor().long()
    frac = (pos - lo).to(x.dtype)
    warped = x[..., lo] * (1 - frac) + x[..., (lo + 1) % n] * frac
    with torch.no_grad():
        a, b = extractor(x), extractor(warped)
    return [float((u - v).norm() / u.norm().clamp_min(1e-12)) for u, v in zip(a, b)]
