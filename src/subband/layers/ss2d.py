"""SS2D, the 2-D selective scan of VMamba ("VMamba: Visual State Space Model", Liu et al.; arXiv
2401.10166), as MobileMamba ("MobileMamba: Lightweight Multi-Receptive Visual Mamba Network", He et
al.; arXiv 2411.15941) and other vision Mambas use it, on top of the pure-PyTorch
:func:`~subband.layers.selective_scan.selective_scan` (no CUDA kernel).

A 1x1 input projection splits into a branch ``x`` and a gate ``z`` (``2 * d_inner`` channels,
``d_inner = int(ssm_ratio * dim)``); ``x`` goes through a depthwise ``d_conv x d_conv`` conv and
SiLU, then is read out as ``K`` pixel sequences (:func:`cross_scan`): ``"cross2d"`` (VMamba, K=4:
row-major, column-major and both reversed), ``"bidi"`` (MobileMamba, K=2: row-major and reversed)
or ``"unidi"`` (K=1: row-major). Each sequence gets its own input-dependent ``delta, B, C``
(``x_proj_weight``: ``d_inner -> dt_rank + 2 d_state``, ``dt_projs_weight``: ``dt_rank -> d_inner``)
and its own ``A, D, dt bias``; the ``K`` selective scans are written back to pixels and summed
(:func:`cross_merge`, the adjoint of :func:`cross_scan`), layer-normalised over channels, gated by
``silu(z)`` and projected back to ``dim`` channels.

Shape:
    ``(B, dim, H, W) -> (B, dim, H, W)`` (channels first, any ``H, W``).

Args:
    dim: input and output channels.
    d_state: SSM state size ``N`` per channel.
    ssm_ratio: ``d_inner = int(ssm_ratio * dim)``.
    dt_rank: rank of the ``delta`` projection; ``"auto"``: ``ceil(dim / 16)``.
    d_conv: side of the depthwise conv (odd; below 2: no conv).
    conv_bias: bias in the depthwise conv.
    scans: ``"cross2d"``, ``"bidi"`` or ``"unidi"`` (see above).
    init: ``"mamba"``: Mamba's S4D-real ``A_log = log(1..N)``, ``D = 1``, ``dt`` weights
        ``U(-r^-1/2, r^-1/2) * dt_scale`` and the dt bias the inverse softplus of a log-uniform
        ``dt`` in ``[dt_min, dt_max]`` (VMamba's ``initialize="v0"``); ``"simple"``: ``A_log = 0``,
        ``D = 1``, dt weights and bias ``U(0, 0.1)`` (VMamba's ``initialize="v2"``, MobileMamba's).
    projection: ``"linear"``: bias-free 1x1 convs (VMamba); ``"conv_bn"``: 1x1 conv + BatchNorm
        (:class:`~subband.layers.conv_bn.ConvBN`, MobileMamba), foldable with ``fuse()``.
    dt_min, dt_max, dt_init_floor, dt_scale: of the ``"mamba"`` init.
    norm_eps: epsilon of the output LayerNorm.
    chunk: steps per chunk of the scan (see :func:`selective_scan`); ``None``: its default. Short
        chunks run fastest on the CPU for a small ``d_state``, and with 8 the multiply-adds torch's flop
        counter sees in the scan (about ``8 K d_inner N H W``) are close to Mamba's count (``9 ...``).

Parameter names follow VMamba's (``in_proj``, ``conv2d``, ``x_proj_weight (K, R + 2N, d_inner)``,
``dt_projs_weight (K, d_inner, R)``, ``dt_projs_bias (K, d_inner)``, ``A_logs (K d_inner, N)``,
``Ds (K d_inner)``, ``out_norm``, ``out_proj``).

Example:
    >>> ss2d = SS2D(16, d_state=4, scans="cross2d")
    >>> ss2d(torch.randn(2, 16, 5, 7)).shape
    torch.Size([2, 16, 5, 7])
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .conv_bn import ConvBN
from .norm import LayerNorm2d
from .selective_scan import selective_scan

__all__ = ["SS2D", "SCANS", "cross_scan", "cross_merge"]

SCANS = {"cross2d": 4, "bidi": 2, "unidi": 1}  # scan mode -> number of sequences K


def _check_scans(scans: str) -> int:
    if scans not in SCANS:
        raise ValueError(f"scans must be one of {tuple(SCANS)}, got {scans!r}")
    return SCANS[scans]


def cross_scan(x: torch.Tensor, scans: str = "cross2d") -> torch.Tensor:
    """The pixel sequences of ``x (B, C, H, W)``: ``(B, K, C, H*W)``.

    ``"cross2d"``: row-major, column-major, reversed row-major, reversed column-major;
    ``"bidi"``: row-major, reversed row-major; ``"unidi"``: row-major.
    """
    _check_scans(scans)
    if x.ndim != 4:
        raise ValueError(f"x must be (B, C, H, W), got shape {tuple(x.shape)}")
    rows = x.flatten(2)  # (B, C, H, W) -> (B, C, H*W), row-major
    if scans == "unidi":
        return rows.unsqueeze(1)
    if scans == "bidi":
        return torch.stack([rows, rows.flip(-1)], 1)
    cols = x.transpose(2, 3).flatten(2)  # (B, C, W, H) -> (B, C, W*H), column-major
    return torch.stack([rows, cols, rows.flip(-1), cols.flip(-1)], 1)


def cross_merge(ys: torch.Tensor, scans: str = "cross2d") -> torch.Tensor:
    """Sum the ``K`` sequences ``ys (B, K, C, H, W)`` (in scan order) back at their pixels:
    ``(B, C, H, W)``; the adjoint of :func:`cross_scan`."""
    k = _check_scans(scans)
    if ys.ndim != 5 or ys.shape[1] != k:
        raise ValueError(f"ys must be (B, {k}, C, H, W) for scans={scans!r}, got shape {tuple(ys.shape)}")
    b, _, c, h, w = ys.shape
    seq = ys.flatten(3)  # (B, K, C, H, W) -> (B, K, C, L)
    if scans == "unidi":
        y = seq[:, 0]
    elif scans == "bidi":
        y = seq[:, 0] + seq[:, 1].flip(-1)
    else:
        cols = seq[:, 1] + seq[:, 3].flip(-1)  # column-major order
        y = seq[:, 0] + seq[:, 2].flip(-1) + cols.view(b, c, w, h).transpose(2, 3).flatten(2)
    return y.view(b, c, h, w)  # (B, C, L) -> (B, C, H, W)


class SS2D(nn.Module):
    def __init__(
        self,
        dim: int,
        d_state: int = 16,
        ssm_ratio: float = 2.0,
        dt_rank: int | str = "auto",
        d_conv: int = 3,
        conv_bias: bool = True,
        scans: str = "cross2d",
        init: str = "mamba",
        projection: str = "linear",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init_floor: float = 1e-4,
        dt_scale: float = 1.0,
        norm_eps: float = 1e-5,
        chunk: int | None = 8,
    ) -> None:
        super().__init__()
        k = _check_scans(scans)
        if dim < 1 or d_state < 1:
            raise ValueError(f"dim and d_state must be positive, got dim={dim}, d_state={d_state}")
        d_inner = int(ssm_ratio * dim)
        if d_inner < 1:
            raise ValueError(f"ssm_ratio * dim must be at least 1, got ssm_ratio={ssm_ratio}, dim={dim}")
        if dt_rank == "auto":
            dt_rank = math.ceil(dim / 16)
        if not isinstance(dt_rank, int) or dt_rank < 1:
            raise ValueError(f"dt_rank must be 'auto' or a positive int, got {dt_rank!r}")
        if d_conv >= 2 and d_conv % 2 == 0:
            raise ValueError(f"d_conv must be odd (or below 2 for no conv), got {d_conv}")
        if init not in ("mamba", "simple"):
            raise ValueError(f"init must be one of ('mamba', 'simple'), got {init!r}")
        if projection not in ("linear", "conv_bn"):
            raise ValueError(f"projection must be one of ('linear', 'conv_bn'), got {projection!r}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        if chunk is not None and chunk < 1:
            raise ValueError(f"chunk must be positive or None, got {chunk}")
        self.dim, self.d_state, self.d_inner, self.dt_rank, self.k = dim, d_state, d_inner, dt_rank, k
        self.scans, self.init, self.projection, self.chunk = scans, init, projection, chunk
        self.dt_min, self.dt_max, self.dt_init_floor, self.dt_scale = dt_min, dt_max, dt_init_floor, dt_scale

        def proj(cin: int, cout: int) -> nn.Module:
            return ConvBN(cin, cout) if projection == "conv_bn" else nn.Conv2d(cin, cout, 1, bias=False)

        self.in_proj = proj(dim, 2 * d_inner)
        self.act = nn.SiLU()
        self.conv2d: nn.Module = (
            nn.Conv2d(d_inner, d_inner, d_conv, padding=(d_conv - 1) // 2, groups=d_inner, bias=conv_bias)
            if d_conv >= 2
            else nn.Identity()
        )
        self.x_proj_weight = nn.Parameter(torch.empty(k, dt_rank + 2 * d_state, d_inner))
        self.dt_projs_weight = nn.Parameter(torch.empty(k, d_inner, dt_rank))
        self.dt_projs_bias = nn.Parameter(torch.empty(k, d_inner))
        self.A_logs = nn.Parameter(torch.empty(k * d_inner, d_state))
        self.Ds = nn.Parameter(torch.empty(k * d_inner))
        self.out_norm = LayerNorm2d(d_inner, eps=norm_eps)
        self.out_proj = proj(d_inner, dim)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Re-draw the SSM parameters (``init``), the projections and the conv (PyTorch defaults)."""
        for m in (self.in_proj, self.conv2d, self.out_norm, self.out_proj):
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        bound = self.d_inner**-0.5  # nn.Linear's default for each of the K (R + 2N, d_inner) weights
        self.x_proj_weight.uniform_(-bound, bound)
        self.Ds.fill_(1.0)
        if self.init == "simple":
            self.A_logs.zero_()
            self.dt_projs_weight.uniform_(0.0, 0.1)
            self.dt_projs_bias.uniform_(0.0, 0.1)
            return
        std = self.dt_rank**-0.5 * self.dt_scale
        self.dt_projs_weight.uniform_(-std, std)
        lo, hi = math.log(self.dt_min), math.log(self.dt_max)
        dt = torch.exp(torch.rand_like(self.dt_projs_bias) * (hi - lo) + lo).clamp(min=self.dt_init_floor)
        self.dt_projs_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus(bias) == dt
        a = torch.arange(1, self.d_state + 1, dtype=self.A_logs.dtype, device=self.A_logs.device)
        self.A_logs.copy_(torch.log(a).expand_as(self.A_logs))

    def ssm(self, x: torch.Tensor) -> torch.Tensor:
        """The ``K`` selective scans of ``x (B, d_inner, H, W)``, merged: ``(B, d_inner, H, W)``."""
        b, d, h, w = x.shape
        n, r, k, length = self.d_state, self.dt_rank, self.k, h * w
        xs = cross_scan(x, self.scans)  # (B, K, D, L)
        x_dbl = torch.einsum("bkdl,kcd->bkcl", xs, self.x_proj_weight)  # (B, K, R + 2N, L)
        dts, bs, cs = x_dbl.split([r, n, n], dim=2)
        dts = torch.einsum("bkrl,kdr->bkdl", dts, self.dt_projs_weight)  # (B, K, D, L)
        ys = selective_scan(
            xs.reshape(b, k * d, length),  # (B, K, D, L) -> (B, K*D, L)
            dts.reshape(b, k * d, length),
            -torch.exp(self.A_logs),
            bs,  # (B, K, N, L): one group of D channels per sequence
            cs,
            self.Ds,
            delta_bias=self.dt_projs_bias.reshape(-1),
            delta_softplus=True,
            chunk=self.chunk,
        )
        return cross_merge(ys.view(b, k, d, h, w), self.scans)  # (B, K*D, L) -> (B, K, D, H, W) -> (B, D, H, W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.dim:
            raise ValueError(f"SS2D expects (B, {self.dim}, H, W), got shape {tuple(x.shape)}")
        x, z = self.in_proj(x).chunk(2, dim=1)  # (B, 2 d_inner, H, W) -> 2 x (B, d_inner, H, W)
        y = self.out_norm(self.ssm(self.act(self.conv2d(x))))
        return self.out_proj(y * self.act(z))

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold the projections' BatchNorms into their convs (``projection="conv_bn"``; otherwise
        nothing to do), in place. Eval only."""
        if self.training:
            raise RuntimeError("fuse() folds BatchNorm running statistics: call .eval() first")
        for m in (self.in_proj, self.out_proj):
            if isinstance(m, ConvBN):
                m.fuse()

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, d_inner={self.d_inner}, d_state={self.d_state}, dt_rank={self.dt_rank}, "
            f"scans={self.scans!r}, init={self.init!r}, projection={self.projection!r}"
        )
