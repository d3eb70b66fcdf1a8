"""``features_only=True``: a classifier's trunk returning its feature maps, finest first.

Every classifier describes the maps it can return in ``feature_info`` (one dict per tap:
``num_chs``, ``reduction`` relative to the input, ``module`` that produces it) and implements

- ``forward_intermediates(x, indices) -> list[Tensor]``: the maps at those taps, in order, running
  the trunk no further than the last one;
- ``prune_intermediate_layers(indices)``: drop the head and every layer after the last tap.

:class:`FeaturePyramid` is the one wrapper built on that protocol::

    net = create_model("convnext_tiny", features_only=True, out_indices=(1, 2, 3))
    c2, c3, c4 = net(x)                      # strides 8, 16, 32
    net.feature_info.channels()              # [192, 384, 768]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["FeatureInfo", "FeaturePyramid"]


class FeatureInfo(list):
    """``feature_info`` list with the two questions asked of it most."""

    def channels(self) -> list[int]:
        return [f["num_chs"] for f in self]

    def reduction(self) -> list[int]:
        return [f["reduction"] for f in self]


def _resolve(indices: int | Sequence[int] | None, n: int) -> tuple[int, ...]:
    """Tap indices from ``None`` (all), a count (the last ``k``) or explicit, possibly negative, ones."""
    if indices is None:
        return tuple(range(n))
    if isinstance(indices, int):
        if not 0 < indices <= n:
            raise ValueError(f"out_indices={indices} asks for the last {indices} of {n} feature maps")
        return tuple(range(n - indices, n))
    out = []
    for i in indices:
        if not -n <= i < n:
            raise ValueError(f"out_indices holds {i}, but the model has feature maps 0..{n - 1}")
        out.append(i % n)
    if not out or sorted(set(out)) != out:
        raise ValueError(f"out_indices must be distinct and increasing, got {tuple(indices)}")
    return tuple(out)


class FeaturePyramid(nn.Module):
    """The trunk of ``model`` returning the feature maps at ``out_indices`` (default: all taps).

    Layers after the last requested tap and the classifier head are removed, so every parameter
    left takes part in the forward pass (as DistributedDataParallel requires).

    Shape:
        ``(B, C, H, W) -> [(B, num_chs_i, H / reduction_i, W / reduction_i) for i in out_indices]``
    """

    def __init__(self, model: nn.Module, out_indices: int | Sequence[int] | None = None) -> None:
        super().__init__()
        missing = [
            a for a in ("feature_info", "forward_intermediates", "prune_intermediate_layers") if not hasattr(model, a)
        ]
        if missing:
            raise ValueError(f"{type(model).__name__} does not support features_only (it lacks {', '.join(missing)})")
        self.out_indices = _resolve(out_indices, len(model.feature_info))
        self.feature_info = FeatureInfo(model.feature_info[i] for i in self.out_indices)
        model.prune_intermediate_layers(self.out_indices)
        self.model = model

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.model.forward_intermediates(x, self.out_indices)
