"""Fourier spectra of images and feature maps, the decay of their high frequencies, and the
spectral real-vs-generated detector whose robustness "A Closer Look at Fourier Spectrum
Discrepancies for CNN-generated Images Detection" (Chandrasegaran, Tran, Cheung; CVPR 2021,
arXiv 2103.17195) examines.

- :func:`power_spectrum`: ``|FFT2|^2`` of ``(..., H, W)`` maps (channels averaged), zero
  frequency in the centre;
- :func:`azimuthal_average`: its mean over rings of integer radius: a 1-D profile from the DC term
  to the highest frequency both axes reach (``min(H, W) // 2`` bins);
- :func:`fit_decay`: a power law ``P(f) ~ A f^-beta`` fitted by least squares in log-log over the
  highest frequencies (the last quarter of the profile by default), per image: ``(beta, log A)``;
- :func:`band_profile`: the radial profile of the Fourier magnitudes in the outer band, corners
  included, binned and smoothed as Dzanic et al.'s reference script does;
- :func:`spectral_features`: the three numbers per image of their detector (the decay exponent of
  that profile in the spectrum's corners, and the magnitudes where that band starts and ends);
- :class:`SpectralDetector`: those features, standardised, fed to a logistic regression or the
  official 5-nearest-neighbour classifier (scikit-learn): the detector the paper shows a last
  upsampling by nearest neighbour + convolution escapes, while a transposed convolution does not.

Example:
    >>> x = torch.randn(4, 3, 64, 64)
    >>> prof = azimuthal_average(power_spectrum(x))
    >>> prof.shape
    torch.Size([4, 32])
    >>> beta, log_a = fit_decay(prof)
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

__all__ = ["power_spectrum", "azimuthal_average", "fit_decay", "band_profile", "spectral_features", "SpectralDetector"]


def power_spectrum(x: torch.Tensor, channel_dim: int | None = -3) -> torch.Tensor:
    """``|FFT2|^2`` over the last two axes, centred; averaged over ``channel_dim`` (``None``: kept)."""
    if x.ndim < 2:
        raise ValueError(f"need at least (H, W), got shape {tuple(x.shape)}")
    x = x.float() if not x.is_floating_point() else x
    ps = torch.fft.fftshift(torch.fft.fft2(x).abs().pow(2), dim=(-2, -1))
    if channel_dim is not None and x.ndim >= 3:
        ps = ps.mean(channel_dim)
    return ps


def azimuthal_average(ps: torch.Tensor) -> torch.Tensor:
    """Mean of a centred ``(..., H, W)`` spectrum over rings of integer radius: ``(..., min(H, W) // 2)``."""
    h, w = ps.shape[-2:]
    yy, xx = torch.meshgrid(torch.arange(h) - h // 2, torch.arange(w) - w // 2, indexing="ij")
    r = torch.sqrt(yy.double() ** 2 + xx.double() ** 2).round().long().flatten().to(ps.device)
    n = min(h, w) // 2
    keep = r < n
    flat = ps.reshape(*ps.shape[:-2], -1)[..., keep]
    idx = r[keep]
    sums = flat.new_zeros(*flat.shape[:-1], n).index_add_(-1, idx, flat)
    counts = torch.bincount(idx, minlength=n).to(flat.dtype)
    return sums / counts


def fit_decay(profile: torch.Tensor, start: float = 0.75) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit ``log P(f) = log A - beta log f`` over the bins from ``start`` (a fraction of the
    profile) to the end; returns ``(beta, log A)`` per profile."""
    if not 0 <= start < 1:
        raise ValueError(f"start must be in [0, 1), got {start}")
    n = profile.shape[-1]
    lo = max(1, int(start * n))
    if n - lo < 2:
        raise ValueError(f"the profile is too short ({n} bins) to fit from {start}")
    f = torch.arange(lo, n, dtype=torch.float64, device=profile.device).log()
    p = profile[..., lo:].double().clamp_min(1e-30).log()
    fc = f - f.mean()
    slope = ((p - p.mean(-1, keepdim=True)) * fc).sum(-1) / (fc**2).sum()
    intercept = p.mean(-1) - slope * f.mean()
    return -slope, intercept


@functools.lru_cache(maxsize=16)
def _band_operator(h: int, w: int, band: float, bins: int, smooth: int) -> tuple[torch.Tensor, ...]:
    """How the magnitudes of a centred ``(H, W)`` spectrum become the smoothed, binned radial profile
    of its outer band: ``(keep, idx, counts, post, radii)``, used as
    ``profile = bin_means[:, counts > 0] @ post.T`` where ``bin_means`` averages the kept
    magnitudes by bin ``idx``.

    Coefficients with radius ``r > band * r_max`` (``r_max``: the corner, ``sqrt((H/2)^2 + (W/2)^2)``)
    fall in ``bins`` equal bins of radius (one on an edge goes to the lower bin, as the script's first
    match does); ``post`` interpolates an empty bin (small images have few distinct radii) linearly
    from its non-empty neighbours, then takes a moving average over ``smooth`` bins whose window
    shrinks to stay centred at both ends."""
    yy, xx = torch.meshgrid(torch.arange(h) - h // 2, torch.arange(w) - w // 2, indexing="ij")
    r = torch.sqrt(yy.double() ** 2 + xx.double() ** 2).flatten()
    keep = r > band * math.hypot(h / 2, w / 2)
    rk = r[keep]
    lo, hi = float(rk.min()), float(rk.max())
    if hi - lo <= 0:
        raise ValueError(f"a {h}x{w} spectrum has no radial range above band={band}")
    idx = (torch.ceil((rk - lo) / (hi - lo) * bins).long() - 1).clamp(0, bins - 1)
    counts = torch.bincount(idx, minlength=bins).double()
    full = torch.nonzero(counts).flatten().numpy()
    fill = np.stack([np.interp(np.arange(bins), full, e) for e in np.eye(len(full))], 1)  # (bins, nonempty)
    avg = np.zeros((bins, bins))
    for i in range(bins):
        s = min(smooth // 2, i, bins - 1 - i)
        avg[i, i - s : i + s + 1] = 1.0 / (2 * s + 1)
    radii = lo + (torch.arange(bins, dtype=torch.float64) + 0.5) * (hi - lo) / bins
    return keep, idx, counts, torch.from_numpy(avg @ fill), radii


def _fit_exponent(y: torch.Tensor, t: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Least-squares ``c`` of ``y ~ y[..., 0] * t^c`` per row of ``y`` (``t[0] = 1``): a grid over
    [-100, 100] in steps of 0.5, then golden-section search within one step of the best point."""
    grid = torch.arange(-100.0, 100.5, 0.5, dtype=t.dtype)

    def err(c: torch.Tensor, yc: torch.Tensor) -> torch.Tensor:  # c (M, K), yc (M, n) -> (M, K)
        return (yc[:, None, :] - yc[:, None, :1] * t.pow(c[..., None])).pow(2).sum(-1)

    out = []
    for yc in y.split(chunk):
        best = grid[err(grid.expand(len(yc), -1), yc).argmin(-1)]  # (M,)
        a, b = best - 0.5, best + 0.5
        g = (math.sqrt(5) - 1) / 2
        for _ in range(40):
            c1, c2 = b - g * (b - a), a + g * (b - a)
            e = err(torch.stack([c1, c2], 1), yc)  # (M, 2)
            left = e[:, 0] < e[:, 1]
            a, b = torch.where(left, a, c1), torch.where(left, c2, b)
        out.append((a + b) / 2)
    return torch.cat(out)


def band_profile(
    images: torch.Tensor, band: float = 0.5, bins: int = 200, smooth: int = 5
) -> tuple[torch.Tensor, torch.Tensor]:
    """The smoothed radial profile of the Fourier magnitudes beyond ``band * r_max``, as Dzanic et
    al.'s reference script bins it: ``(radii (bins,), profile (N, bins))``.

    ``r_max`` is the corner radius ``sqrt((H/2)^2 + (W/2)^2)``, so the profile runs past the axes'
    Nyquist frequency into the spectrum's corners (the highest diagonal frequencies), where a stride-2
    transposed convolution leaves its checkerboard. Images are ``(N, C, H, W)`` (channels averaged
    to grey) or ``(N, H, W)``; magnitudes are absolute (compare images on one scale)."""
    if images.ndim not in (3, 4):
        raise ValueError(f"images must be (N, C, H, W) or (N, H, W), got shape {tuple(images.shape)}")
    if not 0 <= band < 1:
        raise ValueError(f"band must be in [0, 1), got {band}")
    x = images.double()
    x = x.mean(1) if x.ndim == 4 else x  # (N, H, W) grey
    keep, idx, counts, post, radii = (t.to(x.device) for t in _band_operator(*x.shape[-2:], band, bins, smooth))
    mag = torch.fft.fftshift(torch.fft.fft2(x), dim=(-2, -1)).abs().flatten(-2)[:, keep]  # (N, K)
    means = mag.new_zeros(len(x), bins).index_add_(1, idx, mag) / counts.clamp_min(1)  # (N, bins)
    return radii, means[:, counts > 0] @ post.T  # (N, bins)


def spectral_features(
    images: torch.Tensor, band: float = 0.5, fit_from: float = 0.85, bins: int = 200, smooth: int = 5
) -> torch.Tensor:
    """``(N, 3)``: the high-frequency decay features of Dzanic et al. (the reference script the
    paper's classifiers read): the exponent ``c`` of a power law ``y_i (r / r_i)^c`` fitted by least
    squares to the :func:`band_profile` at radii ``r >= fit_from * r_max`` (the corners), and the
    magnitudes ``y_i`` and ``y_f`` where that band starts and ends."""
    if not band < fit_from < 1:
        raise ValueError(f"need band < fit_from < 1, got band={band}, fit_from={fit_from}")
    radii, prof = band_profile(images, band, bins, smooth)
    first = round(bins * (fit_from - band) / (1 - band))
    y, t = prof[:, first:], radii[first:] / radii[first]
    return torch.stack([_fit_exponent(y, t), y[:, 0], y[:, -1]], -1).float()


class SpectralDetector:
    """Real (0) vs generated (1) from the high-frequency decay: :func:`spectral_features`,
    standardised, fed to a classifier (needs scikit-learn).

    The paper's protocol (its official ``knn_classifier.py``): fit on real images against one
    generator's (the baseline with a transposed convolution), then measure how many images of
    *other* generators it still flags (:meth:`detection_rate`): the nearest + conv generator escapes.

    Args:
        classifier: ``"logistic"`` (logistic regression) or ``"knn"`` (k nearest neighbours, the
            official classifier with ``k = 5``).
        k: neighbours for ``"knn"``.
        **features: keyword arguments of :func:`spectral_features` (``band``, ``fit_from``, ...).
    """

    def __init__(self, classifier: str = "logistic", k: int = 5, **features) -> None:
        if classifier not in ("logistic", "knn"):
            raise ValueError(f"classifier must be 'logistic' or 'knn', got {classifier!r}")
        self.classifier, self.k, self.features = classifier, k, features
        self.model = None

    def fit(self, real: torch.Tensor, generated: torch.Tensor) -> SpectralDetector:
        try:
            from sklearn.linear_model import LogisticRegression
            from sklearn.neighbors import KNeighborsClassifier
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler
        except ImportError as e:  # pragma: no cover - optional dependency
            raise ImportError("SpectralDetector needs scikit-learn: pip install 'subband[demo]'") from e
        x = torch.cat([spectral_features(real, **self.features), spectral_features(generated, **self.features)]).numpy()
        y = np.r_[np.zeros(len(real)), np.ones(len(generated))]
        clf = LogisticRegression() if self.classifier == "logistic" else KNeighborsClassifier(self.k)
        self.model = make_pipeline(StandardScaler(), clf).fit(x, y)
        return self

    def predict(self, images: torch.Tensor) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("call fit() first")
        return self.model.predict(spectral_features(images, **self.features).numpy())

    def detection_rate(self, images: torch.Tensor) -> float:
        """The fraction of ``images`` called generated."""
        return float(self.predict(images).mean())

    def score(self, real: torch.Tensor, generated: torch.Tensor) -> float:
        """Accuracy on a balanced or unbalanced test set of real and generated images."""
        pred = np.r_[self.predict(real), self.predict(generated)]
        truth = np.r_[np.zeros(len(real)), np.ones(len(generated))]
        return float((pred == truth).mean())
