"""MobileMamba: "MobileMamba: Lightweight Multi-Receptive Visual Mamba Network" (He, Zhang, Cai, Chen,
Hu, Gan, Wang, Wang, Wu, Xie; CVPR 2025; arXiv 2411.15941).

A three-stage classifier on a stride-16 stem (four 3x3 stride-2 Conv-BNs, widths ``d/8, d/4, d/2,
d``, ReLU between). Every block is ``x + DropPath(ffn1(dw1(mixer(ffn0(dw0(x))))))``, each of the five
inner steps residual: ``dw``: a 3x3 depthwise Conv-BN, ``ffn``: 1x1 Conv-BN (x2) -> ReLU -> 1x1
Conv-BN, both starting at zero (BN scale 0), and ``mixer`` the **MRFFI** module
(multi-receptive field feature interaction, :class:`MRFFI`): the channels are split into

- a *global* part, ``round16(int(global_ratio * C))`` channels (nearest multiple of 16), mixed by
  **WTE-Mamba** (:class:`WTEMamba`): an SS2D (:class:`~subband.layers.ss2d.SS2D`: d_state 1,
  ``ssm_ratio`` 2, two scans (row-major and reversed), BN projections, VMamba's ``"v2"`` init)
  scaled per channel, plus a wavelet branch: a one-level Haar DWT (:func:`~subband.wavelets.dwt2`),
  a depthwise ``k x k`` conv on the four bands, a per-band-channel scale (initialised to 0.1) and the
  inverse DWT;
- a *local* part, ``int(local_ratio * C)`` channels (what is left if that is too many), mixed by
  **MK-DeConv** (:class:`MKDeConv`): depthwise ``k x k`` Conv-BN -> ReLU -> depthwise 1x1 Conv-BN,
  with ``k`` = 7, 5, 3 in the three stages;
- the rest, passed through unchanged (*eliminate redundant identity*);

then concatenated and projected (ReLU -> 1x1 Conv-BN starting at zero). Between stages: residual
``dw`` + ``ffn`` at the old width, a patch merging (1x1 Conv-BN to 4x -> ReLU -> 3x3 stride-2
depthwise Conv-BN -> ReLU -> squeeze-excitation (1/4) -> 1x1 Conv-BN), residual ``dw`` + ``ffn`` at
the new width (these ``dw`` BNs start at 1). Head: global average pool -> BatchNorm1d -> linear.

Checked against the official repository (lewandofskee/MobileMamba, ``model/mobilemamba/mobilemamba.py``
with ``CFG_MobileMamba_{T2,T4,S6,B1,B2,B4}``, ``model/lib_mamba/vmambanew.py`` ``SS2D`` with
``forward_type="v052d"``, ``k_group=2``, ``initialize="v2"``, ``csm_tritonk2.py`` for the scan
order; ``configs/mobilemamba/*.py``): widths, depths, ratios, kernels, ``ssm_ratio`` 2, the channel
rounding, the zero-initialised BNs, the SS2D pieces (1x1 Conv-BN in/out projections, depthwise 3x3
conv with bias, SiLU, ``dt_rank = ceil(C / 16)``, LayerNorm (eps 1e-5) before the ``silu(z)`` gate),
the wavelet branch (the official db1 filters as a strided grouped conv with zero padding of odd
sizes compute exactly our ``dwt2(x, "haar", mode="zero")``, band order ``a, h, v, d`` per channel),
the BN + linear head. The configs train without the distillation head (``distillation=False``); it
is available here as an option. Built and counted, the official models have the parameters
registered in ``Paper.params`` (8,836,890 / 14,176,090 / 15,036,632 / 17,122,849 for T2 / T4 / S6 /
B1-B4); those counts include the fixed Haar filters the official code stores as frozen parameters
(``32 C`` per WTE-Mamba; here non-persistent buffers) and the BatchNorms. Parameter names are the
official ones except ``patch_embed`` -> ``stem``, ``blocks1..3`` -> ``stages.i.downsample`` /
``stages.i.blocks``, ``mixer.m.attn`` -> ``mixer.m``, ``global_atten`` -> ``ssm``,
``wavelet_convs.0`` -> ``wavelet_conv``, the two scales as plain parameters, MK-DeConv's
``dwconv3x3/bn1/dwconv1x1/bn2`` -> ``conv.{c,bn}/pw.{c,bn}`` and ``head.l`` -> ``head.fc``;
:func:`convert_official_state_dict` maps a checkpoint. :meth:`MobileMamba.fuse` folds every
BatchNorm into the conv or linear layer before it, as the official ``replace_batchnorm`` does.
Given the same (randomised) weights, the outputs equal the official model's run on the CPU (its
sequential reference scan, batch 1) to 3e-7 in float32 for T2, T4, S6, B1 at their resolutions and
T2 at 97x97, also after ``fuse()`` (6.6e-7); in float64 (the official scan and Haar filters kept in
float64, its merge per sample, see below), to 6e-16 in eval (T2) and 2e-13 in training mode with
batch statistics (T2 at 192, B1 at 128), gradients to a relative 1e-10 (checked outside the test
suite, the official code not being a package).

Differs from the official code: the selective scan is the pure-PyTorch chunked scan
(:func:`~subband.layers.selective_scan`, chunks of 8 steps) instead of the CUDA kernel. The two
scan directions are merged per sample, as the official GPU (Triton) kernel does; the official
PyTorch fallback of that merge (``cross_merge_fwd`` with ``scans=2``, used on the CPU) broadcasts
over the batch and sums the forward scans of all samples, so it agrees with this code only at batch
size 1. Only one wavelet level (the only one the official models use). B1, B2 and B4 are one
architecture at three input sizes (256, 384, 512), registered separately for their metadata. The †
variants of the README (T2†, ...) are the same architectures trained for 1000 instead of 300 epochs
with knowledge distillation from a TResNet-L teacher.

Shape:
    ``(B, in_chans, H, W) -> (B, num_classes)``; ``features_only``: the three stage outputs at
    strides 16, 32, 64 (``ceil`` of the input size).

Example:
    >>> model = create_model("mobilemamba_t2")
    >>> model(torch.randn(2, 3, 192, 192)).shape
    torch.Size([2, 1000])
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import nn

from ..layers import SS2D, ConvBN, DropPath, SqueezeExcite, make_divisible
from ..wavelets import dwt2, idwt2
from ._features import DistilledClassifier
from ._registry import Paper, register_model

__all__ = ["MobileMamba", "MobileMambaBlock", "MRFFI", "WTEMamba", "MKDeConv", "mrffi_split"]
__all__ += ["convert_official_state_dict"]


def _round16(n: int) -> int:
    """Nearest multiple of 16 (ties up), the official ``nearest_multiple_of_16``."""
    lower = n // 16 * 16
    return lower if n - lower < lower + 16 - n else lower + 16


def mrffi_split(dim: int, global_ratio: float, local_ratio: float) -> tuple[int, int, int]:
    """``(global, local, identity)`` channels of an MRFFI module of width ``dim``."""
    if not (0 <= global_ratio <= 1 and 0 <= local_ratio <= 1):
        raise ValueError(f"global_ratio and local_ratio must be in [0, 1], got {global_ratio}, {local_ratio}")
    g = _round16(int(global_ratio * dim))
    if g > dim:
        raise ValueError(f"global_ratio={global_ratio} of dim={dim} rounds to {g} > {dim} channels")
    local = int(local_ratio * dim)
    local = dim - g if g + local > dim else local
    return g, local, dim - g - local


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


class WTEMamba(nn.Module):
    """Wavelet-transform-enhanced Mamba: ``base_scale * SS2D(x) + IDWT(scale * dwconv(DWT(x)))``.

    Args:
        dim: channels.
        kernel_size: side of the depthwise conv on the Haar bands (odd).
        ssm_ratio: SS2D expansion.
        d_state: SS2D state size.
    """

    def __init__(self, dim: int, kernel_size: int = 5, ssm_ratio: float = 2.0, d_state: int = 1) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        self.dim = dim
        self.ssm = SS2D(dim, d_state=d_state, ssm_ratio=ssm_ratio, scans="bidi", init="simple", projection="conv_bn")
        self.base_scale = nn.Parameter(torch.ones(1, dim, 1, 1))
        c4 = 4 * dim
        self.wavelet_conv = nn.Conv2d(c4, c4, kernel_size, padding=kernel_size // 2, groups=c4, bias=False)
        self.wavelet_scale = nn.Parameter(torch.full((1, c4, 1, 1), 0.1))

    def wavelet(self, x: torch.Tensor) -> torch.Tensor:
        """The wavelet branch alone, ``(B, C, H, W) -> (B, C, H, W)``."""
        b, c, h, w = x.shape
        a, (dh, dv, dd) = dwt2(x, "haar", mode="zero")  # 4 x (B, C, ceil(H/2), ceil(W/2))
        bands = torch.stack([a, dh, dv, dd], 2).flatten(1, 2)  # (B, C, 4, h, w) -> (B, 4C, h, w)
        bands = self.wavelet_conv(bands) * self.wavelet_scale
        a, dh, dv, dd = bands.unflatten(1, (c, 4)).unbind(2)  # (B, 4C, h, w) -> 4 x (B, C, h, w)
        return idwt2((a, (dh, dv, dd)), "haar", mode="zero")[..., :h, :w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ssm(x) * self.base_scale + self.wavelet(x)


class MKDeConv(nn.Module):
    """Depthwise ``k x k`` ConvBN -> ReLU -> depthwise 1x1 ConvBN (the local branch of MRFFI)."""

    def __init__(self, dim: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        self.conv = ConvBN(dim, dim, kernel_size, 1, kernel_size // 2, groups=dim)
        self.act = nn.ReLU()
        self.pw = ConvBN(dim, dim, 1, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.act(self.conv(x)))


class MRFFI(nn.Module):
    """Multi-receptive field feature interaction: WTE-Mamba on the global channels, MK-DeConv on the
    local ones, identity on the rest, then ReLU -> 1x1 ConvBN (BN scale initialised to 0).

    Args:
        dim: channels.
        global_ratio, local_ratio: channel shares (see :func:`mrffi_split`).
        kernel_size: of the wavelet-band conv and of MK-DeConv.
        ssm_ratio: SS2D expansion.
    """

    def __init__(
        self,
        dim: int,
        global_ratio: float = 0.8,
        local_ratio: float = 0.2,
        kernel_size: int = 5,
        ssm_ratio: float = 2.0,
    ) -> None:
        super().__init__()
        self.splits = mrffi_split(dim, global_ratio, local_ratio)
        g, local, _ = self.splits
        self.global_op: nn.Module = WTEMamba(g, kernel_size, ssm_ratio) if g else nn.Identity()
        self.local_op: nn.Module = MKDeConv(local, kernel_size) if local else nn.Identity()
        self.proj = nn.Sequential(nn.ReLU(), ConvBN(dim, dim, bn_weight_init=0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xg, xl, xi = x.split(self.splits, dim=1)  # (B, C, H, W) -> global, local, identity channels
        return self.proj(torch.cat([self.global_op(xg), self.local_op(xl), xi], dim=1))

    def extra_repr(self) -> str:
        return "global={}, local={}, identity={}".format(*self.splits)


class MobileMambaBlock(nn.Module):
    """``x + DropPath(ffn1(dw1(mixer(ffn0(dw0(x))))))``, each inner step residual (see the module docstring)."""

    def __init__(
        self,
        dim: int,
        global_ratio: float = 0.8,
        local_ratio: float = 0.2,
        kernel_size: int = 5,
        ssm_ratio: float = 2.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.dw0 = _Residual(ConvBN(dim, dim, 3, 1, 1, groups=dim, bn_weight_init=0.0))
        self.ffn0 = _Residual(_FFN(dim, 2 * dim))
        self.mixer = _Residual(MRFFI(dim, global_ratio, local_ratio, kernel_size, ssm_ratio))
        self.dw1 = _Residual(ConvBN(dim, dim, 3, 1, 1, groups=dim, bn_weight_init=0.0))
        self.ffn1 = _Residual(_FFN(dim, 2 * dim))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(self.ffn1(self.dw1(self.mixer(self.ffn0(self.dw0(x))))))


class PatchMerging(nn.Module):
    """1x1 ConvBN (x4) -> ReLU -> 3x3 stride-2 depthwise ConvBN -> ReLU -> squeeze-excitation -> 1x1 ConvBN."""

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        hidden = 4 * dim
        self.conv1 = ConvBN(dim, hidden)
        self.act = nn.ReLU()
        self.conv2 = ConvBN(hidden, hidden, 3, 2, 1, groups=hidden)
        self.se = SqueezeExcite(hidden, make_divisible(hidden * 0.25))
        self.conv3 = ConvBN(hidden, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.se(self.act(self.conv2(self.act(self.conv1(x))))))


def _dw_ffn(dim: int) -> nn.Sequential:
    """Residual 3x3 depthwise ConvBN, then residual FFN (around a patch merging)."""
    return nn.Sequential(_Residual(ConvBN(dim, dim, 3, 1, 1, groups=dim)), _Residual(_FFN(dim, 2 * dim)))


class MobileMambaStage(nn.Module):
    """Optional downsampling (``dw + ffn``, patch merging, ``dw + ffn``), then ``depth`` blocks."""

    def __init__(
        self,
        in_dim: int,
        dim: int,
        depth: int,
        downsample: bool,
        global_ratio: float,
        local_ratio: float,
        kernel_size: int,
        ssm_ratio: float,
        drop_path: Sequence[float],
    ) -> None:
        super().__init__()
        self.downsample: nn.Module = (
            nn.Sequential(_dw_ffn(in_dim), PatchMerging(in_dim, dim), _dw_ffn(dim)) if downsample else nn.Identity()
        )
        self.blocks = nn.Sequential(
            *(
                MobileMambaBlock(dim, global_ratio, local_ratio, kernel_size, ssm_ratio, drop_path[j])
                for j in range(depth)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class MobileMamba(DistilledClassifier):
    """MobileMamba image classifier.

    Args:
        embed_dims: channels of the three stages (the first divisible by 8).
        depths: blocks per stage.
        global_ratios, local_ratios: MRFFI channel shares per stage.
        kernel_sizes: MRFFI kernel per stage (odd).
        ssm_ratio: SS2D expansion.
        drop_path_rate: stochastic depth, rising linearly over the blocks to this value.
        num_classes: classes of the head (0: ``forward`` returns pooled features).
        in_chans: input channels.
        distillation: add a second BN + linear head ``head_dist`` (DeiT style); in training
            ``forward`` returns both logits, in eval their mean.
    """

    def __init__(
        self,
        embed_dims: Sequence[int] = (144, 272, 368),
        depths: Sequence[int] = (1, 2, 2),
        global_ratios: Sequence[float] = (0.8, 0.7, 0.6),
        local_ratios: Sequence[float] = (0.2, 0.2, 0.3),
        kernel_sizes: Sequence[int] = (7, 5, 3),
        ssm_ratio: float = 2.0,
        drop_path_rate: float = 0.0,
        num_classes: int = 1000,
        in_chans: int = 3,
        distillation: bool = False,
    ) -> None:
        super().__init__()
        n = len(embed_dims)
        if not n == len(depths) == len(global_ratios) == len(local_ratios) == len(kernel_sizes):
            raise ValueError(
                "embed_dims, depths, global_ratios, local_ratios and kernel_sizes need one entry per stage, got "
                f"lengths {n}, {len(depths)}, {len(global_ratios)}, {len(local_ratios)}, {len(kernel_sizes)}"
            )
        if n < 1 or embed_dims[0] % 8:
            raise ValueError(f"embed_dims[0] must be divisible by 8 (stem widths d/8, d/4, d/2), got {embed_dims}")
        if any(d < 0 for d in depths):
            raise ValueError(f"depths must be non-negative, got {tuple(depths)}")
        d0 = embed_dims[0]
        self.num_classes, self.num_features, self.distillation = num_classes, embed_dims[-1], distillation
        self.stem = nn.Sequential(
            ConvBN(in_chans, d0 // 8, 3, 2, 1),
            nn.ReLU(),
            ConvBN(d0 // 8, d0 // 4, 3, 2, 1),
            nn.ReLU(),
            ConvBN(d0 // 4, d0 // 2, 3, 2, 1),
            nn.ReLU(),
            ConvBN(d0 // 2, d0, 3, 2, 1),
        )
        total = sum(depths)
        dpr = [drop_path_rate * j / max(total - 1, 1) for j in range(total)]  # linspace(0, rate, total)
        stages = []
        for i in range(n):
            start = sum(depths[:i])
            stages.append(
                MobileMambaStage(
                    embed_dims[max(i - 1, 0)],
                    embed_dims[i],
                    depths[i],
                    i > 0,
                    global_ratios[i],
                    local_ratios[i],
                    kernel_sizes[i],
                    ssm_ratio,
                    dpr[start : start + depths[i]],
                )
            )
        self.stages = nn.Sequential(*stages)
        self.feature_info = [
            dict(num_chs=d, reduction=16 * 2**i, module=f"stages.{i}") for i, d in enumerate(embed_dims)
        ]
        self.head_drop = nn.Identity()
        self.reset_classifier(num_classes)


def _official_key(key: str) -> str | None:
    if re.search(r"\.(wt_filter|iwt_filter)$", key):
        return None  # the fixed Haar filters (buffers here)
    key = re.sub(r"^patch_embed\.", "stem.", key)
    m = re.match(r"^blocks(\d)\.(\d+)\.(.*)$", key)
    if m:
        stage, j, rest = int(m.group(1)) - 1, int(m.group(2)), m.group(3)
        if stage == 0:
            key = f"stages.0.blocks.{j}.{rest}"
        elif j < 3:
            key = f"stages.{stage}.downsample.{j}.{rest}"
        else:
            key = f"stages.{stage}.blocks.{j - 3}.{rest}"
    rules = [
        (r"\.mixer\.m\.attn\.", ".mixer.m."),
        (r"\.global_op\.global_atten\.", ".global_op.ssm."),
        (r"\.global_op\.base_scale\.weight$", ".global_op.base_scale"),
        (r"\.global_op\.wavelet_convs\.0\.", ".global_op.wavelet_conv."),
        (r"\.global_op\.wavelet_scale\.0\.weight$", ".global_op.wavelet_scale"),
        (r"\.local_op\.dwconv3x3\.", ".local_op.conv.c."),
        (r"\.local_op\.bn1\.", ".local_op.conv.bn."),
        (r"\.local_op\.dwconv1x1\.", ".local_op.pw.c."),
        (r"\.local_op\.bn2\.", ".local_op.pw.bn."),
        (r"^(head|head_dist)\.l\.", r"\1.fc."),
    ]
    for pattern, repl in rules:
        key = re.sub(pattern, repl, key)
    return key


def convert_official_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a lewandofskee/MobileMamba checkpoint's keys to subband's (a ``"model"`` entry is
    unwrapped, a ``module.`` prefix removed, the frozen Haar filters dropped)."""
    if "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    out = {}
    for key, value in state.items():
        new = _official_key(key.removeprefix("module."))
        if new is not None:
            out[new] = value
    return out


