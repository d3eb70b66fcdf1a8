"""2-D DWT side by side: subband, PyWavelets, ptwt and pytorch_wavelets in one process.

    python benchmarks/wavelets.py [--threads 2] [--shape 16 3 256 256] [--out bench-results/wavelets.jsonl]

Cases: haar and db4, level 1 and 3, modes zero, symmetric and periodization. Operations: forward
(wavedec2), inverse (waverec2), forward+inverse, and forward+backward for the differentiable
libraries. Also times two plain copies of the input (the memory-traffic floor). Prints tables of
ratios (peer time / subband time: above 1 means subband is faster) and writes one JSON row per
case and library. Peers that are not installed are skipped (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import warnings

import numpy as np
import pywt
import torch

import subband.wavelets as sw

try:
    from _common import environment, peak_bytes, timeit, write_rows
except ImportError:  # run as a module
    from benchmarks._common import environment, peak_bytes, timeit, write_rows


def _peers():
    peers = {}
    try:
        import ptwt

        peers["ptwt"] = ptwt
    except ImportError:
        pass
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pytorch_wavelets

        peers["pytorch_wavelets"] = pytorch_wavelets
    except ImportError:
        pass
    return peers


def _version(name: str) -> str:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "?"


def _grad_sum(out) -> torch.Tensor:
    """Sum of every coefficient tensor in a nested structure (for a backward pass)."""
    if isinstance(out, torch.Tensor):
        return out.sum()
    return sum(_grad_sum(o) for o in out)


def make_ops(lib: str, wavelet: str, level: int, mode: str, x: torch.Tensor, peers: dict):
    """Returns (forward, inverse-of-precomputed, differentiable) closures, or None if unsupported."""
    if lib == "subband":
        coeffs = sw.wavedec2(x, wavelet, mode=mode, level=level)
        return (
            lambda t=x: sw.wavedec2(t, wavelet, mode=mode, level=level),
            lambda: sw.waverec2(coeffs, wavelet, mode=mode),
            lambda t: sw.waverec2(sw.wavedec2(t, wavelet, mode=mode, level=level), wavelet, mode=mode),
            True,
        )
    if lib == "pywt":
        a = x.numpy()
        coeffs = pywt.wavedec2(a, wavelet, mode=mode, level=level)
        return (
            lambda: pywt.wavedec2(a, wavelet, mode=mode, level=level),
            lambda: pywt.waverec2(coeffs, wavelet, mode=mode),
            None,
            False,
        )
    if lib == "ptwt":
        if mode == "periodization":  # not offered by ptwt
            return None
        ptwt = peers["ptwt"]
        coeffs = ptwt.wavedec2(x, wavelet, mode=mode, level=level)
        return (
            lambda t=x: ptwt.wavedec2(t, wavelet, mode=mode, level=level),
            lambda: ptwt.waverec2(coeffs, wavelet),
            lambda t: ptwt.waverec2(ptwt.wavedec2(t, wavelet, mode=mode, level=level), wavelet),
            True,
        )
    if lib == "pytorch_wavelets":
        ptw = peers["pytorch_wavelets"]
        fwd, inv = ptw.DWTForward(J=level, wave=wavelet, mode=mode), ptw.DWTInverse(wave=wavelet, mode=mode)
        coeffs = fwd(x)
        return (
            lambda t=x: fwd(t),
            lambda: inv(coeffs),
            lambda t: inv(fwd(t)),
            True,
        )
    raise ValueError(lib)


def run(shape, threads, min_run_time, out, wavelets, levels, modes):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    peers = _peers()
    libs = ["subband", "pywt", *peers]
    x = torch.randn(*shape)
    env = environment()
    versions = {
        "subband": _version("subband"),
        "pywt": pywt.__version__,
        "ptwt": _version("ptwt"),
        "pytorch_wavelets": _version("pytorch_wavelets"),
    }
    floor_ms, floor_iqr = timeit(lambda: x.clone().clone(), min_run_time)
    rows = [
        dict(case="two copies", op="copy", lib="torch", median_ms=floor_ms, iqr_ms=floor_iqr, shape=list(shape), **env)
    ]
    print(f"input {tuple(shape)} float32, {threads} threads; two plain copies: {floor_ms:.2f} ms")
    results = {}
    for wavelet in wavelets:
        for level in levels:
            for mode in modes:
                case = f"{wavelet} J={level} {mode}"
                for lib in libs:
                    ops = make_ops(lib, wavelet, level, mode, x, peers)
                    if ops is None:
                        continue
                    fwd, inv, fwdinv_t, differentiable = ops
                    timings = {
                        "forward": timeit(fwd, min_run_time),
                        "inverse": timeit(inv, min_run_time),
                    }
                    if fwdinv_t is not None:
                        timings["forward+inverse"] = timeit(lambda f=fwdinv_t: f(x), min_run_time)
                        xg = x.clone().requires_grad_()
                        timings["forward+backward"] = timeit(
                            lambda f=fwd, t=xg: _grad_sum(f(t)).backward(), min_run_time
                        )
                        peak = peak_bytes(fwd)
                    else:
                        timings["forward+inverse"] = timeit(lambda: inv_of_fwd(fwd, wavelet, mode), min_run_time)
                        peak = peak_bytes(fwd, numpy=True)
                    for op, (med, iqr) in timings.items():
                        results[(case, lib, op)] = med
                        rows.append(
                            dict(
                                case=case, wavelet=wavelet, level=level, mode=mode, lib=lib, op=op,
                                version=versions[lib], median_ms=med, iqr_ms=iqr, shape=list(shape),
                                dtype="float32", peak_forward_bytes=peak, input_bytes=x.nbytes, **env,
                            )
                        )  # fmt: skip
                    results[(case, lib, "peak")] = peak / x.nbytes
                print(f"  measured {case}", flush=True)
    _print_tables(results, libs, floor_ms)
    write_rows(out, rows)
    print(f"\nwrote {len(rows)} rows to {out}")


def inv_of_fwd(fwd, wavelet, mode):
    return pywt.waverec2(fwd(), wavelet, mode=mode)


def _print_tables(results, libs, floor_ms):
    cases = sorted({c for c, _, _ in results}, key=lambda c: (c.split()[0] != "haar", c))
    peers = [lib for lib in libs if lib != "subband"]
    for op in ("forward+inverse", "forward", "inverse", "forward+backward"):
        print(f"\n### {op}: subband time, and each peer's time as a multiple of it (>1: subband faster)\n")
        head = ["case", "subband ms"] + [f"{p}" for p in peers]
        if op == "forward+inverse":
            head.append("subband / two copies")
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for case in cases:
            ours = results.get((case, "subband", op))
            if ours is None:
                continue
            cells = [case, f"{ours:.1f}"]
            for p in peers:
                t = results.get((case, p, op))
                cells.append("n/a" if t is None else f"{t / ours:.2f}x")
            if op == "forward+inverse":
                cells.append(f"{ours / floor_ms:.1f}")
            print("| " + " | ".join(cells) + " |")
    print("\n### subband: backward / forward time, and peak forward memory / input size\n")
    print("| case | backward/forward | peak/input |")
    print("|---|---|---|")
    for case in cases:
        f, fb = results.get((case, "subband", "forward")), results.get((case, "subband", "forward+backward"))
        if f:
            print(f"| {case} | {(fb - f) / f:.2f} | {results[(case, 'subband', 'peak')]:.2f} |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", type=int, nargs="+", default=[16, 3, 256, 256])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--min-run-time", type=float, default=0.5, help="seconds per measurement")
    p.add_argument("--wavelets", nargs="+", default=["haar", "db4"])
    p.add_argument("--levels", type=int, nargs="+", default=[1, 3])
    p.add_argument("--modes", nargs="+", default=["zero", "symmetric", "periodization"])
    p.add_argument("--out", default="bench-results/wavelets.jsonl")
    a = p.parse_args()
    run(a.shape, a.threads, a.min_run_time, a.out, a.wavelets, a.levels, a.modes)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
