"""WaRA against LoRA at an equal trainable-parameter budget, on a small adaptation task.

A small CNN is trained on MNIST (the split in ../shared/data), frozen, and adapted to
scikit-learn's 8x8 digits (resized to 28x28: other writers, other resolution) by training only
low-rank adapters on its convolutions plus a new linear head. LoRA at rank r and WaRA at rank r/4
per Haar subband (the same maximal rank of the update) are compared, then WaRA at the rank that
matches LoRA's parameter count. Accuracy on a held-out fifth of the digits.

    python examples/adapters.py [--mnist ../shared/data/mnist-test] [--ranks 4 8]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from subband.compress import adapter_parameters, add_adapters
from subband.data import digits, mnist


def small_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(128, 10),
    )  # fmt: skip


def train(net: nn.Module, params, x, y, steps: int, lr: float, desc: str) -> None:
    opt = torch.optim.Adam(params, lr)
    for _ in tqdm(range(steps), desc=desc, leave=False):
        idx = torch.randint(0, len(y), (128,))
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mnist", default=str(Path(__file__).resolve().parents[2] / "shared/data/mnist-test"))
    ap.add_argument("--ranks", nargs="+", type=int, default=[4, 8])
    ap.add_argument("--steps", type=int, default=400)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    src = mnist(args.mnist, "test")
    base = small_cnn()
    t0 = time.perf_counter()
    train(base, base.parameters(), src.images, src.labels, 1500, 1e-3, "pre-train on MNIST")
    print(f"pre-trained on MNIST in {time.perf_counter() - t0:.0f} s")
    tr, te = digits("train"), digits("test")
    resize = lambda d: F.interpolate(d.images, size=28, mode="bilinear", align_corners=False)  # noqa: E731
    xtr, xte = resize(tr), resize(te)
    convs = [n for n, m in base.named_modules() if isinstance(m, nn.Conv2d)]
    configs = []
    for r in args.ranks:
        configs += [("lora", r, {}), ("wara", max(r // 4, 1), {})]
    print(f"{'adapter':18s} {'trainable':>9s} {'accuracy':>8s}")
    for kind, rank, kw in configs:
        torch.manual_seed(1)
        net = add_adapters(base, kind, rank=rank, names=convs, **kw)
        net[-1] = nn.Linear(128, 10)  # a new head for the new task (trainable)
        params = adapter_parameters(net) + list(net[-1].parameters())
        train(net, params, xtr, tr.labels, args.steps, 3e-3, f"{kind} r={rank}")
        with torch.no_grad():
            acc = float((net.eval()(xte).argmax(1) == te.labels).float().mean())
        n = sum(p.numel() for p in params)
        print(f"{kind + ' r=' + str(rank):18s} {n:9,d} {acc:8.3f}")
    head = nn.Linear(128, 10)
    frozen = nn.Sequential(*list(base.children())[:-1], head)
    train(frozen, head.parameters(), xtr, tr.labels, args.steps, 3e-3, "head only")
    with torch.no_grad():
        acc = float((frozen.eval()(xte).argmax(1) == te.labels).float().mean())
    print(f"{'head only':18s} {sum(p.numel() for p in head.parameters()):9,d} {acc:8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
