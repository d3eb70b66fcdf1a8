"""Weighted convolution: an ordinary convolution whose kernel is multiplied, element by element, by
a fixed (or learnable) spatial density ``Phi`` that weights each neighbour by its offset from the
centre pixel; same parameters as the plain convolution.

Paper: Cammarasana, Patanè, "Optimal Weighted Convolution for Classification and Denosing"
(arXiv 2505.24558); official code cammarasana123/weightedConvolution2.0 (``wConv.py``,
``wConv_Trainable.py``).

For an odd kernel size ``k = 2m + 1`` and density values ``den = (d_1, ..., d_m)`` (outermost
first), ``alpha = (d_1, ..., d_m, 1, d_m, ..., d_1)`` and ``Phi = alpha (x) alpha (x) ...`` (one
factor per spatial axis); the layer computes ``conv(x, W * Phi)``. ``Phi`` is built once, so a
forward pass costs one element-wise product on the kernel more than the plain convolution.
``den`` all ones is the plain convolution. The official README suggests, outermost value first,
3x3: ``[0.5, 1.5]``; 5x5: ``[0.05, 1], [0.5, 1.5]``; 7x7: ``[0.05, 0.5], [0.15, 1.0], [0.25, 1.5]``;
its trainable variant starts a 7x7 kernel at ``den = (0.27, 0.17, 0.54)``.

Shape:
    as ``nn.ConvNd`` with the same arguments.

Example:
    >>> conv = WeightedConv2d(16, 32, 5, padding=2, den=(0.2, 0.8))
    >>> conv(torch.randn(2, 16, 24, 24)).shape
    torch.Size([2, 32, 24, 24])
    >>> conv.density()[0]
    tensor([0.0400, 0.1600, 0.2000, 0.1600, 0.0400])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["WeightedConv1d", "WeightedConv2d", "WeightedConv3d", "weighted_conv", "weighted_conv_density"]


def weighted_conv_density(den: torch.Tensor, ndim: int) -> torch.Tensor:
    """``Phi``: the outer product over ``ndim`` axes of ``alpha = [den, 1, reversed(den)]``.

    Args:
        den: ``(m,)`` density values, outermost first.
        ndim: spatial dimensions.

    Returns:
        ``(2m + 1,) * ndim``.
    """
    if den.ndim != 1:
        raise ValueError(f"den must be one-dimensional, got shape {tuple(den.shape)}")
    if ndim not in (1, 2, 3):
        raise ValueError(f"ndim must be 1, 2 or 3, got {ndim}")
    alpha = torch.cat([den, den.new_ones(1), den.flip(0)])  # (2m + 1,)
    phi = alpha
    for _ in range(ndim - 1):
        phi = phi.unsqueeze(-1) * alpha  # (k,)*j -> (k,)*(j + 1)
    return phi


def weighted_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    den: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | str = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> torch.Tensor:
    """``conv(x, weight * weighted_conv_density(den))`` with ``F.conv1d/2d/3d`` chosen by ``weight.ndim``."""
    ndim = weight.ndim - 2
    phi = weighted_conv_density(den, ndim)
    if weight.shape[2:] != phi.shape:
        raise ValueError(f"a kernel of size {tuple(weight.shape[2:])} needs {(weight.shape[2] - 1) // 2} den values")
    conv = (F.conv1d, F.conv2d, F.conv3d)[ndim - 1]
    return conv(x, weight * phi, bias, stride, padding, dilation, groups)


class _WeightedConvNd:
    """The weighting shared by the three modules (mixed into ``nn.ConvNd``)."""

    _ndim = 0
    weight: nn.Parameter
    bias: nn.Parameter | None
    kernel_size: tuple[int, ...]

    def _setup_density(self, den: Sequence[float] | torch.Tensor | None, trainable: bool) -> None:
        k = self.kernel_size
        if len(set(k)) != 1 or k[0] % 2 == 0:
            raise ValueError(f"kernel_size must be odd and the same on every axis, got {k}")
        m = k[0] // 2
        values = torch.ones(m) if den is None else torch.as_tensor(den, dtype=torch.float32).flatten()
        if values.numel() != m:
            raise ValueError(f"a kernel of size {k[0]} needs {m} den values (outermost first), got {values.numel()}")
        self.trainable = trainable
        self.fused = False
        if trainable:  # per layer, learned with the weights (wConv_Trainable)
            self.den = nn.Parameter(values.clone())
        else:  # fixed; names and persistence as the official wConv, whose state dicts load unchanged
            self.register_buffer("alfa", torch.cat([values, torch.ones(1), values.flip(0)]))
            self.register_buffer("Phi", weighted_conv_density(values, self._ndim))

    def density(self) -> torch.Tensor:
        """``Phi``, the ``(k,) * ndim`` weighting of the kernel."""
        if self.trainable:
            return weighted_conv_density(self.den, self._ndim)
        return self.Phi

    def weighted_weight(self) -> torch.Tensor:
        """``weight * Phi``: the kernel the convolution uses."""
        return self.weight if self.fused else self.weight * self.density()

    def reset_parameters(self) -> None:
        """The official initialisation: Kaiming-normal (fan-out, ReLU) weights, zero bias."""
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weighted_weight(), self.bias)  # type: ignore[attr-defined]

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold ``Phi`` into ``weight`` (eval only): the forward pass becomes the plain convolution's
        and the density becomes ones, so the state dict still describes the same function."""
        if self.training:  # type: ignore[attr-defined]
            raise RuntimeError("fuse() is for deployment: call .eval() first")
        self.weight.mul_(self.density())
        if self.trainable:
            self.den.fill_(1.0)
        else:
            self.alfa.fill_(1.0)
            self.Phi.fill_(1.0)
        self.fused = True

    def extra_repr(self) -> str:
        den = self.den if self.trainable else self.alfa[: self.kernel_size[0] // 2]
        vals = ", ".join(f"{v:.4g}" for v in den.detach().flatten().tolist())
        s = super().extra_repr() + f", den=({vals})"  # type: ignore[misc]
        return s + (", trainable" if self.trainable else "") + (", fused" if self.fused else "")


_ARGS = """
    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode:
            as in ``nn.ConvNd``; the kernel must be odd and the same size on every axis.
        den: ``kernel_size // 2`` density values, outermost first (``None``: ones, the plain conv).
        trainable: learn ``den`` per layer (a parameter ``den``, ``kernel_size // 2`` more
            parameters); else ``den`` is fixed (buffers ``alfa`` and ``Phi``, as in the official code).
"""


def _init(self, conv_cls, args, den, trainable) -> None:
    conv_cls.__init__(self, *args)
    self._setup_density(den, trainable)


class WeightedConv1d(_WeightedConvNd, nn.Conv1d):
    __doc__ = "1-D weighted convolution: ``conv1d(x, W * alpha)`` (see the module docstring).\n" + _ARGS
    _ndim = 1

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | str = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        den: Sequence[float] | torch.Tensor | None = None,
        trainable: bool = False,
    ) -> None:
        args = (in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode)
        _init(self, nn.Conv1d, args, den, trainable)


class WeightedConv2d(_WeightedConvNd, nn.Conv2d):
    __doc__ = "2-D weighted convolution: ``conv2d(x, W * outer(alpha, alpha))`` (see the module docstring).\n" + _ARGS
    _ndim = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | str = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        den: Sequence[float] | torch.Tensor | None = None,
        trainable: bool = False,
    ) -> None:
        args = (in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode)
        _init(self, nn.Conv2d, args, den, trainable)


class WeightedConv3d(_WeightedConvNd, nn.Conv3d):
    __doc__ = "3-D weighted convolution: ``conv3d(x, W * alpha (x) alpha (x) alpha)`` (see the module docstring).\n"
    __doc__ += _ARGS
    _ndim = 3

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | str = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        den: Sequence[float] | torch.Tensor | None = None,
        trainable: bool = False,
    ) -> None:
        args = (in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode)
        _init(self, nn.Conv3d, args, den, trainable)