_TITLE = "MobileMamba: Lightweight Multi-Receptive Visual Mamba Network"
_SRC = (
    "lewandofskee/MobileMamba model/mobilemamba/mobilemamba.py CFG_MobileMamba_{} (built and counted, "
    "BatchNorms and the frozen Haar filters included); README: {}"
)
_NOTES = (
    "params: the official model's count (BatchNorms and the frozen Haar filters included). Here, with the "
    "Haar filters as buffers, {:,} after fuse() ({:,} before). gflops: the README's figure (the official "
    "script counts the fused model with fvcore, the scan as 9 L D N + L D); torch's flop counter gives {} "
    "GMACs here (convolutions and products, the chunked scan's included, no norms or pooling)."
)


def _paper(name: str, params: int, gflops: float, side: int, readme: str, ours: tuple[int, int, float]) -> Paper:
    return Paper(
        title=_TITLE,
        arxiv="2411.15941",
        params=params,
        gflops=gflops,
        input_size=(3, side, side),
        source=_SRC.format(name, readme),
        notes=_NOTES.format(*ours),
    )


_WIDTHS = {"t2": (144, 272, 368), "t4": (176, 368, 448), "s6": (192, 384, 448), "b": (200, 376, 448)}


def _variant(widths: str, kwargs: dict) -> MobileMamba:
    depths = (2, 3, 2) if widths == "b" else (1, 2, 2)
    cfg = dict(embed_dims=_WIDTHS[widths], depths=depths, drop_path_rate=0.03 if widths == "b" else 0.0)
    return MobileMamba(**{**cfg, **kwargs})


