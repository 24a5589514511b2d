"""Property-based fuzzing of zoo's ops and layers against torch's (hypothesis).

Each property draws arguments (shapes, strides, paddings and dilations up to
adversarial 64-bit integers, dtypes, memory layouts, argument types) and
checks that zoo gives torch's answer (outputs, gradients, running statistics)
or that both refuse, zoo with a clear ValueError/TypeError/NotImplementedError.
It runs as its own process (tests/test_fuzz.py starts it) so that a crash
fails a test instead of killing the test run:

    python tests/fuzz_ops.py --examples 200 --seed 0
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import zoo
from zoo.ops.activation import torch_activation

CLEAR_ERRORS = (ValueError, TypeError, NotImplementedError)
SUPPORTED = (torch.float32, torch.float64)
# Outputs above this many values are not computed (both libraries would need the memory);
# sizes past int64 must be refused by zoo before anything is allocated.
MAX_OUTPUT = 1 << 20
INT64_MAX = (1 << 63) - 1
ADVERSARIAL = [-(1 << 63), -1, 1 << 31, 1 << 32, 1 << 40, 1 << 62, INT64_MAX]

dtypes = st.sampled_from([torch.float64, torch.float32, torch.float64, torch.float16, torch.int32])
small = st.integers(0, 3)


def int_argument(values: st.SearchStrategy[int]) -> st.SearchStrategy[object]:
    """An int-like argument in one of the forms torch accepts, or one it refuses (bool, float)."""
    return st.one_of(
        values,
        values.map(lambda v: (v,)),
        st.tuples(values, values),
        st.tuples(values, values).map(list),
        values.map(np.int64),
        st.sampled_from([True, 2.0]),
    )


def layout(t: torch.Tensor, kind: str) -> torch.Tensor:
    """t in the given memory layout (same values)."""
    if kind == "channels_last" and t.dim() == 4:
        return t.contiguous(memory_format=torch.channels_last)
    if kind == "strided":  # a non-contiguous view
        return t.transpose(0, -1).contiguous().transpose(0, -1)
    return t


def pairs(value: object) -> tuple[int, int] | None:
    """What torch makes of an int-like argument, or None if it refuses it."""
    if isinstance(value, (bool, float)):
        return None
    if isinstance(value, (tuple, list)):
        return (int(value[0]), int(value[-1])) if len(value) in (1, 2) else None
    return int(value), int(value)


def conv_sizes(x: torch.Tensor, w: torch.Tensor, stride, padding, dilation) -> tuple[tuple[int, ...] | None, bool]:
    """(output shape or None when there is none, whether zoo must refuse the sizes), in unbounded ints.

    zoo refuses a geometry whose padded image, output or column matrix of one image, or
    whole output, would not fit in int64 bytes (8-byte elements), whatever the batch.
    """
    n, c = x.shape[0], x.shape[1]
    padded = [x.shape[2 + d] + 2 * padding[d] for d in range(2)]
    span = [dilation[d] * (w.shape[2 + d] - 1) + 1 for d in range(2)]
    if max(padded + span) > INT64_MAX:
        return None, True
    if padded[0] < span[0] or padded[1] < span[1]:
        return None, False
    height, width = ((padded[d] - span[d]) // stride[d] + 1 for d in range(2))
    pixels, kernel = height * width, c * w.shape[2] * w.shape[3]
    too_big = max(pixels, n * w.shape[0] * pixels, c * padded[0] * padded[1], kernel * pixels) * 8 > INT64_MAX
    return (n, w.shape[0], height, width), too_big


def close(ours: torch.Tensor, ref: torch.Tensor) -> None:
    """Equal up to the dtype's rounding."""
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    tol = 1e-9 if ref.dtype == torch.float64 else 2e-3
    torch.testing.assert_close(ours, ref, rtol=tol, atol=tol, equal_nan=True)


