"""Network in Network (Lin, Chen & Yan 2014) for CIFAR-10-sized images, and its presets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

import zoo.nn
from zoo.models.layers import check_rates, init_weights, normalized_activation, width_factor
from zoo.models.registry import register_model

__all__ = ["NIN"]  # and its presets nin_<activation>[_bn][_he], registered below

# (out channels, kernel) of each conv in the three mlpconv blocks; None = num_classes.
_BLOCKS: tuple[tuple[tuple[int | None, int], ...], ...] = (
    ((192, 5), (160, 1), (96, 1)),
    ((192, 5), (192, 1), (192, 1)),
    ((192, 3), (192, 1), (None, 1)),
)


class NIN(nn.Module):
    """Three mlpconv blocks and global average pooling.

    Block 1: 5x5 conv 192 -> 1x1 160 -> 1x1 96, 3x3 max-pool stride 2, dropout.
    Block 2: 5x5 conv 192 -> 1x1 192 -> 1x1 192, 3x3 max-pool stride 2, dropout.
    Block 3: 3x3 conv 192 -> 1x1 192 -> 1x1 ``num_classes``, global average pool.

    Convs keep the spatial size (5x5 padding 2, 3x3 padding 1); the pools use
    ``padding=1`` (not ``ceil_mode``), so 32x32 -> 16x16 -> 8x8. Every conv but
    the last is followed by [BatchNorm2d] and the activation; the last 1x1 conv
    gives the class maps directly (no BN, no activation), and their spatial
    average is the logits. Any input size works thanks to the global pool.
    Convs are :class:`zoo.nn.Conv2d`, batch norm :class:`zoo.nn.BatchNorm2d`, pools :class:`zoo.nn.MaxPool2d`,
    dropout :class:`zoo.nn.Dropout`;
    with ``activation='maxout'`` each conv but the last has ``pieces`` times
    more outputs and the maximum is taken over the pieces.

    Args:
        num_classes: outputs (logits).
        in_channels: image channels.
        activation: ``'relu'``, ``'leaky_relu'``, ``'elu'``, ``'selu'`` or ``'maxout'``.
        alpha: LeakyReLU slope / ELU alpha.
        pieces: maxout pieces.
        batch_norm: BatchNorm2d after each conv but the last.
        dropout: dropout rate after the first two blocks.
        init: ``'default'`` (torch), ``'he'`` or ``'normal'``.
        init_std: sigma for ``init='normal'``.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        activation: str = "relu",
        alpha: float | None = None,
        pieces: int = 2,
        batch_norm: bool = False,
        dropout: float = 0.5,
        init: str = "default",
        init_std: float = 0.01,
    ) -> None:
        super().__init__()
        check_rates(dropout=dropout)
        factor = width_factor(activation, pieces)
        layers: list[nn.Module] = []
        channels = in_channels
        for index, block in enumerate(_BLOCKS):
            for out, kernel in block:
                if out is None:  # the classifier conv: plain class maps
                    layers.append(zoo.nn.Conv2d(channels, num_classes, kernel, padding=kernel // 2))
                    continue
                layers.append(zoo.nn.Conv2d(channels, out * factor, kernel, padding=kernel // 2))
                layers += normalized_activation(out * factor, batch_norm, activation, alpha, pieces, dims=2)
                channels = out
            if index < len(_BLOCKS) - 1:
                layers += [zoo.nn.MaxPool2d(3, stride=2, padding=1), zoo.nn.Dropout(dropout)]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.net = nn.Sequential(*layers)
        init_weights(self, init, init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for images ``(N, C, H, W)``."""
        return self.net(x)


# ---------------------------------------------------------------- presets: nin_<activation>[_bn][_he]

_SHARED_RECIPE = {
    "optimizer": "sgd", "momentum": 0.9, "weight_decay": 1e-4, "batch_size": 128,
    "epochs": 120, "schedule": "step", "milestones": [60, 90], "augment": True,
}
_RECIPE = {**_SHARED_RECIPE, "lr": 0.01}
_BN_RECIPE = {**_SHARED_RECIPE, "lr": 0.1}  # batch norm tolerates a 10x larger learning rate


def _create_nin(preset_args: dict[str, Any], num_classes: int, in_channels: int, input_size: Sequence[int],
                **overrides: Any) -> NIN:
    # The one place the dataset's shape becomes NIN arguments; the caller's overrides win over the preset's.
    del input_size  # global average pooling: NIN works at any image size
    return NIN(num_classes, in_channels, **{**preset_args, **overrides})


@register_model("cifar10", recipe=_RECIPE)
def nin_relu(**kwargs: Any) -> NIN:
    """Network in Network for CIFAR-10: relu, batch norm off, torch default init."""
    return _create_nin({"activation": "relu"}, **kwargs)


@register_model("cifar10", recipe=_RECIPE)
def nin_relu_he(**kwargs: Any) -> NIN:
    """Network in Network for CIFAR-10: relu, batch norm off, He init."""
    return _create_nin({"activation": "relu", "init": "he"}, **kwargs)


@register_model("cifar10", recipe=_BN_RECIPE)
def nin_relu_bn(**kwargs: Any) -> NIN:
    """Network in Network for CIFAR-10: relu, batch norm on, torch default init."""
    return _create_nin({"activation": "relu", "batch_norm": True}, **kwargs)


@register_model("cifar10", recipe=_BN_RECIPE)
def nin_relu_bn_he(**kwargs: Any) -> NIN:
    """Network in Network for CIFAR-10: relu, batch norm on, He init."""
    return _create_nin({"activation": "relu", "batch_norm": True, "init": "he"}, **kwargs)


@register_model("cifar10", recipe=_RECIPE)
def nin_elu(**kwargs: Any) -> NIN:
    """Network in Network for CIFAR-10: elu, batch norm off, torch default init."""
    return _create_nin({"activation": "elu"}, **kwargs)


@register_model("cifar10", recipe=_RECIPE)
def nin_elu_he(**kwargs: Any) -> NIN:
    """Network in Network for CIFAR-10: elu, batch norm off, He init."""
    return _create_nin({"activation": "elu", "init": "he"}, **kwargs)


@register_model("cifar10", recipe=_BN_RECIPE)
def nin_elu_bn(**kwargs: Any) -> NIN:
    """Network in Network for CIFAR-10: elu, batch norm on, torch default init."""
    return _create_nin({"activation": "elu", "batch_norm": True}, **kwargs)


@register_model("cifar10", recipe=_BN_RECIPE)
def nin_elu_bn_he(**kwargs: Any) -> NIN:
    """Network in Network for CIFAR-10: elu, batch norm on, He init."""
    return _create_nin({"activation": "elu", "batch_norm": True, "init": "he"}, **kwargs)


@register_model("cifar10", recipe=_RECIPE)
def nin_leaky(**kwargs: Any) -> NIN:
    """Network in Network for CIFAR-10: leaky_relu, batch norm off, torch default init."""
    return _create_nin({"activation": "leaky_relu"}, **kwargs)


@register_model("cifar10", recipe=_RECIPE)
def nin_leaky_he(**kwargs: Any) -> NIN:
    """Network in Network for CIFAR-10: leaky_relu, batch norm off, He init."""
    return _create_nin({"activation": "leaky_relu", "init": "he"}, **kwargs)


@register_model("cifar10", recipe=_BN_RECIPE)
def nin_leaky_bn(**kwargs: Any) -> NIN:
    """Network in Network for CIFAR-10: leaky_relu, batch norm on, torch default init."""
    return _create_nin({"activation": "leaky_relu", "batch_norm": True}, **kwargs)


@register_model("cifar10", recipe=_BN_RECIPE)
def nin_leaky_bn_he(**kwargs: Any) -> NIN:
    """Network in Network for CIFAR-10: leaky_relu, batch norm on, He init."""
    return _create_nin({"activation": "leaky_relu", "batch_norm": True, "init": "he"}, **kwargs)


@register_model("cifar10", recipe=_RECIPE)
def nin_maxout(**kwargs: Any) -> NIN:
    """Network in Network for CIFAR-10: maxout, batch norm off, torch default init."""
    return _create_nin({"activation": "maxout"}, **kwargs)


@register_model("cifar10", recipe=_RECIPE)
def nin_maxout_he(**kwargs: Any) -> NIN:
    """Network in Network for CIFAR-10: maxout, batch norm off, He init."""
    return _create_nin({"activation": "maxout", "init": "he"}, **kwargs)


@register_model("cifar10", recipe=_BN_RECIPE)
def nin_maxout_bn(**kwargs: Any) -> NIN:
    """Network in Network for CIFAR-10: maxout, batch norm on, torch default init."""
    return _create_nin({"activation": "maxout", "batch_norm": True}, **kwargs)


@register_model("cifar10", recipe=_BN_RECIPE)
def nin_maxout_bn_he(**kwargs: Any) -> NIN:
    """Network in Network for CIFAR-10: maxout, batch norm on, He init."""
    return _create_nin({"activation": "maxout", "batch_norm": True, "init": "he"}, **kwargs)
