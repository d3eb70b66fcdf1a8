"""UniFormer: "UniFormer: Unifying Convolution and Self-attention for Visual Recognition" (Li, Zhang,
Song, Wang, Liu, Gao, Li, Qiao; TPAMI 2023; arXiv 2201.04676), image classification models.

A four-stage pyramid (strides 4, 8, 16, 32) of UniFormer blocks, each ``x = x + DPE(x)``,
``x = x + DropPath(MHRA(Norm(x)))``, ``x = x + DropPath(FFN(Norm(x)))`` with a dynamic position
embedding DPE (a depthwise 3x3 convolution with bias) and a multi-head relation aggregator MHRA that
is local in the shallow stages and global in the deep ones:

- **Local MHRA** (:class:`CBlock`, stages 1-2): BatchNorm, 1x1 conv, depthwise 5x5 conv (the token
  affinity restricted to a 5x5 neighbourhood, learned and input-independent), 1x1 conv; the FFN is a
  1x1-conv MLP after a BatchNorm.
- **Global MHRA** (:class:`SABlock`, stages 3-4): the map flattened to tokens and a pre-norm
  transformer block (LayerNorm eps 1e-6, multi-head self-attention with head width ``head_dim``,
  MLP); it is :class:`~subband.layers.TransformerBlock` (attention by
  :class:`~subband.layers.Attention`, SDPA) with the position-embedding conv in front.

Downsampling is a non-overlapping patch embedding (4x4 stride 4, then 2x2 stride 2; conv with bias
and a LayerNorm over the channels, eps 1e-5) or, for the ``conv_stem`` variants, two 3x3 stride-2
Conv-BNs with a GELU between them, then 3x3 stride-2 Conv-BNs (convs with biases). The head is a
BatchNorm on the last map, global average pooling and a linear layer.

Checked against the official repository (Sense-X/UniFormer, ``image_classification/models/uniformer.py``:
``uniformer_small``, ``uniformer_small_plus``, ``uniformer_base``, ``uniformer_base_ls``; the
``exp/*/run.sh`` recipes): depths (3, 4, 8, 3) / (3, 5, 9, 3) / (5, 8, 20, 7), widths
(64, 128, 320, 512), head width 64 (32 for S+), MLP ratio 4, ``qkv`` bias on, the scale
``head_dim ** -0.5``, layer scale 1e-6 on the attention blocks only (``_ls``), the initialisation
(linear weights truncated normal 0.02 with zero biases, LayerNorms at one and zero, convs and
BatchNorms at PyTorch's defaults). Built and counted, the official models have exactly the parameters
registered here. Parameter names are the official ones inside the blocks; the layout is
``stem`` / ``stages.<i>.{downsample,blocks,norm}`` / ``head.fc`` (``patch_embed1`` -> ``stem``,
``patch_embed<i>`` -> ``stages.<i-1>.downsample``, ``blocks<i>`` -> ``stages.<i-1>.blocks``,
``norm`` -> ``stages.3.norm``, ``gamma_{1,2}`` -> ``ls{1,2}.gamma``), which
:func:`convert_official_state_dict` maps. Given the same weights, outputs equal the official model's
(eval mode, random weights and BatchNorm statistics, 224x224; checked outside the test suite, the
official code not being a package: max |diff| 7.2e-7 (S), 2.6e-6 (S+, logits up to 10), 8.9e-7 (B),
7.2e-7 (B with layer scale)).

Differs from the official code: any input size divisible by 32 works (the official patch embedding
asserts the configured size; with no absolute position embedding nothing depends on it); the final
BatchNorm belongs to the last stage, so ``features_only``'s last map is what ``forward_features``
returns; BatchNorm instead of SyncBatchNorm. The official runs train with stochastic depth 0.1 (S),
0.3 (B), rising linearly over all blocks; the builders default to no drop path. The light models
(XXS/XS, ``uniformer_light.py``: a class token and Evo-ViT token pruning) are not included.

Shape:
    ``forward``: ``(B, in_chans, H, W) -> (B, num_classes)``. ``forward_features``:
    ``(B, dims[-1], H / 32, W / 32)`` after the final BatchNorm. ``features_only``: one map per stage,
    ``(B, dims[i], H / 2**(i + 2), W / 2**(i + 2))``.

Example:
    >>> model = create_model("uniformer_small")
    >>> model(torch.randn(2, 3, 64, 64)).shape
    torch.Size([2, 1000])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..layers import DropPath, LayerNorm2d, Mlp, TransformerBlock
from ._features import FeatureInfo, StagedClassifier, rename_keys, reset_linear_trunc_normal
from ._registry import Paper, register_model

__all__ = ["UniFormer", "UniFormerStage", "CBlock", "SABlock", "PatchEmbed", "ConvStem", "convert_official_state_dict"]


class PatchEmbed(nn.Module):
    """Non-overlapping patch embedding: a ``patch_size`` conv with stride ``patch_size`` (with bias),
    then a LayerNorm over the channels (eps 1e-5, the official default).

    Shape:
        ``(B, in_chans, H, W) -> (B, dim, H // patch_size, W // patch_size)``.
    """

    def __init__(self, in_chans: int, dim: int, patch_size: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, patch_size, stride=patch_size)
        self.norm = LayerNorm2d(dim, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x))


class ConvStem(nn.Module):
    """Overlapping convolutional downsampling (the official ``conv_stem``): with ``stem=True`` a
    3x3 stride-2 Conv-BN to ``dim / 2``, GELU, a 3x3 stride-2 Conv-BN to ``dim`` (stride 4); otherwise
    one 3x3 stride-2 Conv-BN (stride 2). The convs have biases, as in the official code.

    Shape:
        ``(B, in_chans, H, W) -> (B, dim, ceil(H / s), ceil(W / s))``, ``s = 4`` or ``2``.
    """

    def __init__(self, in_chans: int, dim: int, stem: bool = True) -> None:
        super().__init__()
        if stem:
            layers = [
                nn.Conv2d(in_chans, dim // 2, 3, stride=2, padding=1),
                nn.BatchNorm2d(dim // 2),
                nn.GELU(),
                nn.Conv2d(dim // 2, dim, 3, stride=2, padding=1),
                nn.BatchNorm2d(dim),
            ]
        else:
            layers = [nn.Conv2d(in_chans, dim, 3, stride=2, padding=1), nn.BatchNorm2d(dim)]
        self.proj = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class CBlock(nn.Module):
    """UniFormer block with local MHRA: ``x + pos_embed(x)``, then
    ``x + DropPath(conv2(attn(conv1(norm1(x)))))`` (BatchNorm, 1x1, depthwise 5x5, 1x1) and
    ``x + DropPath(mlp(norm2(x)))`` (BatchNorm, 1x1-conv MLP).

    Shape:
        ``(B, dim, H, W) -> (B, dim, H, W)``.

    Args:
        dim: channels.
        mlp_ratio: MLP hidden width over ``dim``.
        drop: dropout in the MLP.
        drop_path: stochastic-depth probability of both residual branches.
        kernel_size: the depthwise kernel of the local aggregator (5).
    """

    def __init__(
        self, dim: int, mlp_ratio: float = 4.0, drop: float = 0.0, drop_path: float = 0.0, kernel_size: int = 5
    ) -> None:
        super().__init__()
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.BatchNorm2d(dim)
        self.conv1 = nn.Conv2d(dim, dim, 1)
        self.attn = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.conv2 = nn.Conv2d(dim, dim, 1)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop, use_conv=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_embed(x)
        x = x + self.drop_path(self.conv2(self.attn(self.conv1(self.norm1(x)))))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class SABlock(TransformerBlock):
    """UniFormer block with global MHRA: ``x + pos_embed(x)`` (depthwise 3x3), then a pre-norm
    transformer block (:class:`~subband.layers.TransformerBlock`, LayerNorm eps 1e-6) on the
    flattened map.

    Shape:
        ``(B, dim, H, W) -> (B, dim, H, W)``.

    Args:
        dim: channels.
        num_heads: attention heads (``dim / head_dim``).
        mlp_ratio, qkv_bias, drop, attn_drop, drop_path: as :class:`~subband.layers.TransformerBlock`.
        init_values: layer scale (``None``: none; 1e-6 in the official ``_ls`` variant).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        init_values: float | None = None,
    ) -> None:
        super().__init__(dim, num_heads, mlp_ratio, qkv_bias, drop, attn_drop, drop_path, init_values)
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(
        self, x: torch.Tensor, bias: torch.Tensor | None = None, logit_scale: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = x + self.pos_embed(x)
        b, c, h, w = x.shape
        t = super().forward(x.flatten(2).transpose(1, 2), bias, logit_scale)  # (B, C, H, W) -> (B, HW, C)
        return t.transpose(1, 2).reshape(b, c, h, w)  # (B, HW, C) -> (B, C, H, W)


class UniFormerStage(nn.Module):
    """``downsample`` (or none), the blocks, and a final BatchNorm on the last stage.

    Shape:
        ``(B, in_dim, H, W) -> (B, dim, H / s, W / s)`` with ``s`` the downsampling stride (1 or 2).
    """

    def __init__(self, downsample: nn.Module, blocks: Sequence[nn.Module], norm: nn.Module | None = None) -> None:
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.Sequential(*blocks)
        self.norm = norm if norm is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.blocks(self.downsample(x)))


