"""The timing helper the command line and the examples share."""

import torch
from torch import nn

from subband.models._profile import alternating_ms


def test_alternating_ms_times_every_model_on_its_input_and_restores_threads():
    before = torch.get_num_threads()
    models = {"small": nn.Linear(4, 4), "wide": nn.Linear(8, 8)}
    inputs = {"small": torch.randn(2, 4), "wide": torch.randn(2, 8)}
    ms = alternating_ms(models, inputs, rounds=2, min_time=0.02, threads=1)
    assert set(ms) == set(models) and all(v > 0 for v in ms.values())
    assert torch.get_num_threads() == before
    assert set(alternating_ms({"one": nn.Identity()}, torch.randn(3), rounds=1, min_time=0.01)) == {"one"}


def test_peak_memory_follows_allocations_and_frees_in_time_order():
    """Frees inside an autograd function count when they happen, not when the function starts:
    a 4 MB and an 8 MB buffer alive together peak at 12 MB even though the first is freed later."""
    from subband.models._profile import peak_memory

    class Op(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[no-untyped-def, override]
            a = torch.empty(1 << 20)  # 4 MB
            b = torch.empty(1 << 21)  # 8 MB
            del a
            return x + b[0]

    peak = peak_memory(lambda: Op.apply(torch.zeros(())))
    assert 12 << 20 <= peak < (12 << 20) + 4096
    assert peak_memory(lambda: [torch.empty(1 << 20) for _ in range(3)]) >= 12 << 20  # kept in a list: 12 MB
