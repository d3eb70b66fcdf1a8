"""WaveMix: "WaveMix: A Resource-efficient Neural Network for Image Analysis" (Jeevan, Viswanathan,
Anirudh, Sethi; arXiv 2205.14375), classification variants.

A convolutional stem, ``depth`` residual :class:`~subband.layers.WaveMixBlock` s at one resolution,
global average pooling and a linear head. WaveMix-Lite uses one DWT level per block.
Configurations and parameter counts checked against the official repository
(pranavphoenix/WaveMix: ``wavemix/classification.py`` and the ``Saved_weights/*`` configuration
files); parameter names follow it (``conv``, ``layers``, ``pool.2``), so its state dicts load.
Differs from the official code: the DWT is subband's (same coefficients as its Haar, mode zero),
built on the input's device rather than on ``cuda:0`` at import.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import WaveMixBlock
from ._registry import Paper, register_model

__all__ = ["WaveMix"]


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
        if stem == "strided":
            self.conv = nn.Sequential(
                nn.Conv2d(in_chans, dim // 2, 3, stride, 1),
                nn.Conv2d(dim // 2, dim, 3, stride, 1),
            )
            reduction = stride**2
        elif stem == "patchify":
            self.conv = nn.Sequential(
                nn.Conv2d(in_chans, dim // 4, 3, 1, 1),
                nn.Conv2d(dim // 4, dim // 2, 3, 1, 1),
                nn.Conv2d(dim // 2, dim, patch_size, patch_size),
                nn.GELU(),
                nn.BatchNorm2d(dim),
            )
            reduction = patch_size
        else:
            raise ValueError(f"stem must be 'strided' or 'patchify', got {stem!r}")
        self.layers = nn.ModuleList(WaveMixBlock(dim, levels, mult, ff_channel or dim, dropout) for _ in range(depth))
        self.num_features = dim
        self.num_classes = num_classes
        # pool.0 average, pool.1 flatten, pool.2 the classifier (official names)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), self._head(num_classes))
        self.feature_info = [dict(num_chs=dim, reduction=reduction, module=f"layers.{depth - 1}")]

    def _head(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head with a new one for ``num_classes`` (0: none)."""
        self.num_classes = num_classes
        self.pool[2] = self._head(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)  # (B, in_chans, H, W) -> (B, dim, H/r, W/r)
        for block in self.layers:
            x = block(x) + x
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pool[1](self.pool[0](x))  # (B, dim, h, w) -> (B, dim)
        return x if pre_logits else self.pool[2](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


_TITLE = "WaveMix: A Resource-efficient Neural Network for Image Analysis"
_REPO = "official repo pranavphoenix/WaveMix"


def _paper(params: int, file: str, exact: bool = True, gflops: float | None = None, size: int = 32) -> Paper:
    return Paper(
        title=_TITLE,
        arxiv="2205.14375",
        params=params,
        params_exact=exact,
        gflops=gflops,
        input_size=(3, size, size),
        source=f"{_REPO}, {file} (built and counted)",
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
