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
- :class:`SpectralDetector`: those two numbers per image (on the profile normalised by its mean
  power), fed to a logistic regression (scikit-learn): the high-frequency-decay detector of Dzanic
  et al. that the paper shows a last upsampling by nearest neighbour + convolution escapes, while a
  transposed convolution does not.

Example:
    >>> x = torch.randn(4, 3, 64, 64)
    >>> prof = azimuthal_average(power_spectrum(x))
    >>> prof.shape
    torch.Size([4, 32])
    >>> beta, log_a = fit_decay(prof)
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["power_spectrum", "azimuthal_average", "fit_decay", "spectral_features", "SpectralDetector"]


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


def spectral_features(images: torch.Tensor, start: float = 0.75) -> torch.Tensor:
    """``(N, 2)``: the decay ``beta`` and ``log A`` of each image's azimuthal profile, normalised
    by its mean over the non-DC bins (so the features do not depend on contrast)."""
    prof = azimuthal_average(power_spectrum(images))
    prof = prof / prof[..., 1:].mean(-1, keepdim=True).clamp_min(1e-30)
    beta, log_a = fit_decay(prof, start)
    return torch.stack([beta, log_a], -1).float()


class SpectralDetector:
    """Real (0) vs generated (1) from the high-frequency decay: :func:`spectral_features`,
    standardised, fed to a classifier (needs scikit-learn).

    The paper's protocol (its official ``knn_classifier.py``): fit on real images against one
    generator's (the baseline with a transposed convolution), then measure how many images of
    *other* generators it still flags (:meth:`detection_rate`): the nearest + conv generator escapes.

    Args:
        start: where the fitted high-frequency band starts (fraction of the profile).
        classifier: ``"logistic"`` (logistic regression) or ``"knn"`` (k nearest neighbours, the
            official classifier with ``k = 5``).
        k: neighbours for ``"knn"``.
    """

    def __init__(self, start: float = 0.75, classifier: str = "logistic", k: int = 5) -> None:
        if classifier not in ("logistic", "knn"):
            raise ValueError(f"classifier must be 'logistic' or 'knn', got {classifier!r}")
        self.start, self.classifier, self.k = start, classifier, k
        self.model = None

    def fit(self, real: torch.Tensor, generated: torch.Tensor) -> SpectralDetector:
        try:
            from sklearn.linear_model import LogisticRegression
            from sklearn.neighbors import KNeighborsClassifier
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler
        except ImportError as e:  # pragma: no cover - optional dependency
            raise ImportError("SpectralDetector needs scikit-learn: pip install 'subband[demo]'") from e
        x = torch.cat([spectral_features(real, self.start), spectral_features(generated, self.start)]).numpy()
        y = np.r_[np.zeros(len(real)), np.ones(len(generated))]
        clf = LogisticRegression() if self.classifier == "logistic" else KNeighborsClassifier(self.k)
        self.model = make_pipeline(StandardScaler(), clf).fit(x, y)
        return self

    def predict(self, images: torch.Tensor) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("call fit() first")
        return self.model.predict(spectral_features(images, self.start).numpy())

    def detection_rate(self, images: torch.Tensor) -> float:
        """The fraction of ``images`` called generated."""
        return float(self.predict(images).mean())

    def score(self, real: torch.Tensor, generated: torch.Tensor) -> float:
        """Accuracy on a balanced or unbalanced test set of real and generated images."""
        pred = np.r_[self.predict(real), self.predict(generated)]
        truth = np.r_[np.zeros(len(real)), np.ones(len(generated))]
        return float((pred == truth).mean())
