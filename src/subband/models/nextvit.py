"""Next-ViT: "Next-ViT: Next Generation Vision Transformer for Efficient Deployment in Realistic
Industrial Scenarios" (Li, Xia, Li, Xiao, Wang, Wang, Zheng, Pan, Wang, Wu; arXiv 2207.05501).

A convolutional stem (four 3x3 Conv-BN-ReLU, strides 2, 1, 1, 2), four stages that stack two kinds
of blocks by the "Next Hybrid Strategy" (each stage ends in a transformer block from the second
on: ``NCB x (N-1), NTB`` in stages 2 and 4, ``(NCB x 4, NTB) x N/5`` in stage 3), and a
BatchNorm -> global average pool -> linear head. All normalisations are BatchNorms (eps 1e-5), all
activations ReLU, so every normalisation folds into a neighbouring linear map at deploy time.

- **Patch embedding** (:class:`PatchEmbed`, opening a block that changes the width or the
  resolution): a 2x2 stride-2 average pool (``ceil_mode``, padding not counted) when downsampling,
  then a 1x1 Conv-BN.
- **MHCA** (multi-head convolutional attention, :class:`MHCA`): a grouped 3x3 Conv-BN with one
  group per head of ``head_dim`` channels, ReLU, a 1x1 projection.
- **NCB** (Next Convolution Block, :class:`NCB`): ``x + MHCA(x)``, then ``x + MLP(BN(x))`` with a
  1x1-conv MLP (ratio 3, ReLU).
- **E-MHSA** (efficient multi-head self-attention, :class:`EfficientAttention`): queries from every
  token, keys and values from the token sequence average-pooled by ``sr_ratio ** 2`` (then a
  BatchNorm), separate ``q``/``k``/``v`` linear layers with biases, head width 32.
- **NTB** (Next Transformer Block, :class:`NTB`): the patch embedding maps to the E-MHSA width
  (``mix_block_ratio`` = 3/4 of the output, rounded to 32), ``x + E-MHSA(BN(x))``; a 1x1 Conv-BN
  projects that to the remaining quarter, ``y + MHCA(y)``; the two are concatenated and
  ``x + MLP(BN(x))`` (ratio 2) follows.

Checked against the official repository (bytedance/Next-ViT, ``classification/nextvit.py``:
``NextViT``, ``NCB``, ``NTB``, ``E_MHSA``, ``MHCA``, ``PatchEmbed``, ``merge_bn``, ``utils.merge_pre_bn``;
README table) and against timm's ``nextvit_*`` (``timm/models/nextvit.py``): stem widths 64-32-64-64,
depths 3-4-10-3 / 3-4-20-3 / 3-4-30-3, block widths (stage 1: 96; stage 2: 192, last 256;
stage 3: 384 x 4 then 512, repeated; stage 4: 768, last 1024), ``sr_ratios`` 8-4-2-1, head width
32, MLP widths rounded to multiples of 32, stochastic depth rising linearly over the blocks (the NTB
scales it by 3/4 on the E-MHSA branch and 1/4 on the MHCA branch), truncated-normal 0.02 init of
convs and linear layers with zero biases. The E-MHSA "spatial reduction" is, as in the official
code, an average pool over the flattened (raster-order) token sequence with kernel and stride
``sr_ratio ** 2``, not a 2-D pool: reproduced as is, since trained weights depend on it (trailing
tokens that do not fill a window are dropped, as ``AvgPool1d`` drops them). Built from the official
file with the same (randomised) weights, S and B give the same logits as the models here to 4.8e-7
(training form) and 6.0e-7 (official ``merge_bn`` against :meth:`NextViT.fuse`); checked outside the
test suite, the official code not being a package.

Parameter names are timm's except where a shared layer names its own parts: Conv+BN pairs are
:class:`~subband.layers.ConvBN` (``.c`` / ``.bn``), E-MHSA is a
:class:`~subband.layers.CrossAttention` (``wq``, ``wk``, ``wv``, ``proj``; attending through
:func:`~subband.layers.attend`, i.e. SDPA) whose context is the pooled, normalised sequence, and the
final BatchNorm sits in the head (``head.norm``: timm's ``forward_features`` ends with it, here
``forward_features`` returns the last stage's map so that the last ``features_only`` tap equals it).
:func:`convert_timm_state_dict` maps a timm state dict; given the same weights the outputs equal
timm's (``tests/models/test_nextvit.py``). :func:`convert_official_state_dict` maps the official
repository's checkpoints (flat ``features.<k>`` blocks, ``proj_head``, ``conv1``/``conv2`` MLPs).

:meth:`NextViT.fuse` is the deploy form: it does the official ``merge_bn`` (every BatchNorm that
precedes a linear map, i.e. the pre-MLP norms and the NTB's ``norm1``, together with the E-MHSA's
BatchNorm on the pooled keys/values, into ``mlp.fc1`` and ``wq``/``wk``/``wv``) and also folds each
Conv-BN (stem, patch embeddings, MHCA), which the official deployment leaves to TensorRT/CoreML.
The head's BatchNorm stays. The README's parameter counts (31.7M / 44.8M / 57.8M) are those of the
training form, which the official ``main.py`` counts with fvcore (built and counted: 31,763,368 /
44,818,856 / 57,874,344, timm's too); the fused form has about 0.1% fewer (``Paper.notes``). The
README FLOPs (5.8G / 8.3G / 10.8G at 224) are multiply-accumulates; ``torch.utils.flop_counter``
counts 5.79G / 8.27G / 10.75G on the fused form.

Differs from the official code: the builders default to ``drop_path_rate=0`` (the official ImageNet
recipe uses 0.1 for S, 0.2 for B and L); ``in_chans`` is free; inputs need at least ``sr_ratio ** 2``
tokens at each NTB (a clear error instead of the official pooling failure); activations run in
channels-last memory format and conv weights are stored in it (same values: the NTB's map-to-token
reshapes become views and no convolution reorders its input or weight), the token pooling is a
reshape and mean instead of ``AvgPool1d`` on the transposed sequence (same values).

Shape:
    ``forward``: ``(B, in_chans, H, W) -> (B, num_classes)``. ``forward_features``: the last stage's
    map ``(B, 1024, H/32, W/32)`` (before the head's BatchNorm). ``features_only``: the four stage
    outputs, widths 96, 256, 512, 1024 at strides 4, 8, 16, 32.

Example:
    >>> model = create_model("nextvit_small").eval()
    >>> model(torch.randn(1, 3, 224, 224)).shape
    torch.Size([1, 1000])
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import ConvBN, CrossAttention, DropPath, Mlp, make_divisible
from ._features import StagedClassifier, rename_keys, trunc_normal_init
from ._registry import Paper, register_model

__all__ = [
    "NextViT",
    "NCB",
    "NTB",
    "MHCA",
    "EfficientAttention",
    "PatchEmbed",
    "stage_layout",
    "convert_timm_state_dict",
    "convert_official_state_dict",
]


def _bn_affine(bn: nn.BatchNorm1d | nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, shift)`` with ``bn(x) = x * scale + shift`` per channel (running statistics)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


@torch.no_grad()
def _merge_pre_affine(layer: nn.Linear | nn.Conv2d, scale: torch.Tensor, shift: torch.Tensor) -> None:
    """Fold a per-channel affine ``x * scale + shift`` applied to ``layer``'s input into ``layer``
    (a linear layer or a 1x1 conv): ``W' = W diag(scale)``, ``b' = b + W shift``."""
    w = layer.weight.reshape(layer.weight.shape[0], -1)  # (out, in)
    bias = w @ shift if layer.bias is None else layer.bias + w @ shift
    layer.weight.copy_((w * scale).reshape(layer.weight.shape))
    if layer.bias is None:
        layer.bias = nn.Parameter(bias)
    else:
        layer.bias.copy_(bias)


class _InplaceReLU(nn.ReLU):
    """ReLU in place (the MLPs' activation; its input is a conv output no backward needs)."""

    def __init__(self) -> None:
        super().__init__(inplace=True)


class _ConvBNReLU(ConvBN):
    """:class:`~subband.layers.ConvBN` followed by a ReLU (the stem's unit; padding 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(super().forward(x), inplace=True)


class PatchEmbed(ConvBN):
    """Optional 2x2 stride-2 average pool (``ceil_mode``, padded cells not counted), then a 1x1 Conv-BN.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: 2 to halve the resolution, 1 to keep it.

    Shape:
        ``(B, in_channels, H, W) -> (B, out_channels, ceil(H / stride), ceil(W / stride))``
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        super().__init__(in_channels, out_channels, 1)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 2:
            x = F.avg_pool2d(x, 2, 2, ceil_mode=True, count_include_pad=False)
        return super().forward(x)

    def extra_repr(self) -> str:
        return f"stride={self.stride}"


def _patch_embed(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """A :class:`PatchEmbed` where the width or the resolution changes, else the identity."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return PatchEmbed(in_channels, out_channels, stride)


class MHCA(nn.Module):
    """Multi-head convolutional attention: grouped 3x3 Conv-BN (one group per head), ReLU, 1x1 projection.

    Args:
        dim: channels (a multiple of ``head_dim``).
        head_dim: channels per head (per group of the 3x3 conv).

    Shape:
        ``(B, dim, H, W) -> (B, dim, H, W)``
    """

    def __init__(self, dim: int, head_dim: int = 32) -> None:
        super().__init__()
        if dim % head_dim:
            raise ValueError(f"dim ({dim}) must be a multiple of head_dim ({head_dim})")
        self.group_conv3x3 = ConvBN(dim, dim, 3, padding=1, groups=dim // head_dim)
        self.projection = nn.Conv2d(dim, dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(F.relu(self.group_conv3x3(x), inplace=True))


class EfficientAttention(CrossAttention):
    """E-MHSA: multi-head self-attention whose keys and values come from the token sequence
    average-pooled by ``sr_ratio ** 2`` (raster order, as the official code) and batch-normalised.

    A :class:`~subband.layers.CrossAttention` (``wq``, ``wk``, ``wv``, ``proj``, all with biases)
    whose context is the reduced sequence (the sequence itself when ``sr_ratio == 1``).

    Args:
        dim: token width.
        head_dim: width per head (``dim // head_dim`` heads).
        sr_ratio: spatial reduction; ``sr_ratio ** 2`` consecutive tokens are averaged into one key.
        attn_drop: dropout on the attention probabilities.
        proj_drop: dropout after ``proj``.

    Shape:
        ``(B, N, dim) -> (B, N, dim)``; needs ``N >= sr_ratio ** 2``.
    """

    def __init__(
        self, dim: int, head_dim: int = 32, sr_ratio: int = 1, attn_drop: float = 0.0, proj_drop: float = 0.0
    ) -> None:
        if dim % head_dim:
            raise ValueError(f"dim ({dim}) must be a multiple of head_dim ({head_dim})")
        if sr_ratio < 1:
            raise ValueError(f"sr_ratio must be >= 1, got {sr_ratio}")
        super().__init__(dim, dim // head_dim, head_dim, qkv_bias=True, attn_drop=attn_drop, proj_drop=proj_drop)
        self.sr_ratio = sr_ratio
        self.norm: nn.Module | None = nn.BatchNorm1d(dim) if sr_ratio > 1 else None

    def reduce(self, x: torch.Tensor) -> torch.Tensor:
        """The context: ``(B, N, C) -> (B, N // sr_ratio**2, C)``, pooled and normalised."""
        if self.sr_ratio == 1:
            return x
        b, n, c = x.shape
        k = self.sr_ratio**2
        if n < k:
            raise ValueError(f"E-MHSA with sr_ratio {self.sr_ratio} needs at least {k} tokens, got {n}")
        m = n // k
        ctx = x[:, : m * k].reshape(b, m, k, c).mean(2)  # (B, N, C) -> (B, N // k, C): AvgPool1d over tokens
        if self.norm is None:  # folded into wk / wv by fuse()
            return ctx
        return self.norm(ctx.transpose(1, 2)).transpose(1, 2)  # BatchNorm1d over (B, C, L)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x, self.reduce(x))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, sr_ratio={self.sr_ratio}"


class NCB(nn.Module):
    """Next Convolution Block: patch embedding, ``x + MHCA(x)``, ``x + MLP(BN(x))``.

    Args:
        in_channels: input channels.
        out_channels: output channels (a multiple of ``head_dim``).
        stride: 2 to downsample in the patch embedding.
        head_dim: channels per MHCA head.
        mlp_ratio: MLP expansion (hidden width rounded to a multiple of 32).
        drop: dropout in the MLP.
        drop_path: stochastic-depth probability of both residual branches.

    Shape:
        ``(B, in_channels, H, W) -> (B, out_channels, ceil(H / stride), ceil(W / stride))``
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        head_dim: int = 32,
        mlp_ratio: float = 3.0,
        drop: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.patch_embed = _patch_embed(in_channels, out_channels, stride)
        self.mhca = MHCA(out_channels, head_dim)
        self.attn_drop_path = DropPath(drop_path)
        self.norm: nn.Module = nn.BatchNorm2d(out_channels)
        hidden = make_divisible(out_channels * mlp_ratio, 32)
        self.mlp = Mlp(out_channels, hidden, act_layer=_InplaceReLU, drop=drop, use_conv=True)
        self.mlp_drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = x + self.attn_drop_path(self.mhca(x))
        return x + self.mlp_drop_path(self.mlp(self.norm(x)))

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold the pre-MLP BatchNorm into ``mlp.fc1`` (and every Conv-BN). Eval only."""
        if self.training:
            raise RuntimeError("fuse() folds BatchNorm running statistics: call .eval() first")
        if isinstance(self.norm, nn.BatchNorm2d):
            _merge_pre_affine(self.mlp.fc1, *_bn_affine(self.norm))
            self.norm = nn.Identity()
        for m in self.modules():
            if isinstance(m, ConvBN):
                m.fuse()


class NTB(nn.Module):
    """Next Transformer Block: E-MHSA on ``mix_block_ratio`` of the output channels, MHCA on the rest.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: 2 to downsample in the patch embedding.
        sr_ratio: E-MHSA spatial reduction.
        head_dim: channels per head (E-MHSA and MHCA).
        mix_block_ratio: share of the output channels produced by the E-MHSA branch (rounded to 32).
        mlp_ratio: MLP expansion.
        attn_drop: dropout on the attention probabilities.
        drop: dropout after the attention projection and in the MLP.
        drop_path: stochastic-depth probability of the MLP branch; the E-MHSA and MHCA branches
            use ``mix_block_ratio`` and ``1 - mix_block_ratio`` of it.

    Shape:
        ``(B, in_channels, H, W) -> (B, out_channels, ceil(H / stride), ceil(W / stride))``
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        sr_ratio: int = 1,
        head_dim: int = 32,
        mix_block_ratio: float = 0.75,
        mlp_ratio: float = 2.0,
        attn_drop: float = 0.0,
        drop: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.mhsa_out_channels = make_divisible(int(out_channels * mix_block_ratio), 32)
        self.mhca_out_channels = out_channels - self.mhsa_out_channels
        if self.mhca_out_channels < 1:
            raise ValueError(f"out_channels ({out_channels}) leaves no channels for MHCA at ratio {mix_block_ratio}")
        self.patch_embed = _patch_embed(in_channels, self.mhsa_out_channels, stride)
        self.norm1: nn.Module = nn.BatchNorm2d(self.mhsa_out_channels)
        self.e_mhsa = EfficientAttention(self.mhsa_out_channels, head_dim, sr_ratio, attn_drop, drop)
        self.mhsa_drop_path = DropPath(drop_path * mix_block_ratio)
        self.projection = PatchEmbed(self.mhsa_out_channels, self.mhca_out_channels)
        self.mhca = MHCA(self.mhca_out_channels, head_dim)
        self.mhca_drop_path = DropPath(drop_path * (1 - mix_block_ratio))
        self.norm2: nn.Module = nn.BatchNorm2d(out_channels)
        hidden = make_divisible(out_channels * mlp_ratio, 32)
        self.mlp = Mlp(out_channels, hidden, act_layer=_InplaceReLU, drop=drop, use_conv=True)
        self.mlp_drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        b, c, h, w = x.shape
        out = self.norm1(x).flatten(2).transpose(1, 2)  # (B, C, H, W) -> (B, H*W, C)
        out = self.e_mhsa(out).transpose(1, 2).reshape(b, c, h, w)  # (B, H*W, C) -> (B, C, H, W)
        x = x + self.mhsa_drop_path(out)
        out = self.projection(x)
        out = out + self.mhca_drop_path(self.mhca(out))
        x = torch.cat([x, out], dim=1)  # (B, out_channels, H, W)
        return x + self.mlp_drop_path(self.mlp(self.norm2(x)))

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold ``norm1`` (and the E-MHSA's BatchNorm on the pooled tokens) into ``wq``/``wk``/``wv``,
        ``norm2`` into ``mlp.fc1``, and every Conv-BN. Eval only."""
        if self.training:
            raise RuntimeError("fuse() folds BatchNorm running statistics: call .eval() first")
        attn = self.e_mhsa
        if isinstance(self.norm1, nn.BatchNorm2d):
            s1, t1 = _bn_affine(self.norm1)
            _merge_pre_affine(attn.wq, s1, t1)
            s, t = s1, t1
            if attn.norm is not None:  # pooling commutes with the per-channel affine: BN2(pool(BN1(x)))
                s2, t2 = _bn_affine(attn.norm)
                s, t = s1 * s2, t1 * s2 + t2
                attn.norm = None
            _merge_pre_affine(attn.wk, s, t)
            _merge_pre_affine(attn.wv, s, t)
            self.norm1 = nn.Identity()
        if isinstance(self.norm2, nn.BatchNorm2d):
            _merge_pre_affine(self.mlp.fc1, *_bn_affine(self.norm2))
            self.norm2 = nn.Identity()
        for m in self.modules():
            if isinstance(m, ConvBN):
                m.fuse()


class NextViTHead(nn.Module):
    """BatchNorm -> global average pool -> dropout -> linear.

    Args:
        dim: input channels.
        num_classes: classes (0: no linear layer).
        drop_rate: dropout before the linear layer.
    """

    def __init__(self, dim: int, num_classes: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(dim)
        self.drop = nn.Dropout(drop_rate)
        self.fc: nn.Module = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.norm(x).mean((2, 3))  # (B, C, H, W) -> (B, C)
        return x if pre_logits else self.fc(self.drop(x))


def stage_layout(depths: Sequence[int]) -> list[list[tuple[str, int]]]:
    """The official block types and output widths per stage for ``depths`` (Next Hybrid Strategy)."""
    if len(depths) != 4 or min(depths) < 1 or depths[2] % 5:
        raise ValueError(f"depths must be 4 positive counts with the third a multiple of 5, got {tuple(depths)}")
    d1, d2, d3, d4 = depths
    return [
        [("ncb", 96)] * d1,
        [("ncb", 192)] * (d2 - 1) + [("ntb", 256)],
        ([("ncb", 384)] * 4 + [("ntb", 512)]) * (d3 // 5),
        [("ncb", 768)] * (d4 - 1) + [("ntb", 1024)],
    ]


class NextStage(nn.Module):
    """The blocks of one stage (``blocks``); the first one downsamples by ``stride``."""

    def __init__(
        self,
        in_channels: int,
        layout: Sequence[tuple[str, int]],
        stride: int,
        sr_ratio: int,
        drop_path: Sequence[float],
        head_dim: int,
        mix_block_ratio: float,
        attn_drop: float,
        drop: float,
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        for j, ((kind, out), p) in enumerate(zip(layout, drop_path)):
            s = stride if j == 0 else 1
            if kind == "ncb":
                blocks.append(NCB(in_channels, out, s, head_dim, drop=drop, drop_path=p))
            else:
                blocks.append(
                    NTB(in_channels, out, s, sr_ratio, head_dim, mix_block_ratio, 2.0, attn_drop, drop, drop_path=p)
                )
            in_channels = out
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class NextViT(StagedClassifier):
    """Next-ViT image classifier.

    Args:
        depths: blocks per stage (the third a multiple of 5); the widths and block types follow
            from them as in the official code (:func:`stage_layout`).
        num_classes: classes of the head (0: ``forward`` returns pooled, normalised features).
        in_chans: input channels.
        stem_chs: widths of the stem's convolutions (the last one is used twice).
        strides: downsampling of each stage's first block (the stem adds 4).
        sr_ratios: E-MHSA spatial reduction per stage.
        head_dim: channels per attention head (E-MHSA and MHCA).
        mix_block_ratio: share of an NTB's output channels produced by E-MHSA.
        drop_rate: dropout before the classifier.
        attn_drop_rate: dropout on the attention probabilities.
        mlp_drop_rate: dropout in the MLPs and after the attention projection.
        drop_path_rate: stochastic depth of the last block; it rises linearly from 0 over the blocks.

    Shape:
        ``(B, in_chans, H, W) -> (B, num_classes)``; features at strides 4, 8, 16, 32.
    """

    channels_last = True  # mkldnn convs without layout reorders; the NTB's token views become free

    def __init__(
        self,
        depths: Sequence[int] = (3, 4, 10, 3),
        num_classes: int = 1000,
        in_chans: int = 3,
        stem_chs: Sequence[int] = (64, 32, 64),
        strides: Sequence[int] = (1, 2, 2, 2),
        sr_ratios: Sequence[int] = (8, 4, 2, 1),
        head_dim: int = 32,
        mix_block_ratio: float = 0.75,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        mlp_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        layout = stage_layout(depths)
        if len(strides) != 4 or len(sr_ratios) != 4 or len(stem_chs) != 3:
            raise ValueError("strides and sr_ratios need 4 entries and stem_chs 3")
        c0, c1, c2 = stem_chs
        self.stem = nn.Sequential(
            _ConvBNReLU(in_chans, c0, 3, stride=2, padding=1),
            _ConvBNReLU(c0, c1, 3, padding=1),
            _ConvBNReLU(c1, c2, 3, padding=1),
            _ConvBNReLU(c2, c2, 3, stride=2, padding=1),
        )
        total = sum(depths)
        rates = [drop_path_rate * k / max(total - 1, 1) for k in range(total)]  # linear 0 -> rate over all blocks
        stages, in_ch, start, reduction = [], c2, 0, 4
        self.feature_info = []
        for i, blocks in enumerate(layout):
            p = rates[start : start + len(blocks)]
            stage = NextStage(
                in_ch, blocks, strides[i], sr_ratios[i], p, head_dim, mix_block_ratio, attn_drop_rate, mlp_drop_rate
            )
            stages.append(stage)
            in_ch, start, reduction = blocks[-1][1], start + len(blocks), reduction * strides[i]
            self.feature_info.append(dict(num_chs=in_ch, reduction=reduction, module=f"stages.{i}"))
        self.stages = nn.Sequential(*stages)
        self.num_classes = num_classes
        self.num_features = in_ch
        self.head = NextViTHead(in_ch, num_classes, drop_rate)
        self.apply(trunc_normal_init)
        self._weights_channels_last()

    def _weights_channels_last(self) -> None:
        """Conv weights in the activations' layout, so no convolution reorders its weight per call
        (loading a state dict copies into them and keeps the layout)."""
        if self.channels_last:
            self.to(memory_format=torch.channels_last)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:  # the stem runs channels-last as well: convert the 3-channel image, not its features
            x = x.contiguous(memory_format=torch.channels_last)
        return self.stem(x)

    @torch.no_grad()
    def fuse(self) -> NextViT:
        """The deploy form, in place (same outputs in eval mode): every BatchNorm before a linear map
        folded into it (official ``merge_bn``) and every Conv-BN folded. Eval only; returns the model."""
        if self.training:
            raise RuntimeError("fuse() folds BatchNorm running statistics: call .eval() first")
        for m in list(self.modules()):
            if isinstance(m, (NCB, NTB)):
                m.fuse()
            elif isinstance(m, ConvBN):
                m.fuse()
        self._weights_channels_last()
        return self


_TIMM_KEYS = [  # (pattern, replacement), first match wins
    (r"^stem\.(\d+)\.conv\.", r"stem.\1.c."),
    (r"^stem\.(\d+)\.norm\.", r"stem.\1.bn."),
    (r"\.(patch_embed|projection)\.conv\.", r".\1.c."),
    (r"\.(patch_embed|projection)\.norm\.", r".\1.bn."),
    (r"\.mhca\.group_conv3x3\.weight$", r".mhca.group_conv3x3.c.weight"),
    (r"\.mhca\.norm\.", r".mhca.group_conv3x3.bn."),
    (r"\.e_mhsa\.([qkv])\.", r".e_mhsa.w\1."),
    (r"^norm\.", "head.norm."),
]


def convert_timm_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a timm ``nextvit_*`` state dict's keys to subband's (training form)."""
    return rename_keys(state, _TIMM_KEYS)


def convert_official_state_dict(
    state: dict[str, torch.Tensor], depths: Sequence[int] = (3, 4, 10, 3)
) -> dict[str, torch.Tensor]:
    """Rename a bytedance/Next-ViT checkpoint's state dict (``features.<k>`` blocks numbered over
    the whole network, ``proj_head.0``, MLP ``conv1``/``conv2``) for the model with ``depths``."""
    stage_of = [(i, j) for i, blocks in enumerate(stage_layout(depths)) for j in range(len(blocks))]
    out = {}
    for key, value in state.items():
        m = re.match(r"^features\.(\d+)\.(.*)$", key)
        if m:
            i, j = stage_of[int(m.group(1))]
            rest = re.sub(r"^mlp\.conv([12])\.", r"mlp.fc\1.", m.group(2))
            key = f"stages.{i}.blocks.{j}.{rest}"
        key = re.sub(r"^proj_head\.0\.", "head.fc.", key)
        out[key] = value
    return convert_timm_state_dict(out)


_TITLE = "Next-ViT: Next Generation Vision Transformer for Efficient Deployment in Realistic Industrial Scenarios"
_SOURCE = (
    "bytedance/Next-ViT classification/nextvit.py nextvit_{0} and timm nextvit_{0} (built and counted: {1:,} "
    "training-form parameters); README: {2}M params, {3}G FLOPs @224"
)


def _paper(size: str, params: int, fused: int, readme_params: float, gflops: float) -> Paper:
    return Paper(
        title=_TITLE,
        arxiv="2207.05501",
        params=params,
        gflops=gflops,
        input_size=(3, 224, 224),
        source=_SOURCE.format(size, params, readme_params, gflops),
        notes=f"params: the training form (README and timm); fuse() leaves {fused:,}",
    )


def _variant(depths: tuple[int, ...], kwargs: dict) -> NextViT:
    return NextViT(**{**dict(depths=depths), **kwargs})


@register_model(_paper("small", 31_763_368, 31_733_768, 31.7, 5.8))
def nextvit_small(**kwargs) -> NextViT:
    """Next-ViT-S: depths 3-4-10-3."""
    return _variant((3, 4, 10, 3), kwargs)


@register_model(_paper("base", 44_818_856, 44_773_640, 44.8, 8.3))
def nextvit_base(**kwargs) -> NextViT:
    """Next-ViT-B: depths 3-4-20-3."""
    return _variant((3, 4, 20, 3), kwargs)


@register_model(_paper("large", 57_874_344, 57_813_512, 57.8, 10.8))
def nextvit_large(**kwargs) -> NextViT:
    """Next-ViT-L: depths 3-4-30-3."""
    return _variant((3, 4, 30, 3), kwargs)
