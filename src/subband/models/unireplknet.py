"""UniRepLKNet: "UniRepLKNet: A Universal Perception Large-Kernel ConvNet for Audio, Video, Point
Cloud, Time-Series and Image Recognition" (Ding, Zhang, Ge, Zhao, Song, Yue, Shan; arXiv 2311.15599),
extended as "Scaling Up Your Kernels: Large Kernel Design in ConvNets towards Universal
Representations" (arXiv 2410.08049).

A stem of two 3x3 stride-2 convs (LayerNorm, GELU between), four stages separated by a 3x3
stride-2 conv + LayerNorm, and a pool -> LayerNorm -> linear head. Each block is: a depthwise conv
(a :class:`~subband.layers.DilatedReparamBlock` for kernels >= 7, a plain 3x3 depthwise conv
otherwise), BatchNorm, a squeeze-and-excitation block (reduction 4, ReLU, sigmoid), an FFN (linear
x4, GELU, GRN, linear without bias, BatchNorm), layer scale 1e-6, stochastic depth, plus the input.

Everything the official "deploy" form removes is folded by :meth:`UniRepLKNet.fuse` (eval mode, in
place): the dilated branches and every BatchNorm into the depthwise kernels, and the GRN bias, the
FFN BatchNorm and the layer scale into the second linear layer. ``create_model`` builds the
training form; the README/paper parameter counts are those of the fused form (each variant's
``paper.notes`` gives both, and the tests check both).

Configurations checked against the official repository (AILab-CVC/UniRepLKNet, ``unireplknet.py``:
depths, dims, per-block kernel sizes, dilated branches, SE width, GRN, BatchNorm placement, layer
scale 1e-6, LayerNorm eps 1e-6, truncated-normal 0.02 init); parameter and MAC counts of both forms
were counted on that code. Official checkpoints (training or deploy form) load after
:func:`convert_official_state_dict`. Differences: activations run in channels-last memory format
(same values); the optional iGEMM large-kernel CUDA kernel, SyncBN and activation checkpointing
are not offered; the GRN and SE modules are defined here (no shared layer for them yet).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import nn

from ..layers import DilatedReparamBlock, DropPath, LayerNorm2d, SqueezeExcite, fold_bn, fuse_submodules
from ._features import StagedClassifier, rename_keys, trunc_normal_init
from ._registry import Paper, register_model
from .convnext import ConvNeXtHead

__all__ = ["UniRepLKNet", "UniRepLKNetBlock", "GRN", "convert_official_state_dict", "DEFAULT_KERNEL_SIZES"]

_K13_3 = (13, 3)
# per-block depthwise kernel sizes of the official configurations, keyed by depths
DEFAULT_KERNEL_SIZES: dict[tuple[int, ...], tuple[tuple[int, ...], ...]] = {
    (2, 2, 6, 2): ((3,) * 2, (13,) * 2, (13,) * 6, (13,) * 2),
    (2, 2, 8, 2): ((3,) * 2, (13,) * 2, (13,) * 8, (13,) * 2),
    (3, 3, 18, 3): ((3,) * 3, (13,) * 3, _K13_3 * 9, (13,) * 3),
    (3, 3, 27, 3): ((3,) * 3, (13,) * 3, (13, 3, 3) * 9, (13,) * 3),
}


class GRN(nn.Module):
    """Global response normalisation (ConvNeXt V2) on channels-last ``(B, H, W, C)`` features:
    ``x * (1 + gamma * N(x)) + beta`` with ``N(x) = ||x||_HW / (mean_C ||x||_HW + 1e-6)``.

    Args:
        dim: channels ``C``.
        bias: learn ``beta`` (:meth:`UniRepLKNetBlock.fuse` folds it into the next linear layer).
    """

    def __init__(self, dim: int, bias: bool = True) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(dim))
        self.beta = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gx = torch.linalg.vector_norm(x, dim=(1, 2), keepdim=True)  # (B, 1, 1, C)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        y = torch.addcmul(x, x, self.gamma * nx)  # x * (1 + gamma * nx)
        return y if self.beta is None else y + self.beta


def _biased_conv(conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor) -> nn.Conv2d:
    """A copy of ``conv``'s geometry with the given weight and a bias."""
    new = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=True,
        device=weight.device,
        dtype=weight.dtype,
    )
    new.weight.data.copy_(weight)
    new.bias.data.copy_(bias)
    return new


