"""Low-rank adapters for frozen models: LoRA ("LoRA: Low-Rank Adaptation of Large Language Models",
Hu et al.; arXiv 2106.09685) and WaRA ("WaRA: Wavelet Low Rank Adaptation", Heidari et al.;
arXiv 2506.24092), for ``nn.Linear`` and ``nn.Conv2d``.

A layer's weight, read as a matrix ``W (out, in * k * k)``, gets a trainable update ``dW`` while
``W`` stays frozen:

- LoRA: ``dW = (alpha / r) B A`` with ``A (r, in)``, ``B (out, r)`` (``B`` starts at zero);
- WaRA: ``dW = (alpha / r) IDWT2(B_b A_b for b in bands)``: a one-level 2-D Haar transform
  (periodization) of the update matrix has four subbands (LL, LH, HL, HH) of half the size each;
  each chosen subband is low-rank, ``A_b (r, in/2)``, ``B_b (out/2, r)``, and the update is their
  inverse transform. The paper's code is not public; this follows its description (low-rank
  factors in the wavelet domain of the update, reconstructed by the inverse transform). A WaRA
  adapter of rank ``r`` on all four subbands can reach rank ``4r`` with ``2 r (out + in)``
  parameters; at rank ``r / 4`` per subband it has half of LoRA's ``r (out + in)`` parameters for
  the same maximal rank ``r``.

:func:`add_adapters` returns a copy of a model with adapters on the chosen layers and every other
parameter frozen; :func:`merge_adapters` folds the updates into the weights (inference at the
original cost) and :func:`unmerge_adapters` takes them out again.

Example:
    >>> net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    >>> tuned = add_adapters(net, "wara", rank=2)
    >>> sum(p.numel() for p in tuned.parameters() if p.requires_grad)  # 4 bands x (2 x half-in + half-out x 2)
    336
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..wavelets import idwt2

__all__ = ["LoRA", "WaRA", "add_adapters", "merge_adapters", "unmerge_adapters", "adapter_parameters"]

BANDS = ("ll", "lh", "hl", "hh")


class _Adapter(nn.Module):
    """Wraps a frozen ``nn.Linear`` / ``nn.Conv2d`` (``base``) and adds ``delta()`` to its weight."""

    def __init__(self, base: nn.Module, rank: int, alpha: float | None) -> None:
        super().__init__()
        if not isinstance(base, (nn.Linear, nn.Conv2d)):
            raise TypeError(f"adapters wrap nn.Linear or nn.Conv2d, got {type(base).__name__}")
        if rank < 1:
            raise ValueError(f"rank must be positive, got {rank}")
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.rank = rank
        self.scale = (alpha if alpha is not None else rank) / rank
        self.rows, self.cols = base.weight.shape[0], base.weight[0].numel()
        self.merged = False

    def delta(self) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _weight(self) -> torch.Tensor:
        w = self.base.weight
        return w if self.merged else w + self.delta().view_as(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.base, nn.Linear):
            return F.linear(x, self._weight(), self.base.bias)
        return self.base._conv_forward(x, self._weight(), self.base.bias)

    @torch.no_grad()
    def merge(self) -> None:
        if not self.merged:
            self.base.weight += self.delta().view_as(self.base.weight)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.base.weight -= self.delta().view_as(self.base.weight)
            self.merged = False

    def extra_repr(self) -> str:
        return f"rank={self.rank}, scale={self.scale:g}, merged={self.merged}"


class LoRA(_Adapter):
    """``dW = scale * B A``: ``lora_a (r, in*k*k)`` Kaiming-uniform, ``lora_b (out, r)`` zeros."""

    def __init__(self, base: nn.Module, rank: int = 4, alpha: float | None = None) -> None:
        super().__init__(base, rank, alpha)
        w = base.weight
        self.lora_a = nn.Parameter(torch.empty(rank, self.cols, dtype=w.dtype, device=w.device))
        self.lora_b = nn.Parameter(torch.zeros(self.rows, rank, dtype=w.dtype, device=w.device))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def delta(self) -> torch.Tensor:
        return self.scale * self.lora_b @ self.lora_a  # (out, in*k*k)


class WaRA(_Adapter):
    """``dW = scale * IDWT2({b: B_b A_b})`` over the Haar subbands ``bands``."""

    def __init__(
        self, base: nn.Module, rank: int = 4, alpha: float | None = None, bands: Sequence[str] = BANDS
    ) -> None:
        super().__init__(base, rank, alpha)
        bands = tuple(bands)
        if not bands or any(b not in BANDS for b in bands):
            raise ValueError(f"bands must be a non-empty subset of {BANDS}, got {bands}")
        self.bands = bands
        w = base.weight
        self.half = (math.ceil(self.rows / 2), math.ceil(self.cols / 2))  # periodization sizes
        self.wara_a = nn.ParameterDict(
            {b: nn.Parameter(torch.empty(rank, self.half[1], dtype=w.dtype, device=w.device)) for b in bands}
        )
        self.wara_b = nn.ParameterDict(
            {b: nn.Parameter(torch.zeros(self.half[0], rank, dtype=w.dtype, device=w.device)) for b in bands}
        )
        for a in self.wara_a.values():
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))

    def delta(self) -> torch.Tensor:
        zero = self.base.weight.new_zeros(self.half)
        c = {b: self.wara_b[b] @ self.wara_a[b] if b in self.bands else zero for b in BANDS}
        # pywt's 2-D layout: (cA, (cH, cV, cD)); rows are axis -2
        d = idwt2((c["ll"], (c["lh"], c["hl"], c["hh"])), "haar", mode="periodization")
        return self.scale * d[: self.rows, : self.cols]


def add_adapters(
    model: nn.Module,
    kind: str = "lora",
    rank: int = 4,
    alpha: float | None = None,
    targets: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv2d),
    names: Sequence[str] | None = None,
    **kwargs,
) -> nn.Module:
    """A copy of ``model`` with every ``targets`` layer (or the layers named in ``names``) wrapped
    in a ``kind`` adapter (``"lora"`` or ``"wara"``) and every other parameter frozen."""
    cls = {"lora": LoRA, "wara": WaRA}.get(kind)
    if cls is None:
        raise ValueError(f"kind must be 'lora' or 'wara', got {kind!r}")
    model = copy.deepcopy(model)
    for p in model.parameters():
        p.requires_grad_(False)
    chosen = set(names) if names is not None else None
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            full = f"{parent_name}.{child_name}" if parent_name else child_name
            if isinstance(child, _Adapter) or not isinstance(child, targets):
                continue
            if chosen is not None and full not in chosen:
                continue
            setattr(parent, child_name, cls(child, rank, alpha, **kwargs))
    return model


def adapter_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The trainable parameters of the adapters in ``model``."""
    return [
        p
        for m in model.modules()
        if isinstance(m, _Adapter)
        for n, p in m.named_parameters()
        if not n.startswith("base.")
    ]


def merge_adapters(model: nn.Module) -> nn.Module:
    """Fold every adapter's update into its layer's weight (in place); returns the model."""
    for m in model.modules():
        if isinstance(m, _Adapter):
            m.merge()
    return model


def unmerge_adapters(model: nn.Module) -> nn.Module:
    """Take every merged update out of its layer's weight again (in place); returns the model."""
    for m in model.modules():
        if isinstance(m, _Adapter):
            m.unmerge()
    return model
