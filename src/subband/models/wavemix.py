"""WaveMix: "WaveMix: A Resource-efficient Neural Network for Image Analysis" (Jeevan, Viswanathan,
Anirudh, Sethi; arXiv 2205.14375), classification and semantic-segmentation variants.

A convolutional stem, ``depth`` residual :class:`~subband.layers.WaveMixBlock` s at one resolution,
then a head: global average pooling and a linear layer (:class:`WaveMix`), or two 4x4 stride-2
transposed convolutions halving the channels and a 1x1 convolution to per-pixel class scores
(:class:`WaveMixSegmentation`). WaveMix-Lite uses one DWT level per block.
Configurations and parameter counts checked against the official repository
(pranavphoenix/WaveMix: ``wavemix/classification.py``, ``wavemix/SemSegment.py`` and the
``Saved_weights/*`` configuration files); parameter names follow it (``conv``, ``layers``,
``pool.2``, ``expand``), so its state dicts load unchanged.
Differs from the official code: the DWT is subband's (same coefficients as its Haar, mode zero),
computed once per scale (the official blocks recompute the finer levels for every coarser one) and
built on the input's device rather than on a module-level device chosen at import.
Not registered: the repository's later Cityscapes checkpoint (README: 83.04% mIoU), a patchify
192/16 level-3 classifier whose ``pool`` is replaced by a 192 -> 128 -> 64 -> 20 upsampling head.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..layers import WaveMixBlock
from ._registry import Paper, register_model

__all__ = ["WaveMix", "WaveMixSegmentation"]


def _stem(stem: str, in_chans: int, dim: int, stride: int, patch_size: int) -> tuple[nn.Sequential, int]:
    """The official stems (``conv`` in its state dicts) and their total stride."""
    if stem == "strided":
        conv = nn.Sequential(
            nn.Conv2d(in_chans, dim // 2, 3, stride, 1),
            nn.Conv2d(dim // 2, dim, 3, stride, 1),
        )
        return conv, stride**2
    if stem == "patchify":
        conv = nn.Sequential(
            nn.Conv2d(in_chans, dim // 4, 3, 1, 1),
            nn.Conv2d(dim // 4, dim // 2, 3, 1, 1),
            nn.Conv2d(dim // 2, dim, patch_size, patch_size),
            nn.GELU(),
            nn.BatchNorm2d(dim),
        )
        return conv, patch_size
    raise ValueError(f"stem must be 'strided' or 'patchify', got {stem!r}")


def _blocks(depth: int, dim: int, levels: int, mult: int, ff_channel: int | None, dropout: float) -> nn.ModuleList:
    """``depth`` WaveMix blocks (``layers`` in the official state dicts); the residual is added by
    :func:`_run_blocks`."""
    return nn.ModuleList(WaveMixBlock(dim, levels, mult, ff_channel or dim, dropout) for _ in range(depth))


def _run_blocks(layers: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    for block in layers:
        x = block(x) + x
    return x


class WaveMix(nn.Module):
    """WaveMix image classifier.

    Args:
        num_classes: classes of the linear head (0: no head, ``forward`` returns pooled features).
        depth: number of WaveMix blocks.
        dim: channels of the blocks (``final_dim`` in the official code).
        ff_channel: MLP output channels inside each block.
        mult: MLP expansion.
        levels: DWT levels per block.
        stem: ``"strided"`` (two 3x3 convs with ``stride``) or ``"patchify"`` (3x3, 3x3, then a
            ``patch_size`` patch embedding with GELU and BatchNorm).
        stride: stride of each strided-stem convolution.
        patch_size: patch size of the patchify stem.
        in_chans: input channels.
        dropout: dropout inside the blocks.

    Shape:
        ``(B, in_chans, H, W) -> (B, num_classes)``; after the stem, ``H`` and ``W`` must be divisible
        by ``2**levels``.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        depth: int = 16,
        dim: int = 192,
        ff_channel: int | None = None,
        mult: int = 2,
        levels: int = 3,
        stem: str = "patchify",
        stride: int = 2,
        patch_size: int = 4,
        in_chans: int = 3,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.conv, reduction = _stem(stem, in_chans, dim, stride, patch_size)
        self.layers = _blocks(depth, dim, levels, mult, ff_channel, dropout)
        self.num_features = dim
        self.num_classes = num_classes
        # pool.0 average, pool.1 flatten, pool.2 the classifier (official names)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), self._head(num_classes))
        # one tap per block, all at the stem's resolution
        self.feature_info = [dict(num_chs=dim, reduction=reduction, module=f"layers.{i}") for i in range(depth)]

    def _head(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head with a new one for ``num_classes`` (0: none)."""
        self.num_classes = num_classes
        self.pool[2] = self._head(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return _run_blocks(self.layers, self.conv(x))  # (B, in_chans, H, W) -> (B, dim, H/r, W/r)

    def forward_intermediates(self, x: torch.Tensor, indices: Sequence[int]) -> list[torch.Tensor]:
        """Outputs of the blocks in ``indices`` (see :class:`~subband.models._features.FeaturePyramid`)."""
        x, out = self.conv(x), []
        for i, block in enumerate(self.layers[: max(indices) + 1]):
            x = block(x) + x
            if i in indices:
                out.append(x)
        return out

    def prune_intermediate_layers(self, indices: Sequence[int]) -> None:
        """Drop the blocks after the last of ``indices`` and the head."""
        del self.layers[max(indices) + 1 :]
        self.pool = nn.Identity()

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pool[1](self.pool[0](x))  # (B, dim, h, w) -> (B, dim)
        return x if pre_logits else self.pool[2](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class WaveMixSegmentation(nn.Module):
    """WaveMix semantic segmentation: the classifier's stem and blocks, then an upsampling head.

    The head (``expand``, official name) is two 4x4 stride-2 transposed convolutions
    (``dim -> dim/2 -> dim/4``, no activation between them, as in the official code) and a 1x1
    convolution to ``num_classes`` scores per pixel. With the strided stem at ``stride=2`` (total
    stride 4) the scores come out at the input's resolution.

    Args:
        num_classes: classes scored per pixel (20 for Cityscapes' 19 classes and void, as the
            official training script uses).
        depth, dim, ff_channel, mult, levels, stem, stride, patch_size, in_chans, dropout: as in
            :class:`WaveMix`.

    Shape:
        ``(B, in_chans, H, W) -> (B, num_classes, 4H/r, 4W/r)`` with ``r`` the stem's total stride
        (``stride**2`` or ``patch_size``); ``H`` and ``W`` must be multiples of
        ``size_divisor = r * 2**levels``.
    """

    def __init__(
        self,
        num_classes: int = 20,
        depth: int = 16,
        dim: int = 256,
        ff_channel: int | None = None,
        mult: int = 2,
        levels: int = 4,
        stem: str = "strided",
        stride: int = 2,
        patch_size: int = 4,
        in_chans: int = 3,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.conv, reduction = _stem(stem, in_chans, dim, stride, patch_size)
        self.layers = _blocks(depth, dim, levels, mult, ff_channel, dropout)
        self.expand = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 2, 4, stride=2, padding=1),  # (h, w) -> (2h, 2w)
            nn.ConvTranspose2d(dim // 2, dim // 4, 4, stride=2, padding=1),  # (2h, 2w) -> (4h, 4w)
            nn.Conv2d(dim // 4, num_classes, 1),
        )
        self.num_classes = num_classes
        self.size_divisor = reduction * 2**levels
        self.output_scale = 4 / reduction  # output size / input size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.size_divisor or w % self.size_divisor:
            raise ValueError(f"height and width must be multiples of {self.size_divisor}, got {h}x{w}")
        x = _run_blocks(self.layers, self.conv(x))  # (B, in_chans, H, W) -> (B, dim, H/r, W/r)
        return self.expand(x)  # -> (B, num_classes, 4H/r, 4W/r)


_TITLE = "WaveMix: A Resource-efficient Neural Network for Image Analysis"
_REPO = "official repo pranavphoenix/WaveMix"


def _paper(
    params: int,
    file: str,
    exact: bool = True,
    gflops: float | None = None,
    size: int | tuple[int, int] = 32,
    notes: str = "",
) -> Paper:
    h, w = (size, size) if isinstance(size, int) else size
    return Paper(
        title=_TITLE,
        arxiv="2205.14375",
        params=params,
        params_exact=exact,
        gflops=gflops,
        input_size=(3, h, w),
        source=f"{_REPO}, {file} (built and counted)",
        notes=notes,
    )


@register_model(_paper(3_042_550, "Saved_weights/cifar10/wavemix_cifar10_94.58.py", gflops=0.88))
def wavemix_lite_144_7(**kwargs) -> WaveMix:
    """WaveMix-Lite-144/7, the CIFAR-10 configuration (32x32, 10 classes)."""
    cfg = dict(num_classes=10, depth=7, dim=144, levels=1, stem="strided", stride=1)
    return WaveMix(**{**cfg, **kwargs})


@register_model(_paper(2_409_743, "EMNIST-balanced Lite-128/7 configuration", size=28))
def wavemix_lite_128_7(**kwargs) -> WaveMix:
    """WaveMix-Lite-128/7, the EMNIST-balanced configuration (28x28, 47 classes)."""
    cfg = dict(num_classes=47, depth=7, dim=128, levels=1, stem="strided", stride=1)
    return WaveMix(**{**cfg, **kwargs})


@register_model(_paper(4_136_522, "EMNIST-letters Lite-112/16 configuration", gflops=0.87, size=28))
def wavemix_lite_112_16(**kwargs) -> WaveMix:
    """WaveMix-Lite-112/16, the EMNIST-letters configuration (28x28, 26 classes)."""
    cfg = dict(num_classes=26, depth=16, dim=112, levels=1, stem="strided", stride=1)
    return WaveMix(**{**cfg, **kwargs})


@register_model(_paper(10_950_000, "Saved_weights/cifar100/wavemix_cifar100_77.82.py", exact=False, gflops=3.13))
def wavemix_lite_256_8(**kwargs) -> WaveMix:
    """WaveMix-Lite-256/8, the CIFAR-100 configuration (32x32, 100 classes)."""
    cfg = dict(num_classes=100, depth=8, dim=256, levels=1, stem="strided", stride=1)
    return WaveMix(**{**cfg, **kwargs})


@register_model(_paper(12_494_536, "Saved_weights/ImageNet/wavemix_12M_71.18.py", gflops=12.8, size=224))
def wavemix_192_16_l1(**kwargs) -> WaveMix:
    """WaveMix-192/16, one DWT level, patchify stem (ImageNet, 224x224)."""
    cfg = dict(num_classes=1000, depth=16, dim=192, levels=1, stem="patchify", patch_size=4)
    return WaveMix(**{**cfg, **kwargs})


@register_model(_paper(27_857_608, "Saved_weights/ImageNet/wavemix_28M_75.06.py", gflops=15.1, size=224))
def wavemix_192_16_l3(**kwargs) -> WaveMix:
    """WaveMix-192/16, three DWT levels, patchify stem (ImageNet, 224x224)."""
    cfg = dict(num_classes=1000, depth=16, dim=192, levels=3, stem="patchify", patch_size=4)
    return WaveMix(**{**cfg, **kwargs})


_SEG_NOTES = (
    "paper (arXiv v5, Table 1): 63 M params, 82.70% single-scale mIoU on Cityscapes val, ImageNet-1k "
    "pre-trained; no FLOPs given. 20 classes and 1024x2048 inputs as in the official Cityscapes script."
)


@register_model(_paper(63_164_628, "wavemix/SemSegment.py defaults", size=(1024, 2048), notes=_SEG_NOTES))
def wavemix_seg_256_16(**kwargs) -> WaveMixSegmentation:
    """WaveMix-256/16, four DWT levels, strided stem: the paper's Cityscapes segmentation model."""
    cfg = dict(num_classes=20, depth=16, dim=256, levels=4, stem="strided", stride=2)
    return WaveMixSegmentation(**{**cfg, **kwargs})
