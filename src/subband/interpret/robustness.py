"""Robustness to patch-wise perturbations ("Are Vision Transformers Robust to Patch
Perturbations?", Gu, Tresp, Qin; ECCV 2022, arXiv 2111.10659).

An image is cut into the ``p x p`` patches a ViT would tokenise. Two kinds of perturbation touch
only some of those patches:

- :func:`corrupt_patches`: natural corruptions (Gaussian noise, blur, contrast, brightness,
  pixelation) applied inside ``n`` random patches;
- :func:`patch_attack`: an adversarial patch: projected gradient ascent on the classifier's
  cross-entropy that changes the pixels of one patch only (any values in the valid range, or
  within ``eps`` of the original), at a given or random patch position per image.

:func:`evaluate_patch_robustness` reports clean, corrupted and attacked accuracy of any
classifier. :func:`set_attention_temperature` applies the paper's remedy to models built on
:class:`subband.layers.Attention`: a softmax temperature above 1 flattens the attention, so that a
single adversarial patch cannot draw all of it.

Example:
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()
    >>> x, y = torch.rand(2, 3, 32, 32), torch.tensor([0, 1])
    >>> adv = patch_attack(net, x, y, patch_size=8, steps=3)
    >>> bool(((adv - x).abs().sum(1) > 0).sum() <= 2 * 64)  # at most one 8x8 patch per image changed
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import Attention

__all__ = [
    "CORRUPTIONS",
    "corrupt_patches",
    "patch_attack",
    "evaluate_patch_robustness",
    "set_attention_temperature",
]


def _blur(x: torch.Tensor, severity: float) -> torch.Tensor:
    k = 2 * int(1 + severity) + 1
    w = torch.ones(x.shape[1], 1, k, k, dtype=x.dtype, device=x.device) / (k * k)
    return F.conv2d(F.pad(x, [k // 2] * 4, mode="replicate"), w, groups=x.shape[1])


def _pixelate(x: torch.Tensor, severity: float) -> torch.Tensor:
    f = 2 + int(severity)
    h, w = x.shape[-2:]
    return F.interpolate(F.avg_pool2d(x, f, ceil_mode=True), size=(h, w), mode="nearest")


CORRUPTIONS = {
    "gaussian_noise": lambda x, s, g: x + 0.08 * s * torch.randn(x.shape, generator=g).to(x),
    "blur": lambda x, s, g: _blur(x, s),
    "contrast": lambda x, s, g: (x - x.mean((-2, -1), keepdim=True)) / (1 + s) + x.mean((-2, -1), keepdim=True),
    "brightness": lambda x, s, g: x + 0.1 * s,
    "pixelate": lambda x, s, g: _pixelate(x, s),
}


def _patch_mask(shape: torch.Size, patch: int, index: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``(B, 1, H, W)`` mask of the patch ``index[b]`` (row-major over the patch grid) per image."""
    b, _, h, w = shape
    cols = w // patch
    rows, cs = index // cols, index % cols
    yy = torch.arange(h, device=device).view(1, h, 1)
    xx = torch.arange(w, device=device).view(1, 1, w)
    inside = ((yy // patch) == rows.view(b, 1, 1)) & ((xx // patch) == cs.view(b, 1, 1))
    return inside.unsqueeze(1)


def _check(x: torch.Tensor, patch_size: int) -> int:
    if x.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if patch_size < 1 or h % patch_size or w % patch_size:
        raise ValueError(f"patch_size must divide the image size {h}x{w}, got {patch_size}")
    return (h // patch_size) * (w // patch_size)


def corrupt_patches(
    x: torch.Tensor,
    patch_size: int,
    num_patches: int = 1,
    corruption: str = "gaussian_noise",
    severity: float = 3.0,
    clamp: tuple[float, float] | None = (0.0, 1.0),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``x`` with ``num_patches`` random patches per image replaced by their corrupted version."""
    n = _check(x, patch_size)
    if corruption not in CORRUPTIONS:
        raise ValueError(f"corruption must be one of {sorted(CORRUPTIONS)}, got {corruption!r}")
    if not 0 <= num_patches <= n:
        raise ValueError(f"num_patches must be in [0, {n}], got {num_patches}")
    corrupted = CORRUPTIONS[corruption](x, severity, generator)
    if clamp is not None:
        corrupted = corrupted.clamp(*clamp)
    mask = torch.zeros(x.shape[0], 1, *x.shape[-2:], dtype=torch.bool, device=x.device)
    for _ in range(num_patches):
        while True:  # distinct patches
            idx = torch.randint(n, (x.shape[0],), generator=generator).to(x.device)
            new = _patch_mask(x.shape, patch_size, idx, x.device)
            if not (new & mask).any():
                break
        mask |= new
    return torch.where(mask, corrupted, x)


def patch_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    patch_size: int,
    position: int | torch.Tensor | None = None,
    steps: int = 40,
    step_size: float = 0.05,
    eps: float | None = None,
    clamp: tuple[float, float] = (0.0, 1.0),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """PGD (signed gradient steps) on the cross-entropy of ``model`` that changes one patch only.

    Args:
        model: a classifier returning logits ``(B, K)`` (used in its current mode).
        x, y: images ``(B, C, H, W)`` in the range ``clamp`` and their labels.
        patch_size: the patch side; must divide ``H`` and ``W``.
        position: patch index (row-major on the patch grid), one per image or shared; random if None.
        steps, step_size: PGD iterations and step.
        eps: bound on the change per pixel (``None``: any value in ``clamp``, as the paper).
    """
    n = _check(x, patch_size)
    if position is None:
        position = torch.randint(n, (x.shape[0],), generator=generator)
    idx = torch.as_tensor(position, device=x.device).expand(x.shape[0]) if not isinstance(position, int) else (
        torch.full((x.shape[0],), position, device=x.device))  # fmt: skip
    if (idx < 0).any() or (idx >= n).any():
        raise ValueError(f"position must be in [0, {n})")
    mask = _patch_mask(x.shape, patch_size, idx, x.device).to(x.dtype)
    x0 = x.detach()
    adv = x0.clone()
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = F.cross_entropy(model(adv), y)
        (g,) = torch.autograd.grad(loss, adv)
        with torch.no_grad():
            adv = adv + step_size * g.sign() * mask
            if eps is not None:
                adv = x0 + (adv - x0).clamp(-eps, eps)
            adv = adv.clamp(*clamp)
    return adv.detach()


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x).argmax(-1) == y).float().mean())


def evaluate_patch_robustness(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    patch_size: int,
    corruptions: Sequence[str] = ("gaussian_noise", "blur"),
    num_patches: int = 1,
    attack_steps: int = 40,
    seed: int = 0,
) -> dict[str, float]:
    """Accuracy of ``model`` (eval mode) on clean images, with ``num_patches`` naturally corrupted
    patches per image (each corruption), and under a one-patch adversarial attack at a random
    position."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    out = {"clean": _accuracy(model, x, y)}
    for c in corruptions:
        out[c] = _accuracy(model, corrupt_patches(x, patch_size, num_patches, c, generator=g), y)
    with torch.enable_grad():
        adv = patch_attack(model, x, y, patch_size, steps=attack_steps, generator=g)
    out["adversarial_patch"] = _accuracy(model, adv, y)
    return out


def set_attention_temperature(model: nn.Module, temperature: float) -> int:
    """Set the softmax temperature of every :class:`~subband.layers.Attention` in ``model`` (in
    place); returns how many were set (0: the model has none, e.g. a CNN)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    count = 0
    for m in model.modules():
        if isinstance(m, Attention):
            m.temperature = float(temperature)
            count += 1
    return count
