"""Spectra: the azimuthal average against a written-out ring mean, a synthetic power law recovered
by the decay fit, the detector's features against the reference script's steps written out with
loops, and the detector on spectra that differ at high frequencies."""

import numpy as np
import pytest
import torch

from subband.interpret import (
    SpectralDetector,
    azimuthal_average,
    band_profile,
    fit_decay,
    power_spectrum,
    spectral_features,
)


def _power_law_images(n: int, size: int, beta: float, seed: int) -> torch.Tensor:
    """Random-phase images whose power spectrum is exactly |f|^-beta (f != 0)."""
    g = torch.Generator().manual_seed(seed)
    fy = torch.fft.fftfreq(size).view(-1, 1)
    fx = torch.fft.fftfreq(size).view(1, -1)
    f = torch.sqrt(fy**2 + fx**2) * size
    amp = torch.where(f > 0, f.clamp_min(1e-9) ** (-beta / 2), torch.zeros(()))
    phase = torch.rand(n, size, size, generator=g) * 2 * torch.pi
    return torch.fft.ifft2(amp * torch.exp(1j * phase)).real * size  # (n, size, size)


def _hermitian_power_law(n: int, size: int, beta: float, seed: int) -> torch.Tensor:
    """Real images whose Fourier magnitude is exactly |f|^(-beta / 2) (phases of a real noise image)."""
    g = torch.Generator().manual_seed(seed)
    f = torch.sqrt(torch.fft.fftfreq(size).view(-1, 1) ** 2 + torch.fft.fftfreq(size).view(1, -1) ** 2) * size
    amp = torch.where(f > 0, f.clamp_min(1e-9) ** (-beta / 2), torch.zeros(()))
    phase = torch.fft.fft2(torch.randn(n, size, size, generator=g, dtype=torch.float64)).angle()
    return torch.fft.ifft2(amp * torch.exp(1j * phase)).real


def _reference_features(img: np.ndarray, band=0.5, fit_from=0.85, bins=200, smooth=5) -> list[float]:
    """Dzanic et al.'s feature script, step by step with loops: outer-band magnitudes, first
    matching bin, empty bins interpolated, shrinking moving average, scalar least squares."""
    from scipy.optimize import minimize_scalar

    h, w = img.shape
    spec = np.abs(np.fft.fftshift(np.fft.fft2(img)))
    rs, ms = [], []
    for i in range(h):
        for j in range(w):
            r = np.hypot(i - h // 2, j - w // 2)
            if r > band * np.hypot(h / 2, w / 2):
                rs.append(r)
                ms.append(spec[i, j])
    edges = np.linspace(min(rs), max(rs), bins + 1)
    sums, counts = np.zeros(bins), np.zeros(bins)
    for r, m in zip(rs, ms):
        k = next(k for k in range(bins) if edges[k] <= r <= edges[k + 1])
        sums[k] += m
        counts[k] += 1
    full = counts > 0
    y = np.interp(np.arange(bins), np.flatnonzero(full), sums[full] / counts[full])
    y = np.array([y[i - s : i + s + 1].mean() for i in range(bins) for s in [min(smooth // 2, i, bins - 1 - i)]])
    x = (edges[:-1] + edges[1:]) / 2
    first = round(bins * (fit_from - band) / (1 - band))
    x, y = x[first:] / x[first], y[first:]
    c = minimize_scalar(lambda c: ((y - y[0] * x**c) ** 2).sum(), bounds=(-100, 100), method="bounded").x
    return [c, y[0], y[-1]]


@pytest.mark.parametrize("size", [32, 33, 48])
def test_detector_features_follow_the_reference_script(size):
    pytest.importorskip("scipy")
    imgs = torch.rand(3, 1, size, size, generator=torch.Generator().manual_seed(size), dtype=torch.float64)
    imgs[1] = imgs[1].cumsum(-1).cumsum(-2) / size  # a smooth one: a steep decay
    got = spectral_features(imgs).double().numpy()
    for img, row in zip(imgs[:, 0].numpy(), got):
        want = _reference_features(img)
        np.testing.assert_allclose(row[1:], want[1:], rtol=1e-5)
        np.testing.assert_allclose(row[0], want[0], atol=2e-3)


@pytest.mark.parametrize("beta", [1.0, 2.0, 3.0])
def test_detector_features_recover_a_power_law_magnitude(beta):
    """|F| = r^(-beta/2) exactly: the fitted exponent is -beta/2, and y_f / y_i the law's ratio."""
    feats = spectral_features(_hermitian_power_law(2, 64, beta, seed=0)).double()
    assert torch.allclose(feats[:, 0], torch.full((2,), -beta / 2, dtype=torch.float64), atol=0.02)
    r_i, r_f = 0.85 * 32 * 2**0.5, 32 * 2**0.5  # where the fitted band starts and ends (the corner)
    assert torch.allclose(feats[:, 2] / feats[:, 1], torch.tensor((r_f / r_i) ** (-beta / 2)).double(), rtol=0.03)


def test_detector_features_reject_bad_input():
    with pytest.raises(ValueError, match="shape"):
        spectral_features(torch.rand(32, 32))
    with pytest.raises(ValueError, match="fit_from"):
        spectral_features(torch.rand(2, 32, 32), band=0.9, fit_from=0.85)
    with pytest.raises(ValueError, match="band"):
        band_profile(torch.rand(2, 32, 32), band=1.0)


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
    assert spectral_features(real).shape == (80, 3)
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
