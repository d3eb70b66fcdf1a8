"""EET token pruning on a small ViT: accuracy, 16-bit hash-code mAP and CPU latency, with and without
the distillation fine-tune from the unpruned teacher.

"Rethinking Vision Transformer for Large-Scale Fine-Grained Image Retrieval" (Jiang et al., arXiv
2504.16691) prunes a ViT's patch tokens at a few blocks by the class token's attention weighted by
the heads' output norms, and recovers with a distillation from the unpruned ViT: hash outputs pulled
towards the teacher's, and a second classification of the image with the teacher's most-attended
patches blacked out. Here, on the MNIST test split in ``../shared/data/mnist-test`` (10,000 images,
split 8,000 / 2,000 with a fixed seed, as ``examples/dhvt_small_data.py`` does):

1. The teacher: subband's ViT (patch 4 on 28 x 28, so 49 patch tokens + a class token; width 64,
   depth 6, 4 heads) with EET's hashing head (a linear map from the 10 logits to 16 bits), trained
   with cross-entropy + MSE to the proxy codes of the training labels
   (:func:`~subband.compress.proxy_hash_codes`), the official teacher loss.
2. Two pruning schedules on a copy of it, both at EET's positions (after blocks 4, 8 and 10 of 12,
   one-based) scaled to 6 blocks (after blocks 2, 4 and 5): the paper's ratios (keep 1/2, 1/2, 1/4
   of the patch tokens, as :data:`~subband.compress.EET_KEEP`: 49 -> 24 -> 12 -> 3) and milder ones
   (keep 0.7 three times: 49 -> 34 -> 23 -> 16).
3. Each pruned model as it is, fine-tuned alone (``0.1 * CE + MSE``) and fine-tuned with EET's
   distillation (``0.1 * (CE + CE on the masked image) + MSE + (1 - cos(student, teacher hash
   outputs))``, the teacher frozen, its last block's score choosing the patch to black out), for the
   same number of epochs, so the last two differ only by the distillation terms.

Accuracy is top-1 on the 2,000 held-out images; mAP is the official protocol: the held-out images'
binary codes query the training set's proxy codes, ranked by Hamming distance. Latency is the median
forward time of pruned over unpruned, timed interleaved (every round times every model) at batch 1
and 16; GMACs are ``count_gmacs`` (torch's FLOP counter: on CPU it does not count the fused attention
product, so these are the linear layers, the bulk of the cost at 50 tokens).

    OMP_NUM_THREADS=1 python examples/token_prune.py [--epochs 8] [--finetune-epochs 2]

Measured with the defaults (seed 0; a shared 2-core CPU, one thread; 5.5 CPU minutes in all):

    model                 GMACs  latency b1  b16   top-1 / mAP (%): as is; fine-tune; fine-tune + distill
    unpruned teacher     0.0167     1.00    1.00   90.70 / 90.87
    EET (1/2, 1/2, 1/4)  0.0091     1.28    0.78   83.20 / 82.02;  90.55 / 90.94;  90.75 / 91.61
    mild (0.7 x 3)       0.0115     1.34    0.95   86.70 / 87.25;  91.15 / 91.93;  90.80 / 91.46

    ViT-S/16 at 224 with EET_KEEP (untrained, latency only): pruned / unpruned 0.63 at batch 1, 0.56 at 16

With ``--seed 1`` (another split and initialisation): teacher 86.80 / 81.45; paper's ratios 70.00 /
67.60, 84.60 / 84.03, 85.85 / 83.32; mild ratios 73.35 / 70.71, 84.05 / 84.69, 86.35 / 85.79; the
same latency ratios to 0.05.

Pruning without fine-tuning costs 7.5 to 17 points of accuracy at the paper's ratios (4 to 13.5 at
the mild ones); two epochs of fine-tuning recover most or all of it (the teacher had eight, so this
is also two more epochs of training, which is why a fine-tuned student can beat its teacher). The
distillation terms change top-1 by +0.20, -0.35, +1.25, +2.30 points and mAP by +0.67, -0.47,
-0.71, +1.10 against fine-tuning alone (seed 0 then 1, each the paper's ratios then the mild ones):
a small gain in accuracy at best and none in mAP, within the noise of 2,000 test images (a standard
error of about 0.7 points). The paper's gains come from a larger teacher on fine-grained data; a
6-block teacher at 87-91% on MNIST has little to add.

Latency: on this 0.3M-parameter model at batch 1 the pruned models are slower: scoring costs
roughly 0.25 ms per pruning block in eager PyTorch (the hooks and a dozen small tensor operations),
about what a whole block on 50 tokens of width 64 takes. At batch 16 the paper's ratios save 22%;
at ViT-S size (196 tokens of width 384) they save 37% at batch 1 and 44% at batch 16, against the
42.7% the paper reports for ViT-S.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import subband
from subband.compress import (
    EET_KEEP,
    HashingClassifier,
    binarize,
    eet_distillation_loss,
    hamming_map,
    mask_top_patches,
    proxy_hash_codes,
    prune_tokens,
    record_token_scores,
)
from subband.data import mnist
from subband.data.classification import TensorImages
from subband.models._profile import count_gmacs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-test"


def schedule(depth: int, ratios: tuple[float, float, float]) -> tuple[tuple[int, float], ...]:
    """EET's pruning positions (after blocks 4, 8, 10 of 12, one-based) scaled to ``depth`` blocks."""
    return tuple((round(depth * f) - 1, r) for f, r in zip((4 / 12, 8 / 12, 10 / 12), ratios))


