"""ESPCN x3 trained on T91, evaluated on Set5 and Set14 (Y channel, border of 3 pixels cropped)
beside bicubic up-sampling and the paper's reported PSNR.

    python benchmarks/espcn_sr.py [--data ../shared/data/sr] [--epochs 100] [--out runs/espcn_x3]

Training: 17x17 LR / 51x51 HR crops of T91 (the paper's sub-image size), 64 per image per epoch,
AdamW with cosine decay, MSE loss. The LR images come from Pillow's bicubic, not MATLAB's
``imresize`` the paper used, so absolute PSNR differs slightly from published numbers.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from subband.data import SRPairs, bicubic_resize
from subband.train import TrainConfig, evaluate, fit, psnr, ssim

PAPER_X3 = {"Set5": 32.55, "Set14": 29.14}  # ESPCN (91-image training), as quoted; see shared facts


def bicubic_scores(pairs: SRPairs) -> dict[str, float]:
    p, s = [], []
    for lr, hr in pairs:
        up = bicubic_resize(lr, tuple(hr.shape[-2:]))[None]
        p.append(psnr(up, hr[None], border=pairs.scale).item())
        s.append(ssim(up, hr[None], border=pairs.scale).item())
    return {"psnr": sum(p) / len(p), "ssim": sum(s) / len(s)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "sr"))
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="runs/espcn_x3")
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(args.data)
    train = SRPairs(root / "T91", scale=3, patch=51, samples_per_image=64)
    tests = {name: SRPairs(root / name, scale=3) for name in ("Set5", "Set14")}
    cfg = TrainConfig(
        model="espcn_x3", epochs=args.epochs, batch_size=64, lr=args.lr, weight_decay=0.0,
        warmup_epochs=1, out_dir=args.out,
    )  # fmt: skip
    t0 = time.perf_counter()
    fit(cfg, train, tests["Set5"], resume=args.resume, progress=False)
    minutes = (time.perf_counter() - t0) / 60
    from subband import load_model

    model = load_model(Path(args.out) / "last.safetensors")
    print(f"\nESPCN x3 on T91, {args.epochs} epochs, {minutes:.1f} min of training on {args.threads} threads\n")
    print("| set | bicubic PSNR / SSIM | ESPCN (subband) PSNR / SSIM | paper PSNR | subband - paper |")
    print("|---|---|---|---|---|")
    rows = []
    for name, pairs in tests.items():
        b, e = bicubic_scores(pairs), evaluate(model, pairs)
        rows.append(dict(set=name, bicubic=b, espcn=e, paper_psnr=PAPER_X3[name], minutes=minutes, epochs=args.epochs))
        print(
            f"| {name} | {b['psnr']:.2f} / {b['ssim']:.4f} | {e['psnr']:.2f} / {e['ssim']:.4f} "
            f"| {PAPER_X3[name]:.2f} | {e['psnr'] - PAPER_X3[name]:+.2f} |"
        )
    Path("bench-results").mkdir(exist_ok=True)
    Path("bench-results/espcn_sr.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
