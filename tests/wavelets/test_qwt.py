"""The quaternion wavelet transform: reconstruction, its relation to the DTCWT, the polar form."""

import math

import pytest
import torch

from subband.wavelets import dtcwt2, iqwt2, quaternion_from_polar, quaternion_polar, qwt2


def test_qwt_reconstructs_and_matches_the_dual_tree():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 48, dtype=torch.float64)
    lo, qs = qwt2(x, 3, qshift="qshift_b")
    assert [tuple(q.shape) for q in qs] == [(2, 3, 3, 4, 32, 24), (2, 3, 3, 4, 16, 12), (2, 3, 3, 4, 8, 6)]
    torch.testing.assert_close(iqwt2((lo, qs), qshift="qshift_b"), x, rtol=0, atol=1e-12)
    lo_c, highs = dtcwt2(x, 3, qshift="qshift_b")
    torch.testing.assert_close(lo, lo_c)
    for q, h in zip(qs, highs):
        # the quaternion of a subband holds the same energy as its two complex orientations
        pairs = ((0, 5), (1, 4), (2, 3))  # horizontal, diagonal, vertical
        want = torch.stack([(h[:, :, i].abs() ** 2 + h[:, :, j].abs() ** 2) / 2 for i, j in pairs], 2).sqrt()
        torch.testing.assert_close(torch.linalg.vector_norm(q, dim=-3), want)


def test_polar_form_round_trips():
    torch.manual_seed(0)
    n = 20000
    phi = (torch.rand(n, dtype=torch.float64) * 2 - 1) * math.pi
    theta = (torch.rand(n, dtype=torch.float64) * 2 - 1) * math.pi / 2
    psi = (torch.rand(n, dtype=torch.float64) * 2 - 1) * (math.pi / 4 - 1e-3)
    mag = torch.rand(n, dtype=torch.float64) + 0.1
    q = quaternion_from_polar(*(t.unsqueeze(-1) for t in (mag, phi, theta, psi)))  # (4, n, 1)
    m2, phi2, theta2, psi2 = quaternion_polar(q)
    torch.testing.assert_close(m2[:, 0], mag)
    torch.testing.assert_close(psi2[:, 0], psi, atol=1e-9, rtol=0)
    # (phi, theta) is unique up to (phi + pi, -theta ... ) only at |theta| = pi/2; away from it, equal
    keep = theta.abs() < math.pi / 2 - 1e-3
    torch.testing.assert_close(phi2[keep, 0], phi[keep], atol=1e-9, rtol=0)
    torch.testing.assert_close(theta2[keep, 0], theta[keep], atol=1e-9, rtol=0)


def test_polar_of_transform_coefficients_reproduces_them():
    torch.manual_seed(1)
    _, qs = qwt2(torch.randn(1, 32, 32, dtype=torch.float64), 2)
    mag, phi, theta, psi = quaternion_polar(qs[0])
    assert (psi.abs() <= math.pi / 4 + 1e-12).all() and (theta.abs() <= math.pi / 2 + 1e-12).all()
    torch.testing.assert_close(quaternion_from_polar(mag, phi, theta, psi), qs[0], atol=1e-6, rtol=0)


def test_qwt_validates():
    with pytest.raises(ValueError, match="4 components"):
        quaternion_polar(torch.randn(3, 5, 5))
    lo, qs = qwt2(torch.randn(16, 16), 1)
    with pytest.raises(ValueError, match="3, 4, h, w"):
        iqwt2((lo, [qs[0][:2]]))
