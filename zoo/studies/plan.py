"""Turn a study's run definitions into TrainConfigs under the command's options (dataset, budget, device)."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from zoo.data import get_dataset
from zoo.train import TrainConfig
from zoo.train.loop import count_batches
from zoo.studies.spec import RunSpec, Study

__all__ = ["StudyOptions", "build_config", "scale_epochs", "select_runs"]


@dataclass
class StudyOptions:
    """How to run a study here (what ``zoo study`` options set).

    Attributes:
        dataset: train on this dataset instead of the study's (e.g. ``'mnist'`` for EMNIST studies).
        epoch_scale: multiply every run's epochs (and step milestones, cyclic step size) by this.
        epochs: set every run's epochs to this (milestones and cyclic step size scale with it);
            wins over ``epoch_scale``.
        only: shell-style patterns; a run is selected when one matches its label or one of its groups.
        train_size: train every run on a seeded random subset of this many images (reduced budget).
        seed, threads, device, data_dir, max_batches: passed to every TrainConfig.
    """

    dataset: str | None = None
    epoch_scale: float = 1.0
    epochs: int | None = None
    only: Sequence[str] = field(default_factory=list)
    train_size: int | None = None
    seed: int = 0
    threads: int | None = None
    device: str = "cpu"
    data_dir: str | None = None
    max_batches: int | None = None


def select_runs(study: Study, patterns: Sequence[str]) -> list[RunSpec]:
    """The runs matching any pattern (label or group, fnmatch); all runs without patterns."""
    if not patterns:
        return list(study.runs)
    return [spec for spec in study.runs
            if any(fnmatch.fnmatch(name, p) for p in patterns for name in (spec.label, *spec.groups))]


def scale_epochs(epochs: int, options: StudyOptions) -> tuple[int, float]:
    """``(new epochs, factor)``: ``options.epochs`` if set, else ``round(epochs * epoch_scale)``, at least 1."""
    new = options.epochs if options.epochs is not None else max(1, round(epochs * options.epoch_scale))
    return new, new / epochs


@lru_cache(maxsize=16)
def _train_images(dataset: str, data_dir: str | None, val_size: int | None, train_size: int | None) -> int:
    # Only the cyclic schedule needs it (step size in epochs -> batches); loading is cached by zoo.data.
    return len(get_dataset(dataset, "train", root=data_dir, val_size=val_size, train_size=train_size))


def build_config(study: Study, spec: RunSpec, options: StudyOptions) -> TrainConfig:
    """The TrainConfig of one run: study base < run overrides < options; epochs and schedules scaled."""
    settings = {**study.base, **spec.train}
    epochs, factor = scale_epochs(int(settings.get("epochs", 10)), options)
    settings["epochs"] = epochs
    if settings.get("milestones"):
        # Keep the schedule's shape: milestones move with the budget (at least epoch 1, no repeats).
        settings["milestones"] = sorted({max(1, round(m * factor)) for m in settings["milestones"]})
    config = TrainConfig(
        **settings, model=spec.model, dataset=options.dataset or study.dataset, model_args=dict(spec.model_args),
        train_size=options.train_size, seed=options.seed, threads=options.threads, device=options.device,
        data_dir=options.data_dir, max_batches=options.max_batches, quiet=True,
    )
    if study.step_size_epochs is not None and config.schedule == "cyclic":
        per_epoch = count_batches(_train_images(config.dataset, config.data_dir, config.val_size, config.train_size),
                                  config.batch_size, config.max_batches)
        config.step_size = max(1, round(study.step_size_epochs * factor * per_epoch))
    return config
