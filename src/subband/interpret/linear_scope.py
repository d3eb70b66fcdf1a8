"""LinearScope: a network and its linear interpreter, run together ("A Tour of Convolutional
Networks Guided by Linear Interpreters", Navarrete Michelini, Liu, Lu, Jiang; arXiv 1908.05168).

For an input ``x`` every non-linear unit is frozen at the state ``x`` put it in: a ReLU becomes
multiplication by its 0/1 mask, a max-pool a selection of the positions it picked, a GELU or SiLU
its gating form ``v * g(x)`` (``g`` = the normal CDF or the logistic, frozen at ``x``), a
LayerNorm/GroupNorm the affine map with its scale ``1/sigma(x)`` frozen. The network becomes an
affine map of its input, the *linear interpreter*

    f(x) = A(x) x + b(x),

which reproduces ``f(x)`` at ``x`` by construction. For piecewise-linear networks (ReLU,
LeakyReLU, PReLU, max-pool, ReLU6, hard-tanh, conv, linear, BatchNorm in eval) ``A(x)`` is the
Jacobian of ``f`` at ``x``; for gated units (GELU, SiLU, hard-swish) and normalisations it is not,
but ``A(x) x + b(x) = f(x)`` still holds.

:class:`LinearScope` hooks the leaf modules (the hooks exist only inside each call and are always
removed); :meth:`LinearScope.interpret` runs the model once on ``x`` with the units in frozen form
and returns a :class:`LinearInterpreter`, which applies ``A(x)`` (a replay of the network on
another input with the recorded states), ``A(x)^T`` (one backward pass through the recorded
forward; no dense matrix), gives ``b(x)``, rows and columns of ``A(x)`` as images, the per-class
pixel-wise votes ``(row_c of A) * x`` and the share of each output that comes from the biases.

Non-linear operations called as functions inside a module's ``forward`` (``torch.sigmoid`` in a
squeeze-excitation block, attention softmax, products of two activations) cannot be hooked:
:meth:`LinearScope.interpret` checks that the replay is affine and raises otherwise.

Example:
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(4)).eval()
    >>> x = torch.randn(1, 3, 8, 8)
    >>> lin = LinearScope(net).interpret(x)
    >>> torch.allclose(lin.apply(x) + lin.bias, net(x), atol=1e-5)
    True
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import LayerNorm2d

__all__ = ["LinearScope", "LinearInterpreter", "SUPPORTED_UNITS"]

# the units LinearScope freezes; every other module is taken as affine (checked by interpret)
_UNITS = (
    nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish, nn.GELU, nn.SiLU, nn.Tanh,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
    nn.LayerNorm, nn.GroupNorm,
)  # fmt: skip


def _inverse_std(x: torch.Tensor, dims: tuple[int, ...], eps: float) -> torch.Tensor:
    """``1 / sqrt(var + eps)`` over ``dims``: the scale a normalisation freezes."""
    return torch.rsqrt(x.var(dims, unbiased=False, keepdim=True) + eps)


class _State:
    """What a unit recorded at ``x``: ``kind`` and tensors to replay it on another input."""

    __slots__ = ("kind", "tensors")

    def __init__(self, kind: str, *tensors: torch.Tensor) -> None:
        self.kind, self.tensors = kind, tensors


def _record(module: nn.Module, x: torch.Tensor) -> _State:  # noqa: PLR0911, PLR0912
    """The frozen state of ``module`` at input ``x`` (raises for modules it does not know)."""
    if isinstance(module, nn.ReLU):
        return _State("gate", (x > 0).to(x.dtype), torch.zeros((), dtype=x.dtype, device=x.device))
    if isinstance(module, nn.LeakyReLU):
        return _State("gate", torch.where(x > 0, 1.0, module.negative_slope).to(x.dtype), x.new_zeros(()))
    if isinstance(module, nn.PReLU):
        w = (
            module.weight.detach().view(-1, *([1] * (x.ndim - 2)))
            if module.weight.numel() > 1
            else module.weight.detach()
        )
        return _State("gate", torch.where(x > 0, torch.ones_like(x), w.expand_as(x)), x.new_zeros(()))
    if isinstance(module, nn.Hardtanh):  # includes ReLU6
        lo, hi = module.min_val, module.max_val
        inside = ((x > lo) & (x < hi)).to(x.dtype)
        return _State("gate", inside, torch.where(x >= hi, hi, 0.0) + torch.where(x <= lo, lo, 0.0))
    if isinstance(module, nn.Hardsigmoid):
        inside = ((x > -3) & (x < 3)).to(x.dtype)
        return _State("gate", inside / 6, inside * 0.5 + (x >= 3).to(x.dtype))
    if isinstance(module, nn.Hardswish):
        return _State("gate", F.hardsigmoid(x), x.new_zeros(()))
    if isinstance(module, nn.GELU):
        if module.approximate == "none":
            return _State("gate", torch.special.ndtr(x), x.new_zeros(()))  # the normal CDF
        g = torch.nan_to_num(F.gelu(x, approximate="tanh") / x, nan=0.5)
        return _State("gate", g, x.new_zeros(()))
    if isinstance(module, nn.SiLU):
        return _State("gate", torch.sigmoid(x), x.new_zeros(()))
    if isinstance(module, nn.Tanh):  # secant form: tanh(x) = x * (tanh(x) / x)
        g = torch.where(x.abs() > 1e-6, torch.tanh(x) / torch.where(x == 0, 1.0, x), 1.0)
        return _State("gate", g, x.new_zeros(()))
    if isinstance(module, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
        nd = {nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3}[type(module)]
        pool = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[nd]
        _, idx = pool(x, module.kernel_size, module.stride, module.padding, module.dilation,
                      ceil_mode=module.ceil_mode, return_indices=True)  # fmt: skip
        return _State("select", idx)
    if isinstance(module, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)):
        pool = F.adaptive_max_pool1d if isinstance(module, nn.AdaptiveMaxPool1d) else F.adaptive_max_pool2d
        return _State("select", pool(x, module.output_size, return_indices=True)[1])
    if isinstance(module, LayerNorm2d):
        return _State("norm", _inverse_std(x, (1,), module.eps))
    if isinstance(module, nn.LayerNorm):
        return _State("norm", _inverse_std(x, tuple(range(-len(module.normalized_shape), 0)), module.eps))
    if isinstance(module, nn.GroupNorm):
        return _State("norm", _inverse_std(x.reshape(*x.shape[:1], module.num_groups, -1), (2,), module.eps))
    raise TypeError(f"LinearScope does not know how to linearise {type(module).__name__}")


def _layer_norm_state(module: nn.LayerNorm, x: torch.Tensor) -> tuple[torch.Tensor, _State]:
    """LayerNorm (or LayerNorm2d over channels) output and its frozen ``1/sigma`` in one call."""
    channels_first = isinstance(module, LayerNorm2d)
    xx = x.permute(0, 2, 3, 1) if channels_first else x  # (B, C, H, W) -> (B, H, W, C)
    y, _, rstd = torch.native_layer_norm(xx, module.normalized_shape, module.weight, module.bias, module.eps)
    if channels_first:
        y, rstd = y.permute(0, 3, 1, 2), rstd.permute(0, 3, 1, 2)  # back to (B, C, H, W), (B, 1, H, W)
    return y, _State("norm", rstd)


def _replay(module: nn.Module, state: _State, v: torch.Tensor) -> torch.Tensor:
    """``module`` at the recorded state applied to ``v`` (affine in ``v``)."""
    if state.kind == "gate":
        g, c = state.tensors
        return v * g + c
    if state.kind == "select":
        (idx,) = state.tensors
        n, ch = v.shape[:2]
        flat = v.reshape(n, ch, -1).gather(2, idx.reshape(n, ch, -1))  # the positions picked at x
        return flat.view(idx.shape)
    (inv,) = state.tensors  # norm: centre the replay input, scale by the frozen 1/sigma(x)
    if isinstance(module, LayerNorm2d):
        y = (v - v.mean(1, keepdim=True)) * inv
        return y * module.weight.view(-1, 1, 1) + module.bias.view(-1, 1, 1)
    if isinstance(module, nn.LayerNorm):
        dims = tuple(range(-len(module.normalized_shape), 0))
        y = (v - v.mean(dims, keepdim=True)) * inv
        return y * module.weight + module.bias if module.elementwise_affine else y
    n, c = v.shape[:2]  # GroupNorm
    vg = v.reshape(n, module.num_groups, -1)
    y = ((vg - vg.mean(2, keepdim=True)) * inv).view_as(v)
    if module.affine:
        shape = (1, c) + (1,) * (v.ndim - 2)
        y = y * module.weight.view(shape) + module.bias.view(shape)
    return y


class _Frozen(torch.autograd.Function):
    """The unit's own output in the forward (one native call) and, as the backward, the adjoint of
    its frozen form: the recorded forward differentiates as the linear interpreter."""

    @staticmethod
    def forward(ctx, x, module, state, value=None):  # type: ignore[override]
        ctx.module, ctx.state = module, state
        ctx.shape = x.shape
        if value is not None:
            return value
        if isinstance(module, (nn.GELU, nn.SiLU, nn.Hardswish)):  # x * gate: the gate is already computed
            return x * state.tensors[0]
        return type(module).forward(module, x)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        m, state = ctx.module, ctx.state
        if state.kind == "gate":
            return grad * state.tensors[0], None, None, None
        if state.kind == "select":
            (idx,) = state.tensors
            n, c = grad.shape[:2]
            gx = grad.new_zeros(n, c, math.prod(ctx.shape[2:]))
            gx.scatter_add_(2, idx.reshape(n, c, -1), grad.reshape(n, c, -1))
            return gx.view(ctx.shape), None, None, None
        with torch.enable_grad():  # norms: differentiate the frozen form (cheap, affine)
            v = torch.zeros(ctx.shape, dtype=grad.dtype, device=grad.device, requires_grad=True)
            (gx,) = torch.autograd.grad(_replay(m, state, v), v, grad)
        return gx, None, None, None


SUPPORTED_UNITS = (
    "ReLU, LeakyReLU, PReLU, ReLU6/Hardtanh, Hardsigmoid, Hardswish, GELU, SiLU, Tanh, MaxPool1d/2d/3d, "
    "AdaptiveMaxPool1d/2d, LayerNorm, LayerNorm2d, GroupNorm; affine modules pass through"
)


class LinearScope:
    """Hooks a model's non-linear units to run its linear interpreter (see the module docstring).

    Args:
        model: any ``nn.Module`` in eval mode whose non-linear operations are modules of the
            supported kinds (:data:`SUPPORTED_UNITS`); every other module is taken as affine, and
            :meth:`interpret` checks that the result is.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    @contextlib.contextmanager
    def _hooks(self, fn: Callable[[nn.Module, torch.Tensor], torch.Tensor]) -> Iterator[None]:
        """Route every unit's forward through ``fn(unit, input)`` (an instance attribute shadowing
        the class's ``forward``, so the unit's own computation is not run twice); always undone."""
        patched = []
        try:
            for m in self.model.modules():
                if isinstance(m, _UNITS) and "forward" not in vars(m):
                    m.forward = functools.partial(fn, m)
                    patched.append(m)
            yield
        finally:
            for m in patched:
                del m.forward

    def interpret(self, x: torch.Tensor, check: bool = True, atol: float = 1e-4) -> LinearInterpreter:
        """Run the model on ``x`` with every unit frozen at ``x`` and return the interpreter.

        Args:
            x: the input (any batch size; each sample gets its own ``A`` and ``b``).
            check: verify that the replay is affine in its input (``A(2x) - A(x) = A(x) - A(0)``
                up to ``atol`` relative to the output's scale) and raise otherwise.
        """
        if self.model.training:
            raise ValueError("LinearScope needs the model in eval mode (BatchNorm/Dropout in training are not affine)")
        states: list[tuple[nn.Module, _State]] = []

        def capture(m: nn.Module, inp: torch.Tensor) -> torch.Tensor:
            value = None
            if isinstance(m, nn.LayerNorm):  # one native call gives the output and the frozen 1/sigma
                value, state = _layer_norm_state(m, inp.detach())
            else:
                state = _record(m, inp.detach())
            states.append((m, state))
            return _Frozen.apply(inp, m, state, value)  # the unit's value; backward: its frozen (affine) form

        x_in = x.detach().clone().requires_grad_()
        with torch.enable_grad(), self._hooks(capture):
            out = self.model(x_in)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"LinearScope needs a model that returns one tensor, got {type(out).__name__}")
        lin = LinearInterpreter(self, x.detach(), x_in, out, states)
        if check:
            lin.check_affine(atol)
        return lin


