"""CvT: "CvT: Introducing Convolutions to Vision Transformers" (Wu, Xiao, Codella, Liu, Dai, Yuan,
Zhang; ICCV 2021; arXiv 2103.15808).

A three-stage hierarchy of transformers whose two convolutional pieces replace ViT's patch
embedding and linear projections, and whose position embedding is dropped altogether:

- **Convolutional token embedding** (:class:`ConvEmbed`): an overlapping strided convolution
  (7x7 stride 4 padding 2 in stage 1, 3x3 stride 2 padding 1 after that, with bias) and a LayerNorm
  over the channels of every pixel.
- **Convolutional projection** (:class:`ConvProjectionAttention`): the tokens are laid out as their
  map and each of q, k, v is a depthwise 3x3 convolution (no bias) and a BatchNorm (``dw_bn``), with
  stride 1 for the queries and stride 2 for the keys and values (4x fewer keys), followed by a linear
  layer. A class token, when present, skips the convolutions and joins the tokens before the linear
  layers. The attention product is :func:`~subband.layers.attend` (SDPA) called directly on these
  projected tensors (:class:`~subband.layers.Attention` has a single ``qkv`` linear layer on the
  same tokens, which the strided key/value maps rule out).
- **Class token in the last stage only**: stages 1 and 2 are class-token-free; the head is a linear
  layer on the final LayerNorm of the last stage's class token.

Blocks are pre-norm ``x + DropPath(attn(norm1(x)))``, ``x + DropPath(Mlp(norm2(x)))`` (MLP ratio 4).

Checked against the official repository (leoxiaobin/CvT, ``lib/models/cls_cvt.py`` and
``experiments/imagenet/cvt/cvt-{13,21}-224x224.yaml``, ``cvt-w24-384x384.yaml``): widths
(64, 192, 384) for CvT-13/21 and (192, 768, 1024) for CvT-W24, depths (1, 2, 10) / (1, 4, 16) /
(2, 2, 20), heads (1, 3, 6) / (3, 12, 16), embedding kernels (7, 3, 3), strides (4, 2, 2) and paddings
(2, 1, 1), q/k/v bias on, ``dw_bn`` projections with kernel 3, padding 1, stride 1 (q) and 2 (k, v);
the activation of the MLP is QuickGELU (``x * sigmoid(1.702 x)``, what the official ``get_cls_model``
passes, not ``nn.GELU``), every LayerNorm has eps 1e-5; the attention logits are scaled by
``dim ** -0.5`` (the stage width, not the head width: the official code's choice, which the
pretrained weights depend on); the initialisation (``trunc_norm``: linear weights truncated normal
0.02 with zero biases, LayerNorm/BatchNorm at one and zero, class token truncated normal 0.02, convs
at PyTorch's default). Built and counted, the official models have exactly the parameters registered
here (19,997,480 / 31,622,696 / 277,196,392). Parameter names are the official ones except
``stage<i>`` -> ``stages.<i>`` and ``conv_proj_{q,k,v}.conv`` -> ``.c``
(:class:`~subband.layers.ConvBN`); :func:`convert_official_state_dict` maps a checkpoint.
Given the same weights, outputs equal the official model's (eval mode; checked outside the test suite,
the official code not being a package: max |diff| 6.0e-7 for CvT-13 and 5.4e-7 for CvT-21 (at 224x224
and 160x224), 2.0e-6 for CvT-W24 (at 96x96), random weights and BatchNorm statistics).
Hugging Face ``transformers`` has CvT too (``CvtForImageClassification``, converted from the official
checkpoints); it uses ``nn.GELU`` in the MLP, so it matches this model built with ``act_layer=nn.GELU``
(``tests/models/test_cvt.py`` compares the two given the same weights, with
:func:`convert_hf_state_dict`).

Differs from the official code: the final LayerNorm is applied to every token in
``forward_features`` (timm's layout; per-token, so the class token the head sees is the same); the
head's bias starts at zero (the official one keeps PyTorch's default); the official fp16 LayerNorm
cast is left to autocast; BatchNorm instead of SyncBatchNorm. The official ``avg`` and ``linear``
projections (ablations) are kept as ``method`` options. The official runs train with stochastic depth (0, 0, 0.1) per stage for CvT-13/21 and
(0, 0, 0.3) for CvT-W24, rising linearly within the stage; the builders default to no drop path.

Shape:
    ``forward``: ``(B, in_chans, H, W) -> (B, num_classes)``. ``forward_features``: the normalised
    tokens of the last stage, class token first, ``(B, 1 + h * w, dims[-1])`` with ``h, w`` the input
    reduced 16x (by the three embeddings). ``features_only``: one map per stage, strides 4, 8, 16,
    ``(B, dims[i], h_i, w_i)`` (the last through the final norm, without the class token).

Example:
    >>> model = create_model("cvt_13")
    >>> model(torch.randn(2, 3, 64, 64)).shape
    torch.Size([2, 1000])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..layers import ConvBN, DropPath, LayerNorm2d, Mlp, attend
from ._features import FeatureInfo, linear_head, rename_keys, reset_linear_trunc_normal
from ._registry import Paper, register_model

__all__ = [
    "CvT",
    "CvTStage",
    "CvTBlock",
    "ConvEmbed",
    "ConvProjectionAttention",
    "QuickGELU",
    "convert_official_state_dict",
    "convert_hf_state_dict",
]


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 * x)``: the sigmoid approximation of GELU (CLIP's; CvT's MLP activation)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ConvEmbed(nn.Module):
    """Convolutional token embedding: a strided, overlapping ``patch_size`` convolution (with bias)
    and a LayerNorm over the channels.

    Shape:
        ``(B, in_chans, H, W) -> (B, dim, (H + 2p - k) // s + 1, (W + 2p - k) // s + 1)``.

    Args:
        in_chans: input channels.
        dim: output channels (token width).
        patch_size: kernel size ``k``.
        stride: stride ``s``.
        padding: zero padding ``p``.
        eps: LayerNorm epsilon.
    """

    def __init__(self, in_chans: int, dim: int, patch_size: int, stride: int, padding: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, patch_size, stride, padding)
        self.norm = LayerNorm2d(dim, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x))


_METHODS = ("dw_bn", "avg", "linear")


def _projection(method: str, dim: int, kernel_size: int, stride: int, padding: int) -> nn.Module:
    """The spatial part of one of q/k/v: depthwise conv + BN, average pooling, or nothing."""
    if method == "dw_bn":
        return ConvBN(dim, dim, kernel_size, stride=stride, padding=padding, groups=dim)
    if method == "avg":
        return nn.AvgPool2d(kernel_size, stride, padding, ceil_mode=True)
    return nn.Identity()


class ConvProjectionAttention(nn.Module):
    """Multi-head self-attention with convolutional projections (CvT's "convolutional projection").

    The ``h * w`` patch tokens, as a ``(B, C, h, w)`` map, pass through ``conv_proj_q`` (stride
    ``stride_q``) and ``conv_proj_k``, ``conv_proj_v`` (stride ``stride_kv``); the ``num_prefix_tokens``
    leading tokens (the class token) bypass them and are put back in front; then the linear layers
    ``proj_q``, ``proj_k``, ``proj_v``, :func:`~subband.layers.attend` with the logits scaled by
    ``dim ** -0.5`` (as the official code; not the head width), and the output projection ``proj``.

    Shape:
        ``x (B, n + h * w, dim)``, ``size = (h, w) -> (B, n + h' * w', dim)`` with ``h', w'`` the
        query map (``h, w`` for ``stride_q = 1``).

    Args:
        dim: token width.
        num_heads: attention heads (``dim`` divisible by it).
        qkv_bias: biases in ``proj_q``, ``proj_k``, ``proj_v``.
        method: ``"dw_bn"`` (depthwise conv + BatchNorm; the paper's), ``"avg"`` (average pooling for
            k and v, the queries unprojected; an official ablation) or ``"linear"`` (no spatial
            projection: plain attention).
        kernel_size: kernel of the depthwise convs / pooling.
        stride_q, stride_kv: strides of the query and key/value projections.
        padding_q, padding_kv: their zero padding.
        num_prefix_tokens: leading tokens that skip the spatial projections (1: a class token).
        attn_drop: dropout on the attention probabilities (training only).
        proj_drop: dropout after ``proj``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        method: str = "dw_bn",
        kernel_size: int = 3,
        stride_q: int = 1,
        stride_kv: int = 2,
        padding_q: int = 1,
        padding_kv: int = 1,
        num_prefix_tokens: int = 0,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
        if num_heads < 1 or dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.dim, self.num_heads, self.method = dim, num_heads, method
        self.num_prefix_tokens = num_prefix_tokens
        self.scale = dim**-0.5  # the official scale: the full width, not dim // num_heads
        q_method = "linear" if method == "avg" else method
        self.conv_proj_q = _projection(q_method, dim, kernel_size, stride_q, padding_q)
        self.conv_proj_k = _projection(method, dim, kernel_size, stride_kv, padding_kv)
        self.conv_proj_v = _projection(method, dim, kernel_size, stride_kv, padding_kv)
        self.proj_q = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj_k = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj_v = nn.Linear(dim, dim, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def _project(self, conv: nn.Module, linear: nn.Linear, prefix: torch.Tensor, fmap: torch.Tensor) -> torch.Tensor:
        b = fmap.shape[0]
        t = conv(fmap).flatten(2).transpose(1, 2)  # (B, C, h', w') -> (B, h'w', C)
        t = linear(torch.cat([prefix, t], 1))  # (B, n + h'w', C)
        return t.view(b, t.shape[1], self.num_heads, -1).transpose(1, 2)  # (B, N, h*d) -> (B, heads, N, d)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        b, _, c = x.shape
        n = self.num_prefix_tokens
        prefix = x[:, :n]
        # (B, hw, C) -> (B, C, h, w) as a channels-last view: no copy, and the BatchNorms of the
        # projections see their input and their incoming gradient in one memory format (PyTorch's CPU
        # BatchNorm backward is wrong at batch size 1 when a contiguous input meets the channels-last
        # gradient that the flatten/transpose below hands back; tests/models/test_cvt.py gradchecks it)
        fmap = x[:, n:].reshape(b, *size, c).permute(0, 3, 1, 2)
        q = self._project(self.conv_proj_q, self.proj_q, prefix, fmap)
        k = self._project(self.conv_proj_k, self.proj_k, prefix, fmap)
        v = self._project(self.conv_proj_v, self.proj_v, prefix, fmap)
        drop = self.attn_drop if self.training else 0.0
        y = attend(q, k, v, scale=self.scale, dropout_p=drop)  # (B, heads, Nq, d)
        y = y.transpose(1, 2).reshape(b, -1, c)  # (B, heads, Nq, d) -> (B, Nq, C)
        return self.proj_drop(self.proj(y))

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, method={self.method!r}, num_prefix_tokens={self.num_prefix_tokens}"


class CvTBlock(nn.Module):
    """Pre-norm convolutional transformer block: ``x + DropPath(attn(norm1(x)))``, then
    ``x + DropPath(mlp(norm2(x)))``.

    Shape:
        ``x (B, n + h * w, dim)``, ``size = (h, w) -> (B, n + h * w, dim)``.

    Args:
        dim, num_heads, qkv_bias, num_prefix_tokens: as :class:`ConvProjectionAttention`.
        mlp_ratio: MLP hidden width over ``dim``.
        drop: dropout after the attention projection and in the MLP.
        attn_drop: dropout on the attention probabilities.
        drop_path: stochastic-depth probability of both residual branches.
        act_layer: MLP activation (QuickGELU, the official one).
        eps: LayerNorm epsilon.
        projection: further :class:`ConvProjectionAttention` arguments (``method``, kernels, strides,
            paddings).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        num_prefix_tokens: int = 0,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        act_layer: type[nn.Module] = QuickGELU,
        eps: float = 1e-5,
        **projection,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = ConvProjectionAttention(
            dim,
            num_heads,
            qkv_bias,
            num_prefix_tokens=num_prefix_tokens,
            attn_drop=attn_drop,
            proj_drop=drop,
            **projection,
        )
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=drop)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), size))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class CvTStage(nn.Module):
    """Convolutional token embedding, an optional class token, then ``depth`` blocks.

    Shape:
        ``(B, in_chans, H, W) -> ((B, n + h * w, dim), (h, w))``: the tokens (class token first when
        ``cls_token``) and the grid of the embedded map.

    Args:
        in_chans: input channels.
        dim: token width.
        depth: number of blocks.
        num_heads: attention heads.
        patch_size, patch_stride, patch_padding: of the embedding convolution.
        cls_token: prepend a learned class token.
        drop_rate: dropout after the embedding and inside the blocks.
        drop_path: per-block stochastic-depth probabilities (``depth`` of them).
        eps: LayerNorm epsilon.
        block: further :class:`CvTBlock` arguments.
    """

    def __init__(
        self,
        in_chans: int,
        dim: int,
        depth: int,
        num_heads: int,
        patch_size: int,
        patch_stride: int,
        patch_padding: int,
        cls_token: bool = False,
        drop_rate: float = 0.0,
        drop_path: Sequence[float] = (),
        eps: float = 1e-5,
        **block,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        rates = list(drop_path) or [0.0] * depth
        if len(rates) != depth:
            raise ValueError(f"drop_path has {len(rates)} rates for {depth} blocks")
        self.num_prefix_tokens = int(cls_token)
        self.patch_embed = ConvEmbed(in_chans, dim, patch_size, patch_stride, patch_padding, eps)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if cls_token else None
        self.pos_drop = nn.Dropout(drop_rate)
        self.blocks = nn.ModuleList(
            CvTBlock(
                dim, num_heads, num_prefix_tokens=self.num_prefix_tokens, drop=drop_rate, drop_path=p, eps=eps, **block
            )
            for p in rates
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = self.patch_embed(x)
        size = (x.shape[-2], x.shape[-1])
        x = x.flatten(2).transpose(1, 2)  # (B, C, h, w) -> (B, hw, C)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1)  # (B, 1 + hw, C)
        x = self.pos_drop(x)
        for blk in self.blocks:
            x = blk(x, size)
        return x, size


def _per_stage(value, n: int, name: str) -> list:
    out = list(value) if isinstance(value, Sequence) else [value] * n
    if len(out) != n:
        raise ValueError(f"{name} has {len(out)} entries for {n} stages")
    return out


class CvT(nn.Module):
    """Convolutional vision transformer classifier.

    Args:
        dims: token width per stage.
        depths: blocks per stage.
        num_heads: attention heads per stage.
        num_classes: classes of the head (0: ``forward`` returns the pooled features).
        in_chans: input channels.
        patch_sizes, patch_strides, patch_paddings: the embedding convolution of each stage.
        mlp_ratio: MLP hidden width over the token width.
        qkv_bias: biases in the q/k/v linear layers.
        cls_token: a class token in the last stage, which the head reads; ``False``: the head
            averages the normalised tokens instead.
        method: spatial projection of q/k/v, ``"dw_bn"``, ``"avg"`` or ``"linear"``
            (see :class:`ConvProjectionAttention`).
        kernel_qkv: kernel of the projections.
        stride_q, stride_kv, padding_q, padding_kv: strides and paddings of the projections.
        drop_rate: dropout after the embeddings, the attention projection and in the MLPs.
        attn_drop_rate: dropout on the attention probabilities.
        drop_path_rate: stochastic depth of each stage's last block (one value or one per stage);
            it rises linearly from 0 over the stage's blocks (official: (0, 0, 0.1)).
        act_layer: MLP activation (QuickGELU, the official one).
        eps: LayerNorm epsilon.

    Shape:
        ``(B, in_chans, H, W) -> (B, num_classes)``.
    """

    def __init__(
        self,
        dims: Sequence[int] = (64, 192, 384),
        depths: Sequence[int] = (1, 2, 10),
        num_heads: Sequence[int] = (1, 3, 6),
        num_classes: int = 1000,
        in_chans: int = 3,
        patch_sizes: Sequence[int] = (7, 3, 3),
        patch_strides: Sequence[int] = (4, 2, 2),
        patch_paddings: Sequence[int] = (2, 1, 1),
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        cls_token: bool = True,
        method: str = "dw_bn",
        kernel_qkv: int = 3,
        stride_q: int = 1,
        stride_kv: int = 2,
        padding_q: int = 1,
        padding_kv: int = 1,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float | Sequence[float] = 0.0,
        act_layer: type[nn.Module] = QuickGELU,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        n = len(dims)
        if not n or any(len(s) != n for s in (depths, num_heads, patch_sizes, patch_strides, patch_paddings)):
            raise ValueError(
                "dims, depths, num_heads, patch_sizes, patch_strides, patch_paddings need one entry per stage"
            )
        rates = _per_stage(drop_path_rate, n, "drop_path_rate")
        self.num_classes = num_classes
        self.num_features = self.embed_dim = dims[-1]
        self.num_prefix_tokens = int(cls_token)
        self.num_stages = n
        stages, prev, reduction, info = [], in_chans, 1, []
        for i in range(n):
            d = depths[i]
            stages.append(
                CvTStage(
                    prev,
                    dims[i],
                    d,
                    num_heads[i],
                    patch_sizes[i],
                    patch_strides[i],
                    patch_paddings[i],
                    cls_token=cls_token and i == n - 1,
                    drop_rate=drop_rate,
                    drop_path=[rates[i] * j / max(d - 1, 1) for j in range(d)],
                    eps=eps,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    attn_drop=attn_drop_rate,
                    act_layer=act_layer,
                    method=method,
                    kernel_size=kernel_qkv,
                    stride_q=stride_q,
                    stride_kv=stride_kv,
                    padding_q=padding_q,
                    padding_kv=padding_kv,
                )
            )
            prev, reduction = dims[i], reduction * patch_strides[i]
            info.append(dict(num_chs=dims[i], reduction=reduction, module=f"stages.{i}"))
        self.stages = nn.ModuleList(stages)
        self.norm: nn.Module = nn.LayerNorm(dims[-1], eps=eps)
        self.head: nn.Module = nn.Linear(dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.feature_info = FeatureInfo(info)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official ``trunc_norm`` initialisation: linear weights and class token truncated normal
        (0.02), zero linear biases, norms at one and zero, convs at PyTorch's default."""
        reset_linear_trunc_normal(self)
        for stage in self.stages:
            if stage.cls_token is not None:
                nn.init.trunc_normal_(stage.cls_token, std=0.02)

    def _to_map(self, x: torch.Tensor, size: tuple[int, int], n: int) -> torch.Tensor:
        b, _, c = x.shape
        return x[:, n:].transpose(1, 2).reshape(b, c, *size)  # (B, n + hw, C) -> (B, C, h, w)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for i, stage in enumerate(self.stages):
            tokens, size = stage(x)
            if i < len(self.stages) - 1:
                x = self._to_map(tokens, size, stage.num_prefix_tokens)
        return self.norm(tokens)  # (B, n + hw, C)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x[:, 0] if self.num_prefix_tokens else x.mean(1)  # the class token, or the mean token
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(self, x: torch.Tensor, indices: Sequence[int]) -> list[torch.Tensor]:
        """The maps of the stages in ``indices`` (the last stage's through the final norm, without its
        class token), ``(B, dims[i], h_i, w_i)``."""
        out = []
        for i, stage in enumerate(self.stages[: max(indices) + 1]):
            tokens, size = stage(x)
            if i == self.num_stages - 1:
                tokens = self.norm(tokens)
            x = self._to_map(tokens, size, stage.num_prefix_tokens)
            if i in indices:
                out.append(x)
        return out

    def prune_intermediate_layers(self, indices: Sequence[int]) -> None:
        """Drop the stages after the last of ``indices``, the head, and the final norm unless the
        last stage is kept."""
        self.stages = self.stages[: max(indices) + 1]
        if max(indices) < self.num_stages - 1:
            self.norm = nn.Identity()
        self.head = nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a fresh one for ``num_classes`` (0: none)."""
        self.num_classes = num_classes
        self.head = linear_head(self.num_features, num_classes)


def convert_official_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict of the official ``ConvolutionalVisionTransformer`` with subband's names
    (``stage<i>`` -> ``stages.<i>``, ``conv_proj_*.conv`` -> ``conv_proj_*.c``)."""
    rules = [
        (r"^stage(\d+)\.(.*\.conv_proj_[qkv])\.conv\.", r"stages.\1.\2.c."),
        (r"^stage(\d+)\.", r"stages.\1."),
    ]
    return rename_keys({k.removeprefix("module."): v for k, v in state.items()}, rules)


_HF = r"^cvt\.encoder\.stages\.(\d+)\."
_HF_LAYER = _HF + r"layers\.(\d+)\."
_HF_KEYS = [  # Hugging Face CvtForImageClassification -> subband, first match wins
    (_HF + r"cls_token$", r"stages.\1.cls_token"),
    (_HF + r"embedding\.convolution_embeddings\.projection\.", r"stages.\1.patch_embed.proj."),
    (_HF + r"embedding\.convolution_embeddings\.normalization\.", r"stages.\1.patch_embed.norm."),
    *(
        rule
        for long, short in (("query", "q"), ("key", "k"), ("value", "v"))
        for rule in (
            (
                _HF_LAYER
                + rf"attention\.attention\.convolution_projection_{long}\.convolution_projection\.convolution\.",
                rf"stages.\1.blocks.\2.attn.conv_proj_{short}.c.",
            ),
            (
                _HF_LAYER
                + rf"attention\.attention\.convolution_projection_{long}\.convolution_projection\.normalization\.",
                rf"stages.\1.blocks.\2.attn.conv_proj_{short}.bn.",
            ),
            (_HF_LAYER + rf"attention\.attention\.projection_{long}\.", rf"stages.\1.blocks.\2.attn.proj_{short}."),
        )
    ),
    (_HF_LAYER + r"attention\.output\.dense\.", r"stages.\1.blocks.\2.attn.proj."),
    (_HF_LAYER + r"layernorm_before\.", r"stages.\1.blocks.\2.norm1."),
    (_HF_LAYER + r"layernorm_after\.", r"stages.\1.blocks.\2.norm2."),
    (_HF_LAYER + r"intermediate\.dense\.", r"stages.\1.blocks.\2.mlp.fc1."),
    (_HF_LAYER + r"output\.dense\.", r"stages.\1.blocks.\2.mlp.fc2."),
    (r"^layernorm\.", "norm."),
    (r"^classifier\.", "head."),
]


def convert_hf_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict of Hugging Face's ``CvtForImageClassification`` with subband's names.

    The weights then reproduce the Hugging Face model built with ``act_layer=nn.GELU`` (its MLP uses
    the exact GELU where the official model, whose checkpoints it converted, uses QuickGELU)."""
    return rename_keys(state, _HF_KEYS)


_TITLE = "CvT: Introducing Convolutions to Vision Transformers"
_SRC = "leoxiaobin/CvT lib/models/cls_cvt.py + experiments/imagenet/cvt/{} (built and counted); README {}"


def _paper(cfg: str, params: int, gmacs: float, readme: str, size: int = 224, notes: str = "") -> Paper:
    return Paper(
        title=_TITLE,
        arxiv="2103.15808",
        params=params,
        gflops=gmacs,
        input_size=(3, size, size),
        source=_SRC.format(cfg, readme),
        notes=notes,
    )


_GMACS_NOTE = (
    "gflops: the official model's multiply-accumulates at {s}x{s} (torch.utils.flop_counter, attention "
    "products included), {r} in the official README"
)


@register_model(
    _paper("cvt-13-224x224.yaml", 19_997_480, 4.57, "20M / 4.5G / 81.6%", notes=_GMACS_NOTE.format(s=224, r="4.5G"))
)
def cvt_13(**kwargs) -> CvT:
    """CvT-13: widths (64, 192, 384), depths (1, 2, 10), heads (1, 3, 6)."""
    return CvT(**{**dict(dims=(64, 192, 384), depths=(1, 2, 10), num_heads=(1, 3, 6)), **kwargs})


@register_model(
    _paper("cvt-21-224x224.yaml", 31_622_696, 7.18, "32M / 7.1G / 82.5%", notes=_GMACS_NOTE.format(s=224, r="7.1G"))
)
def cvt_21(**kwargs) -> CvT:
    """CvT-21: widths (64, 192, 384), depths (1, 4, 16), heads (1, 3, 6)."""
    return CvT(**{**dict(dims=(64, 192, 384), depths=(1, 4, 16), num_heads=(1, 3, 6)), **kwargs})


@register_model(
    _paper(
        "cvt-w24-384x384.yaml",
        277_196_392,
        194.2,
        "277M / 193.2G / 87.6% (ImageNet-22k pretrained, 384x384)",
        size=384,
        notes="big: 277M parameters; " + _GMACS_NOTE.format(s=384, r="193.2G"),
    )
)
def cvt_w24(**kwargs) -> CvT:
    """CvT-W24 (384x384): widths (192, 768, 1024), depths (2, 2, 20), heads (3, 12, 16). Big (277M)."""
    return CvT(**{**dict(dims=(192, 768, 1024), depths=(2, 2, 20), num_heads=(3, 12, 16)), **kwargs})
