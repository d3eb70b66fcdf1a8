"""Statistics of the ``k x k`` convolution filters of any model ("CNN Filter DB: An Empirical
Investigation of Trained Convolutional Filters", Gavrikov, Keuper; CVPR 2022, arXiv 2203.15331).

A layer's filters are its weight ``(C_out, C_in, k, k)`` read as ``C_out * C_in`` vectors of
``k^2`` values. Measures, with the definitions of the paper's code (cnn-filter-db):

- **sparsity**: the share of filters all of whose entries are below ``eps`` (0.01) times the
  layer's largest absolute weight;
- **variance entropy**: the base-10 entropy of the explained-variance ratios of the centred
  filters (their PCA spectrum): 0 when all filters are multiples of one pattern, ``log10(k^2)``
  when no direction is preferred; normalised by the entropy random Gaussian filters reach for the
  same count (a fitted curve of the paper), so ``~1`` reads as "random", well below 1 as "low
  diversity". ``*_clean`` excludes the sparse filters;
- **orthogonality**: ``1 -`` the mean absolute cosine similarity between different output
  filters (the flattened ``C_in k^2`` rows);
- :func:`flag_degenerate`: the layers subband flags (thresholds are ours, documented there);
- :func:`filter_distance`: Jensen-Shannon divergence between two filter sets, per principal
  component of their union, averaged over components;
- :func:`save_filter_pca_png`: the leading principal components of a model's 3x3 filters as images.

Example:
    >>> net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 16, 3))
    >>> stats = filter_statistics(net)
    >>> sorted(stats["0"])[:3]
    ['count', 'orthogonality', 'sparsity']
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "collect_filters",
    "layer_filter_statistics",
    "filter_statistics",
    "flag_degenerate",
    "filter_distance",
    "save_filter_pca_png",
]

# the entropy of the variance ratios that random filters reach, as a function of their count n
# (fitted logistic curve of the cnn-filter-db code: l / (1 + exp(-k (log2 n - x0))) + b)
_RANDOM_ENTROPY = (1.2618047, 2.30436435, 0.88767525, -0.31050834)


def _random_entropy(n: int) -> float:
    l, x0, k, b = _RANDOM_ENTROPY
    return l / (1 + math.exp(-k * (math.log2(max(n, 1)) - x0))) + b


def collect_filters(model: nn.Module, kernel_size: int | None = 3) -> dict[str, torch.Tensor]:
    """Every 2-D conv weight of ``model`` with a square ``kernel_size`` kernel (any size if
    ``None``), by module name: ``(C_out, C_in / groups, k, k)`` tensors (detached)."""
    out = {}
    for name, m in model.named_modules():
        w = getattr(m, "weight", None)
        if isinstance(m, nn.Conv2d) and isinstance(w, torch.Tensor) and w.shape[-1] == w.shape[-2] > 1:
            if kernel_size is None or w.shape[-1] == kernel_size:
                out[name] = w.detach()
    return out


def _variance_ratio(f: torch.Tensor) -> torch.Tensor:
    s = torch.linalg.svdvals(f - f.mean(0))
    var = s**2 / max(f.shape[0] - 1, 1)
    return var / var.sum() if var.sum() > 0 else var


def _entropy10(p: torch.Tensor) -> float:
    p = p[p > 0]
    return float(-(p * torch.log10(p)).sum())


def layer_filter_statistics(weight: torch.Tensor, eps: float = 0.01) -> dict[str, float]:
    """The measures of one conv weight ``(C_out, C_in, k, k)`` (see the module docstring)."""
    if weight.ndim != 4 or weight.shape[-1] != weight.shape[-2]:
        raise ValueError(f"weight must be (C_out, C_in, k, k), got shape {tuple(weight.shape)}")
    w = weight.detach().double()
    f = w.reshape(-1, w.shape[-1] * w.shape[-2])  # (n, k^2)
    n = f.shape[0]
    t = float(f.abs().max()) * eps or 1.0
    sparse = (f.abs() < t).all(1)
    stats = {"count": float(n), "sparsity": float(sparse.float().mean())}
    for suffix, ff in (("", f), ("_clean", f[~sparse])):
        ent = _entropy10(_variance_ratio(ff)) if ff.shape[0] > 1 else 0.0
        stats["variance_entropy" + suffix] = ent
        stats["variance_entropy_norm" + suffix] = ent / _random_entropy(ff.shape[0]) if ff.shape[0] > 1 else 0.0
    rows = w.reshape(w.shape[0], -1)
    rows = rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)
    m = rows.shape[0]
    cos = (rows @ rows.T - torch.eye(m, dtype=rows.dtype)).abs().sum() / max(m * (m - 1), 1)
    stats["orthogonality"] = float(1 - cos)
    return stats


def filter_statistics(model: nn.Module, kernel_size: int | None = 3, eps: float = 0.01) -> dict[str, dict[str, float]]:
    """:func:`layer_filter_statistics` for every conv of ``model`` with ``kernel_size`` kernels."""
    return {name: layer_filter_statistics(w, eps) for name, w in collect_filters(model, kernel_size).items()}


def flag_degenerate(
    stats: dict[str, dict[str, float]],
    max_sparsity: float = 0.1,
    random_entropy: float = 0.9,
    low_entropy: float = 0.5,
) -> dict[str, list[str]]:
    """Layers with degenerate filters, by kind: ``sparse`` (sparsity above ``max_sparsity``),
    ``random`` (normalised variance entropy of the non-sparse filters at or above
    ``random_entropy``: no structure beyond that of random filters), ``low_diversity`` (at or below
    ``low_entropy``). The thresholds are subband's reading of the paper's three kinds of
    degeneration, not numbers the paper fixes."""
    out: dict[str, list[str]] = {"sparse": [], "random": [], "low_diversity": []}
    for name, s in stats.items():
        if s["sparsity"] > max_sparsity:
            out["sparse"].append(name)
        if s["variance_entropy_norm_clean"] >= random_entropy:
            out["random"].append(name)
        elif s["variance_entropy_norm_clean"] <= low_entropy:
            out["low_diversity"].append(name)
    return out


def _as_filters(x: torch.Tensor | Iterable[torch.Tensor]) -> torch.Tensor:
    ws = [x] if isinstance(x, torch.Tensor) else list(x)
    if not ws:
        raise ValueError("no filters given")
    k2 = ws[0].shape[-1] * ws[0].shape[-2]
    if any(w.shape[-1] * w.shape[-2] != k2 for w in ws):
        raise ValueError("all filters must have the same kernel size")
    return torch.cat([w.detach().double().reshape(-1, k2) for w in ws])


def filter_distance(
    a: torch.Tensor | Iterable[torch.Tensor], b: torch.Tensor | Iterable[torch.Tensor], bins: int = 64
) -> float:
    """Jensen-Shannon divergence (bits, in ``[0, 1]``) between two filter distributions: both sets
    are projected on the principal components of their union, each component's coefficients are
    histogrammed on common bins, and the divergences are averaged weighted by explained variance."""
    fa, fb = _as_filters(a), _as_filters(b)
    both = torch.cat([fa, fb])
    mean = both.mean(0)
    _, s, vh = torch.linalg.svd(both - mean, full_matrices=False)
    weights = s**2 / (s**2).sum()
    pa, pb = (fa - mean) @ vh.T, (fb - mean) @ vh.T  # coefficients per component
    total = 0.0
    for i in range(vh.shape[0]):
        lo, hi = (
            float(torch.minimum(pa[:, i].min(), pb[:, i].min())),
            float(torch.maximum(pa[:, i].max(), pb[:, i].max())),
        )
        if hi <= lo:
            continue
        ha = torch.histc(pa[:, i], bins, lo, hi)
        hb = torch.histc(pb[:, i], bins, lo, hi)
        p, q = ha / ha.sum(), hb / hb.sum()
        m = (p + q) / 2

        def kl(x: torch.Tensor, y: torch.Tensor) -> float:
            keep = x > 0
            return float((x[keep] * torch.log2(x[keep] / y[keep])).sum())

        total += float(weights[i]) * 0.5 * (kl(p, m) + kl(q, m))
    return total


def save_filter_pca_png(model_or_filters: nn.Module | torch.Tensor, path: str | Path, components: int = 9) -> Path:
    """The leading principal components of the 3x3 filters (of a model, or given ``(n, 3, 3)``/
    conv weights) as images, with their explained variance; needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - optional dependency
        raise ImportError("save_filter_pca_png needs matplotlib: pip install 'subband[demo]'") from e
    if isinstance(model_or_filters, nn.Module):
        f = _as_filters(collect_filters(model_or_filters, 3).values())
    else:
        f = _as_filters(model_or_filters)
    _, s, vh = torch.linalg.svd(f - f.mean(0), full_matrices=False)
    ratio = s**2 / (s**2).sum()
    k = int(math.isqrt(f.shape[1]))
    n = min(components, vh.shape[0])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, n, figsize=(1.6 * n, 2))
    for i, ax in enumerate(axes if n > 1 else [axes]):
        v = vh[i].view(k, k).numpy()
        ax.imshow(v, cmap="RdBu", vmin=-abs(v).max(), vmax=abs(v).max())
        ax.set_title(f"{100 * float(ratio[i]):.1f}%", fontsize=8)
        ax.set_axis_off()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
