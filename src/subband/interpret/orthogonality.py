"""Orthogonality of convolutional layers with circular padding ("Existence, Stability and
Scalability of Orthogonal Convolutional Neural Networks", Achour, Malgouyres, Mamalet; JMLR 2022,
arXiv 2108.05623; the regulariser is that of "Orthogonal Convolutional Neural Networks", Wang,
Chen, Chakraborty, Yu; CVPR 2020).

A 2-D convolution with ``C`` input channels, ``M`` output channels, a ``k x k`` kernel and stride
``S`` on ``N x N`` images with circular padding is a linear operator ``R^{C N^2} -> R^{M (N/S)^2}``.

- :func:`conv_singular_values`: all its singular values, from the FFT of the kernel (Sedghi, Gupta,
  Long 2019): the operator is block-diagonalised by the 2-D DFT into ``(N/S)^2`` matrices of size
  ``M x C S^2`` (a stride ``S`` is first turned into a stride-1 convolution on the ``S^2``
  polyphase components of the input).
- :func:`orthogonality_regularizer`: ``L_orth(K) = ||conv(K, K, padding P, stride S) - I_r0||_F^2``
  with ``P = floor((k-1)/S) S`` (row-orthogonal case, ``M <= C S^2``), minus ``M - C S^2`` in the
  column-orthogonal case. It is zero exactly when the layer is orthogonal (for ``N`` large enough),
  and in the row-orthogonal case ``||K K^T - I||_F^2 = (N/S)^2 L_orth(K)``.
- :func:`orthogonality_error`: the exact Frobenius and spectral distances of the operator to an
  isometry, from the singular values.
- :func:`orthogonal_conv_exists`: the paper's existence conditions for circular padding: in the
  row-orthogonal case (``M <= C S^2``) an orthogonal layer exists iff ``M <= C k^2``; in the
  column-orthogonal case (``M >= C S^2``) iff ``S <= k``.
- :func:`orthogonal_conv_kernel`: an orthogonal ``k x k`` kernel by construction (an orthogonal
  1x1 conv composed with block convolutions ``[P, I - P]`` of symmetric projections, which are
  orthogonal; Xiao et al. 2018), for initialisation and tests.

Example:
    >>> w = orthogonal_conv_kernel(4, 3, generator=torch.Generator().manual_seed(0))
    >>> s = conv_singular_values(w, 8)
    >>> bool(torch.allclose(s, torch.ones_like(s), atol=1e-5))
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "conv_singular_values",
    "orthogonality_regularizer",
    "orthogonality_error",
    "orthogonal_conv_exists",
    "orthogonal_conv_kernel",
]


def _check(weight: torch.Tensor, stride: int) -> None:
    if weight.ndim != 4:
        raise ValueError(f"weight must be a 2-D conv kernel (M, C, kh, kw), got shape {tuple(weight.shape)}")
    if stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride}")


def _polyphase(weight: torch.Tensor, stride: int) -> torch.Tensor:
    """A stride-``S`` kernel ``(M, C, kh, kw)`` as the stride-1 kernel ``(M, C S^2, ceil(kh/S),
    ceil(kw/S))`` acting on the ``S^2`` polyphase components of the input."""
    if stride == 1:
        return weight
    m, c, kh, kw = weight.shape
    ph, pw = -kh % stride, -kw % stride
    w = F.pad(weight, (0, pw, 0, ph))  # (M, C, S a1 + a0, S b1 + b0)
    w = w.view(m, c, (kh + ph) // stride, stride, (kw + pw) // stride, stride)  # (M, C, a1, a0, b1, b0)
    return w.permute(0, 1, 3, 5, 2, 4).reshape(m, c * stride * stride, (kh + ph) // stride, (kw + pw) // stride)


def conv_singular_values(weight: torch.Tensor, size: int, stride: int = 1) -> torch.Tensor:
    """Singular values of the circular convolution with ``weight`` on ``size x size`` images.

    Args:
        weight: ``(M, C, kh, kw)``.
        size: image side ``N`` (a multiple of ``stride``, at least the kernel size).
        stride: the convolution's stride ``S``.

    Returns:
        ``((N/S)^2 * min(M, C S^2),)``, in descending order within each frequency.
    """
    _check(weight, stride)
    if size % stride or size < max(weight.shape[-2:]):
        raise ValueError(f"size must be a multiple of stride ({stride}) and >= the kernel size, got {size}")
    w = _polyphase(weight, stride)
    n = size // stride
    spectrum = torch.fft.fft2(w, s=(n, n))  # (M, C S^2, n, n): one matrix per frequency
    return torch.linalg.svdvals(spectrum.permute(2, 3, 0, 1)).flatten()


def orthogonality_regularizer(weight: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """``L_orth(K)`` (see the module docstring): differentiable, independent of the image size."""
    _check(weight, stride)
    m, c, k, _ = weight.shape
    p = (k - 1) // stride * stride
    kk = F.conv2d(weight, weight, padding=p, stride=stride)  # (M, M, 2P/S + 1, 2P/S + 1)
    target = torch.zeros_like(kk)
    centre = kk.shape[-1] // 2
    target[:, :, centre, centre] = torch.eye(m, dtype=weight.dtype, device=weight.device)
    loss = (kk - target).pow(2).sum()
    return loss - max(m - c * stride * stride, 0)


def orthogonality_error(weight: torch.Tensor, size: int, stride: int = 1) -> dict[str, float]:
    """Distances of the operator to an isometry: ``frobenius = sqrt(sum (s^2 - 1)^2)`` over the
    ``min`` side's singular values and ``spectral = max |s^2 - 1|``."""
    s2 = conv_singular_values(weight, size, stride).pow(2)
    return {"frobenius": float((s2 - 1).pow(2).sum().sqrt()), "spectral": float((s2 - 1).abs().max())}


