"""The selective scan against the step-by-step recurrence (float64), gradients, chunking, errors."""

import pytest
import torch
import torch.nn.functional as F

from subband.layers import selective_scan


def _recurrence(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """Mamba's recurrence written out one step at a time."""
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    bsz, dim, length = u.shape
    if B.ndim == 3:
        B, C = B[:, None].expand(-1, dim, -1, -1), C[:, None].expand(-1, dim, -1, -1)
    else:
        B, C = B.repeat_interleave(dim // B.shape[1], 1), C.repeat_interleave(dim // C.shape[1], 1)
    h = u.new_zeros(bsz, dim, A.shape[1])
    ys = []
    for t in range(length):
        h = torch.exp(delta[:, :, t, None] * A) * h + (delta[:, :, t] * u[:, :, t])[..., None] * B[:, :, :, t]
        ys.append((h * C[:, :, :, t]).sum(-1))
    y = torch.stack(ys, -1)
    if D is not None:
        y = y + u * D[:, None]
    if z is not None:
        y = y * F.silu(z)
    return y, h


def _inputs(bsz=2, dim=6, n=3, length=37, groups=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    bc = (bsz, n, length) if groups is None else (bsz, groups, n, length)
    return dict(u=r(bsz, dim, length), delta=r(bsz, dim, length), A=-torch.exp(r(dim, n)), B=r(*bc), C=r(*bc),
                D=r(dim), z=r(bsz, dim, length), delta_bias=r(dim))  # fmt: skip


@pytest.mark.parametrize("groups,chunk", [(None, 8), (None, 64), (2, 5), (3, 1)])
def test_scan_equals_the_recurrence(groups, chunk):
    x = _inputs(groups=groups)
    want, last = _recurrence(**x, delta_softplus=True)
    got, h = selective_scan(**x, delta_softplus=True, chunk=chunk, return_last_state=True)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(h, last)
    plain = {k: x[k] for k in ("u", "A", "B", "C")}
    delta = torch.rand_like(x["u"])
    torch.testing.assert_close(selective_scan(delta=delta, **plain, chunk=chunk), _recurrence(delta=delta, **plain)[0])


def test_gradcheck():
    x = _inputs(bsz=1, dim=2, n=2, length=9, groups=None, seed=1)
    keys = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias"]
    args = [x[k].requires_grad_() for k in keys]
    fn = lambda *a: selective_scan(**dict(zip(keys, a)), delta_softplus=True, chunk=4)  # noqa: E731
    assert torch.autograd.gradcheck(fn, args)


def test_long_sequences_stay_finite():
    """Large decays over a long sequence: no overflow from exponentiating positive numbers."""
    x = _inputs(bsz=1, dim=4, n=2, length=500)
    y = selective_scan(x["u"], x["delta"].abs() * 20, x["A"] * 10, x["B"], x["C"])
    assert torch.isfinite(y).all()


def test_bad_shapes():
    x = _inputs()
    with pytest.raises(ValueError, match="u and delta"):
        selective_scan(x["u"], x["delta"][:, :, :5], x["A"], x["B"], x["C"])
    with pytest.raises(ValueError, match="A must be"):
        selective_scan(x["u"], x["delta"], x["A"][:3], x["B"], x["C"])
    with pytest.raises(ValueError, match="G dividing"):
        selective_scan(x["u"], x["delta"], x["A"], torch.randn(2, 4, 3, 37, dtype=torch.float64), x["C"])
