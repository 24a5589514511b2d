"""The ``zoo`` command: list presets, train one on a dataset, evaluate a checkpoint, export it to ONNX, predict.

Run ``zoo --help`` or ``zoo COMMAND --help``; also runnable as ``python -m zoo``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from zoo.data import DATASETS
from zoo.models import create_model, list_models, model_config
from zoo.studies.cli import add_study_parser, run_study_command
from zoo.train import OPTIMIZERS, SCHEDULES, DivergenceError, TrainConfig, evaluate_checkpoint, fit, read_config_file
from zoo.train.checkpoint import CHECKPOINT_NAME

__all__ = ["main", "build_parser"]


_EXAMPLES = """\
examples:
  zoo list                                          every preset, its dataset and size
  zoo train mnist_cnn                               train on the preset's own dataset with its recipe
  zoo train mnist_cnn --epochs 1 --max-batches 50   a quick smoke test
  zoo train emnist_dnn_2x100 --dataset mnist --model-arg activation=elu --model-arg batch_norm=true
  zoo train nin_relu_bn --optimizer sgd --lr 0.1 --momentum 0.9 --schedule step --milestones 60 90
  zoo train mnist_cnn --out runs/a --resume          continue runs/a after a crash (same options)
  zoo eval runs/a                                    test accuracy of runs/a/checkpoint.pt
  zoo export runs/a -o a.onnx --fold-bn              ONNX file + onnxruntime validation on the test split
  zoo predict a.onnx digit.png                       classify images with onnxruntime only
  zoo predict a.onnx --dataset                       onnxruntime accuracy on the model's test split

Data is read from --data-dir, else $ZOO_DATA, else ~/.cache/zoo/data.
"""

_TRAIN_HELP = """\
Train a preset and write a run directory (default runs/<model>-<dataset>-<time>) holding:
  checkpoint.pt          written every epoch (atomically); `zoo eval` needs only this file
  metrics.csv/.json      per epoch: lr, train/val loss and accuracy, seconds
  results.json           final test loss/accuracy and confusion matrix
  confusion_matrix.csv, learning_curves.png, confusion_matrix.png, config.json

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


def _model_arg(text: str) -> tuple[str, Any]:
    # KEY=VALUE with VALUE as JSON when it parses (true, 0.5, [100,100]), else a plain string.
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.replace("-", "_"), json.loads(value)
    except json.JSONDecodeError:
        return key.replace("-", "_"), value


