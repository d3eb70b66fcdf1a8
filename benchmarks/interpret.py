"""LinearScope overhead: the forward with the linear interpreter running beside it
(``LinearScope(model).interpret(x, check=False)``: the model's forward with every unit in frozen
form, recorded for autograd), one ``apply_transpose`` (one backward pass through that forward) and
one ``apply`` (a replay), each relative to the plain eval forward of the same model, in one process.

    python benchmarks/interpret.py [--threads 2] [--batch 1] [--rounds 3] [--min-time 0.5]

Cases: ConvNeXt-atto and WaveMix-Lite-144/7 at 224 and 32 pixels. Prints the ratios (target <= 2
for the interpreter forward and for one apply_transpose) and writes one JSON row per case to
``bench-results/interpret.jsonl``.
"""

from __future__ import annotations

import argparse
import statistics

import torch

import subband
from subband.interpret import LinearScope

try:
    from _common import environment, timeit, write_rows
except ImportError:  # run as a module
    from benchmarks._common import environment, timeit, write_rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["convnext_atto", "wavemix_lite_144_7"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[224, 32])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--out", default="bench-results/interpret.jsonl")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    env = environment()
    rows = []
    print(f"{'model':22s} {'size':>4s} {'forward ms':>10s} {'interpret':>9s} {'A^T u':>6s} {'A v':>6s}")
    for name in args.models:
        torch.manual_seed(0)
        model = subband.create_model(name).eval()
        for size in args.sizes:
            x = torch.randn(args.batch, 3, size, size)
            scope = LinearScope(model)
            lin = scope.interpret(x)  # checked once
            u = torch.randn_like(lin.output)

            def plain(x=x, model=model) -> None:
                with torch.no_grad():
                    model(x)

            def interpret(x=x, scope=scope) -> None:
                scope.interpret(x, check=False)

            fns = {"forward": plain, "interpret": interpret, "apply_transpose": lambda lin=lin, u=u: lin.apply_transpose(u),
                   "apply": lambda lin=lin, x=x: lin.apply(x)}  # fmt: skip
            times: dict[str, list[float]] = {k: [] for k in fns}
            for r in range(args.rounds):
                for key in fns if r % 2 == 0 else list(fns)[::-1]:
                    times[key].append(timeit(fns[key], args.min_time)[0])
            med = {k: statistics.median(v) for k, v in times.items()}
            ratio = {k: med[k] / med["forward"] for k in fns}
            print(f"{name:22s} {size:4d} {med['forward']:10.2f} {ratio['interpret']:9.2f} "
                  f"{ratio['apply_transpose']:6.2f} {ratio['apply']:6.2f}")  # fmt: skip
            rows.append(dict(env, model=name, input=list(x.shape), median_ms=med, ratio_over_forward=ratio))
    write_rows(args.out, rows)
    print(f"rows written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
