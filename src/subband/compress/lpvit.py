"""LPViT's block-structured post-training pruning ("LPViT: Low-Power Semi-structured Pruning for
Vision Transformers", Xu et al.; ECCV 2024; arXiv 2407.02068), on the explicit masks of
:mod:`~subband.compress.masks`.

LPViT (:func:`lpvit_prune`), checked against the official code (Akimoto-Cris/LPViT,
``tools/pruners.py``, ``tools/algo.py``, ``tools/common.py``):

1. Gradients ``g`` of ``mean(model(x) ** 2)`` (label-free; the official calibration objective; any
   ``loss_fn(output, target)`` may replace it), averaged over calibration batches.
2. Block importance: the mean of ``|w * g|`` over each ``block`` (first-order Taylor score; edge
   blocks average over their real entries, as the official ``AvgPool2d(ceil_mode=True)``). A layer
   pruned by a fraction ``a`` of its blocks drops its ``a * n_blocks`` least important blocks (the
   official ``get_mask_blockwise_fast``; conv weights are read as ``(out, in * kh * kw)``).
3. Distortion of each layer at ``a = 0, 1/steps, ..., 1`` from the second-order Taylor expansion with
   the rank-one Fisher ``g g^T`` plus a damping ``1e-7``: ``D(a) = mean((dw * g) ** 2) +
   (g . dw) ** 2 / 2 + 1e-7 * |dw|^2 / 2`` with ``dw`` the pruned weights' change (the official
   ``gen_rd_curves_block_approx`` with ``--second_order``, here in closed form), smoothed by the
   official de-biased moving average (``smooth``).
4. The hardware-aware objective: minimise ``sum_l D_l(a_l) + beta * P`` under a FLOPs budget, with the
   power ``P = sum_l (kept blocks of l) * (in_features // 16)`` (per-block cost as the official
   ``pow_costs_l``; ``in * kh * kw // 16`` for a conv) and ``beta = power_weight * mean_l max D_l' / mean_l |P_l'|`` (the official
   automatic ``lambda_power``). Solved by a Lagrange multiplier on the MACs: each layer takes the
   ``a`` that minimises ``D_l(a) + beta P_l(a) - lambda * a * MACs_l`` (``MACs_l``: the layer's dense
   MACs), and ``lambda`` (of either sign: the power term alone may ask for more pruning than the
   budget) is bisected to the smallest value whose model MACs (:func:`sparse_macs`) do not exceed
   the budget; every layer keeps at least
   ``min_keep`` of its blocks (the official ``min_sp``). A multiplier reaches only the corners of
   the curves' convex hulls, so a greedy pass then hands any budget left back, one curve step at a
   time, where the objective falls most per MAC.

Differs from the official code: the curves are exact sums (the official chunked loop drops the last
``numel % 8192`` weights from the second-order term and its incremental update adds
``(ddw + 2 dw)`` where the expansion gives ``(2 dw - ddw)``); the power term counts the kept blocks
(the official ``pow_costs_l`` multiplies the pruned fraction although its variable is named for
the surviving blocks, which makes pruning a power-hungry layer dearer instead of cheaper); the allocation takes each layer's Lagrangian minimum with MACs-weighted slopes (the
official code picks, per layer, the finite-difference derivative nearest one slope shared by layers
of all sizes, and bisects that slope); gradients are taken in eval mode (official: train mode, with
dropout); the FLOPs budget is a fraction of the whole model's MACs as ``count_gmacs`` counts them
(official: of the linear and conv layers only); the classifier head is left dense by default.

Example:
    >>> net = nn.Sequential(nn.Linear(64, 256), nn.GELU(), nn.Linear(256, 64))
    >>> data = [torch.randn(8, 64) for _ in range(2)]
    >>> pruned = lpvit_prune(net, data, flops=0.5, block=(16, 16), layers=["0", "2"])
    >>> sparse_macs(pruned, data[0]) <= 0.5 * sparse_macs(net, data[0])
    True
    >>> small = finalize(pruned.eval())  # zero rows and columns removed
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from .masks import PRUNABLE, _weight_param, apply_masks, layer_positions, sparse_macs

__all__ = ["block_scores", "block_mask", "calibration_gradients", "lpvit_curves", "lpvit_prune"]

log = logging.getLogger(__name__)


# -------------------------------------------------------------------------------------------- blocks
def _matrix(weight: torch.Tensor) -> torch.Tensor:
    return weight.reshape(weight.shape[0], -1)  # (out, in * kh * kw)


def _grid(shape: Sequence[int], block: tuple[int, int]) -> tuple[int, int]:
    return math.ceil(shape[0] / block[0]), math.ceil(shape[1] / block[1])


def _block_sums(x: torch.Tensor, block: tuple[int, int]) -> torch.Tensor:
    """Sums of a 2-D ``x`` over ``block`` tiles (edge tiles partial): ``(ceil(R/bh), ceil(C/bw))``."""
    bh, bw = block
    nr, nc = _grid(x.shape, block)
    x = nn.functional.pad(x, (0, nc * bw - x.shape[1], 0, nr * bh - x.shape[0]))
    return x.view(nr, bh, nc, bw).sum((1, 3))  # (nr, bh, nc, bw) -> (nr, nc)


def _check_block(block: int | tuple[int, int]) -> tuple[int, int]:
    out = (block, block) if isinstance(block, int) else tuple(block)
    if len(out) != 2 or min(out) < 1:
        raise ValueError(f"block must be a positive int or a pair of them, got {block}")
    return out  # type: ignore[return-value]


def block_scores(score: torch.Tensor, block: int | tuple[int, int]) -> torch.Tensor:
    """Mean of an element score (a weight-shaped tensor, read as ``(out, in * kh * kw)``) over each
    ``block``; edge blocks average their real entries. Shape ``(ceil(out/bh), ceil(in/bw))``."""
    block = _check_block(block)
    s = _matrix(score).float()
    return _block_sums(s, block) / _block_sums(torch.ones_like(s), block)


def block_mask(scores: torch.Tensor, keep: int, block: int | tuple[int, int], shape: Sequence[int]) -> torch.Tensor:
    """Boolean mask of a weight of ``shape`` keeping the ``keep`` highest-scoring blocks (``scores``
    as :func:`block_scores` returns them)."""
    block = _check_block(block)
    rows, cols = shape[0], math.prod(shape[1:])
    if tuple(scores.shape) != _grid((rows, cols), block):
        raise ValueError(f"scores {tuple(scores.shape)} do not tile a ({rows}, {cols}) weight in {block} blocks")
    order = scores.flatten().argsort(stable=True)  # least important first
    return _mask_from_order(order, keep, scores.shape, block, (rows, cols)).reshape(tuple(shape))


def _mask_from_order(
    order: torch.Tensor, keep: int, grid: Sequence[int], block: tuple[int, int], size: tuple[int, int]
) -> torch.Tensor:
    """``(rows, cols)`` mask keeping all blocks but the first ``n_blocks - keep`` of ``order``."""
    kept = torch.ones(order.numel(), dtype=torch.bool, device=order.device)
    kept[order[: order.numel() - max(0, min(keep, order.numel()))]] = False
    full = kept.view(tuple(grid)).repeat_interleave(block[0], 0).repeat_interleave(block[1], 1)
    return full[: size[0], : size[1]]


# ------------------------------------------------------------------------------------------- LPViT
Batch = torch.Tensor | tuple[torch.Tensor, ...] | list[torch.Tensor]


def _split(batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(batch, torch.Tensor):
        return batch, None
    return batch[0], (batch[1] if len(batch) > 1 else None)


def _default_layers(model: nn.Module) -> list[str]:
    """Every ``nn.Linear`` except the classifier (``get_classifier()`` or a module named ``head``)."""
    getter = getattr(model, "get_classifier", None)
    head = getter() if callable(getter) else getattr(model, "head", None)
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and m is not head]


def _resolve(model: nn.Module, layers: Sequence[str] | None) -> dict[str, nn.Module]:
    mods = dict(model.named_modules())
    names = _default_layers(model) if layers is None else list(layers)
    bad = [n for n in names if not isinstance(mods.get(n), PRUNABLE)]
    if bad:
        raise ValueError(f"not nn.Linear / nn.Conv2d layers of the model: {bad}")
    if not names:
        raise ValueError("the model has no prunable layer (no nn.Linear besides the classifier); pass layers=[...]")
    return {n: mods[n] for n in names}


def calibration_gradients(
    model: nn.Module,
    batches: Iterable[Batch],
    layers: Sequence[str] | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Mean over ``batches`` of the gradient of ``loss_fn(model(x), y)`` (default: ``mean(output ** 2)``,
    the official label-free objective) with respect to the weight of each layer, in eval mode.
    ``batches`` yields inputs or ``(input, target)`` pairs."""
    mods = _resolve(model, layers)
    params = [_weight_param(m) for m in mods.values()]
    loss_fn = loss_fn or (lambda out, _: out.pow(2).mean())
    sums = [torch.zeros_like(p) for p in params]
    n = 0
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            x, y = _split(batch)
            grads = torch.autograd.grad(loss_fn(model(x), y), params, allow_unused=True)
            for s, g in zip(sums, grads):
                if g is not None:
                    s += g
            n += 1
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("no calibration batches")
    return {name: s / n for name, s in zip(mods, sums)}


