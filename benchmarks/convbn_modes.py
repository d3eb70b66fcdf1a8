"""ConvBN Tune mode against Eval mode (the transfer-learning setting of "Efficient ConvBN Blocks
for Transfer Learning and Beyond": BatchNorms frozen, convolutions trained): time of one training
step (forward, backward, SGD update) and peak memory, in one process.

    python benchmarks/convbn_modes.py [--threads 2] [--batch 16] [--rounds 3] [--min-time 0.5]

Models: a ResNet-style net (conv-BN-ReLU basic blocks, 64-512 channels, 112x112 input) and
UniRepLKNet-A (BatchNorm after every large-kernel branch; 224x224). Prints the ratio Eval / Tune
(> 1: Tune is faster or lighter) and writes JSON rows to ``bench-results/convbn_modes.jsonl``.
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F
from torch import nn

import subband
from subband.compress import convbn_mode

try:
    from _common import environment, peak_bytes, timeit, write_rows
except ImportError:  # run as a module
    from benchmarks._common import environment, peak_bytes, timeit, write_rows


def resnet_style() -> nn.Sequential:
    def block(i: int, o: int, s: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(),
                             nn.Conv2d(o, o, 3, 1, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU())  # fmt: skip

    return nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                         block(64, 64, 1), block(64, 128, 2), block(128, 256, 2), block(256, 512, 2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 10))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--out", default="bench-results/convbn_modes.jsonl")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    env, rows = environment(), []
    print(f"{'model':16s} {'eval ms':>8s} {'tune ms':>8s} {'ratio':>6s} {'eval MB':>8s} {'tune MB':>8s} {'ratio':>6s}")
    for name, build, size in (
        ("resnet-style", resnet_style, 112),
        ("unireplknet_a", lambda: subband.create_model("unireplknet_a", num_classes=10), 224),
    ):
        torch.manual_seed(0)
        base = build()
        x, y = torch.randn(args.batch, 3, size, size), torch.randint(0, 10, (args.batch,))
        steps = {}
        for mode in ("eval", "tune"):
            model, n = convbn_mode(base, mode)
            model.train()
            for m in model.modules():  # transfer learning: the BatchNorms stay frozen
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
            opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)

            def step(model=model, opt=opt, x=x, y=y) -> None:
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()
                opt.step()

            steps[mode] = step
        times = {k: [] for k in steps}
        for r in range(args.rounds):
            for k in steps if r % 2 == 0 else list(steps)[::-1]:
                times[k].append(timeit(steps[k], args.min_time)[0])
        med = {k: statistics.median(v) for k, v in times.items()}
        mem = {k: peak_bytes(steps[k]) / 2**20 for k in steps}
        print(f"{name:16s} {med['eval']:8.1f} {med['tune']:8.1f} {med['eval'] / med['tune']:6.2f} "
              f"{mem['eval']:8.1f} {mem['tune']:8.1f} {mem['eval'] / mem['tune']:6.2f}")  # fmt: skip
        rows.append(dict(env, model=name, convbn_blocks=n, input=list(x.shape), median_ms=med, peak_mb=mem))
    write_rows(args.out, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
