"""Pyramid convolution and the SEPC neck against per-level convolutions (SEPC, arXiv 2005.03101).

    python benchmarks/conv_pyramid.py [--batch 2] [--rounds 3] [--min-time 0.5]

Input: a five-level 256-channel pyramid (P3-P7 of a 512x512 image: 64x64 .. 4x4), batch ``batch``.
Cases (CPU, float32, each timed in one process in interleaved rounds):

- ``pconv_*``: one ``PyramidConv`` (three shared 3x3 kernels: same level, stride-2 from the finer
  level, from the coarser level then bilinear upsampling) against one shared 3x3 ``nn.Conv2d``
  applied to every level. By multiply-adds a PConv costs about 1 + 1 + 1/4 = 2.25 per-level convs
  (the stride-2 term has the output's size, the upward term a quarter of it), so expect ~0.45.
- ``sepc_lite_neck_*``: the official SEPC-lite neck (4 PConvs + iBN + ReLU, then the deformable
  cls / reg branch convs) against what it replaces in RetinaNet, the head's two towers of four
  3x3 conv + ReLU per level (the SEPC heads run with ``stacked_convs=0``). Multiply-adds:
  4 * 2.25 + 2 = 11 against 8 per-level convs, plus the deformable sampling of the branches.
- ``sepc_neck_*``: the full SEPC neck (PConv kernels deformable at levels P4-P7 as well) against
  SEPC-lite: the price of the pure-PyTorch deformable convolution (``grid_sample`` im2col + matmul).

``*_train`` is forward + backward (inputs and parameters); eval cases run without autograd.
Prints medians and the ratio baseline / ours (> 1: ours is faster) and writes one JSON row per
case to ``bench-results/conv_pyramid.jsonl``. ``cases()`` is what benchmarks/convolutions.py collects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

try:
    from _common import cases_main
except ImportError:  # run as a module
    from benchmarks._common import cases_main

from subband.layers import PyramidConv, SEPCNeck

SIZES = (64, 32, 16, 8, 4)


class PerLevelConv(nn.Module):
    """One 3x3 conv shared by all levels, applied level by level."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [self.conv(x) for x in xs]


class RetinaTowers(nn.Module):
    """RetinaNet head's cls and reg towers: ``depth`` x (3x3 conv + ReLU) each, shared by all levels."""

    def __init__(self, channels: int, depth: int = 4) -> None:
        super().__init__()

        def tower() -> nn.Sequential:
            return nn.Sequential(
                *(m for _ in range(depth) for m in (nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()))
            )

        self.cls, self.reg = tower(), tower()

    def forward(self, xs: Sequence[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(self.cls(x), self.reg(x)) for x in xs]


def _flatten(out) -> list[torch.Tensor]:
    return [t for o in out for t in (o if isinstance(o, tuple) else (o,))]


def _eval(module: nn.Module, xs: list[torch.Tensor]) -> Callable[[], object]:
    def run() -> object:
        module.eval()
        with torch.no_grad():
            return module(xs)

    return run


def _train(module: nn.Module, xs: list[torch.Tensor]) -> Callable[[], None]:
    xs = [x.clone().requires_grad_() for x in xs]

    def run() -> None:
        module.train()
        sum(t.sum() for t in _flatten(module(xs))).backward()

    return run


def cases(batch: int = 2) -> list[dict]:
    """Benchmark cases: ``{"name", "ours", "baseline", "baseline_name", "shape"}``."""
    torch.manual_seed(0)
    c = 256
    xs = [torch.randn(batch, c, s, s) for s in SIZES]
    shape = [[batch, c, s, s] for s in SIZES]
    lite = SEPCNeck([c] * 5, c, lateral=False, branches=True, deform=False)
    sepc = SEPCNeck([c] * 5, c, lateral=False, branches=True, deform=True)
    pairs = [
        ("pconv_c256_p5", PyramidConv(c, c), PerLevelConv(c), "nn.Conv2d 3x3 on each level"),
        ("sepc_lite_neck_c256_p5", lite, RetinaTowers(c), "RetinaNet towers 2 x 4 conv3x3 per level"),
        ("sepc_neck_c256_p5", sepc, lite, "SEPC-lite neck"),
    ]
    out = []
    for name, ours, base, base_name in pairs:
        for suffix, wrap in (("", _eval), ("_train", _train)):
            out.append(
                dict(
                    name=name + suffix,
                    ours=wrap(ours, xs),
                    baseline=wrap(base, xs),
                    baseline_name=base_name,
                    shape=shape,
                )
            )
    return out


def main(argv: list[str] | None = None) -> int:
    return cases_main(cases, __doc__, "bench-results/conv_pyramid.jsonl", argv)


if __name__ == "__main__":
    raise SystemExit(main())
