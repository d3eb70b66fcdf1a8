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
