"""WERSA: wavelet-enhanced random spectral attention ("Scaling Attention to Very Long Sequences in
Linear Time with Wavelet-Enhanced Random Spectral Attention", Dentamaro et al.; arXiv 2507.08637).

No implementation has been published (the authors' repository holds a README only), so this is
subband's reading of the abstract and README: linear-time attention that

1. decomposes queries and keys along the sequence with a ``levels``-level orthonormal Haar
   transform and re-weights every scale (approximation and each detail level) per head with a
   learned gain times a content-adaptive gate (a sigmoid of a linear map of the mean token), then
   transforms back (with all weights 1 this is the identity: perfect reconstruction);
2. maps queries and keys to ``features`` positive random spectral features
   ``phi(x) = exp(W x / s - |x / s|^2 / 2) / sqrt(m)`` (Performer's FAVOR+ estimator of the softmax
   kernel; ``W`` Gaussian, orthogonalised, fixed per layer), with a learned per-head bandwidth
   ``s`` on top of the usual ``d^(1/4)``;
3. attends in linear time, ``phi(q) (phi(k)^T v) / (phi(q) phi(k)^T 1)``, or causally with prefix sums.

Cost: ``O(N m d)`` time and ``O(m d)`` extra memory per head (``N`` tokens, ``m`` features), against
``O(N^2 d)`` for softmax attention (see ``benchmarks/spectral.py``).

Shape:
    ``(B, N, C) -> (B, N, C)``.

Example:
    >>> attn = WERSA(64, num_heads=4, levels=3, features=32)
    >>> attn(torch.randn(2, 100, 64)).shape
    torch.Size([2, 100, 64])
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..wavelets import wavedec, waverec

__all__ = ["WERSA", "random_feature_attention", "positive_random_features"]


def positive_random_features(x: torch.Tensor, projection: torch.Tensor, is_query: bool) -> torch.Tensor:
    """FAVOR+ features ``exp(x W^T - |x|^2 / 2) / sqrt(m)`` of ``x (B, h, N, d)`` for ``W (m, d)``:
    ``E[phi(q) . phi(k)] = exp(q . k)``. For stability a maximum is subtracted in the exponent: per
    query row, and over all keys of a head for keys; both constants cancel in the attention's
    normalisation."""
    proj = x @ projection.T  # (B, h, N, m)
    logits = proj - x.pow(2).sum(-1, keepdim=True) / 2
    shift = logits.amax(-1, keepdim=True) if is_query else logits.amax((-2, -1), keepdim=True)
    return torch.exp(logits - shift.detach()) / math.sqrt(projection.shape[0])


def random_feature_attention(
    qf: torch.Tensor, kf: torch.Tensor, v: torch.Tensor, causal: bool = False, eps: float = 1e-6
) -> torch.Tensor:
    """Linear attention on features ``qf, kf (B, h, N, m)`` and values ``v (B, h, N, d)``."""
    if causal:
        kv = torch.einsum("bhnm,bhnd->bhnmd", kf, v).cumsum(2)  # prefix sums: token t sees keys <= t
        num = torch.einsum("bhnm,bhnmd->bhnd", qf, kv)
        den = torch.einsum("bhnm,bhnm->bhn", qf, kf.cumsum(2))
    else:
        num = qf @ (kf.transpose(-2, -1) @ v)  # (B, h, N, m) @ (B, h, m, d)
        den = (qf @ kf.sum(2, keepdim=True).transpose(-2, -1)).squeeze(-1)  # (B, h, N)
    return num / (den.unsqueeze(-1) + eps)


def _orthogonal_gaussian(m: int, d: int, generator: torch.Generator | None) -> torch.Tensor:
    """``(m, d)`` Gaussian rows, orthogonalised in blocks of ``d`` with chi-distributed norms."""
    blocks = []
    for _ in range(math.ceil(m / d)):
        q, _ = torch.linalg.qr(torch.randn(d, d, generator=generator))
        blocks.append(q.T)
    w = torch.cat(blocks)[:m]
    norms = torch.randn(m, d, generator=generator).norm(dim=1, keepdim=True)
    return w * norms


class WERSA(nn.Module):
    """Wavelet-enhanced random spectral attention (see the module docstring).

    Args:
        dim: token width.
        num_heads: heads (``dim`` divisible by it).
        levels: Haar levels along the sequence (0: no wavelet re-weighting).
        features: random features per head ``m``.
        causal: attend only to earlier tokens (prefix sums).
        qkv_bias: bias on the ``qkv`` projection.
        seed: seed of the fixed random projection (reproducible layers).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        levels: int = 4,
        features: int = 128,
        causal: bool = False,
        qkv_bias: bool = False,
        seed: int | None = 0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        if levels < 0 or features < 1:
            raise ValueError(f"levels must be >= 0 and features >= 1, got {levels}, {features}")
        self.num_heads, self.head_dim, self.levels, self.features, self.causal = (
            num_heads, dim // num_heads, levels, features, causal)  # fmt: skip
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.scale_gain = nn.Parameter(torch.ones(num_heads, levels + 1))  # per head and scale
        self.scale_gate = nn.Linear(dim, num_heads * (levels + 1))  # content-adaptive part
        self.log_bandwidth = nn.Parameter(torch.zeros(num_heads))
        g = None if seed is None else torch.Generator().manual_seed(seed)
        self.register_buffer("projection", _orthogonal_gaussian(features, self.head_dim, g), persistent=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.ones_(self.scale_gain)
        nn.init.zeros_(self.scale_gate.weight)
        nn.init.constant_(self.scale_gate.bias, 5.0)  # gates start near 1: plain random-feature attention
        nn.init.zeros_(self.log_bandwidth)

    def _reweight(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Haar-decompose ``x (B, h, N, d)`` along N, scale band ``j`` by ``weights[..., j]``, invert."""
        n = x.shape[2]
        levels = min(self.levels, max(int(math.log2(max(n, 1))), 0))
        if levels == 0:
            return x * weights[..., :1]
        coeffs = wavedec(x, "haar", level=levels, mode="periodization", axis=2)  # [cA_J, cD_J, ..., cD_1]
        scaled = [c * weights[..., j : j + 1] for j, c in enumerate(coeffs)]  # (B, h, 1, 1) per band
        return waverec(scaled, "haar", mode="periodization", axis=2)[:, :, :n]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, h, N, d)
        q, k, v = qkv.unbind(0)
        if self.levels:
            gate = torch.sigmoid(self.scale_gate(x.mean(1))).view(b, self.num_heads, self.levels + 1)
            w = (self.scale_gain * gate).unsqueeze(2)  # (B, h, 1, levels + 1)
            q, k = self._reweight(q, w), self._reweight(k, w)
        s = (self.head_dim**0.25 * self.log_bandwidth.exp()).view(1, -1, 1, 1)
        qf = positive_random_features(q / s, self.projection, is_query=True)
        kf = positive_random_features(k / s, self.projection, is_query=False)
        y = random_feature_attention(qf, kf, v, self.causal)  # (B, h, N, d)
        return self.proj(y.transpose(1, 2).reshape(b, n, c))

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, levels={self.levels}, features={self.features}, causal={self.causal}"
