"""Fourier discrepancies of CNN-generated images, at small scale ("A Closer Look at Fourier
Spectrum Discrepancies for CNN-generated Images Detection", Chandrasegaran et al., CVPR 2021).

Two generators that differ only in their last upsampling, a 4x4 stride-2 transposed convolution or
nearest-neighbour x2 + 5x5 convolution (the paper's "N.1.5" change), against the spectral detector
(subband.interpret.SpectralDetector: Dzanic et al.'s features, i.e. the power-law exponent of the
Fourier magnitudes in the spectrum's corners and the magnitudes where that band starts and ends, fed
to logistic regression or the official 5-nearest-neighbour classifier). As in the paper's official
evaluation, the detector is fit on half of the real images against half of the transposed-convolution
generator's, then counts how many held-out images of each kind it calls generated; the paper's claim
is that it catches the transposed convolution and misses nearest + conv. A detector fit on each
generator's own images is reported too.

Tasks:
- ``gan-patches`` (the paper's setting, scaled down): two DCGANs, at ``--size`` (64), learn grey
  patches of T91 and BSD100 (40 and 60 per image, 2,000 held out as the real images), each GAN from
  the same seed.
- ``gan``: the same DCGANs at 32x32 on the MNIST test split (``--mnist``; 8,000 digits to train,
  2,000 held out).
- ``autoencode`` / ``sr``: two small networks trained (L1, not adversarially) on T91 patches to
  auto-encode (input: the four polyphase components, nothing lost) or to super-resolve (input: a
  bicubic half-size image); their outputs on 400 BSD100 patches against the patches themselves.

    python examples/spectral_discrepancy.py [--task gan-patches|gan|autoencode|sr] [--steps N] [--seed S]
        [--samples FILE.safetensors] [--data ../shared/data/sr] [--out docs]

Prints the detector's results and writes ``spectral_discrepancy_<task>.png`` (mean ring-averaged power
spectrum; mean outer-band magnitude profile, the detector's input) and, for the GANs, 64 samples of
each. ``--samples`` keeps the generated images (safetensors), so a second run reads them instead of
training again. Measured figures are in the README.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from subband.data.sr import load_image, rgb_to_y
from subband.interpret import SpectralDetector, azimuthal_average, band_profile, power_spectrum


def generator(last: str, in_channels: int, width: int = 48) -> nn.Sequential:
    """Half-resolution input -> full-resolution image; ``last`` is "transposed" or "nearest"."""
    up: list[nn.Module] = (
        [nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1)]
        if last == "transposed"
        else [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(width, 1, 5, padding=2)]
    )
    body = [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*body, *up)


def patches(folder: Path, size: int, per_image: int, g: torch.Generator) -> torch.Tensor:
    out = []
    for path in sorted(folder.iterdir()):
        img = load_image(path)
        y = rgb_to_y(img) if img.shape[0] == 3 else img
        h, w = y.shape[-2:]
        if h < size or w < size:
            continue
        for _ in range(per_image):
            i = int(torch.randint(0, h - size + 1, (1,), generator=g))
            j = int(torch.randint(0, w - size + 1, (1,), generator=g))
            out.append(y[..., i : i + size, j : j + size])
    return torch.stack(out)  # (N, 1, size, size)


def encode(hr: torch.Tensor, task: str) -> torch.Tensor:
    """The generator's input: a bicubic half-size image (super-resolution: high frequencies are
    lost) or the four polyphase components of the image (auto-encoding: nothing is lost)."""
    if task == "sr":
        return F.interpolate(hr, scale_factor=0.5, mode="bicubic", align_corners=False, antialias=True)
    return F.pixel_unshuffle(hr, 2)


def dcgan(last: str, nz: int = 64, ngf: int = 32, size: int = 32) -> tuple[nn.Module, nn.Module]:
    """DCGAN generator (z -> 4x4 -> 8 -> ... -> ``size``, tanh) with ``last`` upsampling, and its
    discriminator (``size`` -> ... -> 4x4 -> one logit)."""
    n = int(math.log2(size)) - 3  # upsamplings before the last one
    if size < 16 or 2 ** (n + 3) != size:
        raise ValueError(f"size must be a power of two >= 16, got {size}")
    up: list[nn.Module] = (
        [nn.ConvTranspose2d(ngf, 1, 4, 2, 1)]
        if last == "transposed"
        else [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ngf, 1, 5, padding=2)]
    )
    w = [ngf * 2 ** (n - i) for i in range(n + 1)]  # widths at 4x4, 8x8, ..., size/2
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(nz, w[0], 4, 1, 0),
        nn.BatchNorm2d(w[0]),
        nn.ReLU(),
    ]  # (B, nz, 1, 1) -> 4x4
    for i in range(n):
        layers += [nn.ConvTranspose2d(w[i], w[i + 1], 4, 2, 1), nn.BatchNorm2d(w[i + 1]), nn.ReLU()]  # side x2
    gen = nn.Sequential(*layers, *up, nn.Tanh())  # last upsampling to size
    d = w[::-1]  # ngf, 2 ngf, ...
    layers = [nn.Conv2d(1, d[0], 4, 2, 1), nn.LeakyReLU(0.2)]  # size/2
    for i in range(n):
        layers += [nn.Conv2d(d[i], d[i + 1], 4, 2, 1), nn.BatchNorm2d(d[i + 1]), nn.LeakyReLU(0.2)]  # side /2
    disc = nn.Sequential(*layers, nn.Conv2d(d[-1], 1, 4, 1, 0), nn.Flatten())  # 4x4 -> (B, 1) logit
    for m in [*gen.modules(), *disc.modules()]:  # DCGAN initialisation
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return gen, disc


def train_gan(last: str, real: torch.Tensor, steps: int, g: torch.Generator, nz: int = 64) -> nn.Module:
    """Non-saturating DCGAN training (Adam 2e-4, betas 0.5 / 0.999, batch 64) on ``real`` in [-1, 1]."""
    gen, disc = dcgan(last, nz, size=real.shape[-1])
    opt_g = torch.optim.Adam(gen.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), 2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(64, 1), torch.zeros(64, 1)
    for _ in tqdm(range(steps), desc=f"GAN ({last})"):
        x = real[torch.randint(0, len(real), (64,), generator=g)]
        fake = gen(torch.randn(64, nz, 1, 1, generator=g))
        loss_d = bce(disc(x), ones) + bce(disc(fake.detach()), zeros)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = bce(disc(fake), ones)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    return gen.eval()


def main_gan(args: argparse.Namespace) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Held-out real images and both GANs' samples."""
    from subband.data import mnist

    g = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    if args.task == "gan":
        digits = F.pad(mnist(args.mnist, "test").images, (2, 2, 2, 2))  # (10000, 1, 32, 32) in [0, 1]
        real, held_out = digits[:8000] * 2 - 1, digits[8000:]  # train the GANs on 8k; 2k real images to detect
        print(f"{len(real)} MNIST digits to train the GANs, {len(held_out)} held-out real digits for the detector")
    else:  # gan-patches: grey patches of T91 and BSD100, 2,000 held out
        pg = torch.Generator().manual_seed(1234 + args.seed)
        root = Path(args.data)
        pats = torch.cat([patches(root / "T91", args.size, 40, pg), patches(root / "BSD100", args.size, 60, pg)])
        order = torch.randperm(len(pats), generator=pg)
        real, held_out = pats[order[2000:]] * 2 - 1, pats[order[:2000]]
        print(f"{len(real)} {args.size}x{args.size} patches to train the GANs, {len(held_out)} held out")

    def train_one(last: str) -> torch.Tensor:
        nonlocal g
        if args.task == "gan-patches":  # each GAN from the same seed
            g = torch.Generator().manual_seed(args.seed)
            torch.manual_seed(args.seed)
        gen = train_gan(last, real, args.steps, g)
        with torch.no_grad():
            return (gen(torch.randn(len(held_out), 64, 1, 1, generator=g)) + 1) / 2  # [0, 1] as the real ones

    fakes = generate(args, train_one)
    if args.out:
        for last, fake in fakes.items():
            samples = Path(args.out) / f"spectral_discrepancy_{args.task}_{last}_samples.png"
            samples.parent.mkdir(parents=True, exist_ok=True)
            _save_grid(fake[:64], samples)
    return held_out, fakes


