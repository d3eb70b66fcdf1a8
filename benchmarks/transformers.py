"""The hybrid vision transformers against timm's, same weights, one process: CrossViT-S and
Next-ViT-S (``benchmarks/timm_models.py`` with these models; same options).

    python benchmarks/transformers.py [--batches 1 8] [--threads 2]
"""

from __future__ import annotations

import sys

try:
    from timm_models import main
except ImportError:  # run as a module
    from benchmarks.timm_models import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--models" not in argv:
        argv = ["--models", "crossvit_small_240", "nextvit_small", *argv]
    if "--out" not in argv:
        argv += ["--out", "bench-results/transformers.jsonl"]
    raise SystemExit(main(argv))
