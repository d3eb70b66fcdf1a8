"""Deformable convolution v1: zero offsets == F.conv2d, a uniform integer offset == the plain conv
of the shifted (zero-filled) input, the offset layout pinned on a 1x1 kernel, arbitrary fractional
offsets == a numpy loop written from the mmcv CUDA kernel's indexing, gradcheck, module ==
function, clear errors."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from subband.layers import DeformConv2d, deform_conv2d
from tests.tolerances import assert_close

pytestmark = pytest.mark.usefixtures("one_thread")


def _np_bilinear(img: np.ndarray, y: float, x: float) -> float:
    """mmcv ``deformable_im2col_bilinear``: zero outside (-1, H) x (-1, W), out-of-map corners are 0."""
    h, w = img.shape
    if y <= -1 or y >= h or x <= -1 or x >= w:
        return 0.0
    y0, x0 = math.floor(y), math.floor(x)
    ly, lx = y - y0, x - x0
    val = 0.0
    for yy, wy in ((y0, 1 - ly), (y0 + 1, ly)):
        for xx, wx in ((x0, 1 - lx), (x0 + 1, lx)):
            if 0 <= yy < h and 0 <= xx < w:
                val += wy * wx * img[yy, xx]
    return val


def _np_deform_conv(x, offset, weight, bias, stride, padding, dilation, groups):
    """Direct loop: offset channel 2 * (g * K + i * kw + j) is dy, the next one dx (mmcv layout)."""
    b, c, h, w = x.shape
    c_out, c_g, kh, kw = weight.shape
    k = kh * kw
    ho, wo = offset.shape[2:]
    g_d = offset.shape[1] // (2 * k)
    out = np.zeros((b, c_out, ho, wo))
    for n in range(b):
        for o in range(c_out):
            g = o // (c_out // groups)
            for cg in range(c_g):
                ci = g * c_g + cg
                dg = ci // (c // g_d)
                for i in range(kh):
                    for j in range(kw):
                        t = dg * k + i * kw + j
                        for ph in range(ho):
                            for pw in range(wo):
                                y = ph * stride - padding + i * dilation + offset[n, 2 * t, ph, pw]
                                xx = pw * stride - padding + j * dilation + offset[n, 2 * t + 1, ph, pw]
                                out[n, o, ph, pw] += weight[o, cg, i, j] * _np_bilinear(x[n, ci], y, xx)
    return out + (0 if bias is None else bias[None, :, None, None])


@pytest.mark.parametrize(
    "stride,padding,dilation,groups,g_d", [(1, 1, 1, 1, 1), (2, 2, 2, 2, 2), (1, 0, 1, 1, 4), (2, 1, 1, 4, 1)]
)
def test_zero_offsets_equal_conv2d(stride, padding, dilation, groups, g_d):
    torch.manual_seed(0)
    x = torch.randn(2, 8, 9, 10, dtype=torch.float64)
    weight = torch.randn(12, 8 // groups, 3, 3, dtype=torch.float64)
    bias = torch.randn(12, dtype=torch.float64)
    want = F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    offset = torch.zeros(2, 2 * g_d * 9, *want.shape[2:], dtype=torch.float64)
    assert_close(deform_conv2d(x, offset, weight, bias, stride, padding, dilation, groups), want)


@pytest.mark.parametrize("dy,dx", [(1, 0), (0, -2), (-1, 3), (2, 2)])
def test_uniform_integer_offset_is_the_conv_of_the_shifted_input(dy, dx):
    torch.manual_seed(1)
    x = torch.randn(2, 3, 8, 7, dtype=torch.float64)
    weight = torch.randn(5, 3, 3, 3, dtype=torch.float64)
    stride, pad, dil = 2, 1, 1
    ho, wo = (8 + 2 - 3) // 2 + 1, (7 + 2 - 3) // 2 + 1
    offset = torch.zeros(2, 18, ho, wo, dtype=torch.float64)
    offset[:, 0::2], offset[:, 1::2] = dy, dx
    m = 6  # canvas margin > pad + |shift|; samples outside x read zeros
    canvas = F.pad(x, (m, m, m, m))  # canvas[y + m, x + m] = x[y, x]
    shifted = canvas[..., m - pad + dy :, m - pad + dx :]  # shifted[u, v] = x[u - pad + dy, v - pad + dx]
    want = F.conv2d(shifted, weight, None, stride, 0, dil)[..., :ho, :wo]
    assert_close(deform_conv2d(x, offset, weight, None, stride, pad, dil), want)


def test_offset_layout_is_dy_then_dx_per_tap():
    x = torch.arange(30, dtype=torch.float64).view(1, 1, 5, 6)
    weight = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    off = torch.zeros(1, 2, 5, 6, dtype=torch.float64)
    off[:, 0] = 1.0  # channel 0: dy -> row below
    want = torch.cat([x[..., 1:, :], torch.zeros(1, 1, 1, 6, dtype=torch.float64)], dim=2)
    assert_close(deform_conv2d(x, off, weight), want)
    off = off.flip(1) * 0.5  # channel 1: dx -> halfway to the right neighbour
    want = torch.cat([(x[..., :-1] + x[..., 1:]) / 2, x[..., -1:] / 2], dim=3)
    assert_close(deform_conv2d(x, off, weight), want)


@pytest.mark.parametrize("stride,padding,dilation,groups,g_d", [(1, 1, 1, 1, 1), (2, 2, 2, 2, 2)])
def test_fractional_offsets_match_the_numpy_loop(stride, padding, dilation, groups, g_d):
    torch.manual_seed(2)
    x = torch.randn(2, 4, 5, 6, dtype=torch.float64)
    weight = torch.randn(4, 4 // groups, 3, 3, dtype=torch.float64)
    bias = torch.randn(4, dtype=torch.float64)
    ho = (5 + 2 * padding - dilation * 2 - 1) // stride + 1
    wo = (6 + 2 * padding - dilation * 2 - 1) // stride + 1
    offset = (torch.rand(2, 2 * g_d * 9, ho, wo, dtype=torch.float64) - 0.5) * 6  # many samples leave the map
    got = deform_conv2d(x, offset, weight, bias, stride, padding, dilation, groups)
    want = _np_deform_conv(x.numpy(), offset.numpy(), weight.numpy(), bias.numpy(), stride, padding, dilation, groups)
    assert_close(got, want)
    assert not torch.allclose(got, F.conv2d(x, weight, bias, stride, padding, dilation, groups))


def test_gradcheck_input_offset_weight_bias():
    torch.manual_seed(3)
    x = torch.randn(1, 4, 4, 5, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(2, dtype=torch.float64, requires_grad=True)
    # fractional, away from integers (bilinear sampling has kinks there), some samples off the map
    offset = torch.rand(1, 36, 2, 3, dtype=torch.float64) * 0.8 + 0.1 + torch.randint(-2, 2, (1, 36, 2, 3))
    offset.requires_grad_()
    fn = lambda a, o, w, b: deform_conv2d(a, o, w, b, stride=2, padding=1, dilation=1, groups=2)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, offset, weight, bias))


def test_module_starts_as_plain_conv_and_equals_the_function():
    torch.manual_seed(4)
    conv = DeformConv2d(6, 8, 3, stride=2, padding=2, dilation=2, groups=2, deformable_groups=3).double()
    x = torch.randn(2, 6, 9, 9, dtype=torch.float64)
    assert_close(conv(x), F.conv2d(x, conv.weight, conv.bias, 2, 2, 2, 2))
    torch.nn.init.normal_(conv.conv_offset.weight, std=0.3)
    offset = conv.conv_offset(x)
    assert offset.shape == (2, 2 * 3 * 9, 5, 5)
    assert_close(conv(x), deform_conv2d(x, offset, conv.weight, conv.bias, 2, 2, 2, 2))
    assert not torch.allclose(conv(x), F.conv2d(x, conv.weight, conv.bias, 2, 2, 2, 2))
    conv(x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in conv.parameters())
    assert "deformable_groups=3" in repr(conv)


def test_errors():
    x, w = torch.randn(1, 4, 6, 6), torch.randn(2, 4, 3, 3)
    with pytest.raises(ValueError, match="offset must be"):
        deform_conv2d(x, torch.zeros(1, 18, 5, 5), w, padding=1)
    with pytest.raises(ValueError, match="offset must be"):
        deform_conv2d(x, torch.zeros(1, 17, 6, 6), w, padding=1)
    with pytest.raises(ValueError, match="deformable groups"):
        deform_conv2d(x, torch.zeros(1, 54, 6, 6), w, padding=1)
    with pytest.raises(ValueError, match="groups=3"):
        deform_conv2d(x, torch.zeros(1, 18, 6, 6), w, padding=1, groups=3)
    with pytest.raises(ValueError, match="expects input"):
        deform_conv2d(x[0], torch.zeros(1, 18, 6, 6), w)
    with pytest.raises(ValueError, match="divisible"):
        DeformConv2d(6, 8, 3, deformable_groups=4)
    with pytest.raises(ValueError, match="positive"):
        DeformConv2d(0, 8, 3)
