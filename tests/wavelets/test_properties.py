"""Identities and behaviour: perfect reconstruction, a hand-worked Haar example, gradients,
NaN propagation, modules against functions, and clear errors on bad input."""

import itertools
import math

import numpy as np
import pytest
import pywt
import torch

import subband.wavelets as sw
from tests.tolerances import assert_close

pytestmark = pytest.mark.filterwarnings("ignore:Level value of .* is too high")


def test_haar_by_hand():
    # x = [1, 2, 3, 4]: cA = (x0 + x1, x2 + x3) / sqrt2, cD = (x0 - x1, x2 - x3) / sqrt2
    s = 1 / math.sqrt(2)
    cA, cD = sw.dwt(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64), "haar")
    assert_close(cA, [3 * s, 7 * s])
    assert_close(cD, [-s, -s])
    # 2-D on [[1, 2], [3, 4]]: cA = 10/2, cH (detail down the rows) = (1+2-3-4)/2, cV = (1-2+3-4)/2, cD = (1-2-3+4)/2
    cA, (cH, cV, cD) = sw.dwt2(torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64), "haar")
    assert_close(cA, [[5.0]])
    assert_close(cH, [[-2.0]])
    assert_close(cV, [[-1.0]])
    assert_close(cD, [[0.0]])


@pytest.mark.parametrize("mode", sw.MODES)
@pytest.mark.parametrize("wavelet", ["haar", "db4", "sym6", "bior4.4", "coif3"])
def test_perfect_reconstruction(mode, wavelet):
    x = torch.randn(2, 3, 45, 38, dtype=torch.float64)
    y = sw.waverec2(sw.wavedec2(x, wavelet, mode=mode, level=2), wavelet, mode=mode)
    assert_close(y[..., :45, :38], x)
    v = torch.randn(2, 11, 12, 13, dtype=torch.float64)
    y = sw.waverecn(sw.wavedecn(v, wavelet, mode=mode, level=1, axes=(1, 2, 3)), wavelet, mode=mode, axes=(1, 2, 3))
    assert_close(y[:, :11, :12, :13], v)


def test_orthogonal_periodization_preserves_energy():
    x = torch.randn(4, 64, 64, dtype=torch.float64)
    c = sw.wavedec2(x, "db4", mode="periodization", level=3)
    energy = c[0].pow(2).sum() + sum(d.pow(2).sum() for level in c[1:] for d in level)
    assert_close(energy, x.pow(2).sum())


@pytest.mark.parametrize("shape", [(9, 10), (10, 12)])
@pytest.mark.parametrize("mode", sw.MODES)
def test_gradcheck_forward_and_inverse(mode, shape):
    x = torch.randn(2, *shape, dtype=torch.float64, requires_grad=True)

    def fwd(t):
        c = sw.wavedec2(t, "db2", mode=mode, level=2)
        return (c[0], *c[1], *c[2])

    assert torch.autograd.gradcheck(fwd, (x,))
    coeffs = [t.detach().requires_grad_() for t in fwd(x)]

    def inv(a, h2, v2, d2, h1, v1, d1):
        return sw.waverec2([a, (h2, v2, d2), (h1, v1, d1)], "db2", mode=mode)

    assert torch.autograd.gradcheck(inv, tuple(coeffs))


