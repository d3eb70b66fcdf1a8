"""subband's models against timm's, same weights, one process: outputs and CPU throughput.

    python benchmarks/timm_models.py [--models convnext_atto convnext_tiny] [--batches 1 32]

Needs an environment where ``timm`` imports (timm needs torchvision, which must match the
installed torch). Each model is built by both libraries under the same name; timm's state dict is
loaded into subband's (unchanged, or through the model module's ``convert_timm_state_dict`` where
it has one); the logits are compared at the model's default input size; then both are timed in
eval mode in interleaved rounds (median of the rounds' medians). Prints images/s and the ratio
subband / timm (> 1: subband is faster) and writes one JSON row per case to
``bench-results/timm_models.jsonl``. ``benchmarks/transformers.py`` runs it on the transformers.
"""

from __future__ import annotations

import argparse
import importlib
import statistics

import torch

import subband
from subband.models._profile import default_input

try:
    from _common import environment, timeit, write_rows
except ImportError:  # run as a module
    from benchmarks._common import environment, timeit, write_rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["convnext_atto", "convnext_tiny"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 32])
    ap.add_argument("--size", type=int, default=None, help="input side (default: the model's default)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--out", default="bench-results/timm_models.jsonl")
    args = ap.parse_args(argv)

    import timm  # noqa: PLC0415  (optional peer)

    torch.set_num_threads(args.threads)
    env = {**environment(), "timm": timm.__version__, "subband": subband.__version__}
    rows = []
    print(f"{'model':16s} {'batch':>5s} {'max|diff|':>10s} {'subband im/s':>13s} {'timm im/s':>10s} {'ratio':>6s}")
    for name in args.models:
        ref = timm.create_model(name).eval()
        ours = subband.create_model(name).eval()
        state = ref.state_dict()
        convert = getattr(importlib.import_module(type(ours).__module__), "convert_timm_state_dict", None)
        ours.load_state_dict(convert(state) if convert else state)  # strict
        size = args.size or default_input(ours).shape[-1]
        for batch in args.batches:
            x = torch.randn(batch, 3, size, size)
            with torch.no_grad():
                diff = (ours(x) - ref(x)).abs().max().item()
            times: dict[str, list[float]] = {"subband": [], "timm": []}
            for r in range(args.rounds):
                order = [("subband", ours), ("timm", ref)]
                for lib, model in order if r % 2 == 0 else order[::-1]:
                    with torch.no_grad():
                        times[lib].append(timeit(lambda m=model, x=x: m(x), args.min_time)[0])
            med = {k: statistics.median(v) for k, v in times.items()}
            ratio = med["timm"] / med["subband"]
            print(
                f"{name:16s} {batch:5d} {diff:10.2e} {batch / med['subband'] * 1e3:13.1f} "
                f"{batch / med['timm'] * 1e3:10.1f} {ratio:6.2f}"
            )
            rows.append(
                dict(
                    env,
                    model=name,
                    batch=batch,
                    input=list(x.shape),
                    dtype="float32",
                    max_abs_diff=diff,
                    median_ms=med,
                    rounds_ms=times,
                    ratio_timm_over_subband=ratio,
                )
            )
    write_rows(args.out, rows)
    print(f"rows written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
