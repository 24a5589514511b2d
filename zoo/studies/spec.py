"""Study definitions as data: a study is a named list of training runs plus what was published about them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from zoo.studies.findings import Finding

__all__ = ["METRICS", "GradCheckStep", "RunSpec", "Selection", "Study", "run"]

# Per-run numbers a study can compare with the published ones.
METRICS = {
    "test_acc": "test accuracy",
    "best_val_acc": "best validation accuracy",
    "final_val_acc": "final validation accuracy",
}

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # labels name files and directories


def _frozen(values: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(values or {}))


@dataclass(frozen=True)
class RunSpec:
    """One training run of a study.

    Attributes:
        label: unique within the study; names the result file and the run directory.
        model: preset name (see :func:`zoo.list_models`).
        groups: the comparison groups (table sections and plots) the run belongs to;
            a run shared by two comparisons (e.g. the baseline) is trained once.
        model_args: overrides for :func:`zoo.create_model` (``batch_norm``, ``activation``...).
        train: :class:`zoo.train.TrainConfig` field values on top of the study's ``base``.
        published: the published value of the study's ``metric`` (a fraction), or None.
        note: shown beside the run in the report.
    """

    label: str
    model: str
    groups: tuple[str, ...]
    model_args: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)
    published: float | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if not _LABEL.match(self.label):
            raise ValueError(f"run label {self.label!r} must be letters, digits, '.', '_' or '-'")
        object.__setattr__(self, "model_args", _frozen(self.model_args))
        object.__setattr__(self, "train", _frozen(self.train))


def run(label: str, model: str, groups: str | Sequence[str], published: float | None = None, note: str = "",
        train: Mapping[str, Any] | None = None, **model_args: Any) -> RunSpec:
    """Shorthand for :class:`RunSpec`: keyword arguments beyond the named ones are model overrides."""
    groups = (groups,) if isinstance(groups, str) else tuple(groups)
    return RunSpec(label, model, groups, model_args, train or {}, published, note)


@dataclass(frozen=True)
class Selection:
    """A row chosen from finished runs, e.g. "the best DNN by validation accuracy, on the test set".

    Attributes:
        label: the row's name in the report.
        candidates: run labels to choose from.
        by: metric that picks the winner (highest wins).
        report: metric reported for the winner.
        published: published value of ``report``, or None.
    """

    label: str
    candidates: tuple[str, ...]
    by: str = "best_val_acc"
    report: str = "test_acc"
    published: float | None = None


@dataclass(frozen=True)
class GradCheckStep:
    """A numerical gradient check of whole networks, run as a study step (see :mod:`zoo.studies.gradcheck`).

    Attributes:
        models: ``(name, preset, model_args)`` triples of the networks to check.
        batch_size: images in the (real-data) batch the loss is computed on.
        l2: the cost adds ``l2 * sum(W**2)`` over Linear/Conv weights (0: none).
        max_entries: entries checked per parameter tensor (randomly chosen; all if fewer).
    """

    models: tuple[tuple[str, str, Mapping[str, Any]], ...]
    batch_size: int = 4
    l2: float = 0.0
    max_entries: int = 100


@dataclass(frozen=True)
class Study:
    """A grid of training runs reproducing a published study.

    Attributes:
        name: the ``zoo study NAME`` name; also names the report and result folder.
        title: one line for the report heading.
        protocol: the published protocol, in words.
        published_dataset: the dataset the published numbers are on.
        dataset: the dataset run by default (``--dataset`` overrides it).
        metric: the per-run number compared with ``RunSpec.published`` (a key of :data:`METRICS`).
        base: TrainConfig settings shared by every run (each run's ``train`` overrides them).
        runs: the runs.
        findings: qualitative claims of the published study, checked on our numbers.
        selections: chosen rows such as "best DNN on test".
        notes: where our protocol had to guess or differs from the published one.
        step_size_epochs: for the cyclic schedule, half-cycle length in epochs
            (turned into batches, and scaled with ``--epoch-scale``).
        gradcheck: a gradient-check step, or None.
    """

    name: str
    title: str
    protocol: str
    published_dataset: str
    dataset: str
    metric: str
    base: Mapping[str, Any]
    runs: tuple[RunSpec, ...]
    findings: tuple[Finding, ...] = ()
    selections: tuple[Selection, ...] = ()
    notes: tuple[str, ...] = ()
    step_size_epochs: float | None = None
    gradcheck: GradCheckStep | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", _frozen(self.base))
        if self.metric not in METRICS:
            raise ValueError(f"{self.name}: metric must be one of {sorted(METRICS)}, got {self.metric!r}")
        labels = [r.label for r in self.runs]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ValueError(f"{self.name}: duplicate run labels {duplicates}")
        known = set(labels)
        for item in (*self.findings, *self.selections):
            needed = item.needs if isinstance(item, Finding) else item.candidates
            missing = sorted(set(needed) - known)
            if missing:
                name = item.text if isinstance(item, Finding) else item.label
                raise ValueError(f"{self.name}: {type(item).__name__} {name!r} names unknown runs {missing}")

    @property
    def groups(self) -> list[str]:
        """Group names in the order they first appear."""
        seen: dict[str, None] = {}
        for spec in self.runs:
            seen.update(dict.fromkeys(spec.groups))
        return list(seen)

    def runs_in(self, group: str) -> list[RunSpec]:
        """The runs of one group, in definition order."""
        return [spec for spec in self.runs if group in spec.groups]

    def run_named(self, label: str) -> RunSpec:
        """The run with this label."""
        for spec in self.runs:
            if spec.label == label:
                return spec
        raise KeyError(f"{self.name} has no run {label!r}")
