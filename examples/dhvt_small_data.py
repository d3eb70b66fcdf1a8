"""DHVT against a plain ViT of the same size, both trained from scratch on a small dataset.

The claim of "Bridging the Gap Between Vision Transformers and Convolutional Neural Networks on
Small Datasets" (Lu et al., arXiv 2210.05958) is that a ViT given SOPE, DAFF and head tokens
learns far better than a plain ViT when data is scarce. Here: the MNIST test split in
``../shared/data/mnist-test`` (10,000 images), split 8,000 / 2,000 with a fixed seed; both models
get the same optimiser (AdamW, warm-up + cosine, label smoothing 0.1), epochs, batch size and
augmentation (random shifts of up to 2 pixels).

    OMP_NUM_THREADS=2 python examples/dhvt_small_data.py [--epochs 4] [--width 96] [--depth 6] [--vit-depth 7]

Measured with the defaults (4 epochs, seed 0, a shared 2-core CPU): DHVT (793,452 parameters)
98.70% test top-1, the ViT (790,570 parameters) 38.60%; the ViT's loss was still falling, so part
of the gap is how much faster DHVT learns in a short schedule.

Models (28x28 single-channel input, patch 4, so both see a 7x7 grid plus a class token):

- DHVT: ``dhvt_tiny_cifar_patch4`` scaled down (``embed_dim``, ``depth`` from the flags, 4 heads,
  ``in_chans=1``, ``num_classes=10``). subband's DHVT takes any input size (SOPE's stride-2 convs
  map 28 -> 14 -> 7), so the images are used as they are, not resized.
- ViT: the plain ViT of "An Image is Worth 16x16 Words" at the same width, heads, MLP ratio and
  patch size, with one block more by default so that the parameter counts match (DHVT's blocks are
  about 1/6 larger: head tokens, depthwise conv, BatchNorms, class-token aggregation): a 4x4
  stride-4 conv patch embedding, class token, learned position embedding, subband's pre-norm
  :class:`~subband.layers.TransformerBlock`, LayerNorm, linear head on the class token. It is
  defined here (``SmallViT``) because subband's own ``VisionTransformer`` was not yet in the
  library when this was written; it is registered for this process only, so the library's training
  loop (:func:`subband.train.fit`) trains both models the same way.

Checkpoints and per-epoch metrics go to ``--out`` (``runs/dhvt_small_data`` by default).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

import subband
from subband.data import mnist
from subband.data.classification import TensorImages
from subband.layers import TransformerBlock
from subband.models import Paper
from subband.models._profile import count_params
from subband.train import TrainConfig, evaluate, fit

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-test"


class SmallViT(nn.Module):
    """Plain ViT classifier: conv patch embedding, class token, learned position embedding,
    pre-norm transformer blocks, LayerNorm, linear head on the class token.

    Shape:
        ``(B, in_chans, img_size, img_size) -> (B, num_classes)``.
    """

    def __init__(
        self,
        img_size: int = 28,
        patch_size: int = 4,
        in_chans: int = 1,
        num_classes: int = 10,
        embed_dim: int = 96,
        depth: int = 6,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"img_size ({img_size}) must be a multiple of patch_size ({patch_size})")
        n = (img_size // patch_size) ** 2
        self.num_classes, self.num_features = num_classes, embed_dim
        self.patch_embed = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + n, embed_dim))
        self.blocks = nn.Sequential(
            *(TransformerBlock(embed_dim, num_heads, mlp_ratio, qkv_bias=True) for _ in range(depth))
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, C, h, w) -> (B, hw, C)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed  # (B, 1 + hw, C)
        return self.head(self.norm(self.blocks(x))[:, 0])


subband.register_model(
    Paper(
        title="An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale",
        arxiv="2010.11929",
        source="examples/dhvt_small_data.py (the comparison ViT of this example)",
    ),
    name="example_small_vit",
)(SmallViT)


class Shifted(Dataset):
    """``base`` with every image shifted by up to ``max_shift`` pixels (zero fill); the shifts of
    epoch ``e`` come from a generator seeded with ``(seed, e)`` (``set_epoch``, called by ``fit``)."""

    def __init__(self, base: TensorImages, max_shift: int = 2, seed: int = 0) -> None:
        self.base, self.max_shift, self.seed = base, max_shift, seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        self.shifts = torch.randint(0, 2 * self.max_shift + 1, (len(self.base), 2), generator=g)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x, y = self.base[i]
        s = self.max_shift
        dy, dx = self.shifts[i].tolist()
        x = F.pad(x, (s, s, s, s))[:, dy : dy + x.shape[1], dx : dx + x.shape[2]]  # (C, H + 2s, W + 2s) -> (C, H, W)
        return x, y


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DATA), help="folder with t10k-{images-idx3,labels-idx1}-ubyte.gz")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--width", type=int, default=96)
    p.add_argument("--depth", type=int, default=6, help="DHVT blocks")
    p.add_argument("--vit-depth", type=int, default=7, help="ViT blocks (7 matches the parameters of 6 DHVT blocks)")
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="runs/dhvt_small_data")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    train, test = mnist(args.data, "test").split(args.n_test, args.seed)
    print(f"MNIST t10k split {len(train)} train / {len(test)} test (seed {args.seed}); 28x28, 1 channel")
    size = dict(embed_dim=args.width, num_heads=args.heads, num_classes=10, in_chans=1, patch_size=4)
    runs = {
        "DHVT": ("dhvt_tiny_cifar_patch4", dict(depth=args.depth, **size)),
        "ViT": ("example_small_vit", dict(img_size=28, depth=args.vit_depth, **size)),
    }
    results = {}
    for label, (name, overrides) in runs.items():
        cfg = TrainConfig(
            model=name,
            model_overrides=overrides,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            weight_decay=0.05,
            warmup_epochs=1.0,
            label_smoothing=0.1,
            seed=args.seed,
            out_dir=f"{args.out}/{label.lower()}",
        )
        params = count_params(subband.create_model(name, **overrides))
        print(f"{label}: {name} {overrides}, {params:,} parameters")
        t0 = time.perf_counter()
        fit(cfg, Shifted(train, seed=args.seed), test)
        seconds = time.perf_counter() - t0
        model = subband.load_model(f"{cfg.out_dir}/last.safetensors")
        metrics = evaluate(model, test)
        results[label] = (params, metrics["top1"], seconds)
        print(f"{label}: test top-1 {metrics['top1']:.2f}% after {args.epochs} epochs, {seconds:.0f} s")

    print(f"\n{'model':<6} {'params':>10} {'test top-1':>11} {'train time':>11}")
    for label, (params, top1, seconds) in results.items():
        print(f"{label:<6} {params:>10,} {top1:>10.2f}% {seconds:>10.0f}s")


if __name__ == "__main__":
    main()
