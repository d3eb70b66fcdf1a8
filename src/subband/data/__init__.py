"""Offline datasets and their loaders. Nothing here downloads; nothing here imports the rest of subband."""

from .classification import ImageFolder, TensorImages, digits, mnist, read_idx
from .spec import from_spec
from .sr import SRPairs, bicubic_resize, bundled_photos, load_image, modcrop, rgb_to_y

__all__ = [
    "bundled_photos",
    "from_spec",
    "ImageFolder",
    "TensorImages",
    "digits",
    "mnist",
    "read_idx",
    "SRPairs",
    "bicubic_resize",
    "load_image",
    "modcrop",
    "rgb_to_y",
]