class UniRepLKNetBlock(nn.Module):
    """Depthwise conv -> BN -> SE -> FFN (x``ffn_factor``, GELU, GRN) -> BN -> layer scale, plus the input.

    Args:
        dim: channels.
        kernel_size: depthwise kernel: >= 7 a Dilated Reparam Block, 3 or 5 a plain depthwise conv,
            0 none.
        drop_path: stochastic-depth probability of the residual branch.
        ls_init_value: initial layer scale (``None`` or 0: no layer scale).
        ffn_factor: FFN expansion.

    Shape:
        ``(B, dim, H, W) -> (B, dim, H, W)``
    """

    def __init__(
        self,
        dim: int,
        kernel_size: int,
        drop_path: float = 0.0,
        ls_init_value: float | None = 1e-6,
        ffn_factor: int = 4,
    ) -> None:
        super().__init__()
        if kernel_size not in (0, 3, 5) and (kernel_size < 7 or kernel_size % 2 == 0):
            raise ValueError(f"kernel_size must be 0, 3, 5 or an odd size >= 7, got {kernel_size}")
        self.kernel_size = kernel_size
        self.fused = False
        if kernel_size == 0:
            self.dwconv: nn.Module = nn.Identity()
        elif kernel_size >= 7:
            self.dwconv = DilatedReparamBlock(dim, kernel_size)
        else:
            self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim, bias=False)
        self.norm: nn.Module = nn.Identity() if kernel_size == 0 else nn.BatchNorm2d(dim)
        self.se = SqueezeExcite(dim, dim // 4)
        hidden = int(ffn_factor * dim)
        self.pwconv1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.grn = GRN(hidden)
        self.pwconv2 = nn.Linear(hidden, dim, bias=False)
        self.ffn_bn: nn.Module = nn.BatchNorm2d(dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(ls_init_value))) if ls_init_value else None
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.se(self.norm(self.dwconv(x)))
        y = y.permute(0, 2, 3, 1)  # (B, C, H, W) -> (B, H, W, C)
        y = self.pwconv2(self.grn(self.act(self.pwconv1(y))))
        y = self.ffn_bn(y.permute(0, 3, 1, 2))  # (B, H, W, C) -> (B, C, H, W)
        if self.gamma is not None:
            y = y * self.gamma.view(-1, 1, 1)
        return x + self.drop_path(y)

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold the dilated branches, both BatchNorms, the GRN bias and the layer scale (eval only, in place)."""
        if self.fused:
            return
        if self.training:
            raise RuntimeError("fuse() folds BatchNorm running statistics: call .eval() first")
        if isinstance(self.dwconv, DilatedReparamBlock):
            self.dwconv.fuse()
            conv = self.dwconv.lk_origin
            w, b = fold_bn(conv.weight, conv.bias, self.norm)
            self.dwconv.lk_origin = _biased_conv(conv, w, b)
        elif isinstance(self.dwconv, nn.Conv2d):
            w, b = fold_bn(self.dwconv.weight, self.dwconv.bias, self.norm)
            self.dwconv = _biased_conv(self.dwconv, w, b)
        self.norm = nn.Identity()
        # pwconv2(grn(h)) = W grn0(h) + W beta; then BN and layer scale act per output channel
        weight = self.pwconv2.weight
        bias = weight.new_zeros(weight.shape[0]) if self.pwconv2.bias is None else self.pwconv2.bias
        if self.grn.beta is not None:
            bias = bias + weight @ self.grn.beta
            self.grn.beta = None
        weight, bias = fold_bn(weight, bias, self.ffn_bn)
        if self.gamma is not None:
            weight, bias = weight * self.gamma[:, None], bias * self.gamma
            self.gamma = None
        linear = nn.Linear(weight.shape[1], weight.shape[0], device=weight.device, dtype=weight.dtype)
        linear.weight.copy_(weight)
        linear.bias.copy_(bias)
        self.pwconv2 = linear
        self.ffn_bn = nn.Identity()
        self.fused = True


class UniRepLKNetStage(nn.Module):
    """Optional 3x3 stride-2 conv + LayerNorm (``downsample``), then one block per kernel size."""

    def __init__(
        self,
        in_dim: int,
        dim: int,
        downsample: bool,
        kernel_sizes: Sequence[int],
        drop_path: Sequence[float],
        ls_init_value: float | None,
        eps: float,
    ) -> None:
        super().__init__()
        if downsample:
            self.downsample: nn.Module = nn.Sequential(
                nn.Conv2d(in_dim, dim, 3, stride=2, padding=1), LayerNorm2d(dim, eps)
            )
        else:
            self.downsample = nn.Identity()
        self.blocks = nn.Sequential(
            *(UniRepLKNetBlock(dim, k, p, ls_init_value) for k, p in zip(kernel_sizes, drop_path, strict=True))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class UniRepLKNet(StagedClassifier):
    """UniRepLKNet image classifier.

    Args:
        depths: blocks per stage.
        dims: channels per stage.
        kernel_sizes: depthwise kernel of every block, per stage (``None``: the official table for
            these depths, :data:`DEFAULT_KERNEL_SIZES`).
        num_classes: classes of the head (0: ``forward`` returns pooled, normalised features).
        in_chans: input channels (1 for spectrograms and time-series maps).
        drop_rate: dropout before the classifier.
        drop_path_rate: stochastic depth of the last block; it rises linearly from 0 over the blocks.
        ls_init_value: initial layer scale (``None``: none).
        head_init_scale: factor on the initial classifier weights and bias.
        eps: LayerNorm epsilon.

    Shape:
        ``(B, in_chans, H, W) -> (B, num_classes)``; features at strides 4, 8, 16, 32.
    """

    channels_last = True  # every permute around LayerNorm/MLP becomes free

    def __init__(
        self,
        depths: Sequence[int] = (3, 3, 27, 3),
        dims: Sequence[int] = (96, 192, 384, 768),
        kernel_sizes: Sequence[Sequence[int]] | None = None,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        ls_init_value: float | None = 1e-6,
        head_init_scale: float = 1.0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        depths = tuple(depths)
        if len(depths) != len(dims):
            raise ValueError(f"depths {depths} and dims {tuple(dims)} must have the same length")
        if kernel_sizes is None:
            if depths not in DEFAULT_KERNEL_SIZES:
                raise ValueError(
                    f"no default kernel sizes for depths {depths} (defaults exist for "
                    f"{sorted(DEFAULT_KERNEL_SIZES)}); pass kernel_sizes=((3, 3), (13, 13), ...)"
                )
            kernel_sizes = DEFAULT_KERNEL_SIZES[depths]
        if [len(k) for k in kernel_sizes] != list(depths):
            raise ValueError(f"kernel_sizes {tuple(map(tuple, kernel_sizes))} must give one size per block of {depths}")
        self.num_classes = num_classes
        self.num_features = dims[-1]
        self.drop_rate = drop_rate
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, dims[0] // 2, 3, stride=2, padding=1),
            LayerNorm2d(dims[0] // 2, eps),
            nn.GELU(),
            nn.Conv2d(dims[0] // 2, dims[0], 3, stride=2, padding=1),
            LayerNorm2d(dims[0], eps),
        )
        total = sum(depths)
        rates = [drop_path_rate * k / max(total - 1, 1) for k in range(total)]  # linear 0 -> rate over all blocks
        starts = [sum(depths[:i]) for i in range(len(depths))]
        self.stages = nn.Sequential(
            *(
                UniRepLKNetStage(
                    dims[max(i - 1, 0)],
                    dims[i],
                    i > 0,
                    kernel_sizes[i],
                    rates[starts[i] : starts[i] + depths[i]],
                    ls_init_value,
                    eps,
                )
                for i in range(len(depths))
            )
        )
        self.feature_info = [dict(num_chs=d, reduction=4 * 2**i, module=f"stages.{i}") for i, d in enumerate(dims)]
        self.head = ConvNeXtHead(self.num_features, num_classes, drop_rate, eps)
        self.apply(trunc_normal_init)
        self.scale_head(head_init_scale)

    @torch.no_grad()
    def fuse(self) -> None:
        """Re-parameterise every block into its deploy form (in place, eval mode only): the same
        function with one depthwise conv per block and no BatchNorm, GRN bias or layer scale."""
        fuse_submodules(self)


_OFFICIAL_KEYS = [  # (pattern, replacement), first match wins
    (r"^downsample_layers\.0\.", "stem."),
    (r"^downsample_layers\.(\d+)\.", r"stages.\1.downsample."),
    (r"^stages\.(\d+)\.(\d+)\.pwconv1\.1\.", r"stages.\1.blocks.\2.pwconv1."),
    (r"^stages\.(\d+)\.(\d+)\.act\.1\.", r"stages.\1.blocks.\2.grn."),
    (r"^stages\.(\d+)\.(\d+)\.pwconv2\.0\.", r"stages.\1.blocks.\2.pwconv2."),
    (r"^stages\.(\d+)\.(\d+)\.pwconv2\.2\.", r"stages.\1.blocks.\2.ffn_bn."),
    (r"^stages\.(\d+)\.(\d+)\.se\.down\.", r"stages.\1.blocks.\2.se.fc1."),
    (r"^stages\.(\d+)\.(\d+)\.se\.up\.", r"stages.\1.blocks.\2.se.fc2."),
    (r"^stages\.(\d+)\.(\d+)\.", r"stages.\1.blocks.\2."),
    (r"^norm\.", "head.norm."),
    (r"^head\.", "head.fc."),
]


def convert_official_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an AILab-CVC/UniRepLKNet checkpoint's keys to subband's (GRN parameters flattened).

    A training-form checkpoint loads into ``create_model(name)``; a deploy-form one (the official
    ``deploy=True`` or ``reparameterize_unireplknet()``) into the same model after ``.eval().fuse()``.
    """
    out = rename_keys(state, _OFFICIAL_KEYS)
    for key, value in out.items():
        if re.search(r"\.grn\.(gamma|beta)$", key) and isinstance(value, torch.Tensor):
            out[key] = value.reshape(-1)  # (1, 1, 1, C) -> (C,)
    return out


