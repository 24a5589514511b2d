"""``zoo train --nproc N``: start N training processes on this machine, as torchrun does, and watch them.

Each process gets the environment torchrun would give it (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR=127.0.0.1``, a free
``MASTER_PORT``) and runs a picklable function. When one fails, the others are
given a short grace period (their collectives fail once a peer is gone) and then
stopped, so a launch never hangs on a dead rank. A process group the function
leaves open is ended when it returns (see :func:`zoo.train.distributed.exit_process`
for how a finished rank exits).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from zoo.train.distributed import ending_process_group, exit_process

__all__ = ["LaunchError", "free_port", "launch"]

# How long the other ranks may take to notice a failed peer and exit by themselves.
GRACE_S = 15.0


class LaunchError(OSError):
    """A launched training process failed (its own error, if any, was printed by it)."""


def free_port() -> int:
    """A TCP port on the loopback interface that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world_size: int, port: int, threads: int | None, fn: Callable[..., Any],
               args: Sequence[Any]) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size),
                       "LOCAL_WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    # tqdm's default lock is a multiprocessing semaphore; a rank killed while holding one would leave it to
    # the launcher's resource tracker, which then warns at exit. Each rank writes from one thread.
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    with ending_process_group():
        result = fn(*args)
    exit_process(result if isinstance(result, int) else 0)


def _describe(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


def launch(nproc: int, fn: Callable[..., Any], args: Sequence[Any] = (), threads: int | None = None,
           timeout_s: float | None = None) -> None:
    """Run ``fn(*args)`` in ``nproc`` new processes forming one torch.distributed group; return when all succeed.

    ``fn`` must be importable by name (the processes are spawned, not forked); its
    int result is the process's exit status. ``threads`` sets each process's torch
    threads. ``timeout_s`` bounds the whole launch (None: no bound).

    Raises:
        ValueError: ``nproc`` < 1.
        LaunchError: a process failed or the launch ran past ``timeout_s``; the others were stopped.
    """
    if nproc < 1:
        raise ValueError(f"--nproc must be >= 1, got {nproc}")
    context = multiprocessing.get_context("spawn")
    port = free_port()
    processes = [context.Process(target=_rank_main, args=(rank, nproc, port, threads, fn, tuple(args)),
                                 name=f"zoo-rank-{rank}") for rank in range(nproc)]
    for process in processes:
        process.start()
    try:
        failure = _wait(processes, timeout_s)
    finally:
        _stop(processes)
    if failure:
        raise LaunchError(failure)


def _wait(processes: list[multiprocessing.Process], timeout_s: float | None) -> str | None:
    # The first failure, described; None once every process has exited with status 0.
    running = {process.sentinel: rank for rank, process in enumerate(processes)}
    while running:
        ready = multiprocessing.connection.wait(list(running), timeout=timeout_s)
        if not ready:
            return f"training processes still running after {timeout_s} s: stopped"
        for sentinel in ready:
            rank = running.pop(sentinel)
            process = processes[rank]
            process.join()
            if process.exitcode != 0:
                return f"training process rank {rank} {_describe(process.exitcode)}"
    return None


def _stop(processes: list[multiprocessing.Process]) -> None:
    # Give the others time to fail on their own (their collectives see the peer gone), then stop them.
    deadline = time.monotonic() + GRACE_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.terminate()
            process.join(5)
        if process.is_alive():
            process.kill()
            process.join()
