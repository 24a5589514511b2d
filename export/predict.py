"""Classify images with an exported zoo model, using onnxruntime, numpy and Pillow only (no torch).

Normalisation and class names come from the file's metadata (see
:mod:`zoo.export.metadata`). Command line (also ``zoo predict``)::

    python -m zoo.export.predict model.onnx digit.png other.png     # top classes and probabilities
    python -m zoo.export.predict mnist_cnn_32_64.mnist digit.png    # a pretrained tag (torch once, to export it)
    python -m zoo.export.predict model.onnx --dataset               # accuracy on its dataset's test split
    python -m zoo.export.predict model.onnx --dataset fashion-mnist --split test --data-dir DIR

``--dataset`` reads the official files with :mod:`zoo.data`'s array loaders,
which need numpy only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from zoo.command import Command, add_data_dir, add_json, add_split, require_positive
from zoo.export.metadata import INPUT_NAME, ModelInfo, from_props
from zoo.export.session import open_session

__all__ = ["PREDICT", "Classifier", "Prediction", "add_predict_arguments", "main", "model_split", "predict_command",
           "read_image"]


@dataclass(frozen=True)
class Prediction:
    """Top classes of one image: ``(class name, probability)`` pairs, most likely first."""

    source: str
    top: list[tuple[str, float]]


def read_image(path: str | Path, channels: int, size: tuple[int, int]) -> np.ndarray:
    """Read an image file as uint8 ``(C, H, W)``: converted to grayscale (C=1) or RGB (C=3), never resized.

    Raises:
        FileNotFoundError: no file there.
        ValueError: not an image, or not ``size`` = ``(height, width)`` pixels.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no image file")
    try:
        with Image.open(path) as image:
            image = image.convert({1: "L", 3: "RGB"}[channels])
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not an image Pillow can read") from None
    except KeyError:
        raise ValueError(f"models with {channels} input channels take no image files") from None
    if (image.height, image.width) != tuple(size):
        # Resizing would change what the model sees (MNIST digits are centred in 28x28): refuse instead.
        raise ValueError(f"{path}: image is {image.width}x{image.height}, the model takes {size[1]}x{size[0]} images")
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class Classifier:
    """An exported zoo classifier in an onnxruntime session.

    Args:
        path: the ``.onnx`` file written by ``zoo export``.
        provider: onnxruntime execution provider.

    Raises:
        FileNotFoundError: no file there.
        ValueError: not a loadable ONNX model, or it lacks zoo's metadata.
    """

    def __init__(self, path: str | Path, provider: str = "CPUExecutionProvider") -> None:
        self.path = Path(path)
        self.session = open_session(self.path, provider)
        self.info: ModelInfo = from_props(self.session.get_modelmeta().custom_metadata_map, source=str(self.path))
        mean = np.asarray(self.info.mean, dtype=np.float32).reshape(-1, 1, 1)
        std = np.asarray(self.info.std, dtype=np.float32).reshape(-1, 1, 1)
        self._mean, self._std = mean, std

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """uint8 ``(N, C, H, W)`` pixels -> the float32 input the model was trained on: ``(x/255 - mean)/std``.

        Raises:
            ValueError: not uint8 or not the model's ``(C, H, W)``.
        """
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != self.info.input_shape:
            raise ValueError(
                f"expected uint8 images of shape (N, {', '.join(map(str, self.info.input_shape))}), "
                f"got {images.dtype} {images.shape}"
            )
        # Same arithmetic, in the same float32 order, as zoo.data.normalize.
        return (images.astype(np.float32) / np.float32(255.0) - self._mean) / self._std

    def logits(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Logits ``(N, classes)`` of uint8 images ``(N, C, H, W)``, run ``batch_size`` at a time."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        parts = [
            self.session.run(None, {INPUT_NAME: self.preprocess(images[i:i + batch_size])})[0]
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.info.classes)), np.float32)

    def predict_files(self, paths: Sequence[str | Path], top_k: int = 3) -> list[Prediction]:
        """The ``top_k`` classes (at least 1) and softmax probabilities of each image file."""
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        channels, height, width = self.info.input_shape
        images = np.stack([read_image(p, channels, (height, width)) for p in paths])
        probabilities = _softmax(self.logits(images))
        k = min(top_k, len(self.info.classes))
        return [
            Prediction(str(path), [(self.info.classes[i], float(row[i])) for i in np.argsort(-row, kind="stable")[:k]])
            for path, row in zip(paths, probabilities)
        ]

    def accuracy(self, images: np.ndarray, labels: np.ndarray, batch_size: int = 256) -> float:
        """Top-1 accuracy on uint8 images and integer labels."""
        if len(images) == 0:
            raise ValueError("no images to evaluate")
        return float((self.logits(images, batch_size).argmax(axis=1) == np.asarray(labels)).mean())


