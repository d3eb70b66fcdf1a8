"""PyWavelets is the oracle: same coefficient shapes and values for every discrete wavelet,
every boundary mode, odd and even sizes, every level up to the maximum, any batch shape."""

import numpy as np
import pytest
import pywt
import torch

import subband.wavelets as sw
from tests.tolerances import assert_close

pytestmark = pytest.mark.filterwarnings("ignore:Level value of .* is too high")

MODES = pywt.Modes.modes
ALL_WAVELETS = pywt.wavelist(kind="discrete")
# one or two of each family for the (costlier) 2-D and n-D sweeps
FAMILY_REPS = ["haar", "db2", "db7", "sym5", "coif2", "bior1.3", "bior3.5", "rbio2.6", "dmey"]


def rand(shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def test_every_name_and_mode_is_offered():
    assert set(sw.MODES) == set(MODES)
    assert set(sw.DISCRETE_WAVELETS) == set(ALL_WAVELETS)


@pytest.mark.parametrize("wavelet", ALL_WAVELETS)
def test_dwt_idwt_1d_every_wavelet_and_mode(wavelet, backend):
    for mode in MODES:
        for n in (2, 3, 5, 8, 13, 16, 31):
            x = rand((2, n), seed=n)
            ref = pywt.dwt(x, wavelet, mode)
            got = sw.dwt(torch.from_numpy(x), wavelet, mode=mode)
            for r, g in zip(ref, got):
                assert_close(g, r)
            assert_close(sw.idwt(*got, wavelet, mode=mode), pywt.idwt(*ref, wavelet, mode))


@pytest.mark.parametrize("mode", MODES)
def test_length_one_signal(mode):
    x = torch.tensor([[2.5]], dtype=torch.float64)
    if mode in ("reflect", "antireflect"):  # pywt refuses these; so do we
        with pytest.raises(ValueError):
            pywt.dwt(x.numpy(), "db2", mode)
        with pytest.raises(ValueError, match="at least 2 samples"):
            sw.dwt(x, "db2", mode=mode)
        return
    for r, g in zip(pywt.dwt(x.numpy(), "db2", mode), sw.dwt(x, "db2", mode=mode)):
        assert_close(g, r)


@pytest.mark.parametrize("wavelet", FAMILY_REPS)
@pytest.mark.parametrize("mode", MODES)
def test_wavedec_waverec_1d_every_level(wavelet, mode, backend):
    x = rand((3, 1, 67))
    top = pywt.dwt_max_level(67, pywt.Wavelet(wavelet).dec_len)
    assert sw.dwt_max_level(67, wavelet) == top
    for level in range(top + 1):
        ref = pywt.wavedec(x, wavelet, mode, level=level, axis=-1)
        got = sw.wavedec(torch.from_numpy(x), wavelet, mode=mode, level=level)
        assert len(got) == len(ref)
        for r, g in zip(ref, got):
            assert_close(g, r)
        assert_close(sw.waverec(got, wavelet, mode=mode), pywt.waverec(ref, wavelet, mode))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_1d_along_any_axis(axis, backend):
    x = rand((19, 20, 21))
    for r, g in zip(
        pywt.wavedec(x, "db3", "smooth", level=1, axis=axis),
        sw.wavedec(torch.from_numpy(x), "db3", mode="smooth", level=1, axis=axis),
    ):
        assert_close(g, r)


@pytest.mark.parametrize("wavelet", FAMILY_REPS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (1, 17, 24), (40, 33)])
def test_wavedec2_waverec2(wavelet, mode, shape, backend):
    x = rand(shape)
    t = torch.from_numpy(x)
    flen = pywt.Wavelet(wavelet).dec_len
    top = pywt.dwt_max_level(min(shape[-2:]), flen)
    for level in sorted({0, 1, top}):
        ref = pywt.wavedec2(x, wavelet, mode, level=level)
        got = sw.wavedec2(t, wavelet, mode=mode, level=level)
        assert_close(got[0], ref[0])
        for rd, gd in zip(ref[1:], got[1:]):
            for r, g in zip(rd, gd):
                assert_close(g, r)
        assert_close(sw.waverec2(got, wavelet, mode=mode), pywt.waverec2(ref, wavelet, mode))
    # single level, including the tuple layout (cA, (cH, cV, cD))
    ref = pywt.dwt2(x, wavelet, mode)
    got = sw.dwt2(t, wavelet, mode=mode)
    assert_close(got[0], ref[0])
    for r, g in zip(ref[1], got[1]):
        assert_close(g, r)
    assert_close(sw.idwt2(got, wavelet, mode=mode), pywt.idwt2(ref, wavelet, mode))


