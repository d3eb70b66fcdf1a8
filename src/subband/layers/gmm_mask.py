"""Gaussian mixture mask (GMM) on attention logits, from "Toward a Deeper Understanding: RetNet Viewed
through Convolution" (Li, Zhang; Pattern Recognition 2024; arXiv 2309.05375).

Each head ``h`` gets a mask over the patch grid, a sum of ``K`` Gaussians of the distance between
tokens, with two learnable numbers per component (a width ``sigma`` and a weight ``alpha``)::

    M_h(i, j) = sum_k alpha[k, h] * exp(-|p_i - p_j|^2 / (2 * (sigma[k, h]^2 + eps)))

(``p_i`` the row-major grid position of patch ``i``, in patches; ``eps = 1e-5``), and it multiplies the
scaled attention logits before the softmax: ``softmax(M * (q k^T) / sqrt(d)) v``. Pass it to
:func:`~subband.layers.attend` (or :class:`~subband.layers.Attention`,
:class:`~subband.layers.TransformerBlock`) as ``logit_scale``.

Checked against the official code (CatworldLee/Gaussian-Mixture-Mask-Attention, ``models/gmm.py``,
``models/vit.py``): the mask is ``sum_k alpha_k * D ** (1 / (sigma_k^2 + 1e-5))`` with
``D = exp(-|dp|^2) ** (1/2)``, which is the closed form above; it multiplies the scaled logits (the
README speaks of adding it; the code multiplies); ``sigma`` and ``alpha`` have one value per component
and head, initialised ``sigma ~ N(10, 10^2)``, ``alpha ~ N(0, 2^2)``. Where a model keeps a class token
(the official PiT), only the patch-to-patch logits are masked: rows and columns of prefix tokens keep
a scale of 1 (``num_prefix_tokens``); the official GMM-ViT drops the class token and averages tokens.

Differs from the official code: the Gaussians are evaluated as ``exp(-d^2 / (2 (sigma^2 + eps)))``
rather than as a power of ``exp(-d^2)`` (equal in exact arithmetic; the power form underflows to
``0 ** x`` on grids wider than about 13 patches, whose gradient in ``sigma`` is NaN), once per relative
offset and then gathered (a ``(2h-1) x (2w-1)`` table, as for relative position biases, instead of an
``N x N`` map per component); the grid size is an argument, so any input size works.

``residual=True`` is an option of this library, not of the paper: the mask becomes ``1 + sum_k ...``
and ``alpha`` starts at 0, so a freshly added mask leaves attention exactly as it was (add it to a
pretrained ViT and fine-tune). With the paper's form, all-zero weights make every logit 0 (uniform
attention); there the identity is one component of weight 1 and unbounded width.

Shape:
    :func:`gaussian_mixture_mask`: ``sigma, alpha (K, heads)`` -> ``(heads, N, N)``, ``N = h * w``.
    :class:`GaussianMixtureMask` ``(grid_size, num_prefix_tokens=P)`` -> ``(heads, P + N, P + N)``.

Example:
    >>> gmm = GaussianMixtureMask(num_heads=4, num_kernels=5)
    >>> gmm((8, 8)).shape
    torch.Size([4, 64, 64])
    >>> from subband.layers import attend
    >>> q = k = v = torch.randn(2, 4, 65, 16)
    >>> attend(q, k, v, logit_scale=gmm((8, 8), num_prefix_tokens=1)).shape
    torch.Size([2, 4, 65, 16])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GaussianMixtureMask", "gaussian_mixture_mask", "squared_offsets"]


def squared_offsets(
    grid_size: tuple[int, int], device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The squared distances of every relative offset on an ``(h, w)`` grid and, per token pair, the
    index of its offset: ``((2h-1) * (2w-1),)`` float table and ``(N, N)`` long index (row-major)."""
    gh, gw = grid_size
    if gh < 1 or gw < 1:
        raise ValueError(f"grid_size must be positive, got {grid_size}")
    dy = torch.arange(-(gh - 1), gh, device=device, dtype=torch.float32)
    dx = torch.arange(-(gw - 1), gw, device=device, dtype=torch.float32)
    table = (dy[:, None] ** 2 + dx[None, :] ** 2).flatten()  # (2h-1) * (2w-1) offsets
    ys, xs = torch.meshgrid(torch.arange(gh, device=device), torch.arange(gw, device=device), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()  # (N,)
    index = (ys[:, None] - ys[None, :] + gh - 1) * (2 * gw - 1) + (xs[:, None] - xs[None, :] + gw - 1)
    return table, index


def gaussian_mixture_mask(
    sigma: torch.Tensor,
    alpha: torch.Tensor,
    grid_size: tuple[int, int],
    *,
    residual: bool = False,
    eps: float = 1e-5,
) -> torch.Tensor:
    """The per-head mask ``sum_k alpha[k, h] exp(-d_ij^2 / (2 (sigma[k, h]^2 + eps)))`` (plus 1 with
    ``residual``) over the ``grid_size`` patch grid.

    Args:
        sigma: widths, ``(K, heads)``, in patches.
        alpha: weights, ``(K, heads)``.
        grid_size: ``(h, w)`` patches.
        residual: return ``1 + sum_k ...`` (zero weights are then the identity).
        eps: added to ``sigma^2`` (the official 1e-5).

    Returns:
        ``(heads, h * w, h * w)``, dtype of ``sigma``.
    """
    if sigma.ndim != 2 or sigma.shape != alpha.shape:
        raise ValueError(f"sigma and alpha must both be (K, heads), got {tuple(sigma.shape)}, {tuple(alpha.shape)}")
    table, index = squared_offsets(grid_size, sigma.device)
    table = table.to(sigma.dtype)
    width = 2 * (sigma**2 + eps)  # (K, heads)
    per_offset = (alpha[..., None] * torch.exp(-table / width[..., None])).sum(0)  # (heads, offsets)
    mask = per_offset[:, index]  # (heads, N, N)
    return mask + 1 if residual else mask


class GaussianMixtureMask(nn.Module):
    """Learnable :func:`gaussian_mixture_mask`, one per attention layer.

    Args:
        num_heads: attention heads (one mixture per head).
        num_kernels: Gaussian components ``K`` per head (the paper's default is 5).
        residual: mask ``1 + sum_k ...`` with ``alpha`` initialised to 0 (starts as the identity);
            ``False`` is the paper's form.
        eps: added to ``sigma^2``.
    """

    def __init__(self, num_heads: int, num_kernels: int = 5, residual: bool = False, eps: float = 1e-5) -> None:
        super().__init__()
        if num_heads < 1 or num_kernels < 1:
            raise ValueError(f"num_heads and num_kernels must be positive, got {num_heads}, {num_kernels}")
        self.num_heads, self.num_kernels, self.residual, self.eps = num_heads, num_kernels, residual, eps
        self.sigma = nn.Parameter(torch.empty(num_kernels, num_heads))
        self.alpha = nn.Parameter(torch.empty(num_kernels, num_heads))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official initialisation, ``sigma ~ N(10, 10^2)`` and ``alpha ~ N(0, 2^2)``; with
        ``residual``, ``alpha = 0``."""
        nn.init.normal_(self.sigma, mean=10.0, std=10.0)
        if self.residual:
            nn.init.zeros_(self.alpha)
        else:
            nn.init.normal_(self.alpha, std=2.0)

    def forward(self, grid_size: tuple[int, int], num_prefix_tokens: int = 0) -> torch.Tensor:
        """The ``(heads, P + N, P + N)`` logit scale for ``P`` prefix tokens (scale 1 in their rows and
        columns) followed by the ``N = h * w`` patch tokens of ``grid_size``."""
        mask = gaussian_mixture_mask(self.sigma, self.alpha, grid_size, residual=self.residual, eps=self.eps)
        if num_prefix_tokens:
            p = num_prefix_tokens
            mask = F.pad(mask, (p, 0, p, 0), value=1.0)  # (heads, N, N) -> (heads, P + N, P + N)
        return mask

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, num_kernels={self.num_kernels}, residual={self.residual}"
