"""The pretrained weight sets as data: ``manifest.json`` beside this file, read without torch.

Each weight set is named ``PRESET.DATASET`` (timm's ``model.tag``), e.g. ``mnist_cnn_32_64.mnist``. Its
entry holds the training settings that produce it (``train``: the identifying fields of
:class:`zoo.train.TrainConfig`) and, once released, its ``weights``: the file (a state_dict saved with
``torch.save``, named ``TAG-SHA256[:8].pt`` as torch.hub expects), sha256, size, parameters, FLOPs, the
accuracy measured at release, the training command, seed, torch version, train time, machine and date.
A tag without ``weights`` is a recipe only (e.g. one that needs a GPU: ``requires: "cuda"``).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST_PATH", "WEIGHTS_DIR", "PretrainedTag", "list_pretrained", "manifest_text", "pretrained_tag",
           "read_manifest", "resolve_tag", "split_tag"]

MANIFEST_PATH = Path(__file__).with_name("manifest.json")
WEIGHTS_DIR = Path(__file__).with_name("weights")
FORMAT = "zoo-pretrained"
VERSION = 1


@dataclass(frozen=True)
class PretrainedTag:
    """One weight set of the manifest.

    Attributes:
        tag: ``PRESET.DATASET``.
        model, dataset: the preset and the dataset it was trained on.
        train: the identifying :class:`zoo.train.TrainConfig` fields that train it.
        requires: ``"cuda"`` when the recipe needs a GPU, else None.
        weights: the released file's metadata (see the module docstring), or None for a recipe only.
        note: a line for the model card (e.g. why a recipe has no weights yet).
    """

    tag: str
    model: str
    dataset: str
    train: Mapping[str, Any]
    requires: str | None = None
    weights: Mapping[str, Any] | None = None
    note: str = ""

    @property
    def released(self) -> bool:
        """Whether weights were released for this tag."""
        return self.weights is not None

    def to_dict(self) -> dict[str, Any]:
        """The manifest entry (without its tag, which is its key)."""
        entry: dict[str, Any] = {"train": dict(self.train)}
        if self.requires:
            entry["requires"] = self.requires
        if self.note:
            entry["note"] = self.note
        entry["weights"] = dict(self.weights) if self.weights is not None else None
        return entry


def split_tag(tag: str) -> tuple[str, str]:
    """``'PRESET.DATASET'`` -> ``('PRESET', 'DATASET')``.

    Raises:
        ValueError: not of that form.
    """
    model, sep, dataset = tag.partition(".")
    if not sep or not model or not dataset:
        raise ValueError(f"a pretrained tag is PRESET.DATASET (e.g. mnist_cnn_32_64.mnist), got {tag!r}")
    return model, dataset


def read_manifest(path: str | Path | None = None) -> dict[str, PretrainedTag]:
    """Every tag of the manifest at ``path`` (default :data:`MANIFEST_PATH`), in the manifest's order.

    Raises:
        ValueError: the file is not a zoo pretrained manifest of this version.
    """
    path = MANIFEST_PATH if path is None else path  # looked up per call: tests point it elsewhere
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
        raise ValueError(f"{path}: not a zoo pretrained manifest (format {FORMAT!r}, version {VERSION})")
    tags = {}
    for tag, entry in data["tags"].items():
        model, dataset = split_tag(tag)
        tags[tag] = PretrainedTag(tag, model, dataset, entry["train"], entry.get("requires"), entry.get("weights"),
                                  entry.get("note", ""))
    return tags


def manifest_text(tags: Mapping[str, PretrainedTag]) -> str:
    """The manifest file's text for ``tags`` (sorted by tag, so diffs stay small)."""
    data = {"format": FORMAT, "version": VERSION, "tags": {tag: tags[tag].to_dict() for tag in sorted(tags)}}
    return json.dumps(data, indent=1) + "\n"


def list_pretrained(pattern: str = "*", released: bool = True) -> list[str]:
    """Sorted tags matching a shell-style ``pattern`` (``'mnist_*'``, ``'*.fashion-mnist'``); with
    ``released=False`` the recipe-only tags too."""
    return sorted(tag for tag, entry in read_manifest().items()
                  if fnmatch.fnmatch(tag, pattern) and (entry.released or not released))


def pretrained_tag(tag: str) -> PretrainedTag:
    """The manifest entry of ``tag``.

    Raises:
        ValueError: no such tag (the message lists the preset's tags, if it has any).
    """
    tags = read_manifest()
    if tag in tags:
        return tags[tag]
    model = tag.partition(".")[0]
    known = [t for t in tags if t.partition(".")[0] == model]
    hint = f"{model} has {', '.join(known)}" if known else "`zoo list --pretrained` shows them"
    raise ValueError(f"no pretrained weights {tag!r}; {hint}")


def resolve_tag(name: str, pretrained: bool | str, dataset: str | None, preset_dataset: str) -> str:
    """The tag that ``create_model(name, dataset=dataset, pretrained=pretrained)`` asks for.

    ``pretrained=True`` means ``name.dataset`` when ``dataset`` is given, else the tag on the preset's
    own dataset if it was released, else the preset's first released tag in sorted order. A string is a
    full tag (``'emnist_cnn_2conv.mnist'``) or its dataset part (``'mnist'``).

    Raises:
        ValueError: the tag names another preset or dataset, or the preset has no released weights.
    """
    if isinstance(pretrained, str):
        tag = pretrained if "." in pretrained else f"{name}.{pretrained}"
    elif dataset is not None:
        tag = f"{name}.{dataset}"
    else:
        # Recipe-only tags count when nothing is released: loading one says how to make its weights.
        candidates = list_pretrained(f"{name}.*") or list_pretrained(f"{name}.*", released=False)
        own = f"{name}.{preset_dataset}"
        if not candidates:
            raise ValueError(f"no pretrained weights for {name!r}; `zoo list --pretrained` shows the tags")
        tag = own if own in candidates else candidates[0]
    model, tag_dataset = split_tag(tag)
    if model != name:
        raise ValueError(f"pretrained tag {tag!r} is for {model!r}, not {name!r}")
    if dataset is not None and tag_dataset != dataset:
        raise ValueError(f"pretrained tag {tag!r} was trained on {tag_dataset}, not dataset={dataset!r}")
    return tag