def same_refusal(ours: Exception | None, ref: Exception) -> bool:
    """zoo refused with a clear error, or with torch's own (a torch function it calls refused)."""
    return isinstance(ours, CLEAR_ERRORS) or (type(ours) is type(ref) and str(ours) == str(ref))


def call(fn):
    """(result, None) or (None, exception)."""
    try:
        return fn(), None
    except Exception as error:  # noqa: BLE001  (any refusal counts; the type is checked by the caller)
        return None, error


@given(
    n=st.integers(0, 3), c=st.integers(1, 4), h=st.integers(1, 10), w_=st.integers(1, 10), cout=st.integers(1, 4),
    kh=st.integers(1, 4), kw=st.integers(1, 4), dtype=dtypes, bias=st.booleans(),
    kind=st.sampled_from(["contiguous", "channels_last", "strided"]),
    stride=int_argument(st.one_of(st.integers(1, 3), st.sampled_from(ADVERSARIAL + [0]))),
    padding=int_argument(st.one_of(small, st.sampled_from(ADVERSARIAL))),
    dilation=int_argument(st.one_of(st.integers(1, 3), st.sampled_from(ADVERSARIAL + [0]))),
)
def conv2d_matches_torch(n, c, h, w_, cout, kh, kw, dtype, bias, kind, stride, padding, dilation):
    """zoo.ops.conv2d == F.conv2d (forward and gradients), or both refuse."""
    x = layout(torch.randn(n, c, h, w_, dtype=torch.float64), kind).to(dtype)
    weight = torch.randn(cout, c, kh, kw, dtype=torch.float64).to(dtype)
    b = torch.randn(cout, dtype=torch.float64).to(dtype) if bias else None
    geometry = [pairs(v) for v in (stride, padding, dilation)]
    if dtype not in SUPPORTED:  # a documented limit: zoo refuses other dtypes
        _, error = call(lambda: zoo.ops.conv2d(x, weight, b, stride, padding, dilation))
        assert isinstance(error, TypeError), error
        return
    valid = None not in geometry and min(geometry[0]) > 0 and min(geometry[1]) >= 0 and min(geometry[2]) > 0
    shape, too_big = conv_sizes(x, weight, *geometry) if valid else (None, False)
    size = math.prod(shape) if shape is not None else None
    if too_big:
        _, error = call(lambda: zoo.ops.conv2d(x, weight, b, stride, padding, dilation))
        assert isinstance(error, ValueError) and "64-bit" in str(error), error
        return
    if size is not None and size > MAX_OUTPUT:
        return  # representable but too large to compute here
    if n == 0 and (not valid or size is None):
        # torch skips its checks for an empty batch; zoo refuses an invalid geometry whatever the batch.
        _, error = call(lambda: zoo.ops.conv2d(x, weight, b, stride, padding, dilation))
        assert isinstance(error, CLEAR_ERRORS), error
        return
    inputs = [t.detach().requires_grad_() for t in (x, weight, b) if t is not None]
    # The reference runs in float64 (torch's float32 path refuses some valid extreme geometries).
    ref_inputs = [t.detach().double().requires_grad_() for t in inputs]
    ours, our_error = call(lambda: zoo.ops.conv2d(*inputs[:2], inputs[2] if bias else None, stride, padding, dilation))
    ref, ref_error = call(lambda: F.conv2d(*ref_inputs[:2], ref_inputs[2] if bias else None, stride, padding, dilation))
    if shape is not None and (ref_error is not None or tuple(ref.shape) != shape):
        # torch's own size arithmetic overflows for some huge strides/paddings (a wrong or no
        # output); zoo must give the exact shape, and its values are checked for the rest.
        assert our_error is None and tuple(ours.shape) == shape, (our_error, shape, ref_error)
        return
    if ref_error is not None:
        assert same_refusal(our_error, ref_error), (ref_error, our_error)
        return
    assert our_error is None, (our_error, "torch accepted")
    close(ours, ref.to(dtype))
    grad = torch.randn_like(ref)
    ours.backward(grad.to(dtype))
    ref.backward(grad)
    for a, r in zip(inputs, ref_inputs):
        close(a.grad, r.grad.to(dtype))


