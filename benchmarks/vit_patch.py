"""What a smaller patch costs: the ViT-Tiny configuration (width 192, depth 12, 3 heads) at patch 16,
8, 4, 2 and 1 on one input size, forward time (median, eval, no autograd), peak memory and
multiply-accumulates, each as a ratio to patch 16, in one process.

"Scaling Laws in Patchification" (arXiv 2502.03738) trades this cost for accuracy: halving the patch
multiplies the tokens by 4, the linear layers' work by 4 and the attention's by 16.

    python benchmarks/vit_patch.py [--size 32] [--batch 8] [--threads 2]
"""

from __future__ import annotations

import argparse

import torch

try:
    from _common import environment, peak_bytes, timeit, write_rows
except ImportError:  # run as a module
    from benchmarks._common import environment, peak_bytes, timeit, write_rows

import subband
from subband.models._profile import count_gmacs


def _gmacs(patch: int, size: int) -> float:
    """Multiply-accumulates per image, counted on the meta device: on CPU tensors ``FlopCounterMode``
    (torch 2.14) does not see the fused CPU attention kernel and leaves the attention products out."""
    with torch.device("meta"):
        model = subband.create_model("vit_tiny_patch16_224", patch_size=patch, img_size=size)
        return count_gmacs(model, torch.randn(1, 3, size, size))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--patches", type=int, nargs="+", default=[16, 8, 4, 2, 1])
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--out", default="bench-results/vit_patch.jsonl")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size)
    env, rows = environment(), []
    for p in args.patches:
        model = subband.create_model("vit_tiny_patch16_224", patch_size=p, img_size=args.size).eval()
        tokens = (args.size // p) ** 2

        def run(model: torch.nn.Module = model) -> torch.Tensor:
            with torch.no_grad():
                return model(x)

        ms, iqr = timeit(run, args.min_time)
        rows.append(
            dict(
                env,
                case=f"vit_tiny patch {p}",
                patch=p,
                tokens=tokens,
                input=[args.batch, 3, args.size, args.size],
                dtype="float32",
                median_ms=ms,
                iqr_ms=iqr,
                peak_bytes=peak_bytes(run),
                gmacs_per_image=_gmacs(p, args.size),
            )
        )
    base = rows[0]
    print(
        f"{'patch':>5s} {'tokens':>6s} {'GMACs':>8s} {'x MACs':>7s} {'ms':>9s} {'x time':>7s} {'peak MB':>8s} {'x mem':>6s}"
    )
    for r in rows:
        r["time_ratio"], r["memory_ratio"] = r["median_ms"] / base["median_ms"], r["peak_bytes"] / base["peak_bytes"]
        r["macs_ratio"] = r["gmacs_per_image"] / base["gmacs_per_image"]
        print(
            f"{r['patch']:5d} {r['tokens']:6d} {r['gmacs_per_image']:8.3f} {r['macs_ratio']:7.1f} {r['median_ms']:9.2f} "
            f"{r['time_ratio']:7.1f} {r['peak_bytes'] / 2**20:8.1f} {r['memory_ratio']:6.1f}"
        )
    write_rows(args.out, rows)
    print(f"rows written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
