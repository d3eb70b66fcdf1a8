"""DCLS: the kernel construction against the official ``dcls`` package and against the papers'
formulas written out in numpy, module == function, gradcheck through weights, positions and widths,
positions that learn, shared positions, and the depthwise fast path against plain autograd."""

import logging
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from subband.layers import DclsConv1d, DclsConv2d, DclsConv3d, convert_dcls_package_state_dict, dcls_kernel
from subband.layers import dcls as dcls_module
from subband.layers.dcls import _depthwise_weight_grad, _DepthwiseConv2d
from tests.tolerances import assert_close

CLASSES = {1: DclsConv1d, 2: DclsConv2d, 3: DclsConv3d}
VERSIONS = ["v0", "v1", "gauss", "max"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _spread(layer, beyond=0.5):
    """Positions over the whole window and a little beyond it; varied widths."""
    with torch.no_grad():
        for axis, size in enumerate(layer.dilated_kernel_size):
            layer.P[axis].uniform_(-(size // 2) - beyond, size // 2 + beyond)
        if layer.SIG is not None:
            layer.SIG.uniform_(-0.4, 0.4)
    return layer


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_kernel_output_and_gradients_equal_the_official_package(ndim, version):
    dcls = pytest.importorskip("DCLS.construct.modules")
    logging.getLogger().setLevel(logging.ERROR)  # the package logs that CUDA kernels are missing
    torch.manual_seed(ndim)
    size = 7 if ndim < 3 else 5
    cls = {1: dcls.Dcls1d, 2: dcls.Dcls2d, 3: dcls.Dcls3d}[ndim]
    extra = {"use_implicit_gemm": False} if ndim == 2 else {}
    ref = cls(4, 6, kernel_count=3, dilated_kernel_size=size, padding=size // 2, groups=2, version=version, **extra)
    ref = _spread(ref.double())
    with torch.no_grad():  # some on the grid, some clamped to the window's edge (one-sided gradients there)
        ref.P[..., 0].round_()
        ref.P[..., 1].clamp_(-(size // 2), size // 2).sign_().mul_(size // 2)
    ours = CLASSES[ndim](4, 6, 3, size, padding=size // 2, groups=2, version=version).double()
    ours.load_state_dict(convert_dcls_package_state_dict(ref.state_dict(), version))
    assert_close(ours.kernel(), ref.DCK(ref.weight, ref.P, ref.SIG))
    x = torch.randn(2, 4, *([9] * ndim), dtype=torch.float64)
    y, y_ref = ours(x), ref(x)
    assert_close(y, y_ref)
    y.square().sum().backward()
    y_ref.square().sum().backward()
    grads = convert_dcls_package_state_dict({n: p.grad for n, p in ref.named_parameters()}, version)
    for name, p in ours.named_parameters():
        assert_close(p.grad, grads[name])


def test_non_square_window_equals_the_official_package():
    dcls = pytest.importorskip("DCLS.construct.modules")
    logging.getLogger().setLevel(logging.ERROR)
    torch.manual_seed(0)
    kw = dict(kernel_count=5, dilated_kernel_size=(5, 9), padding=(2, 4), groups=3)
    ref = _spread(dcls.Dcls2d(3, 6, version="v0", use_implicit_gemm=False, **kw).double())
    ours = DclsConv2d(3, 6, version="v0", **kw).double()
    ours.load_state_dict(ref.state_dict())  # 2-D bilinear: same axis order, no conversion
    x = torch.randn(2, 3, 11, 12, dtype=torch.float64)
    assert_close(ours(x), ref(x))


def _numpy_kernel(w, p, sig, sizes, version):
    """The papers' interpolation, one weight at a time: bilinear onto the four neighbours (v0), or a
    triangle / Gaussian footprint over the window normalised to sum to one."""
    o_, i_, n = w.shape
    out = np.zeros((o_, i_, *sizes))
    rows, cols = np.meshgrid(np.arange(sizes[0]), np.arange(sizes[1]), indexing="ij")
    for o, i, k in np.ndindex(o_, i_, n):
        pr, pc = p[0, o, i, k] + sizes[0] // 2, p[1, o, i, k] + sizes[1] // 2
        if version == "v0":
            fr, fc = math.floor(pr), math.floor(pc)
            for dr, wr in ((0, 1 - (pr - fr)), (1, pr - fr)):
                for dc, wc in ((0, 1 - (pc - fc)), (1, pc - fc)):
                    if 0 <= fr + dr < sizes[0] and 0 <= fc + dc < sizes[1]:
                        out[o, i, fr + dr, fc + dc] += w[o, i, k] * wr * wc
            continue
        if version == "v1":
            g = np.maximum(0, 1 - abs(rows - pr)) * np.maximum(0, 1 - abs(cols - pc))
        elif version == "max":
            sr, sc = abs(sig[:, o, i, k]) + 1.0
            g = np.maximum(0, sr - abs(rows - pr)) * np.maximum(0, sc - abs(cols - pc))
        else:
            sr, sc = abs(sig[:, o, i, k]) + 0.27
            g = np.exp(-0.5 * ((rows - pr) ** 2 / sr**2 + (cols - pc) ** 2 / sc**2))
        out[o, i] += w[o, i, k] * g / (g.sum() + 1e-7)
    return out


@pytest.mark.parametrize("version", VERSIONS)
def test_kernel_equals_the_formula_in_numpy(version):
    torch.manual_seed(1)
    layer = _spread(DclsConv2d(2, 4, 6, (5, 9), version=version).double())  # non-square: axis order matters
    sig = None if layer.SIG is None else layer.SIG.detach().numpy()
    want = _numpy_kernel(layer.weight.detach().numpy(), layer.P.detach().numpy(), sig, (5, 9), version)
    assert_close(layer.kernel(), want)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_module_equals_conv_with_the_function_kernel(ndim):
    torch.manual_seed(2)
    layer = CLASSES[ndim](4, 6, 3, 5, stride=2, padding=1, groups=2, padding_mode="reflect", version="gauss")
    x = torch.randn(2, 4, *([8] * ndim))
    k = dcls_kernel(layer.weight, layer.P, layer.dilated_kernel_size, "gauss", layer.SIG)
    assert k.shape == (6, 2, *([5] * ndim))
    xp = F.pad(x, (1, 1) * ndim, mode="reflect")
    conv = (F.conv1d, F.conv2d, F.conv3d)[ndim - 1]
    assert_close(layer(x), conv(xp, k, layer.bias, 2, 0, 1, 2))


@pytest.mark.parametrize("version", VERSIONS)
def test_gradcheck_through_weights_positions_and_widths(version):
    torch.manual_seed(3)
    layer = _spread(DclsConv2d(2, 2, 3, (5, 4), version=version).double(), beyond=0.3)
    w, p = layer.weight.detach().requires_grad_(), layer.P.detach().requires_grad_()
    inputs = [w, p] + ([] if layer.SIG is None else [layer.SIG.detach().requires_grad_()])
    assert torch.autograd.gradcheck(lambda w, p, *s: dcls_kernel(w, p, (5, 4), version, *s), inputs)
    x = torch.randn(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)  # and through the convolution
    assert torch.autograd.gradcheck(
        lambda x, w, p, *s: F.conv2d(x, dcls_kernel(w, p, (5, 4), version, *s)), [x, *inputs]
    )


@pytest.mark.parametrize("ndim", [1, 3])
def test_gradcheck_1d_3d(ndim):
    torch.manual_seed(4)
    layer = _spread(CLASSES[ndim](1, 2, 2, 3, version="gauss").double(), beyond=0.2)
    inputs = [t.detach().requires_grad_() for t in (layer.weight, layer.P, layer.SIG)]
    assert torch.autograd.gradcheck(lambda w, p, s: dcls_kernel(w, p, (3,) * ndim, "gauss", s), inputs)


@pytest.mark.parametrize("version", ["v0", "gauss"])
def test_gradients_reach_and_move_the_positions(version):
    """One weight starting 0.6 away from where the target kernel has it: descent on the position
    alone brings it there."""
    torch.manual_seed(5)
    layer = DclsConv1d(1, 1, 1, 9, padding=4, bias=False, version=version).double()
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.P.fill_(1.4)  # gauss keeps its initial width 0.5
    x = torch.randn(4, 1, 64, dtype=torch.float64)
    target = F.conv1d(x, F.one_hot(torch.tensor(6), 9).double().view(1, 1, 9), padding=4)  # weight at +2
    opt = torch.optim.SGD([layer.P], lr=0.02)
    for _ in range(100):
        opt.zero_grad()
        loss = (layer(x) - target).square().mean()
        loss.backward()
        assert layer.P.grad.abs().item() > 0 or loss.item() < 1e-12
        opt.step()
    assert layer.P.item() == pytest.approx(2.0, abs=0.05)


def test_shared_positions_accumulate_gradients_and_leave_the_state_dict():
    torch.manual_seed(6)
    a, b = (DclsConv2d(4, 4, 5, 7, padding=3, groups=4, version="v0") for _ in range(2))
    shared = torch.nn.Parameter(a.P.detach().clone())
    copies = [shared.detach().clone().requires_grad_() for _ in range(2)]  # what each layer would own
    x = torch.randn(2, 4, 9, 9)
    for layer, q in zip((a, b), copies):
        F.conv2d(x, dcls_kernel(layer.weight, q, (7, 7), "v0"), layer.bias, padding=3, groups=4).sum().backward()
        layer.share_positions(shared)
    assert "P" not in a.state_dict() and a.positions is shared and "shared positions" in repr(a)
    (a(x).sum() + b(x).sum()).backward()
    torch.testing.assert_close(shared.grad, copies[0].grad + copies[1].grad)  # both layers' gradients, summed
    with pytest.raises(ValueError, match="shared positions must have shape"):
        a.share_positions(torch.nn.Parameter(torch.zeros(2, 4, 1, 3)))
    with torch.no_grad():
        shared.fill_(10.0)
    a.clamp_parameters()
    assert shared.max().item() == 3.0


@pytest.mark.parametrize(("size", "hw"), [(17, 20), (15, 16), (17, 12), (5, 9)])
def test_depthwise_fast_path_equals_autograd(size, hw):
    """Channels-last forward and FFT weight gradient (large kernels, large maps) or PyTorch's own."""
    torch.manual_seed(7)
    c = 6
    layer = DclsConv2d(c, c, 8, size, padding=size // 2, groups=c, version="v0")
    x = torch.randn(2, c, hw, hw + 3, requires_grad=True)
    y = layer(x)
    assert y.is_contiguous()  # memory format follows the input
    gy = torch.randn_like(y)
    gx, gw, gp, gb = torch.autograd.grad(y, (x, layer.weight, layer.P, layer.bias), gy)
    ref = F.conv2d(x, layer.kernel(), layer.bias, padding=size // 2, groups=c)
    want = torch.autograd.grad(ref, (x, layer.weight, layer.P, layer.bias), gy)
    for got, exp in zip((y, gx, gw, gp, gb), (ref, *want)):
        assert_close(got, exp)
    xcl = x.detach().contiguous(memory_format=torch.channels_last)
    assert layer(xcl).is_contiguous(memory_format=torch.channels_last)


def test_depthwise_weight_grad_fft_equals_native_and_gradchecks(monkeypatch):
    torch.manual_seed(8)
    x = torch.randn(3, 4, 13, 10, dtype=torch.float64)
    for kernel, padding in (((5, 7), (1, 3)), ((15, 15), (7, 7)), ((3, 3), (0, 0))):
        ho, wo = 13 + 2 * padding[0] - kernel[0] + 1, 10 + 2 * padding[1] - kernel[1] + 1
        gy = torch.randn(3, 4, ho, wo, dtype=torch.float64)
        fft = _depthwise_weight_grad(x, gy, kernel, padding, "fft")
        assert_close(fft, _depthwise_weight_grad(x, gy, kernel, padding, "native"))
    calls = []
    monkeypatch.setattr(dcls_module, "_FFT_MIN_KERNEL", 3)  # the large-kernel branch on a tiny instance
    monkeypatch.setattr(
        dcls_module, "_depthwise_weight_grad", lambda *a: calls.append(a[-1]) or _depthwise_weight_grad(*a)
    )
    x = torch.randn(2, 2, 6, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 1, 3, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: _DepthwiseConv2d.apply(x, w, b, (1, 2)), (x, w, b))
    assert set(calls) == {"fft"}


def test_errors():
    with pytest.raises(ValueError, match="version must be one of"):
        DclsConv2d(4, 4, 3, 7, version="cubic")
    with pytest.raises(ValueError, match="divisible by groups"):
        DclsConv2d(4, 6, 3, 7, groups=4)
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        DclsConv2d(4, 4, 3, 7, padding_mode="edge")
    with pytest.raises(ValueError, match="must be positive"):
        DclsConv1d(4, 4, 0, 7)
    with pytest.raises(ValueError, match="dilated_kernel_size needs 1 or 3 values"):
        DclsConv3d(4, 4, 3, (7, 7))
    with pytest.raises(ValueError, match="dilated_kernel_size >= 1"):
        DclsConv2d(4, 4, 3, 0)
    w, p = torch.randn(2, 1, 3), torch.randn(2, 2, 1, 3)
    with pytest.raises(ValueError, match="needs sigma"):
        dcls_kernel(w, p, (5, 5), "gauss")
    with pytest.raises(ValueError, match="positions"):
        dcls_kernel(w, p[:1], (5, 5), "v0")
    with pytest.raises(ValueError, match="version must be one of"):
        convert_dcls_package_state_dict({}, "v2")
