"""CNN: configurable convolution + pooling blocks followed by a DNN head, and its presets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

import zoo.nn
from zoo.models.dnn import DNN
from zoo.models.layers import init_weights, normalized_activation, width_factor
from zoo.models.registry import register_model
from zoo.ops.conv2d import output_size

__all__ = ["CNN", "ConvBlock"]  # and their presets, registered below


@dataclass(frozen=True)
class ConvBlock:
    """One convolution block: Conv2d(kernel, padding, stride 1) -> [BN] -> activation -> [max-pool].

    Attributes:
        channels: output feature maps.
        kernel: square kernel size.
        padding: zero padding on each side.
        pool: max-pool size and stride; 1 (or 0) means no pooling.
    """

    channels: int
    kernel: int = 3
    padding: int = 0
    pool: int = 2

    def __post_init__(self) -> None:
        sizes = (self.channels, self.kernel, self.padding, self.pool)
        if not all(type(size) is int for size in sizes) or min(sizes[:2]) < 1 or min(sizes[2:]) < 0:
            raise ValueError(f"{self}: channels and kernel must be integers >= 1, padding and pool integers >= 0")


def _as_block(block: ConvBlock | Mapping) -> ConvBlock:
    # Blocks may come from JSON/TOML as plain dicts.
    if isinstance(block, ConvBlock):
        return block
    unknown = sorted(set(block) - {f.name for f in fields(ConvBlock)})
    if unknown or "channels" not in block:
        raise ValueError(f"a conv block is {{channels, kernel, padding, pool}} (channels required), got {dict(block)}")
    return ConvBlock(**block)


class CNN(nn.Module):
    """Convolutional network: ``features`` (conv blocks) then ``classifier`` (a :class:`DNN`).

    Convolutions are :class:`zoo.nn.Conv2d`, pools :class:`zoo.nn.MaxPool2d`; with ``batch_norm`` each conv is
    followed by a :class:`zoo.nn.BatchNorm2d` (and each hidden head layer by a
    :class:`zoo.nn.BatchNorm1d`). With ``activation='maxout'`` each conv has
    ``pieces * channels`` outputs and the maximum is taken over the pieces.

    Args:
        in_channels: image channels.
        input_size: image ``(height, width)``; fixes the head's input size.
        num_classes: outputs (logits).
        blocks: the conv blocks, as :class:`ConvBlock` or dicts of its fields.
        hidden: hidden widths of the head (``()``: one Linear layer).
        activation, alpha, pieces, batch_norm, dropout_input, dropout_hidden,
        init, init_std: as for :class:`DNN`; the activation, batch norm and
            init apply to the conv blocks too, the dropouts to the head only.
    """

    def __init__(
        self,
        in_channels: int,
        input_size: Sequence[int],
        num_classes: int,
        blocks: Sequence[ConvBlock | Mapping],
        hidden: Sequence[int] = (),
        activation: str = "relu",
        alpha: float | None = None,
        pieces: int = 2,
        batch_norm: bool = False,
        dropout_input: float = 0.0,
        dropout_hidden: float = 0.0,
        init: str = "default",
        init_std: float = 0.01,
    ) -> None:
        super().__init__()
        factor = width_factor(activation, pieces)
        height, width = input_size
        layers: list[nn.Module] = []
        channels = in_channels
        for block in map(_as_block, blocks):
            layers.append(zoo.nn.Conv2d(channels, block.channels * factor, block.kernel, padding=block.padding))
            layers += normalized_activation(block.channels * factor, batch_norm, activation, alpha, pieces, dims=2)
            height, width = (output_size(s, block.kernel, 1, block.padding, 1) for s in (height, width))
            if block.pool > 1:
                layers.append(zoo.nn.MaxPool2d(block.pool))
                height, width = height // block.pool, width // block.pool
            if height < 1 or width < 1:
                raise ValueError(f"{block} shrinks a {tuple(input_size)} input to nothing; use a larger input or padding")
            channels = block.channels
        self.features = nn.Sequential(*layers)
        self.classifier = DNN(
            channels * height * width, num_classes, hidden, activation, alpha, pieces,
            batch_norm, dropout_input, dropout_hidden,
        )
        init_weights(self, init, init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for images ``(N, C, H, W)``."""
        return self.classifier(self.features(x))


# ---------------------------------------------------------------- presets

# Recommended recipes: reasonable starting points, not tuned results.
_SGD_RECIPE = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "batch_size": 128, "epochs": 20}
_ADAM_RECIPE = {"optimizer": "adam", "lr": 1e-3, "batch_size": 128, "epochs": 20}


def _create_cnn(preset_args: dict[str, Any], num_classes: int, in_channels: int, input_size: Sequence[int],
                **overrides: Any) -> CNN:
    # The one place the dataset's shape becomes CNN arguments; the caller's overrides win over the preset's.
    return CNN(in_channels, input_size, num_classes, **{**preset_args, **overrides})


