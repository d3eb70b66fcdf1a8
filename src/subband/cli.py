"""The ``subband`` command line: thin calls into the library.

    subband train MODEL --data SPEC     train (AdamW, cosine, checkpoints, --resume)
    subband eval CHECKPOINT --data SPEC evaluate a checkpoint
    subband models [PATTERN]            registered models: params and GMACs (after fuse()), counted and as reported
    subband bench MODEL [MODEL ...]     params, GMACs, CPU latency (batch 1), throughput (batch 32), peak memory
    subband interpret METHOD MODEL      look inside a model (a registered name or a checkpoint):
                                        filters | erf | linear | orthogonality | robustness | features | spectrum
    subband compress METHOD MODEL       make it small: fuse | lpvit | dimap, then optionally --out
                                        (pruned checkpoint) and --onnx (the deployed model as ONNX)

Datasets: digits[:train|test], mnist:DIR[:train|test], folder:DIR, sr:DIR (HR images), sr (bundled photos).

Several processes (data-parallel; --batch-size is the global batch, split evenly across them):
    torchrun --nproc_per_node 2 -m subband train MODEL --data SPEC ...
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from .data import from_spec
from .models import create_model, list_models, load_model, model_info
from .models._profile import alternating_ms, count_gmacs, count_params, default_input, peak_memory


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def cmd_models(args: argparse.Namespace) -> int:
    names = list_models(args.pattern)
    if not names:
        print(f"no model matches {args.pattern!r}", file=sys.stderr)
        return 1
    print(f"{'model':<24} {'params':>12} {'paper':>12} {'GMACs':>8} {'paper':>8}  input")
    for name in names:
        paper = model_info(name)
        with torch.device("meta"):  # shapes only: no memory, no initialisation, no arithmetic
            model = create_model(name).eval()
            if hasattr(model, "fuse"):  # re-parameterised models are counted as deployed, as papers do
                model.fuse()
            x = default_input(model)
        gmacs = count_gmacs(model, x) if args.flops else None
        print(
            f"{name:<24} {count_params(model):>12,} {_fmt(paper.params, ',')!s:>12} "
            f"{_fmt(gmacs, '.3f'):>8} {_fmt(paper.gflops, '.3f'):>8}  {'x'.join(map(str, x.shape[1:]))}"
        )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    models = {name: create_model(name).eval() for name in dict.fromkeys(args.models + args.compare)}
    inputs = {name: (default_input(m, 1), default_input(m, args.batch)) for name, m in models.items()}
    one = alternating_ms(models, {n: i[0] for n, i in inputs.items()}, args.rounds, args.min_time)
    many = alternating_ms(models, {n: i[1] for n, i in inputs.items()}, args.rounds, args.min_time)
    rows = []
    for name, model in models.items():
        x1 = inputs[name][0]
        with torch.no_grad():
            peak = peak_memory(lambda m=model, x=x1: m(x))
        rows.append(
            dict(
                model=name,
                params=count_params(model),
                gmacs=round(count_gmacs(model, x1), 4),
                input=list(x1.shape[1:]),
                latency_ms=round(one[name], 3),
                batch=args.batch,
                images_per_s=round(args.batch * 1e3 / many[name], 2),
                peak_mb_batch1=round(peak / 2**20, 2),
                threads=args.threads,
                rounds=args.rounds,
            )
        )
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    base = rows[0]["latency_ms"]
    print(
        f"{'model':<24} {'params':>12} {'GMACs':>8} {'ms (b=1)':>9} {'x first':>8} {'img/s (b=' + str(args.batch) + ')':>13} {'peak MB':>8}"
    )
    for r in rows:
        print(
            f"{r['model']:<24} {r['params']:>12,} {r['gmacs']:>8.3f} {r['latency_ms']:>9.2f} "
            f"{r['latency_ms'] / base:>8.2f} {r['images_per_s']:>13.1f} {r['peak_mb_batch1']:>8.1f}"
        )
    return 0


def _overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--set takes key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _datasets(args: argparse.Namespace, scale: int | None):
    """The training set, and the evaluation set: ``--val-data``, else the test split of digits/mnist."""
    train = from_spec(args.data, split="train", scale=scale, patch=args.patch)
    val_spec = args.val_data
    if val_spec is None and args.data.split(":")[0] in ("digits", "mnist"):
        val_spec = args.data.removesuffix(":train") + ":test" if args.data != "digits" else "digits:test"
    return train, (from_spec(val_spec, split="test", scale=scale) if val_spec else None)


def cmd_train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, distributed, fit

    torch.set_num_threads(args.threads)
    cfg = TrainConfig(
        model=args.model, model_overrides=_overrides(args.set), epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
        label_smoothing=args.label_smoothing, clip_grad=args.clip_grad, seed=args.seed, out_dir=args.out,
        eval_every=args.eval_every,
    )  # fmt: skip
    scale = getattr(create_model(cfg.model, **cfg.model_overrides), "upscale", None)
    train, val = _datasets(args, scale)
    t0 = time.perf_counter()
    with distributed.launched():  # under torchrun: one process of a data-parallel run
        record = fit(cfg, train, val, resume=args.resume, progress=not args.quiet)
        main = distributed.is_main()
    if main:
        print(
            json.dumps(
                {
                    **record,
                    "wall_seconds": round(time.perf_counter() - t0, 1),
                    "checkpoint": str(Path(cfg.out_dir) / "last.safetensors"),
                }
            )
        )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .train import distributed, evaluate

    model = load_model(args.checkpoint)
    data = from_spec(args.data, split="test", scale=getattr(model, "upscale", None))
    with distributed.launched():  # under torchrun: each process scores a share of the set
        metrics = evaluate(model.to(distributed.device()), data)
        main = distributed.is_main()
    if main:
        print(json.dumps({"checkpoint": args.checkpoint, "data": args.data, **metrics}))
    return 0


def _load(name_or_path: str):
    """A checkpoint (a path that exists) or a registered model with fresh weights."""
    return load_model(name_or_path) if Path(name_or_path).exists() else create_model(name_or_path)


def _images(args: argparse.Namespace, model, n: int):
    """``n`` images (and labels) of ``--data``, or random images of the model's default size."""
    if args.data:
        return _take(from_spec(args.data, split="test"), n)
    return default_input(model, n), None