@given(
    shape=st.one_of(
        st.tuples(st.integers(0, 6), st.integers(1, 4)),
        st.tuples(st.integers(0, 4), st.integers(1, 4), st.integers(1, 5)),
        st.tuples(st.integers(0, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
        st.sampled_from([(5,), (2, 2, 2, 2, 2)]),
    ),
    dtype=dtypes, training=st.booleans(), affine=st.booleans(), running=st.booleans(),
    momentum=st.sampled_from([0.1, 0.0, 1.0, 0.7]), eps=st.sampled_from([1e-5, 1e-3, 0.0, -1.0]),
    kind=st.sampled_from(["contiguous", "channels_last", "strided"]),
    activation=st.sampled_from(["none", "relu", "leaky_relu", "elu"]), alpha=st.sampled_from([0.01, 0.3, 1.0, 2.0]),
)
def batch_norm_matches_torch(shape, dtype, training, affine, running, momentum, eps, kind, activation, alpha):
    """zoo.ops.batch_norm == F.batch_norm (output, gradients, running statistics), or both refuse;
    with an ``activation``, zoo.ops.batch_norm_activation == that activation of F.batch_norm(...)."""
    def ours_fn(*args):
        if activation == "none":
            return zoo.ops.batch_norm(*args)
        return zoo.ops.batch_norm_activation(*args, activation=activation, alpha=alpha)

    def ref_fn(*args):
        return torch_activation(F.batch_norm(*args), activation, alpha)

    x = layout(torch.randn(*shape, dtype=torch.float64) * 3 + 1, kind).to(dtype)
    channels = shape[1] if len(shape) > 1 else 1
    params = [torch.randn(channels, dtype=torch.float64).to(dtype) for _ in range(2)] if affine else [None, None]
    # Eval needs running statistics; training may run without them.
    stats = [torch.randn(channels, dtype=torch.float64).to(dtype), torch.rand(channels, dtype=torch.float64).to(dtype) + 0.5]
    if training and not running:
        stats = [None, None]
    if dtype not in SUPPORTED:
        _, error = call(lambda: ours_fn(x, *stats, *params, training, momentum, eps))
        assert isinstance(error, TypeError), error
        return
    ours_in = [x.detach().requires_grad_()] + [p.detach().requires_grad_() if p is not None else None for p in params]
    ref_in = [t.detach().clone().requires_grad_() if t is not None else None for t in ours_in]
    ours_stats = [s.clone() if s is not None else None for s in stats]
    ref_stats = [s.clone() if s is not None else None for s in stats]
    ours, our_error = call(lambda: ours_fn(ours_in[0], *ours_stats, *ours_in[1:], training, momentum, eps))
    ref, ref_error = call(lambda: ref_fn(ref_in[0], *ref_stats, *ref_in[1:], training, momentum, eps))
    if ref_error is not None:
        assert same_refusal(our_error, ref_error), (ref_error, our_error)
        return
    assert our_error is None, (our_error, "torch accepted")
    close(ours, ref)
    for a, r in zip(ours_stats, ref_stats):
        if a is not None:
            close(a, r)
    grad = torch.randn_like(ref)
    ours.backward(grad)
    ref.backward(grad)
    for a, r in zip(ours_in, ref_in):
        if a is not None:
            close(a.grad, r.grad)


@given(
    c=st.integers(1, 3), cout=st.integers(1, 3), kernel=st.integers(1, 4), stride=st.integers(1, 3),
    padding=st.one_of(st.integers(0, 2), st.sampled_from(["same", "valid"])), dilation=st.integers(1, 2),
    padding_mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]), bias=st.booleans(),
    n=st.integers(0, 2), size=st.integers(3, 9), batch_norm=st.booleans(), training=st.booleans(),
)
def layers_match_torch(c, cout, kernel, stride, padding, dilation, padding_mode, bias, n, size, batch_norm, training):
    """zoo.nn.Conv2d (+ BatchNorm2d) == torch.nn's with the same weights, or both refuse."""
    def build(conv, bn):
        def make():
            layers = [conv(c, cout, kernel, stride, padding, dilation, bias=bias, padding_mode=padding_mode)]
            if batch_norm:
                layers.append(bn(cout))
            return torch.nn.Sequential(*layers).double().train(training)
        return call(make)

    ref, ref_error = build(torch.nn.Conv2d, torch.nn.BatchNorm2d)
    ours, our_error = build(zoo.nn.Conv2d, zoo.nn.BatchNorm2d)
    if ref_error is not None:
        assert same_refusal(our_error, ref_error), (ref_error, our_error)
        return
    assert our_error is None, our_error
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(n, c, size, size, dtype=torch.float64)
    y, our_error = call(lambda: ours(x))
    y_ref, ref_error = call(lambda: ref(x))
    if ref_error is not None:
        assert same_refusal(our_error, ref_error), (ref_error, our_error)
        return
    assert our_error is None, (our_error, "torch accepted")
    close(y, y_ref)
    for (name, a), r in zip(ours.state_dict().items(), ref.state_dict().values()):
        assert torch.allclose(a.double(), r.double(), equal_nan=True), name


