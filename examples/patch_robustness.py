"""ViT vs CNN under patch perturbations, at small scale ("Are Vision Transformers Robust to Patch
Perturbations?", Gu, Tresp, Qin; ECCV 2022).

A small ViT (4x4 patches, subband's TransformerBlock) and a small CNN of similar size are trained on
the MNIST split in ../shared/data (8,000 images; 2,000 held out). On the held-out images:
accuracy clean, with one 4x4 patch per image naturally corrupted (Gaussian noise, blur), and
under a one-patch PGD attack; then the ViT again with its attention softmax at temperatures 2 and
4 (the paper's remedy against adversarial patches).

    python examples/patch_robustness.py [--mnist ../shared/data/mnist-test] [--steps 1500]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from subband.data import mnist
from subband.interpret import evaluate_patch_robustness, set_attention_temperature
from subband.layers import TransformerBlock


class TinyViT(nn.Module):
    def __init__(self, dim: int = 96, depth: int = 6, heads: int = 4, patch: int = 4, size: int = 28) -> None:
        super().__init__()
        self.embed = nn.Conv2d(1, dim, patch, stride=patch)
        self.pos = nn.Parameter(torch.randn(1, (size // patch) ** 2, dim) * 0.02)
        self.blocks = nn.Sequential(*[TransformerBlock(dim, heads, mlp_ratio=2) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(x).flatten(2).transpose(1, 2) + self.pos  # (B, C, h, w) -> (B, hw, C)
        return self.head(self.norm(self.blocks(t)).mean(1))


def small_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(128, 256, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(256, 10),
    )  # fmt: skip


def train(net: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, name: str) -> float:
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps)
    t0 = time.perf_counter()
    net.train()
    for _ in tqdm(range(steps), desc=f"train {name}"):
        idx = torch.randint(0, len(y), (128,))
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mnist", default=str(Path(__file__).resolve().parents[2] / "shared/data/mnist-test"))
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--eval", type=int, default=1000, help="held-out images to evaluate")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    data = mnist(args.mnist, "test")
    x, y = data.images, data.labels
    tx, ty = x[8000 : 8000 + args.eval], y[8000 : 8000 + args.eval]
    models = {"ViT": TinyViT(), "CNN": small_cnn()}
    rows = {}
    for name, net in models.items():
        secs = train(net, x[:8000], y[:8000], args.steps, name)
        params = sum(p.numel() for p in net.parameters())
        rows[name] = (params, secs, evaluate_patch_robustness(net, tx, ty, patch_size=4))
    for t in (2.0, 4.0):
        set_attention_temperature(models["ViT"], t)
        rows[f"ViT, temperature {t:g}"] = (rows["ViT"][0], 0.0, evaluate_patch_robustness(models["ViT"], tx, ty, 4))
    keys = ["clean", "gaussian_noise", "blur", "adversarial_patch"]
    print(f"{'model':22s} {'params':>8s} {'train s':>7s} " + " ".join(f"{k:>17s}" for k in keys))
    for name, (params, secs, r) in rows.items():
        print(f"{name:22s} {params:8,d} {secs:7.0f} " + " ".join(f"{r[k]:17.3f}" for k in keys))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