def cmd_interpret(args: argparse.Namespace) -> int:
    from . import interpret as it

    torch.set_num_threads(args.threads)
    model = _load(args.model).eval()
    out: dict = {"model": args.model, "method": args.method}
    try:
        _interpret(args, model, out, it)
    except RuntimeError as e:  # images that do not fit the model and the like
        raise ValueError(f"{args.method} on {args.model} failed: {str(e).splitlines()[0]}") from None
    print(json.dumps(out, indent=None if args.compact else 2))
    return 0


def _interpret(args: argparse.Namespace, model, out: dict, it) -> None:
    png = Path(args.out) / f"{args.method}.png" if args.out else None
    if args.method == "filters":
        stats = it.filter_statistics(model, kernel_size=args.kernel_size)
        if not stats:
            raise ValueError(f"{args.model} has no {args.kernel_size}x{args.kernel_size} convolutions")
        out.update(layers=stats, degenerate=it.flag_degenerate(stats))
        if png and args.kernel_size == 3:
            out["png"] = str(it.save_filter_pca_png(model, png))
    elif args.method == "erf":
        x, _ = _images(args, model, args.samples)
        erf = it.effective_receptive_field(model, x)
        out.update(it.erf_summary(erf), input=list(x.shape))
        if png:
            out["png"] = str(it.save_erf_png(erf, png, title=args.model))
    elif args.method == "linear":
        x, _ = _images(args, model, args.samples)
        lin = it.LinearScope(model).interpret(x)
        err = float((lin.apply(x) + lin.bias - lin.output).abs().max())
        out.update(identity_error=err, bias_share_mean=float(lin.bias_share().mean()), input=list(x.shape))
    elif args.method == "orthogonality":
        rows = {}
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.Conv2d) and m.groups == 1 and args.size % m.stride[0] == 0:
                w = m.weight.detach()
                if args.size >= w.shape[-1]:
                    rows[name] = {**it.orthogonality_error(w, args.size, m.stride[0]),
                                  "regulariser": float(it.orthogonality_regularizer(w, m.stride[0]))}  # fmt: skip
        out["layers"] = rows
    elif args.method == "robustness":
        if not args.data:
            raise ValueError("robustness needs labelled images: --data SPEC")
        x, y = _images(args, model, args.samples)
        out.update(it.evaluate_patch_robustness(model, x, y, args.patch_size))
    elif args.method == "features":
        if not args.data:
            raise ValueError("features needs labelled images: --data SPEC without a split (train and test are used)")
        (xtr, ytr), (xte, yte) = (_take(from_spec(args.data, split=s), args.samples) for s in ("train", "test"))
        ftr, fte = (it.extract_features(model, x, stage=args.stage) for x in (xtr, xte))
        top1 = it.linear_probe(ftr, ytr, fte, yte)
        out.update(stage=args.stage, dim=ftr.shape[1], train=len(xtr), test=len(xte), probe_top1=top1)
    elif args.method == "spectrum":
        out.update(_spectrum(args, model, it))


