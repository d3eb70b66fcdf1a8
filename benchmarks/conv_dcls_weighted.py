"""Convolutions with a constructed kernel against the plain convolution they replace: the weighted
convolution (kernel times a fixed density) and DCLS (kernel built from learnable positions).

    python benchmarks/conv_dcls_weighted.py [--batch 8] [--rounds 3] [--min-time 0.5]

Cases (CPU, float32, 2 threads, each timed in one process in interleaved rounds):

- ``weighted3x3_*`` / ``weighted7x7_*``: ``WeightedConv2d`` against ``nn.Conv2d`` of the same size
  (the weighting is one element-wise product on the kernel per call; target ratio >= 1/1.3).
- ``dcls_dw17_*``: ConvNeXt-T-dcls's mixer, a depthwise ``DclsConv2d`` with 34 weights per channel
  in a 17x17 window (bilinear), against a dense depthwise 17x17 ``nn.Conv2d``, at the channel
  counts and map sizes of ConvNeXt-T's stages 1 and 3 at 224 input, channels-last activations as in
  the model (target ratio >= 1/2). ``*_train`` is forward + backward (input and parameters):
  there DCLS's depthwise fast path computes the weight gradient with FFTs on large maps, where
  PyTorch's CPU depthwise weight gradient for kernels of 15 and more is very slow, so the ratio
  is then far above 1; on the 14x14 maps both use PyTorch's.

Eval cases run in eval mode without autograd. Prints medians and the ratio baseline / ours (> 1:
ours is faster) and writes one JSON row per case to ``bench-results/conv_dcls_weighted.jsonl``.
``cases()`` is what benchmarks/convolutions.py collects.
"""

from __future__ import annotations

import torch
from torch import nn

try:
    from _common import cases_main, eval_step, train_step
except ImportError:  # run as a module
    from benchmarks._common import cases_main, eval_step, train_step

from subband.layers import DclsConv2d, WeightedConv2d


def cases(batch: int = 8) -> list[dict]:
    """Benchmark cases: ``{"name", "ours", "baseline", "baseline_name", "shape"}``."""
    torch.manual_seed(0)
    out = []

    def add(name, ours, base, base_name, x, train=False):
        wrap = train_step if train else eval_step
        out.append(
            dict(name=name, ours=wrap(ours, x), baseline=wrap(base, x), baseline_name=base_name, shape=list(x.shape))
        )

    x = torch.randn(batch, 64, 56, 56)
    w3, c3 = WeightedConv2d(64, 64, 3, padding=1, den=[0.7]), nn.Conv2d(64, 64, 3, padding=1)
    add("weighted3x3_c64_56x56", w3, c3, "nn.Conv2d 3x3 (64 ch)", x)
    add("weighted3x3_c64_56x56_train", w3, c3, "nn.Conv2d 3x3 (64 ch)", x, train=True)
    x = torch.randn(batch, 32, 28, 28)
    w7 = WeightedConv2d(32, 32, 7, padding=3, den=[0.25, 0.15, 0.55])
    add("weighted7x7_c32_28x28", w7, nn.Conv2d(32, 32, 7, padding=3), "nn.Conv2d 7x7 (32 ch)", x)

    for c, hw in ((96, 56), (384, 14)):
        x = torch.randn(batch, c, hw, hw).contiguous(memory_format=torch.channels_last)
        dcls = DclsConv2d(c, c, 34, 17, padding=8, groups=c, version="v0")
        dense = nn.Conv2d(c, c, 17, padding=8, groups=c)
        name, base = f"dcls_dw17_k34_c{c}_{hw}x{hw}", f"nn.Conv2d dw 17x17 ({c} ch)"
        add(name, dcls, dense, base, x)
        add(name + "_train", dcls, dense, base, x, train=True)
    x = torch.randn(batch, 96, 56, 56).contiguous(memory_format=torch.channels_last)
    gauss = DclsConv2d(96, 96, 34, 17, padding=8, groups=96, version="gauss")
    add(
        "dcls_gauss_dw17_k34_c96_56x56",
        gauss,
        nn.Conv2d(96, 96, 17, padding=8, groups=96),
        "nn.Conv2d dw 17x17 (96 ch)",
        x,
    )
    return out


def main(argv: list[str] | None = None) -> int:
    return cases_main(cases, __doc__, "bench-results/conv_dcls_weighted.jsonl", argv)


if __name__ == "__main__":
    raise SystemExit(main())