@pytest.mark.parametrize("wavelet", ["db4", "sym5", "coif2", "bior3.5"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_batch_1d_2d_and_3d(wavelet, dtype, backend):
    """A batch large enough for the flat passes on the CPU (the lattice for orthogonal banks, the
    filter taps for biorthogonal ones; the lattice or conv3d in 3-D), chosen by the dispatcher
    itself, in three modes."""
    x = np.random.default_rng(1).standard_normal((3, 2, 128, 130)).astype(dtype)
    for mode in ("zero", "symmetric", "periodization"):
        ref = pywt.wavedec(x.astype(np.float64), wavelet, mode, level=2)
        got = sw.wavedec(torch.from_numpy(x), wavelet, mode=mode, level=2)
        for r, g in zip(ref, got):
            assert_close(g, r.astype(dtype))
        assert_close(sw.waverec(got, wavelet, mode=mode), x)
        ref = pywt.wavedec2(x.astype(np.float64), wavelet, mode, level=2)
        got = sw.wavedec2(torch.from_numpy(x), wavelet, mode=mode, level=2)
        for r, g in zip([ref[0], *[d for lv in ref[1:] for d in lv]], [got[0], *[d for lv in got[1:] for d in lv]]):
            assert_close(g, r.astype(dtype))
        assert_close(sw.waverec2(got, wavelet, mode=mode), x)
    v = np.random.default_rng(2).standard_normal((8, 32, 32, 34)).astype(dtype)
    for mode in ("zero", "symmetric", "periodization"):
        ref = pywt.wavedecn(v.astype(np.float64), wavelet, mode, level=1, axes=(1, 2, 3))
        got = sw.wavedecn(torch.from_numpy(v), wavelet, mode=mode, level=1, axes=(1, 2, 3))
        assert_close(got[0], ref[0].astype(dtype))
        for key in ref[1]:
            assert_close(got[1][key], ref[1][key].astype(dtype))
        assert_close(sw.waverecn(got, wavelet, mode=mode, axes=(1, 2, 3)), v)


@pytest.mark.parametrize("wavelet", ["haar", "db2", "bior3.5"])
def test_strided_inputs_and_coefficients(wavelet, backend):
    """Transposed and permuted views in, and coefficients handed back as strided views: the values of
    contiguous data (the batch is large enough for the flat passes in float32)."""
    x = rand((4, 3, 96, 128), np.float32)
    views = (torch.from_numpy(x).transpose(-1, -2), torch.from_numpy(x).permute(1, 0, 3, 2)[:, :, 1:, 2:])
    for mode in ("zero", "symmetric", "periodization"):
        for t in views:
            ref = pywt.wavedec2(t.numpy().astype(np.float64), wavelet, mode, level=2)
            got = sw.wavedec2(t, wavelet, mode=mode, level=2)
            flat = [got[0], *[d for lv in got[1:] for d in lv]]
            for r, g in zip([ref[0], *[d for lv in ref[1:] for d in lv]], flat):
                assert_close(g, r.astype(np.float32))
            strided = [c.transpose(-1, -2).contiguous().transpose(-1, -2) for c in flat]
            back = [strided[0], *[tuple(strided[1 + 3 * i : 4 + 3 * i]) for i in range(2)]]
            assert_close(sw.waverec2(back, wavelet, mode=mode), pywt.waverec2(ref, wavelet, mode).astype(np.float32))
            ref1 = pywt.wavedec(t.numpy().astype(np.float64), wavelet, mode, level=2, axis=-2)
            for r, g in zip(ref1, sw.wavedec(t, wavelet, mode=mode, level=2, axis=-2)):
                assert_close(g, r.astype(np.float32))


@pytest.mark.parametrize("wavelet", ["haar", "db2", "sym3", "bior2.2"])
@pytest.mark.parametrize("mode", MODES)
def test_wavedecn_waverecn_3d(wavelet, mode):
    x = rand((2, 9, 12, 10))
    t = torch.from_numpy(x)
    axes = (1, 2, 3)
    ref = pywt.wavedecn(x, wavelet, mode, level=1, axes=axes)
    got = sw.wavedecn(t, wavelet, mode=mode, level=1, axes=axes)
    assert_close(got[0], ref[0])
    assert set(got[1]) == set(ref[1])
    for key in ref[1]:
        assert_close(got[1][key], ref[1][key])
    assert_close(sw.waverecn(got, wavelet, mode=mode, axes=axes), pywt.waverecn(ref, wavelet, mode, axes=axes))


@pytest.mark.parametrize("axes", [None, (0, 2), (3, 1, 0, 2)])
def test_dwtn_axes_orders_and_more_than_three_axes(axes):
    x = rand((6, 5, 8, 7))
    ref = pywt.dwtn(x, "db2", "periodization", axes=axes)
    got = sw.dwtn(torch.from_numpy(x), "db2", mode="periodization", axes=axes)
    assert set(got) == set(ref)
    for key in ref:
        assert_close(got[key], ref[key])
    back = sw.idwtn(got, "db2", mode="periodization", axes=axes)
    assert_close(back, pywt.idwtn(ref, "db2", "periodization", axes=axes))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mode", ["zero", "symmetric", "periodization"])
def test_float32_and_float64_keep_their_dtype(dtype, mode):
    x = rand((2, 3, 32, 30), dtype=np.float32 if dtype == torch.float32 else np.float64)
    got = sw.wavedec2(torch.from_numpy(x), "db4", mode=mode, level=2)
    ref = pywt.wavedec2(x.astype(np.float64), "db4", mode, level=2)
    assert all(c.dtype == dtype for c in [got[0], *got[1], *got[2]])
    assert_close(got[0], ref[0], dtype)
    assert_close(sw.waverec2(got, "db4", mode=mode), x, dtype)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_types_are_computed_in_float32_and_returned_in_kind(dtype):
    x = torch.randn(2, 16, 16).to(dtype)
    ref = pywt.dwt2(x.double().numpy(), "db2", "symmetric")
    cA, (cH, cV, cD) = sw.dwt2(x, "db2")
    assert cA.dtype == dtype
    assert_close(cA, ref[0], dtype)
    assert_close(cD, ref[1][2], dtype)
    assert_close(sw.idwt2((cA, (cH, cV, cD)), "db2")[..., :16, :16], x.double(), dtype)


def test_complex_input_matches_pywt():
    x = rand((4, 20)) + 1j * rand((4, 20), seed=1)
    ref = pywt.wavedec(x, "sym4", "reflect", level=1)
    got = sw.wavedec(torch.from_numpy(x), "sym4", mode="reflect", level=1)
    for r, g in zip(ref, got):
        assert g.is_complex()
        assert_close(torch.view_as_real(g), np.stack([r.real, r.imag], -1))


def test_custom_filter_bank_and_pywt_object():
    w = pywt.Wavelet("db3")
    x = rand((5, 30))
    ref = pywt.dwt(x, w, "zero")
    for spec in (w, w.filter_bank, sw.Wavelet(w.filter_bank, name="mine")):
        for r, g in zip(ref, sw.dwt(torch.from_numpy(x), spec, mode="zero")):
            assert_close(g, r)


def test_stationary_transform_1d():
    x = rand((3, 48))
    for wavelet in ["haar", "db2", "bior2.4", "coif1"]:
        for norm in (False, True):
            for level, start in [(1, 0), (3, 0), (2, 1), (None, 0)]:
                ref = pywt.swt(x, wavelet, level=level, start_level=start, norm=norm)
                got = sw.swt(torch.from_numpy(x), wavelet, level=level, start_level=start, norm=norm)
                assert len(got) == len(ref)
                for (ra, rd), (ga, gd) in zip(ref, got):
                    assert_close(ga, ra)
                    assert_close(gd, rd)
                if start == 0:
                    assert_close(sw.iswt(got, wavelet, norm=norm), pywt.iswt(ref, wavelet, norm=norm))
        trimmed = sw.swt(torch.from_numpy(x), wavelet, level=2, trim_approx=True)
        for r, g in zip(pywt.swt(x, wavelet, level=2, trim_approx=True), trimmed):
            assert_close(g, r)
        assert_close(sw.iswt(trimmed, wavelet), x)


def test_stationary_transform_2d():
    x = rand((2, 16, 24))
    for wavelet in ["haar", "sym3", "rbio1.3"]:
        ref = pywt.swt2(x, wavelet, 2)
        got = sw.swt2(torch.from_numpy(x), wavelet, level=2)
        for (ra, rd), (ga, gd) in zip(ref, got):
            assert_close(ga, ra)
            for r, g in zip(rd, gd):
                assert_close(g, r)
        assert_close(sw.iswt2(got, wavelet), pywt.iswt2(ref, wavelet))
    assert sw.swt_max_level(48) == pywt.swt_max_level(48) == 4


@pytest.mark.parametrize("mode", MODES)
def test_pad_matches_pywt_pad(mode):
    for n in (2, 3, 5, 8):
        x = rand(n, seed=n)
        for widths in [(0, 1), (3, 2), (7, 9), (20, 13)]:
            assert_close(sw.pad(torch.from_numpy(x), [widths], mode), pywt.pad(x, widths, mode))
