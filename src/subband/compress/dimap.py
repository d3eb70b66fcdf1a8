"""DIMAP: data-free, module-aware weight pruning for hierarchical vision transformers ("Data-independent
Module-aware Pruning for Hierarchical Vision Transformers", He & Zhou; ICLR 2024; arXiv 2404.13648).

The score of a weight comes from the Frobenius distortion of pruning it (Sec. 3.2, Eq. 10): sort the
weights of a layer by magnitude, largest first, ``w_(1), w_(2), ...``; removing ``w_(j)`` after every
smaller weight is gone costs ``w_(j)^2`` out of what is left of the layer, so

    Imp(w_(j)) = w_(j)^2 / sum_{i <= j} w_(i)^2.

The score needs only the weights (no data: the patch-merging layers' inputs never enter) and keeps the
magnitude order within a layer, while making layers with different weight distributions comparable.
Weights are ranked per *module*, the layers of one role across the whole network (Appendix B): every
attention ``qkv`` (QKV-M), every attention output projection (PRJ-M) and every MLP ``fc1``/``fc2``
(MLP-M); the auxiliary layers (patch embedding, patch merging, norms, head: AUX-M) are not pruned.
Each module has one threshold (Sec. 4.4); the paper does not say how the thresholds are set, and
here every module loses the same fraction of its weights: within a module the lowest-scoring
weights go, whichever layer or stage they sit in. ``modules="model"`` ranks all prunable layers as
one module (the paper's "model as module" ablation, Table 4).

The paper prunes to a parameter or FLOPs reduction (Table 1); here ``amount`` is the fraction of each
module's weights removed and ``flops`` the fraction of the model's MACs kept (MACs counted with
:func:`~subband.compress.masks.sparse_macs` on a zero tensor of ``input_size``, so no data is used
anywhere); the module fraction is bisected to meet ``flops``. The official repository
(he-y/Data-independent-Module-Aware-Pruning) holds only a README; the formula and module definition
follow the paper. The roles are found by layer name, which covers Swin/ViT (``attn.qkv``,
``attn.proj``, ``mlp.fc1``, ``mlp.fc2``), CvT (``proj_q``/``proj_k``/``proj_v``), Next-ViT
(``wq``/``wk``/``wv``) and UniFormer; pass ``modules=callable`` for other names. The masks are the
explicit ones of :mod:`~subband.compress.masks` (:func:`~subband.compress.masks.finalize` removes
MLP rows that lose every weight, which the paper observes in Swin's ``fc1``).

Example:
    >>> model = create_model("cvt_13", num_classes=10)
    >>> pruned = dimap_prune(model, amount=0.5)  # no data
    >>> sorted(dimap_modules(model).values())[:1]
    ['mlp']
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import nn

from ..models._profile import default_input
from .masks import PRUNABLE, apply_masks, layer_positions, sparse_macs

__all__ = ["dimap_scores", "dimap_modules", "dimap_masks", "dimap_prune"]

log = logging.getLogger(__name__)

QKV = {"qkv", "q", "k", "v", "kv", "wq", "wk", "wv", "proj_q", "proj_k", "proj_v", "q_proj", "k_proj", "v_proj"}
MLP = {"fc1", "fc2"}


@torch.no_grad()
def dimap_scores(weight: torch.Tensor) -> torch.Tensor:
    """DIMAP's importance of every entry of one layer's ``weight`` (Eq. 10): ``w^2`` over the sum of
    the squares of the entries at least as large (ties in the stable descending order). Same shape
    as ``weight``, in float32 or wider; an all-zero weight scores zero."""
    w2 = weight.detach().flatten().to(torch.promote_types(weight.dtype, torch.float32)).square()
    order = w2.argsort(descending=True, stable=True)
    ranked = w2[order]
    scores = torch.empty_like(w2)
    scores[order] = torch.nan_to_num(ranked / ranked.cumsum(0), nan=0.0)
    return scores.view(weight.shape)


def _role(name: str, module: nn.Module, siblings: set[str]) -> str | None:
    leaf = name.rsplit(".", 1)[-1]
    if leaf in QKV:
        return "qkv"
    if leaf == "proj" and siblings & QKV:
        return "proj"
    if leaf in MLP:
        return "mlp"
    return None


def dimap_modules(model: nn.Module, modules: str | Callable[[str, nn.Module], str | None] = "paper") -> dict[str, str]:
    """Which module each prunable layer belongs to, by layer name: ``"paper"`` (QKV-M ``"qkv"``,
    PRJ-M ``"proj"``, MLP-M ``"mlp"``; other layers are auxiliary and left out), ``"model"`` (those
    layers as one module) or a callable ``(name, layer) -> module name or None``."""
    named = dict(model.named_modules())
    children = {n: {c for c, _ in m.named_children()} for n, m in named.items()}
    out: dict[str, str] = {}
    for name, m in named.items():
        if not isinstance(m, PRUNABLE):
            continue
        if callable(modules):
            role = modules(name, m)
        elif modules in ("paper", "model"):
            role = _role(name, m, children.get(name.rsplit(".", 1)[0] if "." in name else "", set()))
            role = "model" if role is not None and modules == "model" else role
        else:
            raise ValueError(f"modules must be 'paper', 'model' or a callable, got {modules!r}")
        if role is not None:
            out[name] = role
    if not out:
        raise ValueError("no prunable layers found (no qkv / proj / fc1 / fc2 layers); pass modules=callable")
    return out


def _ranks(
    scores: dict[str, torch.Tensor], groups: dict[str, str]
) -> dict[str, tuple[list[str], torch.Tensor, torch.Tensor]]:
    """Per module: its layers, the order of its weights (lowest score first) and every weight's rank."""
    out = {}
    for module in sorted(set(groups.values())):
        names = [n for n in groups if groups[n] == module]
        flat = torch.cat([scores[n].flatten() for n in names])
        order = flat.argsort(stable=True)
        rank = torch.empty_like(order)
        rank[order] = torch.arange(flat.numel(), device=flat.device)
        out[module] = (names, order, rank)
    return out


