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