@register_model("emnist-balanced", recipe=_SGD_RECIPE)
def emnist_cnn_1conv(**kwargs: Any) -> CNN:
    """EMNIST Balanced CNN: one conv layer (5 maps 5x5, 2x2 max-pool), hidden layer of 100."""
    return _create_cnn({"blocks": [ConvBlock(5, kernel=5, pool=2)], "hidden": (100,)}, **kwargs)


@register_model("emnist-balanced", recipe=_SGD_RECIPE)
def emnist_cnn_2conv(**kwargs: Any) -> CNN:
    """EMNIST Balanced CNN: two conv layers (5 then 10 maps 5x5, each with 2x2 max-pool), hidden layer of 100."""
    blocks = [ConvBlock(5, kernel=5, pool=2), ConvBlock(10, kernel=5, pool=2)]
    return _create_cnn({"blocks": blocks, "hidden": (100,)}, **kwargs)


@register_model("mnist", recipe=_ADAM_RECIPE)
def mnist_cnn(**kwargs: Any) -> CNN:
    """MNIST CNN: two 3x3 conv layers of 4 kernels (padding 1, each with 2x2 max-pool), linear classifier."""
    blocks = [ConvBlock(4, kernel=3, padding=1, pool=2), ConvBlock(4, kernel=3, padding=1, pool=2)]
    return _create_cnn({"blocks": blocks, "hidden": ()}, **kwargs)


@register_model("mnist", recipe={**_ADAM_RECIPE, "epochs": 5, "schedule": "step", "milestones": [3]})
def mnist_cnn_32_64(**kwargs: Any) -> CNN:
    """MNIST CNN for accuracy: 3x3 conv layers of 32 and 64 kernels with BN (padding 1, 2x2 max-pool), hidden 128."""
    blocks = [ConvBlock(32, kernel=3, padding=1, pool=2), ConvBlock(64, kernel=3, padding=1, pool=2)]
    return _create_cnn({"blocks": blocks, "hidden": (128,), "batch_norm": True, "dropout_hidden": 0.5}, **kwargs)


# Flagships: the most accurate CNNs the zoo trains on a CPU in well under an hour (see docs/models.md).
# Three 3x3 conv layers (32, 64, 64; padding 1, 2x2 max-pool after the first two: the third works at
# 7x7, which keeps an epoch near 1.3x mnist_cnn_32_64's) with batch norm, a hidden layer of 128 with
# dropout 0.5; random shifts (and mirroring for Fashion-MNIST) and a one-cycle Adam schedule do the rest.
_FLAGSHIP_BLOCKS = (ConvBlock(32, kernel=3, padding=1, pool=2), ConvBlock(64, kernel=3, padding=1, pool=2),
                    ConvBlock(64, kernel=3, padding=1, pool=1))
_FLAGSHIP_ARGS = {"blocks": _FLAGSHIP_BLOCKS, "hidden": (128,), "batch_norm": True, "dropout_hidden": 0.5}
_FLAGSHIP_RECIPE = {"optimizer": "adam", "lr": 3e-3, "batch_size": 128, "epochs": 20, "schedule": "onecycle",
                    "augment": True}


@register_model("mnist", recipe=_FLAGSHIP_RECIPE)
def mnist_cnn_flagship(**kwargs: Any) -> CNN:
    """MNIST flagship CNN: 3x3 convs 32, 64, 64 with BN (max-pool after the 1st and 2nd), hidden 128; shifts, one-cycle."""
    return _create_cnn(_FLAGSHIP_ARGS, **kwargs)


# Fashion-MNIST underfits the MNIST flagship (train accuracy below validation; 93.06% test after its
# 20-epoch recipe): its third conv works at 14x14 (max-pool after the 1st and 3rd) and its hidden layer
# is 256 wide with dropout 0.3, at about twice the MNIST flagship's FLOPs, so 15 epochs.
_FASHION_ARGS = {
    "blocks": (ConvBlock(32, kernel=3, padding=1, pool=2), ConvBlock(64, kernel=3, padding=1, pool=1),
               ConvBlock(64, kernel=3, padding=1, pool=2)),
    "hidden": (256,), "batch_norm": True, "dropout_hidden": 0.3,
}


@register_model("fashion-mnist", recipe={**_FLAGSHIP_RECIPE, "epochs": 15})
def fashion_cnn_flagship(**kwargs: Any) -> CNN:
    """Fashion-MNIST flagship CNN: 3x3 convs 32, 64, 64 with BN (max-pool after the 1st and 3rd), hidden 256."""
    return _create_cnn(_FASHION_ARGS, **kwargs)
