"""The convolution operators against their plain baselines, in one run: every ``cases()`` of
``benchmarks/conv_*.py``.

    python benchmarks/convolutions.py [--only reparam gated ...] [--rounds 3] [--min-time 0.5]

Each case times ours and its baseline (usually a plain ``nn.Conv2d`` of the same receptive field,
or the same block before ``fuse()``) in interleaved rounds, CPU, float32, 2 threads, and prints the
ratio baseline / ours (> 1: ours is faster). Rows go to ``bench-results/convolutions.jsonl``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import run_cases  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    topics = sorted(p.stem.removeprefix("conv_") for p in HERE.glob("conv_*.py"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", choices=topics, default=topics)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--out", default="bench-results/convolutions.jsonl")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cases = [c for t in args.only for c in importlib.import_module(f"conv_{t}").cases()]
    run_cases(cases, args.rounds, args.min_time, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