class UniFormerHead(nn.Module):
    """Global average pooling and a linear classifier."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean((2, 3))  # (B, C, H, W) -> (B, C)
        return x if pre_logits else self.fc(x)


class UniFormer(StagedClassifier):
    """UniFormer image classifier.

    Args:
        depths: blocks per stage (four stages).
        dims: channels per stage.
        head_dim: width per attention head (stages 3-4 have ``dims[i] / head_dim`` heads).
        num_classes: classes of the head (0: ``forward`` returns the pooled features).
        in_chans: input channels.
        mlp_ratio: MLP hidden width over the channels.
        qkv_bias: bias on the ``qkv`` projection.
        conv_stem: overlapping 3x3 Conv-BN downsampling instead of patch embeddings (UniFormer-S+).
        local_stages: how many leading stages use local MHRA (:class:`CBlock`); the rest use
            :class:`SABlock`.
        init_values: layer scale of the attention blocks (``None``: none).
        drop_rate: dropout after the stem, after the attention projection and in the MLPs.
        attn_drop_rate: dropout on the attention probabilities.
        drop_path_rate: stochastic depth of the last block; it rises linearly from 0 over all blocks.

    Shape:
        ``(B, in_chans, H, W) -> (B, num_classes)``; features at strides 4, 8, 16, 32.
    """

    def __init__(
        self,
        depths: Sequence[int] = (3, 4, 8, 3),
        dims: Sequence[int] = (64, 128, 320, 512),
        head_dim: int = 64,
        num_classes: int = 1000,
        in_chans: int = 3,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        conv_stem: bool = False,
        local_stages: int = 2,
        init_values: float | None = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if len(depths) != len(dims):
            raise ValueError(f"depths {tuple(depths)} and dims {tuple(dims)} must have the same length")
        bad = [d for d in dims[local_stages:] if d % head_dim]
        if bad:
            raise ValueError(f"the attention stages' widths {bad} are not divisible by head_dim={head_dim}")
        self.num_classes = num_classes
        self.num_features = dims[-1]
        self.stem = ConvStem(in_chans, dims[0]) if conv_stem else PatchEmbed(in_chans, dims[0], 4)
        self.pos_drop = nn.Dropout(drop_rate)
        total = sum(depths)
        rates = [drop_path_rate * k / max(total - 1, 1) for k in range(total)]  # linear 0 -> rate over all blocks
        stages, start = [], 0
        for i, (depth, dim) in enumerate(zip(depths, dims)):
            p = rates[start : start + depth]
            start += depth
            if i < local_stages:
                blocks: list[nn.Module] = [CBlock(dim, mlp_ratio, drop_rate, r) for r in p]
            else:
                heads = dim // head_dim
                blocks = [
                    SABlock(dim, heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate, r, init_values) for r in p
                ]
            if i == 0:
                down: nn.Module = nn.Identity()
            else:
                down = ConvStem(dims[i - 1], dim, stem=False) if conv_stem else PatchEmbed(dims[i - 1], dim, 2)
            norm = nn.BatchNorm2d(dim) if i == len(dims) - 1 else None
            stages.append(UniFormerStage(down, blocks, norm))
        self.stages = nn.Sequential(*stages)
        self.feature_info = FeatureInfo(
            dict(num_chs=d, reduction=4 * 2**i, module=f"stages.{i}") for i, d in enumerate(dims)
        )
        self.head = UniFormerHead(self.num_features, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official initialisation: linear weights truncated normal (0.02) with zero biases;
        norms, convs and layer scales at their defaults."""
        reset_linear_trunc_normal(self)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.pos_drop(self.stem(x))


