"""Super-resolution pairs made from any folder of high-resolution images, the standard way.

The low-resolution input is the high-resolution image cropped to a multiple of the scale
("modcrop") and shrunk by bicubic interpolation (Pillow's, which like MATLAB's ``imresize``
widens its kernel when shrinking; published numbers use MATLAB, so PSNR differs slightly).
Training samples are aligned random crops; evaluation uses whole images. Models usually work on
the luma (Y, ITU-R BT.601) channel, as ESPCN and SRCNN do.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

__all__ = ["SRPairs", "bicubic_resize", "bundled_photos", "load_image", "modcrop", "rgb_to_y", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")


#: natural colour photographs that ship with scikit-image (the offline default for SR)
_BUNDLED = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "motorcycle_left.png",
    "rocket.jpg",
    "retina.jpg",
    "hubble_deep_field.jpg",
)


def bundled_photos() -> list[Path]:
    """Paths of scikit-image's bundled colour photographs: SR data that needs no download."""
    try:
        import skimage.data
    except ImportError:
        raise ImportError("the bundled photographs come with scikit-image: pip install scikit-image") from None
    root = Path(skimage.data.__file__).parent
    files = [root / name for name in _BUNDLED if (root / name).is_file()]
    if not files:
        raise FileNotFoundError(f"{root}: scikit-image's bundled photographs are missing")
    return files


def rgb_to_y(rgb: torch.Tensor) -> torch.Tensor:
    """Luma of an RGB image in ``[0, 1]``, ITU-R BT.601 studio range (MATLAB's ``rgb2ycbcr``).

    Shape: ``(..., 3, H, W) -> (..., 1, H, W)``, values in ``[16/255, 235/255]``.
    """
    if rgb.shape[-3] != 3:
        raise ValueError(f"expected 3 channels at dim -3, got shape {tuple(rgb.shape)}")
    w = torch.tensor([65.481, 128.553, 24.966], dtype=rgb.dtype, device=rgb.device) / 255.0
    return (16.0 / 255.0 + torch.einsum("c,...chw->...hw", w, rgb)).unsqueeze(-3)


def modcrop(img: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop ``(..., H, W)`` at the bottom/right to multiples of ``scale``."""
    h, w = img.shape[-2:]
    return img[..., : h - h % scale, : w - w % scale]


def load_image(path: str | Path) -> torch.Tensor:
    """An image file as a float tensor ``(C, H, W)`` in ``[0, 1]``: RGB, or 1 channel for grayscale."""
    with Image.open(path) as im:
        im = im.convert("L" if im.mode in ("L", "I;16", "I") else "RGB")
        arr = np.asarray(im, dtype=np.float32) / 255.0
    t = torch.from_numpy(arr)
    return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


def bicubic_resize(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize ``(C, H, W)`` in ``[0, 1]`` to ``size = (h, w)`` with Pillow's bicubic filter (per channel, float)."""
    out = [
        np.asarray(Image.fromarray(ch.numpy().astype(np.float32), mode="F").resize(size[::-1], Image.BICUBIC))
        for ch in img.float().cpu()
    ]
    return torch.from_numpy(np.stack(out)).clamp_(0.0, 1.0)


class SRPairs(torch.utils.data.Dataset):
    """(LR, HR) pairs from a folder of HR images.

    Args:
        root: folder with HR images (``.png``, ``.bmp``, ``.jpg``, ...), or a list of files.
        scale: the magnification.
        patch: HR patch size for training crops (a multiple of ``scale``); ``None`` gives whole images.
        y_only: convert RGB to the Y channel (grayscale images are used as Y directly).
        samples_per_image: crops drawn from each image per epoch (with ``patch``).
        seed: seeds the crop positions, so epochs are reproducible.

    Items are ``(lr, hr)`` with shapes ``(C, h, w)`` and ``(C, h*scale, w*scale)``.
    """

    def __init__(
        self,
        root: str | Path | Sequence[str | Path],
        scale: int,
        patch: int | None = None,
        y_only: bool = True,
        samples_per_image: int = 1,
        seed: int = 0,
    ) -> None:
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        if patch is not None and (patch < scale or patch % scale):
            raise ValueError(f"patch ({patch}) must be a positive multiple of scale ({scale})")
        if isinstance(root, (str, Path)):
            root = Path(root)
            if not root.is_dir():
                raise FileNotFoundError(f"{root}: not a folder of images")
            files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            files = [Path(p) for p in root]
        if not files:
            raise ValueError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)})")
        self.files, self.scale, self.patch, self.y_only = files, scale, patch, y_only
        self.samples_per_image, self.seed, self.epoch = samples_per_image, seed, 0
        self._pairs = [self._pair(f) for f in files]  # the sets are small: decode once
        if patch is not None:
            small = [f.name for f, (_, hr) in zip(files, self._pairs) if min(hr.shape[-2:]) < patch]
            if small:
                raise ValueError(f"images smaller than the {patch}px patch: {small[:5]}")

    def _pair(self, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
        hr = load_image(path)
        if self.y_only and hr.shape[0] == 3:
            hr = rgb_to_y(hr)
        hr = modcrop(hr, self.scale)
        lr = bicubic_resize(hr, (hr.shape[-2] // self.scale, hr.shape[-1] // self.scale))
        return lr, hr

    def set_epoch(self, epoch: int) -> None:
        """Draw a new set of crops (the same one again for the same epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.files) * (self.samples_per_image if self.patch else 1)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} samples")
        i %= len(self)
        lr, hr = self._pairs[i % len(self.files)]
        if self.patch is None:
            return lr, hr
        rng = random.Random(hash((self.seed, self.epoch, i)))
        p, s = self.patch // self.scale, self.scale
        y, x = rng.randrange(lr.shape[-2] - p + 1), rng.randrange(lr.shape[-1] - p + 1)
        return lr[:, y : y + p, x : x + p], hr[:, y * s : (y + p) * s, x * s : (x + p) * s]
