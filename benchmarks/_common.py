"""Shared benchmark plumbing: timing with torch.utils.benchmark, peak memory, JSON rows."""

from __future__ import annotations

import json
import os
import platform
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils import benchmark as tb

from subband.models._profile import peak_memory


def timeit(fn: Callable[[], object], min_run_time: float) -> tuple[float, float]:
    """Median and inter-quartile range in milliseconds (with warm-up)."""
    fn()
    m = tb.Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads()).blocked_autorange(
        min_run_time=min_run_time
    )
    return m.median * 1e3, m.iqr * 1e3


def peak_bytes(fn: Callable[[], object], numpy: bool = False) -> int:
    """Peak memory allocated while ``fn`` runs (numpy via tracemalloc, torch via the profiler)."""
    if not numpy:
        return peak_memory(fn)
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def environment() -> dict:
    import numpy as np

    from subband.wavelets import _native

    return {
        "torch": torch.__version__,
        "c_library": _native.status(),  # 2-D transforms on CPU: the C library, or the PyTorch passes
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "last_level_cache_bytes": _native._cache_bytes(),  # how much of a working set stays in cache
    }


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks (up to 32 MB) in the heap instead of returning them to
    the system, so a call does not page-fault its buffers back in. Page faults can be most of the
    time of a memory-bound CPU transform, and how many a call pays depends on the process's earlier
    allocations; with this, timings measure the computation. Returns False where it does not apply."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if platform.system() != "Linux" or name is None:
        return False
    libc = ctypes.CDLL(name)
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))


def warm_allocator() -> None:
    """Allocate and free one block just under 32 MB, as a program that has run a while has: glibc's
    malloc then serves blocks up to that size from its heap instead of mapping each afresh (its
    threshold follows the largest mapped block freed, up to 32 MB). A cold process otherwise pays
    page faults on its first large buffers, the first case measured most."""
    torch.empty(31 << 20, dtype=torch.uint8)  # freeing it is what counts; its pages need not be touched


def write_rows(path: str | Path, rows: list[dict]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def run_cases(cases: list[dict], rounds: int, min_time: float, out: str | Path) -> list[dict]:
    """Time each case's ``ours`` and ``baseline`` callables in interleaved rounds (medians kept);
    print the ratio baseline / ours (> 1: ours is faster) and write one JSON row per case."""
    import statistics

    env = environment()
    rows = []
    print(f"{'case':52s} {'ours ms':>9s} {'base ms':>9s} {'ratio':>6s}  baseline")
    for case in cases:
        times: dict[str, list[float]] = {"ours": [], "baseline": []}
        for r in range(rounds):
            for key in ("ours", "baseline") if r % 2 == 0 else ("baseline", "ours"):
                times[key].append(timeit(case[key], min_time)[0])
        med = {k: statistics.median(v) for k, v in times.items()}
        ratio = med["baseline"] / med["ours"]
        print(f"{case['name']:52s} {med['ours']:9.3f} {med['baseline']:9.3f} {ratio:6.2f}  {case['baseline_name']}")
        rows.append(
            dict(
                env,
                case=case["name"],
                baseline=case["baseline_name"],
                input=case.get("shape"),
                dtype="float32",
                median_ms=med,
                rounds_ms=times,
                ratio_baseline_over_ours=ratio,
            )
        )
    write_rows(out, rows)
    print(f"rows written to {out}")
    return rows


def eval_step(module: torch.nn.Module, x: torch.Tensor) -> Callable[[], torch.Tensor]:
    """A timed call: ``module`` in eval mode (set on every call: train cases may share it), no autograd."""

    def run() -> torch.Tensor:
        module.eval()
        with torch.no_grad():
            return module(x)

    return run


def train_step(module: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """A timed call: ``module`` in training mode, forward and backward (input and parameters)."""
    x = x.clone().requires_grad_()

    def run() -> None:
        module.train()
        module(x).sum().backward()

    return run


def cases_main(cases: Callable[[int], list[dict]], doc: str, out: str, argv: list[str] | None = None) -> int:
    """The command line of a ``benchmarks/conv_*.py`` file: build ``cases(batch)`` and run them."""
    import argparse

    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--out", default=out)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    run_cases(cases(args.batch), args.rounds, args.min_time, args.out)
    return 0
