"""Swin Transformer: "Swin Transformer: Hierarchical Vision Transformer using Shifted Windows" (Liu et
al.; ICCV 2021; arXiv 2103.14030), the hierarchical ViT the DIMAP pruning paper works on
(:mod:`~subband.compress.dimap`).

A 4x4 stride-4 patch embedding with LayerNorm, four stages of pre-norm blocks, each attending inside
non-overlapping 7x7 windows with a learned relative position bias, every second block on a map rolled
by half a window (:class:`~subband.layers.WindowAttention`: the shared windowed attention with Swin's
region mask) followed by an MLP; stages 2-4 start with a patch merging (2x2 neighbours concatenated,
LayerNorm, linear ``4C -> 2C`` without bias); final LayerNorm, global average pool, linear head.

Checked against timm 1.0 (``swin_transformer.py``, ``swin_{tiny,small,base}_patch4_window7_224``):
widths, depths, heads, MLP ratio 4, ``qkv`` bias, LayerNorm eps 1e-5, the order of the four merged
neighbours, padding of odd maps before merging, and the rule that a stage whose map is no larger than
the window uses one window of the map's size and no shift (stage 4 at 224). Parameter counts equal
timm's (Swin-T 28,288,354; Swin-S 49,606,258; Swin-B 87,768,224). The names are timm's except inside
the attention, where the shared :class:`~subband.layers.WindowAttention` nests its projections
(``attn.attn.qkv``, ``attn.attn.proj``, ``attn.relative_position.relative_position_bias_table``);
:func:`convert_timm_swin_state_dict` renames a timm state dict, after which the outputs equal timm's
(``tests/models/test_swin.py``).

Differs from timm: masked logits are ``-inf`` (timm adds ``-100``; the softmax differs by about
``e^-100``); other input sizes than ``img_size`` run with the windows and shifts chosen for
``img_size`` (maps are padded to whole windows, as :class:`~subband.layers.WindowAttention` does),
where timm either refuses the size or recomputes them.

Shape:
    ``forward``: ``(B, 3, H, W) -> (B, num_classes)``. ``forward_features``: the normalised last map
    ``(B, num_features, H/32, W/32)``. ``features_only``: the four stage maps ``(B, C_i, H/r_i, W/r_i)``,
    ``C_i = embed_dim * 2^i``, ``r_i = 4 * 2^i`` (sides rounded up).

Example:
    >>> model = create_model("swin_tiny_patch4_window7_224")
    >>> model(torch.randn(1, 3, 224, 224)).shape
    torch.Size([1, 1000])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import DropPath, Mlp, WindowAttention
from ._features import FeatureInfo, linear_head, rename_keys, reset_linear_trunc_normal
from ._registry import Paper, register_model

__all__ = ["SwinTransformer", "SwinBlock", "PatchMerging", "convert_timm_swin_state_dict"]


class SwinBlock(nn.Module):
    """``x + attn(norm1(x))`` in (shifted) windows, then ``x + mlp(norm2(x))``, on ``(B, H, W, C)`` maps."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        shift: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window_size, shift=shift, qkv_bias=qkv_bias)
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path1(self.attn(self.norm1(x)))
        return x + self.drop_path2(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """2x2 neighbours concatenated (an odd map is zero-padded first), LayerNorm, ``Linear(4C, out)``.

    Shape: ``(B, H, W, C) -> (B, ceil(H/2), ceil(W/2), out_dim)``.
    """

    def __init__(self, dim: int, out_dim: int | None = None) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, out_dim or 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, 0, 0, x.shape[2] % 2, 0, x.shape[1] % 2))
        b, h, w, c = x.shape
        # (B, H/2, 2, W/2, 2, C) -> (B, H/2, W/2, dx, dy, C): neighbours (0,0), (1,0), (0,1), (1,1)
        x = x.reshape(b, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 4, 2, 5).flatten(3)
        return self.reduction(self.norm(x))


