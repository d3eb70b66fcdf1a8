"""The pre-norm transformer block of ViT ("An Image is Worth 16x16 Words", Dosovitskiy et al.;
arXiv 2010.11929): ``x + DropPath(ls1 * Attention(norm1(x)))`` then ``x + DropPath(ls2 * Mlp(norm2(x)))``,
with optional layer scale (CaiT; ``init_values``). Parameter names are timm's (``norm1``, ``attn.qkv``,
``attn.proj``, ``ls1.gamma``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``) so timm ViT-family checkpoints load.

``forward(x, bias=None, logit_scale=None)`` passes the attention terms through to
:func:`~subband.layers.attention.attend` (relative positions, masks, the Gaussian-mixture mask).

Shape:
    ``(B, N, C) -> (B, N, C)``.

Example:
    >>> TransformerBlock(64, num_heads=4)(torch.randn(2, 17, 64)).shape
    torch.Size([2, 17, 64])
"""

from __future__ import annotations

import torch
from torch import nn

from .attention import Attention
from .drop import DropPath
from .mlp import Mlp

__all__ = ["TransformerBlock", "LayerScale"]


class LayerScale(nn.Module):
    """Per-channel scale ``gamma`` (initialised to ``init_values``) on the last dim."""

    def __init__(self, dim: int, init_values: float = 1e-5) -> None:
        super().__init__()
        self.init_values = init_values
        self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))

    def reset_parameters(self) -> None:
        nn.init.constant_(self.gamma, self.init_values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class TransformerBlock(nn.Module):
    """Pre-norm attention + MLP block.

    Args:
        dim: token width.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width over ``dim``.
        qkv_bias: bias on the ``qkv`` projection.
        drop: dropout after the projections and in the MLP.
        attn_drop: dropout on the attention probabilities.
        drop_path: stochastic-depth probability of both residual branches.
        init_values: layer-scale initial value (``None``: no layer scale).
        head_dim: width per head (``dim // num_heads`` by default).
        act_layer, norm_layer: activation and norm classes (GELU, LayerNorm with eps 1e-6).
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
        head_dim: int | None = None,
        act_layer: type[nn.Module] = nn.GELU,
        norm_layer: type[nn.Module] | None = None,
    ) -> None:
        super().__init__()
        norm = norm_layer or (lambda d: nn.LayerNorm(d, eps=1e-6))
        self.norm1 = norm(dim)
        self.attn = Attention(dim, num_heads, head_dim, qkv_bias, attn_drop, drop)
        self.ls1 = LayerScale(dim, init_values) if init_values is not None else nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=drop)
        self.ls2 = LayerScale(dim, init_values) if init_values is not None else nn.Identity()

    def forward(
        self, x: torch.Tensor, bias: torch.Tensor | None = None, logit_scale: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = x + self.drop_path(self.ls1(self.attn(self.norm1(x), bias=bias, logit_scale=logit_scale)))
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))
