"""Weight pruning with explicit masks: one mechanism for every pruning method in
:mod:`subband.compress` (LPViT in :mod:`~subband.compress.lpvit`, DIMAP in :mod:`~subband.compress.dimap`).

:func:`apply_masks` puts a boolean mask on the ``weight`` of chosen ``nn.Linear`` / ``nn.Conv2d``
layers (a ``torch.nn.utils.parametrize`` parametrisation: the layer computes with ``weight * mask``,
so pruned weights stay zero through any optimiser step and fine-tuning trains only the kept ones);
:func:`get_masks` reads them back; :func:`sparse_macs` counts multiply-accumulates without the
products whose weight is zero. :func:`finalize` makes the masks permanent and shrinks what the
structure allows: an MLP hidden unit whose ``fc1`` row or ``fc2`` column is all zero (``Mlp``, or
``Linear, activation, [Dropout,] Linear`` in an ``nn.Sequential``), and an attention head
(:class:`~subband.layers.Attention`) whose value rows or ``proj`` columns are all zero, are removed,
with the constant they still contributed folded into the next bias; the parameter count and the
counted FLOPs drop and the eval outputs stay the same. Other zeros stay in dense weights: torch's
CPU kernels for ``sparse_bsr`` / ``sparse_csr`` weights were slower than the dense GEMM at 50-70%
block sparsity when measured with torch 2.13 on one CPU thread (2-8x slower for 192-768 wide layers,
16x16 and 32x32 blocks, 50-800 rows; faster only near 90%), so no sparse format is used.

Example:
    >>> net = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8))
    >>> keep = torch.ones(16, 8, dtype=torch.bool); keep[:4] = False  # four hidden units get no input
    >>> small = finalize(apply_masks(net, {"0": keep}).eval())
    >>> small[0].out_features
    12
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Iterator, Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.utils.flop_counter import FlopCounterMode

from ..layers import Attention, Mlp

__all__ = ["WeightMask", "apply_masks", "get_masks", "finalize", "sparse_macs", "layer_positions"]

PRUNABLE = (nn.Linear, nn.Conv2d)
ELEMENTWISE = (nn.GELU, nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh)
ELEMENTWISE += (nn.LeakyReLU, nn.ELU, nn.Mish, nn.Softplus, nn.Identity)


# --------------------------------------------------------------------------------------------- masks
class WeightMask(nn.Module):
    """The parametrisation ``weight -> weight * mask`` (``mask`` a boolean buffer of the weight's shape)."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.bool())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask.to(weight.dtype)

    def extra_repr(self) -> str:
        return f"kept={int(self.mask.sum())}/{self.mask.numel()}"


def _weight_param(layer: nn.Module) -> torch.Tensor:
    """The tensor autograd updates: the raw weight, or the original under a mask."""
    return layer.parametrizations.weight.original if _masked(layer) else layer.weight


def _masked(layer: nn.Module) -> bool:
    return parametrize.is_parametrized(layer, "weight") and any(
        isinstance(p, WeightMask) for p in layer.parametrizations.weight
    )


def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor], inplace: bool = False) -> nn.Module:
    """``model`` (a copy unless ``inplace``) with ``masks[name]`` on the weight of layer ``name``
    (``True`` keeps a weight). A layer masked already keeps the intersection of both masks. The
    pruned entries of the stored weights are zeroed too."""
    out = model if inplace else copy.deepcopy(model)
    layers = dict(out.named_modules())
    for name, mask in masks.items():
        layer = layers.get(name)
        if not isinstance(layer, PRUNABLE):
            raise ValueError(f"{name!r} is not an nn.Linear or nn.Conv2d of the model (got {type(layer).__name__})")
        if tuple(mask.shape) != tuple(layer.weight.shape):
            raise ValueError(f"mask for {name!r} has shape {tuple(mask.shape)}, weight {tuple(layer.weight.shape)}")
        mask = mask.to(device=layer.weight.device, dtype=torch.bool)
        if _masked(layer):
            param = next(p for p in layer.parametrizations.weight if isinstance(p, WeightMask))
            param.mask &= mask
        else:
            parametrize.register_parametrization(layer, "weight", WeightMask(mask))
        with torch.no_grad():
            _weight_param(layer).mul_(mask.to(layer.weight.dtype))
    return out


