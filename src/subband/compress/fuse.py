"""One deploy-time rewrite for every model: :func:`fuse` returns a fused copy.

Fusion folds what only helps training into the layers inference runs: BatchNorm running
statistics into the preceding convolution (``ConvBN`` blocks, and ``nn.Conv2d`` + ``nn.BatchNorm2d``
pairs inside ``nn.Sequential``), parallel re-parameterisable branches into one kernel (UniRepLKNet's
dilated branches, LSNet's RepVGG branches), a weighted convolution's density into its kernel. Every
module that can be fused has the same in-place verb, ``fuse()``; this function calls it on a copy
(the model's own ``fuse()`` where it has one, otherwise every submodule's) and leaves the original
untouched.

Example:
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()).eval()
    >>> fused = fuse(net)
    >>> any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    False
"""

from __future__ import annotations

import copy

from torch import nn

from ..layers import fuse_submodules
from .conv_bn import _merge_pairs

__all__ = ["fuse"]


def fuse(model: nn.Module) -> nn.Module:
    """A fused copy of ``model`` (eval mode required: fusion freezes BatchNorm statistics)."""
    if model.training:
        raise ValueError("fuse() folds BatchNorm running statistics: call model.eval() first")
    fused = copy.deepcopy(model)
    _merge_pairs(fused)
    if callable(getattr(fused, "fuse", None)):
        fused.fuse()
    else:
        fuse_submodules(fused)
    return fused
