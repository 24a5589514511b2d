"""Data-parallel training over torch.distributed: the process group, this process's share of each batch, reductions.

Every process (a *rank*) runs the same training loop on its share of each
global batch. Processes are started by ``torchrun`` (or ``zoo train --nproc N``,
:mod:`zoo.train.launch`), which describe the group in the environment variables
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["DEFAULT_TIMEOUT_S", "Shard", "check_batch_size", "end_process_group", "ending_process_group",
           "exit_process", "from_environment", "launched", "shard_of_group"]

# How long a collective waits for a peer before failing: a dead or stuck peer never hangs the others for good.
DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Shard:
    """This process's place in a data-parallel group of ``world_size`` processes.

    Attributes:
        rank: this process's index, 0 to world_size - 1; rank 0 alone writes files.
        world_size: the number of processes.
        local_rank: the index among the processes of this machine (its GPU with CUDA).
        group: the torch.distributed process group (None: the default, whole world).
        device: where the group's collectives take tensors: ``'cpu'`` for gloo, this rank's GPU for nccl.
    """

    rank: int
    world_size: int
    local_rank: int = 0
    group: Any = None
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that writes checkpoints, metrics and plots."""
        return self.rank == 0

    def split(self, batch: Tensor) -> Tensor:
        """This rank's part of a global batch: ``world_size`` contiguous pieces whose sizes differ by at most
        one (a short last batch; a piece may be empty), so the ranks together see the batch exactly once."""
        return torch.tensor_split(batch, self.world_size)[self.rank]

    def sum(self, values: Tensor) -> Tensor:
        """``values`` summed over every rank (float64 sums stay exact for the counts training reduces)."""
        total = values.to(self.device, copy=True)
        dist.all_reduce(total, group=self.group)
        return total.to(values.device)

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Copy rank 0's buffers (batch norm's running statistics) into ``module`` on every rank."""
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0, group=self.group)

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (any picklable object), on every rank."""
        holder = [value]
        dist.broadcast_object_list(holder, src=0, group=self.group)
        return holder[0]


def check_batch_size(batch_size: int, world_size: int) -> None:
    """Raise ValueError unless ``batch_size`` (the global batch) splits into ``world_size`` equal shares."""
    if world_size < 1:
        raise ValueError(f"the number of processes must be >= 1, got {world_size}")
    if batch_size % world_size:
        raise ValueError(f"batch size {batch_size} does not divide over {world_size} processes: the global batch "
                         f"is the recipe's, split equally, so choose --batch-size a multiple of {world_size} "
                         f"or another process count")


def launched() -> bool:
    """Whether this process was started as one rank of several (``WORLD_SIZE`` > 1 in the environment)."""
    return _env_int("WORLD_SIZE", 1) > 1


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"environment variable {name}={text!r} is not an integer") from None


def from_environment(device_type: str = "cpu", timeout_s: float = DEFAULT_TIMEOUT_S) -> Shard:
    """Join the process group the environment describes (as torchrun sets it) and return this rank's Shard.

    The backend is gloo for ``device_type`` 'cpu' and nccl for 'cuda'. A group
    already initialised is reused. ``timeout_s`` bounds every collective, so a
    dead peer makes the others fail instead of waiting for ever.

    Raises:
        ValueError: the environment does not describe a valid group (RANK outside 0..WORLD_SIZE-1, ...).
    """
    world_size, rank, local_rank = _env_int("WORLD_SIZE", 1), _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"invalid process group in the environment: RANK={rank}, WORLD_SIZE={world_size}")
    if timeout_s <= 0:
        raise ValueError(f"the collective timeout must be positive, got {timeout_s} s")
    if not dist.is_initialized():
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if name not in os.environ:
                raise ValueError(f"distributed training needs {name} in the environment (torchrun sets it)")
        backend = "nccl" if device_type == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend, rank=rank, world_size=world_size, timeout=timedelta(seconds=timeout_s))
    return shard_of_group()


def shard_of_group(group: Any = None) -> Shard:
    """The Shard of this process in an initialised process group (``LOCAL_RANK`` from the environment)."""
    local_rank = _env_int("LOCAL_RANK", 0)
    device = f"cuda:{local_rank}" if dist.get_backend(group) == "nccl" else "cpu"
    return Shard(dist.get_rank(group), dist.get_world_size(group), local_rank, group, device)


def end_process_group(finished: bool) -> None:
    """Leave the process group, if one is open: wait for every rank first when this one ``finished`` its work
    (a rank that failed does not wait: its peers may be gone), then destroy the group."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    if finished:
        dist.barrier()
    dist.destroy_process_group()


@contextmanager
def ending_process_group() -> Iterator[None]:
    """Run the block, then leave the process group (:func:`end_process_group`): after the other ranks when the
    block finished, at once when it raised (the exception goes on)."""
    try:
        yield
    except BaseException:
        end_process_group(finished=False)
        raise
    end_process_group(finished=True)


def exit_process(status: int) -> NoReturn:
    """End this rank's process now with ``status``, its output flushed, without the interpreter's shutdown.

    gloo's worker threads drop their last reference to a collective's tensors a
    moment after the collective completes, and dropping a tensor that Python once
    held needs the interpreter lock; a thread that asks for it while the
    interpreter shuts down aborts the whole process ("terminate called without an
    active exception"), so a rank that finished its work would die of SIGABRT
    (measured: about 1 launch in 8). There is nothing left to clean up by then.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken: nothing more can be written anyway
            pass
    os._exit(status)
