"""A priori compressed CNN against a plain CNN on 2-D wave-equation data (the comparison of "A
priori compression of convolutional neural networks for wave simulators").

Data: ``subband.compress.wave_equation_dataset`` (leapfrog finite differences on a periodic 32x32
grid, random Gaussian pulses): the field at two consecutive steps in, the field 10 steps later
out. Two small fully convolutional networks learn the propagator: one with plain 5x5 convolutions,
one with the same layers in rank-R CP format (``FactorizedConv2d``). Reported: parameters and the
relative L2 error on held-out fields.

    python examples/wave_compression.py [--train 2000] [--steps 1500] [--ranks 8 32] [--no-plain]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from subband.compress import FactorizedConv2d, wave_equation_dataset


def network(width: int, rank: int | None) -> nn.Sequential:
    def conv(i: int, o: int) -> nn.Module:
        return nn.Conv2d(i, o, 5, padding=2, padding_mode="circular") if rank is None else _circular(i, o, rank)

    return nn.Sequential(conv(2, width), nn.GELU(), conv(width, width), nn.GELU(), conv(width, width), nn.GELU(),
                         nn.Conv2d(width, 1, 1))  # fmt: skip


class _circular(nn.Module):
    """A factorised 5x5 convolution with circular padding (the simulator's boundary)."""

    def __init__(self, i: int, o: int, rank: int) -> None:
        super().__init__()
        self.conv = FactorizedConv2d(i, o, 5, rank=rank, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (2, 2, 2, 2), mode="circular"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--test", type=int, default=500)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--ranks", nargs="+", type=int, default=[8])
    ap.add_argument("--no-plain", action="store_true", help="skip the plain CNN")
    args = ap.parse_args(argv)
    g = torch.Generator().manual_seed(0)
    x, y = wave_equation_dataset(args.train + args.test, generator=g)
    scale = y.std()
    x, y = x / scale, y / scale
    xtr, ytr, xte, yte = x[: args.train], y[: args.train], x[args.train :], y[args.train :]
    print(f"{'model':24s} {'params':>8s} {'rel. L2 error':>13s} {'train s':>8s}")
    runs = ([] if args.no_plain else [("plain 5x5 CNN", None)]) + [(f"CP rank {r} CNN", r) for r in args.ranks]
    for name, rank in runs:
        torch.manual_seed(0)
        net = network(args.width, rank)
        opt = torch.optim.Adam(net.parameters(), 2e-3)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
        t0 = time.perf_counter()
        for _ in tqdm(range(args.steps), desc=name, leave=False):
            idx = torch.randint(0, args.train, (32,))
            loss = F.mse_loss(net(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        with torch.no_grad():
            err = float((net(xte) - yte).norm() / yte.norm())
        params = sum(p.numel() for p in net.parameters())
        print(f"{name:24s} {params:8,d} {err:13.4f} {time.perf_counter() - t0:8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