def _smooth(y: torch.Tensor, weight: float) -> torch.Tensor:
    """The official de-biased exponential moving average along a curve."""
    if weight <= 0:
        return y
    out, last = torch.empty_like(y), 0.0
    for i, v in enumerate(y.tolist()):
        last = last * weight + (1 - weight) * v
        out[i] = last / (1 - weight ** (i + 1))
    return out


@torch.no_grad()
def lpvit_curves(
    weight: torch.Tensor, grad: torch.Tensor, block: int | tuple[int, int], steps: int = 100, damping: float = 1e-7
) -> dict[str, torch.Tensor]:
    """LPViT's distortion curve of one layer: for pruned block fractions ``a = k / steps``, the
    second-order Taylor distortion ``mean((dw * g)^2) + (g . dw)^2 / 2 + damping |dw|^2 / 2`` of
    dropping the ``a * n_blocks`` blocks of least mean ``|w * g|`` (float64).

    Returns ``amount`` (steps + 1), ``distortion`` (steps + 1), ``kept`` (weights kept at each
    amount), ``blocks`` (kept blocks), ``order`` (block indices, least important first) and
    ``scores`` (the block scores, :func:`block_scores` of ``|w * g|``)."""
    block = _check_block(block)
    w, g = _matrix(weight).double(), _matrix(grad).double()
    scores = block_scores((w * g).abs(), block)
    nb = scores.numel()
    order = scores.flatten().argsort(stable=True)  # least important first
    wg = w * g
    per_block = [_block_sums(t, block).flatten()[order] for t in (wg.square(), wg, w.square(), torch.ones_like(w))]
    zero = torch.zeros(1, dtype=torch.float64, device=w.device)
    sq, lin, norm, count = (torch.cat([zero, t.cumsum(0)]) for t in per_block)  # prefix sums, index = blocks pruned
    amount = torch.arange(steps + 1, dtype=torch.float64, device=w.device) / steps
    kept_blocks = (nb * (1 - amount) + 1e-9).long()  # the official int((1 - a) * n_blocks)
    pruned = nb - kept_blocks
    # dw = -w on pruned entries: (dw * g)^2 = (w g)^2, g . dw = -sum(w g), |dw|^2 = sum(w^2)
    dist = sq[pruned] / w.numel() + 0.5 * lin[pruned].square() + 0.5 * damping * norm[pruned]
    kept = w.numel() - count[pruned]
    return dict(amount=amount, distortion=dist, kept=kept, blocks=kept_blocks, order=order, scores=scores)