_TITLE = (
    "UniRepLKNet: A Universal Perception Large-Kernel ConvNet for Audio, Video, Point Cloud, "
    "Time-Series and Image Recognition"
)
_SOURCE = (
    "AILab-CVC/UniRepLKNet unireplknet.py unireplknet_{} (built and counted: training form "
    "{:,} params / {} GMACs at 224; deploy form {:,} / {} GMACs)"
)


def _paper(variant: str, train: tuple[int, float], deploy: tuple[int, float], readme: str) -> Paper:
    return Paper(
        title=_TITLE,
        arxiv="2311.15599",
        params=deploy[0],
        gflops=deploy[1],
        input_size=(3, 224, 224),
        source=_SOURCE.format(variant, train[0], train[1], deploy[0], deploy[1]),
        notes=(
            f"params/gflops: the deploy form (after fuse()), exact, which the README/paper's {readme} "
            f"round; the training form create_model builds has {train[0]:,} params, {train[1]} GMACs"
        ),
    )


def _variant(depths: tuple[int, ...], dims: tuple[int, ...], kwargs: dict) -> UniRepLKNet:
    return UniRepLKNet(**{**dict(depths=depths, dims=dims), **kwargs})


@register_model(_paper("a", (4_649_060, 0.675), (4_437_300, 0.640), "4.4M / 0.6G"))
def unireplknet_a(**kwargs) -> UniRepLKNet:
    """UniRepLKNet-A: depths 2-2-6-2, dims 40-320."""
    return _variant((2, 2, 6, 2), (40, 80, 160, 320), kwargs)


