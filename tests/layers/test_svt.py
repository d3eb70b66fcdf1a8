"""SVT's scattering mixer: the Einstein product against numpy, the complex MLP against complex
numpy arithmetic, the mixer against the official forward written out step by step on the
``pytorch_wavelets`` coefficient layout (computed with subband's DTCWT), the layout itself against
``pytorch_wavelets`` where it imports, an identity through the transforms, gradcheck, errors."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from subband.layers import ScatterMixer, complex_einstein_mlp, einstein_mix
from subband.wavelets import dtcwt2, idtcwt2

FILTERS = dict(biort="near_sym_b", qshift="qshift_b")


def _randomise(m: torch.nn.Module, seed: int = 0, scale: float = 0.5) -> None:
    """Weights large enough that every term of the mixer moves the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def test_einstein_mix_matches_numpy_and_block_diagonal_matmul():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 4, 6))
    w = rng.standard_normal((4, 6, 7))
    y = einstein_mix(torch.from_numpy(x), torch.from_numpy(w)).numpy()
    np.testing.assert_allclose(y, np.einsum("...bd,bdk->...bk", x, w), rtol=1e-12, atol=1e-12)
    dense = np.zeros((4 * 6, 4 * 7))
    for b in range(4):
        dense[b * 6 : (b + 1) * 6, b * 7 : (b + 1) * 7] = w[b]
    flat = x.reshape(2, 3, 5, 24) @ dense  # the blocks as one block-diagonal matrix
    np.testing.assert_allclose(y.reshape(2, 3, 5, 28), flat, rtol=1e-12, atol=1e-12)


def test_einstein_mix_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="end in"):
        einstein_mix(torch.randn(2, 4, 5), torch.randn(4, 6, 6))
    with pytest.raises(ValueError, match="blocks, d, k"):
        einstein_mix(torch.randn(2, 4, 6), torch.randn(24, 6))


def test_complex_einstein_mlp_is_complex_arithmetic():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((3, 5, 2, 4)) + 1j * rng.standard_normal((3, 5, 2, 4))
    w1, w2 = rng.standard_normal((2, 2, 4, 4)), rng.standard_normal((2, 2, 4, 3))
    b1, b2 = rng.standard_normal((2, 2, 4)), rng.standard_normal((2, 2, 3))
    c = lambda a: a[0] + 1j * a[1]  # noqa: E731  (real, imaginary) stacked -> complex
    u = np.einsum("...bd,bdk->...bk", z, c(w1)) + c(b1)
    u = np.maximum(u.real, 0) + 1j * np.maximum(u.imag, 0)
    want = np.einsum("...bd,bdk->...bk", u, c(w2)) + c(b2)
    t = torch.from_numpy
    real, imag = complex_einstein_mlp(t(z.real), t(z.imag), t(w1), t(b1), t(w2), t(b2))
    np.testing.assert_allclose(real.numpy() + 1j * imag.numpy(), want, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="real, imaginary"):
        complex_einstein_mlp(t(z.real), t(z.imag), t(w1[0]), t(b1), t(w2), t(b2))


