"""The ``zoo`` command: list presets, train one on a dataset, evaluate a checkpoint, export it to ONNX, predict.

Run ``zoo --help`` or ``zoo COMMAND --help``; also runnable as ``python -m zoo``. Each
stage owns its commands (:class:`zoo.command.Command`); this module gathers them.
"""

from __future__ import annotations

import argparse
import json
import sys

from zoo.command import Command
from zoo.data import DownloadError
from zoo.export.cli import EXPORT
from zoo.export.predict import PREDICT
from zoo.models import create_model, list_models, model_config
from zoo.models.cost import count_parameters
from zoo.pretrained.cli import RELEASE, print_pretrained
from zoo.studies.cli import STUDY
from zoo.train import DivergenceError
from zoo.train.cli import EVAL, TRAIN
from zoo.train.distributed import exit_process, launched

__all__ = ["COMMANDS", "build_parser", "main", "run_parsed"]

_EXAMPLES = """\
examples:
  zoo list                                          every preset, its dataset and size
  zoo list --pretrained                             the pretrained weights: accuracy, size, command
  zoo train mnist_cnn                               train on the preset's own dataset with its recipe
  zoo train mnist_cnn --epochs 1 --max-batches 50   a quick smoke test
  zoo train emnist_dnn_2x100 --dataset mnist --model-arg activation=elu --model-arg batch_norm=true
  zoo train nin_relu_bn --optimizer sgd --lr 0.1 --momentum 0.9 --schedule step --milestones 60 90
  zoo train mnist_cnn --out runs/a --resume          continue runs/a after a crash (same options)
  zoo eval runs/a                                    test accuracy of runs/a/checkpoint.pt
  zoo export runs/a -o a.onnx --fold-bn              ONNX file + onnxruntime validation on the test split
  zoo predict a.onnx digit.png                       classify images with onnxruntime only
  zoo predict a.onnx --dataset                       onnxruntime accuracy on the model's test split
  zoo predict mnist_cnn_32_64.mnist digit.png        pretrained weights, no training (exported on first use)
  zoo release mnist_cnn_32_64.mnist                  retrain a pretrained tag and check its recorded accuracy

Data is read from --data-dir, else $ZOO_DATA, else ~/.cache/zoo/data.
"""


def _add_list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'nin_*'")
    parser.add_argument("-v", "--verbose", action="store_true", help="also show parameter counts and recipes")
    parser.add_argument("--pretrained", action="store_true",
                        help="list the pretrained weight sets (PRESET.DATASET tags) instead: accuracy, size, command")


def _list_command(args: argparse.Namespace) -> int:
    if args.pretrained:
        print_pretrained(args.pattern)
        return 0
    names = list_models(args.pattern)
    print(f"{'model':<20} {'dataset':<16} {'classes':>7} {'input':>9}" + (f" {'params':>10}" if args.verbose else "")
          + "  description")
    for name in names:
        cfg = model_config(name)
        shape = f"{cfg.in_channels}x{cfg.input_size[0]}x{cfg.input_size[1]}"
        params = ""
        if args.verbose:
            params = f" {count_parameters(create_model(name)):>10,}"
        print(f"{name:<20} {cfg.dataset:<16} {cfg.num_classes:>7} {shape:>9}{params}  {cfg.description}")
        if args.verbose:
            print(f"{'':<20} recipe: {json.dumps(dict(cfg.recipe))}")
    return 0



LIST = Command("list", "list the model presets", "List the model presets.", _add_list_arguments, _list_command)
# In the order `zoo --help` lists them.
COMMANDS = (LIST, TRAIN, EVAL, EXPORT, STUDY, PREDICT, RELEASE)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``zoo`` command."""
    parser = argparse.ArgumentParser(
        prog="zoo", description="Train and evaluate the zoo's image classifiers (MLP, CNN, Network in Network).",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_to(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``zoo`` command line; returns the exit status (0 ok, 1 error or divergence, 2 bad usage).

    As one rank of a torchrun launch (``argv`` None: this process's own command
    line), the process ends here (:func:`zoo.train.distributed.exit_process`).
    """
    status = run_parsed(build_parser().parse_args(argv))
    if argv is None and launched():
        exit_process(status)
    return status


def run_parsed(args: argparse.Namespace) -> int:
    """Carry out a parsed ``zoo`` command line, turning user errors into one line on stderr; returns the status."""
    run = {command.name: command.run for command in COMMANDS}[args.command]
    try:
        return run(args)
    except DivergenceError as err:
        print(f"zoo: diverged: {err}", file=sys.stderr)
        return 1
    except (ValueError, OSError, DownloadError) as err:  # user errors: bad values, files missing or unwritable
        print(f"zoo: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("zoo: interrupted; rerun the same command with --resume to continue", file=sys.stderr)
        return 130