@pytest.mark.parametrize("mode", sw.MODES)
def test_extension_backward_is_its_adjoint(mode):
    # pad widths longer than the signal; the backward (a fold of the extensions back onto the body)
    # satisfies <pad(x), y> == <x, pad^T(y)> and is itself differentiable
    x = torch.randn(4, 6, 4, dtype=torch.float64, requires_grad=True)
    y = torch.randn(4, 6 + 13, 4, dtype=torch.float64)
    padded = sw.pad(x, ((0, 0), (6, 7), (0, 0)), mode)
    (fold,) = torch.autograd.grad(padded, x, y, create_graph=True)
    assert_close((padded * y).sum(), (x * fold).sum())
    assert torch.autograd.gradgradcheck(lambda t: sw.pad(t, ((0, 0), (6, 7), (0, 0)), mode), (x,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_two_tap_2d_paths_agree_with_the_convolution(dtype):
    """The 2-D multiply-adds of two-tap filters against the stride-2 convolution, and
    their synthesis against the transposed one, for Haar in both sign conventions and for a pair
    with no symmetry; synthesis reads channel-first and channels-last bands alike."""
    from subband.wavelets import _core

    a = 2**-0.5
    x = torch.randn(3, 8, 10, dtype=dtype)
    c = torch.randn(3, 4, 4, 5, dtype=dtype)
    for f in ([[a, a], [-a, a]], [[a, a], [a, -a]], [[0.3, 0.9], [0.5, -0.2]]):
        f = torch.tensor(f, dtype=dtype)
        want = _core._down_raw(x, _core.down_kernel(f, 2))
        assert_close(_core._down2_pairs(x, f), want)
        want_up = _core._up_raw(c, _core.up_kernel(f, 2))
        assert_close(_core._up2_pairs(c, f), want_up)
        assert_close(_core._up2_pairs(c.contiguous(memory_format=torch.channels_last), f), want_up)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k, native", [(1, False), (2, False), (2, True), (3, False)])
def test_haar_passes_agree_with_the_convolution(k, native, dtype, monkeypatch):
    """The Haar bank's sums, differences and complex products (:mod:`._haar`) against the stride-2
    convolution and its transpose, in 1-D, 2-D and 3-D, for both signs of the high-pass: the
    synthesis reads the analysis' interleaved bands as pairs (no copy), and separate, strided,
    broadcast or odd-offset bands alike. In 2-D also the C library (:mod:`._native`), whose bands
    are band-major."""
    from subband.wavelets import _core, _haar, _native

    if native and _native.library() is None:
        pytest.skip(f"the C library is {_native.status()}")
    if not native:
        monkeypatch.setattr(_native, "usable", lambda *ts: False)

    s = 2**-0.5
    shape = {1: (3, 10), 2: (3, 8, 10), 3: (2, 4, 6, 8)}[k]
    x = torch.randn(shape, dtype=dtype)
    for h in (1, -1):
        f = torch.tensor([[s, s], [h * s, -h * s]], dtype=dtype)
        want = _core._down_raw(x, _core.down_kernel(f, k))  # (B, 2**k, *n)
        bands = _haar.down(x, h)
        assert_close(torch.stack(bands, 1), want)
        if native:  # views of one band-major tensor
            step = bands[0][0].numel() * bands[0].itemsize
            assert all(b.data_ptr() - bands[0].data_ptr() == i * step for i, b in enumerate(bands))
        else:
            first = 1 if h > 0 else 0  # the band of a pair in slot 0
            pair = _haar.interleaved(bands[first], bands[1 - first])
            assert pair.data_ptr() == min(b.data_ptr() for b in bands[:2])  # a view, no copy
        up = _core.up_kernel(f, k)
        assert_close(_haar.up(bands, h), _core._up_raw(want, up))
        assert_close(_haar.up(bands, h), x)  # orthonormal: the inverse
        c = torch.randn(want.shape, dtype=dtype)
        assert_close(_haar.up(c.unbind(1), h), _core._up_raw(c, up))
        strided = [torch.stack((b, -b), -1)[..., 0] for b in c.unbind(1)]  # last stride 2, not pairs
        assert_close(_haar.up(strided, h), _core._up_raw(c, up))
        odd = torch.randn(c.shape[0], c[0].numel() + 1, dtype=dtype)[:, 1:].view(c.shape).unbind(1)  # odd offsets
        assert_close(_haar.up(odd, h), _core._up_raw(torch.stack(odd, 1), up))
        ones = [torch.ones((), dtype=dtype).expand(b.shape) for b in bands]  # the gradient of a sum
        assert_close(_haar.up(ones, h), _core._up_raw(torch.ones_like(want), up))
        y = torch.randn(x.shape[0], x[0].numel() + 1, dtype=dtype)[:, 1:].view(x.shape)  # odd offset in
        assert_close(torch.stack(_haar.down(y, h), 1), _core._down_raw(y, _core.down_kernel(f, k)))
        y = torch.randn(x.numel() + 1, dtype=dtype)[1:].view(x.shape)  # contiguous, odd offset
        assert_close(torch.stack(_haar.down(y, h), 1), _core._down_raw(y, _core.down_kernel(f, k)))
        odd = torch.randn(want.numel() + 1, dtype=dtype)[1:].view(want.shape)  # contiguous, odd offset
        assert_close(_haar.up(odd.unbind(1), h), _core._up_raw(odd, up))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("flen", [4, 6, 8, 14])
def test_paths_for_longer_filters_agree_with_the_convolution(flen, dtype):
    """Both 2-D paths for filters longer than two (row and column convolutions; flat multiply-add
    passes on phase-split memory, with the outputs that ran into the next row cropped) and the 1-D
    and 3-D flat passes against the stride-2 convolution of the zero-padded input and, for the synthesis,
    the transposed convolution; arbitrary filters (no symmetry), with and without zero padding,
    bands contiguous or strided."""
    from subband.wavelets import _core

    f = torch.randn(2, flen, dtype=dtype) / flen**0.5  # about unit norm, as a bank's filters are (in
    # float32, 3-D outputs of unscaled 14-tap filters reach hundreds and round past the tolerance)
    L = flen // 2
    x = torch.randn(3, 30, 28, dtype=dtype)
    c = torch.randn(3, 4, 9, 8, dtype=dtype)
    for p in (0, 1, L - 1):
        want = _core._down_raw(_core._zero_pad(x.unsqueeze(1), 2 * p).squeeze(1), _core.down_kernel(f, 2))
        assert_close(_core._down2_flat(x, f, 2 * p), want)
        assert_close(_core._down2_conv(x, f, p), want)
        want_up = _core._up_raw(_core._zero_pad(c, p), _core.up_kernel(f, 2))
        assert_close(_core._up2_flat(c.unbind(1), f, p), want_up)  # strided bands
        assert_close(_core._up2_flat([b.contiguous() for b in c.unbind(1)], f, p), want_up)
        assert_close(_core._up2_conv(c, f, p), want_up)
    # 1-D: the flat passes against conv1d and its transpose
    x1, c1 = torch.randn(3, 30, dtype=dtype), torch.randn(3, 2, 11, dtype=dtype)
    for p in (0, 1, L - 1):
        want = _core._down_raw(_core._zero_pad(x1.unsqueeze(1), 2 * p).squeeze(1), _core.down_kernel(f, 1))
        assert_close(_core._down1_flat(x1, f, p), want)
        assert_close(_core._up1_flat(c1.unbind(1), f, p), _core._up_raw(_core._zero_pad(c1, p), _core.up_kernel(f, 1)))
    # 3-D: the 2-D passes and the taps along depth against conv3d and its transpose
    x3, c3 = torch.randn(2, 2 * L + 2, 2 * L + 4, 2 * L, dtype=dtype), torch.randn(2, 8, L + 1, L + 2, L, dtype=dtype)
    for p in (0, L - 1):
        want = _core._down_raw(_core._zero_pad(x3.unsqueeze(1), 2 * p).squeeze(1), _core.down_kernel(f, 3))
        assert_close(torch.stack(_core._down3_flat(x3, f, p), 1), want)
        assert_close(_core._up3_flat(c3.unbind(1), f, p), _core._up_raw(_core._zero_pad(c3, p), _core.up_kernel(f, 3)))
    # the bands of one analysis (cropped views of one buffer) feed the synthesis
    bands = _core._down2_flat(x, f, 0).unbind(1)
    assert_close(_core._up2_flat(bands, f, 0), _core._up_raw(torch.stack(bands, 1), _core.up_kernel(f, 2)))


@pytest.mark.parametrize("path", ["c", "conv", "flat", "lattice"])
def test_every_path_matches_pywavelets_and_gradchecks(path, monkeypatch, request):
    """The choice between the 1-D, 2-D and 3-D paths for longer filters depends on the batch size
    and the bank (and in 2-D on CPU, the C library takes them all where it is built); force each
    and check the transforms against PyWavelets in every mode, and their gradients."""
    from subband.wavelets import _core, _native

    if path == "c" and _native.library() is None:
        pytest.skip(f"the C library is {_native.status()}")
    if path != "c":
        request.getfixturevalue("torch_passes")

    monkeypatch.setattr(_core, "_flat_2d", lambda *args: path != "conv")
    monkeypatch.setattr(_core, "_flat_1d", lambda *args: path != "conv")
    monkeypatch.setattr(_core, "_flat_3d", lambda *args: path != "conv")
    lattice_of = _core._lattice_of  # forced for any size
    monkeypatch.setattr(
        _core, "_lattice_of", lambda t, n, f, up: lattice_of(t, 1 << 30, f, up) if path == "lattice" else None
    )
    x = np.random.default_rng(0).standard_normal((2, 13, 16))
    for mode in sw.MODES:
        got = sw.wavedec2(torch.from_numpy(x), "db3", mode=mode, level=2)
        want = pywt.wavedec2(x, "db3", mode=mode, level=2)
        for g, w in zip([got[0], *[d for lv in got[1:] for d in lv]], [want[0], *[d for lv in want[1:] for d in lv]]):
            assert_close(g, torch.from_numpy(w))
        assert_close(sw.waverec2(got, "db3", mode=mode), torch.from_numpy(pywt.waverec2(want, "db3", mode=mode)))
        got = sw.wavedec(torch.from_numpy(x), "db3", mode=mode, level=2)
        for g, w in zip(got, pywt.wavedec(x, "db3", mode=mode, level=2)):
            assert_close(g, torch.from_numpy(w))
        assert_close(sw.waverec(got, "db3", mode=mode), torch.from_numpy(x))
        v = x[:, :12, :].reshape(2, 8, 6, 4)
        got = sw.wavedecn(torch.from_numpy(v), "db3", mode=mode, level=1, axes=(1, 2, 3))
        want = pywt.wavedecn(v, "db3", mode=mode, level=1, axes=(1, 2, 3))
        assert_close(got[0], torch.from_numpy(want[0]))
        for key in want[1]:
            assert_close(got[1][key], torch.from_numpy(want[1][key]))
        assert_close(sw.waverecn(got, "db3", mode=mode, axes=(1, 2, 3)), torch.from_numpy(v))
        # even sizes, where the 2-D flat passes lay the extension down as a border (here wider than
        # the 4-row image: 2 x 4 samples for db3); periodization's extension of F/2-1 is odd for db2
        # and db4 (wider than the image for bior3.5)
        for name, e in itertools.product(("db3", "db2", "db4", "bior3.5"), (x[:, :12, :], x[:, :4, :6])):
            got = sw.wavedec2(torch.from_numpy(e), name, mode=mode, level=1)
            want = pywt.wavedec2(e, name, mode=mode, level=1)
            for g, w in zip([got[0], *got[1]], [want[0], *want[1]]):
                assert_close(g, torch.from_numpy(w))
            assert_close(sw.waverec2(got, name, mode=mode), torch.from_numpy(e))
    t = torch.randn(1, 10, 12, dtype=torch.float64, requires_grad=True)
    for (dec, rec), mode in itertools.product(
        ((sw.wavedec2, sw.waverec2), (sw.wavedec, sw.waverec)), ("symmetric", "periodization")
    ):
        fwd_inv = lambda v, dec=dec, rec=rec, m=mode: rec(dec(v, "db2", mode=m, level=1), "db2", mode=m)  # noqa: E731
        assert torch.autograd.gradcheck(fwd_inv, (t,))
        assert torch.autograd.gradgradcheck(fwd_inv, (t,))
    v = torch.randn(1, 6, 4, 8, dtype=torch.float64, requires_grad=True)

    def fwd_inv_3d(v):
        c = sw.wavedecn(v, "db2", mode="symmetric", level=1, axes=(1, 2, 3))
        return sw.waverecn(c, "db2", mode="symmetric", axes=(1, 2, 3))

    assert torch.autograd.gradcheck(fwd_inv_3d, (v,))


ORTHOGONAL = [f"db{i}" for i in range(2, 11)] + [f"sym{i}" for i in range(2, 11)] + ["coif1", "coif2", "coif3"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lattice_of_every_orthogonal_bank_agrees_with_the_convolution(dtype):
    """Every orthogonal bank of up to 20 taps factors into a lattice in float32 (in float64 the
    Daubechies and coiflet banks do; PyWavelets' symlet coefficients are rounded short of float64
    precision, so those keep the direct passes), biorthogonal banks never; the lattice's analysis
    and synthesis, in 1-D, 2-D and 3-D, match the stride-2 and the transposed convolution, with and
    without zero padding."""
    from subband.wavelets import _core, _lattice

    for name in ORTHOGONAL + ["bior2.2", "rbio3.5"]:
        w = sw.Wavelet(name)
        f, g = w.analysis(dtype, "cpu"), w.synthesis(dtype, "cpu")
        down = _lattice.lattice(f.view(2, -1, 2).transpose(0, 1))
        up = _lattice.lattice(_core.synthesis_taps(g).permute(2, 0, 1))
        if name.startswith("bior") or name.startswith("rbio"):
            assert down is None and up is None, name
            continue
        if name.startswith("sym") and dtype == torch.float64 and (down is None or up is None):
            continue
        assert down is not None and up is not None, name
        assert np.allclose(_lattice.polyphase(down), f.view(2, -1, 2).transpose(0, 1).double().numpy())
        L = f.shape[1] // 2
        x = torch.randn(3, 2 * L + 10, 2 * L + 6, dtype=dtype)
        c = torch.randn(3, 4, L + 3, L + 5, dtype=dtype)
        x1, c1 = x[:, 0], c[:, :2, 0]
        x3, c3 = (
            torch.randn(2, 2 * L + 2, 2 * L + 4, 2 * L, dtype=dtype),
            torch.randn(2, 8, L + 1, L + 2, L, dtype=dtype),
        )
        for p in (0, L - 1):
            want = _core._down_raw(_core._zero_pad(x.unsqueeze(1), 2 * p).squeeze(1), _core.down_kernel(f, 2))
            assert_close(torch.stack(_lattice.down2(x, down, 2 * p), 1), want)
            want_up = _core._up_raw(_core._zero_pad(c, p), _core.up_kernel(g, 2))
            assert_close(_lattice.up2(c.unbind(1), up, p), want_up)
            want = _core._down_raw(_core._zero_pad(x1.unsqueeze(1), 2 * p).squeeze(1), _core.down_kernel(f, 1))
            assert_close(torch.stack(_lattice.down1(x1, down, p), 1), want)
            assert_close(
                _lattice.up1(c1.unbind(1), up, p), _core._up_raw(_core._zero_pad(c1, p), _core.up_kernel(g, 1))
            )
            want = _core._down_raw(_core._zero_pad(x3.unsqueeze(1), 2 * p).squeeze(1), _core.down_kernel(f, 3))
            assert_close(torch.stack(_lattice.down3(x3, down, p), 1), want)
            want_up = _core._up_raw(_core._zero_pad(c3, p), _core.up_kernel(g, 3))
            assert_close(_lattice.up3(c3.unbind(1), up, p), want_up)


@pytest.mark.parametrize("wavelet", ["db4", "coif2"])
def test_lattice_synthesis_works_in_five_band_slots(wavelet, torch_passes):
    """On a batch large enough for the lattice, the 2-D synthesis allocates five band-sized slots
    (the four bands and a spare) beside its output: its peak is under 2.5x the output's size (a
    separate buffer for the row stage's outputs took it past 3x)."""
    from subband.models._profile import peak_memory

    x = torch.randn(8, 128, 128)
    coeffs = sw.dwt2(x, wavelet, mode="zero")
    assert peak_memory(lambda: sw.idwt2(coeffs, wavelet, mode="zero")) < 2.5 * x.nbytes
    assert_close(sw.idwt2(coeffs, wavelet, mode="zero"), x)


def test_lattice_analysis_frees_its_spare_region_where_the_bands_leave_it(torch_passes):
    """db4's lattice stages end with the bands back in the two phase regions (coif2's do not), so
    its 2-D bands hold only those: the input's size plus the zero padding, not 1.5x that."""
    x = torch.randn(8, 128, 128)
    cA, details = sw.dwt2(x, "db4", mode="zero")
    held = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in (cA, *details)}
    padded = 8 * (128 + 12) ** 2 * 4  # zero mode pads each side by 6 (2p, p = L - 1 = 3)
    assert sum(held.values()) < 1.1 * padded


@pytest.mark.parametrize("wavelet, bound", [("db4", 1.8), ("bior3.5", 2.5)])
def test_periodization_analysis_extends_as_it_splits_the_phases(wavelet, bound, torch_passes):
    """Periodization's extension of F/2-1 samples (odd for these banks) is laid down as a border
    while the 2-D flat passes split the phases (lattice for db4, filter taps for bior3.5), with no
    padded copy of the input first: the peak stays under ``bound`` times the input (2.75x and 3.49x
    with the copy)."""
    from subband.models._profile import peak_memory

    x = torch.randn(16, 128, 128)
    assert peak_memory(lambda: sw.dwt2(x, wavelet, mode="periodization")) < bound * x.nbytes
    got, want = sw.dwt2(x, wavelet, mode="periodization"), pywt.dwt2(x.numpy(), wavelet, mode="periodization")
    for g, w in zip([got[0], *got[1]], [want[0], *want[1]]):
        assert_close(g, torch.from_numpy(w))


@pytest.mark.parametrize("wavelet", ["db4", "bior3.5"])
def test_the_c_library_holds_the_extended_input_and_the_bands(wavelet):
    """In the C library the analysis reads a copy of the input with its extension (for
    periodization, F/2-1 samples each side) and writes the four bands: its peak is those two."""
    from subband.models._profile import peak_memory
    from subband.wavelets import _native

    if _native.library() is None:
        pytest.skip(f"the C library is {_native.status()}")
    x = torch.randn(16, 128, 128)
    F = sw.Wavelet(wavelet).dec_len
    q = F // 2 - 1
    m = (128 + 2 * q - F) // 2 + 1
    held = 16 * ((128 + 2 * q) ** 2 + 4 * m * m) * 4
    assert peak_memory(lambda: sw.dwt2(x, wavelet, mode="periodization")) < 1.01 * held
    got, want = sw.dwt2(x, wavelet, mode="periodization"), pywt.dwt2(x.numpy(), wavelet, mode="periodization")
    for g, w in zip([got[0], *got[1]], [want[0], *want[1]]):
        assert_close(g, torch.from_numpy(w))


def test_haar_sign_names_the_orthonormal_haar_bank_only():
    s = 2**-0.5
    assert [sw.Wavelet(n).haar_sign for n in ("haar", "db1", "bior1.1", "rbio1.1", "db2")] == [1, 1, 1, 1, 0]
    assert sw.Wavelet(([s, s], [s, -s], [s, s], [-s, s])).haar_sign == -1  # the other sign convention
    assert sw.Wavelet(([0.7071, 0.7071], [-s, s], [s, s], [s, -s])).haar_sign == 0  # rounded: the general path
    # the sign-flipped bank takes the Haar path; its coefficients are PyWavelets' with the bands
    # that took one high-pass filter negated
    x = torch.randn(2, 8, 6, dtype=torch.float64)
    flipped = sw.Wavelet(([s, s], [s, -s], [s, s], [-s, s]))
    got, want = sw.dwt2(x, flipped), sw.dwt2(x, "haar")
    for g, w, sign in zip([got[0], *got[1]], [want[0], *want[1]], (1, -1, -1, 1)):
        assert_close(g, sign * w)
    assert_close(sw.idwt2(got, flipped), x)


@pytest.mark.parametrize(
    "wavelet", ["haar", sw.Wavelet(([2**-0.5] * 2, [2**-0.5, -(2**-0.5)], [2**-0.5] * 2, [-(2**-0.5), 2**-0.5]))]
)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_gradcheck_haar_both_sign_conventions(wavelet, k):
    """Even sizes: the Haar bank's sums, differences and complex products, whose backward is its
    own adjoint, in 1-D, 2-D and 3-D."""
    x = torch.randn({1: (2, 8), 2: (2, 8, 12), 3: (1, 4, 4, 6)}[k], dtype=torch.float64, requires_grad=True)
    axes = tuple(range(1, k + 1))

    def fwd_inv(t):
        c = sw.wavedecn(t, wavelet, mode="periodization", level=2 if k < 3 else 1, axes=axes)
        return (c[0], *c[1].values(), sw.waverecn(c, wavelet, mode="periodization", axes=axes) * t)

    assert torch.autograd.gradcheck(fwd_inv, (x,))
    assert torch.autograd.gradgradcheck(fwd_inv, (x,))


@pytest.mark.parametrize("mode", ["periodization", "periodic", "reflect", "constant", "symmetric"])
def test_one_pass_extension_and_its_fold_agree_with_the_per_axis_ones(mode):
    """The modes ``F.pad`` has (and symmetric, from its reflection) extend all axes in one pass
    (``pad_axes``), with the per-axis fold as backward: values, gradients and second derivatives
    match the per-axis extension."""
    from subband.wavelets._pad import _PadAxes, pad_axes, pad_axis

    x = torch.randn(2, 7, 6, dtype=torch.float64, requires_grad=True)
    widths = [(3, 2), (2, 3)]
    want = pad_axis(pad_axis(x, *widths[0], mode, 1), *widths[1], mode, 2)
    assert_close(pad_axes(x, widths, mode), want)
    assert torch.autograd.gradcheck(lambda t: _PadAxes.apply(t, widths, mode), (x,))
    assert torch.autograd.gradgradcheck(lambda t: _PadAxes.apply(t, widths, mode), (x,))


def test_gradcheck_1d_3d_and_stationary():
    x = torch.randn(3, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: tuple(sw.wavedec(t, "sym3", mode="reflect", level=1)), (x,))
    assert torch.autograd.gradcheck(lambda t: sw.iswt(sw.swt(t, "db2", level=2), "db2") * t, (x,))
    v = torch.randn(1, 6, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda t: tuple(sw.dwtn(t, "db2", mode="antisymmetric", axes=(1, 2, 3)).values()), (v,)
    )


@pytest.mark.parametrize("wavelet", ["db3", "db4", "bior3.5"])
def test_gradcheck_periodization_1d_2d_3d(wavelet):
    """Periodization's backward is the circular transposed convolution (the bands' gradients wrapped
    around, then cropped): for F/2 odd and even, on sizes both above and below the filter length."""
    for shape, dec in (
        ((2, 14), lambda t: sw.wavedec(t, wavelet, mode="periodization", level=1)),
        (
            (1, 12, 6),
            lambda t: [*sw.dwt2(t, wavelet, mode="periodization")[1], sw.dwt2(t, wavelet, mode="periodization")[0]],
        ),
        ((1, 4, 6, 8), lambda t: list(sw.dwtn(t, wavelet, mode="periodization", axes=(1, 2, 3)).values())),
    ):
        x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda t, dec=dec: tuple(dec(t)), (x,))


def test_nan_in_nan_out():
    x = torch.randn(1, 16, 16)
    x[0, 5, 7] = float("nan")
    cA, (cH, cV, cD) = sw.dwt2(x, "db2")
    assert torch.isnan(cA).any() and not torch.isnan(cA).all()
    assert torch.isnan(sw.idwt2((cA, (cH, cV, cD)), "db2")).any()


def test_batch_dims_are_independent():
    x = torch.randn(2, 3, 4, 20, 18, dtype=torch.float64)
    batched = sw.wavedec2(x, "db3", mode="symmetric", level=2)
    single = sw.wavedec2(x[1, 2, 3], "db3", mode="symmetric", level=2)
    assert_close(batched[0][1, 2, 3], single[0])
    assert_close(batched[2][1][1, 2, 3], single[2][1])


@pytest.mark.parametrize(
    "module, inverse, fn, kwargs",
    [
        (sw.DWT1d, sw.IDWT1d, sw.wavedec, dict(level=2, mode="zero")),
        (sw.DWT2d, sw.IDWT2d, sw.wavedec2, dict(level=2, mode="periodization")),
        (sw.DWT3d, sw.IDWT3d, sw.wavedecn, dict(level=1, mode="symmetric", axes=(-3, -2, -1))),
    ],
)
def test_modules_agree_with_functions(module, inverse, fn, kwargs):
    x = torch.randn(2, 3, 16, 16, 16)
    m = module("db2", **kwargs)
    got, ref = m(x), fn(x, "db2", **kwargs)
    flat = lambda c: [t for e in c for t in (e.values() if isinstance(e, dict) else e if isinstance(e, tuple) else [e])]  # noqa: E731
    for g, r in zip(flat(got), flat(ref)):
        assert torch.equal(g, r)
    inv_kwargs = {k: v for k, v in kwargs.items() if k != "level"}
    y = inverse("db2", **inv_kwargs)(got)
    assert_close(y[..., :16, :16, :16], x)
    assert m.state_dict() == {}  # filters are non-persistent buffers
    md = m.double()
    assert md.dec_filters.dtype == torch.float64
    assert flat(md(x.double()))[0].dtype == torch.float64
    for g, r in zip(flat(md(x.double())), flat(fn(x.double(), "db2", **kwargs))):  # exact float64 filters
        assert torch.equal(g, r)


def test_stationary_modules():
    x = torch.randn(2, 16, 16)
    c = sw.SWT2d("sym2", level=2)(x)
    assert_close(sw.ISWT2d("sym2")(c), x)
    c = sw.SWT1d("db1", level=3, trim_approx=True)(x)
    assert len(c) == 4
    assert_close(sw.ISWT1d("db1")(c), x)


def test_wavelet_filters_match_pywt():
    for name in ("db4", "bior3.5", "dmey"):
        w, ref = sw.Wavelet(name), pywt.Wavelet(name)
        for mine, theirs in zip(w.filter_bank, ref.filter_bank):
            assert mine == pytest.approx(list(theirs))


# ------------------------------------------------------------------ errors


def test_unknown_wavelet_lists_families():
    with pytest.raises(ValueError, match="unknown discrete wavelet 'db99'.*db1-db38"):
        sw.dwt(torch.randn(8), "db99")
    with pytest.raises(ValueError, match="continuous wavelet"):
        sw.dwt(torch.randn(8), "morl")


def test_unknown_mode_lists_modes():
    with pytest.raises(ValueError, match="unknown boundary mode 'mirror'.*periodization"):
        sw.dwt2(torch.randn(8, 8), "haar", mode="mirror")
    with pytest.raises(ValueError, match="unknown boundary mode"):
        sw.DWT2d("haar", mode="wrap")


def test_bad_levels():
    x = torch.randn(3, 32)
    with pytest.raises(ValueError, match="level must be >= 0"):
        sw.wavedec(x, "haar", level=-1)
    with pytest.raises(ValueError, match="level 6 is too high.*at most 5"):
        sw.wavedec(x, "haar", level=6)
    with pytest.warns(UserWarning, match="boundary effects"):
        sw.wavedec(x, "db4", level=3)  # pywt warns here too
    with pytest.raises(ValueError, match="too high"):
        sw.swt(x, "haar", level=6)
    with pytest.raises(TypeError, match="level must be an int"):
        sw.wavedec(x, "haar", level=1.5)


def test_non_floating_and_non_tensor_inputs():
    with pytest.raises(TypeError, match="floating-point tensor, got torch.int64.*float"):
        sw.dwt(torch.arange(8), "haar")
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        sw.dwt([1.0, 2.0], "haar")


def test_empty_or_too_small_input():
    with pytest.raises(ValueError, match="empty axis"):
        sw.dwt(torch.randn(3, 0), "haar")
    with pytest.raises(ValueError, match="at least 2 samples"):
        sw.dwt(torch.randn(3, 1), "db2", mode="reflect")
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        sw.dwt(torch.randn(3, 4), "haar", axis=2)
    with pytest.raises(ValueError, match="unique"):
        sw.dwtn(torch.randn(4, 4), "haar", axes=(0, 0))


def test_inverse_with_mismatched_coefficients():
    cA, (cH, cV, cD) = sw.dwt2(torch.randn(16, 16), "db2")
    with pytest.raises(ValueError, match="one shape"):
        sw.idwt2((cA, (cH[:-1], cV, cD)), "db2")
    with pytest.raises(ValueError, match=r"\(cA, \(cH, cV, cD\)\)"):
        sw.idwt2((cA, cH), "db2")
    with pytest.raises(ValueError, match="at least one"):
        sw.idwt(None, None, "haar")
    with pytest.raises(ValueError, match="invalid coefficient keys"):
        sw.idwtn({"ax": cA}, "haar")
    coeffs = sw.wavedec2(torch.randn(32, 32), "haar", level=2)
    coeffs[0] = coeffs[0][:-2]
    with pytest.raises(ValueError, match="does not fit"):
        sw.waverec2(coeffs, "haar")


def test_none_coefficients_are_zeros():
    x = torch.randn(2, 20, dtype=torch.float64)
    cA, cD = sw.dwt(x, "db2")
    assert_close(sw.idwt(cA, None, "db2"), pywt.idwt(cA.numpy(), None, "db2"))
    assert_close(sw.idwt(None, cD, "db2"), pywt.idwt(None, cD.numpy(), "db2"))


def test_odd_custom_filter_is_refused():
    with pytest.raises(ValueError, match="even"):
        sw.Wavelet(([1, 1, 1], [1, 0, -1], [1, 1, 1], [1, 0, -1]))


def test_second_order_gradients_and_learnable_filters():
    x = torch.randn(2, 10, 9, dtype=torch.float64, requires_grad=True)

    def f(t):
        c = sw.wavedec2(t, "db2", mode="symmetric", level=1)
        return sw.waverec2(c, "db2", mode="symmetric").pow(2).sum() + c[1][2].pow(3).sum()

    assert torch.autograd.gradgradcheck(lambda t: f(t), (x,))
    # a custom filter bank whose filters require grad receives gradients
    bank = [torch.tensor(f, dtype=torch.float64) for f in pywt.Wavelet("db2").filter_bank]
    w = sw.Wavelet(bank)
    w.dec_lo.requires_grad_()
    cA, cD = sw.dwt(torch.randn(3, 16, dtype=torch.float64), w)
    cA.sum().backward()
    assert w.dec_lo.grad is not None and w.dec_lo.grad.abs().sum() > 0
