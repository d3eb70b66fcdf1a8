"""Reusable blocks, one concept per file."""

from .drop import DropPath, drop_path
from .mlp import Mlp
from .norm import LayerNorm2d, layer_norm_2d
from .wavemix import WaveMixBlock

__all__ = ["DropPath", "drop_path", "LayerNorm2d", "layer_norm_2d", "Mlp", "WaveMixBlock"]
