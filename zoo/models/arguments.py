"""Model arguments checked against the preset's model class: known names, declared types, sizes that make sense.

A preset's arguments are the dataset-shape arguments (``num_classes``,
``in_channels``, ``input_size``) and the parameters of the model class it returns
(its return annotation), typed by their annotations. Values from Python, config
files and checkpoints are checked strictly (``batch_norm='false'`` is not a bool);
command-line text is converted by the declared type, so ``batch_norm=False`` is
False and ``batch_norm=maybe`` an error. Types are checked with pydantic.
"""

from __future__ import annotations

import functools
import inspect
import json
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoo.models.registry import ModelConfig

__all__ = ["SHAPE_ARGUMENTS", "check_model_args", "parse_model_arg", "preset_arguments"]

# Filled from the dataset unless given; every preset takes them.
SHAPE_ARGUMENTS: dict[str, Any] = {"num_classes": int, "in_channels": int, "input_size": Sequence[int]}
# Constructor parameters a preset computes from the shape arguments (DNN's input width).
_FROM_SHAPE = ("in_features",)


def preset_arguments(preset: Callable[..., Any]) -> dict[str, Any]:
    """``{name: type}`` of the arguments ``preset`` accepts: the shape arguments and its model class's parameters.

    Raises:
        TypeError: ``preset`` does not annotate its return type with the model class.
    """
    model_class = typing.get_type_hints(preset).get("return")
    if not isinstance(model_class, type):
        raise TypeError(f"preset {preset.__name__} must annotate its return type with its model class")
    hints = typing.get_type_hints(model_class.__init__)
    names = [name for name in inspect.signature(model_class).parameters if name not in _FROM_SHAPE]
    return {**SHAPE_ARGUMENTS, **{name: hints[name] for name in names if name not in SHAPE_ARGUMENTS}}


@functools.cache
def _adapter(annotation: Any) -> Any:
    from pydantic import TypeAdapter  # only when checking: keeps `import zoo` light

    return TypeAdapter(annotation)


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("collections.abc.", "").replace("zoo.models.cnn.", "")


def _accepted(config: ModelConfig, key: str) -> Any:
    if key not in config.arguments:
        raise ValueError(f"{config.name} has no model argument {key!r}; it takes {', '.join(sorted(config.arguments))}")
    return config.arguments[key]


def _invalid(model: str, key: str, value: Any, annotation: Any, err: Exception) -> ValueError:
    reason = err.errors()[0]["msg"] if hasattr(err, "errors") else str(err)
    return ValueError(f"{model}: model argument {key}={value!r}: expected {_type_name(annotation)} ({reason})")


def _check_shape(model: str, args: Mapping[str, Any]) -> None:
    for key in ("num_classes", "in_channels"):
        if key in args and args[key] < 1:
            raise ValueError(f"{model}: model argument {key} must be >= 1, got {args[key]}")
    size = args.get("input_size")
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise ValueError(f"{model}: model argument input_size must be [height, width] >= 1, got {list(size)}")


def check_model_args(config: ModelConfig, args: Mapping[str, Any]) -> None:
    """Check ``args`` against the arguments preset ``config`` accepts, by name and exact type.

    Raises:
        ValueError: an unknown name, a value not of the declared type, or a bad shape argument.
    """
    from pydantic import ValidationError

    for key, value in args.items():
        annotation = _accepted(config, key)
        try:
            _adapter(annotation).validate_python(value, strict=True)
        except ValidationError as err:
            raise _invalid(config.name, key, value, annotation, err) from None
    _check_shape(config.name, args)


def parse_model_arg(config: ModelConfig, key: str, text: str) -> Any:
    """The value of ``KEY=TEXT`` from the command line, converted to the argument's declared type.

    ``TEXT`` is read as JSON when it is JSON (``0.5``, ``[200, 200]``, ``true``),
    else as a plain word (``elu``, ``False``); either way it must fit the type.
    Returns plain JSON data (lists, dicts), as a config file would give.

    Raises:
        ValueError: an unknown name, or text that does not fit the type.
    """
    from pydantic import ValidationError

    annotation = _accepted(config, key)
    adapter = _adapter(annotation)
    try:
        json.loads(text)
        is_json = True
    except json.JSONDecodeError:
        is_json = False
    try:
        value = adapter.validate_json(text) if is_json else adapter.validate_python(text)
    except ValidationError as err:
        raise _invalid(config.name, key, text, annotation, err) from None
    return adapter.dump_python(value, mode="json")
