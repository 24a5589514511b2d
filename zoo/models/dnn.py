"""DNN: a fully connected network (multilayer perceptron) of any depth and widths, and its presets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

import zoo.nn
from zoo.models.layers import check_rates, check_widths, init_weights, normalized_activation, width_factor
from zoo.models.registry import register_model

__all__ = ["DNN"]  # and its presets, registered below


class DNN(nn.Sequential):
    """Flatten -> [dropout] -> (Linear -> [BatchNorm1d] -> activation -> [dropout]) per hidden layer -> Linear.

    Args:
        in_features: inputs per sample after flattening (e.g. 1*28*28).
        num_classes: outputs (logits).
        hidden: widths of the hidden layers; ``()`` gives a linear classifier.
        activation: ``'relu'``, ``'leaky_relu'``, ``'elu'``, ``'selu'`` or ``'maxout'``
            (see :func:`zoo.models.layers.make_activation`). With maxout each
            hidden Linear has ``pieces * width`` outputs.
        alpha: LeakyReLU slope / ELU alpha.
        pieces: maxout pieces.
        batch_norm: a :class:`zoo.nn.BatchNorm1d` after each hidden Linear (before the activation).
        dropout_input: dropout rate on the (flattened) input.
        dropout_hidden: dropout rate after each hidden activation (dropout is :class:`zoo.nn.Dropout`).
        init: ``'default'`` (torch), ``'he'`` or ``'normal'`` (N(0, init_std^2)).
        init_std: sigma for ``init='normal'``.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: Sequence[int] = (100,),
        activation: str = "relu",
        alpha: float | None = None,
        pieces: int = 2,
        batch_norm: bool = False,
        dropout_input: float = 0.0,
        dropout_hidden: float = 0.0,
        init: str = "default",
        init_std: float = 0.01,
    ) -> None:
        check_widths("hidden", hidden)
        check_rates(dropout_input=dropout_input, dropout_hidden=dropout_hidden)
        factor = width_factor(activation, pieces)
        layers: list[nn.Module] = [nn.Flatten()]
        if dropout_input > 0:
            layers.append(zoo.nn.Dropout(dropout_input))
        width_in = in_features
        for width in hidden:
            layers.append(zoo.nn.Linear(width_in, width * factor))
            layers += normalized_activation(width * factor, batch_norm, activation, alpha, pieces, dims=1)
            if dropout_hidden > 0:
                layers.append(zoo.nn.Dropout(dropout_hidden))
            width_in = width
        layers.append(zoo.nn.Linear(width_in, num_classes))
        super().__init__(*layers)
        init_weights(self, init, init_std)


# ---------------------------------------------------------------- presets

# Recommended recipes: reasonable starting points, not tuned results.
_SGD_RECIPE = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "batch_size": 128, "epochs": 30}
# The kmlp study's recipe: L2 0.005 (weight decay 0.01), two triangular cycles; step 5 epochs = 5 x 450 batches of 100.
_CYCLIC_RECIPE = {"optimizer": "sgd", "batch_size": 100, "epochs": 20, "schedule": "cyclic", "lr_min": 1e-5,
                  "lr_max": 0.1, "step_size": 5 * 450, "weight_decay": 0.01}


def _create_dnn(preset_args: dict[str, Any], num_classes: int, in_channels: int, input_size: Sequence[int],
                **overrides: Any) -> DNN:
    # The one place the dataset's shape becomes DNN arguments; the caller's overrides win over the preset's.
    height, width = input_size
    return DNN(in_channels * height * width, num_classes, **{**preset_args, **overrides})


@register_model("emnist-balanced", recipe=_SGD_RECIPE)
def emnist_dnn_2x100(**kwargs: Any) -> DNN:
    """EMNIST Balanced MLP, two hidden layers of 100."""
    return _create_dnn({"hidden": (100, 100)}, **kwargs)


@register_model("emnist-balanced", recipe=_SGD_RECIPE)
def emnist_dnn_4x100(**kwargs: Any) -> DNN:
    """EMNIST Balanced MLP, four hidden layers of 100."""
    return _create_dnn({"hidden": (100, 100, 100, 100)}, **kwargs)


@register_model("mnist", recipe=_SGD_RECIPE)
def mnist_mlp_1024_512(**kwargs: Any) -> DNN:
    """MNIST MLP, hidden layers of 1024 and 512."""
    return _create_dnn({"hidden": (1024, 512)}, **kwargs)


@register_model("cifar10", recipe=_CYCLIC_RECIPE)
def cifar10_mlp_3layer(**kwargs: Any) -> DNN:
    """CIFAR-10 3-layer MLP: hidden layers 50-50, then the classifier; He init."""
    return _create_dnn({"hidden": (50, 50), "init": "he"}, **kwargs)


@register_model("cifar10", recipe=_CYCLIC_RECIPE)
def cifar10_mlp_9layer(**kwargs: Any) -> DNN:
    """CIFAR-10 9-layer MLP: hidden layers 50-30-20-20-10-10-10-10, then the classifier; He init."""
    return _create_dnn({"hidden": (50, 30, 20, 20, 10, 10, 10, 10), "init": "he"}, **kwargs)
