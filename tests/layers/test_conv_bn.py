"""BatchNorm folding: a BatchNorm1d before a linear layer folds into it (fused == unfused), and
``fuse_submodules`` fuses every part in place and refuses training mode."""

import pytest
import torch
from torch import nn

from subband.layers import BNLinear, fuse_submodules


def test_bn_linear_fuse_and_fuse_submodules():
    torch.manual_seed(0)
    head = BNLinear(6, 3).double()
    head.bn.running_mean.normal_()
    head.bn.running_var.uniform_(0.5, 2.0)
    nn.init.normal_(head.bn.weight)
    net = nn.Sequential(nn.Flatten(), head)
    x = torch.randn(4, 6, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="eval"):
        fuse_submodules(net)
    want = net.eval()(x)
    assert fuse_submodules(net) is net and isinstance(head.bn, nn.Identity)
    torch.testing.assert_close(net(x), want)