def generate(args: argparse.Namespace, train_one) -> dict[str, torch.Tensor]:
    """Both generators' outputs on the test images: read from ``--samples`` if that file exists,
    otherwise ``train_one(last)`` for each, kept there as soon as each one is done."""
    cache = Path(args.samples) if args.samples else None
    saved = load_file(cache) if cache is not None and cache.exists() else {}
    if saved:
        print(f"generated images read from {cache} (delete it to train again)")
    for last in ("transposed", "nearest"):
        if last not in saved:
            saved[last] = train_one(last).contiguous()
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                save_file(saved, cache)
    return {last: saved[last] for last in ("transposed", "nearest")}


def evaluate(real: torch.Tensor, fakes: dict[str, torch.Tensor]) -> dict[str, float]:
    """Fit and test the detector on half of the images each (real against each generator's), and
    run the paper's protocol: fit on real against the transposed-conv generator, then count how many
    of the nearest + conv generator's images the same detector still flags."""
    half = len(real) // 2
    acc = {
        last: SpectralDetector().fit(real[:half], fake[:half]).score(real[half:], fake[half:])
        for last, fake in fakes.items()
    }
    print("detector fit on real vs transposed-conv images; share called generated on held-out images:")
    print(f"{'classifier':12s} {'real':>6s} {'transposed':>11s} {'nearest+conv':>13s}")
    for clf in ("logistic", "knn"):
        det = SpectralDetector(classifier=clf).fit(real[:half], fakes["transposed"][:half])
        rates = [det.detection_rate(x[half:]) for x in (real, fakes["transposed"], fakes["nearest"])]
        print(f"{clf:12s} {rates[0]:6.3f} {rates[1]:11.3f} {rates[2]:13.3f}")
    return acc