def _official_forward(m: ScatterMixer, x: torch.Tensor) -> torch.Tensor:
    """The official ``SVT_channel_mixing`` / ``SVT_channel_token_mixing`` forward, step by step, on
    ``pytorch_wavelets``' layout: highpass ``(B, C, 6, h, w, 2)``, real and imaginary last. The
    transforms are the mixer's own modules (their filter buffers are float32 constants even in a
    float64 module, as ``pytorch_wavelets``' are), so the comparison is exact in float64."""
    b, c, h, w = x.shape
    if m.token_mixing:
        x1, x = x.chunk(2, 1)
        x1 = m.conv(x1)
    lo, hi = m.xfm(x)
    yh = torch.view_as_real(hi[0])  # (B, C2, 6, h, w, 2)
    lo = lo * m.complex_weight_ll
    t = yh.permute(5, 0, 2, 3, 4, 1).reshape(2, b, 6, *yh.shape[3:5], m.num_blocks, -1)  # (2, B, 6, h, w, nb, d)
    mix = lambda v, wt: torch.einsum("...bd,bdk->...bk", v, wt)  # noqa: E731
    w1, w2, b1, b2 = m.complex_weight_lh_1, m.complex_weight_lh_2, m.complex_weight_lh_b1, m.complex_weight_lh_b2
    r1 = F.relu(mix(t[0], w1[0]) - mix(t[1], w1[1]) + b1[0])
    i1 = F.relu(mix(t[0], w1[1]) + mix(t[1], w1[0]) + b1[1])
    r2 = mix(r1, w2[0]) - mix(i1, w2[1]) + b2[0]
    i2 = mix(r1, w2[1]) + mix(i1, w2[0]) + b2[1]
    yh = torch.stack([r2, i2], -1).reshape(b, 6, *yh.shape[3:5], m.width, 2)  # (B, 6, h, w, C2, 2)
    if m.token_mixing:
        t = yh.permute(5, 0, 4, 1, 2, 3)  # (2, B, C2, 6, h, w)
        w1, w2 = m.complex_weight_lh_1_t, m.complex_weight_lh_2_t
        b1, b2 = m.complex_weight_lh_b1_t, m.complex_weight_lh_b2_t
        r1 = F.relu(mix(t[0], w1[0]) - mix(t[1], w1[1]) + b1[0])
        i1 = F.relu(mix(t[0], w1[1]) + mix(t[1], w1[0]) + b1[1])
        r2 = mix(r1, w2[0]) - mix(i1, w2[1]) + b2[0]
        i2 = mix(r1, w2[1]) + mix(i1, w2[0]) + b2[1]
        yh = torch.stack([r2, i2], -1)  # (B, C2, 6, h, w, 2)
    else:
        yh = yh.permute(0, 4, 1, 2, 3, 5)  # (B, C, 6, h, w, 2)
    y = m.ifm((lo, [torch.view_as_complex(yh.contiguous())]))
    if m.token_mixing:
        y = torch.cat([x1.unsqueeze(2), y.unsqueeze(2)], 2).reshape(b, c, h, w)
    return y


@pytest.mark.parametrize("token_mixing", [False, True])
def test_mixer_equals_official_forward(token_mixing):
    torch.manual_seed(0)
    m = ScatterMixer(16, size=(8, 12), token_mixing=token_mixing).double()
    _randomise(m)
    x = torch.randn(2, 16, 8, 12, dtype=torch.float64)
    y = m(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y, _official_forward(m, x), rtol=1e-10, atol=1e-10)


def test_official_parameter_shapes():
    shapes = {n: tuple(p.shape) for n, p in ScatterMixer(64, 56).named_parameters()}
    assert shapes == {
        "complex_weight_ll": (64, 56, 56),
        "complex_weight_lh_1": (2, 4, 16, 16),
        "complex_weight_lh_2": (2, 4, 16, 16),
        "complex_weight_lh_b1": (2, 4, 16),
        "complex_weight_lh_b2": (2, 4, 16),
    }
    tm = {n: tuple(p.shape) for n, p in ScatterMixer(64, 56, token_mixing=True).named_parameters()}
    assert tm["complex_weight_ll"] == (32, 56, 56) and tm["complex_weight_lh_1"] == (2, 4, 8, 8)
    assert tm["complex_weight_lh_1_t"] == (2, 28, 28, 28) and tm["complex_weight_lh_b2_t"] == (2, 28, 28)
    assert tm["conv.weight"] == (32, 1, 3, 3)


def test_odd_size_is_extended_and_cropped():
    """A 7x9 map: the DTCWT works on 8x10 (last row/column repeated), the gate has that size, and
    the output is cropped back to 7x9."""
    torch.manual_seed(1)
    m = ScatterMixer(8, size=(7, 9)).double()
    assert m.complex_weight_ll.shape == (8, 8, 10)
    _randomise(m)
    x = torch.randn(1, 8, 7, 9, dtype=torch.float64)
    xe = torch.cat([x, x[:, :, -1:]], 2)
    xe = torch.cat([xe, xe[..., -1:]], 3)  # (1, 8, 8, 10)
    torch.testing.assert_close(m(x), _official_forward(m, xe)[..., :7, :9], rtol=1e-10, atol=1e-10)


def test_gate_is_resampled_at_other_sizes():
    torch.manual_seed(2)
    m = ScatterMixer(8, size=16).double()
    _randomise(m)
    x = torch.randn(2, 8, 6, 10, dtype=torch.float64)
    ref = ScatterMixer(8, size=(6, 10)).double()
    ref.load_state_dict({k: v for k, v in m.state_dict().items() if k != "complex_weight_ll"}, strict=False)
    with torch.no_grad():
        gate = F.interpolate(m.complex_weight_ll[None], size=(6, 10), mode="bicubic", antialias=True)[0]
        ref.complex_weight_ll.copy_(gate)
    torch.testing.assert_close(m(x), ref(x), rtol=1e-12, atol=1e-12)
    assert m._gate((16, 16)) is m.complex_weight_ll  # the build size uses the weight itself


