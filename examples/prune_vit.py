"""Pruning small vision transformers on MNIST: LPViT block pruning of a ViT, DIMAP data-free pruning
of a Swin Transformer; accuracy before and after, and the CPU latency of the finalized models.

Data: the MNIST test split in ``../shared/data/mnist-test`` (10,000 images), split 8,000 / 2,000
with a fixed seed (as ``examples/dhvt_small_data.py``). Models, trained from scratch here (AdamW,
warm-up + cosine, label smoothing 0.1):

- ViT (``vit_tiny_patch16_224`` at patch 7 on 28 x 28, one channel, width 192, ``--vit-depth``
  blocks, 3 heads, 16 patch tokens averaged for the head), pruned with :func:`~subband.compress.lpvit_prune`
  to keep 70% and 50% of its MACs (16 x 16 blocks, calibration on ``--calib`` training batches, the
  official power term on), each then fine-tuned with its masks for ``--ft-epochs``;
- Swin (:class:`~subband.models.swin.SwinTransformer`, patch 4, width 64, two stages of two blocks,
  2 and 4 heads, 4 x 4 windows: a 7 x 7 map padded to four windows, shifted by 2 in the second
  block, then one 4 x 4 window), pruned with :func:`~subband.compress.dimap_prune` to 50%
  of its MACs without looking at any image, then fine-tuned the same way.

Every pruned model is made permanent with :func:`~subband.compress.finalize` (rows, columns and heads
that only zeros reach are removed; block-sparse weights stay dense: torch's CPU sparse kernels are
slower than the dense GEMM at these sparsities). Latency: the dense and the finalized model timed in
alternating rounds in this process (``torch.utils.benchmark``, medians), batch 1 and 16, on
``--timing-threads`` threads (1 by default: on a shared machine, threads that wait for each other at
every operator make the timings measure the neighbours' load instead of the model).

    OMP_NUM_THREADS=2 python examples/prune_vit.py [--epochs 5] [--ft-epochs 1]

Measured with the defaults (seed 0; training on 2 threads, timing on 1; 220 s wall, 350 s CPU on a
2-core machine; top-1 on the 2,000 held-out images, "no-FT" right after pruning; MMACs per image):

    model                 top-1  no-FT    params  MMACs  masked  final  latency b1  latency b16
    ViT dense             94.50        1,794,442  28.86                    1.97 ms     14.7 ms
    ViT LPViT 70% MACs    93.10  78.15   882,762  14.31   19.65  12.38   0.71 x      0.56 x
    ViT LPViT 50% MACs    90.75  62.65   697,770  11.26   14.23   7.00   0.64 x      0.48 x
    Swin dense            91.00          533,142  12.57                    1.99 ms      8.2 ms
    Swin DIMAP 50% MACs   91.10  88.30   533,142  12.57    6.15   6.15   1.01 x      0.99 x

("masked": MACs without the products of zero weights, the budget LPViT and DIMAP meet; "final":
the same after :func:`~subband.compress.finalize`; "MMACs": what the finalized model runs densely;
latency: finalized / dense.) LPViT's power term (per-block cost ``in_features // 16``) makes ``fc2``
blocks four times dearer than the others, so whole ``fc2`` columns go, and with them hidden units:
the finalized ViTs are smaller than their budgets and run 1.4-2.1x faster. DIMAP's unstructured 52%
sparsity emptied no whole row or column here, so its finalized model is the dense shape with zeros
and runs at the dense speed (a sparse kernel would be needed; torch's CPU ones are slower). Timings
on a shared machine vary from run to run; accuracies are reproducible.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import subband
from subband.compress import dimap_prune, finalize, get_masks, lpvit_prune, sparse_macs
from subband.data import mnist
from subband.data.classification import TensorImages
from subband.models._profile import alternating_ms, count_gmacs, count_params
from subband.models.swin import SwinTransformer
from subband.train import evaluate

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-test"


def train(model: nn.Module, data: TensorImages, epochs: float, lr: float, batch: int, seed: int) -> float:
    """AdamW, 10% linear warm-up then cosine decay, label smoothing 0.1; returns seconds."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
    per_epoch = math.ceil(len(data) / batch)
    total = max(1, round(epochs * per_epoch))
    warmup = max(1, total // 10)
    g = torch.Generator().manual_seed(seed)
    model.train()
    t0, step = time.perf_counter(), 0
    while step < total:
        order = torch.randperm(len(data), generator=g)
        for i in range(0, len(data), batch):
            if step >= total:
                break
            idx = order[i : i + batch]
            scale = (
                (step + 1) / warmup
                if step < warmup
                else 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))
            )
            for group in opt.param_groups:
                group["lr"] = lr * scale
            loss = F.cross_entropy(model(data.images[idx]), data.labels[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
    model.eval()
    return time.perf_counter() - t0


def report(label: str, dense: nn.Module, pruned: nn.Module, test: TensorImages, x1: torch.Tensor, args) -> dict:
    masked_macs = sparse_macs(pruned.eval(), x1)
    final = finalize(pruned)
    with torch.no_grad():
        diff = (final(test.images[:64]) - pruned(test.images[:64])).abs().max().item()
    sparsity = {n: 1 - m.float().mean().item() for n, m in get_masks(pruned).items()}
    row = dict(
        label=label,
        top1=evaluate(final, test)["top1"],
        params=count_params(final),
        gmacs=count_gmacs(final, x1),
        masked_sparse_gmacs=masked_macs,
        sparse_gmacs=sparse_macs(final, x1),
        finalize_diff=diff,
        mean_layer_sparsity=statistics.mean(sparsity.values()),
    )
    for b in (1, 16):
        xb = test.images[:b]
        ms = alternating_ms(
            {"dense": dense, "pruned": final}, xb, args.rounds, args.min_time * args.rounds, args.timing_threads
        )
        row[f"ms_dense_b{b}"], row[f"ms_pruned_b{b}"] = ms["dense"], ms["pruned"]
        row[f"ratio_b{b}"] = ms["pruned"] / ms["dense"]
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DATA), help="folder with t10k-{images-idx3,labels-idx1}-ubyte.gz")
    p.add_argument("--epochs", type=float, default=5, help="dense training epochs")
    p.add_argument("--ft-epochs", type=float, default=1, help="fine-tuning epochs after pruning")
    p.add_argument("--vit-depth", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--ft-lr", type=float, default=3e-4)
    p.add_argument("--calib", type=int, default=8, help="calibration batches for LPViT")
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--timing-threads", type=int, default=1, help="threads for the latency measurements")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--min-time", type=float, default=0.3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start, cpu = time.perf_counter(), time.process_time()

    train_set, test = mnist(args.data, "test").split(args.n_test, args.seed)
    print(f"MNIST t10k split {len(train_set)} train / {len(test)} test (seed {args.seed}); {args.threads} threads")
    x1 = test.images[:1]
    rows = []

    # ---- LPViT on a ViT
    torch.manual_seed(args.seed)
    vit = subband.create_model(
        "vit_tiny_patch16_224",
        img_size=28,
        patch_size=7,
        in_chans=1,
        num_classes=10,
        depth=args.vit_depth,
        class_token=False,
        global_pool="avg",
    )
    secs = train(vit, train_set, args.epochs, args.lr, args.batch_size, args.seed)
    dense_top1 = evaluate(vit, test)["top1"]
    print(
        f"ViT: {count_params(vit):,} parameters, {count_gmacs(vit, x1):.4f} GMACs, top-1 {dense_top1:.2f}% ({secs:.0f} s)"
    )
    rows.append(dict(label="ViT dense", top1=dense_top1, params=count_params(vit), gmacs=count_gmacs(vit, x1)))
    g = torch.Generator().manual_seed(args.seed + 1)
    calib = [
        train_set.images[torch.randint(len(train_set), (args.batch_size,), generator=g)] for _ in range(args.calib)
    ]
    for keep in (0.7, 0.5):
        t0 = time.perf_counter()
        pruned = lpvit_prune(vit, calib, flops=keep, block=(16, 16))
        t_prune = time.perf_counter() - t0
        before_ft = evaluate(pruned, test)["top1"]
        secs = train(pruned, train_set, args.ft_epochs, args.ft_lr, args.batch_size, args.seed + 2)
        row = report(f"ViT LPViT {keep:.0%} MACs", vit, pruned, test, x1, args)
        row.update(top1_before_ft=before_ft, prune_s=t_prune, ft_s=secs)
        rows.append(row)
        print(f"  LPViT keep {keep:.0%}: top-1 {before_ft:.2f}% pruned, {row['top1']:.2f}% fine-tuned; {row}")

    # ---- DIMAP on a Swin Transformer
    torch.manual_seed(args.seed)
    swin = SwinTransformer(
        img_size=28,
        patch_size=4,
        in_chans=1,
        num_classes=10,
        embed_dim=64,
        depths=(2, 2),
        num_heads=(2, 4),
        window_size=4,
    )
    secs = train(swin, train_set, args.epochs, args.lr, args.batch_size, args.seed)
    dense_top1 = evaluate(swin, test)["top1"]
    print(
        f"Swin: {count_params(swin):,} parameters, {count_gmacs(swin, x1):.4f} GMACs, top-1 {dense_top1:.2f}% ({secs:.0f} s)"
    )
    rows.append(dict(label="Swin dense", top1=dense_top1, params=count_params(swin), gmacs=count_gmacs(swin, x1)))
    t0 = time.perf_counter()
    pruned = dimap_prune(swin, flops=0.5, input_size=(1, 28, 28))  # no data
    t_prune = time.perf_counter() - t0
    before_ft = evaluate(pruned, test)["top1"]
    secs = train(pruned, train_set, args.ft_epochs, args.ft_lr, args.batch_size, args.seed + 2)
    row = report("Swin DIMAP 50% MACs", swin, pruned, test, x1, args)
    row.update(top1_before_ft=before_ft, prune_s=t_prune, ft_s=secs)
    rows.append(row)
    print(f"  DIMAP keep 50%: top-1 {before_ft:.2f}% pruned, {row['top1']:.2f}% fine-tuned; {row}")

    head = f"{'model':<20} {'top-1':>6} {'no-FT':>6} {'params':>9} {'MMACs':>6} {'masked':>6} {'final':>6}"
    print(f"\n{head} {'lat b1':>6} {'lat b16':>7}")
    for r in rows:
        nft = f"{r['top1_before_ft']:6.2f}" if "top1_before_ft" in r else f"{'':6}"
        sp = (
            f"{r['masked_sparse_gmacs'] * 1e3:6.2f} {r['sparse_gmacs'] * 1e3:6.2f}" if "sparse_gmacs" in r else " " * 13
        )
        lat = f"{r['ratio_b1']:6.2f} {r['ratio_b16']:7.2f}" if "ratio_b1" in r else ""
        print(f"{r['label']:<20} {r['top1']:6.2f} {nft} {r['params']:9,} {r['gmacs'] * 1e3:6.2f} {sp} {lat}")
    print(
        "MMACs: dense count (count_gmacs) of the model as run; masked / final: without the products of zero weights,"
        " before / after finalize(); lat: finalized / dense median forward time"
    )
    print(f"total {time.perf_counter() - start:.0f} s wall, {time.process_time() - cpu:.0f} s CPU")


if __name__ == "__main__":
    main()
