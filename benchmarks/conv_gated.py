"""Input-dependent convolutions against plain convolutions of the same channels and receptive field:
HorNet's recursive gated convolution (g^n Conv) and LSNet's LS convolution.

    python benchmarks/conv_gated.py [--batch 8] [--rounds 3] [--min-time 0.5]

Cases (CPU, float32, 2 threads, each timed in one process in interleaved rounds):

- ``gnconv_o3_7x7``: g^n Conv of order 3 with a 7x7 depthwise conv at HorNet-T's stage-2 shape
  (128 channels, 28x28) against a plain separable conv of the same channels: 1x1 conv -> 7x7
  depthwise conv -> 1x1 conv (128 -> 128 each). g^n Conv does about twice the 1x1 work (its input
  projection doubles the channels) and its depthwise conv runs on 224 channels, plus the gating.
- ``gnconv_o4_gf``: order 4 with the global-local filter at HorNet-T-GF's stage-3 shape (256
  channels, 14x14) against the same kind of separable 7x7 conv.
- ``lsconv_vs_dense7x7``: LS convolution (7x7 perception, 3x3 dynamic aggregation: receptive field
  7x7) at LSNet's 128-channel stage shape against a plain dense 7x7 ``nn.Conv2d`` (128 -> 128).
- ``lsconv_vs_dw7x7_pw``: the same against a depthwise 7x7 + 1x1 conv (the cheap plain mixer).
- ``*_train``: forward + backward of the same pairs (the hand-written aggregation backward).

Eval cases run in eval mode without autograd. Prints medians and the ratio baseline / ours (> 1:
ours is faster) and writes one JSON row per case to ``bench-results/conv_gated.jsonl``.
``cases()`` is what benchmarks/convolutions.py collects.
"""

from __future__ import annotations

import torch
from torch import nn

try:
    from _common import cases_main, eval_step, train_step
except ImportError:  # run as a module
    from benchmarks._common import cases_main, eval_step, train_step

from subband.layers import GnConv, LSConv


def _separable(dim: int, k: int = 7) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(dim, dim, 1), nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim), nn.Conv2d(dim, dim, 1)
    )


def cases(batch: int = 8) -> list[dict]:
    """Benchmark cases: ``{"name", "ours", "baseline", "baseline_name", "shape"}``."""
    torch.manual_seed(0)
    out = []

    def add(name, ours, base, base_name, x, train=False):
        wrap = train_step if train else eval_step
        out.append(
            dict(name=name, ours=wrap(ours, x), baseline=wrap(base, x), baseline_name=base_name, shape=list(x.shape))
        )

    x = torch.randn(batch, 128, 28, 28)
    gn, sep = GnConv(128, order=3, kernel_size=7, scale=1 / 3), _separable(128)
    add("gnconv_o3_7x7_c128_28x28", gn, sep, "1x1 -> dw 7x7 -> 1x1 (128 ch)", x)
    add("gnconv_o3_7x7_c128_28x28_train", gn, sep, "1x1 -> dw 7x7 -> 1x1 (128 ch)", x, train=True)

    x = torch.randn(batch, 256, 14, 14)
    add(
        "gnconv_o4_gf_c256_14x14",
        GnConv(256, 4, spatial="gf", scale=1 / 3),
        _separable(256),
        "1x1 -> dw 7x7 -> 1x1 (256 ch)",
        x,
    )

    x = torch.randn(batch, 128, 28, 28)
    ls = LSConv(128)
    dense = nn.Conv2d(128, 128, 7, padding=3)
    dwpw = nn.Sequential(nn.Conv2d(128, 128, 7, padding=3, groups=128), nn.Conv2d(128, 128, 1))
    add("lsconv_vs_dense7x7_c128_28x28", ls, dense, "nn.Conv2d 7x7 dense (128 ch)", x)
    add("lsconv_vs_dw7x7_pw_c128_28x28", ls, dwpw, "dw 7x7 -> 1x1 (128 ch)", x)
    add("lsconv_vs_dense7x7_c128_28x28_train", ls, dense, "nn.Conv2d 7x7 dense (128 ch)", x, train=True)
    return out


def main(argv: list[str] | None = None) -> int:
    return cases_main(cases, __doc__, "bench-results/conv_gated.jsonl", argv)


if __name__ == "__main__":
    raise SystemExit(main())