def test_identity_through_the_transforms():
    """Gate 1 and a zero second layer: the mixer keeps the lowpass and removes the highpasses, so
    its output plus the highpasses' own reconstruction is the input (linearity of the inverse, and
    perfect reconstruction: exact with the float64 filters of ``dtcwt2``, to float32 precision
    with the float32 filter constants of the modules)."""
    m = ScatterMixer(8, size=(10, 10)).double()
    with torch.no_grad():
        m.complex_weight_ll.fill_(1.0)
        m.complex_weight_lh_2.zero_()
        m.complex_weight_lh_b2.zero_()
    x = torch.randn(2, 8, 10, 10, dtype=torch.float64)
    lo, hi = m.xfm(x)
    high_only = m.ifm((torch.zeros_like(lo), hi))
    torch.testing.assert_close(m(x) + high_only, m.ifm((lo, hi)), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(m(x) + high_only, x, rtol=0, atol=1e-6)
    lo, hi = dtcwt2(x, 1, **FILTERS)
    torch.testing.assert_close(idtcwt2((lo, hi), **FILTERS), x, rtol=0, atol=1e-12)


def test_layout_matches_pytorch_wavelets():
    """What the official code computes with ``pytorch_wavelets`` is ``dtcwt2`` with the highpass as
    ``view_as_real`` (float32 filters there: 1e-6)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ptw = pytest.importorskip("pytorch_wavelets")
    x = torch.randn(2, 3, 12, 16, dtype=torch.float64)
    yl, yh = ptw.DTCWTForward(J=1, **FILTERS).double()(x)
    lo, hi = dtcwt2(x, 1, **FILTERS)
    torch.testing.assert_close(lo, yl, rtol=0, atol=1e-6)
    torch.testing.assert_close(torch.view_as_real(hi[0]), yh[0], rtol=0, atol=1e-6)
    back = ptw.DTCWTInverse(**FILTERS).double()((yl, yh))
    torch.testing.assert_close(idtcwt2((lo, hi), **FILTERS), back, rtol=0, atol=1e-6)


@pytest.mark.parametrize("token_mixing", [False, True])
def test_gradcheck(token_mixing):
    torch.manual_seed(3)
    m = ScatterMixer(4, size=(4, 4), num_blocks=2, token_mixing=token_mixing).double()
    _randomise(m, scale=0.3)
    names = [n for n, _ in m.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in m.parameters()]
    x = torch.randn(1, 4, 4, 4, dtype=torch.float64, requires_grad=True)

    def f(x, *ps):
        return torch.func.functional_call(m, dict(zip(names, ps)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params))


def test_gradcheck_resampled_gate():
    torch.manual_seed(4)
    m = ScatterMixer(2, size=6, num_blocks=2).double()
    w = m.complex_weight_ll.detach().clone().requires_grad_()
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)

    def f(x, w):
        return torch.func.functional_call(m, {"complex_weight_ll": w}, (x,), strict=False)

    assert torch.autograd.gradcheck(f, (x, w))


def test_half_precision_runs_the_transform_in_float32():
    torch.manual_seed(5)
    m = ScatterMixer(8, size=8)
    x = torch.randn(2, 8, 8, 8)
    y = m(x.bfloat16())
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), m(x.bfloat16().float()), rtol=1e-2, atol=1e-2)


def test_errors():
    m = ScatterMixer(8, size=8)
    with pytest.raises(ValueError, match=r"expected \(B, 8, H, W\)"):
        m(torch.randn(2, 4, 8, 8))
    with pytest.raises(ValueError, match=r"expected \(B, 8, H, W\)"):
        m(torch.randn(8, 8, 8))
    with pytest.raises(ValueError, match="token_mixing has weights for a 8x8 map"):
        ScatterMixer(8, size=8, token_mixing=True)(torch.randn(1, 8, 10, 10))
    with pytest.raises(ValueError, match="num_blocks"):
        ScatterMixer(10, num_blocks=4)
    with pytest.raises(ValueError, match="dim must be even"):
        ScatterMixer(9, token_mixing=True)
    with pytest.raises(ValueError, match="size"):
        ScatterMixer(8, size=(0, 4))


def test_reset_parameters_and_repr():
    m = ScatterMixer(64, size=56)
    with torch.no_grad():
        m.complex_weight_ll.fill_(3.0)
    m.reset_parameters()
    assert abs(m.complex_weight_ll.std().item() - 0.02) < 0.001  # normal, std 0.02 (200k samples)
    assert "dim=64, size=(56, 56), num_blocks=4" in repr(m)
