"""Image-quality metrics with the super-resolution conventions (border crop, Y channel upstream).

Both take ``(..., C, H, W)`` tensors and return one value per image (shape ``(...)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["psnr", "ssim"]


def _crop(x: torch.Tensor, border: int) -> torch.Tensor:
    return x[..., border : x.shape[-2] - border, border : x.shape[-1] - border] if border else x


def _check(sr: torch.Tensor, hr: torch.Tensor, border: int) -> None:
    if sr.shape != hr.shape:
        raise ValueError(f"shapes differ: {tuple(sr.shape)} vs {tuple(hr.shape)}")
    if sr.ndim < 3:
        raise ValueError(f"expected (..., C, H, W), got {tuple(sr.shape)}")
    if border < 0 or 2 * border >= min(sr.shape[-2:]):
        raise ValueError(f"border {border} leaves nothing of a {tuple(sr.shape[-2:])} image")


def psnr(sr: torch.Tensor, hr: torch.Tensor, border: int = 0, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)``, after cropping ``border`` pixels."""
    _check(sr, hr, border)
    err = (_crop(sr, border).double() - _crop(hr, border).double()).pow(2).mean(dim=(-3, -2, -1))
    return 10.0 * torch.log10(data_range**2 / err)


def _gaussian(sigma: float, radius: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    x = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(
    sr: torch.Tensor, hr: torch.Tensor, border: int = 0, data_range: float = 1.0, sigma: float = 1.5
) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004): Gaussian window (sigma 1.5, 11 taps), K1=0.01,
    K2=0.03, averaged over the window positions that fit in the image and over channels.
    Equals ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
    use_sample_covariance=False)``."""
    _check(sr, hr, border)
    a, b = _crop(sr, border).double(), _crop(hr, border).double()
    lead, (c, h, w) = a.shape[:-3], a.shape[-3:]
    radius = int(3.5 * sigma + 0.5)
    if min(h, w) < 2 * radius + 1:
        raise ValueError(f"image {h}x{w} is smaller than the {2 * radius + 1}px SSIM window")
    g = _gaussian(sigma, radius, a.dtype, a.device)
    # (..., C, H, W) -> (N, 1, H, W); separable valid filtering
    a, b = a.reshape(-1, 1, h, w), b.reshape(-1, 1, h, w)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, g.view(1, 1, -1, 1)), g.view(1, 1, 1, -1))

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.mean(dim=(-3, -2, -1)).view(*lead, c).mean(-1)
