"""Model registry in the style of timm: ``@register_model``, ``list_models``, ``create_model``."""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from torch import nn

from zoo.data import dataset_info
from zoo.models.arguments import check_model_args, preset_arguments

__all__ = ["ModelConfig", "register_model", "list_models", "model_config", "create_model"]


@dataclass(frozen=True)
class ModelConfig:
    """What a preset was designed for.

    Attributes:
        name: registry name.
        dataset: the dataset the preset was designed for (see :func:`zoo.data.dataset_info`).
        num_classes, in_channels, input_size: its default output count, image
            channels and ``(height, width)``, taken from that dataset.
        mean, std: per-channel normalisation of that dataset (inputs are
            normalised by the data loader, not by the model).
        recipe: recommended training settings, as :class:`zoo.train.TrainConfig`
            field values (a starting point, not a tuned result).
        description: the first line of the preset's docstring.
        arguments: ``{name: type}`` of the arguments it accepts (see :mod:`zoo.models.arguments`).
    """

    name: str
    dataset: str
    num_classes: int
    in_channels: int
    input_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    recipe: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    arguments: Mapping[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, tuple[Callable[..., nn.Module], ModelConfig]] = {}


def register_model(
    dataset: str, recipe: Mapping[str, Any] | None = None
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a preset under its function name.

    The function must accept ``num_classes``, ``in_channels`` and
    ``input_size`` (filled from ``dataset`` unless overridden) plus any
    architecture overrides, and return the model; its return annotation names the
    model class, whose parameters are the overrides :func:`create_model` accepts::

        @register_model("mnist", recipe={"optimizer": "adam", "lr": 1e-3})
        def mnist_tiny(num_classes, in_channels, input_size, **overrides) -> DNN:
            \"\"\"A tiny MLP.\"\"\"
            return DNN(in_channels * input_size[0] * input_size[1], num_classes, (32,), **overrides)
    """
    info = dataset_info(dataset)

    def decorate(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = fn.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        config = ModelConfig(
            name=name,
            dataset=info.name,
            num_classes=info.num_classes,
            in_channels=info.in_channels,
            input_size=info.image_size,
            mean=info.mean,
            std=info.std,
            recipe=MappingProxyType(dict(recipe or {})),
            description=(inspect.getdoc(fn) or "").split("\n")[0],
            arguments=MappingProxyType(preset_arguments(fn)),
        )
        _REGISTRY[name] = (fn, config)
        return fn

    return decorate


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered presets matching a shell-style ``pattern`` (e.g. ``'nin_*'``)."""
    return sorted(name for name in _REGISTRY if fnmatch.fnmatch(name, pattern))


def _lookup(name: str) -> tuple[Callable[..., nn.Module], ModelConfig]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; `zoo list` shows the {len(_REGISTRY)} presets") from None


def model_config(name: str) -> ModelConfig:
    """Return the :class:`ModelConfig` of preset ``name``."""
    return _lookup(name)[1]


def _is_file_source(text: str) -> bool:
    # A URL or a path, as opposed to a tag ('mnist', 'emnist_cnn_2conv.mnist').
    return "://" in text or "/" in text or "\\" in text or text.endswith((".pt", ".pth"))


def create_model(name: str, dataset: str | None = None, pretrained: bool | str = False, **overrides: Any) -> nn.Module:
    """Build preset ``name``, optionally with pretrained weights.

    Args:
        name: a name from :func:`list_models`, or a pretrained tag ``PRESET.DATASET``
            (from :func:`zoo.list_pretrained`; then ``pretrained`` defaults to that tag).
        dataset: build for this dataset instead (its classes, channels and image
            size), e.g. ``create_model('nin_relu', dataset='mnist')``.
        pretrained: ``True`` loads the preset's default released weights (those on
            ``dataset`` when given, else on the preset's own dataset, else its first tag);
            a string is a tag (``'emnist_cnn_2conv.mnist'``), a tag's dataset part
            (``'fashion-mnist'``), or a weight file's path or URL (``file://`` too), loaded
            through torch.hub with its hash check. Weights are checked before loading
            (see :mod:`zoo.pretrained.loading`); the model is returned in training mode, as any
            ``nn.Module``: call ``.eval()`` to predict.
        **overrides: ``num_classes``, ``in_channels``, ``input_size`` and any
            argument of the preset's model class (``batch_norm=True``,
            ``activation='elu'``, ``hidden=(200, 200)``, ...).

    Raises:
        ValueError: an unknown preset, tag or argument, a value of the wrong type or size,
            or weights that are missing, fail their checksum or do not fit the model.
    """
    if "." in name and name not in _REGISTRY:  # a tag: PRESET.DATASET
        name, tag_dataset = name.split(".", 1)
        pretrained = pretrained if isinstance(pretrained, str) else f"{name}.{tag_dataset}"
    fn, config = _lookup(name)
    state = None
    if pretrained:
        from zoo import pretrained as weights  # loaded on demand: torch.hub and the manifest

        if isinstance(pretrained, str) and _is_file_source(pretrained):
            state = weights.load_state_dict(pretrained)
        else:
            entry = weights.pretrained_tag(weights.resolve_tag(name, pretrained, dataset, config.dataset))
            state = weights.tag_state_dict(entry)
            dataset = entry.dataset
            overrides = {**entry.train.get("model_args", {}), **overrides}  # the architecture it was trained as
    check_model_args(config, overrides)
    info = dataset_info(dataset or config.dataset)
    kwargs: dict[str, Any] = {
        "num_classes": info.num_classes,
        "in_channels": info.in_channels,
        "input_size": info.image_size,
    }
    kwargs.update(overrides)
    kwargs["input_size"] = tuple(kwargs["input_size"])  # JSON gives lists
    model = fn(**kwargs)
    if state is not None:
        try:
            model.load_state_dict(state)
        except RuntimeError as err:  # torch lists every mismatched tensor over many lines
            raise ValueError(f"the pretrained weights do not fit {name} as built here: "
                             f"{' '.join(str(err).split())[:300]}") from None
    return model
