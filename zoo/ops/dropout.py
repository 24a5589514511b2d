"""Dropout: the fake kernel of the ``zoo::dropout`` op, and the functional form.

The op is declared and implemented in C++ (``csrc/ops.cpp``, one kernel per
device, autograd in ``csrc/autograd``) and called as ``torch.ops.zoo.dropout``:

- ``zoo::dropout(x, p, seed) -> y``: ``y = x * m`` with ``m`` ``1 / (1 - p)`` for
  kept elements and 0 for dropped ones; ``seed`` is a one-element int64 tensor
  on x's device. Element ``i`` (row-major over x's shape, whatever its strides)
  is kept when word ``i % 4`` of the Philox4x32-10 block ``i // 4`` of the seed
  (counter ``(i // 4, 0)``, key ``seed``) is below ``floor((1 - p) * 2**32)``
  (``csrc/dropout.h``): the same mask on every device and thread count. The
  output is contiguous.

The op is a pure function of its arguments; :func:`dropout` draws the seed from
torch's generator of x's device (``torch.manual_seed`` makes runs repeat), and
the backward is the same op on the gradient with the same seed.
"""

from __future__ import annotations

import torch
from torch import Tensor

from zoo import _C  # noqa: F401  (loading it registers the ops)
from zoo.ops.checks import DISPATCH_ERRORS, check_fake_devices, raise_dispatch_error

_OP = "zoo.ops.dropout"

dropout_op = torch.ops.zoo.dropout.default

# Seeds are drawn below 2**62: any int64 would do; this keeps them positive and readable.
_SEED_BOUND = 2**62


@torch.library.register_fake("zoo::dropout")
def _(x, p, seed):
    check_fake_devices("zoo dropout", x, seed=seed)
    return x.new_empty(x.shape)


def draw_seed(device: torch.device) -> Tensor:
    """A dropout seed from torch's generator of ``device``: a 0-d int64 tensor there (no host sync on a GPU)."""
    return torch.randint(_SEED_BOUND, (), dtype=torch.int64, device=device)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Dropout on zoo's kernels, with the signature and results of ``torch.nn.functional.dropout``.

    In training each element is zeroed with probability ``p`` and the others are
    scaled by ``1 / (1 - p)``; otherwise (and for ``p == 0`` or an empty input)
    ``input`` itself is returned, as torch does. The output has ``input``'s
    strides when it is dense (channels-last stays channels-last); ``inplace``
    writes it into ``input``. The mask comes from a seed drawn from torch's
    generator, so ``torch.manual_seed`` fixes it (torch's own masks differ: the
    generator is another). ``p`` outside [0, 1] raises ValueError with torch's
    message, a dtype other than float32/float64 TypeError.
    """
    if not 0.0 <= p <= 1.0:  # also refuses NaN
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    try:
        if not training or p == 0.0 or input.numel() == 0:
            return input
        out = dropout_op(input, float(p), draw_seed(input.device))
    except DISPATCH_ERRORS as error:
        raise_dispatch_error(_OP, error, input=input)
    if inplace:
        return input.copy_(out)
    if not input.is_contiguous():
        out = torch.empty_like(input).copy_(out)  # the layout torch's result has (a dense input's strides)
    return out
