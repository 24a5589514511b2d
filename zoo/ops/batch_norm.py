"""Batch norm: the fake kernels of the ``zoo`` batch-norm ops, and the functional form.

The ops are declared and implemented in C++ (``csrc/ops.cpp``, one kernel per
device, autograd in ``csrc/autograd``) and called as ``torch.ops.zoo.*``:

- ``zoo::batch_norm_train(x, weight, bias, running_mean, running_var, momentum, eps, activation="none",
  alpha=0.0) -> (y, mean, invstd, var_unbiased)``, which updates the running buffers given in place (as torch's
  ``native_batch_norm``)
- ``zoo::batch_norm_eval(x, weight, bias, running_mean, running_var, eps, activation="none", alpha=0.0) -> y``
- ``zoo::batch_norm_backward(grad_y, x, weight, mean, invstd, train, bias=None, activation="none", alpha=0.0)
  -> (dx, dweight, dbias)``

``activation`` (one of :data:`zoo.ops.activation.FUSED_ACTIVATIONS`: ``"relu"``, ``"leaky_relu"`` with negative slope ``alpha``,
``"elu"`` with ``alpha``) is applied to batch norm's output in the same pass (:func:`batch_norm_activation`);
the training backward then recomputes the pre-activation from ``x``, the statistics, ``weight`` and ``bias``
(as the forward computed it) instead of reading a saved output, which saves the activation's own passes in
both directions.

and, for synchronized batch norm (:mod:`zoo.nn.sync_batch_norm`), which merges
statistics and gradient sums across processes between them:

- ``zoo::batch_norm_stats(x) -> (mean, m2)``: per-channel mean and sum of squared
  deviations (zeros for an empty batch: the identity of Chan's merge)
- ``zoo::batch_norm_backward_reduce(grad_y, x, mean) -> (sum_dy, sum_dy_xmu)``
- ``zoo::batch_norm_backward_elemt(grad_y, x, weight, mean, invstd, sum_dy, sum_dy_xmu, count) -> dx``,
  the training dx from sums over ``count`` values per channel (all processes')

The fake kernels below give their output shapes to torch.compile and
torch.export. Apart from ``batch_norm_train``'s running buffers (declared
mutable in its schema, so tracing functionalises them) the ops are pure.
"""

from __future__ import annotations

import torch
from torch import Tensor

from zoo import _C  # noqa: F401  (loading it registers the ops)
from zoo.ops.activation import FUSED_ACTIVATIONS
from zoo.ops.checks import DISPATCH_ERRORS, check_fake_devices, raise_dispatch_error

_OP = "zoo.ops.batch_norm"

batch_norm_train = torch.ops.zoo.batch_norm_train.default
batch_norm_eval = torch.ops.zoo.batch_norm_eval.default
batch_norm_backward = torch.ops.zoo.batch_norm_backward.default
batch_norm_stats = torch.ops.zoo.batch_norm_stats.default
batch_norm_backward_reduce = torch.ops.zoo.batch_norm_backward_reduce.default
batch_norm_backward_elemt = torch.ops.zoo.batch_norm_backward_elemt.default


def _check_fake_input(x: Tensor, **tensors: Tensor | None) -> int:
    """The channel count of x, after the rank check the kernels make and a device check of ``tensors``."""
    check_fake_devices("zoo batch_norm", x, **tensors)
    torch._check_value(2 <= x.dim() <= 4, lambda: f"zoo batch_norm: expected a 2-D, 3-D or 4-D input, got {x.dim()}-D")
    return x.shape[1]


@torch.library.register_fake("zoo::batch_norm_train")
def _(x, weight, bias, running_mean, running_var, momentum, eps, activation="none", alpha=0.0):
    channels = _check_fake_input(x, weight=weight, bias=bias, running_mean=running_mean, running_var=running_var)
    return torch.empty_like(x), x.new_empty(channels), x.new_empty(channels), x.new_empty(channels)


@torch.library.register_fake("zoo::batch_norm_eval")
def _(x, weight, bias, running_mean, running_var, eps, activation="none", alpha=0.0):
    _check_fake_input(x, weight=weight, bias=bias, running_mean=running_mean, running_var=running_var)
    return torch.empty_like(x)


@torch.library.register_fake("zoo::batch_norm_backward")
def _(grad_y, x, weight, mean, invstd, train, bias=None, activation="none", alpha=0.0):
    channels = _check_fake_input(x, grad_y=grad_y, weight=weight, mean=mean, invstd=invstd, bias=bias)
    torch._check_value(train or activation == "none",
                       lambda: f"zoo batch_norm: the fused {activation}'s backward needs train=True")
    return torch.empty_like(x), x.new_empty(channels), x.new_empty(channels)


