"""The ``zoo train`` and ``zoo eval`` commands: settings from defaults, recipe, file and options; run directories."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from zoo.archives import one_line
from zoo.command import Command, add_data_dir, add_device, add_json, add_split, add_threads, require_positive
from zoo.data import DATASETS
from zoo.models import model_config
from zoo.models.arguments import parse_model_arg
from zoo.train.checkpoint import CHECKPOINT_NAME
from zoo.train.config import OPTIMIZERS, SCHEDULES, TrainConfig, read_config_file
from zoo.train.evaluate import evaluate_checkpoint
from zoo.train.device import resolve_device
from zoo.train.distributed import (
    DEFAULT_TIMEOUT_S,
    check_batch_size,
    ending_process_group,
    from_environment,
    launched,
)
from zoo.train.fit import fit
from zoo.train.launch import LaunchError, launch

__all__ = ["EVAL", "TRAIN", "add_eval_arguments", "add_train_arguments", "eval_command", "train_command",
           "train_command_line"]

_TRAIN_HELP = """\
Train a preset and write a run directory (default runs/<model>-<dataset>-<time>) holding:
  checkpoint.pt          written every epoch (atomically); `zoo eval` needs only this file
  metrics.csv/.json      per epoch: lr, train/val loss and accuracy, seconds
  results.json           final test loss/accuracy and confusion matrix
  confusion_matrix.csv, learning_curves.png, confusion_matrix.png, config.json

With --nproc N (or started by torchrun: `torchrun --nproc-per-node N -m zoo train ...`)
N processes train together (DistributedDataParallel; gloo on the CPU, nccl on CUDA, one
GPU each): each takes its share of every batch of --batch-size images (the global batch,
which must divide by N), batch norm computes the global batch's statistics (unless
--no-sync-bn), and the run follows the one-process run within float rounding. Rank 0
writes the run directory; --resume works as in one process. See docs/distributed.md.

