"""Orthogonality of circular convolutions: FFT singular values against the dense operator, the
regulariser against the operator's Frobenius error, orthogonal kernels by construction, and the
existence conditions checked by minimising the regulariser."""

import pytest
import torch
import torch.nn.functional as F

from subband.interpret import (
    conv_singular_values,
    orthogonal_conv_exists,
    orthogonal_conv_kernel,
    orthogonality_error,
    orthogonality_regularizer,
)


def _dense(w: torch.Tensor, n: int, stride: int) -> torch.Tensor:
    """The operator as a matrix: circular convolution applied to every basis image."""
    c, k = w.shape[1], w.shape[-1]
    basis = torch.eye(c * n * n, dtype=w.dtype).view(-1, c, n, n)
    y = F.conv2d(F.pad(basis, (0, k - 1, 0, k - 1), mode="circular"), w, stride=stride)
    return y.flatten(1).T  # (M (n/S)^2, C n^2)


@pytest.mark.parametrize("m,c,k,s,n", [(4, 3, 3, 1, 6), (6, 2, 3, 2, 6), (3, 2, 4, 2, 8), (5, 5, 1, 1, 4)])
def test_singular_values_and_regulariser_against_the_dense_operator(m, c, k, s, n):
    torch.manual_seed(0)
    w = torch.randn(m, c, k, k, dtype=torch.float64)
    a = _dense(w, n, s)
    ours = conv_singular_values(w, n, s).sort().values
    torch.testing.assert_close(ours, torch.linalg.svdvals(a).sort().values[-ours.numel() :])
    gram = a @ a.T if m <= c * s * s else a.T @ a  # row- or column-orthogonal case
    err = (gram - torch.eye(gram.shape[0], dtype=w.dtype)).pow(2).sum()
    torch.testing.assert_close(err, (n // s) ** 2 * orthogonality_regularizer(w, s))
    assert orthogonality_error(w, n, s)["frobenius"] == pytest.approx(float(err.sqrt()), rel=1e-9)


def test_orthogonal_kernel_by_construction():
    g = torch.Generator().manual_seed(0)
    for channels, k in ((4, 3), (6, 2), (3, 5)):
        w = orthogonal_conv_kernel(channels, k, dtype=torch.float64, generator=g)
        assert w.shape == (channels, channels, k, k)
        s = conv_singular_values(w, 12)
        torch.testing.assert_close(s, torch.ones_like(s))
        assert abs(float(orthogonality_regularizer(w))) < 1e-12
        assert orthogonality_error(w, 12)["spectral"] < 1e-12
    assert float(orthogonality_regularizer(torch.randn(4, 4, 3, 3, dtype=torch.float64))) > 0.1


def _minimise(m: int, c: int, k: int, s: int, seed: int) -> tuple[float, torch.Tensor]:
    torch.manual_seed(seed)
    w = (torch.randn(m, c, k, k, dtype=torch.float64) / (c * k * k) ** 0.5).requires_grad_()
    opt = torch.optim.LBFGS(
        [w], max_iter=400, tolerance_grad=1e-12, tolerance_change=1e-15, line_search_fn="strong_wolfe"
    )

    def closure():
        opt.zero_grad()
        loss = orthogonality_regularizer(w, s)
        loss.backward()
        return loss

    opt.step(closure)
    w = w.detach()
    return float(orthogonality_regularizer(w, s)), w


@pytest.mark.parametrize(
    "m,c,k,s", [(4, 2, 2, 1), (2, 2, 1, 2), (4, 1, 2, 2), (4, 1, 1, 2), (3, 1, 1, 2), (8, 1, 2, 3)]
)
def test_existence_conditions_match_what_the_regulariser_can_reach(m, c, k, s):
    exists = orthogonal_conv_exists(c, m, k, s)
    best, w = min((_minimise(m, c, k, s, seed) for seed in range(3)), key=lambda r: r[0])
    if exists:  # the regulariser drives the layer to an isometry: measured singular values
        assert best < 1e-8
        sv = conv_singular_values(w, 6 * s, s)
        torch.testing.assert_close(sv, torch.ones_like(sv), atol=1e-4, rtol=0)
    else:
        assert best > 0.05


def test_bad_arguments():
    with pytest.raises(ValueError, match="multiple of stride"):
        conv_singular_values(torch.randn(2, 2, 3, 3), 7, stride=2)
    with pytest.raises(ValueError, match="kernel"):
        orthogonality_regularizer(torch.randn(2, 2, 3))
    with pytest.raises(ValueError, match="positive"):
        orthogonal_conv_exists(0, 2, 3)