@torch.library.register_fake("zoo::batch_norm_stats")
def _(x):
    channels = _check_fake_input(x)
    return x.new_empty(channels), x.new_empty(channels)


@torch.library.register_fake("zoo::batch_norm_backward_reduce")
def _(grad_y, x, mean):
    channels = _check_fake_input(x, grad_y=grad_y, mean=mean)
    return x.new_empty(channels), x.new_empty(channels)


@torch.library.register_fake("zoo::batch_norm_backward_elemt")
def _(grad_y, x, weight, mean, invstd, sum_dy, sum_dy_xmu, count):
    _check_fake_input(x, grad_y=grad_y, weight=weight, mean=mean, invstd=invstd, sum_dy=sum_dy,
                      sum_dy_xmu=sum_dy_xmu)
    return torch.empty_like(x)


def supported_layout(x: Tensor) -> Tensor:
    """x itself if the kernels read its layout directly (contiguous, or 4-D channels-last), else a contiguous copy."""
    if x.is_contiguous() or (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)):
        return x
    return x.contiguous()


def batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch norm on zoo's kernels, with the signature and semantics of ``torch.nn.functional.batch_norm``.

    ``x`` is (N, C, ...) of any rank from 2, float32 or float64. In training
    the batch statistics normalise ``x`` and, when running buffers are given,
    update them in place: ``running = (1 - momentum) * running + momentum * batch``,
    with the unbiased batch variance. Outside training the running statistics
    normalise ``x``. Bad shapes or values raise ValueError, bad dtypes TypeError.
    """
    return _batch_norm(_OP, x, running_mean, running_var, weight, bias, training, momentum, eps, "none", 0.0)


def batch_norm_relu(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """``torch.relu(batch_norm(...))`` (:func:`batch_norm`'s arguments) in one pass over ``x``, forward and backward.

    The same values and gradients as the two ops in turn; in training the
    backward recomputes ReLU's mask from ``x`` instead of keeping an output.
    """
    return _batch_norm("zoo.ops.batch_norm_relu", x, running_mean, running_var, weight, bias, training, momentum, eps,
                       "relu", 0.0)


def batch_norm_activation(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
    *,
    activation: str,
    alpha: float = 0.0,
) -> Tensor:
    """:func:`batch_norm` then ``activation`` in one pass over ``x``, forward and backward.

    ``activation`` is ``"relu"`` (``F.relu``), ``"leaky_relu"`` (``F.leaky_relu`` with
    ``negative_slope=alpha``), ``"elu"`` (``F.elu`` with ``alpha``) or ``"none"`` (batch norm alone).
    ReLU and LeakyReLU give torch's values and gradients bit for bit; ELU's exponentials are zoo's
    own (about 1 ulp from exact, as torch's own are), so its values and gradients agree with torch's
    to a few ulp. In training the backward recomputes the pre-activation from ``x`` instead of
    keeping an output. An unknown activation raises ValueError.
    """
    name = "zoo.ops.batch_norm_activation"
    if activation not in ("none", *FUSED_ACTIVATIONS):
        raise ValueError(f"{name}: unknown activation {activation!r}; expected 'none' or one of {FUSED_ACTIVATIONS}")
    return _batch_norm(name, x, running_mean, running_var, weight, bias, training, momentum, eps, activation,
                       float(alpha))


def _batch_norm(name: str, x: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None,
                bias: Tensor | None, training: bool, momentum: float, eps: float, activation: str,
                alpha: float) -> Tensor:
    # The public functions' op call, errors named after the public function `name`.
    try:
        if x.dim() > 4:  # (N, C, D, H, W...) normalises as (N, C, D*H*W...), as torch's does
            flat = _batch_norm(name, x.reshape(x.shape[0], x.shape[1], -1), running_mean, running_var, weight, bias,
                               training, momentum, eps, activation, alpha)
            return flat.reshape(x.shape)
        x = supported_layout(x)
        if not training:
            if running_mean is None or running_var is None:
                raise ValueError(f"{name}: running_mean and running_var are required when training=False")
            return batch_norm_eval(x, weight, bias, running_mean, running_var, eps, activation, alpha)
        # The kernel checks the running buffers and updates them (an empty batch leaves them, as in torch).
        return batch_norm_train(x, weight, bias, running_mean, running_var, momentum, eps, activation, alpha)[0]
    except DISPATCH_ERRORS as error:
        raise_dispatch_error(name, error, input=x, weight=weight, bias=bias, running_mean=running_mean,
                             running_var=running_var)
