"""Reusable blocks, one concept per file."""

from .wavemix import WaveMixBlock

__all__ = ["WaveMixBlock"]
