"""Checkpoints: everything to resume a run, and to rebuild its model from the file alone.

A checkpoint is a dict saved with ``torch.save`` and readable with
``torch.load(weights_only=True)``::

    format, version
    model:  {name, args}        -> zoo.create_model(name, **args)
    data:   {dataset, mean, std, classes, in_channels, image_size}   (inputs are normalised with mean/std)
    train_config                TrainConfig.to_dict()
    epoch                       epochs completed
    state_dict, optimizer, scheduler, rng, history

Damage is caught before anything is unpickled: ``torch.save`` writes a zip archive
whose every record (the pickle and each tensor's bytes) carries a CRC-32, and
:func:`load_checkpoint`, the one way zoo reads a checkpoint, checks them all with
:mod:`zipfile`. A truncated, zeroed, bit-flipped or foreign file is refused with
one :class:`CheckpointError` naming it. Checkpoints saved without CRCs
(``torch.serialization.set_crc32_options(False)``) cannot be verified and are refused too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.models import create_model
from zoo.archives import one_line, zip_damage, zip_without_crcs
from zoo.files import atomic_write

__all__ = ["CHECKPOINT_NAME", "FORMAT", "CheckpointError", "checkpoint_path", "save_checkpoint",
           "load_checkpoint", "model_from_checkpoint"]

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = "zoo-checkpoint"
VERSION = 1
# What fit() writes and evaluation, resume and export read.
_REQUIRED = ("model", "data", "train_config", "epoch", "state_dict")


class CheckpointError(ValueError):
    """A checkpoint file zoo cannot use: it fails its checksums, cannot be read, or is not a zoo checkpoint."""


def checkpoint_path(path: str | Path) -> Path:
    """``path`` itself if it is a file, else ``path/checkpoint.pt`` (a run directory)."""
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> None:
    """Atomically write ``checkpoint`` (a temp file, then ``os.replace``): a kill never corrupts it.

    Every record of the file carries a CRC-32, even where CRCs were switched off
    globally, so :func:`load_checkpoint` can verify it.
    """
    computing = torch.serialization.get_crc32_options()
    torch.serialization.set_crc32_options(True)
    try:
        with atomic_write(path) as f:
            torch.save({"format": FORMAT, "version": VERSION, **checkpoint}, f)
    finally:
        torch.serialization.set_crc32_options(computing)


def _verify(path: Path) -> None:
    # torch.load does not check the records' CRC-32s; zipfile does.
    if zip_without_crcs(path):
        raise CheckpointError(f"{path}: saved without CRC-32 checksums, so it cannot be verified; "
                              "save it again with torch.serialization.set_crc32_options(True)")
    damage = zip_damage(path)
    if damage is not None:
        raise CheckpointError(f"{path}: damaged checkpoint: {damage}")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Verify a checkpoint file (or ``run_dir/checkpoint.pt``) against its checksums, then load it onto the CPU.

    Raises:
        FileNotFoundError: nothing there.
        CheckpointError: (a ValueError) the file fails its checksums, cannot be unpickled,
            or is not a complete zoo checkpoint of this version; the message names the file.
    """
    path = checkpoint_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint")
    _verify(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # intact, but not loadable as plain data (e.g. a pickled object)
        raise CheckpointError(
            f"{path}: not a zoo checkpoint ({one_line(err)})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a zoo checkpoint")
    if checkpoint.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {checkpoint.get('version')}, this zoo reads version {VERSION}")
    missing = [key for key in _REQUIRED if key not in checkpoint]
    if missing:
        raise CheckpointError(f"{path}: incomplete zoo checkpoint (no {', '.join(missing)})")
    return checkpoint


def model_from_checkpoint(checkpoint: dict[str, Any]) -> nn.Module:
    """Rebuild the checkpoint's model with its weights, in eval mode, on the CPU.

    Raises:
        ValueError: the saved weights do not fit the saved model description.
    """
    model = create_model(checkpoint["model"]["name"], **checkpoint["model"]["args"])
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:  # torch lists every mismatched tensor over many lines
        raise ValueError(f"the checkpoint's weights do not fit its model {checkpoint['model']['name']}: "
                         f"{one_line(err)}") from None
    return model.eval()
