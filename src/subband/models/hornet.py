"""HorNet: "HorNet: Efficient High-Order Spatial Interactions with Recursive Gated Convolutions"
(Rao, Zhao, Tang, Zhou, Lim, Lu; arXiv 2207.14284).

ConvNeXt's macro design (4x4 stride-4 stem, LayerNorm + 2x2 stride-2 downsampling, four stages,
pool -> LayerNorm -> linear head) with a transformer-style block: LayerNorm -> g^n Conv -> layer
scale, plus the input; LayerNorm -> MLP (x4, GELU) -> layer scale, plus the input. The g^n Conv
order rises 2, 3, 4, 5 over the stages, with scale ``s = 1/3``. The 7x7 variants use a 7x7
depthwise conv inside every g^n Conv; the GF variants use the global-local filter
(:class:`~subband.layers.gnconv.GlobalLocalFilter`) in stages 3 and 4.

Configurations checked against the official repository (raoyongming/HorNet, ``hornet.py``: depths
2-3-18-2, base widths 64/96/128/192, orders, scale, filter grids (14, 8) and (7, 4), or (24, 13)
and (12, 7) for the 384x384 models, layer scale 1e-6, truncated-normal 0.02 init). The registered
parameter counts are the official models built and counted (1000 classes); the GFLOPs are the
README's, which the counted GMACs match within 1%. The official code's parameter names
(``downsample_layers``, ``stages.i.j``, ``pwconv1``, ``norm``, ``head``) map onto these with
:func:`convert_official_state_dict`; the names inside g^n Conv are the official ones.
GF models run at any input size: the stored filters are resized to the input's frequency grid
exactly as the official code does it (see :mod:`subband.layers.gnconv`). Differs from the official
code only in the FFT's dtype (float64 for float64 inputs; the official code always uses float32).
The head is ConvNeXt's (:class:`~subband.models.convnext.ConvNeXtHead`: pool -> LayerNorm -> linear,
as in the official code).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..layers import DropPath, GnConv, LayerNorm2d, Mlp
from ._features import StagedClassifier, rename_keys, trunc_normal_init
from ._registry import Paper, register_model
from .convnext import ConvNeXtHead

__all__ = ["HorNet", "HorNetBlock", "convert_official_state_dict"]


class HorNetBlock(nn.Module):
    """LayerNorm -> g^n Conv -> layer scale (+ input), then LayerNorm -> MLP -> layer scale (+ input).

    Args:
        dim: channels.
        order: g^n Conv order.
        scale: g^n Conv scale ``s``.
        spatial: g^n Conv spatial operator, ``"dwconv"`` or ``"gf"``.
        gf_size: stored global-filter grid for ``"gf"``.
        mlp_ratio: MLP expansion.
        ls_init_value: initial layer scale (``None``: no layer scale).
        drop_path: stochastic-depth probability of both residual branches.

    Shape:
        ``(B, dim, H, W) -> (B, dim, H, W)``
    """

    def __init__(
        self,
        dim: int,
        order: int,
        scale: float = 1 / 3,
        spatial: str = "dwconv",
        gf_size: tuple[int, int] = (14, 8),
        mlp_ratio: float = 4.0,
        ls_init_value: float | None = 1e-6,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dim, eps=1e-6)
        self.gnconv = GnConv(dim, order, spatial=spatial, gf_size=gf_size, scale=scale)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(mlp_ratio * dim))
        if ls_init_value is not None:
            self.gamma1 = nn.Parameter(torch.full((dim,), ls_init_value))
            self.gamma2 = nn.Parameter(torch.full((dim,), ls_init_value))
        else:
            self.gamma1 = self.gamma2 = None
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gnconv(self.norm1(x))
        if self.gamma1 is not None:
            y = y * self.gamma1.view(-1, 1, 1)
        x = x + self.drop_path(y)
        y = self.mlp(self.norm2(x.permute(0, 2, 3, 1)))  # (B, C, H, W) -> (B, H, W, C)
        if self.gamma2 is not None:
            y = y * self.gamma2
        return x + self.drop_path(y.permute(0, 3, 1, 2))  # (B, H, W, C) -> (B, C, H, W)


class HorNetStage(nn.Module):
    """Optional LayerNorm + 2x2 stride-2 conv (``downsample``), then one block per drop-path rate."""

    def __init__(self, in_dim: int, dim: int, downsample: bool, drop_path: Sequence[float], **block) -> None:
        super().__init__()
        if downsample:
            self.downsample = nn.Sequential(LayerNorm2d(in_dim, eps=1e-6), nn.Conv2d(in_dim, dim, 2, stride=2))
        else:
            self.downsample = nn.Identity()
        self.blocks = nn.Sequential(*(HorNetBlock(dim, drop_path=p, **block) for p in drop_path))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class HorNet(StagedClassifier):
    """HorNet image classifier.

    Args:
        depths: blocks per stage.
        base_dim: channels of stage 1; stage ``i`` has ``base_dim * 2**i``.
        orders: g^n Conv order per stage.
        spatial: g^n Conv spatial operator per stage (``"dwconv"`` or ``"gf"``).
        gf_sizes: stored global-filter grid per stage (used where ``spatial`` is ``"gf"``).
        scale: g^n Conv scale ``s``.
        num_classes: classes of the head (0: ``forward`` returns pooled, normalised features).
        in_chans: input channels.
        mlp_ratio: MLP expansion.
        ls_init_value: initial layer scale (``None``: none).
        drop_rate: dropout before the classifier.
        drop_path_rate: stochastic depth of the last block; it rises linearly from 0 over the blocks.
        head_init_scale: factor on the initial classifier weights and bias.

    Shape:
        ``(B, in_chans, H, W) -> (B, num_classes)``; features at strides 4, 8, 16, 32.
    """

    def __init__(
        self,
        depths: Sequence[int] = (2, 3, 18, 2),
        base_dim: int = 64,
        orders: Sequence[int] = (2, 3, 4, 5),
        spatial: Sequence[str] = ("dwconv",) * 4,
        gf_sizes: Sequence[tuple[int, int]] = ((56, 29), (28, 15), (14, 8), (7, 4)),
        scale: float = 1 / 3,
        num_classes: int = 1000,
        in_chans: int = 3,
        mlp_ratio: float = 4.0,
        ls_init_value: float | None = 1e-6,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        head_init_scale: float = 1.0,
    ) -> None:
        super().__init__()
        n = len(depths)
        if not len(orders) == len(spatial) == len(gf_sizes) == n:
            raise ValueError(
                f"depths, orders, spatial and gf_sizes need one entry per stage, got lengths "
                f"{len(depths)}, {len(orders)}, {len(spatial)}, {len(gf_sizes)}"
            )
        dims = [base_dim * 2**i for i in range(n)]
        self.num_classes = num_classes
        self.num_features = dims[-1]
        self.stem = nn.Sequential(nn.Conv2d(in_chans, dims[0], 4, stride=4), LayerNorm2d(dims[0], eps=1e-6))
        total = sum(depths)
        rates = [drop_path_rate * k / max(total - 1, 1) for k in range(total)]  # linear 0 -> rate over all blocks
        starts = [sum(depths[:i]) for i in range(n)]
        self.stages = nn.Sequential(
            *(
                HorNetStage(
                    dims[max(i - 1, 0)],
                    dims[i],
                    i > 0,
                    rates[starts[i] : starts[i] + depths[i]],
                    order=orders[i],
                    scale=scale,
                    spatial=spatial[i],
                    gf_size=tuple(gf_sizes[i]),
                    mlp_ratio=mlp_ratio,
                    ls_init_value=ls_init_value,
                )
                for i in range(n)
            )
        )
        self.feature_info = [dict(num_chs=d, reduction=4 * 2**i, module=f"stages.{i}") for i, d in enumerate(dims)]
        self.head = ConvNeXtHead(self.num_features, num_classes, drop_rate, 1e-6)
        self.apply(trunc_normal_init)
        self.scale_head(head_init_scale)


_OFFICIAL_KEYS = [  # (pattern, replacement), first match wins
    (r"^downsample_layers\.0\.", "stem."),
    (r"^downsample_layers\.(\d+)\.", r"stages.\1.downsample."),
    (r"^stages\.(\d+)\.(\d+)\.pwconv1\.", r"stages.\1.blocks.\2.mlp.fc1."),
    (r"^stages\.(\d+)\.(\d+)\.pwconv2\.", r"stages.\1.blocks.\2.mlp.fc2."),
    (r"^stages\.(\d+)\.(\d+)\.", r"stages.\1.blocks.\2."),
    (r"^norm\.", "head.norm."),
    (r"^head\.", "head.fc."),
]


def convert_official_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a raoyongming/HorNet checkpoint's keys to subband's (a ``"model"`` entry is unwrapped)."""
    if "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    return rename_keys(state, _OFFICIAL_KEYS)


