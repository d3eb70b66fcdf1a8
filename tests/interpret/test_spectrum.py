"""Spectra: the azimuthal average against a written-out ring mean, a synthetic power law recovered
by the decay fit, and the detector on spectra that differ at high frequencies."""

import numpy as np
import pytest
import torch

from subband.interpret import SpectralDetector, azimuthal_average, fit_decay, power_spectrum, spectral_features


def _power_law_images(n: int, size: int, beta: float, seed: int) -> torch.Tensor:
    """Random-phase images whose power spectrum is exactly |f|^-beta (f != 0)."""
    g = torch.Generator().manual_seed(seed)
    fy = torch.fft.fftfreq(size).view(-1, 1)
    fx = torch.fft.fftfreq(size).view(1, -1)
    f = torch.sqrt(fy**2 + fx**2) * size
    amp = torch.where(f > 0, f.clamp_min(1e-9) ** (-beta / 2), torch.zeros(()))
    phase = torch.rand(n, size, size, generator=g) * 2 * torch.pi
    return torch.fft.ifft2(amp * torch.exp(1j * phase)).real * size  # (n, size, size)


def test_azimuthal_average_is_the_ring_mean():
    ps = torch.rand(7, 9, dtype=torch.float64)
    prof = azimuthal_average(ps)
    yy, xx = np.meshgrid(np.arange(7) - 3, np.arange(9) - 4, indexing="ij")
    r = np.round(np.sqrt(yy**2 + xx**2)).astype(int)
    want = [ps.numpy()[r == i].mean() for i in range(3)]
    np.testing.assert_allclose(prof.numpy(), want)


@pytest.mark.parametrize("beta", [1.0, 2.0, 3.0])
def test_decay_fit_recovers_a_power_law(beta):
    """The spectrum of the real part is the symmetrised target: still |f|^-beta on rings."""
    x = _power_law_images(4, 128, beta, seed=0)
    est, _ = fit_decay(azimuthal_average(power_spectrum(x, channel_dim=None)), start=0.5)
    assert torch.allclose(est, torch.full_like(est, beta), atol=0.05)


def test_detector_separates_spectra_that_decay_differently_and_not_identical_ones():
    real = _power_law_images(80, 64, 2.0, seed=1).unsqueeze(1)
    steep = _power_law_images(80, 64, 2.6, seed=2).unsqueeze(1)
    same = _power_law_images(80, 64, 2.0, seed=3).unsqueeze(1)
    det = SpectralDetector().fit(real[:40], steep[:40])
    assert det.score(real[40:], steep[40:]) > 0.95
    chance = SpectralDetector().fit(real[:40], same[:40]).score(real[40:], same[40:])
    assert chance < 0.75
    assert spectral_features(real).shape == (80, 2)
    with pytest.raises(RuntimeError, match="fit"):
        SpectralDetector().predict(real)


def test_knn_detector_and_the_papers_transfer_protocol():
    """Fit on real against one generator; images that decay like the real ones escape it."""
    real = _power_law_images(200, 64, 2.0, seed=1).unsqueeze(1)
    steep = _power_law_images(160, 64, 2.6, seed=2).unsqueeze(1)
    det = SpectralDetector(classifier="knn").fit(real[:80], steep[:80])
    assert det.detection_rate(steep[80:]) >= 0.9 and det.detection_rate(real[80:140]) <= 0.1
    assert det.detection_rate(real[140:]) <= 0.1  # an "other generator" whose spectrum is the real one's
    with pytest.raises(ValueError, match="classifier"):
        SpectralDetector(classifier="svm")
