"""ConvNeXt-dcls: "Dilated convolution with learnable spacings" (Khalfaoui-Hassani, Pellegrini,
Masquelier; arXiv 2112.03740).

ConvNeXt with every 7x7 depthwise convolution replaced by a depthwise DCLS convolution
(:class:`~subband.layers.DclsConv2d`): ``kernel_count`` weights per channel at learnable positions
in a ``17 x 17`` window, bilinear interpolation (``"v0"``), padding 8. All blocks of a stage share
one position tensor ``P`` of shape ``(2, dim, 1, kernel_count)``, registered once on the stage
(``stages.{i}.P``); weights and biases stay per block. At 34 weights per channel (T; 40 for S) the
network has ConvNeXt's parameter count.

Configuration checked against the official repository (K-H-Ismail/ConvNeXt-dcls,
``models/convnext_dcls.py``: kernel counts, window 17, version ``v0``, positions ~ N(0, 0.5) clamped
to the window and shared per stage, truncated-normal 0.02 DCLS weights with zero bias) and built and
counted there. The official model stores the shared positions once per block
(``stages.{i}.{j}.dwconv.P``); :func:`convert_official_state_dict` maps its checkpoints here.
Differs from it: the official training clamps the positions to the window after every optimiser
step (``clamp_parameters``); this model offers :meth:`ConvNeXtDcls.clamp_parameters` but the
generic training loop does not call it (positions outside the window simply drop out of the
kernel). Everything else is :mod:`subband.models.convnext`'s ConvNeXt.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import nn

from ..layers import DclsConv2d
from . import convnext
from ._registry import Paper, register_model

__all__ = ["ConvNeXtDcls", "convert_official_state_dict"]


def _dcls_dw(dim: int, kernel_size: int, kernel_count: int, dilated_kernel_size: int, version: str) -> DclsConv2d:
    """The depthwise DCLS conv that replaces a block's ``kernel_size`` conv (whose size it ignores)."""
    pad = dilated_kernel_size // 2
    return DclsConv2d(dim, dim, kernel_count, dilated_kernel_size, padding=pad, groups=dim, version=version)


class ConvNeXtDcls(convnext.ConvNeXt):
    """ConvNeXt with depthwise DCLS convolutions whose positions are shared per stage.

    Args:
        depths: blocks per stage.
        dims: channels per stage.
        kernel_count: DCLS weights per channel.
        dilated_kernel_size: DCLS window size.
        version: DCLS interpolation (``"v0"`` bilinear, as in the paper; see
            :class:`~subband.layers.DclsConv2d`).
        **kwargs: the other :class:`~subband.models.convnext.ConvNeXt` arguments.

    Shape:
        ``(B, in_chans, H, W) -> (B, num_classes)``; features at strides 4, 8, 16, 32.
    """

    def __init__(
        self,
        depths: Sequence[int] = (3, 3, 9, 3),
        dims: Sequence[int] = (96, 192, 384, 768),
        kernel_count: int = 34,
        dilated_kernel_size: int = 17,
        version: str = "v0",
        **kwargs,
    ) -> None:
        dw = partial(_dcls_dw, kernel_count=kernel_count, dilated_kernel_size=dilated_kernel_size, version=version)
        super().__init__(depths, dims, conv_dw_layer=dw, **kwargs)
        for stage in self.stages:
            layers = [block.conv_dw for block in stage.blocks]
            stage.P = nn.Parameter(layers[0].P.detach().clone())  # (2, dim, 1, kernel_count), one per stage
            for layer in layers:
                layer.share_positions(stage.P)
                nn.init.trunc_normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)

    @torch.no_grad()
    def clamp_parameters(self) -> None:
        """Clamp every stage's positions to the window (the official training does so after each step)."""
        for stage in self.stages:
            stage.blocks[0].conv_dw.clamp_parameters()


def convert_official_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a K-H-Ismail/ConvNeXt-dcls checkpoint's keys to subband's: ConvNeXt's renaming, and the
    per-block copies of each stage's positions (identical in the official model) become ``stages.{i}.P``."""
    out = {}
    for key, value in convnext.convert_official_state_dict(state).items():
        parts = key.split(".")
        if parts[0] == "stages" and parts[-2:] == ["conv_dw", "P"]:
            shared = f"stages.{parts[1]}.P"
            if shared in out and not torch.equal(out[shared], value):
                raise ValueError(f"{key} differs from the other positions of stage {parts[1]}; they must be shared")
            out[shared] = value
        else:
            out[key] = value
    return out


_SOURCE = "K-H-Ismail/ConvNeXt-dcls models/convnext_dcls.py convnext_dcls_{} (built and counted); README: {}"


def _paper(params: int, gflops: float, source: str) -> Paper:
    return Paper(
        title="Dilated convolution with learnable spacings",
        arxiv="2112.03740",
        params=params,
        gflops=gflops,
        input_size=(3, 224, 224),
        source=source,
    )


@register_model(_paper(28_587_688, 5.0, _SOURCE.format("tiny", "28M, 5.0G, top-1 82.5")))
def convnext_dcls_tiny(**kwargs) -> ConvNeXtDcls:
    """ConvNeXt-T-dcls: depths 3-3-9-3, dims 96-768, 34 weights per channel in 17x17."""
    return ConvNeXtDcls(**{**dict(depths=(3, 3, 9, 3), dims=(96, 192, 384, 768), kernel_count=34), **kwargs})


@register_model(_paper(50_217_064, 9.5, _SOURCE.format("small", "50M, 9.5G, top-1 83.7")))
def convnext_dcls_small(**kwargs) -> ConvNeXtDcls:
    """ConvNeXt-S-dcls: depths 3-3-27-3, dims 96-768, 40 weights per channel in 17x17."""
    return ConvNeXtDcls(**{**dict(depths=(3, 3, 27, 3), dims=(96, 192, 384, 768), kernel_count=40), **kwargs})
