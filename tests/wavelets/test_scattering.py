"""The generalised scattering extractor: frame bound, a closed form for a pure tone, the Lipschitz
bound, translation invariance growing with depth, every frame / non-linearity / pooling, errors."""

import math

import pytest
import torch
import torch.nn.functional as F

from subband.wavelets import Scattering, deformation_sensitivity, make_frame, translation_sensitivity


@pytest.mark.parametrize(
    "shape,kind", [((128,), "morlet"), ((128,), "gabor"), ((32, 48), "morlet"), ((32, 32), "gabor")]
)
def test_frames_have_a_bessel_bound_of_one(shape, kind):
    bank, low = make_frame(shape, kind, scales=4)
    total = low**2 + (bank**2).sum(0)
    assert total.max() <= 1 + 1e-6 and total.max() > 0.99
    if kind == "morlet":
        assert bank.flatten(1)[:, 0].abs().max() < 1e-6  # zero mean: no DC response


def test_first_layer_of_a_pure_tone_is_the_filter_response():
    """For x = cos(w0 t) on the DFT grid and an analytic filter g, |x * g| = |g^(w0)| / 2 at every
    t, so the first-layer features are |g^(w0)| / 2 times the low-pass's DC gain."""
    n, k0 = 256, 20
    x = torch.cos(2 * math.pi * k0 * torch.arange(n) / n).unsqueeze(0)
    sc = Scattering((n,), layers=1, scales=5, pool=1)
    feats = sc(x)[1][0]  # (K, n)
    want = sc.filters0[:, k0].abs() / 2 * sc.lowpass1[0]
    torch.testing.assert_close(feats.mean(-1), want, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(feats, want[:, None].expand_as(feats), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("nl", ["modulus", "relu", "tanh", "logistic"])
def test_lipschitz_bound_without_pooling(nl):
    torch.manual_seed(0)
    sc = Scattering((64,), layers=3, pool=1, nonlinearity=nl)
    f, h = torch.randn(16, 64), torch.randn(16, 64)
    assert (sc.lipschitz_ratio(f, h) <= 1 + 1e-5).all()
    assert (sc.lipschitz_ratio(f, f + 1e-3 * torch.randn(16, 64)) <= 1 + 1e-5).all()


@pytest.mark.parametrize("pooling", ["subsample", "average"])
def test_features_become_more_translation_invariant_with_depth(pooling):
    """Measured (512 samples, pool 2, 3 layers, shifts of 8 and 16): about 1.0, 0.12, 0.07, 0.04
    relative change from layer 0 to 3."""
    torch.manual_seed(0)
    x = F.avg_pool1d(torch.randn(8, 1, 512), 5, 1, 2)[:, 0]
    sc = Scattering((512,), layers=3, scales=5, pool=2, pooling=pooling)
    sens = translation_sensitivity(sc, x, [8, 16])
    assert all(a > b for a, b in zip(sens, sens[1:])), sens
    defo = deformation_sensitivity(sc, x, amplitude=2.0)
    assert len(defo) == 4 and all(0 < d < 1 for d in defo)


def test_2d_learned_frame_and_gradients():
    torch.manual_seed(0)
    sc = Scattering((16, 16), layers=2, frame="learned", scales=2, orientations=2, nonlinearity=["modulus", "relu"])
    feats = sc(torch.randn(3, 16, 16))
    assert [tuple(f.shape) for f in feats] == [(3, 1, 16, 16), (3, 4, 8, 8), (3, 16, 4, 4)]
    sum(f.sum() for f in feats).backward()
    assert sc.filters0.grad is not None and sc.filters1.grad.abs().sum() > 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="nonlinearity"):
        Scattering((64,), nonlinearity="softplus")
    with pytest.raises(ValueError, match="divisible"):
        Scattering((60,), layers=3, pool=2)
    with pytest.raises(ValueError, match="kind"):
        make_frame((32,), "haar")
    with pytest.raises(ValueError, match="expected signals"):
        Scattering((64,))(torch.randn(2, 32))


def _kymatio():
    """kymatio 0.3 imports ``scipy.special.sph_harm`` (3-D scattering only), which SciPy 1.15 removed."""
    scipy_special = pytest.importorskip("scipy.special")
    if not hasattr(scipy_special, "sph_harm"):
        scipy_special.sph_harm = lambda m, n, theta, phi: scipy_special.sph_harm_y(n, m, phi, theta)
    return pytest.importorskip("kymatio.torch")


@pytest.mark.parametrize("J,Q", [(3, 1), (4, 2)])
def test_equals_kymatio_scattering1d_with_its_filters(J, Q):
    """Given kymatio's Morlet filter bank (and its reflection padding), the modulus cascade equals
    kymatio's ``Scattering1D`` coefficients of orders 0, 1 and 2 (kymatio keeps the second-order
    paths with j2 > j1; here every path is computed and those are compared)."""
    kymatio = _kymatio()
    n = 128
    ks = kymatio.Scattering1D(J=J, shape=(n,), Q=Q, max_order=2, oversampling=J).double()  # no sub-sampling
    torch.manual_seed(0)
    x = torch.randn(3, n, dtype=torch.float64)
    want = ks(x)  # (B, paths, n)

    def bank(filters):
        return torch.stack([torch.as_tensor(f["levels"][0], dtype=torch.float64).reshape(-1) for f in filters])

    phi = torch.as_tensor(ks.phi_f["levels"][0], dtype=torch.float64).reshape(-1)
    psi1, psi2 = bank(ks.psi1_f), bank(ks.psi2_f)
    ours = Scattering((ks._N_padded,), layers=2, frame=[(psi1, phi), (psi2, phi), (None, phi)], pool=1)
    padded = F.pad(x.unsqueeze(1), (ks.pad_left, ks.pad_right), mode="reflect").squeeze(1)
    s0, s1, s2 = (f[..., ks.pad_left : ks.pad_left + n] for f in ours(padded))
    for channel, key in enumerate(ks.meta()["key"]):  # (), (n1,) or (n1, n2)
        got = s0[:, 0] if not key else s1[:, key[0]] if len(key) == 1 else s2[:, key[0] * len(psi2) + key[1]]
        torch.testing.assert_close(got, want[:, channel], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("L", [4, 8])
def test_equals_kymatio_scattering2d_first_order_with_its_filters(L):
    """2-D, J = 1 (where kymatio sub-samples only at the end, so the cascades are the same
    computation): given kymatio's filters and padding, orders 0 and 1 equal ``Scattering2D``'s."""
    kymatio = _kymatio()
    ks = kymatio.Scattering2D(J=1, shape=(32, 32), L=L, max_order=1)
    torch.manual_seed(1)
    x = torch.randn(2, 32, 32)
    want = ks(x)  # (B, 1 + L, 16, 16)
    phi = torch.as_tensor(ks.phi["levels"][0])
    psi = torch.stack([torch.as_tensor(f["levels"][0]) for f in ks.psi])
    size = (ks._M_padded, ks._N_padded)
    ours = Scattering(size, layers=1, frame=[(psi, phi), (None, phi)], pool=1)
    pad = (size[0] - 32) // 2
    padded = F.pad(x.unsqueeze(1), (pad, pad, pad, pad), mode="reflect").squeeze(1)
    s0, s1 = (f[..., ::2, ::2][..., 1:-1, 1:-1] for f in ours(padded))  # sub-sample by 2^J, unpad
    torch.testing.assert_close(torch.cat([s0, s1], dim=1), want, rtol=1e-4, atol=1e-5)
