"""Pyramid convolution, integrated batch normalisation and the SEPC neck: a 3-D convolution across
the levels of a feature pyramid (scale x height x width) and BatchNorm over the whole pyramid.

Paper: Wang, Zhang, Yu, Feng, Zhang, "Scale-Equalizing Pyramid Convolution for Object Detection"
(CVPR 2020, arXiv 2005.03101). Checked against the official code jshilong/SEPC
(``sepc/self_mmdet/models/necks/sepc.py``, ``sepc/self_mmdet/ops/dcn/sepc_dconv.py``,
``sepc/exp/retina/*_retinanet.py``); code here is written here.

- :class:`PyramidConv` (PConv): for levels ``P_0`` (finest) .. ``P_{L-1}``, output level ``l`` is
  ``same(P_l) + down(P_{l-1}) + up(P_{l+1})`` where ``down`` is a stride-2 ``k x k`` conv of the
  finer level and ``up`` is a ``k x k`` conv of the coarser level *followed* by bilinear
  upsampling with ``align_corners=True`` (the official ``F.upsample_bilinear``) to ``P_l``'s size.
  The three kernels (each with its own bias) are shared by all levels; the terms that would read
  a level beyond the pyramid are left out (zero padding in scale). Officially the weights start
  from ``N(0, 0.01)`` and the biases from zero.
- Scale-equalizing PConv (SEPC, ``deform=True``): each of the three kernels also owns an offset
  conv (``2 k^2`` channels, zero-initialised) and is a deformable convolution v1 (no modulation;
  :mod:`subband.layers.deform_conv`) at every *output* level ``l >= 1``; at ``l = 0`` (P3) all
  three are plain convolutions with the same weights. "Aligns the shared kernel only at
  high-level feature maps."
- :class:`IntegratedBatchNorm` (iBN): the levels flattened and concatenated,
  ``(B, C, 1, sum_l H_l W_l)``, go through one ``BatchNorm2d`` (statistics and running stats of
  the whole pyramid; eval uses the running stats).
- :class:`SEPCNeck`: ``num_convs`` x (PConv -> iBN -> ReLU) over the pyramid; with
  ``branches=True`` also the official neck's last part, two more shared convs (classification and
  regression branch, each -> iBN -> ReLU, deformable at levels >= 1 when ``branch_deform``) whose
  outputs replace the first convs of a RetinaNet-style head (official head ``stacked_convs=0``).
  Official variants (``pconv_deform``, ``lcconv_deform``, ``iBN``): PConv (F, F, F), iBN+PConv
  (F, F, T), SEPC-lite (F, T, T), SEPC (T, T, T), all ``Pconv_num=4``, 256 channels.

What differs from the official code: the official neck takes the five 256-channel FPN outputs
P3-P7 as given; this one takes any backbone's ``features_only`` pyramid and first maps each level
to ``out_channels`` with a 1x1 conv (``lateral=False``: none, channels must already agree) and
adds ``num_outs - len(in_channels)`` coarser levels by stride-2 3x3 convs (the first from the
coarsest lateral output, each further one after a ReLU, as RetinaNet's P6/P7); laterals and extra
convs start Xavier-uniform (as mmdet's FPN). There is no FPN top-down path. ``level_stride=1``
(levels of equal size) is an extension, under which the PConv is exactly a 3-D convolution.
Detection heads, losses and training are out of scope.

Reported (official README, R50-FPN, 1x schedule, COCO val box AP)::

    detector     PConv  iBN+PConv  SEPC-lite  SEPC   baseline
    RetinaNet    37.0   37.8       38.5       39.6   -
    FreeAnchor   39.7   41.0       41.9       43.0   -
    FSAF         38.6   39.1       40.5       41.6   36.8

Shape:
    ``[(B, C_in, H_l, W_l) for l < L]`` -> ``[(B, C_out, H_l, W_l)]`` with
    ``H_{l+1} = ceil(H_l / 2)`` (what a stride-2, padding ``k // 2`` conv gives; pad the image to
    a multiple of the coarsest stride).

Example:
    >>> pyramid = [torch.randn(2, 16, s, s) for s in (16, 8, 4)]
    >>> [y.shape[2] for y in PyramidConv(16, 8)(pyramid)]
    [16, 8, 4]
    >>> neck = SEPCNeck([16, 32, 64], out_channels=24, num_outs=5)
    >>> [tuple(y.shape) for y in neck([torch.randn(2, c, s, s) for c, s in ((16, 16), (32, 8), (64, 4))])]
    [(2, 24, 16, 16), (2, 24, 8, 8), (2, 24, 4, 4), (2, 24, 2, 2), (2, 24, 1, 1)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .deform_conv import deform_conv2d

__all__ = ["LevelConv", "PyramidConv", "IntegratedBatchNorm", "integrated_batch_norm", "SEPCNeck"]


class LevelConv(nn.Module):
    """One ``k x k`` kernel shared by all pyramid levels; with ``deform`` it is a deformable conv
    (offsets from its own zero-initialised conv) at levels ``>= deform_start_level``.

    Args:
        in_channels, out_channels, kernel_size (odd), stride, dilation: as ``nn.Conv2d`` with
            padding ``dilation * (kernel_size - 1) // 2``.
        deform: deformable at the higher levels (official ``part_deform``).
        deform_start_level: first deformable level (official ``start_level = 1``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        deform: bool = False,
        deform_start_level: int = 1,
    ) -> None:
        super().__init__()
        if min(in_channels, out_channels, stride, dilation) < 1 or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"need positive channels, stride and dilation and an odd kernel_size, got {in_channels}, "
                f"{out_channels}, stride={stride}, dilation={dilation}, kernel_size={kernel_size}"
            )
        if deform_start_level < 0:
            raise ValueError(f"deform_start_level must be >= 0, got {deform_start_level}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.dilation, self.padding = stride, dilation, dilation * (kernel_size - 1) // 2
        self.deform, self.deform_start_level = deform, deform_start_level
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        self.conv_offset = (
            nn.Conv2d(in_channels, 2 * kernel_size**2, kernel_size, stride, self.padding, dilation) if deform else None
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Official initialisation: weight ``N(0, 0.01)``, zero bias, zero offsets."""
        nn.init.normal_(self.weight, 0.0, 0.01)
        nn.init.zeros_(self.bias)
        if self.conv_offset is not None:
            nn.init.zeros_(self.conv_offset.weight)
            nn.init.zeros_(self.conv_offset.bias)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor, level: int) -> torch.Tensor:
        if self.conv_offset is None or level < self.deform_start_level:
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)
        offset = self.conv_offset(x)  # (B, 2 k^2, H_out, W_out): (dy, dx) per tap
        return deform_conv2d(x, offset, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        s += f", dilation={self.dilation}" if self.dilation != 1 else ""
        return s + (f", deform from level {self.deform_start_level}" if self.deform else "")


def _check_pyramid(features: Sequence[torch.Tensor], channels: int, min_levels: int = 1) -> None:
    if not isinstance(features, (list, tuple)) or len(features) < min_levels:
        raise ValueError(f"expected a list of at least {min_levels} feature maps (B, C, H, W), got {type(features)}")
    for i, f in enumerate(features):
        if f.ndim != 4 or f.shape[0] != features[0].shape[0] or f.shape[1] != channels:
            raise ValueError(
                f"level {i} has shape {tuple(f.shape)}; every level must be (B={features[0].shape[0]}, C={channels}, H, W)"
            )


class PyramidConv(nn.Module):
    """Pyramid convolution: ``out_l = same(P_l) + down(P_{l-1}) + upsample(up(P_{l+1}))``.

    Args:
        in_channels, out_channels: channels of every input and output level.
        kernel_size: odd spatial kernel size of the three kernels (official 3).
        dilation: spatial dilation (padding ``dilation * (kernel_size - 1) // 2``).
        deform: scale-equalizing PConv (SEPC): deformable kernels at levels ``>= deform_start_level``.
        deform_start_level: first output level whose three kernels are deformable (official 1).
        level_stride: size ratio of consecutive levels and stride of ``down``: 2 (a pyramid) or 1
            (equal sizes; then the layer is a 3-D conv with kernel ``(3, k, k)``, zero-padded in level).
        align_corners: of the bilinear upsampling (official ``True``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        dilation: int = 1,
        deform: bool = False,
        deform_start_level: int = 1,
        level_stride: int = 2,
        align_corners: bool = True,
    ) -> None:
        super().__init__()
        if level_stride not in (1, 2):
            raise ValueError(f"level_stride must be 1 or 2, got {level_stride}")
        kw = dict(kernel_size=kernel_size, dilation=dilation, deform=deform, deform_start_level=deform_start_level)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.level_stride, self.align_corners = level_stride, align_corners
        self.up = LevelConv(in_channels, out_channels, **kw)  # official Pconv[0]: coarser level, then upsampled
        self.same = LevelConv(in_channels, out_channels, **kw)  # official Pconv[1]
        self.down = LevelConv(in_channels, out_channels, stride=level_stride, **kw)  # official Pconv[2]

    def reset_parameters(self) -> None:
        for conv in (self.up, self.same, self.down):
            conv.reset_parameters()

    def check_sizes(self, sizes: Sequence[tuple[int, int]]) -> None:
        """Raise ValueError unless each level is what ``down`` makes of the finer one."""
        d = self.down
        for i in range(1, len(sizes)):
            want = tuple(
                (s + 2 * d.padding - d.dilation * (d.kernel_size - 1) - 1) // d.stride + 1 for s in sizes[i - 1]
            )
            if tuple(sizes[i]) != want:
                raise ValueError(
                    f"pyramid level {i} is {tuple(sizes[i])} but level {i - 1} {tuple(sizes[i - 1])} maps to {want} "
                    f"(levels must shrink by level_stride={self.level_stride}, rounding up: pad the input image)"
                )

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        _check_pyramid(features, self.in_channels, min_levels=2)
        self.check_sizes([tuple(f.shape[2:]) for f in features])
        out = []
        for level, x in enumerate(features):
            y = self.same(x, level)
            if level > 0:
                y = y + self.down(features[level - 1], level)
            if level < len(features) - 1:
                z = self.up(features[level + 1], level)  # conv at the coarser size, then upsample
                if z.shape[2:] != y.shape[2:]:
                    z = F.interpolate(z, size=y.shape[2:], mode="bilinear", align_corners=self.align_corners)
                y = y + z
            out.append(y)
        return out

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.same.kernel_size}"
        s += f", level_stride={self.level_stride}" if self.level_stride != 2 else ""
        return s + (f", deform from level {self.same.deform_start_level}" if self.same.deform else "")


def _integrated(features: Sequence[torch.Tensor], norm: Callable[[torch.Tensor], torch.Tensor]) -> list[torch.Tensor]:
    """``norm`` applied to all levels' pixels at once."""
    _check_pyramid(features, features[0].shape[1] if len(features) else 0)
    b, c = features[0].shape[:2]
    flat = torch.cat([f.reshape(b, c, 1, -1) for f in features], dim=-1)  # (B, C, 1, sum_l H_l W_l)
    parts = norm(flat).split([f.shape[2] * f.shape[3] for f in features], dim=-1)
    return [p.reshape(f.shape) for p, f in zip(parts, features)]  # (B, C, 1, H_l W_l) -> (B, C, H_l, W_l)


def integrated_batch_norm(
    features: Sequence[torch.Tensor],
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> list[torch.Tensor]:
    """``F.batch_norm`` with statistics over the batch and every pixel of every level (arguments
    as ``F.batch_norm``; running stats are updated in place when ``training``)."""
    return _integrated(
        features, lambda t: F.batch_norm(t, running_mean, running_var, weight, bias, training, momentum, eps)
    )


class IntegratedBatchNorm(nn.Module):
    """Integrated BatchNorm (iBN): one ``nn.BatchNorm2d`` (``self.bn``) over the whole pyramid.

    ``nn.SyncBatchNorm.convert_sync_batchnorm`` swaps ``self.bn`` and keeps the integration.

    Args:
        num_features, eps, momentum, affine, track_running_stats: as ``nn.BatchNorm2d``.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, eps, momentum, affine, track_running_stats)

    def reset_parameters(self) -> None:
        self.bn.reset_parameters()

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return _integrated(features, self.bn)


class SEPCNeck(nn.Module):
    """SEPC neck: laterals (+ extra coarser levels), then ``num_convs`` x (PConv -> iBN -> ReLU).

    Args:
        in_channels: channels of the input levels, finest first (e.g. ``feature_info.channels()``).
        out_channels: width of every output level (official 256).
        num_convs: stacked pyramid convolutions (official ``Pconv_num = 4``).
        ibn: integrated BatchNorm after each PConv (and branch conv); without it only ReLU.
        deform: SEPC (deformable PConv kernels at levels >= ``deform_start_level``); ``False``: PConv.
        num_outs: output levels (default ``len(in_channels)``); more adds stride-2 3x3 convs.
        branches: also the official classification / regression branch convs; ``forward`` then
            returns ``[(cls_l, reg_l) for each level]`` instead of ``[P_l]``.
        branch_deform: the branch convs deformable at the higher levels (official ``lcconv_deform``).
        lateral: 1x1 convs to ``out_channels`` (``False``: ``in_channels`` must all be ``out_channels``).
        kernel_size, deform_start_level: of the PConvs and branch convs (official 3, 1).

    Official variants: PConv ``ibn=False, deform=False, branch_deform=False``; iBN+PConv ``ibn=True,
    deform=False, branch_deform=False``; SEPC-lite ``deform=False``; SEPC the defaults (all with
    ``branches=True``).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int = 256,
        num_convs: int = 4,
        ibn: bool = True,
        deform: bool = True,
        num_outs: int | None = None,
        branches: bool = False,
        branch_deform: bool = True,
        lateral: bool = True,
        kernel_size: int = 3,
        deform_start_level: int = 1,
    ) -> None:
        super().__init__()
        in_channels = [int(c) for c in in_channels]
        num_outs = len(in_channels) if num_outs is None else num_outs
        if not in_channels or min(in_channels) < 1 or out_channels < 1:
            raise ValueError(f"in_channels must be a non-empty list of positive ints, got {in_channels}")
        if num_outs < max(2, len(in_channels)):
            raise ValueError(f"num_outs must be >= 2 and >= len(in_channels)={len(in_channels)}, got {num_outs}")
        if num_convs < 0:
            raise ValueError(f"num_convs must be >= 0, got {num_convs}")
        if not lateral and any(c != out_channels for c in in_channels):
            raise ValueError(f"lateral=False needs every in_channels == out_channels={out_channels}, got {in_channels}")
        self.in_channels, self.out_channels, self.num_outs = in_channels, out_channels, num_outs
        self.ibn, self.branches = ibn, branches
        self.laterals = nn.ModuleList(nn.Conv2d(c, out_channels, 1) if lateral else nn.Identity() for c in in_channels)
        self.extra = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, 3, 2, 1) for _ in range(num_outs - len(in_channels))
        )
        kw = dict(kernel_size=kernel_size, deform_start_level=deform_start_level)
        self.pconvs = nn.ModuleList(
            PyramidConv(out_channels, out_channels, deform=deform, **kw) for _ in range(num_convs)
        )
        self.norms = nn.ModuleList(IntegratedBatchNorm(out_channels) for _ in range(num_convs if ibn else 0))
        if branches:
            self.cls_conv = LevelConv(out_channels, out_channels, deform=branch_deform, **kw)
            self.reg_conv = LevelConv(out_channels, out_channels, deform=branch_deform, **kw)
            self.branch_norms = nn.ModuleList(IntegratedBatchNorm(out_channels) for _ in range(2 if ibn else 0))
        self.reset_parameters()

    @classmethod
    def from_backbone(cls, backbone: nn.Module, **kwargs) -> SEPCNeck:
        """A neck for ``backbone`` (a ``features_only`` model): ``in_channels`` from its
        ``feature_info``, whose reductions must double from level to level."""
        info = getattr(backbone, "feature_info", None)
        if info is None or not hasattr(info, "channels"):
            raise ValueError(f"{type(backbone).__name__} has no feature_info; create it with features_only=True")
        red = info.reduction()
        if any(b != 2 * a for a, b in zip(red, red[1:])):
            raise ValueError(f"SEPC needs reductions that double from level to level, got {red}")
        return cls(info.channels(), **kwargs)

    def reset_parameters(self) -> None:
        """Laterals and extra convs Xavier-uniform (mmdet FPN), PConvs and branches as officially."""
        for conv in [*self.laterals, *self.extra]:
            if isinstance(conv, nn.Conv2d):
                nn.init.xavier_uniform_(conv.weight)
                nn.init.zeros_(conv.bias)  # type: ignore[arg-type]
        for m in [*self.pconvs, *self.norms]:
            m.reset_parameters()
        if self.branches:
            for m in [self.cls_conv, self.reg_conv, *self.branch_norms]:
                m.reset_parameters()

    def _norm_relu(self, features: list[torch.Tensor], norm: nn.Module | None) -> list[torch.Tensor]:
        return [F.relu(f) for f in (norm(features) if norm is not None else features)]

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor] | list[tuple[torch.Tensor, torch.Tensor]]:
        if not isinstance(features, (list, tuple)) or len(features) != len(self.in_channels):
            raise ValueError(f"expected a list of {len(self.in_channels)} feature maps, got {type(features).__name__}")
        for i, (f, c) in enumerate(zip(features, self.in_channels)):
            if f.ndim != 4 or f.shape[1] != c:
                raise ValueError(f"level {i} must be (B, {c}, H, W), got {tuple(f.shape)}")
        x = [lat(f) for lat, f in zip(self.laterals, features)]
        for i, conv in enumerate(self.extra):
            x.append(conv(x[-1] if i == 0 else F.relu(x[-1])))  # P6 from the coarsest level, P7 from ReLU(P6)
        for i, pconv in enumerate(self.pconvs):
            x = self._norm_relu(pconv(x), self.norms[i] if self.ibn else None)
        if not self.branches:
            return x
        cls = [self.cls_conv(f, level) for level, f in enumerate(x)]
        reg = [self.reg_conv(f, level) for level, f in enumerate(x)]
        cls = self._norm_relu(cls, self.branch_norms[0] if self.ibn else None)
        reg = self._norm_relu(reg, self.branch_norms[1] if self.ibn else None)
        return list(zip(cls, reg))

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, num_outs={self.num_outs}"
