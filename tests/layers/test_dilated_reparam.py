"""Dilated Reparam Block: the dilated-to-dense kernel identity against F.conv2d with dilation, the
BatchNorm fold in closed form, and the fused block equal to the training-time block."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from subband.layers import DilatedReparamBlock, dilated_to_dense, fold_bn
from subband.layers.dilated_reparam import DEFAULT_BRANCHES


def _randomise_bn(module: nn.Module) -> None:
    """Non-trivial BatchNorm statistics and affine parameters, so folding them is really tested."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2.0)
            nn.init.normal_(m.weight)
            nn.init.normal_(m.bias)


@pytest.mark.parametrize(("k", "r"), [(3, 1), (3, 2), (3, 5), (5, 3), (7, 2), (2, 3)])
def test_dilated_to_dense_matches_conv2d_with_dilation(k, r):
    torch.manual_seed(0)
    x = torch.randn(2, 4, 23, 19, dtype=torch.float64)
    w = torch.randn(6, 4, k, k, dtype=torch.float64)  # dense conv: every in/out pair
    dense = dilated_to_dense(w, r)
    assert dense.shape == (6, 4, r * (k - 1) + 1, r * (k - 1) + 1)
    torch.testing.assert_close(F.conv2d(x, dense, padding=3), F.conv2d(x, w, dilation=r, padding=3))
    # depthwise, as the block uses it
    wd = torch.randn(4, 1, k, k, dtype=torch.float64)
    torch.testing.assert_close(F.conv2d(x, dilated_to_dense(wd, r), groups=4), F.conv2d(x, wd, dilation=r, groups=4))
    # non-zero taps are exactly the kernel, every other entry is zero
    assert dense.count_nonzero() == w.count_nonzero()


def test_dilated_to_dense_rectangular_and_errors():
    w = torch.arange(6.0).view(1, 1, 2, 3)
    want = torch.tensor([[0.0, 0, 1, 0, 2], [0, 0, 0, 0, 0], [3, 0, 4, 0, 5]]).view(1, 1, 3, 5)
    torch.testing.assert_close(dilated_to_dense(w, 2), want)
    assert dilated_to_dense(w, 1) is w
    with pytest.raises(ValueError, match="positive"):
        dilated_to_dense(w, 0)
    with pytest.raises(ValueError, match="two spatial dims"):
        dilated_to_dense(torch.ones(3), 2)


def test_fold_bn_equals_conv_then_batchnorm():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1).double()
    bn = nn.BatchNorm2d(5).double()
    _randomise_bn(bn)
    bn.eval()
    w, b = fold_bn(conv.weight, conv.bias, bn)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(F.conv2d(x, w, b, padding=1), bn(conv(x)))
    w0, b0 = fold_bn(conv.weight, None, bn)  # a bias-free conv
    torch.testing.assert_close(F.conv2d(x, w0, b0, padding=1), bn(F.conv2d(x, conv.weight, padding=1)))


@pytest.mark.parametrize("kernel_size", sorted(DEFAULT_BRANCHES))
def test_fused_block_equals_training_block(kernel_size):
    torch.manual_seed(kernel_size)
    block = DilatedReparamBlock(6, kernel_size)
    _randomise_bn(block)
    block.eval()
    x = torch.randn(2, 6, 21, 17)
    with torch.no_grad():
        want = block(x)
        block.fuse()
        got = block(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # one large depthwise conv with a bias is all that is left
    assert [n for n, _ in block.named_children()] == ["lk_origin"] and block.fused
    assert sum(p.numel() for p in block.parameters()) == 6 * kernel_size**2 + 6
    block.fuse()  # a second call changes nothing
    torch.testing.assert_close(block(x), got)


def test_fused_kernel_is_the_sum_of_sparse_large_kernels():
    """With identity BatchNorms the merged kernel is the large kernel plus each dilated kernel
    spread out and centred: check one tap of each branch by hand."""
    block = DilatedReparamBlock(1, 7, branches=((3, 2), (3, 3))).eval()
    for conv in (block.lk_origin, block.dil_conv_k3_2, block.dil_conv_k3_3):
        nn.init.zeros_(conv.weight)
    block.lk_origin.weight.data[0, 0, 3, 3] = 1.0  # centre
    block.dil_conv_k3_2.weight.data[0, 0, 0, 0] = 2.0  # top-left tap, 2 steps of 2 from the centre
    block.dil_conv_k3_3.weight.data[0, 0, 2, 1] = 4.0  # bottom-middle tap, 3 below the centre
    eps_scale = 1 / (1 + block.origin_bn.eps) ** 0.5
    w, b = block.fused_kernel()
    want = torch.zeros(1, 1, 7, 7)
    want[0, 0, 3, 3], want[0, 0, 1, 1], want[0, 0, 6, 3] = 1.0, 2.0, 4.0
    torch.testing.assert_close(w, want * eps_scale)
    torch.testing.assert_close(b, torch.zeros(1))


def test_gradcheck_training_block_float64():
    torch.manual_seed(0)
    block = DilatedReparamBlock(2, 5).double()
    _randomise_bn(block)
    block.eval()
    x = torch.randn(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    w = block.dil_conv_k3_2.weight
    assert torch.autograd.gradcheck(lambda x, _w: block(x), (x, w))


def test_custom_branches_state_dict_names_and_errors():
    block = DilatedReparamBlock(4, 19, branches=((5, 1), (3, 9)))
    keys = set(block.state_dict())
    assert {"lk_origin.weight", "origin_bn.running_var", "dil_conv_k5_1.weight", "dil_bn_k3_9.weight"} <= keys
    assert "kernel_size=19" in repr(block) and "fused=False" in repr(block)
    block.eval()
    x = torch.randn(1, 4, 25, 25)
    _randomise_bn(block)
    with torch.no_grad():
        want = block(x)
        block.fuse()
        torch.testing.assert_close(block(x), want, rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="eval"):
        DilatedReparamBlock(4, 13).fuse()
    with pytest.raises(ValueError, match="odd"):
        DilatedReparamBlock(4, 12)
    with pytest.raises(ValueError, match="no default branches.*5, 7, 9"):
        DilatedReparamBlock(4, 19)
    with pytest.raises(ValueError, match="span"):
        DilatedReparamBlock(4, 7, branches=((3, 4),))
    with pytest.raises(ValueError, match="distinct"):
        DilatedReparamBlock(4, 7, branches=((3, 2), (3, 2)))


def test_reset_parameters_restores_fresh_statistics():
    block = DilatedReparamBlock(3, 7)
    _randomise_bn(block)
    block.reset_parameters()
    assert torch.equal(block.origin_bn.running_var, torch.ones(3))
    assert torch.equal(block.dil_bn_k5_1.weight, torch.ones(3))
