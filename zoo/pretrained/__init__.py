"""Pretrained weights: ``zoo.create_model(name, pretrained=True)``, their manifest, loader and release.

Quick use::

    import zoo
    zoo.list_pretrained()                                         # released tags, PRESET.DATASET
    net = zoo.create_model("mnist_cnn_32_64", pretrained=True)    # checked against its sha256
    net = zoo.create_model("emnist_cnn_2conv", pretrained="fashion-mnist")
    zoo.pretrained.pretrained_tag("mnist_cnn_32_64.mnist").weights["test_accuracy"]

Modules: ``manifest`` (the tags as data, torch-free), ``loading`` (checked loading), ``release``
(``zoo release TAG``: train a tag from its recipe and check or record it), ``cards`` (docs/models.md).
"""

from __future__ import annotations

from zoo.lazy import lazy_names
from zoo.pretrained.manifest import PretrainedTag, list_pretrained, pretrained_tag, read_manifest, resolve_tag, split_tag

__getattr__, __dir__ = lazy_names(__name__, {
    "WeightsError": "zoo.pretrained.loading", "load_state_dict": "zoo.pretrained.loading",
    "tag_state_dict": "zoo.pretrained.loading",
})

__all__ = ["PretrainedTag", "WeightsError", "list_pretrained", "load_state_dict", "pretrained_tag", "read_manifest",
           "resolve_tag", "split_tag", "tag_state_dict"]
