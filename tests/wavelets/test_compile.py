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


_FLIPPED = sw.Wavelet(([2**-0.5] * 2, [2**-0.5, -(2**-0.5)], [2**-0.5] * 2, [-(2**-0.5), 2**-0.5]))  # h = -1


def _spy_haar(monkeypatch) -> list[str]:
    """Record the Haar passes called (:mod:`._haar`'s one-level passes, the C library's calls with
    their number of levels)."""
    from subband.wavelets import _haar, _native

    calls: list[str] = []

    def spy(module, name):
        f = getattr(module, name)
        return lambda *a: calls.append(name if name in ("analysis", "synthesis") else f"{name}/{a[-1]}") or f(*a)

    for name in ("analysis", "synthesis"):
        monkeypatch.setattr(_haar, name, spy(_haar, name))
    if _native.library() is not None:
        monkeypatch.setattr(_native, "wavedec", spy(_native, "wavedec"))
        monkeypatch.setattr(_native, "waverec", lambda levels, h, f=_native.waverec: calls.append(
            f"waverec/{len(levels)}") or f(levels, h))  # fmt: skip
    return calls


@pytest.mark.parametrize("wavelet", ["haar", _FLIPPED], ids=["haar", "flipped"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_compiled_haar_runs_the_eager_passes(monkeypatch, wavelet, k):
    """Compiled, Haar runs the passes eager code runs (as operators: the stencil's fused loops are
    slower), odd sizes after padding; values and gradients are the eager ones, in 1, 2 and 3-D, for
    both signs of the high-pass, at two levels and in three modes."""
    calls = _spy_haar(monkeypatch)
    axes = tuple(range(-k, 0))
    for size, mode in ((8, "zero"), (8, "periodization"), (7, "symmetric")):

        def roundtrip(t, mode=mode):
            c = sw.wavedecn(t, wavelet, mode=mode, level=2, axes=axes)
            return sw.waverecn(c, wavelet, mode=mode, axes=axes), c

        x = torch.randn((2,) + (size + 1,) * (k - 1) + (size,), dtype=torch.float64)
        xe, xc = x.clone().requires_grad_(), x.clone().requires_grad_()
        calls.clear()
        ye, ce = roundtrip(xe)
        eager_forward = sorted(calls)
        weight = torch.randn_like(ye)  # odd sizes come back one sample longer, as in PyWavelets
        calls.clear()
        (ye * weight).sum().backward()
        eager_backward = sorted(calls)
        assert eager_forward and eager_backward
        calls.clear()
        torch._dynamo.reset()
        yc, cc = torch.compile(roundtrip, fullgraph=True)(xc)
        assert sorted(calls) == eager_forward
        calls.clear()
        (yc * weight).sum().backward()  # each pass' gradient is the other
        assert sorted(calls) == eager_backward
        assert_close(yc, ye)
        assert_close(cc[0], ce[0])
        for key in ce[1]:
            assert_close(cc[1][key], ce[1][key])
        assert_close(xc.grad, xe.grad)


def test_compiled_2d_haar_runs_all_levels_in_one_call(monkeypatch):
    """Compiled, the 2-D Haar transform of sizes divisible by 2**level runs every level in one call
    of the C library each way, as eagerly, and gives the eager values and gradients."""
    from subband.wavelets import _native

    if _native.library() is None:
        pytest.skip(f"the C library is not built: {_native.status()}")
    calls = _spy_haar(monkeypatch)

    def roundtrip(t):
        c = sw.wavedec2(t, "haar", mode="zero", level=3)
        return sw.waverec2(c, "haar", mode="zero") * c[0].mean()

    x = torch.randn(2, 3, 16, 24, dtype=torch.float64)
    xe, xc = x.clone().requires_grad_(), x.clone().requires_grad_()
    roundtrip(xe).square().sum().backward()
    torch._dynamo.reset()
    calls.clear()
    yc = torch.compile(roundtrip, fullgraph=True)(xc)
    assert calls == ["wavedec/3", "waverec/3"]
    calls.clear()
    yc.square().sum().backward()  # each call's gradient is the other
    assert sorted(calls) == ["wavedec/3", "waverec/3"]
    assert_close(yc, roundtrip(x))
    assert_close(xc.grad, xe.grad)


def test_a_haar_wavelet_first_built_while_compiling_keeps_its_eager_passes():
    """A named wavelet built inside a trace is kept and shared; it must still know it is Haar, or
    eager calls after the compiled one lose the Haar passes (5x slower)."""
    from subband.wavelets import _filters

    _filters._NAMED.pop("haar", None)
    x = torch.randn(2, 8, 8)
    torch.compile(lambda t: sw.dwt2(t, "haar"))(x)
    assert sw.as_wavelet("haar").haar_sign == 1


def test_exported_haar_holds_only_pytorch_operators():
    """``torch.export`` traces the stencil: ONNX and other consumers know only PyTorch's operators."""
    m = sw.DWT2d("haar", level=1)
    ep = torch.export.export(m, (torch.randn(1, 2, 8, 8),), strict=False)
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert not any("subband" in t for t in targets), targets


def test_haar_operators_pass_torch_library_checks():
    """Schema and fake (shape-only) implementations of the two operators compiled code calls."""
    from subband.wavelets import _haar

    checks = ("test_schema", "test_faketensor")
    for k, h in ((1, 1), (2, -1), (3, 1)):
        x = torch.randn((2,) + (4,) * (k - 1) + (6,))
        torch.library.opcheck(_haar._analysis_op, (x, h), test_utils=checks)
        torch.library.opcheck(_haar._synthesis_op, (list(_haar.down(x, h)), h), test_utils=checks)


def test_fused_haar_operators_pass_torch_library_checks():
    """Every check of the two operators of the fused 2-D transform, autograd's included."""
    from subband.wavelets import _haar, _native

    if _native.library() is None:
        pytest.skip(f"the C library is not built: {_native.status()}")
    for h, levels in ((1, 1), (-1, 3)):
        x = torch.randn(2, 3, 8, 16, dtype=torch.float64, requires_grad=True)
        torch.library.opcheck(_haar._wavedec2_op, (x, h, levels))
        bands = [b.detach().requires_grad_() for b in _haar.wavedec2(x.detach(), h, levels)]
        torch.library.opcheck(_haar._waverec2_op, (bands, h))
