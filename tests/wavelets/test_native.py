"""The 2-D Haar transform's C library (:mod:`subband.wavelets._native`): the same bands as the
PyTorch passes and PyWavelets, one level or several fused, any strides, gradients, threads, and the
fallback when it cannot be built."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import pywt
import torch

import subband.wavelets as sw
from subband.wavelets import _haar, _native
from tests.tolerances import assert_close

pytestmark = pytest.mark.skipif(_native.library() is None, reason=f"the C library is {_native.status()}")

DTYPES = [torch.float32, torch.float64]


def _passes(f, *args):
    """``f(*args)`` with the PyTorch passes, the library set aside."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_native, "usable", lambda *ts: False)
        return f(*args)


def _strided_views(x):
    """``x (B, H, W)`` as a transposed copy, at an odd storage offset, and as every other column of
    a wider tensor."""
    t = x.transpose(1, 2).contiguous().transpose(1, 2)
    o = torch.empty(x.numel() + 1, dtype=x.dtype)[1:].view(x.shape).copy_(x)
    w = torch.stack((x, -x), -1).flatten(-2)[..., ::2]
    return [t, o, w]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 6, 10), (2, 8, 36), (1, 4, 34), (2, 64, 64), (1, 2, 2)])
def test_one_level_equals_the_pytorch_passes(shape, dtype):
    """Widths that fill whole vectors and widths with a scalar tail; inputs of any strides; bands
    read from contiguous, interleaved (the passes' own), strided, broadcast and odd-offset memory."""
    x = torch.randn(shape, dtype=dtype)
    for h in (1, -1):
        want = torch.stack(_passes(_haar.down, x, h), 1)
        got = _native.analysis(x, h)
        assert got.shape == want.shape and got.is_contiguous()
        assert_close(got, want)
        for v in _strided_views(x):
            assert_close(_native.analysis(v, h), want)
        assert_close(_native.synthesis(got.unbind(1), h), x)
        assert_close(_native.synthesis(_passes(_haar.down, x, h), h), x)  # interleaved pairs
        c = torch.randn(want.shape, dtype=dtype).unbind(1)
        ref = _passes(_haar.up, c, h)
        for bands in (c, [_strided_views(b)[i % 3] for i, b in enumerate(c)]):
            assert_close(_native.synthesis(bands, h), ref)
        ones = [torch.ones((), dtype=dtype).expand(c[0].shape)] * 4  # stride 0: the gradient of a sum
        assert_close(_native.synthesis(ones, h), _passes(_haar.up, ones, h))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape, levels", [((3, 64, 48), 3), ((2, 16, 40), 3), ((1, 8, 8), 3), ((2, 32, 32), 5), ((2, 256, 64), 6)]
)
def test_fused_levels_equal_level_by_level(shape, levels, dtype):
    """Several levels in one call give every level's bands as one level at a time would, with one
    thread or two (bit for bit), from strided inputs too, and the fused inverse reconstructs."""
    x = torch.randn(shape, dtype=dtype)
    threads = torch.get_num_threads()
    for h in (1, -1):
        want, a = [], x
        for _ in range(levels):
            y = _native.analysis(a, h)
            want += [*y[:, 1:].unbind(1)]
            a = y[:, 0]
        want.append(a)
        for n in (1, 2):
            torch.set_num_threads(n)
            try:
                got = _haar.wavedec2(x, h, levels)
                assert len(got) == len(want)
                for g, w in zip(got, want):
                    assert torch.equal(g, w)
                for v in _strided_views(x):
                    assert all(torch.equal(g, w) for g, w in zip(_haar.wavedec2(v, h, levels), want))
                assert_close(_haar.waverec2(got, h), x)
                assert_close(_haar.waverec2([b.transpose(1, 2).contiguous().transpose(1, 2) for b in got], h), x)
            finally:
                torch.set_num_threads(threads)


def _uses_fused(monkeypatch):
    calls = []
    for name in ("_wavedec2", "_waverec2"):
        f = getattr(_haar, name)
        monkeypatch.setattr(_haar, name, lambda *a, f=f, name=name: calls.append(name) or f(*a))
    return calls


