"""zoo's ops and layers accept what torch's accept (with the same answer) and refuse what torch refuses.

Argument forms (integers of every kind torch takes, 1-element sequences),
empty batches and eps are compared with torch.nn.functional and torch.nn
directly; the shape and value checks themselves are in test_bad_input.py.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import zoo
from conftest import assert_close

X = torch.randn(2, 3, 9, 8, dtype=torch.float64)
W = torch.randn(4, 3, 3, 3, dtype=torch.float64)
B = torch.randn(4, dtype=torch.float64)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(stride=np.int64(2)),
        dict(padding=(np.int32(1), 2)),
        dict(stride=(2,), padding=[1], dilation=(np.int64(2),)),
        dict(stride=torch.tensor(2)),
    ],
    ids=str,
)
def test_conv2d_takes_the_integers_torch_takes(kwargs):
    assert_close(zoo.ops.conv2d(X, W, B, **kwargs), F.conv2d(X, W, B, **kwargs))


@pytest.mark.parametrize(
    "kwargs", [dict(stride=True), dict(stride=2.0), dict(padding=(1.0, 1)), dict(dilation="1"), dict(padding=np.array([1, 2]))],
    ids=str,
)
def test_conv2d_refuses_what_torch_refuses(kwargs):
    with pytest.raises(TypeError):
        F.conv2d(X, W, B, **kwargs)
    with pytest.raises(TypeError, match="must be an int or a sequence of 1 or 2 ints"):
        zoo.ops.conv2d(X, W, B, **kwargs)


def test_conv2d_empty_batch_like_torch():
    ours, ref = zoo.nn.Conv2d(3, 4, 3, padding=1).double(), torch.nn.Conv2d(3, 4, 3, padding=1).double()
    ours.load_state_dict(ref.state_dict())
    x, x_ref = (torch.randn(0, 3, 9, 8, dtype=torch.float64, requires_grad=True) for _ in range(2))
    y, y_ref = ours(x), ref(x_ref)
    assert y.shape == y_ref.shape == (0, 4, 9, 8)
    y.sum().backward()
    y_ref.sum().backward()
    assert x.grad.shape == x_ref.grad.shape
    assert_close(ours.weight.grad, ref.weight.grad)
    assert_close(ours.bias.grad, ref.bias.grad)


@pytest.mark.parametrize("layer,shape", [("BatchNorm1d", (0, 3)), ("BatchNorm1d", (0, 3, 5)), ("BatchNorm2d", (0, 3, 4, 4))])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_empty_batch_like_torch(layer, shape, training):
    ours, ref = getattr(zoo.nn, layer)(3).double(), getattr(torch.nn, layer)(3).double()
    ours.train(training), ref.train(training)
    x, x_ref = (torch.randn(*shape, dtype=torch.float64, requires_grad=True) for _ in range(2))
    y, y_ref = ours(x), ref(x_ref)
    assert y.shape == y_ref.shape == shape
    y.sum().backward()
    y_ref.sum().backward()
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        assert torch.equal(getattr(ours, name), getattr(ref, name)), name
    assert_close(ours.weight.grad, ref.weight.grad)
    assert_close(ours.bias.grad, ref.bias.grad)


def test_batch_norm_eps():
    x = torch.randn(6, 3, dtype=torch.float64)
    for fn in (F.batch_norm, zoo.ops.batch_norm):
        with pytest.raises(ValueError, match="eps must be positive during training"):
            fn(x, None, None, training=True, eps=0.0)
    rm, rv = torch.randn(3, dtype=torch.float64), torch.rand(3, dtype=torch.float64) + 0.5
    assert_close(zoo.ops.batch_norm(x, rm, rv, eps=0.0), F.batch_norm(x, rm, rv, eps=0.0))


def test_batch_norm_of_any_rank_like_torch():
    x = torch.randn(3, 2, 4, 3, 2, dtype=torch.float64)
    for training in (True, False):
        stats = [torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)]
        ref_stats = [s.clone() for s in stats]
        assert_close(zoo.ops.batch_norm(x, *stats, training=training), F.batch_norm(x, *ref_stats, training=training))
        assert_close(stats[1], ref_stats[1])
