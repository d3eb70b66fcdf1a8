"""SS2D: the scan orders against explicit pixel orders, the whole layer against a step-by-step
loop (float64), initialisation, gradients, fusion, errors."""

import math

import pytest
import torch
import torch.nn.functional as F

from subband.layers import SCANS, SS2D, cross_merge, cross_scan


def _orders(h: int, w: int, scans: str) -> list[list[tuple[int, int]]]:
    """The pixel visited at each step of each sequence, written out."""
    rows = [(i, j) for i in range(h) for j in range(w)]
    cols = [(i, j) for j in range(w) for i in range(h)]
    return {
        "cross2d": [rows, cols, rows[::-1], cols[::-1]],
        "bidi": [rows, rows[::-1]],
        "unidi": [rows],
    }[scans]


@pytest.mark.parametrize("scans", list(SCANS))
def test_cross_scan_and_merge_follow_the_pixel_orders(scans):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    orders = _orders(4, 5, scans)
    want = torch.stack([torch.stack([x[:, :, i, j] for i, j in order], -1) for order in orders], 1)
    torch.testing.assert_close(cross_scan(x, scans), want, rtol=0, atol=0)
    ys = torch.randn(2, len(orders), 3, 4 * 5, generator=g, dtype=torch.float64)
    merged = torch.zeros_like(x)
    for k, order in enumerate(orders):
        for t, (i, j) in enumerate(order):
            merged[:, :, i, j] += ys[:, k, :, t]
    torch.testing.assert_close(cross_merge(ys.view(2, len(orders), 3, 4, 5), scans), merged)
    # the adjoint: <scan(x), y> == <x, merge(y)>
    lhs = (cross_scan(x, scans) * ys).sum()
    rhs = (x * cross_merge(ys.view(2, len(orders), 3, 4, 5), scans)).sum()
    torch.testing.assert_close(lhs, rhs)


def _naive_ss2d(m: SS2D, x: torch.Tensor) -> torch.Tensor:
    """SS2D written out: per sequence, per step, the Mamba recurrence on one pixel at a time."""
    b, _, h, w = x.shape
    n, r, di = m.d_state, m.dt_rank, m.d_inner
    xz = m.in_proj(x)
    u, z = xz[:, :di], xz[:, di:]
    u = F.silu(m.conv2d(u))
    A = -torch.exp(m.A_logs)  # (K*D, N)
    y = torch.zeros_like(u)
    for k, order in enumerate(_orders(h, w, m.scans)):
        wx, wdt = m.x_proj_weight[k], m.dt_projs_weight[k]  # (R + 2N, D), (D, R)
        ak, dk, bias = A[k * di : (k + 1) * di], m.Ds[k * di : (k + 1) * di], m.dt_projs_bias[k]
        state = x.new_zeros(b, di, n)
        for i, j in order:
            ut = u[:, :, i, j]  # (B, D)
            proj = ut @ wx.T  # (B, R + 2N)
            delta = F.softplus(proj[:, :r] @ wdt.T + bias)  # (B, D)
            bt, ct = proj[:, r : r + n], proj[:, r + n :]
            state = torch.exp(delta[..., None] * ak) * state + (delta * ut)[..., None] * bt[:, None]
            y[:, :, i, j] += (state * ct[:, None]).sum(-1) + dk * ut
    y = F.layer_norm(y.permute(0, 2, 3, 1), (di,), m.out_norm.weight, m.out_norm.bias, m.out_norm.eps)
    return m.out_proj(y.permute(0, 3, 1, 2) * F.silu(z))


def _randomise(m: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5)
        for name, buf in m.named_buffers():
            if name.endswith("running_var"):
                buf.copy_(torch.rand(buf.shape, generator=g, dtype=buf.dtype) + 0.5)
            elif name.endswith("running_mean"):
                buf.copy_(torch.randn(buf.shape, generator=g, dtype=buf.dtype) * 0.1)


