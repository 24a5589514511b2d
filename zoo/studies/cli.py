"""The ``zoo study`` command: run a whole study (a grid of training runs) and write its report.

``zoo/cli.py`` adds it to the ``zoo`` command; ``python -m zoo.studies NAME ...`` runs it too.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from zoo.command import Command, add_data_dir, add_device, add_threads, require_positive
from zoo.data import DATASETS
from zoo.studies.plan import StudyOptions, build_config, select_runs
from zoo.studies.registry import get_study, list_studies
from zoo.studies.report import write_report
from zoo.studies.results import StudyPaths
from zoo.studies.runner import GRADCHECK_STEP, run_study
from zoo.train import TrainConfig

__all__ = ["STUDY", "add_study_arguments", "study_command"]

_DESCRIPTION = """\
Run a study: every run of its grid is trained with `zoo train`'s engine (one run
directory each under --runs-dir), its result saved as a small JSON file under
--out/NAME/runs/, and the report --out/NAME.md (tables, published numbers, checked
findings, one plot per group) regenerated from those files.

With --dataset other than the study's own, the files are named NAME-DATASET
(--out/NAME-DATASET.md and --out/NAME-DATASET/), so each dataset keeps its report.

A run whose result file exists is skipped, so rerunning the same command after an
interruption continues where it stopped (a run cut off mid-training resumes from
its checkpoint). --report-only rewrites the report from the result files alone.
"""

_EPILOG = f"""\
studies: {', '.join(list_studies())}

examples:
  zoo study mnist-bn-study --threads 1                      the whole study
  zoo study mnist-bn-study --only 'cnn-*' --list             which runs a pattern selects, and their settings
  zoo study emnist-mlp-study --dataset fashion-mnist --epochs 10
  zoo study nin-cifar10-study --epoch-scale 0.05 --device cuda
  zoo study kmlp-bn-study --only {GRADCHECK_STEP}                 only the numerical gradient check
  zoo study mnist-bn-study --report-only                     regenerate docs/studies/mnist-bn-study.md
"""


def add_study_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``zoo study``."""
    p.add_argument("name", choices=list_studies(), metavar="NAME", help="the study: " + ", ".join(list_studies()))
    p.add_argument("--dataset", choices=sorted(DATASETS),
                   help="train on this dataset instead of the study's (EMNIST studies: mnist or fashion-mnist here)")
    p.add_argument("--epoch-scale", type=float, default=1.0, metavar="F",
                   help="scale every run's epochs, step-schedule milestones and cyclic step size by F (default: 1)")
    p.add_argument("--epochs", type=int, help="every run trains this many epochs (milestones scale along; "
                   "wins over --epoch-scale)")
    p.add_argument("--train-size", type=int, metavar="N",
                   help="train every run on a seeded random subset of N training images (reduced budget)")
    p.add_argument("--only", action="extend", nargs="+", default=[], metavar="PATTERN",
                   help=f"run only runs whose label or group matches a shell-style PATTERN ('{GRADCHECK_STEP}' "
                   "selects the gradient check); the report still lists every run")
    p.add_argument("--seed", type=int, default=0, help="seed of every run (default: 0)")
    add_threads(p)
    add_device(p)
    add_data_dir(p)
    p.add_argument("--max-batches", type=int, help="limit batches per epoch and evaluation (smoke tests)")
    p.add_argument("--out", default="docs/studies", type=Path,
                   help="report and result files: OUT/NAME.md and OUT/NAME/ (default: docs/studies)")
    p.add_argument("--runs-dir", default="runs/studies", type=Path,
                   help="training run directories: RUNS_DIR/NAME/<label>/ (default: runs/studies)")
    p.add_argument("--rerun", action="store_true", help="train the selected runs again, replacing their results")
    p.add_argument("--report-only", action="store_true", help="only rewrite the report from the result files")
    p.add_argument("--list", action="store_true", help="print the selected runs and their settings; train nothing")


# Named at the start of each plan line; the rest of a run's identity is listed where it is not the default.
_PLAN_HEADLINE = ("model", "dataset", "model_args", "epochs")


def _options(args: argparse.Namespace) -> StudyOptions:
    return StudyOptions(dataset=args.dataset, epoch_scale=args.epoch_scale, epochs=args.epochs, only=args.only,
                        train_size=args.train_size,
                        seed=args.seed, threads=args.threads, device=args.device, data_dir=args.data_dir,
                        max_batches=args.max_batches)


def _print_plan(args: argparse.Namespace, paths: StudyPaths) -> None:
    study, options = get_study(args.name), _options(args)
    for spec in select_runs(study, options.only):
        config = build_config(study, spec, options)
        state = "done" if paths.result(spec.label).exists() else "to run"
        # Only what differs from TrainConfig's defaults, so each line stays readable.
        defaults = TrainConfig.defaults()
        changed = {k: v for k, v in config.identity().items() if k not in _PLAN_HEADLINE and v != defaults.get(k)}
        settings = ", ".join(f"{k}={v}" for k, v in {**spec.model_args, **changed}.items())
        print(f"{spec.label:<24} {state:<7} {config.model} on {config.dataset}, {config.epochs} epochs: {settings}"
              f"  [{'; '.join(spec.groups)}]")


def study_command(args: argparse.Namespace) -> int:
    """Carry out ``zoo study`` with parsed ``args``; returns the exit status (0 ok)."""
    require_positive(args, "epochs", "train_size", "threads", "max_batches")
    study = get_study(args.name)
    other_dataset = args.dataset if args.dataset and args.dataset != study.dataset else None
    paths = StudyPaths(study.name, Path(args.out), Path(args.runs_dir), dataset=other_dataset)
    if args.list:
        _print_plan(args, paths)
        return 0
    if args.report_only:
        print(f"report: {write_report(study, paths)}")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)  # the gradient check too, not only the training runs
    run_study(study, paths, _options(args), rerun=args.rerun)
    return 0


STUDY = Command("study", "run a study (a grid of runs) and write its report", _DESCRIPTION, add_study_arguments,
                study_command, epilog=_EPILOG, preformatted=True)
