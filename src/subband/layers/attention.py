"""Multi-head attention, written once: the attention product (:func:`attend`), self-attention
(:class:`Attention`), cross-attention (:class:`CrossAttention`), windowed self-attention
(:class:`WindowAttention`, :func:`window_partition`, :func:`window_reverse`) and a learned relative
position bias (:class:`RelativePositionBias`).

:func:`attend` computes ``softmax((q k^T) * scale * logit_scale + bias) v`` on ``(B, heads, N, d)``
tensors. Without ``logit_scale`` it is one call to ``F.scaled_dot_product_attention`` (fused kernels
on every device; ``bias`` is SDPA's additive float mask, a boolean ``bias`` is SDPA's keep-mask); a
multiplicative ``logit_scale`` (e.g. the Gaussian-mixture mask of "RetNet viewed through
convolution", or the temperatures of patch-robust ViTs) needs the explicit product. Every model in
subband that attends calls :func:`attend`, through these modules or with its own projections (CvT's
convolutional projections, Next-ViT's spatially reduced keys).

Parameter names follow timm (``qkv``, ``proj``; cross-attention ``wq``, ``wk``, ``wv``, ``proj``;
``relative_position_bias_table``) so timm checkpoints map without renaming.

Shape:
    :func:`attend`: ``q (B, h, Nq, d)``, ``k (B, h, Nk, d)``, ``v (B, h, Nk, dv) -> (B, h, Nq, dv)``;
    ``bias`` and ``logit_scale`` broadcast to ``(B, h, Nq, Nk)``.
    :class:`Attention`: ``(B, N, C) -> (B, N, C)``. :class:`CrossAttention`: ``x (B, Nq, C)``,
    ``context (B, Nk, C) -> (B, Nq, C)``. :class:`WindowAttention`: ``(B, H, W, C) -> (B, H, W, C)``.

Example:
    >>> attn = Attention(64, num_heads=4)
    >>> attn(torch.randn(2, 50, 64)).shape
    torch.Size([2, 50, 64])
    >>> WindowAttention(64, 4, window_size=7)(torch.randn(2, 14, 14, 64)).shape
    torch.Size([2, 14, 14, 64])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "attend",
    "Attention",
    "CrossAttention",
    "WindowAttention",
    "RelativePositionBias",
    "window_partition",
    "window_reverse",
]


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    logit_scale: torch.Tensor | None = None,
    scale: float | None = None,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """``softmax((q k^T) * scale * logit_scale + bias) v`` (see the module docstring for shapes).

    Args:
        q, k, v: queries, keys, values, heads in dim 1.
        bias: additive term on the logits (relative positions, masks with ``-inf``), or a boolean
            mask where ``True`` keeps a key.
        logit_scale: multiplicative term on the scaled logits (before ``bias`` and the softmax).
        scale: the logits' scale; ``1/sqrt(d)`` by default.
        dropout_p: dropout on the attention probabilities (pass 0 in eval).
    """
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(f"q, k, v must be (B, heads, N, d), got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"q/k head dims or k/v lengths differ: {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    if logit_scale is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p, scale=scale)
    logits = (q * scale) @ k.transpose(-2, -1) * logit_scale  # (B, h, Nq, Nk)
    if bias is not None:
        logits = logits.masked_fill(~bias, float("-inf")) if bias.dtype == torch.bool else logits + bias
    attn = F.dropout(logits.softmax(-1), dropout_p)
    return attn @ v  # (B, h, Nq, dv)


def _heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    b, n, _ = x.shape
    return x.view(b, n, num_heads, -1).transpose(1, 2)  # (B, N, h*d) -> (B, h, N, d)


def _merge(x: torch.Tensor) -> torch.Tensor:
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)  # (B, h, N, d) -> (B, N, h*d)


def _check_heads(dim: int, num_heads: int, head_dim: int | None) -> int:
    if num_heads < 1:
        raise ValueError(f"num_heads must be positive, got {num_heads}")
    if head_dim is None:
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads}), or give head_dim")
        head_dim = dim // num_heads
    if head_dim < 1:
        raise ValueError(f"head_dim must be positive, got {head_dim}")
    return head_dim


class Attention(nn.Module):
    """Multi-head self-attention: ``proj(attend(q, k, v))`` with ``q, k, v = qkv(x)``.

    Args:
        dim: token width ``C``.
        num_heads: number of heads.
        head_dim: width per head (``dim // num_heads`` by default; set it for an inner width
            ``num_heads * head_dim`` different from ``dim``).
        qkv_bias: bias on the ``qkv`` projection.
        attn_drop: dropout on the attention probabilities (training only).
        proj_drop: dropout after ``proj``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        head_dim: int | None = None,
        qkv_bias: bool = False,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_heads, self.head_dim = num_heads, _check_heads(dim, num_heads, head_dim)
        self.temperature = 1.0  # softmax temperature (> 1 flattens the attention; see interpret.robustness)
        inner = num_heads * self.head_dim
        self.qkv = nn.Linear(dim, 3 * inner, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(inner, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(
        self, x: torch.Tensor, bias: torch.Tensor | None = None, logit_scale: torch.Tensor | None = None
    ) -> torch.Tensor:
        b, n, _ = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, h, N, d)
        drop = self.attn_drop if self.training else 0.0
        scale = self.head_dim**-0.5 / self.temperature
        y = attend(qkv[0], qkv[1], qkv[2], bias=bias, logit_scale=logit_scale, scale=scale, dropout_p=drop)
        return self.proj_drop(self.proj(_merge(y)))

    def extra_repr(self) -> str:
        t = "" if self.temperature == 1.0 else f", temperature={self.temperature}"
        return f"num_heads={self.num_heads}, head_dim={self.head_dim}{t}"


class CrossAttention(nn.Module):
    """Multi-head cross-attention: queries from ``x``, keys and values from ``context``.

    Args: as :class:`Attention`; ``context_dim`` is the width of ``context`` (``dim`` by default).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        head_dim: int | None = None,
        qkv_bias: bool = False,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        context_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.num_heads, self.head_dim = num_heads, _check_heads(dim, num_heads, head_dim)
        inner, cdim = num_heads * self.head_dim, dim if context_dim is None else context_dim
        self.wq = nn.Linear(dim, inner, bias=qkv_bias)
        self.wk = nn.Linear(cdim, inner, bias=qkv_bias)
        self.wv = nn.Linear(cdim, inner, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(inner, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        bias: torch.Tensor | None = None,
        logit_scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        q, k, v = (_heads(f(t), self.num_heads) for f, t in ((self.wq, x), (self.wk, context), (self.wv, context)))
        drop = self.attn_drop if self.training else 0.0
        y = attend(q, k, v, bias=bias, logit_scale=logit_scale, dropout_p=drop)  # (B, h, Nq, d)
        return self.proj_drop(self.proj(_merge(y)))

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, head_dim={self.head_dim}"


def _pair(v: int | tuple[int, int], name: str) -> tuple[int, int]:
    out = (v, v) if isinstance(v, int) else tuple(v)
    if len(out) != 2 or min(out) < 1:
        raise ValueError(f"{name} must be a positive int or a pair of them, got {v}")
    return out  # type: ignore[return-value]


class RelativePositionBias(nn.Module):
    """A learned bias per head and relative offset on a ``(Wh, Ww)`` token grid (Swin's table).

    ``forward()`` returns the ``(heads, Wh*Ww, Wh*Ww)`` bias whose entry ``(h, i, j)`` is the table
    entry of head ``h`` at the offset between tokens ``i`` and ``j`` (row-major grid positions).
    """

    def __init__(self, window_size: int | tuple[int, int], num_heads: int) -> None:
        super().__init__()
        self.window_size = wh, ww = _pair(window_size, "window_size")
        self.num_heads = num_heads
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * wh - 1) * (2 * ww - 1), num_heads))
        ys, xs = torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")
        pos = torch.stack([ys.flatten(), xs.flatten()])  # (2, N)
        rel = pos[:, :, None] - pos[:, None, :]  # (2, N, N), offsets in [-(W-1), W-1]
        index = (rel[0] + wh - 1) * (2 * ww - 1) + (rel[1] + ww - 1)
        self.register_buffer("relative_position_index", index, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self) -> torch.Tensor:
        n = self.relative_position_index.shape[0]
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]  # (N*N, heads)
        return bias.view(n, n, self.num_heads).permute(2, 0, 1)  # (heads, N, N)

    def extra_repr(self) -> str:
        return f"window_size={self.window_size}, num_heads={self.num_heads}"


def window_partition(x: torch.Tensor, window_size: tuple[int, int]) -> torch.Tensor:
    """``(B, H, W, C) -> (B * H/wh * W/ww, wh * ww, C)``: non-overlapping windows, row-major."""
    b, h, w, c = x.shape
    wh, ww = window_size
    if h % wh or w % ww:
        raise ValueError(f"map {h}x{w} is not divisible into {wh}x{ww} windows (pad it first)")
    x = x.view(b, h // wh, wh, w // ww, ww, c)  # (B, nh, wh, nw, ww, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, wh * ww, c)


def window_reverse(windows: torch.Tensor, window_size: tuple[int, int], h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(B * nW, wh * ww, C) -> (B, H, W, C)``."""
    wh, ww = window_size
    c = windows.shape[-1]
    x = windows.view(-1, h // wh, w // ww, wh, ww, c)  # (B, nh, nw, wh, ww, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


class WindowAttention(nn.Module):
    """Self-attention inside non-overlapping ``window_size`` windows with a learned relative
    position bias, optionally on a map cyclically shifted by ``shift`` (Swin). The map is zero-padded
    to a multiple of the window; padded tokens are masked out as keys.

    Args:
        dim, num_heads, head_dim, qkv_bias, attn_drop, proj_drop: as :class:`Attention`.
        window_size: window height and width.
        shift: cyclic shift of the map before partitioning (0: none). With a shift, tokens that
            were not neighbours before the roll do not attend to each other (Swin's mask).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int | tuple[int, int] = 7,
        shift: int = 0,
        head_dim: int | None = None,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        self.window_size = _pair(window_size, "window_size")
        if not 0 <= shift < min(self.window_size):
            raise ValueError(f"shift must be in [0, {min(self.window_size)}), got {shift}")
        self.shift = shift
        self.attn = Attention(dim, num_heads, head_dim, qkv_bias, attn_drop, proj_drop)
        self.relative_position = RelativePositionBias(self.window_size, num_heads)

    def _region_mask(self, h: int, w: int, valid_h: int, valid_w: int, device: torch.device) -> torch.Tensor:
        """``(nW, N, N)`` boolean: token pairs of a window that may attend (same region, real keys)."""
        (wh, ww), s = self.window_size, self.shift
        region = torch.zeros(h, w, device=device)
        valid = torch.zeros(h, w, dtype=torch.bool, device=device)
        valid[:valid_h, :valid_w] = True
        if s:
            bounds = ((0, h - wh), (h - wh, h - s), (h - s, h)), ((0, w - ww), (w - ww, w - s), (w - s, w))
            for i, (y0, y1) in enumerate(bounds[0]):
                for j, (x0, x1) in enumerate(bounds[1]):
                    region[y0:y1, x0:x1] = 3 * i + j
            valid = valid.roll((-s, -s), (0, 1))
        r = window_partition(region[None, :, :, None], self.window_size)[..., 0]  # (nW, N)
        keep = window_partition(valid[None, :, :, None].float(), self.window_size)[..., 0] > 0
        # a padded query keeps itself, so no row is empty (not torch.eye: onnxruntime has no boolean EyeLike)
        idx = torch.arange(r.shape[1], device=device)
        eye = idx[:, None] == idx[None, :]
        return (r[:, :, None] == r[:, None, :]) & keep[:, None, :] | eye  # (nW, N, N)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        wh, ww = self.window_size
        ph, pw = -h % wh, -w % ww
        x = F.pad(x, (0, 0, 0, pw, 0, ph))  # (B, H', W', C)
        hp, wp = h + ph, w + pw
        if self.shift:
            x = x.roll((-self.shift, -self.shift), (1, 2))
        windows = window_partition(x, self.window_size)  # (B*nW, N, C)
        bias = self.relative_position()  # (heads, N, N)
        if self.shift or ph or pw:
            keep = self._region_mask(hp, wp, h, w, x.device)  # (nW, N, N)
            n_w = keep.shape[0]
            bias = bias.expand(b * n_w, -1, -1, -1).masked_fill(~keep.repeat(b, 1, 1)[:, None], float("-inf"))
        y = window_reverse(self.attn(windows, bias=bias), self.window_size, hp, wp)  # (B, H', W', C)
        if self.shift:
            y = y.roll((self.shift, self.shift), (1, 2))
        return y[:, :h, :w]

    def extra_repr(self) -> str:
        return f"window_size={self.window_size}, shift={self.shift}"
