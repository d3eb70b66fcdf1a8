"""g^n Conv against the paper's recursion and its order-1 closed form; the global filter against a
circular convolution computed with numpy; gradcheck in float64; shapes and errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from subband.layers import GlobalLocalFilter, GnConv, global_filter, gnconv_widths
from tests.tolerances import assert_close


def _randomise(module: torch.nn.Module) -> None:
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.5)


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("spatial", ["dwconv", "gf"])
def test_orders_1_to_5_keep_the_shape(order, spatial):
    conv = GnConv(32, order, spatial=spatial, gf_size=(6, 4))
    assert conv.dims == [32 // 2**k for k in range(order - 1, -1, -1)]
    assert conv.proj_in.out_channels == 64 and len(conv.pws) == order - 1
    x = torch.randn(2, 32, 6, 7)
    assert conv(x).shape == x.shape


def test_order_1_is_its_closed_form():
    """Order 1: y = W_out (p * s * dw(q)) + b_out with (p, q) = W_in x + b_in."""
    conv = GnConv(6, order=1, kernel_size=5, scale=0.3).double()
    _randomise(conv)
    x = torch.randn(2, 6, 7, 5, dtype=torch.float64)
    w_in, b_in = conv.proj_in.weight[:, :, 0, 0], conv.proj_in.bias
    pq = torch.einsum("oc,bchw->bohw", w_in, x) + b_in.view(-1, 1, 1)
    p, q = pq[:, :6], pq[:, 6:]
    dw = F.conv2d(q, conv.dwconv.weight, conv.dwconv.bias, padding=2, groups=6)
    g = p * 0.3 * dw
    want = torch.einsum("oc,bchw->bohw", conv.proj_out.weight[:, :, 0, 0], g) + conv.proj_out.bias.view(-1, 1, 1)
    assert_close(conv(x), want)
    # a polynomial of degree 2 in x when the biases vanish: y(a x) = a^2 y(x)
    with torch.no_grad():
        for m in (conv.proj_in, conv.dwconv, conv.proj_out):
            m.bias.zero_()
    assert_close(conv(3 * x), 9 * conv(x))


@pytest.mark.parametrize("order", [2, 3, 4])
def test_higher_orders_follow_the_recursion(order):
    """p_1 = p_0 * q_0, p_{k+1} = g_k(p_k) * q_k, y = phi_out(p_n), written out step by step."""
    dim = 16
    conv = GnConv(dim, order, kernel_size=3, scale=0.5).double()
    _randomise(conv)
    x = torch.randn(1, dim, 5, 6, dtype=torch.float64)
    widths = [dim // 2 ** (order - 1 - k) for k in range(order)]
    pq = F.conv2d(x, conv.proj_in.weight, conv.proj_in.bias)
    p, q = pq[:, : widths[0]], pq[:, widths[0] :]
    q = 0.5 * F.conv2d(q, conv.dwconv.weight, conv.dwconv.bias, padding=1, groups=q.shape[1])
    starts = np.cumsum([0] + widths)
    qs = [q[:, starts[k] : starts[k + 1]] for k in range(order)]
    p = p * qs[0]
    for k in range(1, order):
        p = F.conv2d(p, conv.pws[k - 1].weight, conv.pws[k - 1].bias) * qs[k]
    want = F.conv2d(p, conv.proj_out.weight, conv.proj_out.bias)
    assert_close(conv(x), want)
    with torch.no_grad():  # degree order + 1 without biases
        for m in (conv.proj_in, conv.dwconv, conv.proj_out, *conv.pws):
            m.bias.zero_()
    assert_close(conv(2 * x), 2 ** (order + 1) * conv(x))


def _circular_reference(x: np.ndarray, spectrum: np.ndarray) -> np.ndarray:
    """Each channel of ``x`` (B, C, H, W) circularly convolved with irfft2(spectrum) (C, H, W//2+1):
    y[m, n] = sum_{a, b} k[a, b] x[m - a, n - b], summed explicitly over the kernel taps."""
    h, w = x.shape[-2:]
    kernel = np.fft.irfft2(spectrum, s=(h, w))  # (C, H, W) real
    y = np.zeros_like(x)
    for a in range(h):
        for b in range(w):
            y += kernel[:, a, b][None, :, None, None] * np.roll(x, (a, b), axis=(-2, -1))
    return y


@pytest.mark.parametrize("size", [(6, 8), (5, 7), (4, 1)])
def test_global_filter_is_a_circular_convolution(size):
    h, w = size
    torch.manual_seed(0)
    x = torch.randn(2, 3, h, w, dtype=torch.float64)
    weight = torch.randn(3, h, w // 2 + 1, 2, dtype=torch.float64)  # stored at the input's grid
    spectrum = weight[..., 0].numpy() + 1j * weight[..., 1].numpy()
    want = _circular_reference(x.numpy(), spectrum)
    assert_close(global_filter(x, weight), torch.from_numpy(want))


def test_global_filter_resizes_bilinearly_with_aligned_corners():
    """A filter linear in the row and column index stays linear when resized with
    align_corners=True, so the resized filter is known in closed form at any grid."""
    stored = (14, 8)
    rows = torch.linspace(0, 1, stored[0], dtype=torch.float64).view(-1, 1)
    cols = torch.linspace(0, 1, stored[1], dtype=torch.float64).view(1, -1)
    re, im = 1.0 + 2.0 * rows - cols, 0.5 * rows + 3.0 * cols
    weight = torch.stack([re, im], -1).expand(2, *stored, 2).double()  # (C=2, 14, 8, 2)
    x = torch.randn(1, 2, 9, 11, dtype=torch.float64)
    grid = (9, 11 // 2 + 1)
    r = torch.linspace(0, 1, grid[0], dtype=torch.float64).view(-1, 1)
    c = torch.linspace(0, 1, grid[1], dtype=torch.float64).view(1, -1)
    spectrum = ((1.0 + 2.0 * r - c) + 1j * (0.5 * r + 3.0 * c)).numpy()
    want = _circular_reference(x.numpy(), np.broadcast_to(spectrum, (2, *grid)))
    assert_close(global_filter(x, weight), torch.from_numpy(want))
    # a constant filter is a constant at every size: y = c x
    const = torch.zeros(2, *stored, 2, dtype=torch.float64)
    const[..., 0] = 1.5
    for size in [(3, 3), (20, 17)]:
        z = torch.randn(1, 2, *size, dtype=torch.float64)
        assert_close(global_filter(z, const), 1.5 * z)


def test_global_filter_dtypes_and_errors():
    weight = torch.randn(4, 5, 3, 2)
    x = torch.randn(1, 4, 5, 5)
    ref = global_filter(x, weight)
    half = global_filter(x.bfloat16(), weight)
    assert half.dtype == torch.bfloat16
    assert_close(half, ref, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=r"\(C, h, w, 2\) with C = 4"):
        global_filter(x, torch.randn(3, 5, 3, 2))


def test_global_local_filter_interleaves_local_and_global_channels():
    torch.manual_seed(0)
    gf = GlobalLocalFilter(8, h=5, w=3).double()
    _randomise(gf)
    x = torch.randn(2, 8, 5, 4, dtype=torch.float64)

    def ln(t, m):  # layer norm over channels, written out
        mu, var = t.mean(1, keepdim=True), t.var(1, unbiased=False, keepdim=True)
        return (t - mu) / torch.sqrt(var + 1e-6) * m.weight.view(-1, 1, 1) + m.bias.view(-1, 1, 1)

    t = ln(x, gf.pre_norm)
    mixed = torch.empty_like(t)
    mixed[:, 0::2] = F.conv2d(t[:, :4], gf.dw.weight, padding=1, groups=4)
    mixed[:, 1::2] = global_filter(t[:, 4:], gf.complex_weight)
    assert_close(gf(x), ln(mixed, gf.post_norm))


def test_gradcheck_float64():
    torch.manual_seed(0)
    x = torch.randn(1, 4, 4, 3, dtype=torch.float64, requires_grad=True)
    for conv in (GnConv(4, 3, kernel_size=3, scale=1 / 3), GnConv(4, 2, spatial="gf", gf_size=(3, 2))):
        assert torch.autograd.gradcheck(conv.double(), (x,))
    weight = torch.randn(4, 3, 3, 2, dtype=torch.float64, requires_grad=True)  # resized to (4, 2)
    assert torch.autograd.gradcheck(global_filter, (x, weight))


def test_bad_arguments():
    with pytest.raises(ValueError, match="order must be >= 1"):
        GnConv(16, order=0)
    with pytest.raises(ValueError, match="multiple of 2\\*\\*\\(order-1\\) = 8"):
        GnConv(12, order=4)
    with pytest.raises(ValueError, match="one of \\('dwconv', 'gf'\\)"):
        GnConv(16, order=2, spatial="fft")
    with pytest.raises(ValueError, match="odd"):
        GnConv(16, order=2, kernel_size=4)
    with pytest.raises(ValueError, match="even gate width"):
        GnConv(1, order=1, spatial="gf")
    with pytest.raises(ValueError, match="even"):
        GlobalLocalFilter(7)
    assert gnconv_widths(64, 3) == [16, 32, 64]
    assert "order=3" in repr(GnConv(64, 3)) and "filter_grid=(14, 8)" in repr(GlobalLocalFilter(8))
