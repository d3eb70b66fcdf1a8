"""fuse(): a new model with the same eval outputs, for every registered model with something to fuse."""

import pytest
import torch
from torch import nn

import subband
from subband.compress import fuse
from subband.models._profile import count_params, default_input


def _has_something_to_fuse(model: nn.Module) -> bool:
    return any(isinstance(m, nn.BatchNorm2d) or (m is not model and callable(getattr(m, "fuse", None)))
               for m in model.modules())  # fmt: skip


def _small_models() -> list[str]:
    out = []
    for name in subband.list_models():
        if (subband.model_info(name).params or 0) > 30e6:
            continue
        out.append(name)
    return out


@pytest.mark.parametrize("name", _small_models())
def test_fused_copy_keeps_eval_outputs(name):
    torch.manual_seed(0)
    model = subband.create_model(name).eval()
    if not _has_something_to_fuse(model):
        pytest.skip(f"{name} has nothing to fuse")
    with torch.no_grad():  # non-trivial statistics, or fusion would be checked at the identity
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
        for p in model.parameters():  # zero or 1e-6 layer scales would hide every branch behind them
            if p.numel() and float(p.abs().max()) < 1e-3:
                p.uniform_(-0.5, 0.5)
    x = default_input(model, 2)
    if x.shape[-1] > 64:
        x = x[..., :64, :64] if "espcn" not in name else x
    with torch.no_grad():
        want = model(x)
        fused = fuse(model)
        got = fused(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert count_params(fused) <= count_params(model)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == _has_bn(model)  # original untouched


def _has_bn(model: nn.Module) -> bool:
    return any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_fuse_refuses_training_mode():
    with pytest.raises(ValueError, match="eval"):
        fuse(nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1)))


def test_fuse_folds_plain_conv_bn_pairs():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1), nn.BatchNorm2d(4))
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2.0)
    net.eval()
    fused = fuse(net)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    x = torch.randn(2, 3, 9, 9)
    torch.testing.assert_close(fused(x), net(x), rtol=1e-5, atol=1e-5)
