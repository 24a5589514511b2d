"""zoo's kernels as ``torch.ops.zoo.*`` operators (declared in C++, with autograd), plus functional forms."""

from zoo.ops.activation import activation_backward, activation_op, elu
from zoo.ops.batch_norm import (
    batch_norm,
    batch_norm_activation,
    batch_norm_backward,
    batch_norm_backward_elemt,
    batch_norm_backward_reduce,
    batch_norm_eval,
    batch_norm_relu,
    batch_norm_stats,
    batch_norm_train,
)
from zoo.ops.conv2d import conv2d, conv2d_backward, conv2d_op
from zoo.ops.dropout import dropout, dropout_op
from zoo.ops.linear import linear, linear_backward, linear_op
from zoo.ops.max_pool import max_pool2d, max_pool2d_backward, max_pool2d_op, max_pool2d_with_indices_op
from zoo.ops.maxout import maxout, maxout_backward, maxout_op, maxout_with_mask_op
from zoo.ops.sync_batch_norm import sync_batch_norm
from zoo.ops.compile_cache import tag_compile_caches

tag_compile_caches()

__all__ = [
    "activation_backward",
    "activation_op",
    "batch_norm",
    "batch_norm_activation",
    "batch_norm_backward",
    "batch_norm_backward_elemt",
    "batch_norm_backward_reduce",
    "batch_norm_eval",
    "batch_norm_relu",
    "batch_norm_stats",
    "batch_norm_train",
    "conv2d",
    "conv2d_backward",
    "conv2d_op",
    "dropout",
    "dropout_op",
    "elu",
    "linear",
    "linear_backward",
    "linear_op",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool2d_op",
    "max_pool2d_with_indices_op",
    "maxout",
    "maxout_backward",
    "maxout_op",
    "maxout_with_mask_op",
    "sync_batch_norm",
]
