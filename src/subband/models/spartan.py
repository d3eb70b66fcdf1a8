"""SpaRTAN: "SpaRTAN: Spatial Reinforcement Token-based Aggregation Network for Visual Recognition"
(Pay, Lee, Ng, Tan et al.; IJCNN 2025; arXiv 2507.10999).

A four-stage CNN whose blocks are a MetaFormer pair, ``x + ls1 * SMixer(norm1(x))`` then
``x + ls2 * CMixer(norm2(x))`` (norm: one-group GroupNorm, eps 1e-6; layer scales start at 1e-5):

- **Spatial mixer** (:class:`SpatialMixer`, multi-order spatial kernels): a 1x1 conv to ``C/2``,
  then feature reinforcement ``x + g * (x - mean_hw(x))`` (``g`` per channel, starts at 1e-5), then
  two branches of different receptive fields, a 3x3 Conv-BN-GELU and a 3x3 dilation-2 conv followed
  by a 3x3 dilation-2 Conv-BN-GELU (9x9 reach), each gated by its own squeeze-excitation (reduction
  4); the two halves are concatenated and mixed by a 1x1 conv. In stages 3 and 4 the 3x3 convs are
  depthwise.
- **Wave channel aggregation** (:class:`WaveChannelMixer`): two 1x1 expansions to ``e * C``
  channels, ``theta = GELU(W_t x)`` and ``w = W_p x``; at every pixel the input's strongest channel
  ``m = argmax_c x`` picks one entry of each, and the map ``w * theta + w[m] * theta[m]`` is read as
  ``e * C / 2`` complex channels (consecutive channel pairs are real and imaginary parts) and
  multiplied by one learned complex number per channel pair (an amplitude and a phase: the "wave");
  then a 3x3 Conv-BN-GELU (depthwise in stages 1-2, ``C`` groups in stages 3-4), a
  squeeze-excitation (hidden ``C/4``) and a 1x1 projection back to ``C``.

Stem: 3x3 stride-2 Conv-BN-GELU to ``init_dim / 2`` and to ``init_dim``; between stages a 2x2
stride-2 Conv-BN-SiLU; head: global average pool -> linear. BatchNorm eps 1e-6 everywhere.

Checked against the official repository (henry-pay/SpaRTAN, ``src/model/spartan.py``,
``src/config/model/spartan.yaml``): depths 3-3-12-2, widths 32-64-128-256, expansion ratios
4-4-2-2, the grouping rule (dense 3x3 convs in the first ``num_stages // 2`` stages), bias-free
convs before every BatchNorm, 1x1 convs and SE convs with biases, the squeeze widths, the
initialisation (conv weights ``N(0, 2 / fan_out)`` with ``fan_out = k^2 C_out / groups``, zero
biases, linear truncated normal 0.02, the complex weights standard normal) and stochastic depth
``rate * i / total`` for block ``i`` (the official config's 0.1 is the builder's default here:
``drop_path_rate``). The official model built and counted has 3,820,296 parameters, the count
registered here; given the same weights the outputs are the same (bit for bit in eval mode at 224,
within 1e-7 in training mode; checked outside the test suite since the official code is not a
package), and
:func:`convert_official_state_dict` maps its checkpoints. The complex product is written in real
arithmetic, which is the same function and also runs where complex tensors do not (ONNX, half
precision); the official code computes it in float32 under autocast.

Differs from the official code: the stage layout follows the library's contract (``stem``,
``stages[i]`` = optional downsample then blocks, ``head.fc``) so ``features_only`` taps the end of
every stage (strides 4, 8, 16, 32); ``in_chans`` is free.

Shape:
    ``(B, in_chans, H, W) -> (B, num_classes)``; features at strides 4, 8, 16, 32.

Example:
    >>> model = create_model("spartan_t")
    >>> model(torch.randn(1, 3, 64, 64)).shape
    torch.Size([1, 1000])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import ConvBN, DropPath, SqueezeExcite
from ._features import StagedClassifier, rename_keys
from ._registry import Paper, register_model

__all__ = ["SpaRTAN", "SpaRTANBlock", "SpatialMixer", "WaveChannelMixer", "convert_official_state_dict"]

_EPS = 1e-6  # every BatchNorm and GroupNorm


def _conv_bn_act(c_in: int, c_out: int, k: int, act: type[nn.Module] = nn.GELU, **conv) -> nn.Sequential:
    return nn.Sequential(ConvBN(c_in, c_out, k, eps=_EPS, **conv), act())


class SpatialMixer(nn.Module):
    """Multi-order spatial kernels: 1x1 to ``C/2`` -> reinforcement -> (3x3 | two 3x3 dilation 2),
    each squeeze-excited -> concatenated -> 1x1.

    Args:
        dim: channels ``C`` (even).
        depthwise: the 3x3 convs depthwise (stages 3-4) instead of dense.
    """

    def __init__(self, dim: int, depthwise: bool = False) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"SpatialMixer needs an even number of channels, got {dim}")
        half = dim // 2
        g = half if depthwise else 1
        self.proj_in = nn.Conv2d(dim, half, 1)
        self.gamma = nn.Parameter(torch.full((1, half, 1, 1), 1e-5))
        self.h_conv = _conv_bn_act(half, half, 3, padding=1, groups=g)  # 3x3 reach
        self.l_conv = nn.Sequential(  # 9x9 reach
            nn.Conv2d(half, half, 3, padding=2, dilation=2, groups=g, bias=False),
            _conv_bn_act(half, half, 3, padding=2, dilation=2, groups=g),
        )
        self.h_attn = SqueezeExcite(half, half // 4)
        self.l_attn = SqueezeExcite(half, half // 4)
        self.proj_out = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj_in(x)  # (B, C, H, W) -> (B, C/2, H, W)
        x = x + self.gamma * (x - x.mean((2, 3), keepdim=True))
        x = torch.cat([self.h_attn(self.h_conv(x)), self.l_attn(self.l_conv(x))], dim=1)  # (B, C, H, W)
        return self.proj_out(x)


def complex_channel_scale(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x`` read as complex channels (pairs ``(2i, 2i+1)`` = real, imaginary) times ``weight``.

    Args:
        x: ``(B, 2K, H, W)``.
        weight: ``(..., K, 2)``, the real and imaginary part of one complex factor per pair.
    """
    b, c, h, w = x.shape
    a, s = weight.reshape(c // 2, 2).unbind(-1)  # (K,), (K,)
    re, im = x.view(b, c // 2, 2, h, w).unbind(2)  # (B, K, H, W) each
    a, s = a.view(1, -1, 1, 1), s.view(1, -1, 1, 1)
    return torch.stack((a * re - s * im, a * im + s * re), dim=2).view(b, c, h, w)


class WaveChannelMixer(nn.Module):
    """Wave-based channel aggregation (the official ``CMixer``).

    Args:
        dim: channels ``C``.
        expand_ratio: ``e`` (> 1); the hidden width ``e * C`` must be even.
        grouped: the 3x3 conv has ``C`` groups (stages 3-4) instead of being depthwise.
    """

    def __init__(self, dim: int, expand_ratio: int, grouped: bool = False) -> None:
        super().__init__()
        hidden = dim * expand_ratio
        if expand_ratio < 2 or hidden % 2 or dim < 4:
            raise ValueError(f"need expand_ratio >= 2, dim >= 4 and an even hidden width, got {dim} x {expand_ratio}")
        self.theta = nn.Conv2d(dim, hidden, 1)
        self.proj = nn.Conv2d(dim, hidden, 1)
        self.complex = nn.Parameter(torch.randn(1, 1, 1, hidden // 2, 2))  # official name and shape
        self.conv = _conv_bn_act(hidden, hidden, 3, padding=1, groups=dim if grouped else hidden)
        self.attn = SqueezeExcite(hidden, dim // 4)
        self.proj_out = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idx = x.argmax(dim=1, keepdim=True)  # (B, 1, H, W): each pixel's strongest input channel
        theta = F.gelu(self.theta(x))  # (B, eC, H, W)
        weight = self.proj(x)
        feat = weight * theta + weight.gather(1, idx) * theta.gather(1, idx)
        feat = complex_channel_scale(feat, self.complex)
        return self.proj_out(self.attn(self.conv(feat)))  # (B, eC, H, W) -> (B, C, H, W)


class SpaRTANBlock(nn.Module):
    """``x + ls1 * SMixer(GN(x))``, then ``x + ls2 * CMixer(GN(x))`` (with stochastic depth).

    Args:
        dim: channels.
        expand_ratio: of the channel mixer.
        late: a stage-3/4 block (depthwise spatial mixer, grouped channel mixer).
        drop_path: stochastic-depth probability.
    """

    def __init__(self, dim: int, expand_ratio: int, late: bool = False, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm_1 = nn.GroupNorm(1, dim, eps=_EPS)
        self.smixer = SpatialMixer(dim, depthwise=late)
        self.norm_2 = nn.GroupNorm(1, dim, eps=_EPS)
        self.cmixer = WaveChannelMixer(dim, expand_ratio, grouped=late)
        self.scale_1 = nn.Parameter(torch.full((1, dim, 1, 1), 1e-5))
        self.scale_2 = nn.Parameter(torch.full((1, dim, 1, 1), 1e-5))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.scale_1 * self.smixer(self.norm_1(x)))
        return x + self.drop_path(self.scale_2 * self.cmixer(self.norm_2(x)))


class _Head(nn.Module):
    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean((2, 3))  # (B, C, H, W) -> (B, C)
        return x if pre_logits else self.fc(x)


def _init(m: nn.Module) -> None:
    """Official initialisation: conv ``N(0, 2 / fan_out)``, linear truncated normal 0.02, zero biases."""
    if isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
        nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
    elif isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
    if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
        nn.init.zeros_(m.bias)


class SpaRTAN(StagedClassifier):
    """SpaRTAN image classifier.

    Args:
        depths: blocks per stage.
        dims: channels per stage (the stem ends at ``dims[0]``).
        expand_ratios: of each stage's channel mixers.
        num_classes: classes of the head (0: ``forward`` returns pooled features).
        in_chans: input channels.
        drop_path_rate: stochastic depth; block ``i`` of ``n`` drops with ``rate * i / n``.

    Shape:
        ``(B, in_chans, H, W) -> (B, num_classes)``.
    """

    def __init__(
        self,
        depths: Sequence[int] = (3, 3, 12, 2),
        dims: Sequence[int] = (32, 64, 128, 256),
        expand_ratios: Sequence[int] = (4, 4, 2, 2),
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_path_rate: float = 0.1,
    ) -> None:
        super().__init__()
        if not len(depths) == len(dims) == len(expand_ratios):
            raise ValueError(f"depths {depths}, dims {dims} and expand_ratios {expand_ratios} must have equal lengths")
        if any(d % 8 for d in dims):
            raise ValueError(f"every width must be a multiple of 8, got {tuple(dims)}")
        self.num_classes, self.num_features = num_classes, dims[-1]
        self.stem = nn.Sequential(
            _conv_bn_act(in_chans, dims[0] // 2, 3, stride=2, padding=1),
            _conv_bn_act(dims[0] // 2, dims[0], 3, stride=2, padding=1),
        )
        total, k, stages = sum(depths), 0, []
        for i, (depth, dim, ratio) in enumerate(zip(depths, dims, expand_ratios)):
            layers = [_conv_bn_act(dims[i - 1], dim, 2, act=nn.SiLU, stride=2)] if i > 0 else []
            for _ in range(depth):
                layers.append(
                    SpaRTANBlock(dim, ratio, late=i >= len(depths) // 2, drop_path=drop_path_rate * k / total)
                )
                k += 1
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.feature_info = [dict(num_chs=d, reduction=4 * 2**i, module=f"stages.{i}") for i, d in enumerate(dims)]
        self.head = _Head(self.num_features, num_classes)
        self.apply(_init)


def convert_official_state_dict(state: dict[str, torch.Tensor], depths: Sequence[int] = (3, 3, 12, 2)) -> dict:
    """A checkpoint of the official ``SpaRTAN`` (``conv``, flat ``layers.i``, ``linear``) in this
    module's names (``stem``, ``stages.s.j``, ``head.fc``; ConvBN's ``c`` / ``bn``; SE ``fc1`` / ``fc2``)."""
    flat: list[tuple[int, int]] = []  # official: blocks of stage 0, downsample, blocks of stage 1, ...
    for s, depth in enumerate(depths):
        flat += [(s, int(s > 0) + j) for j in range(depth)]  # a stage here starts with its downsample
        if s < len(depths) - 1:
            flat.append((s + 1, 0))
    rules = [(rf"^layers\.{n}\.", f"stages.{s}.{j}.") for n, (s, j) in enumerate(flat)]
    state = rename_keys(state, [*rules, (r"^conv\.", "stem."), (r"^linear\.", "head.fc.")])
    inner = [  # ConvNormAct(conv, norm) -> Sequential(ConvBN(c, bn), act); SELayer -> SqueezeExcite
        (r"\.l_conv\.0\.conv\.", ".l_conv.0."),  # the one ConvNormAct without norm: a plain conv
        (r"\.(\d+|h_conv|conv)\.conv\.", r".\1.0.c."),
        (r"\.(\d+|h_conv|conv)\.norm\.", r".\1.0.bn."),
        (r"\.squeeze\.", ".fc1."),
        (r"\.expand\.", ".fc2."),
    ]
    return rename_keys(state, inner)


def _paper(params: int, gflops: float | None, source: str, notes: str = "") -> Paper:
    return Paper(
        title="SpaRTAN: Spatial Reinforcement Token-based Aggregation Network for Visual Recognition",
        arxiv="2507.10999",
        params=params,
        gflops=gflops,
        input_size=(3, 224, 224),
        source=source,
        notes=notes,
    )


@register_model(
    _paper(
        3_820_296,
        None,
        "henry-pay/SpaRTAN src/config/model/spartan.yaml (built and counted); abstract: 3.8M params, 1.0 GFLOPs",
        notes="FLOPs not registered: torch.utils.flop_counter counts 0.80 GMACs at 224 (fvcore 0.82), "
        "short of the abstract's 1.0 G by more than the contract's 5%; which counter the paper used is not stated",
    )
)
def spartan_t(**kwargs) -> SpaRTAN:
    """SpaRTAN (the official configuration, 77.7% ImageNet-1k top-1 per the abstract)."""
    return SpaRTAN(**kwargs)
