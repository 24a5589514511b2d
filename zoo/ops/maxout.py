"""Maxout: the fake kernels of the ``zoo`` maxout ops, and the functional form.

The ops are declared and implemented in C++ (``csrc/ops.cpp``, one kernel per
device, autograd in ``csrc/autograd``) and called as ``torch.ops.zoo.*``:

- ``zoo::maxout(x, pieces) -> y``: x (N, pieces * C, ...), y (N, C, ...),
  ``y[:, c] = max_j x[:, c * pieces + j]``
- ``zoo::maxout_with_mask(x, pieces) -> (y, mask)``: mask (x's shape, bool) marks
  the pieces equal to their maximum
- ``zoo::maxout_backward(grad_y, mask, pieces) -> dx``: ``grad_y / count * mask``

Values and gradients are those of ``x.unflatten(1, (-1, pieces)).amax(2)``:
NaN wins the maximum, tied pieces share the gradient equally, and a NaN
maximum (equal to no piece) gives NaN gradients, as torch's amax does. The
output is contiguous.
"""

from __future__ import annotations

import torch
from torch import Tensor

from zoo import _C  # noqa: F401  (loading it registers the ops)
from zoo.ops.checks import DISPATCH_ERRORS, check_fake_devices, raise_dispatch_error

_OP = "zoo.ops.maxout"

maxout_op = torch.ops.zoo.maxout.default
maxout_with_mask_op = torch.ops.zoo.maxout_with_mask.default
maxout_backward = torch.ops.zoo.maxout_backward.default


def _fake_output(x: Tensor, pieces: int) -> Tensor:
    torch._check_value(x.dim() >= 2, lambda: "zoo maxout: expected an input of 2 or more dimensions")
    torch._check_value(pieces >= 1, lambda: "zoo maxout: pieces must be at least 1")
    torch._check_value(x.shape[1] % pieces == 0, lambda: "zoo maxout: dimension 1 of x must be a multiple of pieces")
    return x.new_empty((x.shape[0], x.shape[1] // pieces, *x.shape[2:]))


@torch.library.register_fake("zoo::maxout")
def _(x, pieces):
    return _fake_output(x, pieces)


@torch.library.register_fake("zoo::maxout_with_mask")
def _(x, pieces):
    return _fake_output(x, pieces), x.new_empty(x.shape, dtype=torch.bool)


@torch.library.register_fake("zoo::maxout_backward")
def _(grad_y, mask, pieces):
    check_fake_devices("zoo maxout_backward", grad_y, mask=mask)
    return grad_y.new_empty(mask.shape)


def maxout(x: Tensor, pieces: int) -> Tensor:
    """The maximum of each group of ``pieces`` consecutive channels: ``(N, pieces * C, ...) -> (N, C, ...)``.

    The values and gradient of ``x.unflatten(1, (-1, pieces)).amax(dim=2)``
    (NaN propagates; tied pieces share the gradient), on zoo's kernels. Bad
    shapes or values raise ValueError, bad dtypes TypeError.
    """
    try:
        return maxout_op(x, pieces)
    except DISPATCH_ERRORS as error:
        raise_dispatch_error(_OP, error, input=x)