def _add_train_options(p: argparse.ArgumentParser) -> None:
    s = argparse.SUPPRESS  # unset options do not override the recipe or the config file
    p.add_argument("model", nargs="?", default=s, help="preset name from `zoo list` (or `model` in --config)")
    p.add_argument("--dataset", choices=sorted(DATASETS), default=s,
                   help="dataset to train on (default: the one the preset was designed for)")
    p.add_argument("--config", metavar="FILE", help="JSON or TOML file of settings named like the options "
                   "(e.g. lr = 0.1, milestones = [30, 60], model_args = {batch_norm = true})")
    p.add_argument("--model-arg", metavar="KEY=VALUE", type=_model_arg, action="append", default=s, dest="model_args",
                   help="architecture override passed to create_model, VALUE as JSON: batch_norm=true, "
                   "activation=elu, alpha=0.2, hidden=[200,200], init=he, dropout_hidden=0.5; repeatable")
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
                              "cyclic (triangular, --lr-min to --lr-max)", "schedule"))
    g.add_argument("--milestones", type=int, nargs="+", metavar="EPOCH", default=s,
                   help="epochs after which the step schedule divides lr by 10, e.g. --milestones 30 60")
    g.add_argument("--lr-min", type=float, default=s, help=_help("cyclic: lowest lr", "lr_min"))
    g.add_argument("--lr-max", type=float, default=s, help=_help("cyclic: highest lr", "lr_max"))
    g.add_argument("--step-size", type=int, default=s, help=_help("cyclic: batches per half cycle", "step_size"))
    g.add_argument("--seed", type=int, default=s, help=_help("seed for init, data order, augmentation, dropout", "seed"))
    d = p.add_argument_group("data")
    d.add_argument("--data-dir", default=s, help="data root (default: $ZOO_DATA, else ~/.cache/zoo/data)")
    d.add_argument("--val-size", type=int, default=s,
                   help="images held out of train for validation (default: the dataset's; 0: none)")
    d.add_argument("--train-size", type=int, default=s,
                   help="train on a seeded random subset of this many training images (default: all)")
    d.add_argument("--augment", action=argparse.BooleanOptionalAction, default=s,
                   help="CIFAR-10 random crop + flip (default: off unless the recipe turns it on)")
    r = p.add_argument_group("run")
    r.add_argument("--out", metavar="DIR", help="run directory (default: runs/<model>-<dataset>-<YYYYmmdd-HHMMSS>)")
    r.add_argument("--resume", action="store_true",
                   help="continue the run in --out (default: the newest runs/<model>-<dataset>-*) from its checkpoint")
    r.add_argument("--compile", action="store_true", default=s, help="run the model through torch.compile")
    r.add_argument("--threads", type=int, default=s, help="CPU threads for torch (default: torch's choice)")
    r.add_argument("--device", default=s, help="cpu or cuda (default: cpu)")
    r.add_argument("--max-batches", type=int, default=s,
                   help="limit batches per epoch and per evaluation (smoke tests; test accuracy is then on a subset)")
    r.add_argument("--quiet", action="store_true", default=s, help="no progress bars or per-epoch lines")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``zoo`` command."""
    parser = argparse.ArgumentParser(
        prog="zoo", description="Train and evaluate the zoo's image classifiers (MLP, CNN, Network in Network).",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lister = sub.add_parser("list", help="list the model presets", description="List the model presets.")
    lister.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'nin_*'")
    lister.add_argument("-v", "--verbose", action="store_true", help="also show parameter counts and recipes")
    trainer = sub.add_parser("train", help="train a preset on a dataset", description=_TRAIN_HELP,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_train_options(trainer)
    evaluator = sub.add_parser("eval", help="evaluate a checkpoint",
                               description="Evaluate a checkpoint (or run directory) on a dataset split; "
                               "the model is rebuilt from the checkpoint alone.")
    evaluator.add_argument("checkpoint", help="checkpoint file, or a run directory holding checkpoint.pt")
    evaluator.add_argument("--dataset", choices=sorted(DATASETS),
                           help="default: the dataset it was trained on (another needs the same shape and classes)")
    evaluator.add_argument("--split", choices=("test", "val", "train"), default="test", help="default: test")
    evaluator.add_argument("--data-dir", help="data root (default: $ZOO_DATA, else ~/.cache/zoo/data)")
    evaluator.add_argument("--batch-size", type=int, default=1000, help="default: 1000")
    evaluator.add_argument("--max-batches", type=int, help="evaluate only this many batches")
    evaluator.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    evaluator.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    evaluator.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_export_parser(sub)
    add_study_parser(sub)
    from zoo.export.predict import add_arguments as add_predict_arguments

    predictor = sub.add_parser("predict", help="classify images with an exported model (onnxruntime only)",
                               description="Classify image files, or measure accuracy on a dataset split, with an "
                               "exported .onnx file in onnxruntime; normalisation and class names come from the "
                               "file's metadata. `python -m zoo.export.predict` does the same without loading torch.")
    add_predict_arguments(predictor)
    return parser


_EXPORT_HELP = """\
Export a checkpoint (or run directory, or an untrained preset by name) to ONNX
with standard operators only (Conv, BatchNormalization, Gemm...), a dynamic
batch dimension and zoo metadata (model, classes, mean/std, input shape,
dataset, version). Then validate it: onnx.checker (full_check), and onnxruntime
(CPU, and CUDA when present) against the torch model on the checkpoint's test
split (random images for an untrained preset or with --random) at batch 1 and
--batch-size: max abs logit difference within --atol and the same top-1 class.
The report goes to OUTPUT with the suffix .validation.json. Exit status 1 if
validation fails.
"""


def _add_export_parser(sub: argparse._SubParsersAction) -> None:
    from zoo.export.opsets import DEFAULT_OPSET, MIN_OPSET
    from zoo.export.validate import DEFAULT_ATOL

    p = sub.add_parser("export", help="export a checkpoint to ONNX and validate it in onnxruntime",
                       description=_EXPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="checkpoint file, run directory, or a preset name (exported untrained)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"ONNX opset, {MIN_OPSET} up to what onnxruntime supports (default: {DEFAULT_OPSET})")
    p.add_argument("--fold-bn", action="store_true",
                   help="fold batch norm into the preceding Conv/Gemm (default: keep BatchNormalization nodes)")
    v = p.add_argument_group("validation")
    v.add_argument("--split", choices=("test", "val", "train"), default="test", help="default: test")
    v.add_argument("--data-dir", help="data root (default: $ZOO_DATA, else ~/.cache/zoo/data)")
    v.add_argument("--samples", type=int, help="use only the first N images of the split (default: all)")
    v.add_argument("--random", type=int, metavar="N",
                   help="validate on N random images instead of data (default for untrained presets: 256)")
    v.add_argument("--batch-size", type=int, default=256, help="the large batch size compared (default: 256)")
    v.add_argument("--batch1-samples", type=int, default=1000,
                   help="images compared one at a time (default: 1000; 0: all)")
    v.add_argument("--atol", type=float, default=DEFAULT_ATOL,
                   help=f"max abs logit difference (default: {DEFAULT_ATOL})")
    v.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    v.add_argument("--json", action="store_true", help="print the validation report as JSON")


def _list(args: argparse.Namespace) -> int:
    names = list_models(args.pattern)
    print(f"{'model':<20} {'dataset':<16} {'classes':>7} {'input':>9}" + (f" {'params':>10}" if args.verbose else "")
          + "  description")
    for name in names:
        cfg = model_config(name)
        shape = f"{cfg.in_channels}x{cfg.input_size[0]}x{cfg.input_size[1]}"
        params = ""
        if args.verbose:
            params = f" {sum(p.numel() for p in create_model(name).parameters()):>10,}"
        print(f"{name:<20} {cfg.dataset:<16} {cfg.num_classes:>7} {shape:>9}{params}  {cfg.description}")
        if args.verbose:
            print(f"{'':<20} recipe: {json.dumps(dict(cfg.recipe))}")
    return 0


def _resolve_config(args: argparse.Namespace) -> TrainConfig:
    # Later sources win: TrainConfig defaults < model recipe < --config file < command line.
    from_file = read_config_file(args.config) if args.config else {}
    given = {k: v for k, v in vars(args).items() if k not in ("command", "config", "out", "resume")}
    model = given.get("model", from_file.get("model"))
    if model is None:
        raise ValueError("name a model: `zoo train MODEL` (or `model` in --config); `zoo list` shows them")
    recipe = dict(model_config(model).recipe)
    settings = {**recipe, **from_file, **given, "model": model}
    settings.setdefault("dataset", model_config(model).dataset)
    model_args = dict(from_file.get("model_args", {}))
    model_args.update(dict(given.get("model_args", [])))
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


def _train(args: argparse.Namespace) -> int:
    config = _resolve_config(args)
    run_dir = _run_dir(args, config)
    if not config.quiet:
        print(f"training {config.model} on {config.dataset} -> {run_dir}")
    fit(config, run_dir, resume=args.resume)
    return 0


def _eval(args: argparse.Namespace) -> int:
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


def _export(args: argparse.Namespace) -> int:
    # Imported here: onnx and onnxruntime load only for the commands that use them.
    from zoo.export.onnx_export import export_model, load_for_export
    from zoo.export.opsets import check_opset
    from zoo.export.predict import model_split
    from zoo.export.validate import random_images, report_path, validate_export

    if args.threads:
        torch.set_num_threads(args.threads)
    for name in ("samples", "random", "batch_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
    if args.batch1_samples < 0 or not args.atol >= 0:
        raise ValueError("--batch1-samples and --atol must be >= 0")
    check_opset(args.opset)  # before the slow steps
    model, info = load_for_export(args.checkpoint)
    # Read the validation data before exporting, so a missing dataset fails before any file is written.
    if args.random is not None or info.epochs == 0:
        count = args.random or 256
        images, labels, inputs = random_images(info, count), None, f"{count} random uint8 images"
    else:
        images, labels = model_split(info, None, args.split, args.data_dir)
        images, labels = images[:args.samples], labels[:args.samples]
        inputs = f"{info.dataset} {args.split} split ({len(labels)} images)"
    path = export_model(model, args.output, info, args.opset, args.fold_bn)
    report = validate_export(path, model, info, images, labels, inputs, batch_sizes=(1, args.batch_size),
                             batch1_samples=args.batch1_samples or None, atol=args.atol)
    if args.json:
        print(json.dumps(report))
        return 0 if report["passed"] else 1
    print(f"exported {info.model} ({info.dataset}, {info.epochs} epochs) -> {path}: opset {report['opset']}, "
          f"{report['nodes']} nodes ({', '.join(report['operators'])}), batch norm "
          f"{'folded' if args.fold_bn else 'kept'}, {path.stat().st_size / 1e6:.2f} MB")
    print(f"onnx.checker: {report['checker']}")
    for c in report["comparisons"]:
        accuracy = (f"  accuracy torch {c['torch_accuracy']:.4f} / onnxruntime {c['onnxruntime_accuracy']:.4f}"
                    if "torch_accuracy" in c else "")
        print(f"{c['provider']} batch {c['batch_size']}: {c['samples']} images, max |logit diff| "
              f"{c['max_abs_diff']:.2e}, top-1 agreement {100 * c['top1_agreement']:.2f}%{accuracy}"
              f"{'' if c['passed'] else '  FAILED'}")
    print(f"validation {'passed' if report['passed'] else 'FAILED'} on {inputs} (atol {args.atol:g}) "
          f"-> {report_path(path)}")
    return 0 if report["passed"] else 1


def _predict(args: argparse.Namespace) -> int:
    from zoo.export.predict import run

    return run(args)


def main(argv: list[str] | None = None) -> int:
    """Run the ``zoo`` command line; returns the exit status (0 ok, 1 error or divergence, 2 bad usage)."""
    args = build_parser().parse_args(argv)
    command = {"list": _list, "train": _train, "eval": _eval, "export": _export, "predict": _predict, "study": run_study_command}[args.command]
    try:
        return command(args)
    except DivergenceError as err:
        print(f"zoo: diverged: {err}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"zoo: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("zoo: interrupted; rerun the same command with --resume to continue", file=sys.stderr)
        return 130