def train(
    model: HashingClassifier,
    data: TensorImages,
    codes: torch.Tensor,
    epochs: float,
    args: argparse.Namespace,
    loss_fn,
) -> None:
    """AdamW, linear warm-up then cosine decay, shuffled batches of ``args.batch_size``."""
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    steps_per_epoch = len(data) // args.batch_size
    total = max(1, round(epochs * steps_per_epoch))
    warmup = min(args.warmup, total // 4)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + torch.cos(torch.tensor((step - warmup) / max(1, total - warmup) * torch.pi)).item())

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    g = torch.Generator().manual_seed(args.seed)
    model.train()
    step = 0
    while step < total:
        order = torch.randperm(len(data), generator=g)
        for s in range(0, steps_per_epoch * args.batch_size, args.batch_size):
            idx = order[s : s + args.batch_size]
            loss = loss_fn(model, data.images[idx], data.labels[idx], codes[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 50 == 0 or step == total:
                print(f"    step {step}/{total} loss {loss.item():.4f}", flush=True)
            if step == total:
                break
    model.eval()


def teacher_loss(model, x, y, codes):
    logits, out = model(x)
    return F.cross_entropy(logits, y) + F.mse_loss(out, codes)


def plain_loss(model, x, y, codes):
    student = model(x)
    return eet_distillation_loss(student, student, labels=y, target_codes=codes, transfer_weight=0.0).total


def distill_loss_for(teacher: HashingClassifier, patch: int, num_masked: int):
    def loss(model, x, y, codes):
        with torch.no_grad(), record_token_scores(teacher, [-1]) as scores:
            t_out = teacher(x)
        masked = mask_top_patches(x, scores[-1], num_masked, patch)
        s_out = model(x)
        s_masked = model(masked)[0]
        return eet_distillation_loss(s_out, t_out, labels=y, target_codes=codes, masked_logits=s_masked).total

    return loss


@torch.no_grad()
def evaluate(
    model: nn.Module, test: TensorImages, db_codes: torch.Tensor, db_labels: torch.Tensor
) -> tuple[float, float]:
    model.eval()
    logits, out = zip(*(model(test.images[s : s + 250]) for s in range(0, len(test), 250)))
    acc = (torch.cat(logits).argmax(1) == test.labels).double().mean().item() * 100
    mean_ap = hamming_map(binarize(torch.cat(out)), db_codes, test.labels, db_labels).item() * 100
    return acc, mean_ap


@torch.no_grad()
def latency_ratios(
    models: dict[str, nn.Module], batch: int, rounds: int, reps: int, shape: tuple[int, ...] = (1, 28, 28)
) -> dict[str, float]:
    """Median time of every model over ``rounds`` interleaved rounds of ``reps`` forwards, over the
    first's; on one thread (on a shared machine, two threads waiting on each other make the times noise)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _latency_ratios(models, torch.rand(batch, *shape), rounds, reps)
    finally:
        torch.set_num_threads(threads)


def _latency_ratios(models: dict[str, nn.Module], x: torch.Tensor, rounds: int, reps: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in models}
    for m in models.values():
        m.eval()
        for _ in range(3):
            m(x)
    for _ in range(rounds):
        for k, m in models.items():
            t0 = time.perf_counter()
            for _ in range(reps):
                m(x)
            times[k].append((time.perf_counter() - t0) / reps)
    medians = {k: statistics.median(v) for k, v in times.items()}
    base = next(iter(medians.values()))
    return {k: v / base for k, v in medians.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DATA), help="folder with t10k-{images-idx3,labels-idx1}-ubyte.gz")
    p.add_argument("--epochs", type=float, default=8.0, help="teacher training epochs")
    p.add_argument("--finetune-epochs", type=float, default=2.0)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--patch", type=int, default=4)
    p.add_argument("--bits", type=int, default=16)
    p.add_argument("--masked", type=int, default=1, help="patches blacked out for region guidance (of 49)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=50, help="warm-up steps")
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: on a shared 2-core machine two threads spin on each other)",
    )
    p.add_argument("--rounds", type=int, default=15, help="interleaved timing rounds")
    p.add_argument("--vit-s-rounds", type=int, default=5, help="timing rounds for ViT-S/16 at 224 (0: skip)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    train_set, test = mnist(args.data, "test").split(args.n_test, args.seed)
    codes = proxy_hash_codes(train_set.labels, args.bits, generator=torch.Generator().manual_seed(args.seed)).float()
    print(f"MNIST t10k split {len(train_set)} train / {len(test)} test (seed {args.seed}); {args.bits}-bit proxy codes")

    torch.manual_seed(args.seed)
    vit = subband.create_model(
        "vit_tiny_patch16_224",
        img_size=28,
        patch_size=args.patch,
        in_chans=1,
        embed_dim=args.width,
        depth=args.depth,
        num_heads=args.heads,
        num_classes=10,
    )
    teacher = HashingClassifier(vit, args.bits)
    print(f"teacher: ViT width {args.width}, depth {args.depth}, {args.heads} heads, patch {args.patch} "
          f"({sum(p.numel() for p in teacher.parameters()):,} parameters); training {args.epochs} epochs")  # fmt: skip
    train(teacher, train_set, codes, args.epochs, args, teacher_loss)
    teacher.requires_grad_(False)
    rows = {"unpruned": (teacher, evaluate(teacher, test, codes, train_set.labels))}
    print(f"  unpruned: top-1 {rows['unpruned'][1][0]:.2f}%, mAP {rows['unpruned'][1][1]:.2f}%")

    schedules = {
        "EET (1/2, 1/2, 1/4)": schedule(args.depth, (0.5, 0.5, 0.25)),
        "mild (0.7 x 3)": schedule(args.depth, (0.7, 0.7, 0.7)),
    }
    results = []
    timing_models: dict[str, nn.Module] = {"unpruned": teacher}
    for name, keep in schedules.items():
        pruned = prune_tokens(teacher, keep)
        pruned.requires_grad_(True)
        timing_models[name] = pruned
        base = evaluate(pruned, test, codes, train_set.labels)
        print(f"{name}: keep {keep}; no fine-tune top-1 {base[0]:.2f}%, mAP {base[1]:.2f}%")
        arms = {}
        for arm, loss_fn in (
            ("fine-tune", plain_loss),
            ("fine-tune + distill", distill_loss_for(teacher, args.patch, args.masked)),
        ):
            student = copy.deepcopy(pruned)
            print(f"  {arm}: {args.finetune_epochs} epochs")
            torch.manual_seed(args.seed)
            train(student, train_set, codes, args.finetune_epochs, args, loss_fn)
            arms[arm] = evaluate(student, test, codes, train_set.labels)
            print(f"  {arm}: top-1 {arms[arm][0]:.2f}%, mAP {arms[arm][1]:.2f}%")
        results.append((name, keep, base, arms))

    x1 = torch.rand(1, 1, 28, 28)
    gmacs = {k: count_gmacs(m, x1) for k, m in timing_models.items()}
    ratios = {b: latency_ratios(timing_models, b, args.rounds, 20 if b == 1 else 4) for b in (1, 16)}
    vit_s = {}
    if args.vit_s_rounds:  # the paper's setting, for latency only: ViT-S/16 at 224 (196 patch tokens), EET_KEEP
        vs = subband.create_model("vit_small_patch16_224").eval()
        vs_models = {"unpruned": vs, "EET": prune_tokens(vs, EET_KEEP)}
        vit_s = {b: latency_ratios(vs_models, b, args.vit_s_rounds, 2 if b == 1 else 1, (3, 224, 224)) for b in (1, 16)}
    acc, mean_ap = rows["unpruned"][1]

    print(f"\n{'model':<22} {'GMACs':>7} {'lat b1':>7} {'lat b16':>7}   top-1 / mAP (%)")
    print(f"{'unpruned teacher':<22} {gmacs['unpruned']:>7.4f} {1.0:>7.2f} {1.0:>7.2f}   {acc:.2f} / {mean_ap:.2f}")
    for name, _, base, arms in results:
        cells = [f"{a:.2f} / {m:.2f}" for a, m in (base, arms["fine-tune"], arms["fine-tune + distill"])]
        print(f"{name:<22} {gmacs[name]:>7.4f} {ratios[1][name]:>7.2f} {ratios[16][name]:>7.2f}   "
              f"as is {cells[0]}; fine-tune {cells[1]}; + distill {cells[2]}")  # fmt: skip
    if vit_s:
        print(f"\nViT-S/16 at 224, EET_KEEP (196 -> 98 -> 49 -> 12 tokens), untrained: latency pruned / unpruned "
              f"{vit_s[1]['EET']:.2f} at batch 1, {vit_s[16]['EET']:.2f} at batch 16")  # fmt: skip
    print(f"\ntotal wall time {time.perf_counter() - start:.0f} s, CPU time {time.process_time():.0f} s")


if __name__ == "__main__":
    main()
