"""Offline datasets and their loaders. Nothing here downloads; nothing here imports the rest of subband."""

from .sr import SRPairs, bicubic_resize, load_image, modcrop, rgb_to_y

__all__ = ["SRPairs", "bicubic_resize", "load_image", "modcrop", "rgb_to_y"]
