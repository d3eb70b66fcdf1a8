"""1-D and 3-D multilevel DWTs (wavedec then waverec) against PyWavelets and ptwt.

    python benchmarks/wavelets_nd.py [--threads 2] [--rounds 3] [--min-time 0.3] [--keep-freed-memory]

1-D, along the last axis, three levels: the 16x3x256x256 batch of ``benchmarks/wavelets.py`` (rows
of 256 samples) and 16 signals of 65536 samples; haar, db4 and bior3.5 (the two-tap bank, an
orthogonal and a biorthogonal one), symmetric and zero modes; against PyWavelets and ptwt. 3-D
(wavedecn over the last three axes), two levels: a 4x64x64x64 batch, symmetric mode, haar, db4,
sym7, bior3.5 and bior6.8; against PyWavelets. 2-D small inputs (wavedec2 then waverec2, one level,
symmetric mode, haar and db4), from one 16x16 image to 8x64x32x32, where subband's cost per call
shows; against PyWavelets. Prints the peer's time over subband's (> 1: subband is faster) and
writes JSON rows to ``bench-results/wavelets_nd.jsonl``.
"""

from __future__ import annotations

import argparse

import pywt
import torch

import subband.wavelets as sw

try:
    from _common import keep_freed_memory, run_cases, warm_allocator
except ImportError:  # run as a module
    from benchmarks._common import keep_freed_memory, run_cases, warm_allocator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=0.3, help="seconds per measurement")
    ap.add_argument("--keep-freed-memory", action="store_true", help="glibc: no page faults on reused buffers")
    ap.add_argument("--out", default="bench-results/wavelets_nd.jsonl")
    args = ap.parse_args()
    if args.keep_freed_memory:
        keep_freed_memory()
    warm_allocator()
    torch.set_num_threads(args.threads)
    try:
        import ptwt
    except ImportError:
        ptwt = None
    cases = []
    for shape in [(16, 3, 256, 256), (16, 1 << 16)]:
        x = torch.randn(shape)
        xn = x.numpy()
        for name in ("haar", "db4", "bior3.5"):
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
    v = torch.randn(4, 64, 64, 64)
    vn, axes = v.numpy(), (1, 2, 3)
    for name in ("haar", "db4", "sym7", "bior3.5", "bior6.8"):

        def ours3(name=name):  # type: ignore[no-untyped-def]
            return sw.waverecn(sw.wavedecn(v, name, level=2, axes=axes), name, axes=axes)

        def ref3(name=name):  # type: ignore[no-untyped-def]
            return pywt.waverecn(pywt.wavedecn(vn, name, level=2, axes=axes), name, axes=axes)

        label = f"4x64x64x64 {name} symmetric J=2 (3-D)"
        cases.append(dict(name=label, ours=ours3, baseline=ref3, baseline_name="pywt", shape=list(v.shape)))
    for shape in [(1, 1, 16, 16), (1, 3, 32, 32), (1, 3, 64, 64), (4, 16, 32, 32), (1, 1, 256, 256), (8, 64, 32, 32)]:
        s = torch.randn(shape)
        sn = s.numpy()
        for name in ("haar", "db4"):

            def ours2(s=s, name=name):  # type: ignore[no-untyped-def]
                return sw.waverec2(sw.wavedec2(s, name, level=1), name)

            def ref2(sn=sn, name=name):  # type: ignore[no-untyped-def]
                return pywt.waverec2(pywt.wavedec2(sn, name, level=1), name)

            label = f"{'x'.join(map(str, shape))} {name} symmetric J=1 (2-D)"
            cases.append(dict(name=label, ours=ours2, baseline=ref2, baseline_name="pywt", shape=list(shape)))
    run_cases(cases, args.rounds, args.min_time, args.out)


if __name__ == "__main__":
    main()
