"""torch.compile traces the functions and modules and gives the eager results."""

import pytest
import torch

import subband.wavelets as sw
from tests.tolerances import assert_close


def test_compile_functions_and_modules():
    x = torch.randn(2, 3, 32, 32)

    def roundtrip(t):
        return sw.waverec2(sw.wavedec2(t, "db2", mode="symmetric", level=2), "db2", mode="symmetric")

    torch.testing.assert_close(torch.compile(roundtrip)(x), roundtrip(x))
    m = sw.DWT2d("haar", level=2, mode="periodization")
    out, ref = torch.compile(m)(x), m(x)
    torch.testing.assert_close(out[0], ref[0])
    torch.testing.assert_close(out[1][2], ref[1][2])
    # gradients through the compiled (fused) form equal the eager ones
    xe, xc = x.clone().requires_grad_(), x.clone().requires_grad_()
    (roundtrip(xe) * x).sum().backward()
    (torch.compile(roundtrip)(xc) * x).sum().backward()
    torch.testing.assert_close(xc.grad, xe.grad)


@pytest.mark.parametrize("mode", sw.MODES)
def test_compiled_forward_equals_eager_in_every_mode(mode):
    """Odd and even sizes; zero mode pads differently when compiled (an explicit padded copy)."""
    x = torch.randn(2, 17, 14)
    fwd = lambda t: sw.wavedec2(t, "db2", mode=mode, level=2)  # noqa: E731
    got, want = torch.compile(fwd)(x), fwd(x)
    # the project's float32 tolerance: smooth mode's extrapolation grows coefficients to a few
    # hundred, where float32 rounding differs by more than torch's default atol of 1e-5
    assert_close(got[0], want[0])
    for g, w in zip(got[1:], want[1:]):
        for gb, wb in zip(g, w):
            assert_close(gb, wb)


def test_stencil_forms_equal_the_convolutions():
    # the formulation torch.compile traces gives what the eager convolutions give, in 1, 2 and 3-D
    from subband.wavelets import _core

    torch.manual_seed(0)
    for name in ("haar", "db3", "bior2.4"):
        w = sw.as_wavelet(name)
        fa, fr = w.analysis(torch.float64, "cpu"), w.synthesis(torch.float64, "cpu")
        for size in ((20,), (14, 18), (10, 12, 8)):
            x = torch.randn((3,) + tuple(s + w.dec_len - 2 for s in size), dtype=torch.float64)
            k = len(size)
            torch.testing.assert_close(_core._down_stencil(x, fa), _core._down_raw(x, _core.down_kernel(fa, k)))
            c = torch.randn((3, 2**k) + tuple(s // 2 + w.dec_len for s in size), dtype=torch.float64)
            torch.testing.assert_close(_core._up_stencil(c, fr), _core._up_raw(c, _core.up_kernel(fr, k)))


class _Approx(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sw.dwt2(x, "sym5")[0]


def test_filters_first_built_inside_an_export_trace_do_not_leak_into_eager():
    """Named wavelets are shared; one first built in a ``torch.export`` trace holds fake tensors
    that must not be kept (MobileMamba's ONNX export once left its Haar filters fake)."""
    from subband.wavelets import _filters

    _filters._NAMED.pop("sym5", None)
    torch.export.export(_Approx(), (torch.randn(1, 1, 16, 16),), strict=False)
    assert type(_Approx()(torch.randn(1, 1, 16, 16))) is torch.Tensor


def test_compiled_code_does_not_read_the_padding_plan_cache(monkeypatch):
    """Plans are built while tracing: dynamo walks a dict it reads (hundreds of cached plans of
    long index lists made compiling take minutes and gigabytes), so a poisoned cache must not
    change the compiled result."""
    from subband.wavelets import _pad

    class Poisoned(dict):
        def get(self, key, default=None):  # every plan, its source samples reversed
            idx, *rest = _pad._make_plan(*key)
            return (idx[::-1], *rest)

    x = torch.randn(2, 13, 10)
    fwd = lambda t: sw.wavedec2(t, "db2", mode="reflect", level=1)  # noqa: E731
    want = fwd(x)
    monkeypatch.setattr(_pad, "_PLANS", Poisoned())
    got = torch.compile(fwd)(x)
    assert_close(got[0], want[0])
    for g, w in zip(got[1], want[1]):
        assert_close(g, w)
