"""AFFNet: "Adaptive Frequency Filters As Efficient Global Token Mixers" (Huang, Zhang, Lan, Zha,
Lu, Guo; ICCV 2023; arXiv 2307.14008).

A MobileViT-style network whose global blocks mix tokens with adaptive frequency filters
(:class:`~subband.layers.AFFMixer`: ``x + irfft2(M(X) * X)``, a global dynamic convolution):

- stem: 3x3 stride-2 Conv-BN-SiLU to 16 channels;
- layers 1-2: MobileNetV2 inverted residual blocks (:class:`~subband.layers.InvertedResidual`);
- layers 3-5: a stride-2 inverted residual, then an :class:`AFFStage`: ``n`` :class:`AFFBlock`
  (``r = x``; ``x = IR(norm1(x))`` (an inverted residual with its own skip, expansion
  ``ffn_dim / dim``); ``x = AFF(norm2(x)) + r``), a final norm, a 1x1 Conv-BN back to the layer's
  width and, unless ``no_fuse``, a 1x1 Conv-BN-SiLU fusing it with the layer's input
  (concatenated, input first);
- a 1x1 Conv-BN-SiLU expansion to ``min(4 C, 960)`` (the end of the last stage here, so
  ``forward_features`` and the last feature map have ``num_features`` channels), global average
  pool, linear head.

Norms in the AFF blocks are LayerNorm over (C, H, W) (CVNets' ``layer_norm_2d``, a one-group
GroupNorm); the AFF mixers have 8 channel blocks, hidden factor 1, soft-shrink 0.01.

Checked against the official code (microsoft/TokenMixers, ``Adaptive Frequency Filters/affnet``:
``models/classification/affnet.py``, ``config/affnet.py``, ``modules/aff_block.py``,
``modules/mobilenetv2.py``): the widths, block counts, expansion ratios and ``no_fuse`` flags of
the five modes (``xx_small`` = AFFNet-ET, ``x_small`` = AFFNet-T, ``small`` = AFFNet; the README's
parameter counts match these sizes; ``base`` and ``large`` exist in the config but have no
reported results and are not registered), the block order above, bias-free convs before
BatchNorm, the head's expansion rule. The official model is built through CVNets' option plumbing
and its training configs are not in the repository, so two choices follow CVNets' MobileViT
defaults and are not confirmed: SiLU ("swish") as the network's activation (the parameter count
does not depend on it) and the AFF mixer's activation is ReLU (AFNO's; the official mixer takes
the global activation option). Initialisation is CVNets' default: convs Kaiming normal
(fan-out), linear layers normal(0, 0.01), zero biases, norms one/zero; the AFF mixers' weights
normal(0, 0.02). The registered parameter counts are the README's (1.4M / 2.6M / 5.5M); this module
counts 1,436,264 / 2,654,232 / 5,568,696, the README's figures truncated to one decimal.

Shape:
    ``(B, 3, H, W) -> (B, num_classes)``; features at strides 2, 4, 8, 16, 32 (layers 1-5).

Example:
    >>> model = create_model("affnet_et")
    >>> model(torch.randn(1, 3, 64, 64)).shape
    torch.Size([1, 1000])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..layers import AFFMixer, ConvBN, DropPath, InvertedResidual
from ._features import StagedClassifier
from ._registry import Paper, register_model

__all__ = ["AFFNet", "AFFBlock", "AFFStage"]


class AFFBlock(nn.Module):
    """``x + AFF(norm2(IR(norm1(x))))`` with the inverted residual keeping its own skip.

    Args:
        dim: channels.
        ffn_dim: hidden width of the inverted residual (expansion ``ffn_dim / dim``).
        num_blocks: channel blocks of the AFF mixer.
        drop_path: stochastic depth of the block's branch.
    """

    def __init__(self, dim: int, ffn_dim: int, num_blocks: int = 8, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(1, dim)
        self.mlp = InvertedResidual(dim, dim, 1, ffn_dim / dim)
        self.norm2 = nn.GroupNorm(1, dim)
        self.filter = AFFMixer(dim, num_blocks)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(self.filter(self.norm2(self.mlp(self.norm1(x)))))


class AFFStage(nn.Module):
    """AFF blocks -> norm -> 1x1 Conv-BN projection -> (optional) 1x1 fusion with the input.

    Args:
        channels: the layer's width.
        dim: width of the AFF blocks (CVNets' ``transformer_channels``).
        ffn_dim, depth: of the blocks.
        fuse: concatenate the input and the projection and mix them (official ``not no_fuse``).
        drop_path: per-block stochastic-depth rates, or one rate for all.
    """

    def __init__(
        self, channels: int, dim: int, ffn_dim: int, depth: int, fuse: bool = True, drop_path: Sequence[float] = ()
    ) -> None:
        super().__init__()
        rates = list(drop_path) or [0.0] * depth
        self.global_rep = nn.Sequential(
            *(AFFBlock(dim, ffn_dim, drop_path=r) for r in rates), nn.GroupNorm(1, dim)
        )  # official names: blocks then the final norm in one Sequential
        self.conv_proj = ConvBN(dim, channels, 1)
        self.fusion = nn.Sequential(ConvBN(2 * channels, channels, 1), nn.SiLU()) if fuse else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv_proj(self.global_rep(x))
        return y if self.fusion is None else self.fusion(torch.cat([x, y], dim=1))


class _Head(nn.Module):
    def __init__(self, dim: int, num_classes: int, drop_rate: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean((2, 3))  # (B, C, H, W) -> (B, C)
        return x if pre_logits else self.fc(self.drop(x))


def _init(m: nn.Module) -> None:
    """CVNets' defaults: conv Kaiming normal (fan-out), linear normal(0, 0.01), zero biases."""
    if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out")
    elif isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, std=0.01)
    if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
        nn.init.zeros_(m.bias)


