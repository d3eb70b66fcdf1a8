"""The training loop: AdamW with warm-up and cosine decay, a progress bar, per-epoch metrics in
JSONL, atomic ``last``/``best`` checkpoints carrying the optimiser and RNG state, exact resume.

A run is a pure function of its :class:`TrainConfig` and data: the data order of epoch ``e`` comes
from a generator seeded with ``(seed, e)``, and the global RNG state (dropout) is saved with every
checkpoint, so a run resumed from its last checkpoint reproduces the losses of an uninterrupted one.

The same loop runs in several processes (torchrun; :mod:`~subband.train.distributed`): the model in
DistributedDataParallel, each global batch split across processes, the loss and metrics summed over
them, files written by rank 0 only. A single process is the case of one.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from ..models import create_model, load_model, save_model
from ..models._checkpoint import read_config, read_extra_tensors
from . import distributed
from .config import TrainConfig
from .distributed import ShardedBatches
from .metrics import psnr, ssim

__all__ = ["fit", "evaluate", "is_sr"]

log = logging.getLogger(__name__)


def is_sr(model: nn.Module) -> bool:
    """Super-resolution models take LR and return SR; they expose ``upscale``."""
    return hasattr(model, "upscale")


def _lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, batch_size: int = 128) -> dict[str, float]:
    """Classification: loss, top-1 and top-5 accuracy (%). Super-resolution: PSNR and SSIM (dB, Y
    channel as given) with a border of ``upscale`` pixels cropped, one image at a time.

    Inputs go to the device of the model's parameters. With several processes (see
    :mod:`~subband.train.distributed`) every process must call this: each scores every
    ``world_size``-th item and the sums are all-reduced, so all return the metrics of the whole set.
    """
    model.eval()
    dev = next(model.parameters(), torch.empty(0)).device
    mine = range(distributed.rank(), len(dataset), distributed.world_size())
    if is_sr(model):
        p = s = 0.0
        for lr, hr in (dataset[i] for i in mine):  # sizes differ: one image at a time
            sr = model(lr[None].to(dev)).clamp(0, 1)
            p += psnr(sr, hr[None].to(dev), border=model.upscale).item()
            s += ssim(sr, hr[None].to(dev), border=model.upscale).item()
        p, s, n = distributed.all_reduce_sum(torch.tensor([p, s, len(mine)], dtype=torch.float64)).tolist()
        return {"psnr": p / n, "ssim": s / n}
    loss = top1 = top5 = n = 0.0
    for x, y in DataLoader(Subset(dataset, mine), batch_size=batch_size):
        x, y = x.to(dev), y.to(dev)
        logits = model(x)
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        ranked = logits.topk(min(5, logits.shape[1]), dim=1).indices
        top1 += (ranked[:, 0] == y).sum().item()
        top5 += (ranked == y[:, None]).any(1).sum().item()
        n += len(y)
    loss, top1, top5, n = distributed.all_reduce_sum(torch.tensor([loss, top1, top5, n], dtype=torch.float64)).tolist()
    return {"loss": loss / n, "top1": 100 * top1 / n, "top5": 100 * top5 / n}


def _score(metrics: dict[str, float]) -> float:
    return metrics.get("top1", metrics.get("psnr", -metrics.get("loss", 0.0)))


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimiser state dict into tensors and JSON."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"opt/{idx}/{key}"] = value
            else:
                scalars[f"{idx}/{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("opt/"):
            _, idx, key = name.split("/", 2)
            state.setdefault(int(idx), {})[key] = value
    for name, value in meta["scalars"].items():
        idx, key = name.split("/", 1)
        state.setdefault(int(idx), {})[key] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _rank_seed(seed: int, rank: int) -> int:
    """Dropout seed of rank > 0; rank 0 continues the stream that initialised the model."""
    return seed + 1_000_003 * rank


def _rng_state(dev: torch.device) -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if dev.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(dev)
    return state


def _rng_tensors(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Every process's RNG state for the checkpoint: ``rng/torch`` (rank 0), ``rng/torch/1``, ..."""
    return {f"rng/{k}" + (f"/{r}" if r else ""): v for r, state in enumerate(states) for k, v in state.items()}


def _restore_rng(tensors: dict[str, torch.Tensor], dev: torch.device, seed: int, rank: int) -> None:
    suffix = f"/{rank}" if rank else ""
    if f"rng/torch{suffix}" not in tensors:  # resumed with more processes than saved the checkpoint
        torch.manual_seed(_rank_seed(seed, rank))
        return
    torch.set_rng_state(tensors[f"rng/torch{suffix}"])
    if dev.type == "cuda" and f"rng/cuda{suffix}" in tensors:
        torch.cuda.set_rng_state(tensors[f"rng/cuda{suffix}"], dev)


