"""ConvBN modes: Tune equals Eval in outputs and in gradients w.r.t. inputs, conv weights and BN
affine parameters; Train uses batch statistics; pairs in Sequentials are found."""

import pytest
import torch
from torch import nn

from subband.compress import convbn_mode
from subband.layers import ConvBN


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, bias=False), nn.BatchNorm2d(8)), nn.ReLU(),
        ConvBN(8, 4, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )  # fmt: skip
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.normal_()
            m.bias.data.normal_()
    return net.double()


def test_tune_equals_eval_in_outputs_and_gradients():
    net = _net()
    ev, n_eval = convbn_mode(net, "eval")
    tu, n_tune = convbn_mode(net, "tune")
    assert n_eval == n_tune == 3
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    xe, xt = x.clone().requires_grad_(), x.clone().requires_grad_()
    ye, yt = ev(xe), tu(xt)
    torch.testing.assert_close(yt, ye, atol=1e-5, rtol=1e-5)
    u = torch.randn_like(ye)
    (ye * u).sum().backward()
    (yt * u).sum().backward()
    torch.testing.assert_close(xt.grad, xe.grad, atol=1e-5, rtol=1e-5)
    for (name, pe), (_, pt) in zip(ev.named_parameters(), tu.named_parameters()):
        torch.testing.assert_close(pt.grad, pe.grad, atol=1e-5, rtol=1e-5, msg=name)
    # the running statistics stay frozen in both
    for be, bt in zip([m for m in ev.modules() if isinstance(m, nn.BatchNorm2d)],
                      [m for m in tu.modules() if isinstance(m, nn.BatchNorm2d)]):  # fmt: skip
        torch.testing.assert_close(bt.running_mean, be.running_mean)


def test_train_mode_uses_batch_statistics_and_originals_are_untouched():
    net = _net().eval()
    tr, _ = convbn_mode(net, "train")
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    assert not torch.allclose(tr(x), net(x))
    assert all(not m.training for m in net.modules())
    with pytest.raises(ValueError, match="mode must be"):
        convbn_mode(net, "deploy")
