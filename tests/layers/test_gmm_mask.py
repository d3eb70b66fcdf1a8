"""Gaussian mixture mask: against the official formula written out pair by pair (float64), gradcheck,
the prefix-token convention, the identities of both parameterisations, and argument checks."""

import math

import pytest
import torch

from subband.layers import GaussianMixtureMask, attend, gaussian_mixture_mask, squared_offsets


def _official_mask(sigma: torch.Tensor, alpha: torch.Tensor, gh: int, gw: int) -> torch.Tensor:
    """The official ``Gaussian_Mixture_Mask`` on an ``(gh, gw)`` grid, pair by pair:
    ``sum_k alpha_k * (exp(-d^2) ** 0.5) ** (1 / (sigma_k^2 + 1e-5))``."""
    k, h = sigma.shape
    n = gh * gw
    out = torch.zeros(h, n, n, dtype=sigma.dtype)
    for i in range(n):
        for j in range(n):
            d2 = (i // gw - j // gw) ** 2 + (i % gw - j % gw) ** 2
            base = math.exp(-d2) ** 0.5
            out[:, i, j] = (alpha * base ** (1 / (sigma**2 + 1e-5))).sum(0)
    return out


def test_mask_equals_the_official_formula():
    torch.manual_seed(0)
    sigma = torch.randn(3, 2, dtype=torch.float64) * 2 + 1
    alpha = torch.randn(3, 2, dtype=torch.float64)
    for gh, gw in [(4, 4), (3, 5), (1, 6)]:
        torch.testing.assert_close(gaussian_mixture_mask(sigma, alpha, (gh, gw)), _official_mask(sigma, alpha, gh, gw))


def test_squared_offsets_table_and_index():
    table, index = squared_offsets((3, 4))
    assert table.shape == (5 * 7,) and index.shape == (12, 12)
    pos = torch.tensor([(i // 4, i % 4) for i in range(12)], dtype=torch.float32)
    torch.testing.assert_close(table[index], torch.cdist(pos, pos) ** 2, rtol=0, atol=1e-5)


def test_module_matches_function_and_leaves_prefix_tokens_unscaled():
    torch.manual_seed(1)
    gmm = GaussianMixtureMask(num_heads=3, num_kernels=4)
    m = gmm((3, 3), num_prefix_tokens=2)
    assert m.shape == (3, 11, 11)
    torch.testing.assert_close(m[:, 2:, 2:], gaussian_mixture_mask(gmm.sigma, gmm.alpha, (3, 3)))
    assert (m[:, :2, :] == 1).all() and (m[:, :, :2] == 1).all()
    # symmetric in the token pair, and the diagonal is sum_k alpha_k
    torch.testing.assert_close(m[:, 2:, 2:], m[:, 2:, 2:].transpose(1, 2))
    torch.testing.assert_close(m[:, 2:, 2:].diagonal(dim1=1, dim2=2), gmm.alpha.sum(0)[:, None].expand(3, 9))


def test_gradcheck():
    torch.manual_seed(2)
    sigma = (torch.rand(2, 3, dtype=torch.float64) + 0.5).requires_grad_()
    alpha = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s, a: gaussian_mixture_mask(s, a, (3, 2)), (sigma, alpha))
    assert torch.autograd.gradcheck(lambda s, a: gaussian_mixture_mask(s, a, (2, 2), residual=True), (sigma, alpha))


def test_gradients_stay_finite_on_wide_grids():
    """The official power form reaches ``0 ** x`` (NaN gradient in sigma) where exp(-d^2) underflows."""
    gmm = GaussianMixtureMask(num_heads=2, num_kernels=3)
    gmm((24, 24)).sum().backward()
    assert torch.isfinite(gmm.sigma.grad).all() and torch.isfinite(gmm.alpha.grad).all()
    assert gmm.sigma.grad.abs().sum() > 0


def test_identities_of_both_parameterisations():
    q, k, v = (torch.randn(2, 3, 17, 8) for _ in range(3))
    plain = attend(q, k, v)
    # residual form: zero weights are exactly the identity (and the fresh module starts there)
    res = GaussianMixtureMask(num_heads=3, num_kernels=5, residual=True)
    assert (res.alpha == 0).all()
    scale = res((4, 4), num_prefix_tokens=1)
    assert (scale == 1).all()
    torch.testing.assert_close(attend(q, k, v, logit_scale=scale), plain)
    # the paper's form: zero weights zero the logits (uniform attention) ...
    paper = GaussianMixtureMask(num_heads=3, num_kernels=5)
    with torch.no_grad():
        paper.alpha.zero_()
    qp, kp, vp = q[:, :, 1:], k[:, :, 1:], v[:, :, 1:]
    uniform = vp.mean(2, keepdim=True).expand(2, 3, 16, 8)
    torch.testing.assert_close(attend(qp, kp, vp, logit_scale=paper((4, 4))), uniform)
    # ... and its identity is one component of weight 1 and unbounded width
    with torch.no_grad():
        paper.alpha[0] = 1.0
        paper.sigma.fill_(1e6)
    torch.testing.assert_close(attend(q, k, v, logit_scale=paper((4, 4), 1)), plain)


def test_mask_multiplies_the_scaled_logits():
    torch.manual_seed(3)
    gmm = GaussianMixtureMask(num_heads=2, num_kernels=2)
    q, k, v = (torch.randn(1, 2, 6, 4, dtype=torch.float64) for _ in range(3))
    m = gmm((2, 3)).double()
    want = torch.softmax(m * (q @ k.transpose(-2, -1)) / 2.0, -1) @ v
    torch.testing.assert_close(attend(q, k, v, logit_scale=m), want)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="positive"):
        GaussianMixtureMask(num_heads=0)
    with pytest.raises(ValueError, match="K, heads"):
        gaussian_mixture_mask(torch.ones(2, 3), torch.ones(3, 2), (2, 2))
    with pytest.raises(ValueError, match="grid_size"):
        squared_offsets((0, 3))
    assert "num_kernels=5" in repr(GaussianMixtureMask(4))
