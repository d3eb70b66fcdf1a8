"""LinearScope: A(x) x + b(x) == f(x), A(x) == the Jacobian for piecewise-linear nets, adjointness,
hooks always removed, clear errors where the assumptions fail."""

import pytest
import torch
from torch import nn

import subband
from subband.interpret import LinearScope
from subband.layers import LayerNorm2d


def _piecewise_linear_net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1),
        nn.LeakyReLU(0.1),
        nn.PReLU(8),
        nn.ReLU6(),
        nn.AdaptiveMaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32, 5),
    )
    with torch.no_grad():  # non-trivial BatchNorm statistics
        net[1].running_mean.normal_()
        net[1].running_var.uniform_(0.5, 2.0)
        net[0].weight.mul_(3)  # push some activations past ReLU6's 6
    return net.double().eval()


def test_piecewise_linear_interpreter_is_the_jacobian():
    net = _piecewise_linear_net()
    x = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    lin = LinearScope(net).interpret(x)
    torch.testing.assert_close(lin.output, net(x))
    torch.testing.assert_close(lin.apply(x) + lin.bias, net(x), atol=1e-5, rtol=0)
    jac = torch.func.jacrev(net)(x).reshape(5, -1)  # (outputs, inputs)
    a = torch.stack(
        [lin.apply(torch.eye(128, dtype=torch.float64)[i].view(1, 2, 8, 8)).flatten() for i in range(128)], 1
    )
    torch.testing.assert_close(a, jac, atol=1e-10, rtol=0)
    at = torch.stack([lin.apply_transpose(torch.eye(5, dtype=torch.float64)[i].view(1, 5)).flatten() for i in range(5)])
    torch.testing.assert_close(at, jac, atol=1e-10, rtol=0)
    torch.testing.assert_close(lin.column((1, 3, 4)).flatten(), jac[:, 1 * 64 + 3 * 8 + 4])
    torch.testing.assert_close(lin.row(2).flatten(), jac[2])


def test_apply_transpose_is_the_adjoint_of_apply():
    net = _piecewise_linear_net()
    x = torch.randn(3, 2, 8, 8, dtype=torch.float64)
    lin = LinearScope(net).interpret(x)
    v, u = torch.randn_like(x), torch.randn(3, 5, dtype=torch.float64)
    torch.testing.assert_close((lin.apply(v) * u).sum(), (v * lin.apply_transpose(u)).sum())


def test_gated_units_reproduce_the_output_but_not_the_jacobian():
    """GELU, SiLU, hard-swish and the norms in gating form: A(x) x + b(x) == f(x) holds by
    construction (the gate is frozen at x), while A(x) is not the Jacobian."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(2, 8, 3, padding=1), LayerNorm2d(8), nn.GELU(), nn.Conv2d(8, 8, 1), nn.GroupNorm(2, 8), nn.SiLU(),
        nn.Conv2d(8, 4, 1), nn.Hardswish(), nn.Tanh(), nn.Flatten(), nn.LayerNorm(4 * 36), nn.Linear(4 * 36, 3),
    ).double().eval()  # fmt: skip
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    lin = LinearScope(net).interpret(x)
    torch.testing.assert_close(lin.apply(x) + lin.bias, net(x), atol=1e-10, rtol=0)
    u = torch.randn(2, 3, dtype=torch.float64)
    jt = torch.autograd.functional.vjp(net, x, u)[1]
    assert (lin.apply_transpose(u) - jt).abs().max() > 1e-3


def test_votes_sum_to_output_minus_bias_and_bias_share():
    net = _piecewise_linear_net()
    x = torch.randn(2, 2, 8, 8, dtype=torch.float64)
    lin = LinearScope(net).interpret(x)
    votes = lin.votes()
    assert votes.shape == (2, 5, 8, 8)
    torch.testing.assert_close(votes.sum((2, 3)), lin.output - lin.bias)
    share = lin.bias_share()
    assert share.shape == (2, 5) and ((share >= 0) & (share <= 1)).all()


def test_hooks_are_removed_even_after_errors():
    net = _piecewise_linear_net()
    x = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    lin = LinearScope(net).interpret(x)
    lin.apply(x)
    with pytest.raises(ValueError, match="shape"):
        lin.apply(torch.randn(1, 2, 4, 4, dtype=torch.float64))
    assert all(not m._forward_hooks for m in net.modules())
    torch.testing.assert_close(net(x), lin.output)  # the model runs as before


class _SqueezeGate(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x.mean((2, 3), keepdim=True))  # a functional non-linearity


def test_unhookable_nonlinearity_and_training_mode_are_refused():
    net = nn.Sequential(nn.Conv2d(2, 4, 3), _SqueezeGate(), nn.Flatten(), nn.Linear(4 * 16, 2)).eval()
    with pytest.raises(ValueError, match="not affine"):
        LinearScope(net).interpret(torch.randn(1, 2, 6, 6))
    with pytest.raises(ValueError, match="eval mode"):
        LinearScope(_piecewise_linear_net().train()).interpret(torch.randn(1, 2, 8, 8, dtype=torch.float64))


@pytest.mark.parametrize("name", ["convnext_atto", "wavemix_lite_144_7"])
def test_library_models(name):
    torch.manual_seed(0)
    model = subband.create_model(name).double().eval()
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    lin = LinearScope(model).interpret(x)
    torch.testing.assert_close(lin.apply(x) + lin.bias, model(x), atol=1e-8, rtol=0)
    u = torch.randn_like(lin.output)
    v = torch.randn_like(x)
    torch.testing.assert_close((lin.apply(v) * u).sum(), (v * lin.apply_transpose(u)).sum())