def _fill(
    choice: dict[str, int],
    objective: dict[str, torch.Tensor],
    curves: dict[str, dict[str, torch.Tensor]],
    positions: dict[str, int],
    frac: float,
    flops: float,
    total: float,
) -> tuple[dict[str, int], float]:
    """Greedy completion of a Lagrangian allocation: a multiplier only reaches the corners of the
    curves' convex hulls, so budget may be left over; give it back one step at a time, to the layer
    whose objective falls most per MAC, while the budget holds."""
    choice, kept = dict(choice), frac * total
    while True:
        best, best_rate, best_add = None, 0.0, 0.0
        for n, k in choice.items():
            if k == 0:
                continue
            add = positions[n] * float(curves[n]["kept"][k - 1] - curves[n]["kept"][k])
            gain = float(objective[n][k] - objective[n][k - 1])
            if gain <= 0 or kept + add > flops * total + 1e-6:
                continue
            rate = gain / max(add, 1e-30)
            if rate > best_rate:
                best, best_rate, best_add = n, rate, add
        if best is None:
            return choice, kept / total
        choice[best] -= 1
        kept += best_add


def lpvit_prune(
    model: nn.Module,
    batches: Iterable[Batch],
    flops: float = 0.5,
    block: int | tuple[int, int] = (32, 32),
    layers: Sequence[str] | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor] | None = None,
    power_weight: float = 1.0,
    min_keep: float = 0.05,
    steps: int = 100,
    smooth: float = 0.5,
    example_input: torch.Tensor | None = None,
    inplace: bool = False,
) -> nn.Module:
    """LPViT post-training block pruning to ``flops`` (the fraction of the model's MACs to keep).

    Args:
        model: any model; its ``layers`` are pruned.
        batches: calibration batches (inputs, or ``(input, target)`` pairs); iterated once.
        flops: MACs kept, as a fraction of the dense model's (``sparse_macs`` on ``example_input``).
        block: block height and width over ``(out, in)`` weights (the paper: 16x16 to 64x32).
        layers: names of the ``nn.Linear`` / ``nn.Conv2d`` layers to prune (default: every
            ``nn.Linear`` except the classifier).
        loss_fn: calibration objective ``loss_fn(output, target)`` (default ``mean(output ** 2)``).
        power_weight: weight of the power term relative to the distortion (0: FLOPs only; 1: the
            official automatic balance).
        min_keep: fraction of blocks every layer keeps at least (capped at half the budget's
            complement, as the official code).
        steps: points per distortion curve.
        smooth: moving-average weight on the curves (0: none).
        example_input: input the MACs are counted on (default: the first calibration batch).
        inplace: mask ``model`` itself instead of a copy.

    Returns:
        The model with block masks on the pruned layers (see :func:`finalize` to make them permanent).
    """
    if not 0 < flops <= 1:
        raise ValueError(f"flops must be in (0, 1], got {flops}")
    block = _check_block(block)
    mods = _resolve(model, layers)
    batches = list(batches)
    if not batches:
        raise ValueError("no calibration batches")
    x0 = _split(batches[0])[0] if example_input is None else example_input
    grads = calibration_gradients(model, batches, list(mods), loss_fn)
    positions = layer_positions(model, x0, mods)
    missing = [n for n in mods if n not in positions]
    if missing:
        raise ValueError(f"layers that do not run on the input: {missing}")
    total = sparse_macs(model, x0) * 1e9
    curves = {n: lpvit_curves(m.weight, grads[n], block, steps) for n, m in mods.items()}
    macs = {n: positions[n] * mods[n].weight.numel() for n in mods}
    nonzero = {n: int(torch.count_nonzero(m.weight)) for n, m in mods.items()}
    fixed = total - sum(positions[n] * nonzero[n] for n in mods)  # MACs outside the pruned weights

    dist = {n: _smooth(c["distortion"], smooth) for n, c in curves.items()}
    cost = {n: max(1, _matrix(mods[n].weight).shape[1] // 16) for n in mods}  # power per kept block
    power = {n: c["blocks"].double() * cost[n] for n, c in curves.items()}
    beta = 0.0
    if power_weight > 0:
        slope_d = torch.stack([(d.diff() * steps).abs().max() for d in dist.values()]).mean()
        slope_p = torch.stack([(p.diff() * steps).abs().max() for p in power.values()]).mean()
        beta = power_weight * float(slope_d / slope_p.clamp_min(1e-30))
    min_keep = min(min_keep, (1 - flops) / 2)
    allowed = {n: c["blocks"] >= max(1, math.ceil(min_keep * c["blocks"][0].item())) for n, c in curves.items()}

    def allocate(lam: float) -> tuple[dict[str, int], float]:
        choice, kept_macs = {}, fixed
        for n, c in curves.items():
            objective = dist[n] + beta * power[n] - lam * c["amount"] * macs[n]
            objective = objective.masked_fill(~allowed[n], math.inf)
            k = int(objective.argmin())
            choice[n] = k
            kept_macs += positions[n] * float(c["kept"][k])
        return choice, kept_macs / total

    # lambda prices the MACs (signed: with a power term, pruning may have to be held back);
    # frac(lambda) does not increase with lambda: take the smallest lambda that meets the budget.
    target = flops + 1e-12
    slope = float(torch.stack([(d.diff() * steps).abs().max() for d in dist.values()]).mean())
    unit = slope / (sum(macs.values()) / len(macs))
    unit = unit if unit > 0 else 1.0
    hi = 1.0
    while allocate(hi * unit)[1] > target:
        hi *= 4.0
        if hi > 1e30:
            floor = allocate(hi * unit)[1]
            raise ValueError(
                f"flops={flops} is out of reach: pruning every layer down to min_keep leaves {floor:.3f}"
                " of the MACs; prune more layers or lower min_keep"
            )
    lo = -1.0
    while allocate(lo * unit)[1] <= target and lo > -1e30:
        lo *= 4.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if allocate(mid * unit)[1] > target:
            lo = mid
        else:
            hi = mid
    choice, frac = allocate(hi * unit)
    choice, frac = _fill(choice, {n: dist[n] + beta * power[n] for n in curves}, curves, positions, frac, flops, total)
    masks = {}
    for n, c in curves.items():
        k = choice[n]
        w = mods[n].weight
        grid, size = c["scores"].shape, tuple(_matrix(w).shape)
        masks[n] = _mask_from_order(c["order"], int(c["blocks"][k]), grid, block, size).reshape(w.shape)
        log.info("%s: %.2f of blocks pruned", n, float(c["amount"][k]))
    log.info("LPViT: %.4f of the MACs kept (budget %.4f), beta %.3g", frac, flops, beta)
    return apply_masks(model, masks, inplace=inplace)
