"""1-D multilevel DWT (wavedec then waverec along the last axis) against PyWavelets and ptwt.

    python benchmarks/wavelets_1d.py [--threads 2] [--rounds 3] [--min-time 0.3] [--keep-freed-memory]

Cases: the 16x3x256x256 batch of ``benchmarks/wavelets.py`` along its last axis (rows of 256
samples) and 16 signals of 65536 samples; db4 and bior3.5 (an orthogonal and a biorthogonal bank),
symmetric and zero modes, three levels. Prints the peer's time over subband's (> 1: subband is
faster) and writes JSON rows to ``bench-results/wavelets_1d.jsonl``.
"""

from __future__ import annotations

import argparse

import pywt
import torch

import subband.wavelets as sw

try:
    from _common import keep_freed_memory, run_cases
except ImportError:  # run as a module
    from benchmarks._common import keep_freed_memory, run_cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=0.3, help="seconds per measurement")
    ap.add_argument("--keep-freed-memory", action="store_true", help="glibc: no page faults on reused buffers")
    ap.add_argument("--out", default="bench-results/wavelets_1d.jsonl")
    args = ap.parse_args()
    if args.keep_freed_memory:
        keep_freed_memory()
    torch.set_num_threads(args.threads)
    try:
        import ptwt
    except ImportError:
        ptwt = None
    cases = []
    for shape in [(16, 3, 256, 256), (16, 1 << 16)]:
        x = torch.randn(shape)
        xn = x.numpy()
        for name in ("db4", "bior3.5"):
            for mode in ("symmetric", "zero"):
                label = f"{'x'.join(map(str, shape))} {name} {mode} J=3"

                def ours(x=x, name=name, mode=mode):  # type: ignore[no-untyped-def]
                    return sw.waverec(sw.wavedec(x, name, mode=mode, level=3), name, mode=mode)

                def ref(xn=xn, name=name, mode=mode):  # type: ignore[no-untyped-def]
                    return pywt.waverec(pywt.wavedec(xn, name, mode=mode, level=3), name, mode=mode)

                cases.append(dict(name=label, ours=ours, baseline=ref, baseline_name="pywt", shape=list(shape)))
                if ptwt is not None:

                    def peer(x=x, name=name, mode=mode):  # type: ignore[no-untyped-def]
                        return ptwt.waverec(ptwt.wavedec(x, name, mode=mode, level=3), name)

                    cases.append(dict(name=label, ours=ours, baseline=peer, baseline_name="ptwt", shape=list(shape)))
    run_cases(cases, args.rounds, args.min_time, args.out)


if __name__ == "__main__":
    main()
