"""subband's WaveMix against the official ``wavemix`` package, same weights, one process.

    python benchmarks/wavemix_official.py [--cases lite_144_7 192_16_l3 seg_256_16] [--threads 2]

Needs an environment where both subband and ``wavemix`` import. ``wavemix`` (0.2.x) declares
torchvision as a requirement, so it cannot live beside a torch that has no matching torchvision,
and it imports ``numpy.lib.function_base``, which numpy 2 removed. A separate virtual environment
works: torch with its matching torchvision, then ``pip install wavemix einops "numpy<2"`` and
``pip install --no-deps -e .`` plus ``PyWavelets safetensors tqdm`` for subband. (``wavemix`` is
therefore not in the ``bench`` extra: installing it there would pull torchvision in beside
whatever torch is installed.)

Device: the official package builds its DWT modules (``wavemix.xf1`` .. ``xf4``) once, at import,
on ``cuda:0`` when CUDA is available and on the CPU otherwise; they are module globals, not
submodules, so ``model.to(...)`` does not move them. This script moves them to the CPU in place
(``wavemix.xf1.to("cpu")``, ...), which touches nothing outside this process.

For each case both models are built with the same configuration, the official state dict is loaded
into subband's unchanged (strict: same keys and shapes; BatchNorm statistics randomised first so
eval mode is not the identity), the outputs are compared (max abs difference, and relative to the
output's largest magnitude), then both forwards are timed in eval mode under ``torch.no_grad()``
in interleaved rounds (median of the rounds' medians, median inter-quartile range). Prints a table
with the speed-up subband / official (official time / subband time: > 1 means subband is faster),
from the medians and from each library's best round, and from the process CPU time per forward
(with ``--threads 1`` the steadiest figure when other jobs share the cores: it counts the work,
not the waiting; with more threads it also counts the threads' spinning), and writes one JSON row per case and library to ``bench-results/wavemix_official.jsonl``.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import statistics
import time

import torch
from torch.utils import benchmark as tb

try:
    from _common import environment, peak_bytes, timeit, write_rows
except ImportError:  # run as a module
    from benchmarks._common import environment, peak_bytes, timeit, write_rows

import subband


def cpu_time(fn, min_run_time: float) -> float:
    """Median process CPU time of ``fn`` in milliseconds (all threads; with one thread this is the
    work done, unaffected by other jobs taking turns on the cores)."""
    t = tb.Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads(), timer=time.process_time)
    return t.blocked_autorange(min_run_time=min_run_time).median * 1e3


# name -> (official module, official kwargs, registered subband model, input shape)
CASES = {
    "lite_144_7": (
        "classification",
        dict(num_classes=10, depth=7, final_dim=144, ff_channel=144, level=1, initial_conv="strided", stride=1),
        "wavemix_lite_144_7",
        (64, 3, 32, 32),
    ),
    "192_16_l1": (
        "classification",
        dict(num_classes=1000, depth=16, final_dim=192, ff_channel=192, level=1, initial_conv="pachify", patch_size=4),
        "wavemix_192_16_l1",
        (8, 3, 224, 224),
    ),
    "192_16_l3": (
        "classification",
        dict(num_classes=1000, depth=16, final_dim=192, ff_channel=192, level=3, initial_conv="pachify", patch_size=4),
        "wavemix_192_16_l3",
        (8, 3, 224, 224),
    ),
    # the paper's Cityscapes model at a quarter of the 1024x2048 training resolution per side
    "seg_256_16": (
        "SemSegment",
        dict(num_classes=20, depth=16, final_dim=256, ff_channel=256, level=4, stride=2),
        "wavemix_seg_256_16",
        (1, 3, 256, 512),
    ),
}


def _official(module: str, kwargs: dict) -> torch.nn.Module:
    import importlib

    import wavemix  # noqa: PLC0415  (optional peer)

    for name in ("xf1", "xf2", "xf3", "xf4"):  # built at import, on cuda:0 when CUDA exists
        getattr(wavemix, name).to("cpu")
    return importlib.import_module(f"wavemix.{module}").WaveMix(**kwargs)


def _randomise_norms(model: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--batch", type=int, default=None, help="override every case's batch size")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the median over rounds is reported")
    ap.add_argument("--min-time", type=float, default=2.0, help="seconds per measurement")
    ap.add_argument("--out", default="bench-results/wavemix_official.jsonl")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    env = environment()
    versions = {"subband": subband.__version__, "official": md.version("wavemix")}
    rows, table = [], []
    for case in args.cases:
        module, kwargs, name, shape = CASES[case]
        if args.batch:
            shape = (args.batch, *shape[1:])
        torch.manual_seed(0)
        official = _official(module, kwargs)
        _randomise_norms(official)
        ours = subband.create_model(name)
        ours.load_state_dict(official.state_dict(), strict=True)
        models = {"subband": ours.eval(), "official": official.eval()}
        x = torch.randn(*shape)
        with torch.no_grad():
            y_ours, y_ref = ours(x), official(x)
        diff = (y_ours - y_ref).abs().max().item()
        rel = diff / y_ref.abs().max().item()
        samples: dict[str, list[tuple[float, float]]] = {lib: [] for lib in models}
        cpu: dict[str, list[float]] = {lib: [] for lib in models}
        for r in range(args.rounds):  # alternate the order, so a slow phase of the machine hits both
            for lib in list(models) if r % 2 == 0 else list(models)[::-1]:
                with torch.no_grad():
                    samples[lib].append(timeit(lambda m=models[lib], x=x: m(x), args.min_time))
                    cpu[lib].append(cpu_time(lambda m=models[lib], x=x: m(x), args.min_time))
        med = {lib: statistics.median(m for m, _ in s) for lib, s in samples.items()}
        iqr = {lib: statistics.median(q for _, q in s) for lib, s in samples.items()}
        best = {lib: min(m for m, _ in s) for lib, s in samples.items()}
        cpu_med = {lib: statistics.median(v) for lib, v in cpu.items()}
        with torch.no_grad():
            peak = {lib: peak_bytes(lambda m=m, x=x: m(x)) for lib, m in models.items()}
        speedup = med["official"] / med["subband"]
        cpu_speedup = cpu_med["official"] / cpu_med["subband"]
        table.append(
            (case, tuple(shape), diff, rel, med, iqr, speedup, best["official"] / best["subband"], cpu_speedup)
        )
        for lib in models:
            rows.append(
                dict(
                    case=case, model=name, lib=lib, version=versions[lib], op="forward (eval, no_grad)",
                    shape=list(shape), output_shape=list(y_ref.shape), dtype="float32", median_ms=med[lib],
                    iqr_ms=iqr[lib], best_round_ms=best[lib], rounds=args.rounds,
                    round_medians_ms=[m for m, _ in samples[lib]], cpu_median_ms=cpu_med[lib],
                    cpu_round_medians_ms=cpu[lib], speedup_cpu_time=cpu_speedup,
                    images_per_s=shape[0] / med[lib] * 1e3, peak_forward_bytes=peak[lib], max_abs_diff=diff,
                    rel_diff=rel, speedup_subband_over_official=speedup,
                    speedup_best_rounds=best["official"] / best["subband"], **env,
                )
            )  # fmt: skip
        print(f"  measured {case}", flush=True)

    print(
        f"\n### forward, eval, {args.threads} threads: speed-up = official time / subband time (> 1: subband faster)\n"
    )
    head = "| case | input | max abs diff | rel. diff | subband ms (iqr) | official ms (iqr) | speed-up | best rounds |"
    print(head + " CPU time |")
    print("|---|---|---|---|---|---|---|---|---|")
    for case, shape, diff, rel, med, iqr, speedup, best_speedup, cpu_speedup in table:
        print(
            f"| {case} | {'x'.join(map(str, shape))} | {diff:.1e} | {rel:.1e} "
            f"| {med['subband']:.1f} ({iqr['subband']:.1f}) | {med['official']:.1f} ({iqr['official']:.1f}) "
            f"| {speedup:.2f}x | {best_speedup:.2f}x | {cpu_speedup:.2f}x |"
        )
    write_rows(args.out, rows)
    print(f"\nwrote {len(rows)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
