"""DHVT: "Bridging the Gap Between Vision Transformers and Convolutional Neural Networks on Small
Datasets" (Lu, Xie, Liu, Zhang; NeurIPS 2022; arXiv 2210.05958).

A class-token ViT without position embeddings whose three changes give a transformer the inductive
biases a small dataset cannot teach it:

- **SOPE** (sequential overlapping patch embedding, :class:`SOPE`): a per-channel affine
  (``alpha * x + beta``) on the image, ``log2(patch_size)`` 3x3 stride-2 Conv-BNs (widths doubling up
  to ``embed_dim``, GELU between them), a per-channel affine on the result.
- **DAFF** (dynamic aggregation feed-forward, :class:`DAFF`): on the patch tokens as a map, a 1x1
  Conv-BN-GELU expansion, a residual depthwise 3x3 Conv-BN-GELU and a 1x1 Conv-BN projection; the
  class token skips these and is instead scaled channel-wise by ``fc2(GELU(fc1(mean of the
  projected map)))`` (reduction 4, no sigmoid: a squeeze-excitation-like re-weighting whose output
  scales the class token, not the map).
- **Head tokens** (HI-MHSA, :class:`HeadTokenAttention`): before self-attention, each head's
  channel group is averaged over all tokens (class token included), projected from ``head_dim`` to
  ``dim``, normalised per head group (LayerNorm over ``head_dim``), passed through GELU and given a
  learned embedding: one extra token per head. The ``N + heads`` tokens attend together; afterwards
  the head tokens' mean is added to the class token and the head tokens are dropped.

Blocks are pre-norm (LayerNorm, eps 1e-6) ``x + DropPath(HI-MHSA(norm1(x)))``,
``x + DropPath(DAFF(norm2(x)))``; the head is a linear layer on the normalised class token.

Checked against the official repository (ArieSeirack/DHVT, ``vision_transformer.py``:
``dhvt_{tiny,small}_cifar_patch{4,2}``, ``ConvPatchEmbed``, ``DAFF``, ``HI_Attention``,
``DHVT_Block``; ``run_code_cifar.sh``): widths 192 / 384, depth 12, heads 4 / 8, MLP ratio 4,
``qkv`` bias on, no position embedding, the convs of DAFF with biases before their BatchNorms, the
GELU after the single conv of patch size 2 (and after none of the last convs otherwise), the
initialisation (linear layers, class token and head-token embeddings truncated normal 0.02; convs
PyTorch's default). Built and counted, the official models have exactly the parameters registered
here (6,008,650 / 23,425,450 / 5,845,162 / 22,766,698). Parameter names are the official ones except
``patch_embed.proj.<i>.{0,1}`` -> ``.{c,bn}`` (:class:`~subband.layers.ConvBN`) and
``mlp.compress`` / ``mlp.excitation`` -> ``mlp.aggregate.fc1`` / ``.fc2``
(:class:`~subband.layers.Mlp`; not :class:`~subband.layers.SqueezeExcite`, which gates with a
sigmoid the map it pools, where DAFF scales the class token without a gate);
:func:`convert_official_state_dict` maps a checkpoint. Given the same weights, the four variants'
outputs equal the official model's to 5.4e-7 (eval mode; checked outside the test suite, the official
code not being a package). ``Paper.gflops`` is the official model's multiply-accumulates counted by
``torch.utils.flop_counter`` at 32x32; the paper's Table 4 figures are within 0.1G of the same count
without the two attention products (each variant's ``notes`` gives both).

Differs from the official code: the token grid is carried from the patch embedding, so non-square
inputs and any input size work (the official DAFF assumes a square grid; with no position
embedding nothing else depends on the size); ``in_chans`` is free (the official SOPE is RGB only);
SOPE accepts any power-of-two patch size (official: 2, 4, 16, whose layouts these reproduce);
BatchNorm instead of SyncBatchNorm (same parameters; use ``nn.SyncBatchNorm.convert_sync_batchnorm``
for multi-GPU training); the output dropout of the attention acts before the head tokens are merged
into the class token instead of after (only matters with ``drop_rate > 0``, 0 in the official runs).
The attention itself is :class:`~subband.layers.Attention` (``attend``, SDPA), extended by the head
tokens. The official CIFAR recipe trains with ``drop_path_rate=0.1``; the builders default to 0.

Shape:
    ``forward``: ``(B, in_chans, H, W) -> (B, num_classes)``. ``forward_features``: the normalised
    tokens, class token first (timm's layout), ``(B, 1 + h * w, embed_dim)`` with
    ``h, w = ceil(H / patch_size), ceil(W / patch_size)``. ``features_only``: one tap per block, the
    patch tokens after the final norm as maps ``(B, embed_dim, h, w)``.

Example:
    >>> model = create_model("dhvt_tiny_cifar_patch4")
    >>> model(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 100])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..layers import Attention, ConvBN, DropPath, Mlp
from ._features import FeatureInfo, linear_head, rename_keys, reset_linear_trunc_normal
from ._registry import Paper, register_model

__all__ = ["DHVT", "DHVTBlock", "SOPE", "DAFF", "HeadTokenAttention", "Affine", "convert_official_state_dict"]


class _ContiguousGrad(torch.autograd.Function):
    """The identity, whose backward hands on a contiguous gradient.

    Works around a PyTorch CPU bug (seen in 2.13 and 2.14): ``BatchNorm2d``'s backward computes a
    wrong input gradient when the incoming gradient has channels-last-like strides that are not
    dense, which is what ``map.flatten(2).transpose(1, 2)`` followed by a ``cat`` with the class token
    hands back (wrong DHVT gradients at batch size 1; a bare BatchNorm in eval mode also at larger
    batches). Placed between a BatchNorm and that reshaping, it keeps the gradients exact
    (``tests/models/test_dhvt.py`` gradchecks the model).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad.contiguous()


