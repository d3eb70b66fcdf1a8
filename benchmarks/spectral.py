"""Spectral transforms against their peers, in one process: subband's dual-tree complex wavelet
transform against pytorch_wavelets' ``DTCWTForward``/``DTCWTInverse`` (bench extra) and against
the ``dtcwt`` package (numpy; dev extra); the scattering extractor against kymatio (dev extra).

    python benchmarks/spectral.py [--batch 16] [--threads 2] [--rounds 3] [--min-time 0.5] [--tokens 1024 4096 ...]

Cases (CPU, float32 unless noted, ``(batch, 3, 256, 256)``, 3 levels, near_sym_a / qshift_a):

- ``dtcwt2_fwd_inv_*``: forward + inverse (the issue's target: >= 2x pytorch_wavelets);
- ``dtcwt2_fwd_*``: forward only;
- ``dtcwt2_fwd_bwd_*``: forward and backward through the coefficients (input requires grad);
- ``dtcwt2_numpy``: one 256x256 image in float64 against the ``dtcwt`` package.

- ``scattering1d_*``: the generalised scattering with kymatio's Morlet filters against kymatio's
  ``Scattering1D`` (dev extra), batch ``batch / 4``, 4096 samples, J=6, Q=8, order 2.

Then WERSA against softmax attention (``F.scaled_dot_product_attention``), batch 1, 8 heads of 64,
at 1k, 4k, 16k and 64k tokens: forward time and peak memory of each, and the exponent of a
power-law fit of time against tokens. Softmax attention is skipped past ``--softmax-limit`` tokens
(its time grows quadratically: the table says so instead of waiting).

Outputs are compared before timing (max abs difference printed). Prints the ratio baseline / ours
(> 1: ours is faster) and writes one JSON row per case to ``bench-results/spectral.jsonl``.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

try:
    from _common import environment, peak_bytes, run_cases, timeit, write_rows
except ImportError:  # run as a module
    from benchmarks._common import environment, peak_bytes, run_cases, timeit, write_rows

import torch.nn.functional as F

from subband.layers import WERSA
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


def _scattering_cases(batch: int) -> list[dict]:
    """subband's scattering with kymatio's own 1-D filter bank (J=6, Q=8, 4096 samples, order 2)
    against kymatio: (a) kymatio at full resolution (``oversampling=J``), the computation whose
    coefficients subband reproduces (tests/wavelets/test_scattering.py); subband computes every
    second-order path, kymatio only those with j2 > j1; (b) kymatio's default, which sub-samples
    every path to its bandwidth (a cheaper, different computation; listed for reference)."""
    import scipy.special

    if not hasattr(scipy.special, "sph_harm"):  # kymatio 0.3 imports it (3-D only); SciPy 1.15 removed it
        scipy.special.sph_harm = lambda m, n, theta, phi: scipy.special.sph_harm_y(n, m, phi, theta)
    try:
        import kymatio.torch as kt
    except ImportError:
        print("kymatio is not installed: skipping the scattering cases")
        return []
    from subband.wavelets import Scattering

    n, j, q = 4096, 6, 8
    x = torch.randn(batch, n)
    full = kt.Scattering1D(J=j, shape=(n,), Q=q, max_order=2, oversampling=j)
    default = kt.Scattering1D(J=j, shape=(n,), Q=q, max_order=2)

    def bank(filters: list[dict]) -> torch.Tensor:
        return torch.stack([torch.as_tensor(f["levels"][0]).reshape(-1) for f in filters])

    phi = torch.as_tensor(full.phi_f["levels"][0]).reshape(-1)
    frame = [(bank(full.psi1_f), phi), (bank(full.psi2_f), phi), (None, phi)]
    ours = Scattering((full._N_padded,), layers=2, frame=frame, pool=1)

    def run() -> list[torch.Tensor]:
        padded = F.pad(x.unsqueeze(1), (full.pad_left, full.pad_right), mode="reflect").squeeze(1)
        return ours(padded)

    shape = [batch, n]
    return [
        dict(name=f"scattering1d_fullres_b{batch}", ours=run, baseline=lambda: full(x),
             baseline_name="kymatio (oversampling=J)", shape=shape),
        dict(name=f"scattering1d_vs_subsampled_b{batch}", ours=run, baseline=lambda: default(x),
             baseline_name="kymatio default (sub-sampled)", shape=shape),
    ]  # fmt: skip


def cases(batch: int = 16) -> list[dict]:
    torch.manual_seed(0)
    return _dtcwt_cases(batch) + _scattering_cases(max(batch // 4, 1))


def wersa_scaling(tokens: list[int], softmax_limit: int, min_time: float) -> list[dict]:
    """Forward time and peak memory of WERSA and softmax attention against sequence length."""
    dim, heads = 512, 8
    layer = WERSA(dim, heads, levels=4, features=128).eval()
    rows, times = [], {"wersa": [], "softmax": []}
    print(f"{'tokens':>7s} {'WERSA ms':>9s} {'WERSA MB':>9s} {'softmax ms':>11s} {'softmax MB':>11s}")
    for n in tokens:
        x = torch.randn(1, n, dim)
        q = torch.randn(1, heads, n, dim // heads)
        with torch.no_grad():
            w_ms = timeit(lambda x=x: layer(x), min_time)[0]
            w_mb = peak_bytes(lambda x=x: layer(x)) / 2**20
            s_ms = s_mb = None
            if n <= softmax_limit:
                s_ms = timeit(lambda q=q: F.scaled_dot_product_attention(q, q, q), min_time)[0]
                s_mb = peak_bytes(lambda q=q: F.scaled_dot_product_attention(q, q, q)) / 2**20
        times["wersa"].append((n, w_ms))
        if s_ms is not None:
            times["softmax"].append((n, s_ms))
        fmt = lambda v, spec: "skipped" if v is None else format(v, spec)  # noqa: E731
        print(f"{n:7d} {w_ms:9.1f} {w_mb:9.1f} {fmt(s_ms, '11.1f'):>11s} {fmt(s_mb, '11.1f'):>11s}")
        rows.append(dict(case=f"attention_{n}", tokens=n, wersa_ms=w_ms, wersa_peak_mb=w_mb, softmax_ms=s_ms,
                         softmax_peak_mb=s_mb))  # fmt: skip
    for name, pts in times.items():
        if len(pts) >= 2:
            xs, ys = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
            slope = float(np.polyfit(xs, ys, 1)[0])
            print(f"{name}: time ~ tokens^{slope:.2f} over {pts[0][0]}-{pts[-1][0]} tokens")
            rows.append(dict(case=f"{name}_exponent", exponent=slope))
    return rows


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--tokens", nargs="+", type=int, default=[1024, 4096, 16384, 65536])
    ap.add_argument("--softmax-limit", type=int, default=16384)
    ap.add_argument("--skip-dtcwt", action="store_true")
    ap.add_argument("--out", default="bench-results/spectral.jsonl")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [] if args.skip_dtcwt else run_cases(cases(args.batch), args.rounds, args.min_time, args.out)
    env = environment()
    rows += [dict(env, **r) for r in wersa_scaling(args.tokens, args.softmax_limit, args.min_time)]
    write_rows(args.out, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
