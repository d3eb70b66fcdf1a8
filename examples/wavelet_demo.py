"""Decompose a photograph into wavelet subbands, print the energy of each, save a picture.

    python examples/demo.py [--wavelet db4] [--level 3] [--mode periodization] [--out demo-out]

The photograph is scikit-image's bundled ``camera`` (no download). The energy table shows how an
orthogonal wavelet packs almost all of an image's energy into the small approximation band.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from skimage import data  # noqa: E402

import subband.wavelets as sw  # noqa: E402


def mosaic(coeffs: list) -> torch.Tensor:
    """The classic layout: approximation top-left, each level's (H, V, D) details around it."""
    a = coeffs[0] / coeffs[0].abs().max()
    for cH, cV, cD in coeffs[1:]:
        h, w = cH.shape[-2:]
        a = a[..., :h, :w]
        scale = max(t.abs().max() for t in (cH, cV, cD)).clamp_min(1e-12)
        top = torch.cat([a, cV.abs() / scale], -1)
        bottom = torch.cat([cH.abs() / scale, cD.abs() / scale], -1)
        a = torch.cat([top, bottom], -2)
    return a


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--wavelet", default="db4")
    p.add_argument("--level", type=int, default=3)
    p.add_argument("--mode", default="periodization")
    p.add_argument("--out", default="demo-out")
    args = p.parse_args()

    image = torch.from_numpy(data.camera()).double() / 255.0  # (512, 512) in [0, 1]
    t0 = time.perf_counter()
    coeffs = sw.wavedec2(image, args.wavelet, mode=args.mode, level=args.level)
    elapsed = time.perf_counter() - t0
    back = sw.waverec2(coeffs, args.wavelet, mode=args.mode)
    total = image.pow(2).sum().item()

    print(f"camera {tuple(image.shape)}, {args.wavelet}, {args.level} levels, mode {args.mode}: {elapsed * 1e3:.1f} ms")
    print(f"{'subband':<10} {'shape':>10} {'energy':>12} {'share':>8}")
    rows = [("A" + str(args.level), coeffs[0])]
    for i, (cH, cV, cD) in enumerate(coeffs[1:]):
        j = args.level - i
        rows += [(f"H{j}", cH), (f"V{j}", cV), (f"D{j}", cD)]
    for name, c in rows:
        e = c.pow(2).sum().item()
        print(f"{name:<10} {'x'.join(map(str, c.shape)):>10} {e:12.2f} {e / total:8.3%}")
    coeff_energy = sum(c.pow(2).sum().item() for _, c in rows)
    print(f"image energy {total:.2f}, coefficient energy {coeff_energy:.2f}")
    print(f"max reconstruction error {(back[: image.shape[0], : image.shape[1]] - image).abs().max().item():.2e}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    axes[0].imshow(image, cmap="gray")
    axes[0].set_title("camera")
    axes[1].imshow(mosaic(coeffs).sqrt(), cmap="gray")
    axes[1].set_title(f"{args.wavelet}, {args.level} levels (sqrt of |coefficient|)")
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    path = out / "subbands.png"
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
