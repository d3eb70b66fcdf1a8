"""Spectral transforms against their peers, in one process: subband's dual-tree complex wavelet
transform against pytorch_wavelets' ``DTCWTForward``/``DTCWTInverse`` (bench extra) and against
the ``dtcwt`` package (numpy; dev extra).

    python benchmarks/spectral.py [--batch 16] [--threads 2] [--rounds 3] [--min-time 0.5]

Cases (CPU, float32 unless noted, ``(batch, 3, 256, 256)``, 3 levels, near_sym_a / qshift_a):

- ``dtcwt2_fwd_inv_*``: forward + inverse (the issue's target: >= 2x pytorch_wavelets);
- ``dtcwt2_fwd_*``: forward only;
- ``dtcwt2_fwd_bwd_*``: forward and backward through the coefficients (input requires grad);
- ``dtcwt2_numpy``: one 256x256 image in float64 against the ``dtcwt`` package.

Outputs are compared before timing (max abs difference printed). Prints the ratio baseline / ours
(> 1: ours is faster) and writes one JSON row per case to ``bench-results/spectral.jsonl``.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

try:
    from _common import cases_main
except ImportError:  # run as a module
    from benchmarks._common import cases_main

from subband.wavelets import DTCWT2d, IDTCWT2d


def _dtcwt_cases(batch: int) -> list[dict]:
    out = []
    x = torch.randn(batch, 3, 256, 256)
    fwd, inv = DTCWT2d(3), IDTCWT2d()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pytorch_wavelets import DTCWTForward, DTCWTInverse
    except ImportError:
        print("pytorch_wavelets is not installed: skipping its cases (pip install -e '.[bench]')")
    else:
        pf, pi = DTCWTForward(J=3, biort="near_sym_a", qshift="qshift_a"), DTCWTInverse("near_sym_a", "qshift_a")
        lo, hi = fwd(x)
        plo, phi = pf(x)
        diff = max(
            (lo - plo).abs().max(), *((torch.view_as_complex(p.contiguous()) - h).abs().max() for p, h in zip(phi, hi))
        )
        print(f"pytorch_wavelets DTCWT: max |coefficient difference| {float(diff):.2e}")
        xg = x.clone().requires_grad_()

        def ours_bwd() -> None:
            lo, hi = fwd(xg)
            (lo.sum() + sum(h.abs().sum() for h in hi)).backward()

        def theirs_bwd() -> None:
            lo, hi = pf(xg)
            (lo.sum() + sum(torch.view_as_complex(h.contiguous()).abs().sum() for h in hi)).backward()

        shape = list(x.shape)
        out += [
            dict(name=f"dtcwt2_fwd_inv_b{batch}", ours=lambda: inv(fwd(x)), baseline=lambda: pi(pf(x)),
                 baseline_name="pytorch_wavelets", shape=shape),
            dict(name=f"dtcwt2_fwd_b{batch}", ours=lambda: fwd(x), baseline=lambda: pf(x),
                 baseline_name="pytorch_wavelets", shape=shape),
            dict(name=f"dtcwt2_fwd_bwd_b{batch}", ours=ours_bwd, baseline=theirs_bwd,
                 baseline_name="pytorch_wavelets", shape=shape),
        ]  # fmt: skip
    try:
        import dtcwt
    except ImportError:
        print("dtcwt is not installed: skipping its case")
    else:
        img = np.random.default_rng(0).standard_normal((256, 256))
        ref = dtcwt.Transform2d("near_sym_a", "qshift_a")
        t = torch.from_numpy(img)
        out.append(
            dict(name="dtcwt2_fwd_inv_numpy_f64", ours=lambda: inv(fwd(t)), baseline=lambda: ref.inverse(ref.forward(img, 3)),
                 baseline_name="dtcwt (numpy)", shape=[256, 256])
        )  # fmt: skip
    return out


def cases(batch: int = 16) -> list[dict]:
    torch.manual_seed(0)
    return _dtcwt_cases(batch)


if __name__ == "__main__":
    raise SystemExit(cases_main(cases, __doc__, "bench-results/spectral.jsonl"))
