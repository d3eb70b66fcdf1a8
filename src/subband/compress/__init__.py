"""Make models small and fast: deploy-time rewrites that return a new module."""

from .conv_bn import convbn_mode
from .fuse import fuse

__all__ = ["convbn_mode", "fuse"]
