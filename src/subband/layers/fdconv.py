"""Frequency Dynamic Convolution (FDConv; Chen et al., "Frequency Dynamic Convolution for Dense Image
Prediction", CVPR 2025, arXiv 2503.18783): a dynamic convolution whose ``kernel_num`` parallel
kernels come out of *one* parameter budget stored in the Fourier domain.

- **Fourier-disjoint weights (FDW).** The kernel ``W`` (``C_out, C_in/g, kh, kw``) is laid out as the
  real matrix ``M = W.permute(0, 2, 1, 3)`` of shape ``(C_out kh, C_in/g kw)`` and stored as its
  ``rfft2`` (real and imaginary parts: parameter ``dft_weight``, divided by
  ``s = max(min(C_in, C_out) // 2, 1)``). The rfft coefficients are sorted by frequency radius
  ``|(f_row, f_col)|`` (``fftfreq``/``rfftfreq``, float32, stable sort) and cut into ``kernel_num``
  contiguous, disjoint groups, lowest frequencies first (:func:`fdw_group_index`). Group ``g``'s
  kernel ``K_g`` is the inverse transform of its coefficients only, so ``sum_g K_g = W`` and the
  per-sample kernel is ``sum_g a_g(x) K_g`` with ``a_g = 2 sigmoid(z_g)`` (:func:`fdw_kernels`).
- **Kernel spatial modulation (KSM).** From the pooled input: a global branch (1x1 fc, BN, StarReLU,
  then heads for channel ``(C_in)``, filter ``(C_out)``, spatial ``(kh kw)`` and kernel
  ``(kernel_num)`` logits) and a local branch (LayerNorm over channels, then a channel-wise 1-D conv,
  ECA-style, emitting one logit per kernel element); all gates are ``att_multi * sigmoid``.
- **Frequency band modulation (FBM).** The input is split into bands with the nested low-pass masks
  ``max(|f_h|, |f_w|) <= 0.5 / k`` for ``k`` in ``fbm_k_list`` (:func:`frequency_bands`); each band
  above the lowest is scaled by ``2 sigmoid`` of a 3x3 conv of the input (one map shared by all
  channels) and the bands are summed. With zero maps the bands add up to the input exactly.

Checked against the official code (Linwei-Chen/FDConv, ``FDConv_detection/mmdet_custom/FDConv.py``,
``configs/faster_rcnn/faster_rcnn_r50_fpn_1x_coco_FDConv.py``: ``kernel_num`` 64, reduction 0.0625,
FDConv for 1x1 and 3x3 convs with ``min(C_in, C_out) > 16``, FBM only for 3x3, ``k_list`` (2, 4, 8)).
The parameter count equals the official module's for ``groups=1`` (``param_ratio`` 1, no ``param_reduction``);
on ResNet-50's 48 bottleneck convs this is +3,647,120, the paper's "+3.6M" (the official ResNet_FDConv
keeps its 1x1 shortcut convs static). ``dft_weight`` holds ``2 C_out kh`` numbers more than ``W``
(``C_out kh`` if ``C_in/g kw`` is odd): the imaginary parts in the self-conjugate rfft columns, which
``irfft2`` ignores, as in the official layout. Each call builds one kernel (and one local gate) of the
static kernel's size per sample; the global KSM has a BatchNorm, so training needs batches > 1
(as officially). Differences:

- ``dft_weight`` has no leading ``param_ratio`` axis; the submodule names differ (no state-dict mapping).
- The official code relies on ``kernel_num`` dividing the number of rfft coefficients; here the groups
  are near-equal contiguous chunks (identical when it divides). Ties in radius are broken by a stable
  sort (the official ``torch.sort`` is not guaranteed stable).
- ``groups > 1`` works (the matrix is ``(C_out kh, C_in/g kw)``; the local branch emits ``C_out/g kh kw``
  logits per input channel); the official module assumes ``groups=1``. Rectangular kernels work.
- FBM masks are computed at the input's size; the official code precomputes them at 64x64 and resizes
  them (nearest), which agrees at 64x64 and can differ by a frequency line elsewhere. The cut-off is
  inclusive (``<= 0.5 / k``, as the official ``< 0.5 / k + 1e-8`` intends); the official float32
  comparison loses the 1e-8 at 0.25 and so drops the ``|f| = 0.25`` line from the ``k = 2`` low-pass.
- ``attention_init="identity"`` (default) starts the filter head like the other heads (weights
  ``N(0, 1e-6)``), so a converted layer starts equal to the static conv up to ~1e-6. In the official code
  that head keeps Kaiming-normal init (its small-init guard tests the bound method, never the layer),
  so the output starts scaled by a random ``2 sigmoid`` per output channel: ``attention_init="official"``.
- The paper describes FBM on the weights; the official code (followed here) applies it to the input
  feature, which is what the conv sees. Temperatures are fixed at 1 (the official config's value).

Shape:
    ``(B, C_in, H, W) -> (B, C_out, H_out, W_out)`` as ``nn.Conv2d`` with the same arguments.

Example:
    >>> conv = FDConv(32, 64, 3, padding=1, kernel_num=8)
    >>> conv(torch.randn(2, 32, 16, 16)).shape
    torch.Size([2, 64, 16, 16])
    >>> net = convert_to_fdconv(nn.Sequential(nn.Conv2d(32, 32, 3, padding=1)), kernel_num=8)
    >>> type(net[0]).__name__
    'FDConv'
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "FDConv",
    "FrequencyBandModulation",
    "convert_to_fdconv",
    "fdconv2d",
    "fdw_group_index",
    "fdw_kernels",
    "frequency_bands",
]

_INITS = ("identity", "official")


def _pair(v: int | Sequence[int], name: str, minimum: int = 1) -> tuple[int, int]:
    t = (v, v) if isinstance(v, int) else tuple(v)
    if len(t) != 2 or any(not isinstance(i, int) or i < minimum for i in t):
        raise ValueError(f"{name} must be an int >= {minimum} or a pair of them, got {v!r}")
    return t  # type: ignore[return-value]


def _check_k_list(k_list: Sequence[float]) -> tuple[float, ...]:
    if len(k_list) == 0 or any(k <= 0 for k in k_list) or any(a >= b for a, b in zip(k_list, k_list[1:])):
        raise ValueError(f"k_list must be non-empty, positive and strictly increasing, got {tuple(k_list)}")
    return tuple(k_list)


def fdw_group_index(rows: int, cols: int, kernel_num: int) -> torch.Tensor:
    """Group of every ``rfft2`` coefficient of a real ``(rows, cols)`` matrix.

    Coefficients are sorted by radius ``sqrt(f_row^2 + f_col^2)`` (``fftfreq(rows)``, ``rfftfreq(cols)``)
    and split into ``kernel_num`` contiguous chunks of near-equal size (the first ``n % kernel_num`` one
    larger), lowest frequencies in group 0.

    Returns:
        ``(rows, cols // 2 + 1)`` int32 group ids in ``[0, kernel_num)``.
    """
    n = rows * (cols // 2 + 1)
    if not 1 <= kernel_num <= n:
        raise ValueError(f"kernel_num must be in [1, {n}] (the number of rfft coefficients), got {kernel_num}")
    grid = torch.stack(torch.meshgrid(torch.fft.fftfreq(rows), torch.fft.rfftfreq(cols), indexing="ij"), -1)
    order = torch.sort(torch.linalg.vector_norm(grid, dim=-1).flatten(), stable=True).indices  # (n,)
    sizes = [n // kernel_num + (g < n % kernel_num) for g in range(kernel_num)]
    index = torch.empty(n, dtype=torch.int32)
    index[order] = torch.repeat_interleave(torch.arange(kernel_num, dtype=torch.int32), torch.tensor(sizes))
    return index.view(rows, cols // 2 + 1)


def fdw_kernels(
    spectrum: torch.Tensor, group_index: torch.Tensor, gains: torch.Tensor, weight_shape: Sequence[int]
) -> torch.Tensor:
    """Per-sample kernels ``sum_g gains[b, g] K_g`` from Fourier-disjoint groups.

    Args:
        spectrum: ``(C_out kh, C_in/g kw // 2 + 1, 2)`` real and imaginary parts of the rfft2 of the
            kernel matrix ``W.permute(0, 2, 1, 3).reshape(C_out kh, C_in/g kw)``.
        group_index: ``(C_out kh, C_in/g kw // 2 + 1)`` integer group of each coefficient.
        gains: ``(B, kernel_num)`` weight of each group (``B`` may be 1).
        weight_shape: ``(C_out, C_in/g, kh, kw)``.

    Returns:
        ``(B, C_out, C_in/g, kh, kw)``.
    """
    cout, cin, kh, kw = weight_shape
    if spectrum.shape != (cout * kh, cin * kw // 2 + 1, 2) or group_index.shape != spectrum.shape[:2]:
        raise ValueError(
            f"spectrum must be {(cout * kh, cin * kw // 2 + 1, 2)} and group_index its first two dims for "
            f"weight_shape {tuple(weight_shape)}, got {tuple(spectrum.shape)}, {tuple(group_index.shape)}"
        )
    b = gains.shape[0]
    g = gains.index_select(1, group_index.flatten()).view(b, *group_index.shape)  # (B, C_out kh, C_in kw // 2 + 1)
    mat = torch.fft.irfft2(torch.view_as_complex(spectrum) * g, s=(cout * kh, cin * kw))  # (B, C_out kh, C_in kw)
    return mat.view(b, cout, kh, cin, kw).permute(0, 1, 3, 2, 4)  # -> (B, C_out, C_in, kh, kw)


def _band_masks(h: int, w: int, k_list: Sequence[float], dtype: torch.dtype, device) -> torch.Tensor:
    """``(n, h, w // 2 + 1)`` nested low-pass masks ``max(|f_h|, |f_w|) <= 0.5 / k``."""
    f64 = torch.float64
    cheb = torch.maximum(torch.fft.fftfreq(h, dtype=f64).abs()[:, None], torch.fft.rfftfreq(w, dtype=f64)[None, :])
    return torch.stack([cheb < 0.5 / k + 1e-8 for k in k_list]).to(device=device, dtype=dtype)


def frequency_bands(x: torch.Tensor, k_list: Sequence[float] = (2, 4, 8)) -> list[torch.Tensor]:
    """Split ``(..., H, W)`` into ``len(k_list) + 1`` bands that sum to ``x``, highest first.

    Band ``i < n`` holds the frequencies inside the low-pass mask of ``k_list[i - 1]`` (everything for
    ``i = 0``) but outside that of ``k_list[i]``; the last band is the low-pass of ``k_list[-1]``.
    """
    k_list = _check_k_list(k_list)
    h, w = x.shape[-2:]
    spec = torch.fft.rfft2(x)  # (..., H, W // 2 + 1)
    bands, prev = [], x
    for mask in _band_masks(h, w, k_list, x.dtype, x.device):
        low = torch.fft.irfft2(spec * mask, s=(h, w))
        bands.append(prev - low)
        prev = low
    return bands + [prev]


def dynamic_conv2d(
    x: torch.Tensor, weight: torch.Tensor, stride=1, padding: int | Sequence[int] | str = 0, dilation=1, groups=1
) -> torch.Tensor:
    """``F.conv2d`` with one kernel per sample: ``weight (B or 1, C_out, C_in/g, kh, kw)``, no bias."""
    b, c, h, w = x.shape
    if weight.shape[0] == 1:
        return F.conv2d(x, weight[0], None, stride, padding, dilation, groups)
    cout = weight.shape[1]
    xs = x.reshape(1, b * c, h, w)  # the batch folded into the groups: (B, C_in, H, W) -> (1, B C_in, H, W)
    ws = weight.reshape(b * cout, *weight.shape[2:])  # (B, C_out, C_in/g, kh, kw) -> (B C_out, C_in/g, kh, kw)
    out = F.conv2d(xs, ws, None, stride, padding, dilation, b * groups)
    return out.view(b, cout, *out.shape[2:])  # (1, B C_out, H', W') -> (B, C_out, H', W')


def fdconv2d(
    x: torch.Tensor,
    spectrum: torch.Tensor,
    group_index: torch.Tensor,
    gains: torch.Tensor,
    weight_shape: Sequence[int],
    *,
    channel_attention: torch.Tensor | None = None,
    filter_attention: torch.Tensor | None = None,
    spatial_attention: torch.Tensor | None = None,
    local_attention: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | str = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    fold: bool | None = None,
) -> torch.Tensor:
    """The FDConv core: per-sample Fourier-disjoint kernels (:func:`fdw_kernels`), modulated, convolved.

    Args:
        x: ``(B, C_in, H, W)``; spectrum, group_index, gains, weight_shape: as in :func:`fdw_kernels`.
        channel_attention: ``(B, C_in)``; filter_attention: ``(B, C_out)``; spatial_attention:
            ``(B, kh, kw)``; local_attention: ``(B, C_out, C_in/g, kh, kw)``: multiplicative gates.
        fold: multiply channel and filter gates into the kernel (True) or into the input and the
            output (False); None picks the smaller tensor as the official code. Same result.
    """
    b, cin, h, w = x.shape
    cout, cin_g, kh, kw = weight_shape
    if cin != cin_g * groups:
        raise ValueError(f"x has {cin} channels, the kernel expects {cin_g * groups} (groups={groups})")
    weight = fdw_kernels(spectrum, group_index, gains, weight_shape)  # (B', C_out, C_in/g, kh, kw)
    if spatial_attention is not None:
        weight = weight * spatial_attention[:, None, None]
    if local_attention is not None:
        weight = weight * local_attention
    if fold is None:
        fold = cout * cin_g * kh * kw < (cin + cout) * h * w
    if fold:
        if channel_attention is not None:  # input channel gi * C_in/g + j meets kernel column j of group gi
            ca = channel_attention.view(b, groups, 1, cin_g, 1, 1)  # (B, g, 1, C_in/g, 1, 1)
            weight = (weight.unflatten(1, (groups, cout // groups)) * ca).flatten(1, 2)
        if filter_attention is not None:
            weight = weight * filter_attention[:, :, None, None, None]
        out = dynamic_conv2d(x, weight, stride, padding, dilation, groups)
    else:
        if channel_attention is not None:
            x = x * channel_attention[:, :, None, None]
        out = dynamic_conv2d(x, weight, stride, padding, dilation, groups)
        if filter_attention is not None:
            out = out * filter_attention[:, :, None, None]
    return out if bias is None else out + bias[:, None, None]


class _StarReLU(nn.Module):
    """``scale * relu(x)^2 + bias`` with learnable scalars (MetaFormer), as in the official KSM."""

    def __init__(self) -> None:
        super().__init__()
        self.scale, self.bias = nn.Parameter(torch.ones(1)), nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * F.relu(x).square() + self.bias


class _KSMGlobal(nn.Module):
    """Global KSM: pooled ``(B, C_in)`` -> fc, BN, StarReLU -> channel, filter, spatial, kernel logits."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int], kernel_num: int, reduction: float,
                 depthwise: bool, modulate: bool) -> None:  # fmt: skip
        super().__init__()
        hidden = max(int(cin * reduction), 16)
        self.fc = nn.Linear(cin, hidden, bias=False)
        self.bn = nn.BatchNorm1d(hidden)
        self.act = _StarReLU()
        self.channel_fc = nn.Linear(hidden, cin) if modulate else None
        self.filter_fc = nn.Linear(hidden, cout) if modulate and not depthwise else None
        self.spatial_fc = nn.Linear(hidden, kernel[0] * kernel[1]) if modulate and kernel != (1, 1) else None
        self.kernel_fc = nn.Linear(hidden, kernel_num) if kernel_num > 1 else None

    def forward(self, pooled: torch.Tensor) -> list[torch.Tensor | None]:
        z = self.act(self.bn(self.fc(pooled)))  # (B, hidden)
        return [
            None if fc is None else fc(z) for fc in (self.channel_fc, self.filter_fc, self.spatial_fc, self.kernel_fc)
        ]


class _KSMLocal(nn.Module):
    """Local KSM: LayerNorm over the pooled channels, then a 1-D conv along them with ``n_out`` outputs."""

    def __init__(self, cin: int, n_out: int) -> None:
        super().__init__()
        k = round(math.log2(cin) / 2 + 0.5) // 2 * 2 + 1  # official ECA-style size (Python rounding)
        self.norm = nn.LayerNorm(cin)
        self.conv = nn.Conv1d(1, n_out, k, padding=k // 2, bias=False)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.conv(self.norm(pooled)[:, None])  # (B, C_in) -> (B, 1, C_in) -> (B, n_out, C_in)


class FrequencyBandModulation(nn.Module):
    """FBM: ``low + sum_i 2 sigmoid(conv_i(x)) * band_i`` over the bands of :func:`frequency_bands`.

    Args:
        in_channels: channels of ``x``. k_list: band cut-offs (``0.5 / k`` cycles per pixel).
        kernel_size: of the convs producing the one-channel modulation maps.
    """

    def __init__(self, in_channels: int, k_list: Sequence[float] = (2, 4, 8), kernel_size: int = 3) -> None:
        super().__init__()
        self.k_list = _check_k_list(k_list)
        self.convs = nn.ModuleList(nn.Conv2d(in_channels, 1, kernel_size, padding=kernel_size // 2) for _ in k_list)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for conv in self.convs:  # official "zero" init: the module starts as the identity
            nn.init.normal_(conv.weight, std=1e-6)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bands = frequency_bands(x, self.k_list)
        return bands[-1] + sum(2 * torch.sigmoid(conv(x)) * band for conv, band in zip(self.convs, bands))

    def extra_repr(self) -> str:
        return f"k_list={self.k_list}"


class FDConv(nn.Module):
    """Frequency dynamic convolution, a drop-in for ``nn.Conv2d`` (see the module docstring).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias: as ``nn.Conv2d``
            (zero padding only).
        kernel_num: Fourier-disjoint groups (official module default 4; the detection config uses 64).
        reduction: hidden width of the global KSM is ``max(int(in_channels * reduction), 16)``.
        use_ksm: channel, filter, spatial (global) and element-wise (local) modulation; without it only
            the ``kernel_num`` group gains stay dynamic.
        use_fbm: frequency band modulation of the input; only built for kernels larger than 1x1.
        fbm_k_list: FBM band cut-offs, positive and increasing.
        att_multi: scale of the KSM sigmoid gates (2: gates start at 1).
        attention_init: "identity" (all heads start near zero: the layer starts as the static conv) or
            "official" (the filter head keeps Kaiming-normal init, as in the official code).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | str = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        kernel_num: int = 4,
        reduction: float = 0.0625,
        use_ksm: bool = True,
        use_fbm: bool = True,
        fbm_k_list: Sequence[float] = (2, 4, 8),
        att_multi: float = 2.0,
        attention_init: str = "identity",
    ) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1 or groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels and out_channels must be positive multiples of groups, got {in_channels}, "
                f"{out_channels}, groups={groups}"
            )
        if reduction <= 0 or att_multi <= 0:
            raise ValueError(f"reduction and att_multi must be positive, got {reduction}, {att_multi}")
        if attention_init not in _INITS:
            raise ValueError(f"attention_init must be one of {_INITS}, got {attention_init!r}")
        if isinstance(padding, str) and padding not in ("same", "valid"):
            raise ValueError(f"padding must be an int, a pair or one of ('same', 'valid'), got {padding!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride, self.dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
        self.padding = padding if isinstance(padding, str) else _pair(padding, "padding", minimum=0)
        self.kernel_num, self.att_multi, self.attention_init = kernel_num, att_multi, attention_init
        self.use_ksm = use_ksm
        kh, kw = self.kernel_size
        cin_g = in_channels // groups
        self.weight_shape = (out_channels, cin_g, kh, kw)
        self.scale = max(min(in_channels, out_channels) // 2, 1)  # official spectrum normalisation
        self.register_buffer(
            "group_index", fdw_group_index(out_channels * kh, cin_g * kw, kernel_num), persistent=False
        )
        self.dft_weight = nn.Parameter(torch.empty(out_channels * kh, cin_g * kw // 2 + 1, 2))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        depthwise = in_channels == groups == out_channels
        self.ksm_global = (
            _KSMGlobal(in_channels, out_channels, self.kernel_size, kernel_num, reduction, depthwise, use_ksm)
            if use_ksm or kernel_num > 1
            else None
        )
        self.ksm_local = _KSMLocal(in_channels, out_channels // groups * kh * kw) if use_ksm else None
        self.fbm = FrequencyBandModulation(in_channels, fbm_k_list) if use_fbm and kh * kw > 1 else None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """``nn.Conv2d``'s weight and bias init (stored in the Fourier domain), the official head init."""
        w = torch.empty(self.weight_shape)
        nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        self.load_static_weight(w)
        if self.bias is not None:
            bound = 1 / math.sqrt(w[0].numel())
            nn.init.uniform_(self.bias, -bound, bound)
        if self.ksm_global is not None:
            for m in self.ksm_global.modules():
                if isinstance(m, nn.Linear):
                    small = m is not self.ksm_global.fc and not (
                        m is self.ksm_global.filter_fc and self.attention_init == "official"
                    )
                    if small:
                        nn.init.normal_(m.weight, std=1e-6)
                    else:
                        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
            self.ksm_global.bn.reset_parameters()
            self.ksm_global.act.scale.fill_(1.0)
            self.ksm_global.act.bias.fill_(0.0)
        if self.ksm_local is not None:
            self.ksm_local.norm.reset_parameters()
            nn.init.constant_(self.ksm_local.conv.weight, 1e-6)
        if self.fbm is not None:
            self.fbm.reset_parameters()

    @torch.no_grad()
    def load_static_weight(self, weight: torch.Tensor) -> None:
        """Store a spatial kernel ``(C_out, C_in/g, kh, kw)`` as ``dft_weight`` (sum of the groups == it)."""
        if tuple(weight.shape) != self.weight_shape:
            raise ValueError(f"weight must have shape {self.weight_shape}, got {tuple(weight.shape)}")
        cout, cin, kh, kw = self.weight_shape
        mat = weight.permute(0, 2, 1, 3).reshape(cout * kh, cin * kw)  # (C_out, C_in, kh, kw) -> (C_out kh, C_in kw)
        spec = torch.view_as_real(torch.fft.rfft2(mat.to(self.dft_weight.dtype)))  # (C_out kh, C_in kw // 2 + 1, 2)
        self.dft_weight.copy_(spec / self.scale)

    def group_kernels(self) -> torch.Tensor:
        """``(kernel_num, C_out, C_in/g, kh, kw)``: each group's spatial kernel ``K_g``; they sum to the static kernel."""
        eye = torch.eye(self.kernel_num, dtype=self.dft_weight.dtype, device=self.dft_weight.device)
        return fdw_kernels(self.dft_weight, self.group_index, eye * self.scale, self.weight_shape)

    def static_weight(self) -> torch.Tensor:
        """``(C_out, C_in/g, kh, kw)``: the kernel with every gate at 1 (``sum_g K_g``)."""
        gains = self.dft_weight.new_full((1, self.kernel_num), float(self.scale))
        return fdw_kernels(self.dft_weight, self.group_index, gains, self.weight_shape)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        b, m = x.shape[0], self.att_multi
        pooled = x.mean((2, 3))  # (B, C_in, H, W) -> (B, C_in)
        ca = fa = sa = la = None
        gains = self.dft_weight.new_full((1, 1), float(self.scale))
        if self.ksm_global is not None:
            c, f, s, k = self.ksm_global(pooled)
            ca, fa = (None if c is None else m * torch.sigmoid(c)), (None if f is None else m * torch.sigmoid(f))
            sa = None if s is None else m * torch.sigmoid(s).view(b, *self.kernel_size)
            if k is not None:  # official: sigmoid * 2 / kernel_num, times alpha = scale * kernel_num
                gains = 2 * torch.sigmoid(k) * self.scale
        if self.ksm_local is not None:
            cout_g, kh, kw = self.out_channels // self.groups, *self.kernel_size
            la = m * torch.sigmoid(self.ksm_local(pooled))  # (B, C_out/g kh kw, C_in)
            la = la.view(b, cout_g, kh, kw, self.groups, -1)  # (B, C_out/g, kh, kw, g, C_in/g)
            la = la.permute(0, 4, 1, 5, 2, 3).reshape(b, *self.weight_shape)  # -> (B, C_out, C_in/g, kh, kw)
        if self.fbm is not None:
            x = self.fbm(x)
        return fdconv2d(
            x, self.dft_weight, self.group_index, gains, self.weight_shape, channel_attention=ca,
            filter_attention=fa, spatial_attention=sa, local_attention=la, bias=self.bias, stride=self.stride,
            padding=self.padding, dilation=self.dilation, groups=self.groups,
        )  # fmt: skip

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, **kwargs) -> FDConv:
        """An FDConv with ``conv``'s arguments, weight (as ``dft_weight``) and bias, on its device and dtype."""
        if conv.padding_mode != "zeros":
            raise ValueError(f"only zero padding is supported, got padding_mode={conv.padding_mode!r}")
        new = cls(
            conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
            conv.groups, conv.bias is not None, **kwargs,
        )  # fmt: skip
        new = new.to(device=conv.weight.device, dtype=conv.weight.dtype)
        new.load_static_weight(conv.weight.detach())
        if conv.bias is not None:
            new.bias.data.copy_(conv.bias.detach())  # type: ignore[union-attr]
        return new.train(conv.training)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        s += f", padding={self.padding}, dilation={self.dilation}, groups={self.groups}, bias={self.bias is not None}"
        return s + f", kernel_num={self.kernel_num}, use_ksm={self.use_ksm}, use_fbm={self.fbm is not None}"


def convert_to_fdconv(
    model: nn.Module,
    *,
    kernel_num: int = 64,
    min_channels: int = 16,
    kernel_sizes: Sequence[int] = (1, 3),
    fbm_kernel_sizes: Sequence[int] = (3,),
    **kwargs,
) -> nn.Module:
    """A copy of ``model`` with qualifying ``nn.Conv2d`` layers replaced by :meth:`FDConv.from_conv`.

    A conv qualifies (the official rules ``use_fdconv_if_c_gt`` / ``use_fdconv_if_k_in``) if it is a
    plain ``nn.Conv2d`` (not a subclass), ``min(in, out) > min_channels``, its kernel is square with a
    size in ``kernel_sizes``, ``groups == 1`` (what the official module supports) and it pads with
    zeros. FBM is on where the size is in ``fbm_kernel_sizes`` (``use_fbm_if_k_in``). The static kernel
    is preserved exactly in ``dft_weight``; with ``attention_init="identity"`` (default) each new layer
    starts equal to the conv it replaces up to the ~1e-6 head init. ``kwargs`` go to :class:`FDConv`.
    Every qualifying conv is converted: the official ResNet-50 recipe leaves the 1x1 shortcut convs
    static, which this function does not know about.
    """
    if min_channels < 0 or any(k < 1 for k in (*kernel_sizes, *fbm_kernel_sizes)):
        raise ValueError(f"min_channels must be >= 0 and kernel sizes positive, got {min_channels}, {kernel_sizes}")
    model = copy.deepcopy(model)
    targets = []
    for module in model.modules():
        for child_name, child in module.named_children():
            k = child.kernel_size if type(child) is nn.Conv2d else (0, 0)
            if (
                type(child) is nn.Conv2d
                and min(child.in_channels, child.out_channels) > min_channels
                and k[0] == k[1]
                and k[0] in kernel_sizes
                and child.groups == 1
                and child.padding_mode == "zeros"
            ):
                targets.append((module, child_name, child, k[0] in fbm_kernel_sizes))
    for parent, child_name, child, fbm in targets:
        setattr(parent, child_name, FDConv.from_conv(child, kernel_num=kernel_num, use_fbm=fbm, **kwargs))
    return model
