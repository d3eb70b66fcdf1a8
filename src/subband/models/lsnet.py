"""LSNet: "LSNet: See Large, Focus Small" (Wang, Chen, Lin, Han, Ding; arXiv 2503.23135).

A stride-8 stem of three 3x3 stride-2 Conv-BNs (ReLU between), four stages joined by a 3x3
stride-2 depthwise Conv-BN and a 1x1 Conv-BN, and a pool -> BatchNorm -> linear head. In every
stage the blocks alternate: even blocks mix with RepVGG-style depthwise convs (3x3 Conv-BN +
1x1 Conv-BN + identity) followed by squeeze-excitation (ratio 1/4); odd blocks mix with an LS
convolution (:class:`~subband.layers.lsconv.LSConv`), or in the last stage with multi-head
attention (key dim 16, a depthwise 3x3 Conv-BN on the queries, learned relative-position biases).
Every block ends with a residual FFN (1x1 Conv-BN, x2, ReLU, 1x1 Conv-BN).

Configurations checked against the official repository (THU-MIG/lsnet, formerly jameslahm/lsnet,
``model/lsnet.py``): widths, depths, heads, key dim, the BatchNorm initialised to zero at the end of
each FFN and attention branch. The registered parameter counts are the official models built and
counted (T and S equal the ``n_parameters`` of the official training logs); GMACs are counted the
official way (``flops.py``: BatchNorms folded, fvcore, the dynamic aggregation counted as a depthwise
3x3 conv), which the README rounds to 0.3G / 0.5G / 1.3G. Parameter names are the official ones
except for the stage layout (``patch_embed`` -> ``stem``, ``blocks1..4`` -> ``stages.i.downsample``
and ``stages.i.blocks``) and ``head.l`` -> ``head.fc``; :func:`convert_official_state_dict` maps a
checkpoint. :meth:`LSNet.fuse` folds every Conv-BN, the RepVGG branches and the head's BatchNorm, as
the official ``replace_batchnorm`` does.
Differs from the official code: the attention biases are indexed by the offsets of the actual
feature map, so any input size works (the official classifier only runs at its ``img_size``); an
offset larger than the table (a map bigger than at 224x224) uses the table's last entry. The
aggregation runs without Triton (see :mod:`subband.layers.lsconv`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import nn

from ..layers import ConvBN, LSConv, SqueezeExcite, make_divisible
from ._features import DistilledClassifier
from ._registry import Paper, register_model

__all__ = ["LSNet", "LSNetBlock", "convert_official_state_dict"]


class RepVGGDW(nn.Module):
    """``ConvBN 3x3 dw (x) + ConvBN 1x1 dw (x) + x``; :meth:`fuse` merges all three into one biased 3x3."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = ConvBN(dim, dim, 3, 1, 1, groups=dim)
        self.conv1: ConvBN | None = ConvBN(dim, dim, 1, 1, 0, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv1 is None:  # fused
            return self.conv(x)
        return self.conv(x) + self.conv1(x) + x

    @torch.no_grad()
    def fuse(self) -> None:
        """One 3x3 depthwise conv with bias, in place. Eval only."""
        if self.training:
            raise RuntimeError("fuse() folds BatchNorm running statistics: call .eval() first")
        if self.conv1 is None:
            return
        self.conv.fuse()
        self.conv1.fuse()
        c, c1 = self.conv.c, self.conv1.c
        c.weight[:, :, 1, 1] += c1.weight[:, :, 0, 0] + 1.0  # the 1x1 branch and the identity at the centre tap
        c.bias += c1.bias
        self.conv1 = None


class _Residual(nn.Module):
    """``x + m(x)``."""

    def __init__(self, m: nn.Module) -> None:
        super().__init__()
        self.m = m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.m(x)


class _FFN(nn.Module):
    """1x1 ConvBN -> ReLU -> 1x1 ConvBN (BN scale initialised to 0)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.pw1 = ConvBN(dim, hidden)
        self.act = nn.ReLU()
        self.pw2 = ConvBN(hidden, dim, bn_weight_init=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw2(self.act(self.pw1(x)))


class LSNetAttention(nn.Module):
    """Multi-head attention over the pixels with a depthwise 3x3 on the queries and learned biases
    indexed by the absolute row and column offset between two pixels.

    Args:
        dim: channels.
        key_dim: query/key channels per head.
        num_heads: heads.
        attn_ratio: value channels per head = ``int(attn_ratio * key_dim)``.
        resolution: side of the bias table (offsets ``0..resolution-1`` per axis; larger ones clamp).
    """

    def __init__(self, dim: int, key_dim: int, num_heads: int, attn_ratio: float, resolution: int) -> None:
        super().__init__()
        if resolution < 1:
            raise ValueError(f"resolution must be positive, got {resolution}")
        self.num_heads, self.key_dim, self.resolution = num_heads, key_dim, resolution
        self.scale = key_dim**-0.5
        self.nh_kd = key_dim * num_heads
        self.d = int(attn_ratio * key_dim)
        self.dh = self.d * num_heads
        self.qkv = ConvBN(dim, self.dh + 2 * self.nh_kd)
        self.proj = nn.Sequential(nn.ReLU(), ConvBN(self.dh, dim, bn_weight_init=0.0))
        self.dw = ConvBN(self.nh_kd, self.nh_kd, 3, 1, 1, groups=self.nh_kd)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, resolution * resolution))

    def bias(self, h: int, w: int) -> torch.Tensor:
        """The ``(heads, h*w, h*w)`` biases of an ``h x w`` map (pixels in row-major order)."""
        dev, r = self.attention_biases.device, self.resolution
        rows = torch.arange(h, device=dev).repeat_interleave(w)  # row of pixel n
        cols = torch.arange(w, device=dev).repeat(h)  # column of pixel n
        dy = (rows[:, None] - rows[None, :]).abs().clamp(max=r - 1)
        dx = (cols[:, None] - cols[None, :]).abs().clamp(max=r - 1)
        return self.attention_biases[:, dy * r + dx]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        n = h * w
        q, k, v = self.qkv(x).split([self.nh_kd, self.nh_kd, self.dh], dim=1)
        q = self.dw(q)
        q = q.view(b, self.num_heads, self.key_dim, n)  # (B, heads*kd, H, W) -> (B, heads, kd, N)
        k = k.view(b, self.num_heads, self.key_dim, n)
        v = v.view(b, self.num_heads, self.d, n)  # (B, heads*d, H, W) -> (B, heads, d, N)
        attn = (q.transpose(-2, -1) @ k) * self.scale + self.bias(h, w)  # (B, heads, N, N)
        x = (v @ attn.softmax(dim=-1).transpose(-2, -1)).reshape(b, self.dh, h, w)  # -> (B, heads*d, H, W)
        return self.proj(x)

    def extra_repr(self) -> str:
        return f"key_dim={self.key_dim}, num_heads={self.num_heads}, value_dim={self.d}, resolution={self.resolution}"


class LSNetBlock(nn.Module):
    """Token mixer then a residual FFN.

    Args:
        dim: channels.
        mixer: ``"repvgg"`` (RepVGG depthwise + squeeze-excitation), ``"lsconv"`` or ``"attention"``.
        key_dim, num_heads, attn_ratio, resolution: of the attention mixer.
        ffn_ratio: FFN expansion.
    """

    def __init__(
        self,
        dim: int,
        mixer: str,
        key_dim: int = 16,
        num_heads: int = 4,
        attn_ratio: float = 4.0,
        resolution: int = 7,
        ffn_ratio: float = 2.0,
    ) -> None:
        super().__init__()
        if mixer == "repvgg":
            self.mixer: nn.Module = RepVGGDW(dim)
            self.se: nn.Module = SqueezeExcite(dim, make_divisible(dim * 0.25))
        elif mixer == "lsconv":
            self.mixer, self.se = LSConv(dim), nn.Identity()
        elif mixer == "attention":
            self.mixer = _Residual(LSNetAttention(dim, key_dim, num_heads, attn_ratio, resolution))
            self.se = nn.Identity()
        else:
            raise ValueError(f"mixer must be one of ('repvgg', 'lsconv', 'attention'), got {mixer!r}")
        self.ffn = _Residual(_FFN(dim, int(dim * ffn_ratio)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn(self.se(self.mixer(x)))


class LSNetStage(nn.Module):
    """Optional 3x3 stride-2 depthwise ConvBN + 1x1 ConvBN (``downsample``), then ``depth`` blocks
    alternating RepVGG/SE (even) and LS conv or attention (odd)."""

    def __init__(self, in_dim: int, dim: int, depth: int, downsample: bool, attention: bool, **attn) -> None:
        super().__init__()
        if downsample:
            self.downsample: nn.Module = nn.Sequential(
                ConvBN(in_dim, in_dim, 3, 2, 1, groups=in_dim), ConvBN(in_dim, dim)
            )
        else:
            self.downsample = nn.Identity()
        odd = "attention" if attention else "lsconv"
        self.blocks = nn.Sequential(*(LSNetBlock(dim, "repvgg" if j % 2 == 0 else odd, **attn) for j in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class LSNet(DistilledClassifier):
    """LSNet image classifier.

    Args:
        embed_dims: channels per stage.
        depths: blocks per stage (0 allowed: the stage is only its downsampling).
        num_heads: attention heads per stage (used where ``attention_stages``).
        key_dims: attention key dim per stage.
        attention_stages: stages whose odd blocks use attention instead of LS convolution.
        img_size: input size the attention bias tables are made for (224: a 4x4 table in stage 4).
        num_classes: classes of the head (0: ``forward`` returns pooled features).
        in_chans: input channels.
        distillation: add the distillation head ``head_dist`` (DeiT style); in training ``forward``
            returns ``(head, head_dist)`` logits, in eval their mean.
        drop_rate: dropout before the classifier.

    Shape:
        ``(B, in_chans, H, W) -> (B, num_classes)``; features at strides 8, 16, 32, 64.
    """

    def __init__(
        self,
        embed_dims: Sequence[int] = (64, 128, 256, 384),
        depths: Sequence[int] = (0, 2, 8, 10),
        num_heads: Sequence[int] = (3, 3, 3, 4),
        key_dims: Sequence[int] = (16, 16, 16, 16),
        attention_stages: Sequence[bool] = (False, False, False, True),
        img_size: int = 224,
        num_classes: int = 1000,
        in_chans: int = 3,
        distillation: bool = False,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        n = len(embed_dims)
        if not len(depths) == len(num_heads) == len(key_dims) == len(attention_stages) == n:
            raise ValueError(
                "embed_dims, depths, num_heads, key_dims and attention_stages need one entry per stage, got "
                f"lengths {n}, {len(depths)}, {len(num_heads)}, {len(key_dims)}, {len(attention_stages)}"
            )
        if embed_dims[0] % 4:
            raise ValueError(
                f"embed_dims[0] must be divisible by 4 (the stem widths are /4 and /2), got {embed_dims[0]}"
            )
        d0 = embed_dims[0]
        self.num_classes, self.num_features, self.distillation = num_classes, embed_dims[-1], distillation
        self.stem = nn.Sequential(
            ConvBN(in_chans, d0 // 4, 3, 2, 1),
            nn.ReLU(),
            ConvBN(d0 // 4, d0 // 2, 3, 2, 1),
            nn.ReLU(),
            ConvBN(d0 // 2, d0, 3, 2, 1),
        )
        stages, resolution = [], img_size // 8
        for i in range(n):
            if i > 0:
                resolution = (resolution - 1) // 2 + 1  # size after a 3x3 stride-2 conv with padding 1
            attn = dict(
                key_dim=key_dims[i],
                num_heads=num_heads[i],
                attn_ratio=embed_dims[i] / (key_dims[i] * num_heads[i]),
                resolution=resolution,
            )
            in_dim = embed_dims[max(i - 1, 0)]
            stages.append(LSNetStage(in_dim, embed_dims[i], depths[i], i > 0, bool(attention_stages[i]), **attn))
        self.stages = nn.Sequential(*stages)
        self.feature_info = [
            dict(num_chs=d, reduction=8 * 2**i, module=f"stages.{i}") for i, d in enumerate(embed_dims)
        ]
        self.head_drop = nn.Dropout(drop_rate)
        self.reset_classifier(num_classes)


def _official_key(key: str) -> str | None:
    if key.endswith("attention_bias_idxs"):
        return None  # recomputed for every input size
    key = re.sub(r"^patch_embed\.", "stem.", key)
    m = re.match(r"^blocks(\d)\.(\d+)\.(.*)$", key)
    if m:
        stage, j, rest = int(m.group(1)) - 1, int(m.group(2)), m.group(3)
        if stage == 0:
            key = f"stages.0.blocks.{j}.{rest}"
        elif j < 2:
            key = f"stages.{stage}.downsample.{j}.{rest}"
        else:
            key = f"stages.{stage}.blocks.{j - 2}.{rest}"
    return re.sub(r"^(head|head_dist)\.l\.", r"\1.fc.", key)


def convert_official_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a THU-MIG/lsnet checkpoint's keys to subband's (a ``"model"`` entry is unwrapped;
    the attention index buffers are dropped)."""
    if "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    out = {}
    for key, value in state.items():
        new = _official_key(key)
        if new is not None:
            out[new] = value
    return out


_TITLE = "LSNet: See Large, Focus Small"
_SRC = "THU-MIG/lsnet model/lsnet.py {} (built and counted; GMACs by the official flops.py method; README: {})"


def _paper(params: int, gflops: float, source: str, notes: str = "") -> Paper:
    return Paper(
        title=_TITLE,
        arxiv="2503.23135",
        params=params,
        gflops=gflops,
        input_size=(3, 224, 224),
        source=source,
        notes=notes,
    )


def _variant(embed_dims: tuple[int, ...], depths: tuple[int, ...], kwargs: dict) -> LSNet:
    return LSNet(**{**dict(embed_dims=embed_dims, depths=depths, num_heads=(3, 3, 3, 4)), **kwargs})


@register_model(_paper(11_409_832, 0.316, _SRC.format("lsnet_t", "11.4M, 0.3G; training log n_parameters 11409832")))
def lsnet_t(**kwargs) -> LSNet:
    """LSNet-T: widths 64-128-256-384, depths 0-2-8-10."""
    return _variant((64, 128, 256, 384), (0, 2, 8, 10), kwargs)


@register_model(_paper(16_146_304, 0.539, _SRC.format("lsnet_s", "16.1M, 0.5G; training log n_parameters 16146304")))
def lsnet_s(**kwargs) -> LSNet:
    """LSNet-S: widths 96-192-320-448, depths 1-2-8-10."""
    return _variant((96, 192, 320, 448), (1, 2, 8, 10), kwargs)


@register_model(
    _paper(
        23_313_608,
        1.248,
        _SRC.format("lsnet_b", "23.2M, 1.3G"),
        notes="the official training log reports 23,812,272 parameters, which the released code does not build",
    )
)
def lsnet_b(**kwargs) -> LSNet:
    """LSNet-B: widths 128-256-384-512, depths 4-6-8-10."""
    return _variant((128, 256, 384, 512), (4, 6, 8, 10), kwargs)
