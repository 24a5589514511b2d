"""The registered presets: every architecture of the studies.

Each preset builds for its own dataset by default; ``num_classes``,
``in_channels`` and ``input_size`` overrides (or ``create_model(name,
dataset=...)``) run the same architecture on MNIST, Fashion-MNIST, EMNIST or
CIFAR-10. Any model-class argument (``batch_norm``, ``activation``,
``dropout_hidden``, ``init``...) can be overridden too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zoo.models.cnn import CNN, ConvBlock
from zoo.models.dnn import DNN
from zoo.models.nin import NIN
from zoo.models.registry import register_model

# Recommended recipes: reasonable starting points, not tuned results.
_SGD_MLP = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "batch_size": 128, "epochs": 30}
_SGD_CNN = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "batch_size": 128, "epochs": 20}
_ADAM_CNN = {"optimizer": "adam", "lr": 1e-3, "batch_size": 128, "epochs": 20}
# The kmlp study's recipe: L2 0.005 (weight decay 0.01), two triangular cycles; step 5 epochs = 5 x 450 batches of 100.
_CYCLIC_MLP = {"optimizer": "sgd", "batch_size": 100, "epochs": 20, "schedule": "cyclic", "lr_min": 1e-5,
               "lr_max": 0.1, "step_size": 5 * 450, "weight_decay": 0.01}
_NIN_BASE = {
    "optimizer": "sgd", "momentum": 0.9, "weight_decay": 1e-4, "batch_size": 128,
    "epochs": 120, "schedule": "step", "milestones": [60, 90], "augment": True,
}


def _mlp(hidden: Sequence[int], num_classes: int, in_channels: int, input_size: Sequence[int], **overrides: Any) -> DNN:
    height, width = input_size
    return DNN(in_channels * height * width, num_classes, hidden, **overrides)


def _cnn(default_blocks: Sequence[ConvBlock], default_hidden: Sequence[int], num_classes: int, in_channels: int,
         input_size: Sequence[int], **overrides: Any) -> CNN:
    overrides.setdefault("blocks", default_blocks)
    overrides.setdefault("hidden", default_hidden)
    return CNN(in_channels, input_size, num_classes, **overrides)


# ---------------------------------------------------------------- EMNIST Balanced (47 classes)


@register_model("emnist-balanced", recipe=_SGD_MLP)
def emnist_dnn_2x100(num_classes: int, in_channels: int, input_size: Sequence[int], **overrides: Any) -> DNN:
    """EMNIST Balanced MLP, two hidden layers of 100."""
    overrides.setdefault("hidden", (100, 100))
    return _mlp(num_classes=num_classes, in_channels=in_channels, input_size=input_size, **overrides)


@register_model("emnist-balanced", recipe=_SGD_MLP)
def emnist_dnn_4x100(num_classes: int, in_channels: int, input_size: Sequence[int], **overrides: Any) -> DNN:
    """EMNIST Balanced MLP, four hidden layers of 100."""
    overrides.setdefault("hidden", (100, 100, 100, 100))
    return _mlp(num_classes=num_classes, in_channels=in_channels, input_size=input_size, **overrides)


@register_model("emnist-balanced", recipe=_SGD_CNN)
def emnist_cnn_1conv(num_classes: int, in_channels: int, input_size: Sequence[int], **overrides: Any) -> CNN:
    """EMNIST Balanced CNN: one conv layer (5 maps 5x5, 2x2 max-pool), hidden layer of 100."""
    return _cnn([ConvBlock(5, kernel=5, pool=2)], (100,), num_classes, in_channels, input_size, **overrides)


@register_model("emnist-balanced", recipe=_SGD_CNN)
def emnist_cnn_2conv(num_classes: int, in_channels: int, input_size: Sequence[int], **overrides: Any) -> CNN:
    """EMNIST Balanced CNN: two conv layers (5 then 10 maps 5x5, each with 2x2 max-pool), hidden layer of 100."""
    blocks = [ConvBlock(5, kernel=5, pool=2), ConvBlock(10, kernel=5, pool=2)]
    return _cnn(blocks, (100,), num_classes, in_channels, input_size, **overrides)


# ---------------------------------------------------------------- MNIST


@register_model("mnist", recipe=_SGD_MLP)
def mnist_mlp_1024_512(num_classes: int, in_channels: int, input_size: Sequence[int], **overrides: Any) -> DNN:
    """MNIST MLP, hidden layers of 1024 and 512."""
    overrides.setdefault("hidden", (1024, 512))
    return _mlp(num_classes=num_classes, in_channels=in_channels, input_size=input_size, **overrides)


@register_model("mnist", recipe=_ADAM_CNN)
def mnist_cnn(num_classes: int, in_channels: int, input_size: Sequence[int], **overrides: Any) -> CNN:
    """MNIST CNN: two 3x3 conv layers of 4 kernels (padding 1, each with 2x2 max-pool), linear classifier."""
    blocks = [ConvBlock(4, kernel=3, padding=1, pool=2), ConvBlock(4, kernel=3, padding=1, pool=2)]
    return _cnn(blocks, (), num_classes, in_channels, input_size, **overrides)


@register_model("mnist", recipe={**_ADAM_CNN, "epochs": 5, "schedule": "step", "milestones": [3]})
def mnist_cnn_32_64(num_classes: int, in_channels: int, input_size: Sequence[int], **overrides: Any) -> CNN:
    """MNIST CNN for accuracy: 3x3 conv layers of 32 and 64 kernels with BN (padding 1, 2x2 max-pool), hidden 128."""
    overrides.setdefault("batch_norm", True)
    overrides.setdefault("dropout_hidden", 0.5)
    blocks = [ConvBlock(32, kernel=3, padding=1, pool=2), ConvBlock(64, kernel=3, padding=1, pool=2)]
    return _cnn(blocks, (128,), num_classes, in_channels, input_size, **overrides)


# ---------------------------------------------------------------- CIFAR-10 MLPs


@register_model("cifar10", recipe=_CYCLIC_MLP)
def cifar10_mlp_3layer(num_classes: int, in_channels: int, input_size: Sequence[int], **overrides: Any) -> DNN:
    """CIFAR-10 3-layer MLP: hidden layers 50-50, then the classifier; He init."""
    overrides.setdefault("hidden", (50, 50))
    overrides.setdefault("init", "he")
    return _mlp(num_classes=num_classes, in_channels=in_channels, input_size=input_size, **overrides)


@register_model("cifar10", recipe=_CYCLIC_MLP)
def cifar10_mlp_9layer(num_classes: int, in_channels: int, input_size: Sequence[int], **overrides: Any) -> DNN:
    """CIFAR-10 9-layer MLP: hidden layers 50-30-20-20-10-10-10-10, then the classifier; He init."""
    overrides.setdefault("hidden", (50, 30, 20, 20, 10, 10, 10, 10))
    overrides.setdefault("init", "he")
    return _mlp(num_classes=num_classes, in_channels=in_channels, input_size=input_size, **overrides)


# ---------------------------------------------------------------- Network in Network variants

_NIN_ACTIVATIONS = {"relu": "relu", "elu": "elu", "leaky": "leaky_relu", "maxout": "maxout"}


def _register_nin(suffix: str, activation: str, batch_norm: bool, he: bool) -> None:
    # One preset per (activation, BN, init) combination: nin_<act>[_bn][_he].
    name = f"nin_{suffix}" + ("_bn" if batch_norm else "") + ("_he" if he else "")
    init = "he" if he else "default"

    def preset(num_classes: int, in_channels: int, input_size: Sequence[int], **overrides: Any) -> NIN:
        del input_size  # global average pooling: NIN works at any image size
        for key, value in (("activation", activation), ("batch_norm", batch_norm), ("init", init)):
            overrides.setdefault(key, value)
        return NIN(num_classes, in_channels, **overrides)

    preset.__name__ = preset.__qualname__ = name
    preset.__doc__ = (
        f"Network in Network for CIFAR-10: {activation}, batch norm {'on' if batch_norm else 'off'}, "
        f"{'He' if he else 'torch default'} init."
    )
    # Batch norm tolerates a 10x larger learning rate.
    recipe = {**_NIN_BASE, "lr": 0.1 if batch_norm else 0.01}
    globals()[name] = register_model("cifar10", recipe=recipe)(preset)


for _suffix, _activation in _NIN_ACTIVATIONS.items():
    for _bn in (False, True):
        for _he in (False, True):
            _register_nin(_suffix, _activation, _bn, _he)
