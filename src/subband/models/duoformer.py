"""DuoFormer: "DuoFormer: Leveraging Hierarchical Representations by Local and Global Attention
Vision Transformer" (Tang, Zhang, Ho, Knudsen, Tasdizen; MIDL 2025; arXiv 2506.12982, earlier
2407.13920).

A CNN backbone's last ``scales`` feature maps become multi-scale tokens for a transformer:

- **Multi-scale patch tokens**: every map is projected to ``embed_dim`` by a 1x1 conv; the image is
  cut into patches of the coarsest map's stride ``p`` (32 for the usual backbones), and patch ``n``
  collects, from the map of stride ``r``, the ``(p / r)^2`` vectors of its region (row-major),
  coarsest scale first: ``S = sum_i (p / r_i)^2`` tokens per patch (1 + 4 = 5 for two scales,
  85 for four).
- **Scale token**: one more token per patch that summarises all scales: each backbone map is
  max-pooled to the patch grid, the pooled maps are concatenated and projected to ``embed_dim``
  by a 1x1 conv. It goes first in its patch's token list.
- **Duo attention** (:class:`DuoBlock`), with tokens ``(B, N, 1 + S, D)``:
  scale-wise (local) attention among the ``1 + S`` tokens of each patch, then patch-wise (global)
  attention among the class token and the ``N`` scale tokens, then one MLP on every token; each
  step pre-norm and residual. A learned scale position embedding ``(1 + S, D)`` is added to every
  patch's tokens and a learned patch position embedding ``(1 + N, D)`` to the class and scale
  tokens (resized bicubically for other input sizes, as timm does for ViTs).
- Head: the class token after a final LayerNorm -> linear.

The attention is :class:`~subband.layers.Attention` (SDPA), the MLP :class:`~subband.layers.Mlp`.

What was checked and what differs. The repository named in the abstract could not be read; the
authors' ``xiaoyatang/duoformer_TCGA`` (``models/model.py``, ``multi_vision_transformer.py``,
``multiscale_attn.py``, ``projection_head.py``, ``main_toy.py``) gave the configuration registered
here (``scales = 2``, ``embed_dim = 768``, ``depth = 12``, 12 heads, MLP ratio 4, qkv bias,
LayerNorm eps 1e-6, the per-patch token layout and order, the scale token first, the per-scale
1x1 projections, a block that owns a scale attention, a patch attention and one MLP). Where that
code departs from the paper's description it is not followed: it runs all scale-attention blocks
before all patch-attention blocks and its patch-attention passes have neither residual, norm nor
MLP (and every pass after the first reads the same input, so only the last one counts); here the
two attentions alternate inside each block, as the paper's "Duo attention" block describes. Its
scale token comes from per-stage strided 3x3 convs written for ResNet-50's channel counts; here the
stage maps are max-pooled to the patch grid and concatenated, which works for any backbone. The
paper trains on a ResNet-50; subband has no ResNet, so the registered variant uses ConvNeXt-T
(same stage strides, 768 channels at stride 32). The paper reports no parameter count for these
configurations; none is registered.

Shape:
    ``forward``: ``(B, 3, H, W) -> (B, num_classes)`` with ``H, W`` multiples of the patch size.
    ``forward_features``: ``(B, 1 + N, embed_dim)``, the class token then one scale token per patch
    (timm's layout, ``num_prefix_tokens = 1``); ``features_only``: the scale tokens after each block,
    through the final norm, as ``(B, embed_dim, H / p, W / p)`` maps.

Example:
    >>> model = DuoFormer("convnext_atto", embed_dim=64, depth=2, num_heads=2, num_classes=10)
    >>> model(torch.randn(2, 3, 64, 64)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import Attention, DropPath, Mlp
from ._features import linear_head, trunc_normal_init
from ._registry import Paper, create_model, register_model

__all__ = ["DuoFormer", "DuoBlock", "multiscale_patch_tokens"]


def multiscale_patch_tokens(maps: Sequence[torch.Tensor], grid: tuple[int, int]) -> torch.Tensor:
    """Per-patch tokens from maps that each tile a ``grid`` of patches.

    Args:
        maps: ``[(B, D, gh * k_i, gw * k_i)]``, coarsest first.
        grid: ``(gh, gw)`` patches.

    Returns:
        ``(B, gh * gw, sum_i k_i^2, D)``: for each patch, its ``k_i x k_i`` region of each map,
        row-major, the maps in the given order.
    """
    gh, gw = grid
    out = []
    for m in maps:
        b, d, h, w = m.shape
        k = h // gh
        if h != gh * k or w != gw * k:
            raise ValueError(f"a map of size {h}x{w} does not tile the {gh}x{gw} patch grid")
        m = m.view(b, d, gh, k, gw, k).permute(0, 2, 4, 3, 5, 1)  # (B, gh, gw, k, k, D)
        out.append(m.reshape(b, gh * gw, k * k, d))
    return torch.cat(out, dim=2)


class DuoBlock(nn.Module):
    """Scale-wise attention within each patch, patch-wise attention across patches, then an MLP.

    Args:
        dim, num_heads, mlp_ratio, qkv_bias: of the attentions and the MLP.
        drop_path: stochastic-depth probability of the three residual branches.
    """

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_path: float = 0.0
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.scale_attn = Attention(dim, num_heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.patch_attn = Attention(dim, num_heads, qkv_bias=qkv_bias)
        self.norm3 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, cls: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, N, T, D)`` (scale token first in each patch), ``cls (B, 1, D)`` -> the same."""
        b, n, t, d = x.shape
        x = x + self.drop_path(self.scale_attn(self.norm1(x).view(b * n, t, d)).view(b, n, t, d))  # local
        s = torch.cat([cls, x[:, :, 0]], dim=1)  # (B, 1 + N, D): class and scale tokens
        s = s + self.drop_path(self.patch_attn(self.norm2(s)))  # global
        x = torch.cat([s[:, 1:, None], x[:, :, 1:]], dim=2)
        cls = s[:, :1]
        x = x + self.drop_path(self.mlp(self.norm3(x)))
        return x, cls + self.drop_path(self.mlp(self.norm3(cls)))


