"""Switch every Conv+BatchNorm pair of a model between the Train, Eval and Tune modes of
"Efficient ConvBN Blocks for Transfer Learning and Beyond" (Huang et al.; arXiv 2305.11624); see
:class:`subband.layers.ConvBN` for what each mode computes.

:func:`convbn_mode` returns a copy of the model in which every :class:`~subband.layers.ConvBN`
and every ``nn.Conv2d`` directly followed by an ``nn.BatchNorm2d`` of the same width inside an
``nn.Sequential`` (the pair is replaced by one ``ConvBN`` holding the same tensors) is in the
requested mode (the pair's parameters move under ``<conv name>.c`` and ``<conv name>.bn``). Pairs
that only meet inside a custom ``forward`` cannot be seen from the module tree and are left as
they are (the count returned says how many blocks were switched).

Example:
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()).eval()
    >>> tuned, n = convbn_mode(net, "tune")
    >>> n
    1
"""

from __future__ import annotations

import copy

from torch import nn

from ..layers import ConvBN

__all__ = ["convbn_mode"]

MODES = ("train", "eval", "tune")


def _pair_to_convbn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> ConvBN:
    block = ConvBN.__new__(ConvBN)
    nn.Sequential.__init__(block)
    block.c, block.bn, block.bn_weight_init, block.tune = conv, bn, 1.0, False
    block.training = conv.training
    return block


def _merge_pairs(module: nn.Module) -> None:
    for child in module.children():
        _merge_pairs(child)
    if not isinstance(module, nn.Sequential) or isinstance(module, ConvBN):
        return
    items = list(module._modules.items())
    out, i = [], 0
    while i < len(items):
        name, m = items[i]
        nxt = items[i + 1][1] if i + 1 < len(items) else None
        if type(m) is nn.Conv2d and isinstance(nxt, nn.BatchNorm2d) and nxt.num_features == m.out_channels:
            out.append((name, _pair_to_convbn(m, nxt)))
            i += 2
        else:
            out.append((name, m))
            i += 1
    if len(out) != len(items):
        module._modules.clear()
        for name, m in out:
            module._modules[name] = m


def convbn_mode(model: nn.Module, mode: str) -> tuple[nn.Module, int]:
    """A copy of ``model`` with every ConvBN block in ``mode`` (``"train"``: batch statistics;
    ``"eval"``: running statistics; ``"tune"``: running statistics folded into the conv on the
    fly); the other modules keep their training flag. Returns the copy and the number of blocks."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES} (deploy: model.eval().fuse()), got {mode!r}")
    model = copy.deepcopy(model)
    _merge_pairs(model)
    blocks = [m for m in model.modules() if isinstance(m, ConvBN)]
    for b in blocks:
        b.tune = mode == "tune"
        b.bn.train(mode == "train")
    return model, len(blocks)
