"""fit(): train a preset on a dataset, writing metrics, plots and checkpoints to a run directory."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

import zoo
from zoo.data import ImageDataset, dataset_info, get_dataset
from zoo.models import create_model
from zoo.nn import SyncBatchNorm
from zoo.train.allocator import keep_freed_memory
from zoo.train.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from zoo.train.config import RUNTIME_FIELDS, TrainConfig
from zoo.train.device import resolve_device
from zoo.train.distributed import Shard, check_batch_size
from zoo.files import write_json
from zoo.train.loop import (
    DivergenceError,
    EvalResult,
    count_batches,
    eval_batches,
    evaluate,
    iterate_batches,
    train_one_epoch,
)
from zoo.train.optim import build_optimizer, build_scheduler
from zoo.train.outputs import plot_confusion_matrix, plot_learning_curves, write_history, write_results
from zoo.train.rng import data_generator, get_rng_state, seed_everything, seed_rank_epoch, set_rng_state

__all__ = ["CHANCE_MARGIN", "RunResult", "fit"]

# A run whose test accuracy is within this of always predicting the most common class learned nothing.
CHANCE_MARGIN = 0.05


def _progress_bar(total: int, desc: str, quiet: bool, leave: bool = True) -> tqdm:
    # A bar on stderr only on an interactive terminal and without --quiet.
    return tqdm(total=total, desc=desc, leave=leave, disable=quiet or not sys.stderr.isatty(), dynamic_ncols=True)


def _say(message: str, quiet: bool) -> None:
    """Print a line (through tqdm, so it does not break a bar) unless quiet."""
    if not quiet:
        tqdm.write(message, file=sys.stdout)


@dataclass
class RunResult:
    """What :func:`fit` leaves behind: the run directory, per-epoch history, test evaluation and results dict."""

    run_dir: Path
    history: list[dict[str, Any]]
    test: EvalResult
    results: dict[str, Any]


def _model_spec(config: TrainConfig) -> dict[str, Any]:
    # Explicit constructor arguments, so the checkpoint alone rebuilds the model.
    info = dataset_info(config.dataset)
    args = {"num_classes": info.num_classes, "in_channels": info.in_channels, "input_size": list(info.image_size)}
    return {"name": config.model, "args": {**args, **config.model_args}}


def _data_spec(config: TrainConfig) -> dict[str, Any]:
    info = dataset_info(config.dataset)
    return {
        "dataset": info.name, "mean": list(info.mean), "std": list(info.std), "classes": list(info.classes),
        "in_channels": info.in_channels, "image_size": list(info.image_size),
    }


def _check_same_run(saved: dict[str, Any], config: TrainConfig) -> None:
    changed = config.differences(saved, allowed=("epochs",))
    if changed:
        raise ValueError(f"--resume with different settings ({', '.join(changed)}); only {RUNTIME_FIELDS} may change")


def _load_data(config: TrainConfig, split: str) -> ImageDataset:
    augment = config.augment and split == "train"
    return get_dataset(config.dataset, split, root=config.data_dir, val_size=config.val_size, augment=augment,
                       train_size=config.train_size)


def _chance_warning(test: EvalResult) -> str | None:
    # Too high a learning rate can collapse a model to one class without any NaN: say so.
    chance = test.chance_accuracy
    if test.accuracy > chance + CHANCE_MARGIN:
        return None
    return (f"test accuracy {test.accuracy:.4f} is at chance level (always predicting the most common class scores "
            f"{chance:.4f}): the model learned nothing; a too-high learning rate (--lr) is the usual cause")


def _diverged(epoch: int, reason: str, checkpoint: Path, last_good: int) -> DivergenceError:
    kept = f"the last good checkpoint ({checkpoint}, epoch {last_good}) is kept" if last_good else "no checkpoint was written"
    return DivergenceError(
        f"training diverged in epoch {epoch}: {reason}; {kept}. Try a lower learning rate (--lr)."
    )


def fit(
    config: TrainConfig,
    run_dir: str | Path,
    resume: bool = False,
    on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
    shard: Shard | None = None,
    sync_bn: bool = True,
) -> RunResult:
    """Train ``config.model`` on ``config.dataset``, then evaluate it on the test split.

    Every epoch writes ``checkpoint.pt`` (atomically), ``metrics.csv`` and
    ``metrics.json``; the end writes ``results.json``,
    ``confusion_matrix.csv``, ``learning_curves.png`` and
    ``confusion_matrix.png``; ``config.json`` records the settings. A run that
    ends at chance level (test accuracy within :data:`CHANCE_MARGIN` of always
    predicting the most common class) is reported on stderr and in ``results["warnings"]``.
    On Linux with glibc the process keeps freed memory for reuse from then on
    (:func:`zoo.train.allocator.keep_freed_memory`; ``ZOO_KEEP_FREED_MEMORY=0`` turns it off).

    Args:
        config: the run's settings; ``config.seed`` fixes init, data order,
            augmentation and dropout, so the same config gives the same numbers.
        run_dir: output directory (created if needed).
        resume: continue from ``run_dir/checkpoint.pt`` (if there is one) with
            results identical to an uninterrupted run. Only
            :data:`~zoo.train.config.RUNTIME_FIELDS` may differ from the saved config.
        on_epoch_end: called as ``on_epoch_end(epoch, row)`` after each epoch's checkpoint is written.
        shard: data-parallel training: this process's place in the group
            (:func:`zoo.train.distributed.from_environment`). Every rank calls
            ``fit`` with the same arguments; each trains on its share of every
            global batch of ``config.batch_size`` images through
            DistributedDataParallel, with the single-process data order, so the
            run follows the single-process one within float rounding (dropout
            masks aside: each rank draws its own). Rank 0 alone writes files;
            every rank reads the checkpoint on resume.
        sync_bn: with a ``shard``, turn batch norm into :class:`zoo.nn.SyncBatchNorm`
            (statistics of the global batch, as in one process); False keeps
            per-rank statistics, and evaluation uses rank 0's running statistics.

    Raises:
        DivergenceError: the loss became NaN/inf; the last good checkpoint is kept.
        FileExistsError: ``run_dir`` already holds a checkpoint and ``resume`` is False.
        ValueError: ``config.batch_size`` does not divide over the shard's ranks.
    """
    keep_freed_memory()  # large activations reused, not faulted in again every step
    if shard is not None:
        check_batch_size(config.batch_size, shard.world_size)
    main = shard is None or shard.is_main
    quiet = config.quiet or not main
    run_dir = Path(run_dir)
    ckpt_path = run_dir / CHECKPOINT_NAME
    if ckpt_path.exists() and not resume:
        raise FileExistsError(f"{ckpt_path} exists: pass resume=True (--resume) to continue it, or use another run directory")
    run_dir.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    if shard is not None and device.type == "cuda":  # one GPU per rank of this machine
        device = torch.device("cuda", shard.local_rank)
    model_spec, data_spec = _model_spec(config), _data_spec(config)
    with torch.device("meta"):  # every model argument checked before the slow data loading; no memory, no RNG
        create_model(model_spec["name"], **model_spec["args"])

    train_set = _load_data(config, "train")
    val_set = _load_data(config, "val") if config.val_size != 0 else None
    num_classes = dataset_info(config.dataset).num_classes

    seed_everything(config.seed)
    model = create_model(model_spec["name"], **model_spec["args"]).to(device)
    if shard is not None and sync_bn:  # the same parameters and state_dict keys, statistics of the global batch
        model = SyncBatchNorm.convert_sync_batchnorm(model, shard.group)
    optimizer = build_optimizer(model, config)
    steps = count_batches(len(train_set), config.batch_size, config.max_batches)
    scheduler, per_batch = build_scheduler(optimizer, config, steps)
    generator = data_generator(config.seed)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if resume and ckpt_path.exists():
        checkpoint = load_checkpoint(ckpt_path)
        _check_same_run(checkpoint["train_config"], config)
        model.load_state_dict(checkpoint["state_dict"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(checkpoint["scheduler"])
        set_rng_state(checkpoint["rng"], generator)
        history = list(checkpoint["history"])
        start_epoch = checkpoint["epoch"]
        _say(f"resuming {ckpt_path} after epoch {start_epoch}", quiet)
    run_info = {
        "train_config": config.to_dict(), "model": model_spec, "data": data_spec,
        "zoo_version": zoo.__version__, "torch_version": torch.__version__,
    }
    if shard is not None:
        run_info["distributed"] = {"world_size": shard.world_size, "sync_bn": sync_bn}
    if main:
        write_json(run_dir / "config.json", run_info)

    runner = torch.compile(model) if config.compile else model  # evaluation's, and training's in one process
    trainer = runner if shard is None else _data_parallel(model, device, config.compile)
    with _progress_bar(config.epochs, "epochs", quiet) as epoch_bar:
        epoch_bar.update(start_epoch)
        for epoch in range(start_epoch + 1, config.epochs + 1):
            started = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            if shard is not None:  # each rank its own dropout masks, reproducible on resume
                seed_rank_epoch(config.seed, epoch, shard.rank)
            with _progress_bar(steps, f"epoch {epoch}", quiet, leave=False) as batch_bar:
                batches = iterate_batches(train_set, config.batch_size, generator, config.max_batches)
                try:
                    stats = train_one_epoch(trainer, optimizer, batches, device, config.l1,
                                            scheduler if per_batch else None, batch_bar, penalty_model=model,
                                            shard=shard)
                except DivergenceError as err:
                    raise _diverged(epoch, str(err), ckpt_path, epoch - 1) from None
            if shard is not None:  # evaluate and save what rank 0 has (the same with synchronized batch norm)
                shard.sync_buffers(model)
            val = None
            if val_set is not None:
                val = evaluate(runner, eval_batches(val_set, config.eval_batch_size, config.max_batches),
                               num_classes, device, shard)
                if not math.isfinite(val.loss):
                    raise _diverged(epoch, f"validation loss is {val.loss}", ckpt_path, epoch - 1)
            if scheduler is not None and not per_batch:
                scheduler.step()
            row = {
                "epoch": epoch, "lr": lr, "train_loss": stats.loss, "train_acc": stats.accuracy,
                "val_loss": val.loss if val else None, "val_acc": val.accuracy if val else None,
                "time_s": time.perf_counter() - started,
            }
            history.append(row)
            if main:
                save_checkpoint(ckpt_path, {
                    "model": model_spec, "data": data_spec, "train_config": config.to_dict(), "epoch": epoch,
                    "state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "rng": get_rng_state(generator), "history": history,
                })
                write_history(run_dir, history)
            epoch_bar.update()
            val_text = f"  val loss {val.loss:.4f} acc {val.accuracy:.4f}" if val else ""
            _say(f"epoch {epoch}/{config.epochs}  lr {lr:.3g}  train loss {stats.loss:.4f} acc {stats.accuracy:.4f}"
                f"{val_text}  {row['time_s']:.1f} s", quiet)
            if on_epoch_end is not None:
                on_epoch_end(epoch, row)
    return _finish(config, run_dir, runner, history, device, num_classes, data_spec, shard)


def _data_parallel(model: torch.nn.Module, device: torch.device, compile: bool) -> torch.nn.Module:
    # Gradients averaged over the ranks after each backward. Buffers are not broadcast at every forward:
    # synchronized batch norm keeps them equal, and fit() copies rank 0's before each evaluation.
    from torch.nn.parallel import DistributedDataParallel

    wrapped = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                      forward_sync_buffers=False)
    return torch.compile(wrapped) if compile else wrapped


def _finish(config: TrainConfig, run_dir: Path, runner: torch.nn.Module, history: list[dict[str, Any]],
            device: torch.device, num_classes: int, data_spec: dict[str, Any], shard: Shard | None = None
            ) -> RunResult:
    # Final test evaluation, results files and plots (rank 0's alone in data-parallel training).
    main = shard is None or shard.is_main
    quiet = config.quiet or not main
    test_set = _load_data(config, "test")
    test = evaluate(runner, eval_batches(test_set, config.eval_batch_size, config.max_batches),
                    num_classes, device, shard)
    results = {
        "model": config.model, "dataset": config.dataset, "epochs": len(history),
        "test_loss": test.loss, "test_acc": test.accuracy, "test_samples": int(test.confusion.sum()),
        "final_val_acc": history[-1]["val_acc"] if history else None,
        "train_time_s": sum(row["time_s"] for row in history),
        "confusion_matrix": test.confusion.tolist(),
    }
    warning = _chance_warning(test)
    results["warnings"] = [warning] if warning else []
    if not main:
        return RunResult(run_dir, history, test, results)
    classes = data_spec["classes"]
    write_results(run_dir, results, test.confusion, classes)
    title = f"{config.model} on {config.dataset}"
    plot_learning_curves(history, run_dir / "learning_curves.png", title)
    plot_confusion_matrix(test.confusion, classes, run_dir / "confusion_matrix.png", f"{title}: test")
    _say(f"test loss {test.loss:.4f}  test acc {test.accuracy:.4f} ({results['test_samples']} images)  -> {run_dir}",
        quiet)
    if warning:  # even with --quiet
        tqdm.write(f"zoo: warning: {config.model} on {config.dataset}: {warning}", file=sys.stderr)
    return RunResult(run_dir, history, test, results)
