"""Re-parameterisation pays at inference: UniRepLKNet's Dilated Reparam Block before and after fuse().

    python benchmarks/conv_reparam.py [--rounds 3] [--min-time 0.5]

Cases (CPU, float32, channels-last activations as in the model, eval mode, no grad), each timed in one process in interleaved rounds:

- ``unireplknet_block_*``: a whole UniRepLKNet block (13x13 Dilated Reparam Block, BN, SE, FFN
  with GRN, BN, layer scale) after ``fuse()`` against the same block before it (training form in
  eval mode) at the shapes of UniRepLKNet-A's stages 2 and 3 at 224 input.
- ``dilated_reparam_fused_vs_dw13``: the fused Dilated Reparam Block (one 13x13 depthwise conv with
  bias) against a plain ``nn.Conv2d`` depthwise conv of its largest single kernel (13x13): the
  five dilated branches must cost nothing once merged (target ratio >= ~1).
- ``dilated_reparam_fused_vs_unfused``: the same fused block against its six-branch training form.

Prints the medians and ratio baseline / ours (> 1: ours is faster) and writes one JSON row per
case to ``bench-results/conv_reparam.jsonl``. ``cases()`` is what benchmarks/convolutions.py collects.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

try:
    from _common import cases_main
except ImportError:  # run as a module
    from benchmarks._common import cases_main

from subband.layers import DilatedReparamBlock
from subband.models.unireplknet import UniRepLKNetBlock


def _randomise_bn(module: nn.Module) -> nn.Module:
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2.0)
    return module.eval()


def _no_grad(module: nn.Module, x: torch.Tensor):
    def run() -> torch.Tensor:
        with torch.no_grad():
            return module(x)

    return run


def cases(batch: int = 8) -> list[dict]:
    """Benchmark cases: ``{"name", "ours", "baseline", "baseline_name", "shape"}``."""
    torch.manual_seed(0)
    out = []
    for dim, size in ((80, 28), (160, 14)):  # UniRepLKNet-A stages 2 and 3 at 224
        x = torch.randn(batch, dim, size, size).contiguous(memory_format=torch.channels_last)
        train = _randomise_bn(UniRepLKNetBlock(dim, 13))
        fused = copy.deepcopy(train)
        fused.fuse()
        out.append(
            dict(
                name=f"unireplknet_block_k13_c{dim}_{size}x{size}",
                ours=_no_grad(fused, x),
                baseline=_no_grad(train, x),
                baseline_name="same block before fuse()",
                shape=list(x.shape),
            )
        )
    dim, size = 160, 14
    x = torch.randn(batch, dim, size, size).contiguous(memory_format=torch.channels_last)  # as in the model
    drb = _randomise_bn(DilatedReparamBlock(dim, 13))
    drb_fused = copy.deepcopy(drb)
    drb_fused.fuse()
    plain = nn.Conv2d(dim, dim, 13, padding=6, groups=dim, bias=True).eval()
    out.append(
        dict(
            name=f"dilated_reparam_fused_vs_dw13_c{dim}_{size}x{size}",
            ours=_no_grad(drb_fused, x),
            baseline=_no_grad(plain, x),
            baseline_name="nn.Conv2d depthwise 13x13",
            shape=list(x.shape),
        )
    )
    out.append(
        dict(
            name=f"dilated_reparam_fused_vs_unfused_c{dim}_{size}x{size}",
            ours=_no_grad(drb_fused, x),
            baseline=_no_grad(drb, x),
            baseline_name="training form (13x13 + 5 dilated branches, 6 BNs)",
            shape=list(x.shape),
        )
    )
    return out


def main(argv: list[str] | None = None) -> int:
    return cases_main(cases, __doc__, "bench-results/conv_reparam.jsonl", argv)


if __name__ == "__main__":
    raise SystemExit(main())
