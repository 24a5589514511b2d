"""Layers computed by zoo's kernels, drop-in for torch.nn's (and Maxout, which torch.nn lacks)."""

from zoo.nn.activation import ELU
from zoo.nn.batch_norm import (
    BatchNorm1d,
    BatchNorm2d,
    BatchNormELU1d,
    BatchNormELU2d,
    BatchNormLeakyReLU1d,
    BatchNormLeakyReLU2d,
    BatchNormReLU1d,
    BatchNormReLU2d,
)
from zoo.nn.conv import Conv2d
from zoo.nn.dropout import Dropout
from zoo.nn.linear import Linear
from zoo.nn.maxout import Maxout
from zoo.nn.pool import MaxPool2d
from zoo.nn.sync_batch_norm import SyncBatchNorm, SyncBatchNormReLU

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNormELU1d", "BatchNormELU2d", "BatchNormLeakyReLU1d",
           "BatchNormLeakyReLU2d", "BatchNormReLU1d", "BatchNormReLU2d", "Conv2d", "Dropout", "ELU", "Linear", "MaxPool2d", "Maxout",
           "SyncBatchNorm", "SyncBatchNormReLU"]
