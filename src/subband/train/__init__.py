"""Training and evaluation: metrics (more to come: TrainConfig, the loop, distributed)."""

from .metrics import psnr, ssim

__all__ = ["psnr", "ssim"]