class Affine(nn.Module):
    """Per-channel ``x * alpha + beta`` on ``(B, C, H, W)`` maps (``alpha = 1``, ``beta = 0`` at init).

    Args:
        dim: channels ``C``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.empty(1, dim, 1, 1))
        self.beta = nn.Parameter(torch.empty(1, dim, 1, 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.ones_(self.alpha)
        nn.init.zeros_(self.beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.alpha + self.beta

    def extra_repr(self) -> str:
        return f"dim={self.alpha.shape[1]}"


class SOPE(nn.Module):
    """Sequential overlapping patch embedding: affine, ``log2(patch_size)`` 3x3 stride-2 Conv-BNs with
    GELU between them (widths ``embed_dim / 2**(k-1), ..., embed_dim / 2, embed_dim``), affine. As in
    the official code, a single conv (patch size 2) is followed by a GELU as well.

    Shape:
        ``(B, in_chans, H, W) -> (B, embed_dim, ceil(H / patch_size), ceil(W / patch_size))``.

    Args:
        patch_size: total stride, a power of two >= 2.
        in_chans: image channels.
        embed_dim: output channels; divisible by ``patch_size / 2``.
    """

    def __init__(self, patch_size: int = 4, in_chans: int = 3, embed_dim: int = 192) -> None:
        super().__init__()
        if patch_size < 2 or patch_size & (patch_size - 1):
            raise ValueError(f"patch_size must be a power of two >= 2 (official: 2, 4, 16), got {patch_size}")
        n = patch_size.bit_length() - 1  # number of stride-2 convs
        if embed_dim % (patch_size // 2):
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by patch_size / 2 ({patch_size // 2})")
        self.patch_size, self.in_chans, self.embed_dim = patch_size, in_chans, embed_dim
        layers: list[nn.Module] = []
        prev = in_chans
        for i in range(n):
            width = embed_dim >> (n - 1 - i)
            if i:
                layers.append(nn.GELU())
            layers.append(ConvBN(prev, width, 3, stride=2, padding=1))
            prev = width
        if n == 1:
            layers.append(nn.GELU())
        self.pre_affine = Affine(in_chans)
        self.proj = nn.Sequential(*layers)
        self.post_affine = Affine(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post_affine(self.proj(self.pre_affine(x)))

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}, in_chans={self.in_chans}, embed_dim={self.embed_dim}"


class DAFF(nn.Module):
    """Dynamic aggregation feed-forward on ``[class token, patch tokens]``.

    Patch tokens: ``t = GELU(BN(conv1x1(t)))``, ``t = t + GELU(BN(dwconv(t)))``, ``t = BN(conv1x1(t))``.
    Class token: ``cls * aggregate(mean_hw(t))`` with ``aggregate`` = Linear(dim, dim / reduction),
    GELU, Linear(dim / reduction, dim) (no gate). With ``aggregate = None`` (set when the class
    token's output is not needed, see :meth:`DHVT.prune_intermediate_layers`) the class token passes
    through unchanged.

    Shape:
        ``x (B, 1 + h * w, dim)``, ``size = (h, w) -> (B, 1 + h * w, dim)``.

    Args:
        dim: token width.
        hidden: expanded width.
        kernel_size: depthwise kernel (odd).
        reduction: channel reduction of the class-token aggregation.
        act_layer: activation class.
    """

    def __init__(
        self,
        dim: int,
        hidden: int,
        kernel_size: int = 3,
        reduction: int = 4,
        act_layer: type[nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        if reduction < 1 or dim // reduction < 1:
            raise ValueError(f"reduction must be in 1..{dim}, got {reduction}")
        self.conv1 = nn.Conv2d(dim, hidden, 1)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.conv3 = nn.Conv2d(hidden, dim, 1)
        self.bn3 = nn.BatchNorm2d(dim)
        self.act = act_layer()
        self.aggregate: Mlp | None = Mlp(dim, dim // reduction, act_layer=act_layer)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        b, n, c = x.shape
        h, w = size
        if n != 1 + h * w:
            raise ValueError(f"expected 1 + {h}*{w} tokens for a {h}x{w} grid, got {n}")
        cls, t = x[:, :1], x[:, 1:]
        t = t.transpose(1, 2).reshape(b, c, h, w)  # (B, hw, C) -> (B, C, h, w)
        t = self.act(self.bn1(self.conv1(t)))
        t = t + self.act(self.bn2(self.conv2(t)))
        t = _ContiguousGrad.apply(self.bn3(self.conv3(t)))
        if self.aggregate is not None:
            cls = cls * self.aggregate(t.mean((2, 3))).unsqueeze(1)  # (B, C) -> (B, 1, C)
        return torch.cat([cls, t.flatten(2).transpose(1, 2)], 1)  # (B, C, h, w) -> (B, 1 + hw, C)


class HeadTokenAttention(Attention):
    """Multi-head self-attention with head tokens (the paper's HI-MHSA).

    One token per head is built from the input, ``GELU(LN(ht_proj(mean_N(x_g))))`` per head group
    ``g`` (``x_g`` the ``head_dim`` channels of head ``g``, ``ht_proj: head_dim -> dim``, LayerNorm
    over each ``head_dim`` slice of the result) plus a learned ``pos_embed``; the ``N + num_heads``
    tokens go through :class:`~subband.layers.Attention`; the head tokens' outputs are averaged into
    the class token (token 0) and removed.

    Shape:
        ``(B, N, dim) -> (B, N, dim)``; ``bias`` and ``logit_scale`` (see :func:`~subband.layers.attend`)
        cover the ``N + num_heads`` tokens, head tokens last.

    Args:
        dim: token width.
        num_heads: heads; ``dim`` must be divisible by it.
        qkv_bias: bias on ``qkv``.
        attn_drop: dropout on the attention probabilities.
        proj_drop: dropout after ``proj``.
    """

    def __init__(
        self, dim: int, num_heads: int = 8, qkv_bias: bool = False, attn_drop: float = 0.0, proj_drop: float = 0.0
    ) -> None:
        super().__init__(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop)
        self.ht_proj = nn.Linear(self.head_dim, dim)
        self.ht_norm = nn.LayerNorm(self.head_dim)
        self.act = nn.GELU()
        self.pos_embed = nn.Parameter(torch.empty(1, num_heads, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def head_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """The ``num_heads`` head tokens of ``x``: ``(B, N, dim) -> (B, num_heads, dim)``."""
        b, n, c = x.shape
        h, d = self.num_heads, self.head_dim
        g = x.view(b, n, h, d).mean(1)  # (B, N, h, d) -> (B, h, d): each head's channels averaged over tokens
        t = self.ht_proj(g).view(b, h, h, d)  # (B, h, dim) -> (B, h, h, d)
        return self.act(self.ht_norm(t)).flatten(2) + self.pos_embed  # (B, h, h, d) -> (B, h, dim)

    def forward(
        self, x: torch.Tensor, bias: torch.Tensor | None = None, logit_scale: torch.Tensor | None = None
    ) -> torch.Tensor:
        n = x.shape[1]
        y = super().forward(torch.cat([x, self.head_tokens(x)], 1), bias=bias, logit_scale=logit_scale)  # (B, N+h, C)
        cls = y[:, :1] + y[:, n:].mean(1, keepdim=True)  # head tokens merged into the class token
        return torch.cat([cls, y[:, 1:n]], 1)


class DHVTBlock(nn.Module):
    """Pre-norm DHVT encoder block: ``x + DropPath(HI-MHSA(norm1(x)))``, ``x + DropPath(DAFF(norm2(x)))``.

    Shape:
        ``x (B, 1 + h * w, dim)``, ``size = (h, w) -> (B, 1 + h * w, dim)``.

    Args:
        dim: token width.
        num_heads: attention heads.
        mlp_ratio: DAFF hidden width over ``dim``.
        qkv_bias: bias on ``qkv``.
        drop: dropout after the attention projection.
        attn_drop: dropout on the attention probabilities.
        drop_path: stochastic-depth probability of both branches.
        norm_eps: LayerNorm epsilon.
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
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = HeadTokenAttention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = DAFF(dim, int(dim * mlp_ratio))

    def forward(
        self,
        x: torch.Tensor,
        size: tuple[int, int],
        bias: torch.Tensor | None = None,
        logit_scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), bias=bias, logit_scale=logit_scale))
        return x + self.drop_path(self.mlp(self.norm2(x), size))


