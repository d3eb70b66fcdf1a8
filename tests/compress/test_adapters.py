"""LoRA and WaRA: merge then unmerge restores the weights (float64), merged == adapter forward, the
WaRA update is the inverse Haar transform of its low-rank subbands, parameter counts, freezing."""

import pytest
import pywt
import torch
from torch import nn

from subband.compress import LoRA, WaRA, adapter_parameters, add_adapters, merge_adapters, unmerge_adapters


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 10, 3), nn.ReLU(), nn.Flatten(), nn.Linear(10 * 36, 7)).double()


def _randomise(model: nn.Module) -> None:
    with torch.no_grad():
        for p in adapter_parameters(model):
            p.normal_()


@pytest.mark.parametrize("kind", ["lora", "wara"])
def test_merge_unmerge_and_merged_forward(kind):
    net = _net()
    tuned = add_adapters(net, kind, rank=3, alpha=6.0)
    _randomise(tuned)
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    y = tuned(x)
    before = {k: v.clone() for k, v in tuned.state_dict().items()}
    merge_adapters(tuned)
    torch.testing.assert_close(tuned(x), y)  # merged weights give the adapter forward
    assert not torch.equal(tuned[0].base.weight, before["0.base.weight"])
    unmerge_adapters(tuned)
    for k, v in tuned.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=1e-13)
    torch.testing.assert_close(tuned(x), y)
    # frozen base, trainable adapters only; the original model is untouched
    assert all(not p.requires_grad for n, p in tuned.named_parameters() if ".base." in n)
    assert all(p.requires_grad for p in net.parameters())


def test_wara_update_is_the_inverse_haar_transform_of_low_rank_subbands():
    torch.manual_seed(0)
    layer = WaRA(nn.Linear(12, 10).double(), rank=2, bands=("ll", "hh"))
    _randomise(nn.Sequential(layer))
    sub = {b: (layer.wara_b[b] @ layer.wara_a[b]).detach().numpy() for b in ("ll", "hh")}
    zero = sub["ll"] * 0
    want = pywt.idwt2((sub["ll"], (zero, zero, sub["hh"])), "haar", mode="periodization")
    torch.testing.assert_close(layer.delta().detach(), torch.from_numpy(want) * layer.scale)
    assert torch.linalg.matrix_rank(layer.delta().detach()) <= 4  # two rank-2 subbands


def test_parameter_counts_and_starting_point():
    base = nn.Linear(64, 48)
    lora, wara = LoRA(base, rank=8), WaRA(nn.Linear(64, 48), rank=2)  # same maximal rank: 8
    n_lora = sum(p.numel() for p in (lora.lora_a, lora.lora_b))
    n_wara = sum(p.numel() for p in [*wara.wara_a.values(), *wara.wara_b.values()])
    assert n_lora == 8 * (64 + 48) and n_wara == 4 * 2 * (32 + 24) and n_wara < n_lora
    x = torch.randn(5, 64)
    torch.testing.assert_close(lora(x), base(x))  # B = 0: the adapted layer starts as the base
    with pytest.raises(ValueError, match="bands"):
        WaRA(nn.Linear(4, 4), bands=("xx",))
    with pytest.raises(TypeError, match="nn.Linear or nn.Conv2d"):
        LoRA(nn.LayerNorm(4))
    with pytest.raises(ValueError, match="kind"):
        add_adapters(nn.Linear(2, 2), "dora")


def test_only_named_layers_and_gradients_reach_adapters():
    net = _net()
    tuned = add_adapters(net, "wara", rank=2, names=["3"])
    assert isinstance(tuned[3], WaRA) and isinstance(tuned[0], nn.Conv2d)
    tuned(torch.randn(2, 3, 8, 8, dtype=torch.float64)).sum().backward()
    assert all(p.grad is not None for p in adapter_parameters(tuned))
    assert tuned[0].weight.grad is None