def orthogonal_conv_exists(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> bool:
    """Whether an orthogonal 2-D convolution with circular padding exists (the paper's conditions)."""
    if min(in_channels, out_channels, kernel_size, stride) < 1:
        raise ValueError("channels, kernel_size and stride must be positive")
    if out_channels <= in_channels * stride * stride:  # row-orthogonal case
        return out_channels <= in_channels * kernel_size * kernel_size
    return stride <= kernel_size  # column-orthogonal case


def _compose(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Kernel of the composition ``conv_b(conv_a(x))`` (both ``(C, C, kh, kw)``, correlations)."""
    # full 2-D convolution of matrix-valued kernels, K[t] = sum_s b[s] @ a[t - s]: a's input
    # channels as the batch, its output channels as the channels, b flipped as the weight
    out = F.conv2d(a.permute(1, 0, 2, 3), b.flip(-2, -1), padding=(b.shape[-2] - 1, b.shape[-1] - 1))
    return out.permute(1, 0, 2, 3).contiguous()  # (C_in, C_out, ...) -> (C_out, C_in, ...)


def orthogonal_conv_kernel(
    channels: int,
    kernel_size: int,
    dtype: torch.dtype | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A ``(channels, channels, k, k)`` kernel whose circular convolution (stride 1) is orthogonal."""
    if channels < 1 or kernel_size < 1:
        raise ValueError(f"channels and kernel_size must be positive, got {channels}, {kernel_size}")
    dtype = dtype or torch.get_default_dtype()

    def orthogonal(n: int) -> torch.Tensor:
        q, r = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
        return q * torch.sign(torch.diagonal(r))

    kernel = orthogonal(channels).view(channels, channels, 1, 1)
    for axis in (-2, -1):
        for _ in range(kernel_size - 1):
            v = orthogonal(channels)[:, : max(channels // 2, 1)]
            p = v @ v.T  # a symmetric projection
            taps = torch.stack([p, torch.eye(channels, dtype=torch.float64) - p], -1)  # (C, C, 2)
            block = taps.unsqueeze(-2) if axis == -1 else taps.unsqueeze(-1)  # (C, C, 1, 2) or (C, C, 2, 1)
            kernel = _compose(kernel, block)
    return kernel.to(dtype)