def mean_spectra(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The mean ring-averaged power spectrum, and the mean outer-band magnitude profile the detector
    reads (radii, profile)."""
    radii, prof = band_profile(images)
    return azimuthal_average(power_spectrum(images)).mean(0), radii, prof.mean(0)


def _save_grid(images: torch.Tensor, path: Path) -> None:
    """An 8x8 grid of ``(64, 1, H, W)`` images in [0, 1] as a PNG (Pillow)."""
    from PIL import Image

    n, _, h, w = images.shape
    grid = images[:, 0].reshape(8, n // 8, h, w).permute(0, 2, 1, 3).reshape(8 * h, (n // 8) * w)
    Image.fromarray((grid.clamp(0, 1) * 255).round().byte().numpy()).save(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/sr"))
    ap.add_argument("--out", default="docs")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--task", choices=["autoencode", "sr", "gan", "gan-patches"], default="autoencode")
    ap.add_argument(
        "--samples",
        default=None,
        help="safetensors file of the generated images: read if it exists, else written after each generator",
    )
    ap.add_argument("--mnist", default=str(Path(__file__).resolve().parents[2] / "shared/data/mnist-test"))
    args = ap.parse_args(argv)
    if args.task in ("gan", "gan-patches"):
        real, fakes = main_gan(args)
    else:
        real, fakes = main_upsampling(args)
    for last, fake in fakes.items():
        if fake.shape != real.shape:
            raise SystemExit(
                f"{args.samples} holds {last} images of shape {tuple(fake.shape)}, not {tuple(real.shape)}"
            )
    acc = evaluate(real, fakes)
    print(f"{'last upsampling':18s} {'detector acc':>12s} {'PSNR':>6s}")
    for last, fake in fakes.items():
        psnr = float(-10 * torch.log10(F.mse_loss(fake, real))) if args.task in ("autoencode", "sr") else float("nan")
        print(f"{last:18s} {acc[last]:12.3f} {psnr:6.2f}")
    return plot({"real": mean_spectra(real)} | {k: mean_spectra(v) for k, v in fakes.items()}, args)


def main_upsampling(args: argparse.Namespace) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """BSD100 test patches and both networks' outputs on them (trained on T91 patches, L1)."""
    g = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    train_hr = patches(Path(args.data) / "T91", args.size, 16, g)
    test_hr = patches(Path(args.data) / "BSD100", args.size, 4, g)
    print(f"{len(train_hr)} training patches (T91), {len(test_hr)} test patches (BSD100)")

    def train_one(last: str) -> torch.Tensor:
        net = generator(last, 1 if args.task == "sr" else 4)
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        for _ in tqdm(range(args.steps), desc=f"train ({last})"):
            hr = train_hr[torch.randint(0, len(train_hr), (32,), generator=g)]
            loss = F.l1_loss(net(encode(hr, args.task)), hr)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            return net(encode(test_hr, args.task)).clamp(0, 1)

    return test_hr, generate(args, train_one)


def plot(spectra: dict, args: argparse.Namespace) -> int:
    """Plot the mean spectra: ring-averaged power, and the outer band the detector reads."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return 0
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.5))
    for name, (prof, radii, band) in spectra.items():
        ax.loglog(torch.arange(1, len(prof)), prof[1:].numpy(), label=name)
        bx.semilogy(radii.numpy(), band.numpy(), label=name)
    ax.set_xlabel("spatial frequency (cycles per patch)")
    ax.set_ylabel("mean power (ring average)")
    ax.legend()
    ax.set_title(f"mean spectra, task: {args.task}")
    side = spectra["real"][1][-1].item()  # the corner radius
    bx.axvline(side / 2**0.5, color="grey", lw=0.8, ls=":", label="axes' Nyquist")
    bx.axvline(0.85 * side, color="grey", lw=0.8, ls="--", label="fitted from")
    bx.set_xlabel("radius (cycles per patch)")
    bx.set_ylabel("mean |FFT| (binned, smoothed)")
    bx.set_title("outer band to the corners: the detector's input")
    bx.legend(fontsize=8)
    fig.tight_layout()
    out = Path(args.out) / f"spectral_discrepancy_{args.task}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    print(f"plot written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
