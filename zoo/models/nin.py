"""Network in Network (Lin, Chen & Yan 2014) for CIFAR-10-sized images."""

from __future__ import annotations

import torch
from torch import nn

import zoo.nn
from zoo.models.layers import init_weights, make_activation, width_factor

__all__ = ["NIN"]

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
    Convs are :class:`zoo.nn.Conv2d`, batch norm :class:`zoo.nn.BatchNorm2d`;
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
        factor = width_factor(activation, pieces)
        layers: list[nn.Module] = []
        channels = in_channels
        for index, block in enumerate(_BLOCKS):
            for out, kernel in block:
                if out is None:  # the classifier conv: plain class maps
                    layers.append(zoo.nn.Conv2d(channels, num_classes, kernel, padding=kernel // 2))
                    continue
                layers.append(zoo.nn.Conv2d(channels, out * factor, kernel, padding=kernel // 2))
                if batch_norm:
                    layers.append(zoo.nn.BatchNorm2d(out * factor))
                layers.append(make_activation(activation, alpha, pieces))
                channels = out
            if index < len(_BLOCKS) - 1:
                layers += [nn.MaxPool2d(3, stride=2, padding=1), nn.Dropout(dropout)]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.net = nn.Sequential(*layers)
        init_weights(self, init, init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for images ``(N, C, H, W)``."""
        return self.net(x)