def convert_official_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict of the official ``UniFormer`` (``image_classification/models/uniformer.py``; e.g.
    ``checkpoint["model"]``) with subband's names."""
    rules = [(r"^patch_embed1\.", "stem.")]
    for i in range(1, 5):
        rules += [
            (rf"^patch_embed{i}\.", f"stages.{i - 1}.downsample."),
            (rf"^blocks{i}\.(\d+)\.gamma_(\d)$", rf"stages.{i - 1}.blocks.\1.ls\2.gamma"),
            (rf"^blocks{i}\.", f"stages.{i - 1}.blocks."),
        ]
    rules += [(r"^norm\.", "stages.3.norm."), (r"^head\.", "head.fc.")]
    return rename_keys({k.removeprefix("module."): v for k, v in state.items()}, rules)


_TITLE = "UniFormer: Unifying Convolution and Self-attention for Visual Recognition"
_SRC = "Sense-X/UniFormer image_classification/models/uniformer.py {} (built and counted); README {}"
_NOTES = "gflops: the official model's multiply-accumulates at 224x224 (torch.utils.flop_counter), {} in the README"


def _paper(name: str, params: int, gmacs: float, readme: str) -> Paper:
    return Paper(
        title=_TITLE,
        arxiv="2201.04676",
        params=params,
        gflops=gmacs,
        input_size=(3, 224, 224),
        source=_SRC.format(name, readme),
        notes=_NOTES.format(readme.split(" / ")[1]),
    )


