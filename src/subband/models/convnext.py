"""ConvNeXt: "A ConvNet for the 2020s" (Liu, Mao, Wu, Feichtenhofer, Darrell, Xie; arXiv 2201.03545).

A 4x4 stride-4 patchify stem, four stages of inverted-bottleneck blocks (7x7 depthwise conv,
LayerNorm, 1x1 expansion x4, GELU, 1x1 projection, layer scale, stochastic depth), a LayerNorm and
a 2x2 stride-2 conv between stages, and a pool -> LayerNorm -> linear head.

Configurations checked against the official repository (facebookresearch/ConvNeXt,
``models/convnext.py``: depths, dims, layer scale 1e-6, LayerNorm eps 1e-6, truncated-normal 0.02
init) and against timm's ``convnext_*`` (which adds the small atto..nano widths, with 1x1-conv MLPs
and channel-first LayerNorms). Parameter and buffer names are timm's, so a timm ConvNeXt state dict
loads unchanged; the official repository's checkpoints use other names (``downsample_layers``,
``dwconv``, ``pwconv1``), which :func:`convert_official_state_dict` maps.
Differs from both: activations run in channels-last memory format, which makes every permute
around the LayerNorm and the MLP free (same values, less copying on CPU).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..layers import DropPath, LayerNorm2d, Mlp
from ._features import StagedClassifier, rename_keys, trunc_normal_init
from ._registry import Paper, register_model

__all__ = ["ConvNeXt", "ConvNeXtBlock", "convert_official_state_dict"]


class ConvNeXtBlock(nn.Module):
    """Depthwise ``k x k`` conv -> LayerNorm -> MLP (x4) -> layer scale, plus the input.

    Args:
        dim: channels.
        kernel_size: depthwise kernel size.
        ls_init_value: initial layer scale (``None``: no layer scale).
        conv_mlp: 1x1 convolutions and a channel-first LayerNorm instead of linear layers on
            channels-last features (timm's choice for the small widths; same function).
        drop_path: stochastic-depth probability of the residual branch.
        eps: LayerNorm epsilon.
        conv_dw_layer: builds the spatial mixer from ``(dim, kernel_size)`` in place of the
            depthwise ``nn.Conv2d`` (it must keep the shape), e.g. a DCLS convolution.

    Shape:
        ``(B, dim, H, W) -> (B, dim, H, W)``
    """

    def __init__(
        self,
        dim: int,
        kernel_size: int = 7,
        ls_init_value: float | None = 1e-6,
        conv_mlp: bool = False,
        drop_path: float = 0.0,
        eps: float = 1e-6,
        conv_dw_layer: Callable[[int, int], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.conv_mlp = conv_mlp
        if conv_dw_layer is None:
            self.conv_dw = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        else:
            self.conv_dw = conv_dw_layer(dim, kernel_size)
        self.norm = LayerNorm2d(dim, eps) if conv_mlp else nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, 4 * dim, use_conv=conv_mlp)
        self.gamma = nn.Parameter(torch.full((dim,), ls_init_value)) if ls_init_value is not None else None
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv_dw(x)
        if self.conv_mlp:
            y = self.mlp(self.norm(y))
        else:
            y = y.permute(0, 2, 3, 1)  # (B, C, H, W) -> (B, H, W, C)
            y = self.mlp(self.norm(y))
            y = y.permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)
        if self.gamma is None:
            return self.drop_path(y) + x
        if self.drop_path.p == 0.0 or not self.training:
            return torch.addcmul(x, y, self.gamma.view(-1, 1, 1))  # x + gamma * y in one pass
        return self.drop_path(y * self.gamma.view(-1, 1, 1)) + x


class ConvNeXtStage(nn.Module):
    """Optional LayerNorm + 2x2 stride-2 conv (``downsample``), then ``depth`` blocks."""

    def __init__(
        self, in_dim: int, dim: int, downsample: bool, drop_path: Sequence[float], eps: float, **block
    ) -> None:
        super().__init__()
        if downsample:
            self.downsample = nn.Sequential(LayerNorm2d(in_dim, eps), nn.Conv2d(in_dim, dim, 2, stride=2))
        else:
            self.downsample = nn.Identity()
        self.blocks = nn.Sequential(*(ConvNeXtBlock(dim, drop_path=p, eps=eps, **block) for p in drop_path))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class ConvNeXtHead(nn.Module):
    """Global average pool -> LayerNorm -> dropout -> linear (timm's ``NormMlpClassifierHead`` names)."""

    def __init__(self, dim: int, num_classes: int, drop_rate: float, eps: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.norm(x.mean((2, 3)))  # (B, C, H, W) -> (B, C)
        return x if pre_logits else self.fc(self.drop(x))


class ConvNeXt(StagedClassifier):
    """ConvNeXt image classifier.

    Args:
        depths: blocks per stage.
        dims: channels per stage.
        num_classes: classes of the head (0: ``forward`` returns pooled, normalised features).
        in_chans: input channels.
        kernel_size: depthwise kernel size.
        ls_init_value: initial layer scale (``None``: none).
        conv_mlp: 1x1-conv MLPs and channel-first LayerNorms (timm's small widths).
        patch_size: stem patch size (and stride).
        drop_rate: dropout before the classifier.
        drop_path_rate: stochastic depth of the last block; it rises linearly from 0 over the blocks.
        head_init_scale: factor on the initial classifier weights and bias.
        eps: LayerNorm epsilon.
        conv_dw_layer: builds each block's spatial mixer from ``(dim, kernel_size)`` instead of the
            depthwise conv (see :class:`ConvNeXtBlock`; ``None``: ConvNeXt's own).

    Shape:
        ``(B, in_chans, H, W) -> (B, num_classes)``; features at strides 4, 8, 16, 32.
    """

    channels_last = True  # every permute around LayerNorm/MLP becomes free

    def __init__(
        self,
        depths: Sequence[int] = (3, 3, 9, 3),
        dims: Sequence[int] = (96, 192, 384, 768),
        num_classes: int = 1000,
        in_chans: int = 3,
        kernel_size: int = 7,
        ls_init_value: float | None = 1e-6,
        conv_mlp: bool = False,
        patch_size: int = 4,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        head_init_scale: float = 1.0,
        eps: float = 1e-6,
        conv_dw_layer: Callable[[int, int], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if len(depths) != len(dims):
            raise ValueError(f"depths {tuple(depths)} and dims {tuple(dims)} must have the same length")
        self.num_classes = num_classes
        self.num_features = dims[-1]
        self.drop_rate = drop_rate
        self.eps = eps
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, dims[0], patch_size, stride=patch_size), LayerNorm2d(dims[0], eps)
        )
        total = sum(depths)
        rates = [drop_path_rate * k / max(total - 1, 1) for k in range(total)]  # linear 0 -> rate over all blocks
        starts = [sum(depths[:i]) for i in range(len(depths))]
        block = dict(
            kernel_size=kernel_size, ls_init_value=ls_init_value, conv_mlp=conv_mlp, conv_dw_layer=conv_dw_layer
        )
        self.stages = nn.Sequential(
            *(
                ConvNeXtStage(
                    dims[max(i - 1, 0)], dims[i], i > 0, rates[starts[i] : starts[i] + depths[i]], eps, **block
                )
                for i in range(len(depths))
            )
        )
        self.feature_info = [
            dict(num_chs=d, reduction=patch_size * 2**i, module=f"stages.{i}") for i, d in enumerate(dims)
        ]
        self.head = ConvNeXtHead(self.num_features, num_classes, drop_rate, eps)
        self.apply(trunc_normal_init)
        self.scale_head(head_init_scale)


_OFFICIAL_KEYS = [  # (pattern, replacement), first match wins
    (r"^downsample_layers\.0\.", "stem."),
    (r"^downsample_layers\.(\d+)\.", r"stages.\1.downsample."),
    (r"^stages\.(\d+)\.(\d+)\.dwconv\.", r"stages.\1.blocks.\2.conv_dw."),
    (r"^stages\.(\d+)\.(\d+)\.pwconv1\.", r"stages.\1.blocks.\2.mlp.fc1."),
    (r"^stages\.(\d+)\.(\d+)\.pwconv2\.", r"stages.\1.blocks.\2.mlp.fc2."),
    (r"^stages\.(\d+)\.(\d+)\.", r"stages.\1.blocks.\2."),
    (r"^norm\.", "head.norm."),
    (r"^head\.", "head.fc."),
]


def convert_official_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a facebookresearch/ConvNeXt checkpoint's keys to subband's (= timm's)."""
    return rename_keys(state, _OFFICIAL_KEYS)


_TITLE = "A ConvNet for the 2020s"


def _paper(params: int, gflops: float, source: str, notes: str = "") -> Paper:
    return Paper(
        title=_TITLE,
        arxiv="2201.03545",
        params=params,
        gflops=gflops,
        input_size=(3, 224, 224),
        source=source,
        notes=notes,
    )


def _variant(depths: tuple[int, ...], dims: tuple[int, ...], conv_mlp: bool, kwargs: dict) -> ConvNeXt:
    return ConvNeXt(**{**dict(depths=depths, dims=dims, conv_mlp=conv_mlp), **kwargs})


_FB = "facebookresearch/ConvNeXt models/convnext.py and timm convnext_{} (built and counted; paper Table 1: {})"
_TIMM = "timm convnext_{} (params and GMACs at 224 built and counted with torch.utils.flop_counter)"
_NOT_IN_PAPER = "a timm width, not in the paper: 1x1-conv MLP, channel-first LayerNorm"


@register_model(_paper(3_695_520, 0.547, _TIMM.format("atto"), _NOT_IN_PAPER))
def convnext_atto(**kwargs) -> ConvNeXt:
    """ConvNeXt-Atto (timm): depths 2-2-6-2, dims 40-320."""
    return _variant((2, 2, 6, 2), (40, 80, 160, 320), True, kwargs)


@register_model(_paper(5_217_784, 0.780, _TIMM.format("femto"), _NOT_IN_PAPER))
def convnext_femto(**kwargs) -> ConvNeXt:
    """ConvNeXt-Femto (timm): depths 2-2-6-2, dims 48-384."""
    return _variant((2, 2, 6, 2), (48, 96, 192, 384), True, kwargs)


@register_model(_paper(9_045_672, 1.367, _TIMM.format("pico"), _NOT_IN_PAPER))
def convnext_pico(**kwargs) -> ConvNeXt:
    """ConvNeXt-Pico (timm): depths 2-2-6-2, dims 64-512."""
    return _variant((2, 2, 6, 2), (64, 128, 256, 512), True, kwargs)


@register_model(_paper(15_593_560, 2.446, _TIMM.format("nano"), _NOT_IN_PAPER))
def convnext_nano(**kwargs) -> ConvNeXt:
    """ConvNeXt-Nano (timm): depths 2-2-8-2, dims 80-640."""
    return _variant((2, 2, 8, 2), (80, 160, 320, 640), True, kwargs)


@register_model(_paper(28_589_128, 4.5, _FB.format("tiny", "28M, 4.5G")))
def convnext_tiny(**kwargs) -> ConvNeXt:
    """ConvNeXt-T: depths 3-3-9-3, dims 96-768."""
    return _variant((3, 3, 9, 3), (96, 192, 384, 768), False, kwargs)


@register_model(_paper(50_223_688, 8.7, _FB.format("small", "50M, 8.7G")))
def convnext_small(**kwargs) -> ConvNeXt:
    """ConvNeXt-S: depths 3-3-27-3, dims 96-768."""
    return _variant((3, 3, 27, 3), (96, 192, 384, 768), False, kwargs)


@register_model(_paper(88_591_464, 15.4, _FB.format("base", "89M, 15.4G")))
def convnext_base(**kwargs) -> ConvNeXt:
    """ConvNeXt-B: depths 3-3-27-3, dims 128-1024."""
    return _variant((3, 3, 27, 3), (128, 256, 512, 1024), False, kwargs)


@register_model(_paper(197_767_336, 34.4, _FB.format("large", "198M, 34.4G")))
def convnext_large(**kwargs) -> ConvNeXt:
    """ConvNeXt-L: depths 3-3-27-3, dims 192-1536."""
    return _variant((3, 3, 27, 3), (192, 384, 768, 1536), False, kwargs)


@register_model(_paper(350_196_968, 60.9, _FB.format("xlarge", "350M, 60.9G")))
def convnext_xlarge(**kwargs) -> ConvNeXt:
    """ConvNeXt-XL: depths 3-3-27-3, dims 256-2048."""
    return _variant((3, 3, 27, 3), (256, 512, 1024, 2048), False, kwargs)
