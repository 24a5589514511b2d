"""Comparison plots of a study: validation accuracy per epoch of every run in a group, on one axis."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_group"]


def plot_group(records: Sequence[Mapping[str, Any]], path: Path, title: str) -> bool:
    """Plot validation accuracy (train accuracy where a run has no validation) vs epoch, one line per run.

    A diverged run's line stops at its last good epoch and ends in an ``x`` (a run that
    diverged in its first epoch only has a legend entry).
    Returns False (and writes nothing) when no record has any epochs.
    """
    from matplotlib.figure import Figure  # a bare Figure renders with Agg; pyplot's global state is untouched
    from matplotlib.ticker import MaxNLocator

    if not any(r["history"] for r in records):
        return False
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    for record in records:
        history = record["history"]
        if not history:
            if record["status"] == "diverged":  # nothing to draw, but the legend says what happened
                ax.plot([], [], marker="x", linestyle="none", label=f"{record['label']} (diverged in epoch 1)")
            continue
        key = "val_acc" if history[0].get("val_acc") is not None else "train_acc"
        epochs = [row["epoch"] for row in history]
        values = [row[key] for row in history]
        label = record["label"] + (" (train acc)" if key == "train_acc" else "") + (
            " (diverged)" if record["status"] == "diverged" else "")
        (line,) = ax.plot(epochs, values, marker="o", markersize=3, label=label)
        if record["status"] == "diverged":
            ax.plot(epochs[-1:], values[-1:], marker="x", markersize=10, color=line.get_color())
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2 if len(records) > 6 else 1)
    ax.set_title(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return True
