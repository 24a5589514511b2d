"""Checkpoints: everything to resume a run, and to rebuild its model from the file alone.

A checkpoint is a dict saved with ``torch.save`` and readable with
``torch.load(weights_only=True)``::

    format, version
    model:  {name, args}        -> zoo.create_model(name, **args)
    data:   {dataset, mean, std, classes, in_channels, image_size}   (inputs are normalised with mean/std)
    train_config                TrainConfig.to_dict()
    epoch                       epochs completed
    state_dict, optimizer, scheduler, rng, history
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.models import create_model
from zoo.files import atomic_write

__all__ = ["CHECKPOINT_NAME", "FORMAT", "checkpoint_path", "save_checkpoint", "load_checkpoint", "model_from_checkpoint"]

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = "zoo-checkpoint"
VERSION = 1


def checkpoint_path(path: str | Path) -> Path:
    """``path`` itself if it is a file, else ``path/checkpoint.pt`` (a run directory)."""
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> None:
    """Atomically write ``checkpoint`` (a temp file, then ``os.replace``): a kill never corrupts it."""
    with atomic_write(path) as f:
        torch.save({"format": FORMAT, "version": VERSION, **checkpoint}, f)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint file (or ``run_dir/checkpoint.pt``) onto the CPU.

    Raises:
        FileNotFoundError: nothing there.
        ValueError: the file is not a zoo checkpoint.
    """
    path = checkpoint_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise ValueError(f"{path}: not a zoo checkpoint")
    if checkpoint.get("version") != VERSION:
        raise ValueError(f"{path}: checkpoint version {checkpoint.get('version')}, this zoo reads version {VERSION}")
    return checkpoint


def model_from_checkpoint(checkpoint: dict[str, Any]) -> nn.Module:
    """Rebuild the checkpoint's model with its weights, in eval mode, on the CPU."""
    model = create_model(checkpoint["model"]["name"], **checkpoint["model"]["args"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()