@pytest.mark.parametrize(
    "scans,projection,d_state,dt_rank",
    [("cross2d", "linear", 3, 2), ("bidi", "conv_bn", 1, "auto"), ("unidi", "linear", 2, 1)],
)
def test_ss2d_equals_the_step_by_step_loop(scans, projection, d_state, dt_rank):
    m = SS2D(5, d_state=d_state, ssm_ratio=1.4, dt_rank=dt_rank, scans=scans, projection=projection, chunk=3)
    m = m.double().eval()
    _randomise(m)
    x = torch.randn(2, 5, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(m(x), _naive_ss2d(m, x))
        # the chunk length is an implementation detail
        want = m(x)
        for chunk in (1, None):
            m.chunk = chunk
            torch.testing.assert_close(m(x), want)


def test_samples_do_not_mix():
    m = SS2D(4, d_state=2, scans="bidi", projection="conv_bn").double().eval()
    _randomise(m)
    x = torch.randn(3, 4, 5, 3, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(m(x)[1:2], m(x[1:2]))


def test_gradcheck():
    m = SS2D(2, d_state=2, ssm_ratio=1.0, scans="cross2d", chunk=2).double()
    _randomise(m, seed=3)
    names = ["x_proj_weight", "dt_projs_weight", "dt_projs_bias", "A_logs", "Ds"]
    params = {k: v.detach().clone().requires_grad_() for k, v in m.named_parameters() if k in names}
    x = torch.randn(1, 2, 2, 3, dtype=torch.float64, requires_grad=True)

    def fn(x, *p):
        return torch.func.functional_call(m, dict(zip(names, p)), (x,))

    assert torch.autograd.gradcheck(fn, (x, *(params[k] for k in names)))


def test_initialisation():
    torch.manual_seed(0)
    m = SS2D(32, d_state=4, ssm_ratio=2.0, scans="cross2d", init="mamba", dt_min=0.01, dt_max=0.05)
    assert m.d_inner == 64 and m.dt_rank == 2 and m.x_proj_weight.shape == (4, 2 + 8, 64)
    torch.testing.assert_close(m.A_logs, torch.log(torch.arange(1.0, 5.0)).expand(4 * 64, 4))
    assert (m.Ds == 1).all() and m.dt_projs_weight.abs().max() <= 2**-0.5
    dt = F.softplus(m.dt_projs_bias)
    assert dt.min() >= 0.01 * (1 - 1e-5) and dt.max() <= 0.05 * (1 + 1e-5)
    s = SS2D(32, d_state=1, scans="bidi", init="simple")
    assert (s.A_logs == 0).all() and (s.Ds == 1).all() and s.A_logs.shape == (2 * 64, 1)
    assert 0 <= s.dt_projs_weight.min() and s.dt_projs_weight.max() <= 0.1 and s.dt_projs_bias.max() <= 0.1
    assert m.x_proj_weight.abs().max() <= 1 / math.sqrt(64)


def test_fuse_keeps_the_output():
    m = SS2D(6, d_state=2, scans="bidi", projection="conv_bn").double().eval()
    _randomise(m)
    x = torch.randn(2, 6, 4, 4, dtype=torch.float64)
    with torch.no_grad():
        want = m(x)
        m.fuse()
        assert not any(isinstance(b, torch.nn.BatchNorm2d) for b in m.modules())
        torch.testing.assert_close(m(x), want)
    with pytest.raises(RuntimeError, match="eval"):
        SS2D(6, projection="conv_bn").fuse()


def test_bad_arguments():
    with pytest.raises(ValueError, match="scans must be one of"):
        SS2D(8, scans="diagonal")
    with pytest.raises(ValueError, match="init must be one of"):
        SS2D(8, init="v1")
    with pytest.raises(ValueError, match="projection must be one of"):
        SS2D(8, projection="mlp")
    with pytest.raises(ValueError, match="d_conv must be odd"):
        SS2D(8, d_conv=4)
    with pytest.raises(ValueError, match="dt_rank"):
        SS2D(8, dt_rank=0)
    with pytest.raises(ValueError, match="d_state"):
        SS2D(8, d_state=0)
    with pytest.raises(ValueError, match="expects"):
        SS2D(8)(torch.randn(1, 7, 3, 3))
    with pytest.raises(ValueError, match="ys must be"):
        cross_merge(torch.randn(1, 2, 3, 4, 4), "cross2d")
    with pytest.raises(ValueError, match="scans must be one of"):
        cross_scan(torch.randn(1, 2, 3, 3), "zigzag")