def _masks(
    ranks: dict[str, tuple[list[str], torch.Tensor, torch.Tensor]], shapes: dict[str, torch.Size], amount: float
) -> dict[str, torch.Tensor]:
    """Per layer, a keep mask: each module drops ``amount`` of its weights, the lowest scores first."""
    masks = {}
    for names, _, rank in ranks.values():
        keep = rank >= int(round(amount * rank.numel()))
        offset = 0
        for n in names:
            k = shapes[n].numel()
            masks[n] = keep[offset : offset + k].view(shapes[n])
            offset += k
    return masks


def dimap_masks(
    model: nn.Module,
    amount: float | None = None,
    flops: float | None = None,
    modules: str | Callable[[str, nn.Module], str | None] = "paper",
    input_size: tuple[int, ...] | None = None,
) -> dict[str, torch.Tensor]:
    """DIMAP keep-masks by layer name, from the weights alone. Give ``amount`` (fraction of every
    module's weights removed) or ``flops`` (fraction of the model's MACs kept, counted on zeros of
    ``input_size``, by default the model's default input size, :func:`~subband.models._profile.default_input`)."""
    if (amount is None) == (flops is None):
        raise ValueError("give exactly one of amount (fraction removed) or flops (fraction of MACs kept)")
    groups = dimap_modules(model, modules)
    layers = dict(model.named_modules())
    shapes = {n: layers[n].weight.shape for n in groups}
    ranks = _ranks({n: dimap_scores(layers[n].weight) for n in groups}, groups)
    if amount is not None:
        if not 0 <= amount < 1:
            raise ValueError(f"amount must be in [0, 1), got {amount}")
        return _masks(ranks, shapes, amount)
    assert flops is not None
    if not 0 < flops <= 1:
        raise ValueError(f"flops must be in (0, 1], got {flops}")
    if input_size is None:
        input_size = tuple(default_input(model).shape[1:])
    p = next(model.parameters())
    x = torch.zeros(1, *input_size, dtype=p.dtype, device=p.device)  # shapes only: no data
    total = sparse_macs(model, x) * 1e9
    positions = layer_positions(model, x, groups)
    lost_macs = {}  # per module: MACs lost when its d lowest-ranked weights go, for every d
    for module, (names, order, _) in ranks.items():
        cost = torch.cat([(layers[n].weight.detach() != 0).flatten().double() * positions.get(n, 0) for n in names])
        lost_macs[module] = torch.cat([cost.new_zeros(1), cost[order].cumsum(0)])

    def kept(a: float) -> float:
        lost = sum(float(c[int(round(a * (c.numel() - 1)))]) for c in lost_macs.values())
        return (total - lost) / total

    lo, hi = 0.0, 1.0 - 1e-9
    if kept(hi) > flops:
        raise ValueError(f"flops={flops} is out of reach: pruning every module fully leaves {kept(hi):.3f} of the MACs")
    for _ in range(60):  # the smallest module fraction that meets the budget
        mid = 0.5 * (lo + hi)
        if kept(mid) > flops:
            lo = mid
        else:
            hi = mid
    masks, frac = _masks(ranks, shapes, hi), kept(hi)
    log.info("DIMAP: %.4f of each module pruned, %.4f of the MACs kept (budget %.4f)", hi, frac, flops)
    return masks


def dimap_prune(
    model: nn.Module,
    amount: float | None = None,
    flops: float | None = None,
    modules: str | Callable[[str, nn.Module], str | None] = "paper",
    input_size: tuple[int, ...] | None = None,
    inplace: bool = False,
) -> nn.Module:
    """``model`` (a copy unless ``inplace``) with DIMAP masks (:func:`dimap_masks`); no data needed."""
    return apply_masks(model, dimap_masks(model, amount, flops, modules, input_size), inplace=inplace)
