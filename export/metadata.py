"""What an exported model says about itself: the ``metadata_props`` of the ONNX file.

Every value is a string; lists and numbers are JSON. Keys (all prefixed ``zoo.``)::

    zoo.model         preset name, e.g. "mnist_cnn"
    zoo.model_args    JSON object: the create_model arguments
    zoo.dataset       dataset it was trained on (or designed for, when untrained)
    zoo.classes       JSON list of class names, indexed by logit
    zoo.mean/zoo.std  JSON lists: per-channel normalisation of [0, 1] pixels
    zoo.input_shape   JSON [C, H, W] (the batch dimension is dynamic)
    zoo.val_size      JSON int or null: validation images held out of train
    zoo.epochs        JSON int: epochs trained (0: an untrained preset)
    zoo.bn_folded     "true"/"false": batch norm folded into the convolutions
    zoo.version       zoo version that wrote the file

Input: float32 ``(N, C, H, W)`` named ``input``, pixels scaled to [0, 1] then
``(x - mean) / std`` per channel. Output: ``logits`` ``(N, len(classes))``.

This module imports neither torch nor onnx, so that prediction needs only onnxruntime.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "PREFIX", "ModelInfo", "from_props", "to_props"]

PREFIX = "zoo."
INPUT_NAME = "input"  # the graph's input and output names
OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class ModelInfo:
    """The facts an exported classifier carries (see the module docstring for the keys).

    Attributes:
        model: preset name.
        dataset: training dataset (or the preset's own dataset when untrained).
        classes: class names indexed by logit.
        mean, std: per-channel normalisation of ``[0, 1]`` pixels.
        input_shape: ``(C, H, W)``.
        model_args: ``create_model`` arguments.
        val_size: validation images held out of the training split (None: the dataset's default).
        epochs: epochs trained; 0 for an untrained preset.
        bn_folded: whether batch norm was folded into the preceding layers.
        version: zoo version that exported it.
    """

    model: str
    dataset: str
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_shape: tuple[int, int, int]
    model_args: Mapping[str, Any] = field(default_factory=dict)
    val_size: int | None = None
    epochs: int = 0
    bn_folded: bool = False
    version: str = ""

    def __post_init__(self) -> None:
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ValueError(f"input_shape must be (C, H, W), got {self.input_shape}")
        channels = self.input_shape[0]
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(f"mean/std need {channels} values, got {len(self.mean)}/{len(self.std)}")
        if not self.classes:
            raise ValueError("classes must not be empty")


def to_props(info: ModelInfo) -> dict[str, str]:
    """``ModelInfo`` -> ``{key: string}`` for ``ModelProto.metadata_props``."""
    values: dict[str, Any] = {
        "model": info.model,
        "model_args": dict(info.model_args),
        "dataset": info.dataset,
        "classes": list(info.classes),
        "mean": list(info.mean),
        "std": list(info.std),
        "input_shape": list(info.input_shape),
        "val_size": info.val_size,
        "epochs": info.epochs,
        "bn_folded": info.bn_folded,
        "version": info.version,
    }
    # Plain strings stay plain (readable in Netron); everything else is JSON.
    return {PREFIX + k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def from_props(props: Mapping[str, str], source: str = "model") -> ModelInfo:
    """Parse ``metadata_props`` (e.g. onnxruntime's ``custom_metadata_map``) back into a :class:`ModelInfo`.

    Raises:
        ValueError: a key is missing or malformed (the file was not written by ``zoo export``).
    """
    def get(key: str, parse: bool = True) -> Any:
        try:
            text = props[PREFIX + key]
            return json.loads(text) if parse else text
        except KeyError:
            raise ValueError(f"{source}: no {PREFIX}{key} metadata; was it written by `zoo export`?") from None
        except json.JSONDecodeError as err:
            raise ValueError(f"{source}: malformed {PREFIX}{key} metadata: {err}") from None

    raw = {key: get(key, parse=key not in ("model", "dataset", "version"))
           for key in ("model", "dataset", "classes", "mean", "std", "input_shape", "model_args", "val_size",
                       "epochs", "bn_folded", "version")}
    try:
        return ModelInfo(
            model=raw["model"],
            dataset=raw["dataset"],
            classes=tuple(str(c) for c in raw["classes"]),
            mean=tuple(float(v) for v in raw["mean"]),
            std=tuple(float(v) for v in raw["std"]),
            input_shape=tuple(int(v) for v in raw["input_shape"]),  # type: ignore[arg-type]
            model_args=dict(raw["model_args"]),
            val_size=None if raw["val_size"] is None else int(raw["val_size"]),
            epochs=int(raw["epochs"]),
            bn_folded=bool(raw["bn_folded"]),
            version=raw["version"],
        )
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source}: malformed zoo metadata: {err}") from None
