"""Offline classification datasets: scikit-learn's bundled digits, MNIST-format IDX files, and
image folders (one subfolder per class). Each is a ``torch.utils.data.Dataset`` of
``(image (C, H, W) float in [0, 1], label int)`` with ``classes`` naming the labels.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

from .sr import IMAGE_SUFFIXES, load_image

__all__ = ["TensorImages", "digits", "read_idx", "mnist", "ImageFolder"]


class TensorImages(torch.utils.data.Dataset):
    """Images and labels held in memory: ``images (N, C, H, W)`` float, ``labels (N,)`` long."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> None:
        if images.ndim != 4 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"expected images (N, C, H, W) and labels (N,), got {tuple(images.shape)}, {tuple(labels.shape)}"
            )
        self.images, self.labels, self.classes = images, labels.long(), classes

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.labels[i])

    def split(self, n_test: int, seed: int = 0) -> tuple[TensorImages, TensorImages]:
        """A reproducible random split: ``(train, test)`` with ``n_test`` images in ``test``."""
        if not 0 < n_test < len(self):
            raise ValueError(f"n_test must be in (0, {len(self)}), got {n_test}")
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        test, train = order[:n_test], order[n_test:]
        return (
            TensorImages(self.images[train], self.labels[train], self.classes),
            TensorImages(self.images[test], self.labels[test], self.classes),
        )


def digits(split: str = "train", test_fraction: float = 0.2, seed: int = 0) -> TensorImages:
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes), split reproducibly.

    ``split`` is ``"train"``, ``"test"`` or ``"all"``; values are scaled from 0..16 to 0..1.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("digits() needs scikit-learn: pip install scikit-learn") from None

    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)  # (N, 1, 8, 8)
    y = torch.from_numpy(d.target)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = round(len(y) * test_fraction)
    idx = {"all": order, "test": order[:n_test], "train": order[n_test:]}[split]
    return TensorImages(x[idx], y[idx], [str(i) for i in range(10)])


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (MNIST's format), gzipped or not."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: cannot read ({e})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[data[2]])
    body = data[4 + 4 * ndim :]
    if len(body) != int(np.prod(shape)) * dtype.itemsize:
        raise ValueError(f"{path}: {len(body)} data bytes for shape {shape}; the file is truncated or corrupt")
    return np.frombuffer(body, dtype=dtype).reshape(shape)


def mnist(root: str | Path, split: str = "test") -> TensorImages:
    """MNIST-format IDX files in ``root``: ``{t10k,train}-{images-idx3,labels-idx1}-ubyte[.gz]``."""
    root = Path(root)
    prefix = {"test": "t10k", "train": "train"}.get(split)
    if prefix is None:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")

    def find(kind: str) -> Path:
        for name in (f"{prefix}-{kind}-ubyte.gz", f"{prefix}-{kind}-ubyte", f"{prefix}-{kind}.idx"):
            if (root / name).is_file():
                return root / name
        raise FileNotFoundError(f"{root}: no {prefix}-{kind}-ubyte[.gz]")

    images, labels = read_idx(find("images-idx3")), read_idx(find("labels-idx1"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{root}: images {images.shape} and labels {labels.shape} do not match")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return TensorImages(x, torch.from_numpy(labels.astype(np.int64)), [str(i) for i in range(10)])


class ImageFolder(torch.utils.data.Dataset):
    """``root/<class>/<image>`` files; classes are the sorted subfolder names.

    Args:
        root: the folder.
        size: ``(H, W)`` every image is resized to (bilinear), or ``None`` to keep sizes.
    """

    def __init__(self, root: str | Path, size: tuple[int, int] | None = None) -> None:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: not a folder")
        self.classes = sorted(p.name for p in root.iterdir() if p.is_dir())
        self.samples = [
            (f, label)
            for label, c in enumerate(self.classes)
            for f in sorted((root / c).iterdir())
            if f.suffix.lower() in IMAGE_SUFFIXES
        ]
        if not self.samples:
            raise ValueError(f"{root}: no images in class subfolders ({', '.join(IMAGE_SUFFIXES)})")
        self.size = size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[i]
        img = load_image(path)
        if self.size is not None:
            img = torch.nn.functional.interpolate(img[None], size=self.size, mode="bilinear", align_corners=False)[0]
        return img, label