_TITLE = "HorNet: Efficient High-Order Spatial Interactions with Recursive Gated Convolutions"
_SRC = "raoyongming/HorNet hornet.py {} (built and counted; README: {})"
_GF = ("dwconv", "dwconv", "gf", "gf")
_GF_224 = ((56, 29), (28, 15), (14, 8), (7, 4))
_GF_384 = ((96, 49), (48, 25), (24, 13), (12, 7))


def _paper(params: int, gflops: float, source: str, size: int = 224, notes: str = "") -> Paper:
    return Paper(
        title=_TITLE,
        arxiv="2207.14284",
        params=params,
        gflops=gflops,
        input_size=(3, size, size),
        source=source,
        notes=notes,
    )


def _variant(base_dim: int, gf: bool, kwargs: dict, gf_sizes=_GF_224) -> HorNet:
    cfg: dict = dict(depths=(2, 3, 18, 2), base_dim=base_dim, orders=(2, 3, 4, 5), scale=1 / 3)
    if gf:
        cfg.update(spatial=_GF, gf_sizes=gf_sizes)
    return HorNet(**{**cfg, **kwargs})


_IN22K = "the README's parameter count is of the ImageNet-22k model; this is the 1000-class build"


@register_model(_paper(22_409_512, 4.0, _SRC.format("hornet_tiny_7x7", "22M, 4.0G")))
def hornet_tiny_7x7(**kwargs) -> HorNet:
    """HorNet-T (7x7): depths 2-3-18-2, widths 64-512, 7x7 depthwise g^n Conv."""
    return _variant(64, False, kwargs)


