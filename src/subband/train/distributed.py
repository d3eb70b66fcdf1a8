"""Data-parallel training across processes: the process group, who writes, how batches are split
and how metrics are summed.

``torchrun --nproc_per_node N -m subband train ...`` starts N processes and describes the group in
their environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``);
:func:`launched` joins it for the duration of a command (gloo on CPU, nccl with one GPU per process).
Everything else here reads the process group, not the environment, and a single process is simply
world size 1: rank 0, every collective a no-op, the model unwrapped.

Batches: the configured batch size is the *global* batch. :class:`ShardedBatches` cuts the same
seeded permutation a single process uses into global batches and gives rank ``r`` positions
``r, r + W, r + 2W, ...`` of each, so N processes together see exactly the batches one process sees.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Sampler

__all__ = [
    "launched",
    "rank",
    "world_size",
    "is_main",
    "device",
    "barrier",
    "all_reduce_sum",
    "all_gather_object",
    "broadcast_buffers",
    "wrap",
    "unwrap",
    "local_batch_size",
    "ShardedBatches",
]


@contextmanager
def launched() -> Iterator[None]:
    """Join the process group a launcher such as torchrun describes in the environment and leave it
    at the end. Backend: nccl on ``cuda:LOCAL_RANK`` when CUDA is
    available, gloo on CPU otherwise. Does nothing when ``WORLD_SIZE`` is unset or 1, or when a
    process group exists already (the caller then owns it).

    Example (inside a script started by ``torchrun --nproc_per_node 2 script.py``)::

        with launched():
            fit(cfg, train_set, val_set)
    """
    env = os.environ
    size = int(env.get("WORLD_SIZE", "1"))
    if size <= 1 or (dist.is_available() and dist.is_initialized()):
        yield
        return
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in env]
    if missing:
        raise RuntimeError(f"WORLD_SIZE={size} but {', '.join(missing)} not set: start the processes with torchrun")
    if torch.cuda.is_available():
        torch.cuda.set_device(int(env.get("LOCAL_RANK", "0")))
        backend = "nccl"
    else:
        backend = "gloo"
    # torch.distributed.nn binds the default group as a default argument when it is first imported
    # (DDP imports it). Imported after init, it would keep the group and its gloo threads alive past
    # destroy_process_group, to interpreter exit, where a rank whose peer has left can abort.
    importlib.import_module("torch.distributed.nn")
    dist.init_process_group(backend, init_method="env://", rank=int(env["RANK"]), world_size=size)
    try:
        yield
        dist.barrier()  # leave together: a gloo process whose peer tears down first can abort at exit
    finally:
        dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """Rank 0: the one process that writes files and prints."""
    return rank() == 0


def device() -> torch.device:
    """Where this process computes: its GPU under nccl, else the CPU."""
    if dist.is_available() and dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    """Wait for every process (no-op in a single process)."""
    if _active():
        dist.barrier()


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """The sum of ``x`` over all processes, as a new tensor on ``x``'s device (``x`` itself in a
    single process)."""
    if not _active():
        return x
    y = x.detach().to(device(), copy=True)
    dist.all_reduce(y, op=dist.ReduceOp.SUM)
    return y.to(x.device)


def all_gather_object(obj: Any) -> list[Any]:
    """``obj`` of every process, in rank order (picklable objects, e.g. RNG states)."""
    if not _active():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BatchNorm running statistics) to every process, in place."""
    if _active():
        for buf in module.buffers():
            dist.broadcast(buf.data, src)


def wrap(model: nn.Module) -> nn.Module:
    """``model`` for training: in DistributedDataParallel when there are several processes (gradients
    averaged over processes during ``backward``), the model itself otherwise. Under nccl, BatchNorm
    layers become SyncBatchNorm (statistics over the global batch); PyTorch's SyncBatchNorm does not
    run on CPU, so under gloo each process normalises with its own shard's statistics."""
    if not _active():
        return model
    dev = device()
    if dev.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(model, device_ids=[dev])
    return DistributedDataParallel(model)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside :func:`wrap`'s DistributedDataParallel (its state dict has no ``module.``)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def local_batch_size(batch_size: int, world: int) -> int:
    """Each process's share of a global batch; the global batch must divide evenly."""
    if batch_size % world:
        raise ValueError(
            f"batch_size {batch_size} is the global batch and must be divisible by the number of "
            f"processes ({world}); use e.g. {max(world, batch_size // world * world)}"
        )
    return batch_size // world


class ShardedBatches(Sampler[list[int]]):
    """One process's share of every global batch of an epoch (a ``batch_sampler`` for DataLoader).

    Epoch ``epoch`` shuffles ``range(n)`` with ``torch.randperm`` seeded by ``seed * 100_003 + epoch``
    (the same permutation in every process and for every number of processes) and cuts it into
    global batches of ``batch_size``; the last one is smaller when ``batch_size`` does not divide
    ``n``. Rank ``r`` of ``W`` takes positions ``r, r + W, ...`` of each global batch. When a global
    batch does not split evenly, the shorter shards are padded to ``ceil(size / W)`` with the global
    batch's first sample, so every process runs equally many samples per step; :meth:`sizes` says
    how many are real, and the loss must ignore the rest.

    Args:
        n: dataset length.
        batch_size: the global batch size (divisible by ``world_size``).
        seed: the run's seed.
        epoch: selects the permutation; see :meth:`set_epoch`.
        rank: this process's rank.
        world_size: number of processes.

    Example:
        >>> [ShardedBatches(5, 4, rank=r, world_size=2).sizes(1) for r in (0, 1)]
        [(1, 1), (1, 0)]
    """

    def __init__(self, n: int, batch_size: int, *, seed: int = 0, epoch: int = 0, rank: int = 0, world_size: int = 1):
        if n < 1 or batch_size < 1:
            raise ValueError(f"need n >= 1 and batch_size >= 1, got {n} and {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        local_batch_size(batch_size, world_size)
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, epoch
        self.rank, self.world_size = rank, world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def permutation(self) -> list[int]:
        """The epoch's order of all samples, as one process would see them."""
        return torch.randperm(
            self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        ).tolist()

    def sizes(self, step: int) -> tuple[int, int]:
        """``(global batch size, real samples in this process's shard)`` of the epoch's ``step``-th batch."""
        size = min(self.batch_size, self.n - step * self.batch_size)
        return size, len(range(self.rank, size, self.world_size))

    def __iter__(self) -> Iterator[list[int]]:
        order = self.permutation()
        for start in range(0, self.n, self.batch_size):
            batch = order[start : start + self.batch_size]
            mine = batch[self.rank :: self.world_size]
            yield mine + [batch[0]] * (math.ceil(len(batch) / self.world_size) - len(mine))
