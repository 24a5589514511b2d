"""The files of a run directory besides its checkpoint: per-epoch metrics (CSV + JSON), final results, plots.

Plots are PNGs drawn with matplotlib's Agg canvas (no display needed).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from zoo.files import write_json, write_text

__all__ = ["HISTORY_FIELDS", "plot_confusion_matrix", "plot_learning_curves", "write_history", "write_results"]

# Columns of metrics.csv, one row per epoch.
HISTORY_FIELDS = ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "time_s")


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


def _figure(width: float, height: float):
    # A bare Figure renders with the Agg canvas and never touches pyplot's global backend.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def plot_learning_curves(history: Sequence[dict[str, Any]], path: Path, title: str = "") -> None:
    """Loss and accuracy per epoch, train and validation, side by side."""
    from matplotlib.ticker import MaxNLocator

    fig = _figure(10, 4)
    loss_ax, acc_ax = fig.subplots(1, 2)
    epochs = [row["epoch"] for row in history]
    for ax, metric in ((loss_ax, "loss"), (acc_ax, "acc")):
        for split in ("train", "val"):
            values = [row[f"{split}_{metric}"] for row in history]
            if any(v is not None for v in values):
                ax.plot(epochs, [float("nan") if v is None else v for v in values], marker="o", label=split)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("accuracy" if metric == "acc" else "cross-entropy loss")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.savefig(path, dpi=100)


def plot_confusion_matrix(confusion: torch.Tensor, classes: Sequence[str], path: Path, title: str = "") -> None:
    """Row-normalised confusion matrix as a heat map (true label down, prediction across)."""
    counts = confusion.to(torch.float64)
    rates = counts / counts.sum(dim=1, keepdim=True).clamp(min=1)
    n = len(classes)
    size = max(5.0, 0.22 * n + 2)
    fig = _figure(size, size)
    ax = fig.subplots()
    image = ax.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of true class")
    ax.set_xticks(range(n), classes, rotation=90, fontsize=8 if n > 20 else 10)
    ax.set_yticks(range(n), classes, fontsize=8 if n > 20 else 10)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 20:  # counts stay legible only for small matrices
        for i in range(n):
            for j in range(n):
                ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if rates[i, j] > 0.5 else "black")
    ax.set_title(title)
    fig.savefig(path, dpi=100)