def _take(data, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` (image, label) pairs of ``data`` as two tensors."""
    items = [data[i] for i in range(min(n, len(data)))]
    return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])


def _spectrum(args: argparse.Namespace, model, it) -> dict:
    """Spectral statistics of an image-to-image model's outputs (and of its inputs, and of the target
    images where ``--data`` pairs them, as super-resolution sets do): the mean decay exponent of the
    ring-averaged power spectrum's highest quarter, and the mean of the detector's three features."""
    if args.data:
        data = from_spec(args.data, split="test", scale=getattr(model, "upscale", None))
        pairs = [data[i] for i in range(min(args.samples, len(data)))]
    else:
        pairs = [(x, None) for x in default_input(model, args.samples)]
    stats: dict[str, list] = {"input": [], "output": [], "target": []}
    with torch.no_grad():
        for x, target in pairs:
            y = model(x[None])
            if y.ndim != 4 or min(y.shape[-2:]) < 8:
                raise ValueError(f"spectrum needs a model whose output is an image, got shape {tuple(y.shape)}")
            for name, img in (("input", x[None]), ("output", y), ("target", target)):
                if isinstance(img, torch.Tensor) and img.ndim >= 2 and min(img.shape[-2:]) >= 8:
                    img = img.reshape(1, -1, *img.shape[-2:]).float()
                    beta, _ = it.fit_decay(it.azimuthal_average(it.power_spectrum(img)))
                    stats[name].append(torch.cat([beta, it.spectral_features(img)[0].double()]))
    keys = ("decay_beta", "corner_exponent", "corner_start", "corner_end")
    return {name: dict(zip(keys, torch.stack(v).mean(0).tolist())) for name, v in stats.items() if v}


def _cost(model, x: torch.Tensor, data) -> dict:
    from .compress import sparse_macs
    from .train import evaluate

    row = {"params": count_params(model), "gmacs": round(count_gmacs(model, x), 6)}
    row["sparse_gmacs"] = round(sparse_macs(model, x), 6)
    if data is not None:
        row.update(evaluate(model, data))
    return row


def cmd_compress(args: argparse.Namespace) -> int:
    from . import compress
    from .models import save_model

    if args.method == "fuse" and args.out:
        raise ValueError("a fused model is not a create_model architecture: write it with --onnx instead of --out")
    torch.set_num_threads(args.threads)
    model = _load(args.model).eval()
    scale = getattr(model, "upscale", None)
    data = from_spec(args.data, split="test", scale=scale) if args.data else None
    x = default_input(model, 1) if data is None else data[0][0][None]
    out: dict = {"model": args.model, "method": args.method, "dense": _cost(model, x, data)}
    if args.method == "fuse":
        deployed, reference = compress.fuse(model), model
    else:
        if args.method == "lpvit":
            spec = args.calib_data or args.data
            if not spec:
                raise ValueError("lpvit needs calibration images: --calib-data SPEC (or --data SPEC)")
            calib = from_spec(spec, split="train", scale=scale)
            order = torch.randperm(len(calib), generator=torch.Generator().manual_seed(args.seed))
            idx = order[: args.calib * args.batch_size].tolist()
            images = torch.stack([calib[i][0] for i in idx])
            batches = list(images.split(args.batch_size))
            pruned = compress.lpvit_prune(model, batches, flops=args.flops, block=args.block, example_input=x)
        else:  # dimap: no data
            pruned = compress.dimap_prune(model, flops=args.flops, input_size=tuple(x.shape[1:]))
        out["pruned"] = _cost(pruned, x, None)
        if args.out:
            dense_zeros = compress.finalize(pruned, shrink=False)  # loads into the unpruned architecture
            extra = {"compress": {"method": args.method, "flops": args.flops, "from": args.model}}
            out["checkpoint"] = str(save_model(dense_zeros, args.out, extra=extra))
        deployed, reference = compress.finalize(pruned), pruned
    with torch.no_grad():  # the deployed model against the one it was made from (for pruning: the masked one)
        out["max_abs_diff"] = float((deployed(x) - reference(x)).abs().max())
    out["deployed"] = _cost(deployed, x, data)
    if args.rounds > 0:
        ms = alternating_ms({"dense": model, "deployed": deployed}, x, args.rounds, args.min_time)
        out["latency_ms_batch1"] = {k: round(v, 4) for k, v in ms.items()}
        out["latency_ratio"] = round(ms["deployed"] / ms["dense"], 4)
    if args.onnx:
        try:
            out["onnx"] = str(compress.export_onnx(deployed, args.onnx, example=x))
        except compress.OnnxExportError as e:
            raise ValueError(str(e)) from None
    print(json.dumps(out, indent=None if args.compact else 2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="subband", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser(
        "train",
        help="train a registered model",
        description="Train a registered model. Data-parallel over N processes (DistributedDataParallel; gloo on "
        "CPU, nccl on GPU): torchrun --nproc_per_node N -m subband train ... Only rank 0 writes.",
    )
    t.add_argument("model")
    t.add_argument("--data", required=True, help="training set (see above)")
    t.add_argument("--val-data", help="evaluation set (default: the test split of digits/mnist)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model override (JSON value)")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument(
        "--batch-size", type=int, default=64, help="global batch: under torchrun, split evenly across processes"
    )
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--weight-decay", type=float, default=0.05)
    t.add_argument("--warmup-epochs", type=float, default=1.0)
    t.add_argument("--label-smoothing", type=float, default=0.0)
    t.add_argument("--clip-grad", type=float, default=0.0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--eval-every", type=int, default=1)
    t.add_argument("--patch", type=int, default=None, help="HR crop size for sr: training data")
    t.add_argument("--out", default="runs/run", help="output folder")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.safetensors")
    t.add_argument("--threads", type=int, default=torch.get_num_threads())
    t.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    t.set_defaults(fn=cmd_train)
    e = sub.add_parser("eval", help="evaluate a checkpoint")
    e.add_argument("checkpoint")
    e.add_argument("--data", required=True)
    e.set_defaults(fn=cmd_eval)
    m = sub.add_parser("models", help="list registered models with counted and reported cost")
    m.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern, e.g. 'wavemix*'")
    m.add_argument("--no-flops", dest="flops", action="store_false", help="skip counting GMACs (faster)")
    m.set_defaults(fn=cmd_models)
    b = sub.add_parser("bench", help="cost and CPU speed of one or more models, in one process")
    b.add_argument("models", nargs="+", help="registered model names (several: compared in one run)")
    b.add_argument("--compare", nargs="+", default=[], metavar="MODEL", help="more models, timed in the same run")
    b.add_argument("--batch", type=int, default=32, help="batch size for the throughput figure")
    b.add_argument("--threads", type=int, default=torch.get_num_threads())
    b.add_argument("--min-time", type=float, default=1.0, help="seconds of timing per measurement, over all rounds")
    b.add_argument("--rounds", type=int, default=3, help="the models take turns this many times; medians kept")
    b.add_argument("--json", action="store_true", help="one JSON object per model instead of a table")
    b.set_defaults(fn=cmd_bench)
    i = sub.add_parser("interpret", help="look inside a model: filter statistics, ERF, linear interpreter, ...")
    i.add_argument(
        "method", choices=["filters", "erf", "linear", "orthogonality", "robustness", "features", "spectrum"]
    )
    i.add_argument("model", help="a registered model name (fresh weights) or a .safetensors checkpoint")
    i.add_argument("--data", help="images (and labels) to use, a dataset spec as for train; random if omitted")
    i.add_argument("--samples", type=int, default=8, help="images to use")
    i.add_argument("--out", help="folder for a PNG (filters, erf)")
    i.add_argument("--kernel-size", type=int, default=3, help="filters: the kernel size to collect")
    i.add_argument("--size", type=int, default=32, help="orthogonality: image side for the operator")
    i.add_argument("--patch-size", type=int, default=4, help="robustness: patch side")
    i.add_argument("--stage", type=int, default=None, help="features: the stage to pool (default: the last)")
    i.add_argument("--threads", type=int, default=torch.get_num_threads())
    i.add_argument("--compact", action="store_true", help="one-line JSON")
    i.set_defaults(fn=cmd_interpret)
    c = sub.add_parser(
        "compress",
        help="make a model small: fuse, LPViT block pruning, DIMAP data-free pruning; ONNX export",
        description="Compress a model (a registered name or a checkpoint) and report params, GMACs (dense and "
        "without zero-weight products), accuracy on --data, and batch-1 latency against the original. fuse: "
        "BatchNorms folded, branches re-parameterised. lpvit: block pruning with calibration images. dimap: "
        "pruning from the weights alone. Pruned models are finalized (dead heads and MLP units removed) for "
        "the report and --onnx; --out writes the pruned weights as zeros in the original architecture.",
    )
    c.add_argument("method", choices=["fuse", "lpvit", "dimap"])
    c.add_argument("model", help="a registered model name (fresh weights) or a .safetensors checkpoint")
    c.add_argument("--data", help="labelled test images to score before and after, a dataset spec as for train")
    c.add_argument("--calib-data", help="lpvit: calibration images (default: the train split of --data)")
    c.add_argument("--calib", type=int, default=8, help="lpvit: calibration batches")
    c.add_argument("--batch-size", type=int, default=32, help="lpvit: calibration batch size")
    c.add_argument("--flops", type=float, default=0.5, help="lpvit, dimap: fraction of the MACs to keep")
    c.add_argument("--block", type=int, default=16, help="lpvit: square block side")
    c.add_argument("--seed", type=int, default=0, help="lpvit: which calibration images")
    c.add_argument("--out", help="lpvit, dimap: write the pruned checkpoint here (.safetensors)")
    c.add_argument("--onnx", help="write the deployed (fused or finalized) model here as ONNX")
    c.add_argument("--rounds", type=int, default=3, help="latency: the two models take turns; 0 skips timing")
    c.add_argument("--min-time", type=float, default=1.0, help="latency: seconds per model over all rounds")
    c.add_argument("--threads", type=int, default=torch.get_num_threads())
    c.add_argument("--compact", action="store_true", help="one-line JSON")
    c.set_defaults(fn=cmd_compress)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except ValueError as e:  # unknown model names and the like: a message, not a traceback
        print(f"subband: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
