"""Frequency dynamic convolution (FDConv) against the static 3x3 convolution it replaces.

    python benchmarks/conv_fdconv.py [--batch 8] [--rounds 3] [--min-time 0.5]

Cases (CPU, float32, each timed in one process in interleaved rounds): ``FDConv`` 3x3 with the
official detection config (``kernel_num`` 64, KSM global + local, FBM with ``k_list`` (2, 4, 8))
against ``nn.Conv2d`` 3x3 of the same size, at ResNet-50-like stage shapes: 64 channels on 56x56 and
256 channels on 14x14. ``*_train`` is forward + backward (input and parameters); eval cases run in
eval mode without autograd. FDConv's per-call overhead is building one kernel per sample (an irfft2
of the ``C_out k x C_in k`` spectrum, the local gate of the kernel's size) plus FBM's three
``rfft2``/``irfft2`` pairs of the input, so it is expected to be several times slower than the static
conv; the ratio is there to track that cost, not to meet a target.

Prints medians and the ratio baseline / ours (> 1: ours is faster) and writes one JSON row per case
to ``bench-results/conv_fdconv.jsonl``. ``cases()`` is what benchmarks/convolutions.py collects.
"""

from __future__ import annotations

import torch
from torch import nn

try:
    from _common import cases_main, eval_step, train_step
except ImportError:  # run as a module
    from benchmarks._common import cases_main, eval_step, train_step

from subband.layers import FDConv


def cases(batch: int = 8) -> list[dict]:
    """Benchmark cases: ``{"name", "ours", "baseline", "baseline_name", "shape"}``."""
    torch.manual_seed(0)
    out = []
    for c, hw in ((64, 56), (256, 14)):
        x = torch.randn(batch, c, hw, hw)
        conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        fd = FDConv.from_conv(conv, kernel_num=64)
        name, base = f"fdconv3x3_k64_c{c}_{hw}x{hw}", f"nn.Conv2d 3x3 ({c} ch)"
        for train in (False, True):
            wrap = train_step if train else eval_step
            out.append(
                dict(
                    name=name + ("_train" if train else ""),
                    ours=wrap(fd, x),
                    baseline=wrap(conv, x),
                    baseline_name=base,
                    shape=list(x.shape),
                )
            )
    return out


def main(argv: list[str] | None = None) -> int:
    return cases_main(cases, __doc__, "bench-results/conv_fdconv.jsonl", argv)


if __name__ == "__main__":
    raise SystemExit(main())
