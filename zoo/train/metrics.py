"""Metrics files of a run directory: per-epoch history (CSV + JSON) and final results."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from zoo.files import write_json, write_text

__all__ = ["HISTORY_FIELDS", "confusion_matrix", "write_history", "write_results"]

# Columns of metrics.csv, one row per epoch.
HISTORY_FIELDS = ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "time_s")


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(num_classes, num_classes)`` int64 counts; row = true label, column = prediction."""
    flat = labels.to(torch.int64) * num_classes + predictions.to(torch.int64)
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def write_history(run_dir: Path, history: Sequence[dict[str, Any]]) -> None:
    """Write ``metrics.csv`` and ``metrics.json`` (the per-epoch rows so far)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_text(run_dir / "metrics.csv", buffer.getvalue())
    write_json(run_dir / "metrics.json", list(history))


def write_results(run_dir: Path, results: dict[str, Any], confusion: torch.Tensor, classes: Sequence[str]) -> None:
    """Write ``results.json`` and ``confusion_matrix.csv`` (with class names as header and first column)."""
    write_json(run_dir / "results.json", results)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["true\\predicted", *classes])
    for name, row in zip(classes, confusion.tolist()):
        writer.writerow([name, *row])
    write_text(run_dir / "confusion_matrix.csv", buffer.getvalue())