Settings are taken, later ones winning, from: built-in defaults, the model's
recommended recipe (see `zoo list -v`), --config FILE, then the options given here.
The same command (same --seed, --threads and machine) gives the same numbers; another
CPU model rounds differently and drifts by a few tenths of a point. If a run stops (crash, kill,
Ctrl-C), rerun the same command with --resume (and its --out) to finish it exactly
as if it had never stopped. A NaN/inf loss stops the run with exit status 1,
keeping the last good checkpoint.
"""


def _help(text: str, field: str) -> str:
    return f"{text} (default: {TrainConfig.defaults()[field]!r} unless the model's recipe says otherwise)"


def _model_arg(text: str) -> tuple[str, str]:
    # KEY=VALUE; the value is converted by the model's declared type once the model is known.
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.replace("-", "_"), value


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``zoo train``: each one left unset does not override the recipe or config file."""
    s = argparse.SUPPRESS  # unset options do not override the recipe or the config file
    p.add_argument("model", nargs="?", default=s, help="preset name from `zoo list` (or `model` in --config)")
    p.add_argument("--dataset", choices=sorted(DATASETS), default=s,
                   help="dataset to train on (default: the one the preset was designed for)")
    p.add_argument("--config", metavar="FILE", help="JSON or TOML file of settings named like the options "
                   "(e.g. lr = 0.1, milestones = [30, 60], model_args = {batch_norm = true})")
    p.add_argument("--model-arg", metavar="KEY=VALUE", type=_model_arg, action="append", default=s, dest="model_args",
                   help="architecture override passed to create_model, checked against the model's arguments "
                   "and their types (VALUE as JSON or a plain word): batch_norm=true, activation=elu, alpha=0.2, "
                   "hidden=[200,200], init=he, dropout_hidden=0.5; repeatable")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=s, help=_help("number of epochs", "epochs"))
    g.add_argument("--batch-size", type=int, default=s, help=_help("mini-batch size", "batch_size"))
    g.add_argument("--eval-batch-size", type=int, default=s, help=_help("batch size for val/test", "eval_batch_size"))
    g.add_argument("--optimizer", choices=OPTIMIZERS, default=s,
                   help=_help("sgd (add --momentum for momentum SGD, and --nesterov for Nesterov), rmsprop or adam",
                              "optimizer"))
    g.add_argument("--lr", type=float, default=s, help=_help("learning rate", "lr"))
    g.add_argument("--momentum", type=float, default=s, help=_help("momentum for sgd/rmsprop", "momentum"))
    g.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=s,
                   help=_help("Nesterov momentum (sgd with momentum > 0)", "nesterov"))
    g.add_argument("--weight-decay", type=float, default=s, help=_help("L2 penalty (weight decay)", "weight_decay"))
    g.add_argument("--l1", type=float, default=s, help=_help("L1 penalty on Linear/Conv weights", "l1"))
    g.add_argument("--schedule", choices=SCHEDULES, default=s,
                   help=_help("learning-rate schedule: constant; step (lr/10 at each of --milestones); "
                              "cyclic (triangular, --lr-min to --lr-max); onecycle (warm-up to --lr, then "
                              "cosine annealing, over the whole run)", "schedule"))
    g.add_argument("--milestones", type=int, nargs="+", metavar="EPOCH", default=s,
                   help="epochs after which the step schedule divides lr by 10, e.g. --milestones 30 60")
    g.add_argument("--lr-min", type=float, default=s, help=_help("cyclic: lowest lr", "lr_min"))
    g.add_argument("--lr-max", type=float, default=s, help=_help("cyclic: highest lr", "lr_max"))
    g.add_argument("--step-size", type=int, default=s, help=_help("cyclic: batches per half cycle", "step_size"))
    g.add_argument("--seed", type=int, default=s, help=_help("seed for init, data order, augmentation, dropout", "seed"))
    d = p.add_argument_group("data")
    add_data_dir(d, default=s)
    d.add_argument("--val-size", type=int, default=s,
                   help="images held out of train for validation (default: the dataset's; 0: none)")
    d.add_argument("--train-size", type=int, default=s,
                   help="train on a seeded random subset of this many training images (default: all)")
    d.add_argument("--augment", action=argparse.BooleanOptionalAction, default=s,
                   help="the dataset's training augmentation: random shifts (zero-padded crops), plus mirroring "
                   "for CIFAR-10 and Fashion-MNIST (default: off unless the recipe turns it on)")
    r = p.add_argument_group("run")
    r.add_argument("--out", metavar="DIR", help="run directory (default: runs/<model>-<dataset>-<YYYYmmdd-HHMMSS>)")
    r.add_argument("--resume", action="store_true",
                   help="continue the run in --out (default: the newest runs/<model>-<dataset>-*) from its checkpoint")
    r.add_argument("--compile", action="store_true", default=s, help="run the model through torch.compile")
    add_threads(r, default=s)
    add_device(r, default=s)
    r.add_argument("--max-batches", type=int, default=s,
                   help="limit batches per epoch and per evaluation (smoke tests; test accuracy is then on a subset)")
    r.add_argument("--quiet", action="store_true", default=s, help="no progress bars or per-epoch lines")
    p_ = p.add_argument_group("distributed (see docs/distributed.md)")
    p_.add_argument("--nproc", type=int, metavar="N",
                    help="train with N processes on this machine (data-parallel; with --device cuda, one GPU each)")
    p_.add_argument("--sync-bn", action=argparse.BooleanOptionalAction, default=True,
                    help="with several processes, batch norm over the global batch (default: on)")
    p_.add_argument("--dist-timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                    help=f"how long a process waits for the others before failing (default: {DEFAULT_TIMEOUT_S:g})")


def _resolve_config(args: argparse.Namespace) -> TrainConfig:
    # Later sources win: TrainConfig defaults < model recipe < --config file < command line.
    from_file = read_config_file(args.config) if args.config else {}
    given = {k: v for k, v in vars(args).items()
             if k not in ("command", "config", "out", "resume", "nproc", "sync_bn", "dist_timeout")}
    model = given.get("model", from_file.get("model"))
    if model is None:
        raise ValueError("name a model: `zoo train MODEL` (or `model` in --config); `zoo list` shows them")
    preset = model_config(model)
    settings = {**preset.recipe, **from_file, **given, "model": model}
    settings.setdefault("dataset", preset.dataset)
    model_args = dict(from_file.get("model_args", {}))
    model_args.update({key: parse_model_arg(preset, key, text) for key, text in given.get("model_args", [])})
    settings["model_args"] = model_args
    return TrainConfig.from_dict(settings)


def _run_dir(args: argparse.Namespace, config: TrainConfig) -> Path:
    if args.out:
        return Path(args.out)
    prefix = f"{config.model}-{config.dataset}-"
    if args.resume:
        runs = sorted(p.parent for p in Path("runs").glob(f"{prefix}*/{CHECKPOINT_NAME}"))
        if not runs:
            raise FileNotFoundError(f"--resume: no runs/{prefix}*/{CHECKPOINT_NAME}; pass --out DIR")
        return runs[-1]  # timestamps sort in time order
    return Path("runs") / (prefix + time.strftime("%Y%m%d-%H%M%S"))


def train_command(args: argparse.Namespace) -> int:
    """Carry out ``zoo train`` with parsed ``args``; returns the exit status."""
    require_positive(args, "nproc")
    if args.dist_timeout <= 0:
        raise ValueError(f"--dist-timeout must be > 0, got {args.dist_timeout}")
    config = _resolve_config(args)
    if launched():  # one rank of several, started by torchrun or by --nproc below
        return _train_rank(args, config)
    if args.nproc and args.nproc > 1:
        check_batch_size(config.batch_size, args.nproc)
        args.out = str(_run_dir(args, config))  # one run directory for every rank
        if not config.quiet:
            print(f"training {config.model} on {config.dataset} with {args.nproc} processes -> {args.out}")
        threads = None if config.threads else max(1, (os.cpu_count() or 1) // args.nproc)
        try:
            launch(args.nproc, _rank_entry, (args,), threads=threads)
        except LaunchError as err:
            raise LaunchError(f"{err}; the last checkpoint is kept: rerun with --resume --out {args.out}") from None
        return 0
    run_dir = _run_dir(args, config)
    if not config.quiet:
        print(f"training {config.model} on {config.dataset} -> {run_dir}")
    fit(config, run_dir, resume=args.resume)
    return 0


def _rank_entry(args: argparse.Namespace) -> int:
    # What each process of `zoo train --nproc N` runs: the same command, errors as one line each.
    from zoo.cli import run_parsed

    return run_parsed(args)


def _peer_failure(err: RuntimeError) -> bool:
    # gloo reports a dead peer as a plain RuntimeError ("Connection closed by peer"), a stuck one as a timeout.
    text = str(err)
    return isinstance(err, dist.DistError) or any(
        word in text for word in ("gloo", "NCCL", "Connection", "connection", "timed out", "Timed out"))


def _train_rank(args: argparse.Namespace, config: TrainConfig) -> int:
    # This process's part of a data-parallel run; rank 0 picks the run directory for all.
    shard = from_environment(resolve_device(config.device).type, args.dist_timeout)
    if args.nproc and args.nproc != shard.world_size:
        raise ValueError(f"--nproc {args.nproc} but this process is one of WORLD_SIZE={shard.world_size}")
    with ending_process_group():
        try:
            run_dir = Path(shard.broadcast(str(_run_dir(args, config)) if shard.is_main else None))
            if shard.is_main and not config.quiet and not args.nproc:
                print(f"training {config.model} on {config.dataset} with {shard.world_size} processes -> {run_dir}")
            fit(config, run_dir, resume=args.resume, shard=shard, sync_bn=args.sync_bn)
        except RuntimeError as err:
            if not _peer_failure(err):
                raise
            raise ConnectionError(f"rank {shard.rank}: lost the other training processes ({one_line(err)})") from None
    return 0


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``zoo eval``."""
    parser.add_argument("checkpoint", help="checkpoint file, or a run directory holding checkpoint.pt")
    parser.add_argument("--dataset", choices=sorted(DATASETS),
                        help="default: the dataset it was trained on (another needs the same shape and classes)")
    add_split(parser)
    add_data_dir(parser)
    parser.add_argument("--batch-size", type=int, default=1000, help="default: 1000")
    parser.add_argument("--max-batches", type=int, help="evaluate only this many batches")
    add_device(parser)
    add_threads(parser)
    add_json(parser)


def eval_command(args: argparse.Namespace) -> int:
    """Carry out ``zoo eval`` with parsed ``args``; returns the exit status."""
    require_positive(args, "batch_size", "max_batches", "threads")
    if args.threads:
        torch.set_num_threads(args.threads)
    result, checkpoint = evaluate_checkpoint(
        args.checkpoint, args.dataset, args.split, args.data_dir, args.batch_size, args.max_batches, args.device,
    )
    dataset = args.dataset or checkpoint["data"]["dataset"]
    summary = {
        "model": checkpoint["model"]["name"], "epoch": checkpoint["epoch"], "dataset": dataset, "split": args.split,
        "loss": result.loss, "accuracy": result.accuracy, "samples": int(result.confusion.sum()),
    }
    if args.json:
        print(json.dumps({**summary, "confusion_matrix": result.confusion.tolist()}))
    else:
        print(f"{summary['model']} (epoch {summary['epoch']}) on {dataset} {args.split}: "
              f"accuracy {result.accuracy:.4f}  loss {result.loss:.4f}  ({summary['samples']} images)")
    return 0


TRAIN = Command("train", "train a preset on a dataset", _TRAIN_HELP, add_train_arguments, train_command,
                preformatted=True)
EVAL = Command("eval", "evaluate a checkpoint", "Evaluate a checkpoint (or run directory) on a dataset split; "
               "the model is rebuilt from the checkpoint alone.", add_eval_arguments, eval_command)


def train_command_line(config: TrainConfig) -> str:
    """The shortest ``zoo train`` command that gives ``config``'s run: the options whose values differ from
    what the preset's recipe and the defaults already give (the inverse of how ``zoo train`` resolves them)."""
    preset = model_config(config.model)
    implied = TrainConfig.from_dict({**preset.recipe, "model": config.model, "dataset": preset.dataset}).to_dict()
    words = ["zoo", "train", config.model]
    for key, value in config.to_dict().items():
        if key in ("model", "quiet", "data_dir") or value == implied[key]:
            continue
        option = "--" + key.replace("_", "-")
        if key == "model_args":
            words += [f"--model-arg {k}={json.dumps(v, separators=(',', ':'))}" for k, v in value.items()]
        elif isinstance(value, bool):
            words.append(option if value else f"--no-{option[2:]}")
        elif isinstance(value, list):
            words.append(" ".join([option, *map(str, value)]))
        elif value is not None:
            words.append(f"{option} {value}")
    return " ".join(words)