def model_split(info: ModelInfo, dataset: str | None = None, split: str = "test",
                data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images ``(N, C, H, W)`` and int64 labels of a dataset split, read with zoo's loaders.

    ``dataset`` defaults to the model's; another one must have the same image
    shape and class count. ``val``/``train`` hold out ``info.val_size`` images
    as training did.

    Raises:
        ValueError: unknown dataset, mismatched shape/classes, bad split.
        FileNotFoundError: the dataset's files are missing.
    """
    # zoo.data's split loader is numpy-only (its torch-side names load lazily).
    from zoo.data import load_split, matching_dataset

    name = dataset or info.dataset
    matching_dataset(name, info.input_shape, len(info.classes), "the model's")
    # The training run's held-out images are only meaningful on its own dataset.
    val_size = info.val_size if name == info.dataset else None
    images, labels = load_split(name, split, root=data_dir, val_size=val_size)
    return np.asarray(images), np.asarray(labels)


def _onnx_file(model: str) -> Path:
    """``model`` itself, or for a released pretrained tag (not a file) its cached ONNX export."""
    from zoo.pretrained.manifest import list_pretrained  # torch-free

    if Path(model).exists() or model not in list_pretrained():
        return Path(model)
    from zoo.export.pretrained import pretrained_onnx  # exports with torch on first use

    return pretrained_onnx(model)


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the prediction options (shared by ``zoo predict`` and ``python -m zoo.export.predict``)."""
    parser.add_argument("model", help="the .onnx file written by `zoo export`, or a pretrained tag such as "
                        "mnist_cnn_32_64.mnist (exported to ONNX once, on first use)")
    parser.add_argument("images", nargs="*", metavar="IMAGE",
                        help="image files of the model's size (grayscale or RGB as the model takes)")
    parser.add_argument("--dataset", nargs="?", const="", metavar="NAME",
                        help="report accuracy on a dataset split instead (no NAME: the model's own dataset)")
    add_split(parser)
    add_data_dir(parser)
    parser.add_argument("--top-k", type=int, default=3, help="classes shown per image (default: 3)")
    parser.add_argument("--batch-size", type=int, default=256, help="default: 256")
    parser.add_argument("--provider", default="CPUExecutionProvider",
                        help="onnxruntime execution provider (default: CPUExecutionProvider)")
    add_json(parser)


def predict_command(args: argparse.Namespace) -> int:
    """Carry out a parsed prediction command; returns the exit status."""
    if bool(args.images) == (args.dataset is not None):
        raise ValueError("give IMAGE files or --dataset (one of the two)")
    require_positive(args, "top_k", "batch_size")
    classifier = Classifier(_onnx_file(args.model), args.provider)
    if args.images:
        predictions = classifier.predict_files(args.images, args.top_k)
        if args.json:
            print(json.dumps([{"image": p.source, "top": [{"class": c, "probability": q} for c, q in p.top]}
                              for p in predictions]))
        else:
            for p in predictions:
                print(f"{p.source}: " + "  ".join(f"{c} ({q:.4f})" for c, q in p.top))
        return 0
    name = args.dataset or classifier.info.dataset
    images, labels = model_split(classifier.info, name, args.split, args.data_dir)
    accuracy = classifier.accuracy(images, labels, args.batch_size)
    if args.json:
        print(json.dumps({"model": str(args.model), "dataset": name, "split": args.split,
                          "accuracy": accuracy, "samples": len(labels)}))
    else:
        print(f"{args.model} on {name} {args.split}: accuracy {accuracy:.4f}  ({len(labels)} images, onnxruntime)")
    return 0


PREDICT = Command(
    "predict", "classify images with an exported model or a pretrained tag (onnxruntime only)",
    "Classify image files, or measure accuracy on a dataset split, with an exported .onnx file (or a pretrained "
    "tag, exported once on first use) in onnxruntime; "
    "normalisation and class names come from the file's metadata. `python -m zoo.export.predict` does the same "
    "without loading torch.", add_predict_arguments, predict_command,
)


def main(argv: list[str] | None = None) -> int:
    """``python -m zoo.export.predict``: like ``zoo predict``, without loading torch."""
    parser = argparse.ArgumentParser(prog="python -m zoo.export.predict",
                                     description="Classify images with an exported zoo model (onnxruntime only).")
    add_predict_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return predict_command(args)
    except (ValueError, FileNotFoundError, ImportError) as err:
        print(f"zoo predict: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