class DuoFormer(nn.Module):
    """DuoFormer classifier on any ``features_only`` backbone.

    Args:
        backbone: a registered model name (built with ``features_only=True`` and the last ``scales``
            taps) or a module with ``feature_info`` returning a list of maps, finest first.
        scales: how many of the backbone's coarsest maps become tokens (ignored for a module: all
            the maps it returns).
        embed_dim, depth, num_heads, mlp_ratio, qkv_bias: of the transformer.
        num_classes: classes of the head (0: ``forward`` returns the normalised class token).
        img_size: input side the patch position embedding is made for.
        drop_rate: dropout before the head.
        drop_path_rate: stochastic depth of the last block; it rises linearly from 0.
        backbone_kwargs: overrides for ``create_model(backbone, ...)``.
    """

    num_prefix_tokens = 1

    def __init__(
        self,
        backbone: str | nn.Module = "convnext_tiny",
        scales: int = 2,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        num_classes: int = 1000,
        img_size: int = 224,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        backbone_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        if isinstance(backbone, str):  # its last `scales` taps (a clear error if it has fewer)
            backbone = create_model(backbone, features_only=True, out_indices=scales, **(backbone_kwargs or {}))
        info = getattr(backbone, "feature_info", None)
        if info is None:
            raise ValueError(f"{type(backbone).__name__} has no feature_info: build it with features_only=True")
        red, chans = [f["reduction"] for f in info], [f["num_chs"] for f in info]
        if any(red[-1] % r for r in red):
            raise ValueError(f"every reduction must divide the coarsest one, got {red}")
        self.backbone = backbone
        self.patch_size = red[-1]
        self.num_classes, self.num_features, self.embed_dim = num_classes, embed_dim, embed_dim
        self.proj = nn.ModuleList(nn.Conv2d(c, embed_dim, 1) for c in chans)  # finest first, as the backbone
        self.scale_token_proj = nn.Conv2d(sum(chans), embed_dim, 1)
        tokens = 1 + sum((self.patch_size // r) ** 2 for r in red)
        self.grid = img_size // self.patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.scale_pos_embed = nn.Parameter(torch.zeros(1, 1, tokens, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid**2, embed_dim))
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(DuoBlock(embed_dim, num_heads, mlp_ratio, qkv_bias, r) for r in rates)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.feature_info = [
            dict(num_chs=embed_dim, reduction=self.patch_size, module=f"blocks.{i}") for i in range(depth)
        ]
        for m in [*self.proj, self.scale_token_proj, *self.blocks, self.head]:
            m.apply(trunc_normal_init)
        for p in (self.cls_token, self.scale_pos_embed, self.pos_embed):
            nn.init.trunc_normal_(p, std=0.02)

    def _pos_embed(self, gh: int, gw: int) -> torch.Tensor:
        """``(1, 1 + gh * gw, D)``: the patch position embedding resized (bicubic) to the grid."""
        if (gh, gw) == (self.grid, self.grid):
            return self.pos_embed
        cls, grid = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        grid = grid.reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)  # (1, D, g, g)
        grid = F.interpolate(grid, size=(gh, gw), mode="bicubic", align_corners=False)
        return torch.cat([cls, grid.flatten(2).transpose(1, 2)], dim=1)

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        """Image -> tokens ``(B, N, 1 + S, D)``, class token ``(B, 1, D)``, patch grid."""
        h, w = x.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"input {h}x{w} must be a multiple of the patch size {self.patch_size}")
        grid = (h // self.patch_size, w // self.patch_size)
        feats = self.backbone(x)  # finest first
        tokens = multiscale_patch_tokens([p(f) for p, f in zip(self.proj, feats)][::-1], grid)  # coarsest first
        pooled = [F.adaptive_max_pool2d(f, grid) for f in feats]  # each stage on the patch grid
        scale = self.scale_token_proj(torch.cat(pooled, dim=1)).flatten(2).transpose(1, 2)  # (B, N, D)
        pos = self._pos_embed(*grid)
        x = torch.cat([scale[:, :, None], tokens], dim=2) + self.scale_pos_embed  # (B, N, 1 + S, D)
        x = torch.cat([x[:, :, :1] + pos[:, 1:, None], x[:, :, 1:]], dim=2)
        cls = self.cls_token.expand(x.shape[0], -1, -1) + pos[:, :1]
        return x, cls, grid

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x, cls, _ = self._embed(x)
        for blk in self.blocks:
            x, cls = blk(x, cls)
        return self.norm(torch.cat([cls, x[:, :, 0]], dim=1))  # (B, 1 + N, D)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x[:, 0]  # the class token
        return x if pre_logits else self.head(self.head_drop(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(self, x: torch.Tensor, indices: Sequence[int]) -> list[torch.Tensor]:
        """The scale tokens after the blocks in ``indices``, through the final norm, as maps."""
        x, cls, (gh, gw) = self._embed(x)
        out = []
        for i, blk in enumerate(self.blocks[: max(indices) + 1]):
            x, cls = blk(x, cls)
            if i in indices:
                out.append(self.norm(x[:, :, 0]).transpose(1, 2).reshape(x.shape[0], -1, gh, gw))
        return out

    def prune_intermediate_layers(self, indices: Sequence[int]) -> None:
        """Drop the blocks after the last of ``indices`` and the head."""
        self.blocks = self.blocks[: max(indices) + 1]
        self.head = nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a fresh one for ``num_classes`` (0: none)."""
        self.num_classes = num_classes
        self.head = linear_head(self.num_features, num_classes)


@register_model(
    Paper(
        title="DuoFormer: Leveraging Hierarchical Representations by Local and Global Attention Vision Transformer",
        arxiv="2506.12982",
        input_size=(3, 224, 224),
        source="xiaoyatang/duoformer_TCGA main_toy.py (scales 2, embed 768, depth 12, 12 heads) on ConvNeXt-T",
        notes="the paper uses ResNet-50, which subband does not have; no parameter count is reported",
    )
)
def duoformer_convnext_tiny(**kwargs) -> DuoFormer:
    """DuoFormer on ConvNeXt-T's last two stages (strides 16 and 32), 12 Duo blocks of width 768."""
    return DuoFormer("convnext_tiny", **kwargs)
