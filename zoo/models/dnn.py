"""DNN: a fully connected network (multilayer perceptron) of any depth and widths."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

import zoo.nn
from zoo.models.layers import init_weights, make_activation, width_factor

__all__ = ["DNN"]


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
        dropout_hidden: dropout rate after each hidden activation.
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
        factor = width_factor(activation, pieces)
        layers: list[nn.Module] = [nn.Flatten()]
        if dropout_input > 0:
            layers.append(nn.Dropout(dropout_input))
        width_in = in_features
        for width in hidden:
            layers.append(nn.Linear(width_in, width * factor))
            if batch_norm:
                layers.append(zoo.nn.BatchNorm1d(width * factor))
            layers.append(make_activation(activation, alpha, pieces))
            if dropout_hidden > 0:
                layers.append(nn.Dropout(dropout_hidden))
            width_in = width
        layers.append(nn.Linear(width_in, num_classes))
        super().__init__(*layers)
        init_weights(self, init, init_std)
