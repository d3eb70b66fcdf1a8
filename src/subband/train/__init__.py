"""Training and evaluation: TrainConfig, the loop with exact resume, metrics."""

from .config import TrainConfig
from .loop import evaluate, fit
from .metrics import psnr, ssim

__all__ = ["TrainConfig", "fit", "evaluate", "psnr", "ssim"]