@pytest.mark.parametrize("mode", sw.MODES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_wavedec2_equals_pywavelets(mode, dtype, monkeypatch):
    """Sizes divisible by 2**level take the fused levels (checked), others one level at a time in
    the library, in every mode; batch dimensions and axes in any place. The inverse fuses whenever
    each level's coefficients are twice the size of the next (Haar's synthesis has no boundary)."""
    calls = _uses_fused(monkeypatch)
    cases = [((2, 3, 32, 48), 3, (-2, -1), ["_wavedec2", "_waverec2"]),
             ((8, 5, 1, 40), 3, (0, 3), ["_wavedec2", "_waverec2"]),
             ((3, 16, 8), 2, (-1, -2), ["_wavedec2", "_waverec2"]),
             ((2, 2, 30, 22), 2, (-2, -1), []),
             ((1, 17, 16), 1, (-2, -1), ["_waverec2"])]  # fmt: skip
    for shape, level, axes, fused in cases:
        calls.clear()
        x = np.random.default_rng(0).standard_normal(shape)
        t = torch.tensor(x, dtype=dtype)
        got = sw.wavedec2(t, "haar", mode=mode, level=level, axes=axes)
        want = pywt.wavedec2(x, "haar", mode=mode, level=level, axes=axes)
        assert_close(got[0], want[0])
        for g, w in zip(got[1:], want[1:]):
            for gb, wb in zip(g, w):
                assert_close(gb, wb)
        back = sw.waverec2(got, "haar", mode=mode, axes=axes)
        assert_close(back, pywt.waverec2(want, "haar", mode=mode, axes=axes))
        assert calls == fused, (shape, level)


@pytest.mark.parametrize("h", [1, -1])
def test_fused_levels_are_differentiable(h):
    """gradcheck and gradgradcheck in float64 through the fused analysis and synthesis."""
    x = torch.randn(2, 8, 16, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda t: _haar.wavedec2(t, h, 3), (x,))
    torch.autograd.gradgradcheck(lambda t: _haar.wavedec2(t, h, 2), (x,))
    bands = [b.detach().requires_grad_() for b in _haar.wavedec2(x.detach(), h, 2)]
    torch.autograd.gradcheck(lambda *b: _haar.waverec2(b, h), bands)
    torch.autograd.gradgradcheck(lambda *b: _haar.waverec2(b, h), bands)
    t = torch.randn(1, 3, 16, 16, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda v: sw.wavedec2(v, "haar", level=2)[1][2], (t,))


def _run(env: dict, code: str) -> str:
    env = {**os.environ, **env}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


CHECK = """
import numpy as np, pywt, torch
import subband.wavelets as sw
from subband.wavelets import _native
x = np.random.default_rng(0).standard_normal((2, 16, 24))
c = sw.wavedec2(torch.tensor(x), "haar", level=2)
assert np.allclose(c[1][2].numpy(), pywt.wavedec2(x, "haar", level=2)[1][2])
assert torch.allclose(sw.waverec2(c, "haar"), torch.tensor(x))
print(_native.status())
"""


def test_without_the_library_the_pytorch_passes_run(tmp_path):
    """SUBBAND_NATIVE=0 turns the library off; a compiler that fails leaves it unbuilt, recorded
    so later processes do not retry; the transforms give PyWavelets' values either way."""
    assert _run({"SUBBAND_NATIVE": "0"}, CHECK) == "off (SUBBAND_NATIVE=0)"
    env = {"CC": "false", "SUBBAND_CACHE_DIR": str(tmp_path)}
    status = _run(env, CHECK)
    assert status.startswith("unavailable:") and "could not build" in status
    failed = sorted(p.name for p in tmp_path.iterdir())
    assert failed and all(name.endswith(".failed") for name in failed)
    assert _run(env, CHECK) == status and sorted(p.name for p in tmp_path.iterdir()) == failed


def test_the_library_is_built_once_into_the_cache(tmp_path):
    env = {"SUBBAND_CACHE_DIR": str(tmp_path)}
    first = _run(env, CHECK)
    assert first.startswith("loaded dwt2d-")
    built = [p for p in tmp_path.iterdir() if p.suffix == ".so"]
    assert len(built) == 1 and first.endswith(built[0].name)
    mtime = built[0].stat().st_mtime_ns
    assert _run(env, CHECK) == first and built[0].stat().st_mtime_ns == mtime
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]  # no build directory left behind


def test_a_new_build_removes_builds_older_than_30_days(tmp_path):
    """Builds of earlier versions do not pile up in the cache: a new build removes those (and the
    failure records) made more than 30 days before; younger ones stay."""
    old, young, failed = (tmp_path / n for n in ("dwt2d-0old.so", "dwt2d-1young.so", "haar2d-2old.failed"))
    for p, days in ((old, 31), (young, 29), (failed, 40)):
        p.write_bytes(b"")
        os.utime(p, (time.time() - days * 86400,) * 2)
    status = _run({"SUBBAND_CACHE_DIR": str(tmp_path)}, CHECK)
    assert status.startswith("loaded dwt2d-")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([young.name, status.split()[-1]])


def test_batch_axes_that_do_not_flatten_are_copied_first(monkeypatch):
    """The library takes one batch stride: other batch layouts are copied to contiguous memory."""
    calls = _uses_fused(monkeypatch)
    x = torch.randn(3, 2, 16, 16, dtype=torch.float64).transpose(0, 1)
    got = sw.wavedec2(x, "haar", level=2)
    want = pywt.wavedec2(x.numpy(), "haar", level=2)
    assert_close(got[0], want[0])
    for g, w in zip(got[1:], want[1:]):
        for gb, wb in zip(g, w):
            assert_close(gb, wb)
    assert calls == ["_wavedec2"]


