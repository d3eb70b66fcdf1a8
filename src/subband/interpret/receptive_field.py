"""Effective receptive field (Luo, Li, Urtasun, Zemel, "Understanding the Effective Receptive Field
in Deep Convolutional Neural Networks", NeurIPS 2016): how much each input pixel contributes to the
centre of a feature map, measured by gradients, as large-kernel papers (RepLKNet, UniRepLKNet,
SLaK) use to compare architectures.

:func:`effective_receptive_field` averages ``|d sum_c y[c, H'/2, W'/2] / d x|`` (summed over input
channels) over random or given inputs: an ``(H, W)`` map. :func:`erf_summary` turns it into
numbers: the side of the smallest centred square holding 20/50/90% of the total contribution and,
as in RepLKNet, the share of pixels whose contribution exceeds a threshold of the (log-scaled,
min-max normalised) map. :func:`save_erf_png` writes the map (matplotlib).

Example:
    >>> net = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1) for _ in range(4)])
    >>> erf = effective_receptive_field(net, size=33, in_chans=1, samples=2)
    >>> erf.shape, int((erf > 1e-8).sum().sqrt())  # four 3x3 layers see a 9x9 window
    (torch.Size([33, 33]), 9)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

__all__ = ["effective_receptive_field", "erf_summary", "save_erf_png"]


def _feature_fn(model: nn.Module | Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The map whose centre is measured: ``forward_features`` for a classifier, else the model."""
    return getattr(model, "forward_features", model)


def effective_receptive_field(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor | None = None,
    *,
    size: int = 224,
    in_chans: int = 3,
    samples: int = 8,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The averaged gradient map ``(H, W)`` of the centre of the model's feature map.

    Args:
        model: a module or function returning a ``(B, C, H', W')`` map (a classifier's
            ``forward_features`` is used when it has one); put it in eval mode yourself.
        inputs: ``(B, in_chans, H, W)`` images to average over; random normal ones if ``None``.
        size, in_chans, samples, generator: shape and number of the random inputs.
    """
    fn = _feature_fn(model)
    if inputs is None:
        if samples < 1:
            raise ValueError(f"samples must be positive, got {samples}")
        inputs = torch.randn(samples, in_chans, size, size, generator=generator)
        params = next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None
        if params is not None:
            inputs = inputs.to(params.device, params.dtype)
    total = None
    for x in inputs.split(1):
        x = x.detach().clone().requires_grad_()
        y = fn(x)
        if not isinstance(y, torch.Tensor) or y.ndim != 4:
            raise ValueError(f"the model must return a (B, C, H, W) feature map, got {getattr(y, 'shape', type(y))}")
        centre = y[:, :, y.shape[2] // 2, y.shape[3] // 2].sum()
        (g,) = torch.autograd.grad(centre, x)
        contribution = g.abs().sum((0, 1))  # (H, W)
        total = contribution if total is None else total + contribution
    return total / inputs.shape[0]


def erf_summary(
    erf: torch.Tensor, fractions: Sequence[float] = (0.2, 0.5, 0.9), thresholds: Sequence[float] = (0.2, 0.3, 0.5)
) -> dict[str, float]:
    """Numbers for an ERF map: ``side@f`` the side (pixels) of the smallest centred square holding
    a fraction ``f`` of the total, ``area@t`` the share of pixels above ``t`` on the map after
    ``log(1 + erf)`` and min-max normalisation (RepLKNet's high-contribution area ratio)."""
    if erf.ndim != 2:
        raise ValueError(f"erf must be an (H, W) map, got shape {tuple(erf.shape)}")
    h, w = erf.shape
    cy, cx = h // 2, w // 2
    total = float(erf.sum())
    out: dict[str, float] = {}
    for f in fractions:
        side = max(h, w)
        for r in range(max(h, w)):
            window = erf[max(cy - r, 0) : cy + r + 1, max(cx - r, 0) : cx + r + 1]
            if float(window.sum()) >= f * total:
                side = 2 * r + 1
                break
        out[f"side@{f:g}"] = float(side)
    scaled = torch.log1p(erf)
    scaled = (scaled - scaled.min()) / (scaled.max() - scaled.min()).clamp_min(1e-12)
    for t in thresholds:
        out[f"area@{t:g}"] = float((scaled > t).float().mean())
    return out


def save_erf_png(erf: torch.Tensor, path: str | Path, title: str | None = None) -> Path:
    """Write the ERF map (``log(1 + erf)``, normalised) as a PNG; needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - optional dependency
        raise ImportError("save_erf_png needs matplotlib: pip install 'subband[demo]'") from e
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scaled = torch.log1p(erf.detach().cpu())
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow((scaled / scaled.max().clamp_min(1e-12)).numpy(), cmap="RdYlGn")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
