"""Datasets named by a short string, for the command line.

digits[:train|test]        scikit-learn's bundled digits
mnist:DIR[:train|test]     MNIST-format IDX files in DIR
folder:DIR                 one subfolder per class
sr:DIR                     super-resolution pairs from the HR images in DIR (needs ``scale``)
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from .classification import ImageFolder, digits, mnist
from .sr import SRPairs, bundled_photos

__all__ = ["from_spec"]


def from_spec(spec: str, *, split: str = "train", scale: int | None = None, patch: int | None = None) -> Dataset:
    """The dataset ``spec`` names; ``split`` is the default where the spec has none. For ``sr:``,
    training (``split="train"``) draws ``patch``-sized crops; evaluation uses whole images."""
    kind, _, rest = spec.partition(":")
    if kind == "digits":
        return digits(rest or split)
    if kind == "mnist":
        path, _, sub = rest.partition(":") if not Path(rest).exists() else (rest, "", "")
        return mnist(path, sub or split)
    if kind == "folder":
        return ImageFolder(rest)
    if kind == "sr":
        if scale is None:
            raise ValueError("an sr: dataset needs the model's scale")
        return SRPairs(
            rest or bundled_photos(),
            scale,
            patch=patch if split == "train" else None,
            samples_per_image=8 if split == "train" else 1,
        )
    raise ValueError(f"unknown dataset {spec!r}: use digits, mnist:DIR, folder:DIR, sr:DIR or sr")