def test_gradients_of_any_layout_reach_the_library(monkeypatch):
    """The gradients reaching the fused backward may have batch axes that do not flatten to one
    stride (here from a transpose), or be broadcast: they give the PyTorch passes' gradients."""
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    r = [torch.randn(3, 2, 16 >> j, 16 >> j, dtype=torch.float64) for j in (1, 2, 2)]

    def grad():
        t = x.clone().requires_grad_()
        c = sw.wavedec2(t, "haar", level=2)
        loss = (c[2][0].transpose(0, 1) * r[0]).sum() + (c[1][1].transpose(0, 1) * r[1]).sum() + c[0].sum()
        loss.backward()
        return t.grad

    calls = _uses_fused(monkeypatch)
    got = grad()
    assert calls == ["_wavedec2", "_waverec2"]  # the backward runs the fused inverse
    want = _passes(grad)
    assert_close(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_streaming_stores_write_the_same_output(dtype, monkeypatch):
    """Large outputs are written past the cache (:func:`_native._streaming_threshold`): the same
    values, also where a row's width leaves them unaligned (then the plain stores run)."""
    for shape, levels in (((3, 16, 64), 2), ((2, 8, 36), 1), ((1, 32, 40), 3)):
        x = torch.randn(shape, dtype=dtype)
        bands = _haar.wavedec2(x, 1, levels)
        want = _haar.waverec2(bands, 1)
        monkeypatch.setattr(_native, "_streaming_threshold", lambda threads: 0)
        assert torch.equal(_haar.waverec2(bands, 1), want)
        monkeypatch.undo()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("flen", [4, 8, 14])
def test_any_filter_bank_against_the_convolutions(flen, dtype):
    """The library's one-level analysis and synthesis for any pair of filters (arbitrary ones, no
    symmetry) against the stride-2 convolution and its transpose, in 2-D and 1-D: odd and even
    sizes, vector tails, batch axes, strided inputs, strided and broadcast bands, one and two
    threads."""
    from subband.wavelets import _core

    g = torch.Generator().manual_seed(flen)
    f = torch.randn(2, flen, generator=g, dtype=dtype) / flen**0.5
    L = flen // 2
    threads = torch.get_num_threads()
    try:
        for n_threads in (1, 2):
            torch.set_num_threads(n_threads)
            for shape in ((2, flen, flen + 1), (3, 40, 61), (2, 2, 33, 20)):
                x = torch.randn(*shape, generator=g, dtype=dtype)
                want = _core._down_raw(x.reshape(-1, *shape[-2:]), _core.down_kernel(f, 2))
                for v in (x, x.transpose(-1, -2).contiguous().transpose(-1, -2)):
                    got = _native.bank_analysis2(v, f)
                    for b in range(4):
                        assert_close(got[b].reshape(want[:, b].shape), want[:, b])
                c = torch.randn(4, *shape[:-2], shape[-2] // 2 + L, shape[-1] // 2 + L, generator=g, dtype=dtype)
                bands = [
                    c[0],
                    c[1].transpose(-1, -2).contiguous().transpose(-1, -2),
                    torch.ones_like(c[2][..., :1]).expand(c[2].shape),
                    c[3],
                ]
                stacked = torch.stack(bands, -3).reshape(-1, 4, *c.shape[-2:])
                want = _core._up_raw(stacked, _core.up_kernel(f, 2))
                got = _native.bank_synthesis2(bands, _core.synthesis_taps(f))
                assert got.is_contiguous()
                assert_close(got.reshape(want.shape), want)
            for length in (flen, flen + 1, 61):  # 1-D
                x = torch.randn(3, length, generator=g, dtype=dtype)
                want = _core._down_raw(x, _core.down_kernel(f, 1))
                for v in (x, x.t().contiguous().t()):
                    assert_close(torch.stack(_native.bank_analysis1(v, f), 1), want)
                c = torch.randn(2, 3, length // 2 + L, generator=g, dtype=dtype)
                want = _core._up_raw(c.transpose(0, 1), _core.up_kernel(f, 1))
                for bands in (
                    [c[0], c[1]],
                    [c[0].t().contiguous().t(), torch.ones_like(c[1][:, :1]).expand(c[1].shape)],
                ):
                    got = _native.bank_synthesis1(bands, _core.synthesis_taps(f))
                    want = _core._up_raw(torch.stack(bands, 1), _core.up_kernel(f, 1))
                    assert got.is_contiguous()
                    assert_close(got, want)
    finally:
        torch.set_num_threads(threads)
