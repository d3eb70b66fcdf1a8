"""Boundary extension along one axis, in all nine PyWavelets modes, its adjoint (``fold_axes``), and
the buffer helpers of the flat passes: a border of zeros or of the extension laid down in place
(``zero_border``, ``band_border``, ``wrap``, ``phase_border``), the phase split that lays it
down while it copies the input (``phase_split``) and the interleave of two phases.

Every mode is written as a gather (``index_select``) plus, where the mode needs it, a sign or a
linear term in the edge samples, so any pad width works, including widths longer than the signal
(the extension then continues the way PyWavelets continues it).
"""

from __future__ import annotations

import torch

from ._filters import check_mode

__all__ = ["pad", "pad_axis"]


_Plan = tuple[list[int], "list[float] | None", "list[float] | None", "list[float] | None"]
_PLANS: dict[tuple[int, int, int, str], _Plan] = {}  # a plain dict: torch.compile traces it without warnings


def _plan(n: int, left: int, right: int, mode: str) -> _Plan:
    if torch.compiler.is_compiling():  # built while tracing: dynamo would walk every cached plan
        return _make_plan(n, left, right, mode)
    key = (n, left, right, mode)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS[key] = _make_plan(n, left, right, mode)
    return plan


def _make_plan(n: int, left: int, right: int, mode: str) -> _Plan:
    """Source index, sign, and weights of x[0] and x[n-1] for each output sample.

    extended[i] = sign[i] * x[idx[i]] + w0[i] * x[0] + w1[i] * x[n - 1]
    """
    pos = range(-left, n + right)
    if mode in ("periodic", "periodization"):
        return [i % n for i in pos], None, None, None
    if mode == "constant" or (n == 1 and mode in ("reflect", "antireflect", "smooth")):
        return [min(max(i, 0), n - 1) for i in pos], None, None, None
    if mode in ("symmetric", "antisymmetric"):  # half-sample (anti)symmetric, period 2n
        idx, sign = [], []
        for i in pos:
            m = i % (2 * n)
            idx.append(m if m < n else 2 * n - 1 - m)
            sign.append(-1.0 if (mode == "antisymmetric" and (i // n) % 2) else 1.0)
        return idx, (sign if mode == "antisymmetric" else None), None, None
    if mode in ("reflect", "antireflect"):  # whole-sample (anti)symmetric, period 2(n-1)
        p = 2 * (n - 1)
        idx, sign, w0, w1 = [], [], [], []
        for i in pos:
            q, m = divmod(i, p)
            idx.append(m if m < n else p - m)
            if mode == "antireflect":  # odd reflection: a point reflection at each end plus drift
                flip = m >= n
                sign.append(-1.0 if flip else 1.0)
                w0.append(-2.0 * q)
                w1.append(2.0 * q + (2.0 if flip else 0.0))
        if mode == "reflect":
            return idx, None, None, None
        return idx, sign, w0, w1
    if mode == "smooth":  # linear extrapolation of the first / last two samples
        idx, sign, w0, w1 = [], [], [], []
        for i in pos:
            if i < 0:  # x0 + (-i)(x0 - x1)
                idx.append(1), sign.append(float(i)), w0.append(1.0 - i), w1.append(0.0)
            elif i >= n:  # x[n-1] + k (x[n-1] - x[n-2])
                k = i - n + 1
                idx.append(n - 2), sign.append(float(-k)), w0.append(0.0), w1.append(1.0 + k)
            else:
                idx.append(i), sign.append(1.0), w0.append(0.0), w1.append(0.0)
        return idx, sign, w0, w1
    raise AssertionError(mode)


def pad_axis(x: torch.Tensor, left: int, right: int, mode: str, dim: int = -1) -> torch.Tensor:
    """Extend ``x`` along ``dim`` by ``left`` and ``right`` samples with boundary ``mode``.

    ``periodization`` pads like ``periodic`` here; the odd-length promotion that PyWavelets does
    for ``periodization`` is the transform's job.
    """
    if left < 0 or right < 0:
        raise ValueError(f"pad widths must be >= 0, got ({left}, {right})")
    if left == 0 and right == 0:
        return x
    dim = dim % x.ndim
    if x.shape[dim] == 0:
        raise ValueError("cannot extend an empty axis")
    if torch.compiler.is_compiling():  # traced as the plain gather and concatenation
        return _extend(x, left, right, mode, dim)
    return _Extend.apply(x, left, right, mode, dim)


# PyWavelets' modes that ``F.pad`` has, and ``symmetric`` (half-sample): ``reflect``, then each
# border mended by a mirrored copy of the samples inside it. ``zero`` stays out: the transforms pad
# zeros inside the convolution, or with a plain constant pad.
_TORCH_MODES = {
    "periodic": "circular",
    "periodization": "circular",
    "reflect": "reflect",
    "constant": "replicate",
    "symmetric": "reflect",
}


def pad_axes(x: torch.Tensor, widths: list[tuple[int, int]], mode: str) -> torch.Tensor:
    """Extend the last ``len(widths)`` axes of ``x (B, *N)`` (one to three) by ``(left, right)`` each.

    One ``F.pad`` call, which writes the extended tensor in one pass, where PyTorch has the mode (or,
    for ``symmetric``, its ``reflect`` with the borders mended) and the widths are within what it
    supports; otherwise :func:`pad_axis` along each axis.
    """
    k = len(widths)
    sizes = x.shape[x.ndim - k :]
    if any(v < 0 for w in widths for v in w):
        raise ValueError(f"pad widths must be >= 0, got {widths}")
    fits = {
        "circular": all(max(w) <= n for w, n in zip(widths, sizes)),
        "reflect": all(max(w) < n for w, n in zip(widths, sizes)),
        "replicate": True,
    }
    torch_mode = _TORCH_MODES.get(mode)
    one_pass = torch_mode is not None and 1 <= k <= 3 and x.ndim == k + 1 and min(sizes) > 0 and fits[torch_mode]
    # compiled, the per-axis gathers and concatenations fuse better (F.pad's circular mode made the
    # compiled db4 periodization transforms 2x slower)
    if one_pass and any(map(any, widths)) and not torch.compiler.is_compiling():
        return _PadAxes.apply(x, widths, mode)
    for i, (left, right) in enumerate(widths):
        x = pad_axis(x, left, right, mode, x.ndim - k + i)
    return x


class _PadAxes(torch.autograd.Function):
    """``F.pad`` forward; the backward folds the extensions back one axis at a time (:class:`_Fold`,
    differentiable again), which is faster than ``F.pad``'s own backward of its circular mode."""

    @staticmethod
    def forward(ctx, x, widths, mode):  # type: ignore[no-untyped-def, override]
        ctx.args = (x.shape, widths, mode)
        flat = [v for w in reversed(widths) for v in w]  # F.pad lists the last axis first
        y = torch.nn.functional.pad(x.unsqueeze(1), flat, mode=_TORCH_MODES[mode]).squeeze(1)
        if mode == "symmetric":  # whole-sample mirror -> half-sample: the border is the flipped edge
            for i, (left, right) in enumerate(widths):
                d, n = y.ndim - len(widths) + i, x.shape[x.ndim - len(widths) + i]
                if left:
                    y.narrow(d, 0, left).copy_(y.narrow(d, left, left).flip(d))
                if right:
                    y.narrow(d, left + n, right).copy_(y.narrow(d, left + n - right, right).flip(d))
        return y

    @staticmethod
    def backward(ctx, g):  # type: ignore[no-untyped-def, override]
        shape, widths, mode = ctx.args
        return fold_axes(g, shape, widths, mode), None, None


def _extend(x: torch.Tensor, left: int, right: int, mode: str, dim: int) -> torch.Tensor:
    n = x.shape[dim]
    # the body is copied as is; only the two extensions are gathered (a gather along the last,
    # contiguous axis is far slower than the block copies of torch.cat)
    parts = [_extension(x, n, left, right, mode, dim, 0, left)] if left else []
    parts.append(x)
    if right:
        parts.append(_extension(x, n, left, right, mode, dim, left + n, left + n + right))
    return torch.cat(parts, dim)


def _fold(g: torch.Tensor, n: int, left: int, right: int, mode: str, dim: int) -> torch.Tensor:
    """The adjoint of :func:`_extend`: the body of ``g`` plus the extensions added back where they
    were read from, in one new tensor (autograd's own backward of the gathers and the concatenation
    allocates a full-size tensor for each part). Runs without autograd (inside :class:`_Fold`)."""
    gx = g.narrow(dim, left, n).clone()
    if mode == "zero":
        return gx
    idx, sign, w0, w1 = _plan(n, left, right, mode)
    view = [1] * g.ndim
    view[dim] = -1

    def vec(v: list[float], start: int, stop: int) -> torch.Tensor:
        return torch.tensor(v[start:stop], dtype=g.dtype, device=g.device).view(view)

    for start, stop in ((0, left), (left + n, left + n + right)):
        if stop == start:
            continue
        ge = g.narrow(dim, start, stop - start)
        signed = ge if sign is None else ge * vec(sign, start, stop)
        gx.index_add_(dim, torch.tensor(idx[start:stop], device=g.device), signed)
        if w0 is not None and w1 is not None:  # the edge samples' linear terms
            gx.narrow(dim, 0, 1).add_((ge * vec(w0, start, stop)).sum(dim, keepdim=True))
            gx.narrow(dim, n - 1, 1).add_((ge * vec(w1, start, stop)).sum(dim, keepdim=True))
    return gx


class _Extend(torch.autograd.Function):
    """:func:`_extend` with :func:`_fold`, its adjoint, as the backward (itself differentiable)."""

    @staticmethod
    def forward(ctx, x, left, right, mode, dim):  # type: ignore[no-untyped-def, override]
        ctx.args = (x.shape[dim], left, right, mode, dim)
        return _extend(x, left, right, mode, dim)

    @staticmethod
    def backward(ctx, g):  # type: ignore[no-untyped-def, override]
        return _Fold.apply(g, *ctx.args), None, None, None, None


class _Fold(torch.autograd.Function):
    @staticmethod
    def forward(ctx, g, n, left, right, mode, dim):  # type: ignore[no-untyped-def, override]
        ctx.args = (left, right, mode, dim)
        return _fold(g, n, left, right, mode, dim)

    @staticmethod
    def backward(ctx, gg):  # type: ignore[no-untyped-def, override]
        return _Extend.apply(gg, *ctx.args), None, None, None, None, None


def _extension(
    x: torch.Tensor, n: int, left: int, right: int, mode: str, dim: int, start: int, stop: int
) -> torch.Tensor:
    """Samples ``start:stop`` of the extended signal (which begins ``left`` samples before ``x``)."""
    if mode == "zero":
        shape = list(x.shape)
        shape[dim] = stop - start
        return x.new_zeros(shape)
    idx, sign, w0, w1 = (None if v is None else v[start:stop] for v in _plan(n, left, right, mode))
    out = x.index_select(dim, torch.tensor(idx, device=x.device))
    if sign is None:
        return out
    view = [1] * x.ndim
    view[dim] = -1

    def vec(v: list[float]) -> torch.Tensor:
        return torch.tensor(v, dtype=x.dtype, device=x.device).view(view)

    out = out * vec(sign)
    if w0 is not None and w1 is not None:
        out = out + vec(w0) * x.narrow(dim, 0, 1) + vec(w1) * x.narrow(dim, n - 1, 1)
    return out


def interleave(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Two real tensors of one shape ``(..., n)`` -> ``(..., 2n)`` with ``a`` at the even and ``b`` at
    the odd positions of the last axis, in one pass (a complex number is such a pair); into ``out``
    if given (its last axis contiguous, starting at an even offset)."""
    if out is None:
        out = a.new_empty(*a.shape[:-1], 2 * a.shape[-1])
    torch.complex(a, b, out=torch.view_as_complex(out.unflatten(-1, (-1, 2))))
    return out


def zero_border(t: torch.Tensor, p: int, row_dim: int = -2) -> None:
    """Zero the outer ``p`` samples along ``row_dim`` and the last axis, in place."""
    for side in (t.narrow(row_dim, 0, p), t.narrow(row_dim, t.shape[row_dim] - p, p), t[..., :p], t[..., -p:]):
        side.zero_()


def band_border(t: torch.Tensor, p: int, mode: str) -> None:
    """Fill the outer ``p`` samples of the last two axes of ``t``, whose interior holds bands, with
    zeros (``zero``) or the interior's periodic extension (``periodic``; ``p`` at most the interior's
    size), in place."""
    if mode == "zero":
        zero_border(t, p)
        return
    assert mode == "periodic", mode
    wrap(t, p, p, p, p)


def wrap(t: torch.Tensor, top: int, bottom: int, left: int, right: int) -> None:
    """Fill a border of the last two axes of ``t`` (``top`` rows above the interior, ``bottom``
    below, ``left`` and ``right`` columns beside it; none wider than the interior) with the
    interior's periodic extension, in place."""
    M, N = t.shape[-2:]
    PM, PN = M - top - bottom, N - left - right
    inner = t[..., top : M - bottom, :]
    inner[..., :left].copy_(inner[..., PN : PN + left])
    inner[..., N - right :].copy_(inner[..., left : left + right])
    t[..., :top, :].copy_(t[..., PM : PM + top, :])
    t[..., M - bottom :, :].copy_(t[..., top : top + bottom, :])


def phase_split(xs: torch.Tensor, x: torch.Tensor, q: int, mode: str, scale: float | torch.Tensor = 1.0) -> None:
    """Fill ``xs (2 column phases, B, H/2 + q, 2 row phases, W/2 + q)`` with the phase split of
    ``x (B, H, W)`` extended by ``q`` samples on each side of both axes in ``mode``, times ``scale``
    (a number, or a ``(2, 1, 1, 2, 1)`` tensor over column and row phases): one copy of ``x`` and the
    border strips. An odd ``q`` (periodic modes, ``q`` less than the sizes) puts each of ``x``'s
    phases into the other's place, one sample further along."""
    B, H, W = x.shape
    Hh, Wh = xs.shape[2], xs.shape[4]
    if q % 2 == 0:
        p = q // 2
        src = x.view(B, H // 2, 2, W // 2, 2).permute(4, 0, 1, 2, 3)
        torch.mul(src, scale, out=xs[:, :, p : Hh - p, :, p : Wh - p])
        if p:
            phase_border(xs, x, p, mode, scale)
        return
    assert mode in ("periodic", "periodization") and q < min(H, W), (mode, q, H, W)
    rows = xs.view(2, B, 2 * Hh, Wh)  # per column phase, the extended rows in order
    for c in range(2):
        o = (q + 1 - 2 * c) // 2  # column 2i + c of the extension is x's column 2(i - o) + 1 - c
        s = scale[c].flip(2) if isinstance(scale, torch.Tensor) else scale  # row r of x: phase 1 - r
        dst = rows[c, :, q : q + H, o : o + W // 2].unflatten(1, (H // 2, 2))
        torch.mul(x[..., 1 - c :: 2].unflatten(1, (H // 2, 2)), s, out=dst)
        wrap(rows[c], q, q, o, Wh - o - W // 2)


def phase_border(xs: torch.Tensor, x: torch.Tensor, p: int, mode: str, scale: float | torch.Tensor = 1.0) -> None:
    """Fill the border of ``xs (2 column phases, B, H/2 + 2p, 2 row phases, W/2 + 2p)``, the phase
    split of ``x (B, H, W)`` extended by ``2p`` samples on each side of both axes in ``mode``, times
    ``scale`` (the caller wrote the interior): the extension is gathered for the border strips only."""
    if mode == "zero":
        zero_border(xs, p, row_dim=2)
        return
    B, H, W = x.shape
    q, Hh, Wh = 2 * p, xs.shape[2], xs.shape[4]

    def split(t: torch.Tensor) -> torch.Tensor:  # (B, rows, cols) -> (col phase, B, rows/2, row phase, cols/2)
        return t.view(B, t.shape[1] // 2, 2, t.shape[2] // 2, 2).permute(4, 0, 1, 2, 3)

    # top and bottom strips with the corners: the rows' extension, then extended along the columns
    for start, dst in ((0, xs[:, :, :p]), (q + H, xs[:, :, Hh - p :])):
        rows = _extend(_extension(x, H, q, q, mode, 1, start, start + q), q, q, mode, 2)  # (B, q, W + 2q)
        torch.mul(split(rows), scale, out=dst)
    # left and right strips beside the rows of x
    for start, dst in ((0, xs[..., :p]), (q + W, xs[..., Wh - p :])):
        cols = _extension(x, W, q, q, mode, 2, start, start + q)  # (B, H, q)
        torch.mul(split(cols), scale, out=dst[:, :, p : Hh - p])


def fold_axes(
    g: torch.Tensor, shape: torch.Size | tuple[int, ...], widths: list[tuple[int, int]], mode: str
) -> torch.Tensor:
    """The adjoint of extending the last ``len(widths)`` axes of a tensor of ``shape``: ``g``'s
    extensions added back where they were read from, one axis at a time (differentiable again)."""
    k = len(widths)
    for i in reversed(range(k)):
        d = g.ndim - k + i
        if any(widths[i]):
            g = _Fold.apply(g, shape[d], *widths[i], mode, d)
    return g


def pad(x: torch.Tensor, pad_widths: int | tuple, mode: str) -> torch.Tensor:
    """Extend every axis of ``x`` like ``pywt.pad``.

    Args:
        x: tensor to extend.
        pad_widths: ``int`` for every side of every axis, ``(before, after)`` for every axis, or
            ``((before_1, after_1), ..., (before_N, after_N))``.
        mode: one of the nine boundary modes.

    Example:
        >>> pad(torch.tensor([1., 2., 3.]), 2, "symmetric")
        tensor([2., 1., 1., 2., 3., 3., 2.])
    """
    check_mode(mode)
    if isinstance(pad_widths, int):
        widths = [(pad_widths, pad_widths)] * x.ndim
    elif len(pad_widths) == 2 and all(isinstance(p, int) for p in pad_widths):
        widths = [tuple(pad_widths)] * x.ndim  # type: ignore[list-item]
    elif len(pad_widths) == 1:
        widths = [tuple(pad_widths[0])] * x.ndim
    else:
        widths = [tuple(p) for p in pad_widths]
    if len(widths) != x.ndim:
        raise ValueError(f"pad_widths has {len(widths)} entries for a {x.ndim}-d tensor")
    if mode == "periodization":  # odd lengths first gain a copy of their last sample
        x = pad_axes(x[None], [(0, n % 2) for n in x.shape], "constant")[0]
    return pad_axes(x[None], [(int(lo), int(hi)) for lo, hi in widths], mode)[0]
