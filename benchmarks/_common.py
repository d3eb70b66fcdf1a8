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

    return {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }


def write_rows(path: str | Path, rows: list[dict]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
