"""Evaluate a saved checkpoint on any split, with only the checkpoint file as input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.data import ImageDataset, load_split, matching_dataset
from zoo.train.checkpoint import load_checkpoint, model_from_checkpoint
from zoo.train.device import resolve_device
from zoo.train.loop import EvalResult, eval_batches, evaluate

__all__ = ["evaluate_checkpoint"]


def evaluate_checkpoint(
    path: str | Path,
    dataset: str | None = None,
    split: str = "test",
    data_dir: str | None = None,
    batch_size: int = 1000,
    max_batches: int | None = None,
    device: str = "cpu",
) -> tuple[EvalResult, dict[str, Any]]:
    """Rebuild the checkpoint's model and evaluate it.

    Args:
        path: a checkpoint file or a run directory.
        dataset: defaults to the dataset it was trained on; another one must
            have the same image shape and number of classes. Images are
            normalised with the checkpoint's mean/std either way.
        split: ``'test'``, ``'val'`` or ``'train'`` (val/train use the training
            run's ``val_size`` so they are the same images it saw).

    Returns:
        ``(result, checkpoint)``; the checkpoint dict holds the model and run details.
    """
    target = resolve_device(device)  # before the slow loading
    checkpoint = load_checkpoint(path)
    data = checkpoint["data"]
    name = dataset or data["dataset"]
    info = matching_dataset(name, (data["in_channels"], *data["image_size"]), len(data["classes"]),
                            f"the checkpoint's dataset {data['dataset']}")
    val_size = checkpoint["train_config"]["val_size"] if name == data["dataset"] else None
    # The model expects the normalisation it was trained with.
    images = ImageDataset(*load_split(name, split, root=data_dir, val_size=val_size), data["mean"], data["std"],
                          classes=info.classes)
    model = model_from_checkpoint(checkpoint).to(target)
    batches = eval_batches(images, batch_size, max_batches)
    return evaluate(model, batches, info.num_classes, target), checkpoint
