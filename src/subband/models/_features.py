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

import re
from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "FeatureInfo",
    "FeaturePyramid",
    "StagedClassifier",
    "DistilledClassifier",
    "trunc_normal_init",
    "linear_head",
    "rename_keys",
]


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


class StagedClassifier(nn.Module):
    """The classifier interface for the usual layout ``stem -> stages[0..n) -> head``.

    A subclass builds ``self.stem``, ``self.stages`` (an ``nn.Sequential``), ``self.head`` (called as
    ``head(x, pre_logits=...)``, its linear layer at ``head.fc``), ``num_features``, ``num_classes``
    and ``feature_info`` (one tap per stage), and gets the rest of the contract from here.
    ``channels_last = True`` runs the stages in channels-last memory format (same values).
    """

    channels_last = False

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self._embed(x))  # (B, C, H, W) -> (B, num_features, H/r, W/r)

    def forward_intermediates(self, x: torch.Tensor, indices: Sequence[int]) -> list[torch.Tensor]:
        """Outputs of the stages in ``indices`` (see :class:`FeaturePyramid`)."""
        x, out = self._embed(x), []
        for i, stage in enumerate(self.stages[: max(indices) + 1]):
            x = stage(x)
            if i in indices:
                out.append(x)
        return out

    def prune_intermediate_layers(self, indices: Sequence[int]) -> None:
        """Drop the stages after the last of ``indices`` and the head."""
        self.stages = self.stages[: max(indices) + 1]
        self.head = nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a fresh one for ``num_classes`` (0: none)."""
        self.num_classes = num_classes
        self.head.fc = linear_head(self.num_features, num_classes)

    @torch.no_grad()
    def scale_head(self, factor: float) -> None:
        """Multiply the classifier's initial weight and bias by ``factor`` (``head_init_scale``)."""
        if isinstance(self.head.fc, nn.Linear):
            self.head.fc.weight.mul_(factor)
            self.head.fc.bias.mul_(factor)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class DistilledClassifier(StagedClassifier):
    """:class:`StagedClassifier` with the LeViT-style head: global mean pool, ``head_drop``, then
    BatchNorm + linear (:class:`~subband.layers.BNLinear`), and with ``distillation`` a second such
    head ``head_dist`` (DeiT): in training ``forward`` returns both logits, in eval their mean.

    A subclass builds ``stem``, ``stages``, ``head_drop``, sets ``num_features`` and ``distillation``
    and calls :meth:`reset_classifier`. ``fuse()`` folds every BatchNorm into the layer before it.
    """

    distillation = False

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier(s) with fresh ones for ``num_classes`` (0: none)."""
        from ..layers import BNLinear

        self.num_classes = num_classes
        self.head: nn.Module = BNLinear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        if self.distillation:
            self.head_dist: nn.Module = BNLinear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def prune_intermediate_layers(self, indices: Sequence[int]) -> None:
        """Drop the stages after the last of ``indices`` and the head(s)."""
        super().prune_intermediate_layers(indices)
        if self.distillation:
            self.head_dist = nn.Identity()

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False):
        x = self.head_drop(x.mean((2, 3)))  # (B, C, H, W) -> (B, C)
        if pre_logits:
            return x
        if not self.distillation:
            return self.head(x)
        logits, dist = self.head(x), self.head_dist(x)
        return (logits, dist) if self.training else (logits + dist) / 2

    @torch.no_grad()
    def fuse(self):
        """Fold every BatchNorm that follows a linear op into it and merge re-parameterisable branches,
        in place (same outputs in eval mode). Eval only; returns the model."""
        from ..layers import fuse_submodules

        return fuse_submodules(self)


def linear_head(in_features: int, num_classes: int, std: float = 0.02) -> nn.Module:
    """A fresh classifier: ``nn.Linear`` with truncated-normal (``std``) weights and zero bias, or
    ``nn.Identity`` for ``num_classes == 0``."""
    if num_classes <= 0:
        return nn.Identity()
    fc = nn.Linear(in_features, num_classes)
    trunc_normal_init(fc, std)
    return fc


def trunc_normal_init(m: nn.Module, std: float = 0.02) -> None:
    """Truncated-normal weights and zero biases for convolutions and linear layers (``model.apply``)."""
    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
        nn.init.trunc_normal_(m.weight, std=std)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def reset_linear_trunc_normal(model: nn.Module, std: float = 0.02) -> None:
    """timm's transformer initialisation: every submodule at its own ``reset_parameters()``, then
    linear weights truncated normal (``std``) with zero biases."""
    for m in model.modules():
        if m is not model and hasattr(m, "reset_parameters"):
            m.reset_parameters()
    for m in model.modules():
        if isinstance(m, nn.Linear):
            trunc_normal_init(m, std)


def rename_keys(state: dict[str, torch.Tensor], rules: Sequence[tuple[str, str]]) -> dict[str, torch.Tensor]:
    """A state dict with each key rewritten by the first matching ``(regex, replacement)`` rule."""
    out = {}
    for key, value in state.items():
        for pattern, repl in rules:
            new, n = re.subn(pattern, repl, key)
            if n:
                key = new
                break
        out[key] = value
    return out