class AFFNet(StagedClassifier):
    """AFFNet classifier.

    Args:
        widths: output channels of layers 1-5.
        mv2_depths: inverted residual blocks of layers 1 and 2.
        aff_depths, ffn_dims: AFF blocks and their hidden widths in layers 3-5.
        mv2_expand: expansion of every inverted residual outside the AFF blocks.
        no_fuse: per layer 3-5, skip the fusion with the layer's input (``base`` / ``large``).
        num_classes, in_chans, drop_rate: head classes, input channels, dropout before the head.
        drop_path_rate: stochastic depth of the last AFF block, rising linearly from 0.
    """

    def __init__(
        self,
        widths: Sequence[int] = (32, 64, 128, 256, 320),
        mv2_depths: Sequence[int] = (1, 3),
        aff_depths: Sequence[int] = (2, 4, 3),
        ffn_dims: Sequence[int] = (256, 512, 640),
        mv2_expand: float = 4,
        no_fuse: Sequence[bool] = (False, False, False),
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if len(widths) != 5 or len(mv2_depths) != 2 or not len(aff_depths) == len(ffn_dims) == len(no_fuse) == 3:
            raise ValueError("AFFNet has 5 layers: 5 widths, 2 mv2_depths, 3 aff_depths / ffn_dims / no_fuse")
        if any(w % 8 for w in widths[2:]):
            raise ValueError(f"the AFF layers' widths must be multiples of 8 (8 mixer blocks), got {widths[2:]}")
        self.num_classes, self.num_features = num_classes, min(4 * widths[-1], 960)
        self.stem = nn.Sequential(ConvBN(in_chans, 16, 3, 2, 1), nn.SiLU())
        stages, c = [], 16
        for i, (w, depth) in enumerate(zip(widths[:2], mv2_depths)):
            blocks = [
                InvertedResidual(c if j == 0 else w, w, 2 if (i == 1 and j == 0) else 1, mv2_expand)
                for j in range(depth)
            ]
            stages.append(nn.Sequential(*blocks))
            c = w
        total, k = sum(aff_depths), 0
        for w, depth, ffn, nf in zip(widths[2:], aff_depths, ffn_dims, no_fuse):
            rates = [drop_path_rate * (k + j) / max(total - 1, 1) for j in range(depth)]
            k += depth
            stages.append(
                nn.Sequential(InvertedResidual(c, w, 2, mv2_expand), AFFStage(w, w, ffn, depth, not nf, rates))
            )
            c = w
        stages[-1].append(nn.Sequential(ConvBN(c, self.num_features, 1), nn.SiLU()))  # official conv_1x1_exp
        self.stages = nn.Sequential(*stages)
        widths = [*widths[:-1], self.num_features]
        self.feature_info = [
            dict(num_chs=w, reduction=2 ** (i + 1), module=f"stages.{i}") for i, w in enumerate(widths)
        ]
        self.head = _Head(self.num_features, num_classes, drop_rate)
        self.apply(_init)
        for m in self.modules():
            if isinstance(m, AFFMixer):
                m.reset_parameters()


_TITLE = "Adaptive Frequency Filters As Efficient Global Token Mixers"
_SRC = "microsoft/TokenMixers Adaptive Frequency Filters/affnet config/affnet.py mode {}; README {}"


def _paper(params: int, mode: str, readme: str, counted: str) -> Paper:
    return Paper(
        title=_TITLE,
        arxiv="2307.14008",
        params=params,
        input_size=(3, 256, 256),
        params_exact=False,
        source=_SRC.format(mode, readme),
        notes=f"counted here: {counted} at 256 (torch.utils.flop_counter, which does not count the FFTs); "
        "FLOPs not registered: the README gives one decimal, too coarse for the contract's tolerance",
    )


@register_model(_paper(1_400_000, "xx_small", "1.4M, 0.4G, 73.0% at 256", "1,436,264 params, 0.356 GMACs"))
def affnet_et(**kwargs) -> AFFNet:
    """AFFNet-ET (``xx_small``): widths 32-48-64-104-144, AFF blocks 2-4-3, expansion 2."""
    cfg = dict(widths=(32, 48, 64, 104, 144), ffn_dims=(128, 208, 288), mv2_expand=2)
    return AFFNet(**{**cfg, **kwargs})


@register_model(_paper(2_600_000, "x_small", "2.6M, 0.8G, 77.0% at 256", "2,654,232 params, 0.786 GMACs"))
def affnet_t(**kwargs) -> AFFNet:
    """AFFNet-T (``x_small``): widths 32-48-96-160-192."""
    cfg = dict(widths=(32, 48, 96, 160, 192), ffn_dims=(192, 320, 384))
    return AFFNet(**{**cfg, **kwargs})


@register_model(_paper(5_500_000, "small", "5.5M, 1.5G, 79.8% at 256", "5,568,696 params, 1.454 GMACs"))
def affnet(**kwargs) -> AFFNet:
    """AFFNet (``small``): widths 32-64-128-256-320."""
    return AFFNet(**kwargs)