class LinearInterpreter:
    """``f(x) = A(x) x + b(x)`` for one input batch (built by :meth:`LinearScope.interpret`)."""

    def __init__(
        self,
        scope: LinearScope,
        x: torch.Tensor,
        x_in: torch.Tensor,
        out: torch.Tensor,
        states: list[tuple[nn.Module, _State]],
    ) -> None:
        self.scope, self.x, self._x_in, self._out, self._states = scope, x, x_in, out, states
        self.output = out.detach()
        self._bias: torch.Tensor | None = None

    def _run(self, v: torch.Tensor) -> torch.Tensor:
        """The network with every unit replaying its recorded state: ``A(x) v + b(x)``."""
        if v.shape != self.x.shape:
            raise ValueError(
                f"input must have the interpreted input's shape {tuple(self.x.shape)}, got {tuple(v.shape)}"
            )
        queue = iter(self._states)

        def replay(m: nn.Module, inp: torch.Tensor) -> torch.Tensor:
            owner, state = next(queue)
            if owner is not m:
                raise RuntimeError("the model called its units in a different order than when it was interpreted")
            return _replay(m, state, inp)

        with self.scope._hooks(replay):
            return self.scope.model(v)

    @property
    def bias(self) -> torch.Tensor:
        """``b(x)``: the interpreter's output for a zero input."""
        if self._bias is None:
            with torch.no_grad():
                self._bias = self._run(torch.zeros_like(self.x))
        return self._bias

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        """``A(x) v``."""
        with torch.no_grad():
            return self._run(v) - self.bias

    def apply_transpose(self, u: torch.Tensor) -> torch.Tensor:
        """``A(x)^T u`` by one backward pass through the recorded forward (``u`` shaped like the output)."""
        if u.shape != self._out.shape:
            raise ValueError(f"u must have the output's shape {tuple(self._out.shape)}, got {tuple(u.shape)}")
        (g,) = torch.autograd.grad(self._out, self._x_in, u, retain_graph=True)
        return g

    def column(self, index: int | tuple[int, ...]) -> torch.Tensor:
        """Column of ``A(x)`` for input position ``index`` (an index into one sample, without the
        batch dim; the first sample's matrix): the output's response to a unit impulse there."""
        e = torch.zeros_like(self.x[:1])
        e[(0, *((index,) if isinstance(index, int) else index))] = 1
        return self._sample_op(e, self.apply)

    def row(self, index: int | tuple[int, ...]) -> torch.Tensor:
        """Row of ``A(x)`` for output position ``index`` of the first sample, shaped like the input."""
        e = torch.zeros_like(self.output)
        e[(0, *((index,) if isinstance(index, int) else index))] = 1
        return self.apply_transpose(e)[:1]

    def _sample_op(self, e: torch.Tensor, op: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        v = torch.zeros_like(self.x)
        v[:1] = e
        return op(v)[:1]

    def votes(self, classes: int | list[int] | None = None) -> torch.Tensor:
        """Pixel-wise votes ``(row_c of A(x)) * x`` summed over channels: ``(B, K, H, W)`` for the
        classes (all outputs by default) of a classifier with output ``(B, num_classes)``. Each
        map sums to ``f_c(x) - b_c(x)``."""
        if self.output.ndim != 2:
            raise ValueError(f"votes are for classifiers with output (B, classes), got {tuple(self.output.shape)}")
        ks = range(self.output.shape[1]) if classes is None else [classes] if isinstance(classes, int) else classes
        maps = []
        for k in ks:
            u = torch.zeros_like(self.output)
            u[:, k] = 1
            maps.append((self.apply_transpose(u) * self.x).sum(1))  # (B, H, W)
        return torch.stack(maps, 1)

    def bias_share(self) -> torch.Tensor:
        """``|b(x)| / (|A(x) x| + |b(x)|)`` per output: how much of each output the biases make."""
        ax = self.output - self.bias
        return self.bias.abs() / (ax.abs() + self.bias.abs()).clamp_min(1e-12)

    def check_affine(self, atol: float = 1e-4) -> None:
        """Raise if the replay is not affine in its input (an unhooked non-linear operation)."""
        with torch.no_grad():
            zero, one, two = self.bias, self._run(self.x), self._run(2 * self.x)
        scale = max(float(self.output.abs().max()), 1.0)
        err = float(((two - one) - (one - zero)).abs().max())
        mismatch = float((one - self.output).abs().max())
        if err > atol * scale or mismatch > atol * scale:
            raise ValueError(
                f"the linear interpreter is not affine (error {err:.2e}, replay vs output {mismatch:.2e}): the model "
                f"calls non-linear operations LinearScope cannot hook (functional calls such as torch.sigmoid, "
                f"attention, products of activations). Hookable units: {SUPPORTED_UNITS}"
            )
