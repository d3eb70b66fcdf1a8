"""2-D DWT side by side: subband, PyWavelets, ptwt and pytorch_wavelets in one process.

    python benchmarks/wavelets.py [--threads 2] [--shape 16 3 256 256] [--keep-freed-memory] [--out bench-results/wavelets.jsonl]

Cases: haar and db4, level 1 and 3, modes zero, symmetric and periodization. Operations: forward
(wavedec2), inverse (waverec2), forward+inverse, and forward+backward (the gradient of the sum of
all coefficients, into a fresh ``.grad``) for the differentiable libraries, and for subband the
forward call and ``.backward()`` timed apart within such steps (their ratio is the backward/forward
column; the forward timed alone reruns with its input and output in cache). Also times two plain
copies of the input (the memory-traffic floor): once first, and in every case's rounds beside the
libraries, the time the forward+inverse is compared with. Before anything is timed, one block just under
32 MB is allocated and freed, so glibc's malloc serves the buffers of every library from its heap
as it does in a process that has run a while (a cold process pays page faults on its first large
buffers). Prints tables of ratios (peer time / subband time: above 1 means subband is faster) and
writes one JSON row per case and library. Peers that are not installed are skipped
(``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import statistics
import time
import warnings

import numpy as np
import pywt
import torch

import subband.wavelets as sw

try:
    from _common import environment, keep_freed_memory, peak_bytes, timeit, warm_allocator, write_rows
except ImportError:  # run as a module
    from benchmarks._common import environment, keep_freed_memory, peak_bytes, timeit, warm_allocator, write_rows


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


def _step(forward, x: torch.Tensor) -> None:
    """One training-style step: the gradient of the sum of all coefficients, into a fresh ``x.grad``
    (as after ``zero_grad()``, whose default sets it to None), so no step pays for accumulating."""
    x.grad = None
    _grad_sum(forward(x)).backward()


def _split_step(forward, x: torch.Tensor, min_run_time: float) -> tuple[float, float]:
    """Median time in milliseconds of the forward call and of ``.backward()`` within training-style
    steps (as :func:`_step`; the loss, a sum, is in neither), so both run in the same cache state:
    the forward timed alone reruns on an input and output that stay in cache."""
    fwd, bwd, t_end = [], [], time.perf_counter() + min_run_time
    _step(forward, x)
    while time.perf_counter() < t_end or len(fwd) < 10:
        x.grad = None
        t0 = time.perf_counter()
        out = forward(x)
        t1 = time.perf_counter()
        loss = _grad_sum(out)
        t2 = time.perf_counter()
        loss.backward()
        bwd.append(time.perf_counter() - t2)
        fwd.append(t1 - t0)
    return statistics.median(fwd) * 1e3, statistics.median(bwd) * 1e3


def make_ops(lib: str, wavelet: str, level: int, mode: str, x: torch.Tensor, peers: dict):
    """Closures for one library: forward, inverse (of precomputed coefficients), forward+inverse,
    and ``forward_of(t)`` for a backward pass (None where the library is not differentiable).
    None where the library lacks the mode."""
    if lib in ("subband", "subband+compile"):
        fwd = lambda t=x: sw.wavedec2(t, wavelet, mode=mode, level=level)  # noqa: E731
        inv = lambda c: sw.waverec2(c, wavelet, mode=mode)  # noqa: E731
        if lib == "subband+compile":  # fused CPU loops; first calls (compilation) are the warm-up
            fwd, inv = torch.compile(fwd), torch.compile(inv)
        differentiable = True
    elif lib == "pywt":
        a = x.numpy()
        fwd = lambda t=a: pywt.wavedec2(t, wavelet, mode=mode, level=level)  # noqa: E731
        inv = lambda c: pywt.waverec2(c, wavelet, mode=mode)  # noqa: E731
        differentiable = False
    elif lib == "ptwt":
        if mode == "periodization":  # not offered by ptwt
            return None
        ptwt = peers["ptwt"]
        fwd = lambda t=x: ptwt.wavedec2(t, wavelet, mode=mode, level=level)  # noqa: E731
        inv = lambda c: ptwt.waverec2(c, wavelet)  # noqa: E731
        differentiable = True
    elif lib == "pytorch_wavelets":
        ptw = peers["pytorch_wavelets"]
        f, i = ptw.DWTForward(J=level, wave=wavelet, mode=mode), ptw.DWTInverse(wave=wavelet, mode=mode)
        fwd = lambda t=x: f(t)  # noqa: E731
        inv = lambda c: i(c)  # noqa: E731
        differentiable = True
    else:
        raise ValueError(lib)
    t0 = time.perf_counter()
    coeffs = fwd()
    inv(coeffs)
    first_call_s = time.perf_counter() - t0  # includes compilation for subband+compile
    return {
        "first_call_s": first_call_s,
        "forward": fwd,
        "inverse": lambda: inv(coeffs),
        "forward+inverse": lambda: inv(fwd()),
        "forward_of": fwd if differentiable else None,
    }


def run(shape, threads, min_run_time, out, wavelets, levels, modes, rounds, keep_freed):
    torch.set_num_threads(threads)
    if keep_freed and not keep_freed_memory():
        raise SystemExit("--keep-freed-memory needs glibc (Linux)")
    warm_allocator()  # before anything is timed, the copies included
    torch.manual_seed(0)
    peers = _peers()
    libs = ["subband", "subband+compile", "pywt", *peers]
    torch._dynamo.config.cache_size_limit = 64  # one compiled graph per case and operation
    x = torch.randn(*shape)
    env = dict(environment(), malloc="keep freed" if keep_freed else "system, warmed")
    versions = {
        "subband": _version("subband"),
        "subband+compile": _version("subband"),
        "pywt": pywt.__version__,
        "ptwt": _version("ptwt"),
        "pytorch_wavelets": _version("pytorch_wavelets"),
    }
    floor_ms, floor_iqr = timeit(lambda: x.clone().clone(), min_run_time)
    rows = [
        dict(case="two copies", op="copy", lib="torch", median_ms=floor_ms, iqr_ms=floor_iqr, shape=list(shape), **env)
    ]
    print(
        f"input {tuple(shape)} float32, {threads} threads, {env['malloc']} malloc; two plain copies: {floor_ms:.2f} ms; "
        f"last-level cache {env['last_level_cache_bytes'] / 2**20:.0f} MiB; C library: {env['c_library']}"
    )
    results = {}
    for wavelet in wavelets:
        for level in levels:
            for mode in modes:
                case = f"{wavelet} J={level} {mode}"
                ops = {lib: make_ops(lib, wavelet, level, mode, x, peers) for lib in libs}
                ops = {lib: o for lib, o in ops.items() if o is not None}
                xg = x.clone().requires_grad_()
                closures = {}
                for lib, o in ops.items():
                    for op in ("forward", "inverse", "forward+inverse"):
                        closures[(lib, op)] = o[op]
                    if o["forward_of"] is not None:
                        closures[(lib, "forward+backward")] = lambda f=o["forward_of"], t=xg: _step(f, t)
                # the memory-traffic floor, taken in the same rounds as the case it is compared with
                closures[("torch", "two copies")] = lambda: x.clone().clone()
                # rounds interleave the libraries, so a slow phase of a shared machine hits all of them
                samples = {key: [] for key in closures}
                for _ in range(rounds):
                    for key, fn in closures.items():
                        samples[key].append(timeit(fn, min_run_time / rounds))
                if "subband" in ops:
                    step = _split_step(ops["subband"]["forward_of"], xg, min_run_time / 2)
                    for op, ms in zip(("step forward", "step backward"), step):
                        results[(case, "subband", op)] = ms
                        rows.append(
                            dict(case=case, wavelet=wavelet, level=level, mode=mode, lib="subband", op=op,
                                 version=versions["subband"], median_ms=ms, shape=list(shape), dtype="float32", **env)
                        )  # fmt: skip
                copies = samples.pop(("torch", "two copies"))
                results[(case, "torch", "two copies")] = statistics.median(m for m, _ in copies)
                rows.append(
                    dict(case=case, lib="torch", op="two copies", median_ms=results[(case, "torch", "two copies")],
                         iqr_ms=statistics.median(q for _, q in copies), rounds=rounds, shape=list(shape), **env)
                )  # fmt: skip
                for lib, o in ops.items():
                    peak = peak_bytes(o["forward"], numpy=o["forward_of"] is None)
                    results[(case, lib, "peak")] = peak / x.nbytes
                    results[(case, lib, "first_call_s")] = o["first_call_s"]
                    for (lib2, op), got in samples.items():
                        if lib2 != lib:
                            continue
                        med = statistics.median(m for m, _ in got)
                        iqr = statistics.median(q for _, q in got)
                        results[(case, lib, op)] = med
                        rows.append(
                            dict(
                                case=case, wavelet=wavelet, level=level, mode=mode, lib=lib, op=op,
                                version=versions[lib], median_ms=med, iqr_ms=iqr, rounds=rounds, shape=list(shape),
                                dtype="float32", peak_forward_bytes=peak, input_bytes=x.nbytes, **env,
                            )
                        )  # fmt: skip
                print(f"  measured {case}", flush=True)
    _print_tables(results, libs, floor_ms)
    write_rows(out, rows)
    print(f"\nwrote {len(rows)} rows to {out}")


def _print_tables(results, libs, floor_ms):
    cases = sorted({c for c, _, _ in results}, key=lambda c: (c.split()[0] != "haar", c))
    for ref, ops in (("subband", ("forward+inverse", "forward", "inverse", "forward+backward")),
                     ("subband+compile", ("forward+inverse", "forward+backward"))):  # fmt: skip
        others = [lib for lib in libs if lib != ref]
        for op in ops:
            print(f"\n### {op}: {ref} time, and the others' time as a multiple of it (>1: {ref} faster)\n")
            head = ["case", f"{ref} ms", *others] + (["/ two copies"] if op == "forward+inverse" else [])
            print("| " + " | ".join(head) + " |")
            print("|" + "---|" * len(head))
            for case in cases:
                ours = results.get((case, ref, op))
                if ours is None:
                    continue
                cells = [case, f"{ours:.1f}"]
                for lib in others:
                    t = results.get((case, lib, op))
                    cells.append("n/a" if t is None else f"{t / ours:.2f}x")
                if op == "forward+inverse":  # against the copies timed in the same rounds
                    cells.append(f"{ours / results.get((case, 'torch', 'two copies'), floor_ms):.1f}")
                print("| " + " | ".join(cells) + " |")
    print("\n### subband: backward / forward time, peak forward memory / input size, first call (s)\n")
    print("backward/forward: both timed within the same training steps; vs forward alone: (forward+backward")
    print("step - the forward timed alone) / the forward timed alone, which reruns in cache\n")
    print(
        "| case | backward/forward | vs forward alone | peak/input | first fwd+inv call, eager | with torch.compile |"
    )
    print("|---|---|---|---|---|---|")
    for case in cases:
        f, fb = results.get((case, "subband", "forward")), results.get((case, "subband", "forward+backward"))
        sf, sb = results.get((case, "subband", "step forward")), results.get((case, "subband", "step backward"))
        if f:
            print(
                f"| {case} | {sb / sf:.2f} | {(fb - f) / f:.2f} | {results[(case, 'subband', 'peak')]:.2f} "
                f"| {results[(case, 'subband', 'first_call_s')]:.2f} "
                f"| {results.get((case, 'subband+compile', 'first_call_s'), float('nan')):.1f} |"
            )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", type=int, nargs="+", default=[16, 3, 256, 256])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--min-run-time", type=float, default=1.5, help="seconds per measurement, split over the rounds")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the median over rounds is reported")
    p.add_argument("--wavelets", nargs="+", default=["haar", "db4"])
    p.add_argument("--levels", type=int, nargs="+", default=[1, 3])
    p.add_argument("--modes", nargs="+", default=["zero", "symmetric", "periodization"])
    p.add_argument("--out", default="bench-results/wavelets.jsonl")
    p.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="glibc: keep freed blocks in the heap, so no call pays page faults (times the computation alone)",
    )
    a = p.parse_args()
    run(a.shape, a.threads, a.min_run_time, a.out, a.wavelets, a.levels, a.modes, a.rounds, a.keep_freed_memory)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