@register_model(_paper("uniformer_small", 21_545_256, 3.63, "22M / 3.6G / 82.9%"))
def uniformer_small(**kwargs) -> UniFormer:
    """UniFormer-S: depths (3, 4, 8, 3), widths (64, 128, 320, 512), head width 64."""
    return UniFormer(**{**dict(depths=(3, 4, 8, 3)), **kwargs})


@register_model(_paper("uniformer_small_plus", 24_032_552, 4.20, "24M / 4.2G / 83.4%"))
def uniformer_small_plus(**kwargs) -> UniFormer:
    """UniFormer-S+ (S-dagger): depths (3, 5, 9, 3), convolutional stem, head width 32."""
    return UniFormer(**{**dict(depths=(3, 5, 9, 3), head_dim=32, conv_stem=True), **kwargs})


@register_model(_paper("uniformer_base", 49_776_552, 8.25, "50M / 8.3G / 83.8%"))
def uniformer_base(**kwargs) -> UniFormer:
    """UniFormer-B: depths (5, 8, 20, 7), widths (64, 128, 320, 512), head width 64."""
    return UniFormer(**{**dict(depths=(5, 8, 20, 7)), **kwargs})


@register_model(_paper("uniformer_base_ls", 49_796_520, 8.25, "50M / 8.3G / 83.9%"))
def uniformer_base_ls(**kwargs) -> UniFormer:
    """UniFormer-B with layer scale (1e-6) on the attention blocks."""
    return UniFormer(**{**dict(depths=(5, 8, 20, 7), init_values=1e-6), **kwargs})