def fit(
    cfg: TrainConfig,
    train_set: Dataset,
    val_set: Dataset | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``cfg.model`` on ``train_set``; returns the last epoch's record (also in metrics.jsonl).

    With ``resume``, continues from ``out_dir/last.safetensors`` (its epoch, weights, optimiser,
    schedule position and RNG state). A non-finite loss stops the run with ``FloatingPointError``;
    the last good checkpoint stays as it was.

    Several processes (a process group, e.g. from :func:`~subband.train.distributed.launched` under
    torchrun) train one model with DistributedDataParallel: every process calls ``fit`` with the
    same arguments; ``cfg.batch_size`` is the global batch, split evenly (see
    :class:`~subband.train.distributed.ShardedBatches`), so the run takes the same steps as a single
    process. Only rank 0 writes files and shows progress; every process returns the same record.
    """
    rank, world, main = distributed.rank(), distributed.world_size(), distributed.is_main()
    distributed.local_batch_size(cfg.batch_size, world)
    dev = distributed.device()
    out = Path(cfg.out_dir)
    last, best_path, log_path = out / "last.safetensors", out / "best.safetensors", out / "metrics.jsonl"
    start_epoch, step, best = 0, 0, -math.inf
    if resume:
        if not last.is_file():
            raise FileNotFoundError(f"{last}: nothing to resume from")
        meta = read_config(last)["extra"]
        if meta["config"] != json.loads(json.dumps(cfg.to_dict())):
            raise ValueError(f"{last}: saved by a run with another configuration; use a new out_dir")
        model = load_model(last)  # every process: the same weights, optimiser and schedule position
    else:
        torch.manual_seed(cfg.seed)
        model = create_model(cfg.model, **cfg.model_overrides)
        if rank:
            torch.manual_seed(_rank_seed(cfg.seed, rank))
    net = distributed.wrap(model.to(dev))  # DistributedDataParallel with several processes
    model = distributed.unwrap(net)  # saved, evaluated: no `module.` prefix
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if resume:
        tensors = read_extra_tensors(last)
        _restore_optimizer(opt, tensors, meta["optimizer"])
        _restore_rng(tensors, dev, cfg.seed, rank)
        start_epoch, step, best = meta["epoch"], meta["step"], meta["best"]
        log.info("resuming %s at epoch %d", cfg.model, start_epoch)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        if resume and log_path.is_file():  # drop records of epochs after the checkpoint (a kill mid-epoch)
            rows = [r for r in log_path.read_text().splitlines() if r and json.loads(r)["epoch"] <= start_epoch]
            log_path.write_text("".join(r + "\n" for r in rows))
        elif not resume and log_path.exists():
            log_path.unlink()
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    distributed.barrier()  # the log is settled before anyone reads it

    sr = is_sr(model)
    batches = ShardedBatches(len(train_set), cfg.batch_size, seed=cfg.seed, rank=rank, world_size=world)
    steps_per_epoch = len(batches)
    total, warmup = cfg.epochs * steps_per_epoch, round(cfg.warmup_epochs * steps_per_epoch)
    done = log_path.read_text().splitlines() if log_path.is_file() else []
    record: dict[str, Any] = json.loads(done[-1]) if done else {}  # a finished run resumed: its last record
    for epoch in range(start_epoch, cfg.epochs):
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        batches.set_epoch(epoch)
        loader = DataLoader(train_set, batch_sampler=batches)
        net.train()
        t0, seen, loss_sum = time.perf_counter(), 0, 0.0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not (progress and main), leave=False)
        for i, (x, y) in enumerate(bar):
            size, real = batches.sizes(i)  # the global batch; this process's samples in it (the rest pad)
            for group in opt.param_groups:
                group["lr"] = cfg.lr * _lr_factor(step, total, warmup)
            pred = net(x.to(dev))
            y = y.to(dev)
            per_sample = (
                F.mse_loss(pred, y, reduction="none").flatten(1).mean(1)
                if sr
                else F.cross_entropy(pred, y, label_smoothing=cfg.label_smoothing, reduction="none")
            )
            local = per_sample[:real].sum()
            loss = distributed.all_reduce_sum(local.detach()) / size  # the global batch's mean, everywhere
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss is {loss.item()} at epoch {epoch + 1}, step {step}; stopped. The last good "
                    f"checkpoint is {last if last.is_file() else '(none yet)'}"
                )
            opt.zero_grad(set_to_none=True)
            (local * (world / size)).backward()  # DDP averages over processes: the gradient of `loss`
            if cfg.clip_grad:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            opt.step()
            step += 1
            seen += size
            loss_sum += loss.item() * size
            bar.set_postfix(loss=f"{loss.item():.4f}", img_s=f"{seen / (time.perf_counter() - t0):.0f}")
        record = {"epoch": epoch + 1, "step": step, "train_loss": loss_sum / seen, "seconds": time.perf_counter() - t0}
        distributed.broadcast_buffers(model)  # one set of BatchNorm statistics: rank 0's, as saved
        if val_set is not None and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs):
            record.update({f"val_{k}": v for k, v in evaluate(model, val_set).items()})
            score = _score({k[4:]: v for k, v in record.items() if k.startswith("val_")})
            if score > best:
                best = score
                if main:
                    save_model(model, best_path, extra={"epoch": epoch + 1, "metrics": record})
        rng = _rng_tensors(distributed.all_gather_object(_rng_state(dev)))
        if main:
            opt_tensors, opt_meta = _optimizer_tensors(opt)
            meta = {"config": cfg.to_dict(), "epoch": epoch + 1, "step": step, "best": best, "optimizer": opt_meta}
            save_model(model, last, extra=meta, extra_tensors={**opt_tensors, **rng})
            with log_path.open("a") as f:
                f.write(json.dumps(record) + "\n")
            if progress:
                print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
    distributed.barrier()  # every process returns once the checkpoints are on disk
    return record
