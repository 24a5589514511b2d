"""Linear layer: the fake kernels of the ``zoo`` linear ops, and the functional form.

The ops are declared and implemented in C++ (``csrc/ops.cpp``, one kernel per device,
autograd in ``csrc/autograd``) and called as ``torch.ops.zoo.*``:

- ``zoo::linear(x, weight, bias=None) -> y``: ``x`` (N, in), ``weight`` (out, in), ``bias`` (out),
  ``y = x weight^T + bias`` (N, out), contiguous
- ``zoo::linear_backward(grad_y, x, weight, output_mask) -> (dx, dweight, dbias)``

On the CPU the float32 products run on zoo's AVX-512 kernel where MKL runs its slower code
(AMD CPUs: ``csrc/cpu/own_product.h``), elsewhere (float64, Intel, CUDA) on torch's own BLAS.
"""

from __future__ import annotations

import torch
from torch import Tensor

from zoo import _C  # noqa: F401  (loading it registers the ops)
from zoo.ops.checks import DISPATCH_ERRORS, check_fake_devices, raise_dispatch_error

_OP = "zoo.ops.linear"

linear_op = torch.ops.zoo.linear.default
linear_backward = torch.ops.zoo.linear_backward.default


@torch.library.register_fake("zoo::linear")
def _(x, weight, bias=None):
    check_fake_devices("zoo linear", x, weight=weight, bias=bias)
    torch._check_value(x.dim() == 2 and weight.dim() == 2, lambda: "zoo linear: expected a 2-D x and weight")
    torch._check_value(x.shape[1] == weight.shape[1], lambda: "zoo linear: x's features do not match weight's")
    return x.new_empty((x.shape[0], weight.shape[0]))


@torch.library.register_fake("zoo::linear_backward")
def _(grad_y, x, weight, output_mask):
    check_fake_devices("zoo linear_backward", x, grad_y=grad_y, weight=weight)
    dx = x.new_empty(x.shape) if output_mask[0] else x.new_empty(0)
    dweight = weight.new_empty(weight.shape) if output_mask[1] else x.new_empty(0)
    dbias = x.new_empty(weight.shape[0]) if output_mask[2] else x.new_empty(0)
    return dx, dweight, dbias


def _add_bias(y: Tensor, bias: Tensor, input: Tensor) -> Tensor:
    # A bias other than (out_features), as torch adds it: expanded to the output's shape, which never grows.
    if bias.dtype != input.dtype:
        raise TypeError(f"{_OP}: bias has dtype {bias.dtype} but input has dtype {input.dtype}")
    try:
        return y + bias.expand(y.shape)
    except RuntimeError:
        raise ValueError(f"{_OP}: bias of shape {tuple(bias.shape)} does not expand to the output's shape "
                         f"{tuple(y.shape)}") from None


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``torch.nn.functional.linear(input, weight, bias)`` on zoo's kernels: ``input @ weight.T + bias``.

    ``input`` is (*, in_features), ``weight`` (out_features, in_features) or (in_features,) (one output,
    its dimension dropped), ``bias`` (out_features) or anything else that expands to the output's shape,
    as torch accepts; with a 1-D weight only a 0-D bias and an input that is not 2-D (torch takes some
    other cases, depending on the input's layout). Bad shapes raise ValueError, bad dtypes TypeError.
    """
    try:
        if input.dim() == 0 or weight.dim() == 0 or weight.dim() > 2:
            raise ValueError(f"{_OP}: expected an input of 1 or more dimensions and a 1-D or 2-D weight, got "
                             f"{input.dim()}-D input and {weight.dim()}-D weight")
        if weight.dim() == 1:
            if bias is not None and (bias.dim() != 0 or input.dim() == 2):
                raise ValueError(f"{_OP}: a 1-D weight takes a bias only as a 0-D tensor, on an input that is not "
                                 f"2-D (got a {bias.dim()}-D bias and a {input.dim()}-D input)")
            y = linear(input, weight.unsqueeze(0)).squeeze(-1)
            return y if bias is None else _add_bias(y, bias, input)
        per_output = bias is None or (bias.dim() == 1 and bias.shape[0] == weight.shape[0])  # what the op takes
        rows = input if input.dim() == 2 else input.unsqueeze(0) if input.dim() == 1 else input.flatten(0, -2)
        y = linear_op(rows, weight, bias if per_output else None)
        if input.dim() != 2:
            y = y.reshape(*input.shape[:-1], weight.shape[0])
        return y if per_output else _add_bias(y, bias, input)
    except DISPATCH_ERRORS as error:
        raise_dispatch_error(_OP, error, input=input, weight=weight, bias=bias)