@given(
    shape=st.one_of(st.lists(st.integers(1, 5), max_size=4), st.sampled_from([[0], [2, 0, 3]])), dtype=dtypes,
    kind=st.sampled_from(["contiguous", "channels_last", "strided"]),
    p=st.one_of(st.floats(0.01, 0.99), st.sampled_from([0.0, 1.0, 0.5, -0.1, 1.5, math.nan, math.inf, 1, 0])),
    training=st.booleans(), inplace=st.booleans(), special=st.booleans(),
)
def dropout_matches_torch(shape, dtype, kind, p, training, inplace, special):
    """zoo.ops.dropout is F.dropout up to the mask: identity where torch returns its input, each element x * 0
    or torch's x * (1 / (1 - p)), torch's shape, dtype and strides; or both refuse."""
    base = torch.randn(tuple(shape), dtype=torch.float64) * 3
    if special and base.numel():  # NaN, infinities and -0.0 at every third element
        every_third = base.view(-1)[::3]
        every_third.copy_(torch.tensor([math.nan, math.inf, -math.inf, -0.0]).repeat(every_third.numel())[: every_third.numel()])
    x = layout(base, kind).to(dtype)
    x_ours, x_ref = x.clone() if inplace else x, x.clone() if inplace else x
    ours, our_error = call(lambda: zoo.ops.dropout(x_ours, p, training, inplace))
    ref, ref_error = call(lambda: F.dropout(x_ref, p, training, inplace))
    if ref_error is not None:
        assert same_refusal(our_error, ref_error), (ref_error, our_error)
        return
    if dtype not in SUPPORTED and our_error is not None:
        assert isinstance(our_error, TypeError) and training and p != 0 and x.numel(), our_error
        return
    assert our_error is None, (our_error, "torch accepted")
    assert (ours is x_ours) == (ref is x_ref)
    assert (ours.shape, ours.dtype, ours.stride()) == (ref.shape, ref.dtype, ref.stride())
    if not training or p == 0 or x.numel() == 0:  # torch returns its input untouched
        assert ours is x_ours and torch.equal(ours.nan_to_num(), x.nan_to_num())
        return
    kept = x * (torch.ones_like(x) / (1 - p)) if p < 1 else x * 0  # torch's mask arithmetic
    dropped = x * 0
    same = lambda a, b: (a == b) | (torch.isnan(a) & torch.isnan(b))  # noqa: E731
    assert bool((same(ours, kept) | same(ours, dropped)).all()), (ours, x, p)


