"""The main job on a bundled dataset: train WaveMix-Lite on scikit-learn's digits, report test
accuracy and time, then evaluate the saved checkpoint.

    python examples/demo.py [--epochs 30] [--out runs/demo]

The same run from the command line:

    subband train wavemix_lite_144_7 --data digits --set in_chans=1 --set num_classes=10 \\
        --set dim=64 --set depth=4 --set dropout=0 --epochs 30 --lr 2e-3 --label-smoothing 0.1 \\
        --eval-every 5 --out runs/demo
    subband eval runs/demo/best.safetensors --data digits:test
"""

from __future__ import annotations

import argparse
import time

import torch

import subband
from subband.data import digits
from subband.train import TrainConfig, evaluate, fit


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    # WaveMix-Lite (one Haar level per block) sized for 8x8 grey digits: 64 channels, 4 blocks
    cfg = TrainConfig(
        model="wavemix_lite_144_7",
        model_overrides=dict(in_chans=1, num_classes=10, dim=64, depth=4, dropout=0.0),
        epochs=args.epochs,
        batch_size=64,
        lr=2e-3,
        label_smoothing=0.1,
        eval_every=5,
        out_dir=args.out,
    )
    train, test = digits("train"), digits("test")
    print(f"training {cfg.model} {cfg.model_overrides} on digits: {len(train)} train / {len(test)} test images")
    t0 = time.perf_counter()
    record = fit(cfg, train, test)
    seconds = time.perf_counter() - t0
    best = f"{args.out}/best.safetensors"
    print(f"test accuracy {record['val_top1']:.2f}% after {cfg.epochs} epochs, training took {seconds:.0f} s")
    print(f"checkpoints: {args.out}/last.safetensors, {best}")
    metrics = evaluate(subband.load_model(best), test)
    print(f"evaluated {best}: top-1 {metrics['top1']:.2f}%, loss {metrics['loss']:.4f}")


if __name__ == "__main__":
    main()
