"""The selective scan of Mamba ("Mamba: Linear-Time Sequence Modeling with Selective State Spaces",
Gu, Dao; arXiv 2312.00752), in pure PyTorch: the input-dependent linear recurrence behind Mamba
blocks and the SS2D layers of vision Mambas (MobileMamba, VMamba), on any device, differentiable
by autograd. Same arguments and semantics as ``mamba_ssm``'s ``selective_scan_fn``.

Per channel ``d`` and state ``n``, with ``delta = softplus(delta + delta_bias)`` (if asked):

    h_t = exp(delta_t A_{d,n}) h_{t-1} + delta_t B_{n,t} u_t,    y_t = sum_n C_{n,t} h_t + D_d u_t,

and ``y * silu(z)`` if ``z`` is given. The scan runs in chunks of ``chunk`` steps: inside a
chunk, every output is a decay-weighted sum over the chunk (the decays ``exp(S_t - S_s)`` from a
cumulative sum of ``delta A``, masked to ``s <= t``, never exponentiating a positive number), and
the state is carried from chunk to chunk. Memory per chunk is ``B x D x chunk^2 x N``.

Shape:
    ``u, delta, z: (B, D, L)``; ``A: (D, N)``; ``B, C: (B, N, L)`` or grouped ``(B, G, N, L)``
    (``G`` divides ``D``); ``D, delta_bias: (D,)`` -> ``y: (B, D, L)`` (and the last state
    ``(B, D, N)`` with ``return_last_state``).

Example:
    >>> u, delta = torch.randn(2, 8, 100), torch.rand(2, 8, 100)
    >>> A, B, C = -torch.rand(8, 4), torch.randn(2, 4, 100), torch.randn(2, 4, 100)
    >>> selective_scan(u, delta, A, B, C).shape
    torch.Size([2, 8, 100])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["selective_scan"]


def _per_channel(x: torch.Tensor, channels: int, name: str) -> torch.Tensor:
    """``(B, N, L)`` or ``(B, G, N, L)`` -> ``(B, D, L, N)``."""
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4 or channels % x.shape[1]:
        raise ValueError(f"{name} must be (B, N, L) or (B, G, N, L) with G dividing D={channels}, got {tuple(x.shape)}")
    x = x.repeat_interleave(channels // x.shape[1], dim=1) if x.shape[1] > 1 else x
    return x.transpose(-1, -2)  # (B, D or 1, L, N)


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    chunk: int | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Selective scan (see the module docstring). ``chunk``: steps per chunk (default: the largest
    power of two up to 64 that keeps one chunk's decay tensor under 2**24 elements)."""
    if u.ndim != 3 or delta.shape != u.shape:
        raise ValueError(f"u and delta must both be (B, D, L), got {tuple(u.shape)} and {tuple(delta.shape)}")
    bsz, dim, length = u.shape
    if A.ndim != 2 or A.shape[0] != dim:
        raise ValueError(f"A must be (D, N) with D={dim}, got {tuple(A.shape)}")
    n = A.shape[1]
    if delta_bias is not None:
        delta = delta + delta_bias.view(1, -1, 1)
    if delta_softplus:
        delta = F.softplus(delta)
    bv, cv = _per_channel(B, dim, "B"), _per_channel(C, dim, "C")  # (B, D|1, L, N)
    if bv.shape[-1] != n or cv.shape[-1] != n:
        raise ValueError(f"B and C must have N={n} states")
    if chunk is None:
        chunk = 64
        while chunk > 1 and bsz * dim * chunk * chunk * n > 2**24:
            chunk //= 2
    log_decay = delta.unsqueeze(-1) * A.view(1, dim, 1, n)  # (B, D, L, N)
    drive = (delta * u).unsqueeze(-1) * bv  # (B, D, L, N)
    h = u.new_zeros(bsz, dim, n)
    ys = []
    for start in range(0, length, chunk):
        a = log_decay[:, :, start : start + chunk]  # (B, D, t, N)
        t = a.shape[2]
        s = a.cumsum(2)
        seg = s.unsqueeze(3) - s.unsqueeze(2)  # (B, D, t target, t source, N): S_t - S_s
        causal = torch.ones(t, t, dtype=torch.bool, device=u.device).tril().view(1, 1, t, t, 1)
        weights = seg.masked_fill(~causal, float("-inf")).exp()
        states = torch.einsum("bdtsn,bdsn->bdtn", weights, drive[:, :, start : start + t])
        states = states + s.exp() * h.unsqueeze(2)  # the carried state, decayed
        ys.append((states * cv[:, :, start : start + t]).sum(-1))  # (B, D, t)
        h = states[:, :, -1]
    y = torch.cat(ys, -1)
    if D is not None:
        y = y + u * D.view(1, -1, 1)
    if z is not None:
        y = y * F.silu(z)
    return (y, h) if return_last_state else y