class DHVT(nn.Module):
    """DHVT classifier: SOPE, class token, ``depth`` DHVT blocks, LayerNorm, linear head on the class token.

    Args:
        patch_size: SOPE stride (power of two >= 2).
        in_chans: image channels.
        num_classes: classifier outputs (0: no head, ``forward`` returns the pooled features).
        embed_dim: token width.
        depth: number of blocks.
        num_heads: attention heads (and head tokens).
        mlp_ratio: DAFF hidden width over ``embed_dim``.
        qkv_bias: bias on the ``qkv`` projections.
        drop_rate: dropout on the tokens after the embedding and after the attention projections.
        attn_drop_rate: dropout on the attention probabilities.
        drop_path_rate: stochastic depth, rising linearly from 0 to this over the blocks.
    """

    num_prefix_tokens = 1  # the class token, before the patch tokens (timm's attribute)

    def __init__(
        self,
        patch_size: int = 4,
        in_chans: int = 3,
        num_classes: int = 100,
        embed_dim: int = 192,
        depth: int = 12,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if num_heads < 1 or embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dim
        self.patch_size = patch_size
        self.patch_embed = SOPE(patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.empty(1, 1, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        rates = [drop_path_rate * i / max(1, depth - 1) for i in range(depth)]
        self.blocks = nn.ModuleList(
            DHVTBlock(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate, rates[i])
            for i in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head: nn.Module = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.feature_info = FeatureInfo(
            dict(num_chs=embed_dim, reduction=patch_size, module=f"blocks.{i}") for i in range(depth)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official initialisation: truncated normal (0.02) linear weights, class token and
        head-token embeddings, zero linear biases; norms and convs at PyTorch's defaults."""
        reset_linear_trunc_normal(self)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = _ContiguousGrad.apply(self.patch_embed(x))  # (B, C, h, w)
        size = (x.shape[-2], x.shape[-1])
        x = x.flatten(2).transpose(1, 2)  # (B, C, h, w) -> (B, hw, C)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1)  # (B, 1 + hw, C)
        return self.pos_drop(x), size

    def _to_map(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        b, _, c = x.shape
        return x[:, self.num_prefix_tokens :].transpose(1, 2).reshape(b, c, *size)  # (B, 1+hw, C) -> (B, C, h, w)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x, size = self._embed(x)
        for blk in self.blocks:
            x = blk(x, size)
        return self.norm(x)  # (B, 1 + hw, C)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x[:, 0]  # the class token
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(self, x: torch.Tensor, indices: Sequence[int]) -> list[torch.Tensor]:
        """The patch tokens after the blocks in ``indices``, through the final norm, as ``(B, C, h, w)`` maps."""
        x, size = self._embed(x)
        out = []
        for i, blk in enumerate(self.blocks[: max(indices) + 1]):
            x = blk(x, size)
            if i in indices:
                out.append(self._to_map(self.norm(x), size))
        return out

    def prune_intermediate_layers(self, indices: Sequence[int]) -> None:
        """Drop the blocks after the last of ``indices``, the head, and the last block's class-token
        aggregation (its output reaches no tap)."""
        self.blocks = self.blocks[: max(indices) + 1]
        self.blocks[-1].mlp.aggregate = None
        self.head = nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a fresh one for ``num_classes`` (0: none)."""
        self.num_classes = num_classes
        self.head = linear_head(self.num_features, num_classes)


def convert_official_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict of the official ``VisionTransformer(apply_dhvt=True)`` (e.g. ``checkpoint["model"]``)
    with subband's names (SOPE Conv-BN and DAFF aggregation renamed; everything else is the same)."""
    rules = [
        (r"^(patch_embed\.proj\.\d+)\.0\.", r"\1.c."),
        (r"^(patch_embed\.proj\.\d+)\.1\.", r"\1.bn."),
        (r"\.mlp\.compress\.", ".mlp.aggregate.fc1."),
        (r"\.mlp\.excitation\.", ".mlp.aggregate.fc2."),
    ]
    return rename_keys({k.removeprefix("module."): v for k, v in state.items()}, rules)


_TITLE = "Bridging the Gap Between Vision Transformers and Convolutional Neural Networks on Small Datasets"
_SRC = "ArieSeirack/DHVT vision_transformer.py {} (built and counted; GMACs at 32x32); paper Table 4: {}"
_NOTES = (
    "gflops: the official model's multiply-accumulates at 32x32 (torch.utils.flop_counter, the attention "
    "products q k^T and attn v included); without those products the count is {} GMACs, within 0.1G of "
    "the paper's Table 4 figure ({}G; the official README says it was counted with DeepSpeed's profiler, "
    "which presumably missed the products written with the @ operator)"
)


def _paper(name: str, params: int, gmacs: float, without_attention: float, table4: str) -> Paper:
    return Paper(
        title=_TITLE,
        arxiv="2210.05958",
        params=params,
        gflops=gmacs,
        input_size=(3, 32, 32),
        source=_SRC.format(name, table4),
        notes=_NOTES.format(without_attention, table4.split(" / ")[1].rstrip("G")),
    )


def _variant(patch_size: int, embed_dim: int, num_heads: int, kwargs: dict) -> DHVT:
    cfg = dict(patch_size=patch_size, embed_dim=embed_dim, depth=12, num_heads=num_heads, num_classes=100)
    return DHVT(**{**cfg, **kwargs})


@register_model(_paper("dhvt_tiny_cifar_patch4", 6_008_650, 0.388, 0.366, "6.0M / 0.4G / 80.93% CIFAR-100"))
def dhvt_tiny_cifar_patch4(**kwargs) -> DHVT:
    """DHVT-T, patch 4 (CIFAR-100, 32x32): width 192, depth 12, 4 heads."""
    return _variant(4, 192, 4, kwargs)


@register_model(_paper("dhvt_small_cifar_patch4", 23_425_450, 1.529, 1.480, "23.4M / 1.5G / 82.91% CIFAR-100"))
def dhvt_small_cifar_patch4(**kwargs) -> DHVT:
    """DHVT-S, patch 4 (CIFAR-100, 32x32): width 384, depth 12, 8 heads."""
    return _variant(4, 384, 8, kwargs)


@register_model(_paper("dhvt_tiny_cifar_patch2", 5_845_162, 1.705, 1.391, "5.8M / 1.4G / 83.54% CIFAR-100"))
def dhvt_tiny_cifar_patch2(**kwargs) -> DHVT:
    """DHVT-T, patch 2 (CIFAR-100, 32x32): width 192, depth 12, 4 heads."""
    return _variant(2, 192, 4, kwargs)


@register_model(_paper("dhvt_small_cifar_patch2", 22_766_698, 6.195, 5.547, "22.8M / 5.6G / 85.68% CIFAR-100"))
def dhvt_small_cifar_patch2(**kwargs) -> DHVT:
    """DHVT-S, patch 2 (CIFAR-100, 32x32): width 384, depth 12, 8 heads."""
    return _variant(2, 384, 8, kwargs)