@given(
    shape=st.lists(st.integers(0, 5), min_size=1, max_size=5), pieces=st.integers(-1, 4), dtype=dtypes,
    kind=st.sampled_from(["contiguous", "channels_last", "strided"]), ties=st.booleans(), special=st.booleans(),
)
def maxout_matches_torch(shape, pieces, dtype, kind, ties, special):
    """zoo.ops.maxout == x.unflatten(1, (-1, pieces)).amax(2) in values and gradient, bit for bit; or both refuse
    (zoo also refuses dtypes other than float32/float64 with a TypeError)."""
    base = torch.randn(tuple(shape), dtype=torch.float64)
    if ties:
        base = base.round()
    if special and base.numel():  # NaN and infinities at every fourth element
        every_fourth = base.view(-1)[::4]
        every_fourth.copy_(torch.tensor([math.nan, math.inf, -math.inf]).repeat(every_fourth.numel())[: every_fourth.numel()])
    x = layout(base, kind).to(dtype)
    ours_in, ref_in = (x.detach().clone().requires_grad_() if x.is_floating_point() else x for _ in range(2))
    ours, our_error = call(lambda: zoo.ops.maxout(ours_in, pieces))
    ref, ref_error = call(lambda: ref_in.unflatten(1, (-1, pieces)).amax(2))
    if ref_error is not None or pieces < 1:  # torch's unflatten takes pieces = -1 as "infer it": zoo refuses
        assert our_error is not None and same_refusal(our_error, ref_error or ValueError()), (ref_error, our_error)
        return
    if dtype not in SUPPORTED:
        assert isinstance(our_error, TypeError), our_error
        return
    assert our_error is None, (our_error, "torch accepted")
    torch.testing.assert_close(ours, ref, rtol=0, atol=0, equal_nan=True)
    grad = torch.randn_like(ref)
    ours.backward(grad)
    ref.backward(grad)
    torch.testing.assert_close(ours_in.grad, ref_in.grad, rtol=0, atol=0, equal_nan=True)


@given(
    shape=st.lists(st.integers(0, 5), min_size=0, max_size=5), dtype=dtypes,
    kind=st.sampled_from(["contiguous", "channels_last", "strided"]), special=st.booleans(),
    activation=st.sampled_from(["relu", "leaky_relu", "elu"]), alpha=st.sampled_from([0.0, 0.01, 1.0, -0.5, 3.0]),
)
def activation_matches_torch(shape, dtype, kind, special, activation, alpha):
    """torch.ops.zoo.activation == torch's relu / leaky_relu / elu in values and gradient (ReLU and LeakyReLU bit
    for bit, ELU to a few ulp: zoo's own exp), NaN and infinities included; zoo refuses other dtypes."""
    base = torch.randn(tuple(shape), dtype=torch.float64) * 4
    if special and base.numel():
        every_third = base.view(-1)[::3]
        every_third.copy_(torch.tensor([math.nan, math.inf, -math.inf, 0.0]).repeat(every_third.numel())[: every_third.numel()])
    x = layout(base, kind).to(dtype)
    ours_in, ref_in = (x.detach().clone().requires_grad_() if x.is_floating_point() else x for _ in range(2))
    ours, our_error = call(lambda: torch.ops.zoo.activation(ours_in, activation, alpha))
    if dtype not in SUPPORTED:
        assert isinstance(our_error, TypeError), our_error
        return
    assert our_error is None, our_error
    ref = torch_activation(ref_in, activation, alpha)
    exact = activation != "elu"
    tolerance = {"rtol": 0, "atol": 0} if exact else {}
    torch.testing.assert_close(ours, ref, equal_nan=True, **tolerance)
    grad = torch.randn_like(ref)
    ours.backward(grad)
    ref.backward(grad)
    ours_grad, ref_grad = ours_in.grad, ref_in.grad
    if activation == "elu":  # at NaN torch's vectorised loop gives NaN, its scalar tail loop dy; zoo NaN
        assert bool(ours_grad[x.isnan()].isnan().all())
        ours_grad, ref_grad = ours_grad[~x.isnan()], ref_grad[~x.isnan()]
    torch.testing.assert_close(ours_grad, ref_grad, equal_nan=True, **tolerance)