def get_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """The boolean masks of every masked layer, by module name."""
    out = {}
    for name, m in model.named_modules():
        if _masked(m):
            for p in m.parametrizations.weight:
                if isinstance(p, WeightMask):
                    out[name] = p.mask.clone()
    return out


@contextlib.contextmanager
def _positions_in_eval(model: nn.Module, names: Iterable[str] | None = None) -> Iterator[dict[str, int]]:
    """Inside: ``model`` in eval mode, and a dict that every forward fills with how many times each
    ``nn.Linear`` / ``nn.Conv2d`` (or those in ``names``) applies its weight. Hooks and mode are
    restored on exit."""
    wanted = None if names is None else set(names)
    counts: dict[str, int] = {}
    hooks = []

    for name, m in model.named_modules():
        if isinstance(m, PRUNABLE) and (wanted is None or name in wanted):

            def hook(mod: nn.Module, args: tuple, out: torch.Tensor, name: str = name) -> None:
                per = out.shape[-1] if isinstance(mod, nn.Linear) else out.shape[1]
                counts[name] = counts.get(name, 0) + out.numel() // max(per, 1)  # tokens or pixels, times batch

            hooks.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        yield counts
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()


@torch.no_grad()
def layer_positions(model: nn.Module, x: torch.Tensor, names: Iterable[str] | None = None) -> dict[str, int]:
    """For each ``nn.Linear`` / ``nn.Conv2d`` (or those in ``names``) that runs on ``x``: how many
    times its weight is applied (tokens times batch, output pixels times batch), so that its MACs
    are ``positions * weight.numel()``."""
    with _positions_in_eval(model, names) as counts:
        model(x)
    return counts


@torch.no_grad()
def sparse_macs(model: nn.Module, x: torch.Tensor) -> float:
    """Multiply-accumulates of one forward pass on ``x``, in billions, as
    :func:`~subband.models._profile.count_gmacs` counts them minus the products with a zero weight
    of every ``nn.Linear`` / ``nn.Conv2d`` (the FLOPs a block- or unstructured-sparse kernel runs)."""
    with _positions_in_eval(model) as positions, FlopCounterMode(display=False) as counter:
        model(x)
    layers = dict(model.named_modules())
    skipped = sum(
        (layers[n].weight.numel() - int(torch.count_nonzero(layers[n].weight))) * k for n, k in positions.items()
    )
    return (counter.get_total_flops() / 2 - skipped) / 1e9


# ------------------------------------------------------------------------------------------ finalize
def _rows(layer: nn.Module) -> torch.Tensor:
    return layer.weight.detach().reshape(layer.weight.shape[0], -1)  # (out, in * kh * kw)


def _is_pointwise(layer: nn.Module) -> bool:
    if isinstance(layer, nn.Linear):
        return True
    if not isinstance(layer, nn.Conv2d):
        return False
    return layer.kernel_size == (1, 1) and layer.groups == 1 and layer.stride == (1, 1) and layer.padding == (0, 0)


def _sliced(layer: nn.Module, out_idx: torch.Tensor | None = None, in_idx: torch.Tensor | None = None) -> nn.Module:
    """A copy of a pointwise ``layer`` keeping output rows ``out_idx`` and input columns ``in_idx``."""
    w, b = layer.weight.detach(), None if layer.bias is None else layer.bias.detach()
    if out_idx is not None:
        w = w[out_idx]
        b = None if b is None else b[out_idx]
    if in_idx is not None:
        w = w[:, in_idx]
    kw = dict(device=w.device, dtype=w.dtype)
    if isinstance(layer, nn.Linear):
        new: nn.Module = nn.Linear(w.shape[1], w.shape[0], bias=b is not None, **kw)
    else:
        new = nn.Conv2d(w.shape[1], w.shape[0], 1, bias=b is not None, **kw)
    with torch.no_grad():
        new.weight.copy_(w)
        if b is not None:
            new.bias.copy_(b)
    new.train(layer.training)
    return new


