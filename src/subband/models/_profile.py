"""What a model costs: parameters, multiply-accumulates (``torch.utils.flop_counter``), latency,
throughput and peak memory."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

__all__ = ["alternating_ms", "count_params", "count_gmacs", "default_input", "measure_speed", "peak_memory"]


def count_params(model: nn.Module) -> int:
    """Number of parameters (shared ones once)."""
    return sum(p.numel() for p in model.parameters())


def default_input(model: nn.Module, batch: int = 1) -> torch.Tensor:
    """A random input of the size the model's paper reports its FLOPs at (else 3x224x224), with the
    ``in_chans`` and ``img_size`` the model was created with, where they were overridden."""
    paper = getattr(model, "paper", None)
    size = paper.input_size if paper is not None and paper.input_size else None
    if size is None:
        size = (getattr(model, "in_channels", 3), 64, 64) if hasattr(model, "upscale") else (3, 224, 224)
    config = getattr(model, "config", None)
    overrides = config.get("overrides", {}) if isinstance(config, dict) else {}
    if len(size) != 3:
        return torch.randn(batch, *size)
    c, h, w = size
    img = overrides.get("img_size", (h, w))
    h, w = (img, img) if isinstance(img, int) else img
    return torch.randn(batch, overrides.get("in_chans", c), h, w)


@torch.no_grad()
def _cpu_flash_attention_flops(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    """The two products of ``aten._scaled_dot_product_flash_attention_for_cpu`` (the fused kernel
    SDPA runs on CPU, which torch's counter does not know): ``2 b h s_q s_k (d + d_v)``."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


_EXTRA_FLOPS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_attention_flops}


def count_gmacs(model: nn.Module, x: torch.Tensor) -> float:
    """Multiply-accumulates of one forward pass on ``x``, in billions (half the counted FLOPs;
    papers call this number FLOPs). Counted in eval mode, attention products included on every
    device (on CPU SDPA runs a fused kernel that ``FlopCounterMode`` alone does not count)."""
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOPS) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 2e9


@torch.no_grad()
def measure_speed(model: nn.Module, x: torch.Tensor, min_time: float = 1.0, warmup: int = 2) -> dict[str, float]:
    """Median forward time (ms) over at least ``min_time`` seconds, and images per second."""
    model.eval()
    for _ in range(warmup):
        model(x)
    times: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < min_time or len(times) < 3:
        t0 = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - t0)
    times.sort()
    median = times[len(times) // 2]
    return {"ms": median * 1e3, "images_per_s": x.shape[0] / median, "runs": float(len(times))}


@torch.no_grad()
def alternating_ms(
    models: dict[str, nn.Module],
    x: torch.Tensor | dict[str, torch.Tensor],
    rounds: int = 3,
    min_time: float = 1.0,
    threads: int | None = None,
) -> dict[str, float]:
    """Median forward time (ms) of each model on ``x`` (one tensor, or one per model), the models
    taking turns over ``rounds`` so that a busy spell of a shared machine hits them alike;
    ``min_time`` seconds per model in all, on ``threads`` threads if given."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        times: dict[str, list[float]] = {k: [] for k in models}
        for _ in range(rounds):
            for k, m in models.items():
                xk = x[k] if isinstance(x, dict) else x
                times[k].append(measure_speed(m, xk, min_time / rounds)["ms"])
        return {k: statistics.median(v) for k, v in times.items()}
    finally:
        torch.set_num_threads(before)


def peak_memory(fn: Callable[[], object]) -> int:
    """Peak bytes PyTorch allocates on the CPU while ``fn`` runs: the running sum of the allocator's
    events (allocations and frees) in the order they happened."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as p:
        fn()
    events = sorted((e.start_ns(), e.nbytes()) for e in p.profiler.kineto_results.events() if e.name() == "[memory]")
    current = peak = 0
    for _, nbytes in events:
        current += nbytes
        peak = max(peak, current)
    return peak
