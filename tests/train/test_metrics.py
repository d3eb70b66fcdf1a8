"""PSNR and SSIM against scikit-image."""

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from subband.train import psnr, ssim


def test_psnr_matches_skimage():
    rng = np.random.default_rng(0)
    hr = rng.random((2, 3, 40, 36))
    sr = np.clip(hr + 0.05 * rng.standard_normal(hr.shape), 0, 1)
    got = psnr(torch.from_numpy(sr), torch.from_numpy(hr), border=3)
    for i in range(2):
        ref = peak_signal_noise_ratio(hr[i, :, 3:-3, 3:-3], sr[i, :, 3:-3, 3:-3], data_range=1.0)
        assert got[i].item() == pytest.approx(ref, rel=1e-10)


def test_ssim_matches_skimage():
    rng = np.random.default_rng(1)
    hr = rng.random((2, 1, 48, 40))
    sr = np.clip(hr + 0.1 * rng.standard_normal(hr.shape), 0, 1)
    got = ssim(torch.from_numpy(sr), torch.from_numpy(hr), border=2)
    for i in range(2):
        ref = structural_similarity(
            hr[i, 0, 2:-2, 2:-2], sr[i, 0, 2:-2, 2:-2], data_range=1.0, gaussian_weights=True,
            use_sample_covariance=False,
        )  # fmt: skip
        assert got[i].item() == pytest.approx(ref, rel=1e-6)
    # multichannel: the mean over channels, like channel_axis
    rgb_hr, rgb_sr = rng.random((3, 30, 30)), rng.random((3, 30, 30))
    ref = structural_similarity(
        rgb_hr, rgb_sr, data_range=1.0, gaussian_weights=True, use_sample_covariance=False, channel_axis=0
    )
    assert ssim(torch.from_numpy(rgb_sr)[None], torch.from_numpy(rgb_hr)[None]).item() == pytest.approx(ref, rel=1e-6)


def test_identical_images_and_bad_input():
    x = torch.rand(1, 1, 20, 20)
    assert ssim(x, x).item() == pytest.approx(1.0)
    assert torch.isinf(psnr(x, x)).all()
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(x, x[..., :19])
    with pytest.raises(ValueError, match="border"):
        psnr(x, x, border=10)
    with pytest.raises(ValueError, match="window"):
        ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
