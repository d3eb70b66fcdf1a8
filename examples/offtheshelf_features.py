"""Off-the-shelf features against raw pixels on a small labelled set.

A small CNN is trained on MNIST (the test split shipped in ../shared/data, or any MNIST folder
given with --mnist), then frozen; its pooled features, with a linear SVM on top, classify
scikit-learn's 8x8 digits (another dataset: other writers, other resolution, resized to 28x28)
from only a few labelled images per class. The same SVM on the raw pixels is the baseline.

    python examples/offtheshelf_features.py [--mnist ../shared/data/mnist-test] [--per-class 5 10 20]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from subband.data import digits, mnist
from subband.interpret import extract_features, linear_probe


def small_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(128, 10),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mnist", default=str(Path(__file__).resolve().parents[2] / "shared/data/mnist-test"))
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--per-class", nargs="+", type=int, default=[5, 10, 20])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)

    source = mnist(args.mnist, "test")
    x, y = source.images, source.labels
    net = small_cnn()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    t0 = time.perf_counter()
    for _ in tqdm(range(args.steps), desc="train on MNIST"):
        idx = torch.randint(0, len(y), (128,))
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = float((net.eval()(x[-2000:]).argmax(1) == y[-2000:]).float().mean())
    print(f"MNIST training: {time.perf_counter() - t0:.0f} s, training accuracy (last 2000 images) {acc:.3f}")

    target = digits("all")
    tx = F.interpolate(target.images, size=28, mode="bilinear", align_corners=False)
    ty = target.labels
    feats = extract_features(net[:-1], tx)  # everything but the classifier: 128 pooled features
    g = torch.Generator().manual_seed(args.seed)
    order = torch.randperm(len(ty), generator=g)
    print(f"{'labels/class':>12s} {'pixels':>7s} {'features':>9s}")
    for k in args.per_class:
        train = torch.cat([order[ty[order] == c][:k] for c in range(10)])
        test = order[~torch.isin(order, train)]
        px = linear_probe(tx[train], ty[train], tx[test], ty[test])
        ft = linear_probe(feats[train], ty[train], feats[test], ty[test])
        print(f"{k:12d} {px:7.3f} {ft:9.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