@register_model(_paper(22_991_848, 3.9, _SRC.format("hornet_tiny_gf", "23M, 3.9G")))
def hornet_tiny_gf(**kwargs) -> HorNet:
    """HorNet-T (GF): as HorNet-T (7x7) with global filters in stages 3 and 4."""
    return _variant(64, True, kwargs)


@register_model(_paper(49_528_264, 8.8, _SRC.format("hornet_small_7x7", "50M, 8.8G")))
def hornet_small_7x7(**kwargs) -> HorNet:
    """HorNet-S (7x7): widths 96-768."""
    return _variant(96, False, kwargs)


@register_model(_paper(50_401_768, 8.7, _SRC.format("hornet_small_gf", "50M, 8.7G")))
def hornet_small_gf(**kwargs) -> HorNet:
    """HorNet-S (GF): widths 96-768, global filters in stages 3 and 4."""
    return _variant(96, True, kwargs)


@register_model(_paper(87_256_680, 15.6, _SRC.format("hornet_base_7x7", "87M, 15.6G")))
def hornet_base_7x7(**kwargs) -> HorNet:
    """HorNet-B (7x7): widths 128-1024."""
    return _variant(128, False, kwargs)


@register_model(_paper(88_421_352, 15.5, _SRC.format("hornet_base_gf", "88M, 15.5G")))
def hornet_base_gf(**kwargs) -> HorNet:
    """HorNet-B (GF): widths 128-1024, global filters in stages 3 and 4."""
    return _variant(128, True, kwargs)


@register_model(
    _paper(
        92_099_560,
        45.28,
        _SRC.format("hornet_base_gf_img384", "not listed; GMACs counted at 384x384"),
        size=384,
        notes="filters stored at the 384x384 grids (24, 13) and (12, 7)",
    )
)
def hornet_base_gf_img384(**kwargs) -> HorNet:
    """HorNet-B (GF) at 384x384: filter grids of the 384x384 stage maps."""
    return _variant(128, True, kwargs, _GF_384)


@register_model(_paper(194_542_504, 34.8, _SRC.format("hornet_large_7x7", "209M, 34.8G"), notes=_IN22K))
def hornet_large_7x7(**kwargs) -> HorNet:
    """HorNet-L (7x7): widths 192-1536."""
    return _variant(192, False, kwargs)


@register_model(_paper(196_289_512, 34.7, _SRC.format("hornet_large_gf", "211M, 34.7G"), notes=_IN22K))
def hornet_large_gf(**kwargs) -> HorNet:
    """HorNet-L (GF): widths 192-1536, global filters in stages 3 and 4."""
    return _variant(192, True, kwargs)


@register_model(
    _paper(201_806_824, 101.8, _SRC.format("hornet_large_gf_img384", "216M, 101.8G"), size=384, notes=_IN22K)
)
def hornet_large_gf_img384(**kwargs) -> HorNet:
    """HorNet-L (GF) at 384x384: filter grids of the 384x384 stage maps."""
    return _variant(192, True, kwargs, _GF_384)
