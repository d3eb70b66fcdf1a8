"""Content-based token pruning for ViTs and its distillation (EET: "Rethinking Vision Transformer for
Large-Scale Fine-Grained Image Retrieval", Jiang, Tang, Pan, Li; IEEE TMM 2025; arXiv 2504.16691).

EET makes a ViT cheaper by dropping patch tokens at a few blocks: after block ``l`` every patch
token ``i`` gets the score

    ``M_i = sum_h W_i^h A_i^h``,  ``W_i^h = S_i^h / (sum_h' S_i^h' + 1e-8)``,  ``S_i^h = ||O_i^h||_2``

where ``A^h`` is head ``h``'s attention of the class token to the patch tokens (softmax row of the
class query) and ``O_i^h`` is head ``h``'s output for token ``i`` (``softmax(q k^T) v`` before the
output projection): the class token's attention, weighted per token towards the heads whose output
for that token is large (the "feature response"). The top ``floor(keep * n)`` patch tokens go on to
block ``l + 1``; the class token (all ``P`` prefix tokens) always does. The dropped tokens are
discarded, not fused into one. The student is then trained with the unpruned teacher
(:func:`eet_distillation_loss`): the student's hash outputs are pulled towards the teacher's
(discriminative knowledge transfer), and the student also classifies the image with the teacher's
most-attended patches blacked out (:func:`mask_top_patches`, discriminative region guidance).

Here:

- :func:`prune_tokens` returns a copy of any ViT whose ``blocks`` are subband
  :class:`~subband.layers.TransformerBlock` s (or timm ``Block`` s: anything with ``attn.qkv``,
  ``attn.proj``, ``attn.num_heads``, ``attn.head_dim``) with the chosen blocks wrapped in
  :class:`TokenPruneBlock`. The score needs no slower attention: the wrapper hooks the block's
  ``attn.qkv`` output (for the class query and the keys: one extra ``1 x N`` softmax row per head)
  and ``attn.proj``'s input (the per-head outputs ``O``), so SDPA still computes the attention and
  the other blocks are untouched. Kept tokens stay in their original order. In eager PyTorch on a
  CPU the score costs roughly 0.25 ms per pruning block (hooks and a dozen small operations): on
  ViT-S/16 at 224, :data:`EET_KEEP` cuts the CPU latency by 37% at batch 1 and 44% at batch 16 (the
  paper reports 42.7% for ViT-S), but a 0.3M-parameter ViT on 50 tokens gets slower at batch 1
  (``examples/token_prune.py``).
- :func:`eet_token_scores` is the score as a pure function; :func:`select_tokens` the top-k gather.
- :func:`record_token_scores` (scores of an unpruned model, e.g. the teacher's last block) and
  :func:`capture_outputs` (any submodule's outputs) are context managers whose hooks are removed on
  exit, also when the forward raises.
- :func:`eet_distillation_loss` and :func:`mask_top_patches`: the training objective. The hashing
  head, the proxy codes it regresses and the retrieval mAP are in :mod:`subband.compress.hashing`.

Checked against the official code (github.com/WhiteJiang/EET, ``model/vit.py``, ``loss.py``,
``train_model.py``): the score (``Attention.forward``: per-head output norms of the patch tokens,
normalised over heads with ``+1e-8``, times the class row of the attention, summed over heads), the
schedule (ViT-S/16 at 224: after blocks 3, 7 and 9, zero-based, keep 98, 49 and 12 of the 196, 98
and 49 patch tokens: :data:`EET_KEEP`), no fusion of the dropped tokens, and the losses: student
``0.1 * (CE(image) + CE(masked image)) + MSE(hash outputs, proxy codes) + 1.0 * (1 - cos(student
hash outputs, teacher hash outputs))``, the teacher's attention score of its last block choosing
``w = 4`` patches to black out (of 196). With the official ``VisionTransformer`` built at depth 12
on 224 x 224 inputs (width 96, 6 heads, random weights) and its weights loaded into subband's ViT,
``HashingClassifier(prune_tokens(vit, EET_KEEP), 16)`` keeps the same token sets and gives the same
logits and hash outputs (max abs diff 5e-7 in float32 on logits up to 1, 9e-16 in float64; the
unpruned ViT differs from the official pruned one by 6e-2; checked outside this suite, the official
code is not a package).

Differs from the official code: kept tokens keep their original order (official: descending score;
the blocks after are permutation-equivariant, so the class output is the same up to rounding);
``keep`` is a ratio of the current patch tokens, ``floor(keep * n)`` (at least 1), instead of fixed
counts; the official code also defines a temperature-3 KL on the logits that its training loop
does not use (``kl_weight``, 0 by default); the official masking swaps rows and columns of the
chosen patches (it blacks out patch ``(col, row)``), here patch ``(row, col)`` is blacked out.
The paper uses a larger teacher; the official script trains a same-size unpruned teacher alongside
the student. Blocks given an attention ``bias``/``logit_scale`` (relative positions, GMM masks)
cannot be pruned: the score would ignore them and later blocks would get a mask of the wrong size.

Shape:
    :func:`eet_token_scores`: ``cls_attn (B, h, N)``, ``head_out (B, h, N, d) -> (B, N - P)``.
    :func:`select_tokens`: ``x (B, N, C)``, ``scores (B, N - P) -> (B, P + k, C)``, ``(B, k)``.
    :class:`TokenPruneBlock`: ``(B, N, C) -> (B, P + floor(keep * (N - P)), C)``.

Example:
    >>> from subband.layers import TransformerBlock
    >>> class Tiny(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.blocks = nn.Sequential(*(TransformerBlock(32, 4) for _ in range(4)))
    ...     def forward(self, x):
    ...         return self.blocks(x)
    >>> pruned = prune_tokens(Tiny(), [(1, 0.5), (2, 0.5)])
    >>> pruned(torch.randn(2, 1 + 64, 32)).shape  # class token + 64 -> 32 -> 16 patch tokens
    torch.Size([2, 17, 32])
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "EET_KEEP",
    "eet_token_scores",
    "select_tokens",
    "TokenPruneBlock",
    "prune_tokens",
    "record_token_scores",
    "capture_outputs",
    "mask_top_patches",
    "EETLoss",
    "eet_distillation_loss",
]

EET_KEEP: tuple[tuple[int, float], ...] = ((3, 0.5), (7, 0.5), (9, 0.25))
"""The official ViT-S/16 schedule: after blocks 3, 7, 9 (zero-based) keep 196 -> 98 -> 49 -> 12 patch tokens."""


def eet_token_scores(cls_attn: torch.Tensor, head_out: torch.Tensor, num_prefix_tokens: int = 1) -> torch.Tensor:
    """EET's content-based importance of every patch token (see the module docstring).

    Args:
        cls_attn: ``(B, h, N)`` attention probabilities of the class query (token 0) over all tokens.
        head_out: ``(B, h, N, d)`` per-head attention outputs (before the output projection).
        num_prefix_tokens: ``P``, the leading class/prefix tokens, which are not scored.

    Returns:
        ``(B, N - P)`` scores of the patch tokens.
    """
    if cls_attn.ndim != 3 or head_out.ndim != 4 or head_out.shape[:3] != cls_attn.shape:
        raise ValueError(f"need cls_attn (B, h, N) and head_out (B, h, N, d), got {tuple(cls_attn.shape)}, "
                         f"{tuple(head_out.shape)}")  # fmt: skip
    p = num_prefix_tokens
    if not 1 <= p < cls_attn.shape[-1]:
        raise ValueError(f"num_prefix_tokens must be in [1, N), got {p} for N = {cls_attn.shape[-1]}")
    strength = torch.linalg.vector_norm(head_out[:, :, p:], dim=-1)  # (B, h, N - P)
    weight = strength / (strength.sum(dim=1, keepdim=True) + 1e-8)  # normalised over the heads
    return (weight * cls_attn[:, :, p:]).sum(dim=1)  # (B, N - P)


def _num_keep(n: int, keep: float) -> int:
    return max(1, min(n, math.floor(keep * n + 1e-6)))


def _check_keep(keep: float) -> None:
    if not isinstance(keep, (int, float)) or not 0.0 < keep <= 1.0:
        raise ValueError(f"keep ratios must be in (0, 1], got {keep!r}")


def select_tokens(
    x: torch.Tensor, scores: torch.Tensor, keep: float, num_prefix_tokens: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the prefix tokens and the ``floor(keep * n)`` (at least 1) highest-scoring patch tokens.

    Args:
        x: ``(B, P + n, C)`` tokens.
        scores: ``(B, n)`` patch-token scores.
        keep: ratio of the ``n`` patch tokens to keep, in ``(0, 1]``.
        num_prefix_tokens: ``P``.

    Returns:
        The ``(B, P + k, C)`` kept tokens (patch tokens in their original order) and the ``(B, k)``
        indices of the kept patch tokens among the ``n``.
    """
    _check_keep(keep)
    p = num_prefix_tokens
    b, n = scores.shape
    if x.shape[0] != b or x.shape[1] != p + n:
        raise ValueError(f"x {tuple(x.shape)} does not hold {p} prefix + {n} scored tokens")
    k = _num_keep(n, keep)
    if k == n:
        return x, torch.arange(n, device=x.device).expand(b, n)
    index = scores.topk(k, dim=1).indices.sort(dim=1).values  # (B, k), original order
    patches = x[:, p:].gather(1, index[..., None].expand(-1, -1, x.shape[-1]))  # (B, k, C)
    return torch.cat([x[:, :p], patches], 1), index