@register_model(
    _paper("T2", 8_836_890, 0.255, 192, "8.8M / 255M FLOPs / 71.5% (76.9% †) at 192", (8_779_236, 8_806_682, 0.253))
)
def mobilemamba_t2(**kwargs) -> MobileMamba:
    """MobileMamba-T2 (192x192): widths 144 / 272 / 368, depths 1 / 2 / 2."""
    return _variant("t2", kwargs)


@register_model(
    _paper("T4", 14_176_090, 0.413, 192, "14.2M / 413M FLOPs / 76.1% (78.9% †) at 192", (14_102_692, 14_137_690, 0.410))
)
def mobilemamba_t4(**kwargs) -> MobileMamba:
    """MobileMamba-T4 (192x192): widths 176 / 368 / 448, depths 1 / 2 / 2."""
    return _variant("t4", kwargs)


@register_model(
    _paper("S6", 15_036_632, 0.652, 224, "15.0M / 652M FLOPs / 78.0% (80.7% †) at 224", (14_960_520, 14_996_696, 0.649))
)
def mobilemamba_s6(**kwargs) -> MobileMamba:
    """MobileMamba-S6 (224x224): widths 192 / 384 / 448, depths 1 / 2 / 2."""
    return _variant("s6", kwargs)


@register_model(
    _paper(
        "B1", 17_122_849, 1.080, 256, "17.1M / 1080M FLOPs / 79.9% (82.2% †) at 256", (17_027_200, 17_070_625, 1.074)
    )
)
def mobilemamba_b1(**kwargs) -> MobileMamba:
    """MobileMamba-B1 (256x256): widths 200 / 376 / 448, depths 2 / 3 / 2, drop path 0.03."""
    return _variant("b", kwargs)


@register_model(
    _paper(
        "B2", 17_122_849, 2.427, 384, "17.1M / 2427M FLOPs / 81.6% (83.3% †) at 384", (17_027_200, 17_070_625, 2.415)
    )
)
def mobilemamba_b2(**kwargs) -> MobileMamba:
    """MobileMamba-B2: the B1 network at 384x384."""
    return _variant("b", kwargs)


@register_model(
    _paper(
        "B4", 17_122_849, 4.313, 512, "17.1M / 4313M FLOPs / 82.5% (83.6% †) at 512", (17_027_200, 17_070_625, 4.292)
    )
)
def mobilemamba_b4(**kwargs) -> MobileMamba:
    """MobileMamba-B4: the B1 network at 512x512."""
    return _variant("b", kwargs)
