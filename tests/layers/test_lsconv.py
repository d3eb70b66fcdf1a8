"""LS convolution: the small-kernel aggregation against an explicit numpy sum and against a
depthwise conv (the official FLOP-count substitute) when the kernels do not vary; gradcheck in
float64; the perception branch's kernel layout; Conv-BN fusion; errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from subband.layers import LKP, SKA, ConvBN, LSConv, ska
from tests.tolerances import assert_close


def _numpy_ska(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """y[b, c, h, v] = sum_{i,j} x[b, c, h+i-r, v+j-r] w[b, c % C_w, i k + j, h, v], zero padded."""
    b, c, hh, ww = x.shape
    cw, k = w.shape[1], int(round(np.sqrt(w.shape[2])))
    r = k // 2
    y = np.zeros_like(x)
    for bi in range(b):
        for ci in range(c):
            for h in range(hh):
                for v in range(ww):
                    for i in range(k):
                        for j in range(k):
                            hi, vj = h + i - r, v + j - r
                            if 0 <= hi < hh and 0 <= vj < ww:
                                y[bi, ci, h, v] += x[bi, ci, hi, vj] * w[bi, ci % cw, i * k + j, h, v]
    return y


@pytest.mark.parametrize("k, cw", [(3, 2), (5, 6), (1, 3)])
def test_ska_is_the_per_pixel_sum(k, cw):
    torch.manual_seed(0)
    x = torch.randn(2, 6, 5, 4, dtype=torch.float64)
    w = torch.randn(2, cw, k * k, 5, 4, dtype=torch.float64)
    want = torch.from_numpy(_numpy_ska(x.numpy(), w.numpy()))
    assert_close(ska(x, w), want)
    assert_close(SKA()(x, w), want)  # module == function


def test_ska_with_constant_kernels_is_a_depthwise_conv():
    """Kernels equal at every pixel: a depthwise conv whose weight repeats every C_w channels."""
    torch.manual_seed(0)
    c, cw, k = 16, 4, 3
    kernel = torch.randn(cw, k * k)
    w = kernel[None, :, :, None, None].expand(2, cw, k * k, 7, 6)
    x = torch.randn(2, c, 7, 6)
    conv_w = kernel.view(cw, 1, k, k).repeat(c // cw, 1, 1, 1)  # channel c -> kernel c % cw
    assert_close(ska(x, w), F.conv2d(x, conv_w, padding=1, groups=c))


def test_ska_gradcheck_float64():
    torch.manual_seed(0)
    x = torch.randn(1, 4, 4, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(1, 2, 9, 4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ska, (x, w))
    conv = LSConv(8, large_kernel=3, groups=4).double().eval()
    z = torch.randn(1, 8, 4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(conv, (z,))


def test_lkp_gives_one_normalised_kernel_per_channel_group():
    torch.manual_seed(0)
    lkp = LKP(16, large_kernel=5, small_kernel=3, groups=4)
    w = lkp(torch.randn(2, 16, 6, 6))
    assert w.shape == (2, 4, 9, 6, 6)
    flat = w.flatten(2)  # GroupNorm: one group per kernel, over its 9 taps and all pixels
    torch.testing.assert_close(flat.mean(-1), torch.zeros(2, 4), atol=1e-5, rtol=0)
    torch.testing.assert_close(flat.var(-1, unbiased=False), torch.ones(2, 4), atol=1e-3, rtol=0)


def _randomise_bn(module: torch.nn.Module) -> None:
    torch.manual_seed(2)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_()
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)


def test_lsconv_is_bn_of_the_aggregation_plus_input_and_fuses():
    conv = LSConv(16).eval()
    _randomise_bn(conv)
    x = torch.randn(2, 16, 9, 7)
    bn = conv.bn
    agg = ska(x, conv.lkp(x))
    want = (agg - bn.running_mean.view(-1, 1, 1)) / torch.sqrt(bn.running_var.view(-1, 1, 1) + bn.eps)
    want = want * bn.weight.view(-1, 1, 1) + bn.bias.view(-1, 1, 1) + x
    y = conv(x)
    assert_close(y, want)
    with pytest.raises(RuntimeError, match="eval"):
        LSConv(16).fuse()
    conv.fuse()
    assert all(isinstance(m.bn, torch.nn.Identity) for m in (conv.lkp.cv1, conv.lkp.cv2, conv.lkp.cv3))
    torch.testing.assert_close(conv(x), y, rtol=1e-5, atol=1e-5)


def test_conv_bn_fuse():
    cbn = ConvBN(6, 8, 3, stride=2, padding=1, groups=2, bn_weight_init=0.5)
    assert torch.all(cbn.bn.weight == 0.5)
    _randomise_bn(cbn)
    cbn.eval()
    x = torch.randn(2, 6, 9, 8)
    y = cbn(x)
    cbn.fuse()
    cbn.fuse()  # a second call changes nothing
    assert isinstance(cbn.bn, torch.nn.Identity) and cbn.c.bias is not None and cbn.c.stride == (2, 2)
    torch.testing.assert_close(cbn(x), y, rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="eval"):
        ConvBN(2, 2).fuse()


def test_bad_arguments():
    x = torch.randn(1, 6, 4, 4)
    with pytest.raises(ValueError, match="k\\*k for an odd k"):
        ska(x, torch.randn(1, 3, 4, 4, 4))
    with pytest.raises(ValueError, match="divisible by C_w"):
        ska(x, torch.randn(1, 4, 9, 4, 4))
    with pytest.raises(ValueError, match="H=4, W=4"):
        ska(x, torch.randn(1, 3, 9, 4, 5))
    with pytest.raises(ValueError, match="x \\(B, C, H, W\\)"):
        ska(x[0], torch.randn(1, 3, 9, 4, 4))
    with pytest.raises(ValueError, match="divisible by groups"):
        LSConv(12, groups=8)
    with pytest.raises(ValueError, match="large_kernel must be odd"):
        LKP(16, large_kernel=6)
    assert "groups=8" in repr(LSConv(16))