def _check_attention(attn: object, where: str) -> None:
    missing = [a for a in ("qkv", "proj", "num_heads", "head_dim") if not hasattr(attn, a)]
    if missing:
        raise ValueError(f"{where}.attn must be a ViT self-attention with qkv, proj, num_heads, head_dim "
                         f"(subband.layers.Attention or timm's); missing {missing}")  # fmt: skip
    for norm in ("q_norm", "k_norm"):
        if not isinstance(getattr(attn, norm, nn.Identity()), nn.Identity):
            raise ValueError(f"{where}.attn.{norm} is not supported: the score recomputes q k^T from qkv")


class _ScoreProbe:
    """Hooks on one attention module that hand EET's score of each forward to ``sink``: the
    ``qkv`` output gives the class query's attention row, ``proj``'s input the per-head outputs."""

    def __init__(self, attn: nn.Module, num_prefix_tokens: int, sink: Callable[[torch.Tensor], None]) -> None:
        self.attn, self.num_prefix_tokens, self.sink = attn, num_prefix_tokens, sink
        self.heads, self.head_dim = int(attn.num_heads), int(attn.head_dim)  # type: ignore[arg-type]
        scale = getattr(attn, "scale", self.head_dim**-0.5)
        self.scale = float(scale) / float(getattr(attn, "temperature", 1.0))
        self._cls_attn: torch.Tensor | None = None
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> _ScoreProbe:
        try:
            self._handles.append(self.attn.qkv.register_forward_hook(self._on_qkv))  # type: ignore[union-attr]
            self._handles.append(self.attn.proj.register_forward_pre_hook(self._on_proj))  # type: ignore[union-attr]
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._cls_attn = None

    def _on_qkv(self, module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        b, n, _ = out.shape
        qkv = out.detach().view(b, n, 3, self.heads, self.head_dim)  # (B, N, 3, h, d)
        q = qkv[:, :1, 0].transpose(1, 2)  # (B, h, 1, d): the class query
        k = qkv[:, :, 1].transpose(1, 2)  # (B, h, N, d)
        self._cls_attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(-1)[:, :, 0]  # (B, h, N)

    def _on_proj(self, module: nn.Module, args: tuple) -> None:
        if self._cls_attn is None:
            raise RuntimeError("attn.proj ran before attn.qkv: not a standard ViT attention")
        y = args[0].detach()
        b, n, _ = y.shape
        head_out = y.view(b, n, self.heads, -1).transpose(1, 2)  # (B, N, h*d) -> (B, h, N, d)
        self.sink(eet_token_scores(self._cls_attn, head_out, self.num_prefix_tokens))
        self._cls_attn = None


class TokenPruneBlock(nn.Module):
    """A transformer block followed by EET's token pruning.

    Runs ``block``, scores its output's patch tokens with the block's own attention
    (:func:`eet_token_scores`) and keeps the prefix tokens and the top ``floor(keep * n)`` patch
    tokens. Two identity submodules are hook points for :func:`capture_outputs`: ``score`` sees the
    ``(B, n)`` scores, ``kept`` the ``(B, k)`` indices of the kept tokens among the block's ``n``
    patch tokens.

    Args:
        block: a pre-norm ViT block with ``attn`` (see :func:`prune_tokens`).
        keep: ratio of the patch tokens to keep, in ``(0, 1]``.
        num_prefix_tokens: ``P >= 1``: the class token first, then any other prefix tokens.
    """

    def __init__(self, block: nn.Module, keep: float, num_prefix_tokens: int = 1) -> None:
        super().__init__()
        _check_keep(keep)
        if num_prefix_tokens < 1:
            raise ValueError(f"EET scores tokens by the class token's attention: need num_prefix_tokens >= 1, "
                             f"got {num_prefix_tokens}")  # fmt: skip
        _check_attention(getattr(block, "attn", None), type(block).__name__)
        self.block = block
        self.keep = float(keep)
        self.num_prefix_tokens = num_prefix_tokens
        self.score = nn.Identity()
        self.kept = nn.Identity()

    def forward(self, x: torch.Tensor, *args: torch.Tensor | None, **kwargs: torch.Tensor | None) -> torch.Tensor:
        if any(a is not None for a in (*args, *kwargs.values())):
            raise ValueError("a token-pruned block cannot take an attention bias or logit scale")
        found: list[torch.Tensor] = []
        with _ScoreProbe(self.block.attn, self.num_prefix_tokens, found.append):  # type: ignore[arg-type]
            x = self.block(x)
        if len(found) != 1:
            raise RuntimeError(f"expected the block's attention to run once, it ran {len(found)} times")
        x, index = select_tokens(x, self.score(found[0]), self.keep, self.num_prefix_tokens)
        self.kept(index)
        return x

    def extra_repr(self) -> str:
        return f"keep={self.keep}, num_prefix_tokens={self.num_prefix_tokens}"


def _blocks(model: nn.Module, blocks: str | None) -> tuple[nn.Module, nn.Module]:
    """``(owner, blocks)``: the block container (``model.<blocks>``, by default the shallowest
    submodule called ``blocks``) and the module holding it."""
    if blocks is None:
        names = [n for n, _ in model.named_modules() if n.rsplit(".", 1)[-1] == "blocks"]
        if not names:
            raise ValueError(f"{type(model).__name__} has no submodule called 'blocks': pass blocks='<path>'")
        blocks = min(names, key=lambda n: n.count("."))
    owner = model.get_submodule(blocks.rpartition(".")[0])
    container = model.get_submodule(blocks)
    if not isinstance(container, (nn.ModuleList, nn.Sequential)):
        raise ValueError(f"model.{blocks} must be an nn.ModuleList or nn.Sequential, got {type(container).__name__}")
    return owner, container


def _prefix(owner: nn.Module, model: nn.Module, num_prefix_tokens: int | None) -> int:
    if num_prefix_tokens is not None:
        return num_prefix_tokens
    return int(getattr(owner, "num_prefix_tokens", getattr(model, "num_prefix_tokens", 1)))


def prune_tokens(
    model: nn.Module,
    keep: Iterable[tuple[int, float]],
    *,
    num_prefix_tokens: int | None = None,
    blocks: str | None = None,
) -> nn.Module:
    """A copy of ``model`` that drops patch tokens after the given blocks (EET's pruning).

    Args:
        model: a ViT whose blocks sit in an ``nn.ModuleList``/``nn.Sequential`` and run in order on
            ``(B, P + n, C)`` tokens, class token first; pooling must not need the full grid
            (class-token or mean pooling; spatial feature maps after a pruned block do not exist).
        keep: ``(block_index, ratio)`` pairs: after block ``block_index`` keep ``floor(ratio * n)``
            of its ``n`` patch tokens, e.g. :data:`EET_KEEP`. Negative indices count from the end.
        num_prefix_tokens: ``P``; by default the model's ``num_prefix_tokens`` (1 if it has none).
        blocks: dotted path of the block container (default: the shallowest submodule ``blocks``).

    Returns:
        A new model (the original is not changed) whose chosen blocks are :class:`TokenPruneBlock` s;
        their parameters gain ``.block`` in the state dict.
    """
    schedule = list(keep)
    pruned = copy.deepcopy(model)
    owner, container = _blocks(pruned, blocks)
    depth = len(container)
    prefix = _prefix(owner, pruned, num_prefix_tokens)
    seen: set[int] = set()
    for i, ratio in schedule:
        j = i + depth if i < 0 else i
        if not 0 <= j < depth:
            raise ValueError(f"block index {i} out of range for {depth} blocks")
        if j in seen:
            raise ValueError(f"block {j} appears twice in keep")
        seen.add(j)
        if isinstance(container[j], TokenPruneBlock):
            raise ValueError(f"block {j} is already token-pruned")
        container[j] = TokenPruneBlock(container[j], ratio, prefix)
    return pruned


@contextlib.contextmanager
def record_token_scores(
    model: nn.Module,
    indices: Sequence[int],
    *,
    num_prefix_tokens: int | None = None,
    blocks: str | None = None,
) -> Iterator[dict[int, torch.Tensor]]:
    """Record EET's ``(B, n)`` patch-token scores of the blocks in ``indices`` (e.g. ``[-1]``, the
    teacher's last block, for :func:`mask_top_patches`) during the forward passes in the ``with``
    body; the dict maps the given index to the scores of the latest pass. Hooks are removed on exit.
    """
    owner, container = _blocks(model, blocks)
    prefix = _prefix(owner, model, num_prefix_tokens)
    if prefix < 1:
        raise ValueError(f"EET scores tokens by the class token's attention: need num_prefix_tokens >= 1, got {prefix}")
    scores: dict[int, torch.Tensor] = {}
    with contextlib.ExitStack() as stack:
        for i in indices:
            block = container[i]
            block = block.block if isinstance(block, TokenPruneBlock) else block
            _check_attention(getattr(block, "attn", None), f"blocks[{i}]")
            stack.enter_context(_ScoreProbe(block.attn, prefix, lambda s, i=i: scores.__setitem__(i, s)))
        yield scores


@contextlib.contextmanager
def capture_outputs(model: nn.Module, names: Iterable[str]) -> Iterator[dict[str, torch.Tensor]]:
    """The outputs of the named submodules (``model.get_submodule(name)``) during the forward passes
    in the ``with`` body, latest pass per name (not detached: a loss can flow through them). The
    hooks are removed on exit, also when the body raises."""
    out: dict[str, torch.Tensor] = {}
    handles = []
    try:
        for name in names:
            module = model.get_submodule(name)

            def hook(m: nn.Module, inputs: tuple, output: torch.Tensor, name: str = name) -> None:
                out[name] = output

            handles.append(module.register_forward_hook(hook))
        yield out
    finally:
        for h in handles:
            h.remove()


def mask_top_patches(images: torch.Tensor, scores: torch.Tensor, num_masked: int, patch_size: int) -> torch.Tensor:
    """Black out (set to 0) the ``num_masked`` highest-scoring patches of every image (EET's
    discriminative region guidance: the teacher's most-attended patches, the student must still
    recognise the image without them).

    Args:
        images: ``(B, C, H, W)``.
        scores: ``(B, h * w)`` patch scores, row-major over the ``h x w = ceil(H / p) x ceil(W / p)``
            patch grid (e.g. from :func:`record_token_scores` on an unpruned block).
        num_masked: patches to black out per image (the official code: 4 of 196).
        patch_size: ``p``.
    """
    b, _, height, width = images.shape
    gh, gw = math.ceil(height / patch_size), math.ceil(width / patch_size)
    if scores.shape != (b, gh * gw):
        raise ValueError(f"scores {tuple(scores.shape)} do not match the {gh}x{gw} patch grid of {b} images")
    if not 0 <= num_masked <= gh * gw:
        raise ValueError(f"num_masked must be in [0, {gh * gw}], got {num_masked}")
    keep = torch.ones(b, gh * gw, dtype=images.dtype, device=images.device)
    keep.scatter_(1, scores.topk(num_masked, dim=1).indices, 0.0)
    keep = keep.view(b, 1, gh, gw).repeat_interleave(patch_size, 2).repeat_interleave(patch_size, 3)  # (B, 1, H', W')
    return images * keep[..., :height, :width]


class EETLoss(NamedTuple):
    """The weighted total and its unweighted terms (zero where the inputs for a term were not given)."""

    total: torch.Tensor
    classification: torch.Tensor
    region: torch.Tensor
    codes: torch.Tensor
    transfer: torch.Tensor
    kl: torch.Tensor


def eet_distillation_loss(
    student_out: tuple[torch.Tensor, torch.Tensor],
    teacher_out: tuple[torch.Tensor, torch.Tensor],
    *,
    labels: torch.Tensor | None = None,
    target_codes: torch.Tensor | None = None,
    masked_logits: torch.Tensor | None = None,
    cls_weight: float = 0.1,
    code_weight: float = 1.0,
    transfer_weight: float = 1.0,
    kl_weight: float = 0.0,
    temperature: float = 3.0,
) -> EETLoss:
    """The EET student objective (official weights by default)::

        total = cls_weight * (CE(logits, labels) + CE(masked_logits, labels))
              + code_weight * MSE(codes, target_codes)
              + transfer_weight * mean(1 - cos(codes, teacher_codes))
              + kl_weight * T^2 * KL(softmax(teacher_logits / T) || softmax(logits / T))

    The teacher's outputs are detached. Terms whose inputs are not given are 0.

    Args:
        student_out, teacher_out: ``(logits (B, K), codes (B, bits))``, the real-valued outputs of
            the hashing head (:class:`~subband.compress.hashing.HashingClassifier`).
        labels: ``(B,)`` class indices (for the two cross-entropies).
        target_codes: ``(B, bits)`` proxy codes in ``{-1, +1}``
            (:func:`~subband.compress.hashing.proxy_hash_codes`).
        masked_logits: the student's logits on :func:`mask_top_patches` of the images.
        temperature: of the KL term (the official ``DistillKL``: 3).
    """
    logits, codes = student_out
    t_logits, t_codes = teacher_out[0].detach(), teacher_out[1].detach()
    zero = logits.new_zeros(())
    if (masked_logits is not None) and labels is None:
        raise ValueError("masked_logits needs labels")
    cls = F.cross_entropy(logits, labels) if labels is not None else zero
    region = F.cross_entropy(masked_logits, labels) if masked_logits is not None and labels is not None else zero
    code = F.mse_loss(codes, target_codes) if target_codes is not None else zero
    transfer = (1.0 - F.cosine_similarity(codes, t_codes, dim=1)).mean()
    kl = zero
    if kl_weight:
        t = temperature
        kl = F.kl_div(F.log_softmax(logits / t, 1), F.softmax(t_logits / t, 1), reduction="batchmean") * t * t
    total = cls_weight * (cls + region) + code_weight * code + transfer_weight * transfer + kl_weight * kl
    return EETLoss(total, cls, region, code, transfer, kl)