@register_model(_paper("f", (6_489_328, 0.947), (6_235_216, 0.905), "6.2M / 0.9G"))
def unireplknet_f(**kwargs) -> UniRepLKNet:
    """UniRepLKNet-F: depths 2-2-6-2, dims 48-384."""
    return _variant((2, 2, 6, 2), (48, 96, 192, 384), kwargs)


@register_model(_paper("p", (11_080_520, 1.629), (10_741_704, 1.573), "10.7M / 1.6G"))
def unireplknet_p(**kwargs) -> UniRepLKNet:
    """UniRepLKNet-P: depths 2-2-6-2, dims 64-512."""
    return _variant((2, 2, 6, 2), (64, 128, 256, 512), kwargs)


@register_model(_paper("n", (18_818_880, 2.849), (18_318_560, 2.767), "18.3M / 2.8G"))
def unireplknet_n(**kwargs) -> UniRepLKNet:
    """UniRepLKNet-N: depths 2-2-8-2, dims 80-640."""
    return _variant((2, 2, 8, 2), (80, 160, 320, 640), kwargs)


@register_model(_paper("t", (31_693_420, 5.004), (31_037_980, 4.899), "31M / 4.9G"))
def unireplknet_t(**kwargs) -> UniRepLKNet:
    """UniRepLKNet-T: depths 3-3-18-3, dims 80-640; stage-3 kernels alternate 13, 3."""
    return _variant((3, 3, 18, 3), (80, 160, 320, 640), kwargs)


@register_model(_paper("s", (56_456_704, 9.219), (55_645_984, 9.094), "56M / 9.1G"))
def unireplknet_s(**kwargs) -> UniRepLKNet:
    """UniRepLKNet-S: depths 3-3-27-3, dims 96-768; stage-3 kernels 13, 3, 3 repeated."""
    return _variant((3, 3, 27, 3), (96, 192, 384, 768), kwargs)


@register_model(_paper("b", (99_089_416, 16.224), (98_008_456, 16.057), "98M (47.2G at 384)"))
def unireplknet_b(**kwargs) -> UniRepLKNet:
    """UniRepLKNet-B: depths 3-3-27-3, dims 128-1024; stage-3 kernels 13, 3, 3 repeated."""
    return _variant((3, 3, 27, 3), (128, 256, 512, 1024), kwargs)