@given(
    lead=st.lists(st.integers(0, 40), min_size=0, max_size=3), features=st.integers(0, 40), out=st.integers(0, 40),
    weight_rank=st.sampled_from([2, 2, 2, 1, 0, 3]), mismatch=st.booleans(),
    bias=st.sampled_from(["none", "per_output", "per_output", "scalar", "one", "wrong", "other_dtype"]),
    dtype=dtypes, kind=st.sampled_from(["contiguous", "strided"]), special=st.booleans(),
)
def linear_matches_torch(lead, features, out, weight_rank, mismatch, bias, dtype, kind, special):
    """zoo.ops.linear == F.linear in values and input, weight and bias gradients (float32 within rounding), for
    inputs (*, in), 1-D and 2-D weights and every bias torch takes, NaN and infinities included; or both refuse."""
    base = torch.randn((*lead, features), dtype=torch.float64)
    if special and base.numel():
        every_fifth = base.view(-1)[::5]
        every_fifth.copy_(torch.tensor([math.nan, math.inf, -math.inf]).repeat(every_fifth.numel())[: every_fifth.numel()])
    x = layout(base, kind).to(dtype)
    weight_features = features + 1 if mismatch else features
    weight_shape = {0: (), 1: (weight_features,), 2: (out, weight_features), 3: (2, out, weight_features)}[weight_rank]
    weight = (torch.randn(weight_shape, dtype=torch.float64) / max(1, features) ** 0.5).to(dtype)
    bias_shape = {"none": None, "per_output": (out,), "scalar": (), "one": (1,), "wrong": (out + 1,),
                  "other_dtype": (out,)}[bias]
    b = None if bias_shape is None else torch.randn(bias_shape, dtype=torch.float64).to(
        torch.float32 if bias == "other_dtype" and dtype == torch.float64 else torch.float64 if bias == "other_dtype"
        else dtype)
    leaves = [[t.detach().clone().requires_grad_() if t.is_floating_point() else t for t in (x, weight, b)
               if t is not None] for _ in range(2)]
    with_bias = lambda ts: (*ts, None) if b is None else tuple(ts)  # noqa: E731
    ours, our_error = call(lambda: zoo.ops.linear(*with_bias(leaves[0])))
    ref, ref_error = call(lambda: F.linear(*with_bias(leaves[1])))
    if ref_error is not None:
        assert our_error is not None and same_refusal(our_error, ref_error), (ref_error, our_error)
        return
    # torch takes these on some of its internal paths (by the input's rank and layout) and refuses them on
    # others: zoo refuses them always.
    if weight_rank == 1 and b is not None and (b.dim() != 0 or x.dim() == 2):
        assert isinstance(our_error, (ValueError, TypeError)), our_error
        return
    if b is not None and b.dtype != x.dtype:
        assert isinstance(our_error, TypeError), our_error
        return
    if dtype not in SUPPORTED:
        assert isinstance(our_error, TypeError), our_error
        return
    assert our_error is None, (our_error, "torch accepted")
    close(ours, ref)
    grad = torch.randn_like(ref)
    ours.backward(grad)
    ref.backward(grad)
    for o, r in zip(leaves[0], leaves[1]):
        close(o.grad, r.grad)


PROPERTIES = [conv2d_matches_torch, batch_norm_matches_torch, layers_match_torch, dropout_matches_torch,
              maxout_matches_torch, activation_matches_torch, linear_matches_torch]


def main() -> int:
    """Run every property with the given budget; a failure raises (exit 1), a crash kills the process."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=200, help="examples per property")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    budget = settings(max_examples=args.examples, deadline=None, database=None, derandomize=False,
                      suppress_health_check=list(HealthCheck), print_blob=True)
    for prop in PROPERTIES:
        seed(args.seed)(budget(prop))()
        print(f"{prop.__name__}: {args.examples} examples passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
