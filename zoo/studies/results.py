"""Result files of a study: one small JSON per run (and the gradient check), the source of every report.

Layout under the output root (default ``docs/studies``)::

    NAME.md                 the report
    NAME/runs/<label>.json  one finished (or diverged) run: config, summary numbers, per-epoch history
    NAME/gradcheck.json     the gradient-check step, when the study has one
    NAME/<group>.png        one comparison plot per group

A study run on another dataset than its own (``--dataset``) uses ``NAME-DATASET`` in
place of ``NAME``, so the same study on MNIST and on Fashion-MNIST keeps two reports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.files import read_json

__all__ = ["StudyPaths", "read_runs", "slug", "summarize"]


def slug(text: str) -> str:
    """A file-name-safe form of a group name: ``'CNN 2x4 3x3'`` -> ``'cnn-2x4-3x3'``."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-")


@dataclass(frozen=True)
class StudyPaths:
    """Where a study's files go: results and report under ``out``, training run directories under ``runs``.

    Attributes:
        name: the study's name.
        out, runs: roots of the result files and of the training run directories.
        dataset: set when the study runs on another dataset than its own; its files are then named
            ``NAME-DATASET``.
    """

    name: str
    out: Path
    runs: Path
    dataset: str | None = None

    @property
    def stem(self) -> str:
        """``NAME``, or ``NAME-DATASET`` for a study run on another dataset."""
        return self.name if self.dataset is None else f"{self.name}-{self.dataset}"

    @property
    def report(self) -> Path:
        """The markdown report."""
        return self.out / f"{self.stem}.md"

    @property
    def folder(self) -> Path:
        """Results and plots."""
        return self.out / self.stem

    def result(self, label: str) -> Path:
        """Result file of one run."""
        return self.folder / "runs" / f"{label}.json"

    def run_dir(self, label: str) -> Path:
        """Training run directory (checkpoint, metrics) of one run; not meant for commits."""
        return self.runs / self.stem / label

    @property
    def gradcheck(self) -> Path:
        """Result file of the gradient-check step."""
        return self.folder / "gradcheck.json"

    def plot(self, group: str) -> Path:
        """Comparison plot of one group."""
        return self.folder / f"{slug(group)}.png"


def read_runs(paths: StudyPaths) -> dict[str, dict[str, Any]]:
    """Every run result file of the study, by label."""
    folder = paths.folder / "runs"
    return {p.stem: read_json(p) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}


def summarize(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-run numbers from the per-epoch history: best and final validation accuracy, training time."""
    vals = [row["val_acc"] for row in history if row.get("val_acc") is not None]
    return {
        "epochs_done": len(history),
        "best_val_acc": max(vals) if vals else None,
        "best_val_epoch": history[[row.get("val_acc") for row in history].index(max(vals))]["epoch"] if vals else None,
        "final_val_acc": vals[-1] if vals else None,
        "train_time_s": sum(row["time_s"] for row in history),
    }