class SwinStage(nn.Module):
    """Optional patch merging, then ``depth`` blocks, shifted every second one."""

    def __init__(
        self,
        dim: int,
        out_dim: int,
        depth: int,
        num_heads: int,
        resolution: int,
        window_size: int,
        downsample: bool,
        mlp_ratio: float,
        qkv_bias: bool,
        drop_path: Sequence[float],
    ) -> None:
        super().__init__()
        self.downsample = PatchMerging(dim, out_dim) if downsample else nn.Identity()
        window = min(window_size, resolution)  # a map no larger than a window: one window, no shift
        shift = 0 if resolution <= window_size else window_size // 2
        self.blocks = nn.Sequential(
            *(
                SwinBlock(out_dim, num_heads, window, shift if i % 2 else 0, mlp_ratio, qkv_bias, drop_path[i])
                for i in range(depth)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class _PatchEmbed(nn.Module):
    """Stride-``p`` ``p x p`` conv (zero-padding the image to a multiple of ``p``) and LayerNorm,
    ``(B, C, H, W) -> (B, H/p, W/p, D)``."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        x = F.pad(x, (0, -x.shape[-1] % p, 0, -x.shape[-2] % p))
        return self.norm(self.proj(x).permute(0, 2, 3, 1))  # (B, D, h, w) -> (B, h, w, D)


class _Head(nn.Module):
    """Global average pool of a ``(B, C, H, W)`` map, then ``fc``."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.fc: nn.Module = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean((2, 3))
        return x if pre_logits else self.fc(x)


class SwinTransformer(nn.Module):
    """Swin Transformer classifier.

    Args:
        img_size: the input size the windows and shifts are chosen for.
        patch_size: side of the patches of the embedding.
        in_chans: image channels.
        num_classes: classifier outputs (0: none).
        embed_dim: width of stage 1 (doubles at every stage).
        depths: blocks per stage.
        num_heads: attention heads per stage.
        window_size: window side.
        mlp_ratio: MLP hidden width over the stage width.
        qkv_bias: bias on the ``qkv`` projections.
        drop_path_rate: stochastic depth, rising linearly from 0 to this over all blocks.
    """

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 4,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(f"depths {tuple(depths)} and num_heads {tuple(num_heads)} differ in length")
        self.num_classes = num_classes
        self.patch_embed = _PatchEmbed(patch_size, in_chans, embed_dim)
        n = sum(depths)
        rates = [drop_path_rate * i / max(1, n - 1) for i in range(n)]  # torch.linspace(0, rate, n)
        dims = [embed_dim * 2**i for i in range(len(depths))]
        res = -(-img_size // patch_size)
        stages, start = [], 0
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            if i:
                res = -(-res // 2)
            stages.append(
                SwinStage(
                    dims[max(i - 1, 0)],
                    dims[i],
                    depth,
                    heads,
                    res,
                    window_size,
                    downsample=i > 0,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    drop_path=rates[start : start + depth],
                )
            )
            start += depth
        self.layers = nn.Sequential(*stages)
        self.num_features = dims[-1]
        self.norm = nn.LayerNorm(self.num_features)
        self.head = _Head(self.num_features, num_classes)
        self.feature_info = FeatureInfo(
            dict(num_chs=d, reduction=patch_size * 2**i, module=f"layers.{i}") for i, d in enumerate(dims)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """timm's initialisation: truncated-normal (0.02) linear weights, zero biases."""
        reset_linear_trunc_normal(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.layers(self.patch_embed(x)))  # (B, h, w, C)
        return x.permute(0, 3, 1, 2)  # (B, h, w, C) -> (B, C, h, w)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(self, x: torch.Tensor, indices: Sequence[int]) -> list[torch.Tensor]:
        """The stage maps in ``indices`` as ``(B, C, h, w)``; the last stage's after the final norm."""
        x, out = self.patch_embed(x), []
        for i, stage in enumerate(self.layers[: max(indices) + 1]):
            x = stage(x)
            if i in indices:
                y = self.norm(x) if i == len(self.feature_info) - 1 else x
                out.append(y.permute(0, 3, 1, 2))  # (B, h, w, C) -> (B, C, h, w)
        return out

    def prune_intermediate_layers(self, indices: Sequence[int]) -> None:
        """Drop the stages after the last of ``indices``, the final norm unless it is used, and the head."""
        keep = max(indices) + 1
        if keep < len(self.layers):
            self.norm = nn.Identity()
        self.layers = self.layers[:keep]
        self.head = nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a fresh one for ``num_classes`` (0: none)."""
        self.num_classes = num_classes
        self.head.fc = linear_head(self.num_features, num_classes)


def convert_timm_swin_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A timm ``SwinTransformer`` state dict with this module's names (the attention's projections
    and bias table nested as in :class:`~subband.layers.WindowAttention`; index and mask buffers dropped)."""
    state = {k: v for k, v in state.items() if not k.endswith(("relative_position_index", "attn_mask"))}
    rules = [
        (r"(blocks\.\d+\.attn)\.(qkv|proj)\.", r"\1.attn.\2."),
        (r"(blocks\.\d+\.attn)\.relative_position_bias_table$", r"\1.relative_position.relative_position_bias_table"),
    ]
    return rename_keys(state, rules)


def _paper(name: str, params: int, gflops: float, reported: str) -> Paper:
    return Paper(
        title="Swin Transformer: Hierarchical Vision Transformer using Shifted Windows",
        arxiv="2103.14030",
        params=params,
        gflops=gflops,
        input_size=(3, 224, 224),
        source=f"timm 1.0 {name} (exact parameter count); paper Table 1: {reported}",
    )


@register_model(_paper("swin_tiny_patch4_window7_224", 28_288_354, 4.5, "Swin-T 28M, 4.5G"))
def swin_tiny_patch4_window7_224(**kwargs) -> SwinTransformer:
    return SwinTransformer(**{**dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)), **kwargs})


@register_model(_paper("swin_small_patch4_window7_224", 49_606_258, 8.7, "Swin-S 50M, 8.7G"))
def swin_small_patch4_window7_224(**kwargs) -> SwinTransformer:
    return SwinTransformer(**{**dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)), **kwargs})


@register_model(_paper("swin_base_patch4_window7_224", 87_768_224, 15.4, "Swin-B 88M, 15.4G"))
def swin_base_patch4_window7_224(**kwargs) -> SwinTransformer:
    return SwinTransformer(**{**dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)), **kwargs})