def _add_bias(layer: nn.Module, delta: torch.Tensor) -> nn.Module:
    """``layer`` with ``delta`` added to its bias (a bias is created if it has none)."""
    if not bool(delta.any()):
        return layer
    if layer.bias is None:
        layer.bias = nn.Parameter(torch.zeros(layer.weight.shape[0], dtype=layer.weight.dtype, device=delta.device))
    with torch.no_grad():
        layer.bias += delta.to(layer.bias.dtype)
    return layer


def _shrink_mlp(fc1: nn.Module, act: nn.Module, fc2: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """Drop hidden units whose ``fc1`` row or ``fc2`` column is all zero; a unit with a zero row but a
    live column outputs the constant ``act(b1)``, folded into ``fc2``'s bias."""
    if not (_is_pointwise(fc1) and _is_pointwise(fc2)) or type(fc1) is not type(fc2):
        return None
    w1, w2 = _rows(fc1), _rows(fc2)
    if w2.shape[1] != w1.shape[0]:
        return None
    dead_in, dead_out = ~w1.any(1), ~w2.any(0)
    foldable = isinstance(act, ELEMENTWISE)
    drop = dead_out | (dead_in if foldable else torch.zeros_like(dead_in))
    if not bool(drop.any()):
        return None
    keep = (~drop).nonzero().flatten()
    if keep.numel() == 0:  # one silent unit keeps the shapes valid
        keep = torch.zeros(1, dtype=torch.long, device=w1.device)
    fold = dead_in & ~dead_out & drop
    if foldable and bool(fold.any()):
        b1 = fc1.bias.detach()[fold] if fc1.bias is not None else w1.new_zeros(int(fold.sum()))
        with torch.no_grad():
            const = act(b1)
        fc2 = _add_bias(fc2, w2[:, fold] @ const)
    new1, new2 = _sliced(fc1, out_idx=keep), _sliced(fc2, in_idx=keep)
    if not bool((~drop).any()):  # everything was dropped: silence the unit kept for shape
        with torch.no_grad():
            new1.weight.zero_()
            new2.weight.zero_()
            if new1.bias is not None:
                new1.bias.zero_()
    return new1, new2


class _HeadPrunedAttention(Attention):
    """:class:`~subband.layers.Attention` with some heads removed. Per-head ``bias`` / ``logit_scale``
    given for the original heads (axis ``-3``) are narrowed to the kept ones."""

    def __init__(self, attn: Attention, keep: torch.Tensor, qkv: nn.Linear, proj: nn.Linear) -> None:
        nn.Module.__init__(self)
        self.num_heads, self.head_dim, self.temperature = int(keep.numel()), attn.head_dim, attn.temperature
        self.attn_drop, self.proj_drop = attn.attn_drop, attn.proj_drop
        self.qkv, self.proj = qkv, proj
        self.orig_heads = getattr(attn, "orig_heads", attn.num_heads)
        base = getattr(attn, "head_index", None)
        self.register_buffer("head_index", keep if base is None else base[keep], persistent=False)
        self.train(attn.training)

    def _narrow(self, t: torch.Tensor | None) -> torch.Tensor | None:
        if t is None or t.ndim < 3 or t.shape[-3] != self.orig_heads or self.orig_heads == 1:
            return t
        return t.index_select(-3, self.head_index.to(t.device))

    def forward(
        self, x: torch.Tensor, bias: torch.Tensor | None = None, logit_scale: torch.Tensor | None = None
    ) -> torch.Tensor:
        return super().forward(x, bias=self._narrow(bias), logit_scale=self._narrow(logit_scale))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, kept heads {self.head_index.tolist()} of {self.orig_heads}"


def _shrink_attention(attn: Attention) -> Attention | None:
    """Drop heads whose value rows or ``proj`` columns are all zero; a head with zero value rows
    outputs its value bias at every token (attention rows sum to one), folded into ``proj``'s bias."""
    h, d = attn.num_heads, attn.head_dim
    wqkv, wp = attn.qkv.weight.detach(), attn.proj.weight.detach()
    v_rows = wqkv[2 * h * d :].view(h, d, -1)  # (heads, d, C)
    p_cols = wp.view(wp.shape[0], h, d)  # (C, heads, d)
    dead_v = ~v_rows.flatten(1).any(1)
    dead_p = ~p_cols.transpose(0, 1).flatten(1).any(1)
    drop = dead_v | dead_p
    if not bool(drop.any()):
        return None
    fold = dead_v & ~dead_p
    if attn.qkv.bias is not None and bool(fold.any()):
        bv = attn.qkv.bias.detach()[2 * h * d :].view(h, d)
        attn.proj = _add_bias(attn.proj, torch.einsum("chd,hd->c", p_cols[:, fold], bv[fold]))
    if bool(drop.all()):  # keep one silent head so that the shapes stay valid
        drop[0] = False
        with torch.no_grad():
            attn.proj.weight.view(wp.shape[0], h, d)[:, 0].zero_()
    keep = (~drop).nonzero().flatten()
    dims = (keep[:, None] * d + torch.arange(d, device=keep.device)).flatten()  # inner indices of kept heads
    rows = torch.cat([dims + i * h * d for i in range(3)])  # q, k, v rows
    return _HeadPrunedAttention(attn, keep, _sliced(attn.qkv, out_idx=rows), _sliced(attn.proj, in_idx=dims))


def finalize(model: nn.Module, inplace: bool = False, shrink: bool = True) -> nn.Module:
    """``model`` (a copy unless ``inplace``) with its masks made permanent and, if ``shrink``, every
    MLP hidden unit and attention head that only zeros reach or leave removed (see the module
    docstring). In eval mode the outputs equal the masked model's; dropout between the removed
    pieces is the one training-time difference. ``shrink=False`` keeps every shape (pruned weights
    are stored as zeros), so the state dict loads into the unpruned architecture."""
    out = model if inplace else copy.deepcopy(model)
    for m in list(out.modules()):
        if parametrize.is_parametrized(m, "weight") and _masked(m):
            _bake(m)
    if not shrink:
        return out
    for parent in list(out.modules()):
        for name, child in list(parent.named_children()):
            if type(child) in (Attention, _HeadPrunedAttention):
                new = _shrink_attention(child)
                if new is not None:
                    setattr(parent, name, new)
            elif isinstance(child, Mlp):
                pair = _shrink_mlp(child.fc1, child.act, child.fc2)
                if pair is not None:
                    child.fc1, child.fc2 = pair
        if isinstance(parent, nn.Sequential):
            _shrink_sequential(parent)
    return out


def _bake(layer: nn.Module) -> None:
    """Replace a masked weight by its masked value. (Not ``parametrize.remove_parametrizations``: a
    deep copy shares the injected class with its original, and removing the property from that class
    would unmask the original too.)"""
    if set(layer.parametrizations.keys()) != {"weight"} or not all(
        isinstance(p, WeightMask) for p in layer.parametrizations.weight
    ):
        raise ValueError(f"{type(layer).__name__}: only weights with masks alone can be finalized")
    weight = layer.weight.detach().clone()
    requires_grad = layer.parametrizations.weight.original.requires_grad
    layer.__class__ = type(layer).__bases__[0]  # the class before parametrisation
    del layer._modules["parametrizations"]
    layer.weight = nn.Parameter(weight, requires_grad=requires_grad)


def _shrink_sequential(seq: nn.Sequential) -> None:
    """``Linear, act, [Dropout,] Linear`` runs inside an ``nn.Sequential``."""
    mods = list(seq)
    for i, first in enumerate(mods):
        if not isinstance(first, nn.Linear) or i + 2 >= len(mods) or not isinstance(mods[i + 1], ELEMENTWISE):
            continue
        j = i + 2 + (isinstance(mods[i + 2], nn.Dropout) and i + 3 < len(mods))
        if isinstance(mods[j], nn.Linear):
            pair = _shrink_mlp(first, mods[i + 1], mods[j])
            if pair is not None:
                seq[i], seq[j] = pair
                mods[i], mods[j] = pair
