"""The split batch-norm ops of synchronized batch norm (zoo::batch_norm_stats, _backward_reduce, _backward_elemt)
against torch's own statistics and gradients in float64, opcheck, and their refusals."""

from __future__ import annotations

import pytest
import torch

from conftest import assert_close

from zoo import _C

OPS = torch.ops.zoo
SHAPES = [(8, 3), (4, 3, 7), (4, 3, 5, 5), (2, 5, 1, 1)]
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not (torch.cuda.is_available() and _C.with_cuda),
                                                  reason="needs a CUDA GPU and zoo's CUDA kernels")),
]


def _layouts(shape, device="cpu"):
    # A large mean, to catch E[x^2] - E[x]^2 cancellation.
    x = torch.randn(shape, dtype=torch.float64, device=device) * 3 + 10
    yield x
    if len(shape) == 4:
        yield x.contiguous(memory_format=torch.channels_last)


def _channel_dims(x):
    return [d for d in range(x.dim()) if d != 1]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_stats_match_torch(shape, device):
    for x in _layouts(shape, device):
        mean, m2 = OPS.batch_norm_stats(x)
        dims = _channel_dims(x)
        assert_close(mean, x.mean(dims))
        assert_close(m2, ((x - x.mean(dims, keepdim=True)) ** 2).sum(dims), scale=100)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_backward_pieces_give_torch_gradient(shape, affine, device):
    """reduce + elemt with the local count are torch's training batch-norm backward."""
    for x in _layouts(shape, device):
        C = shape[1]
        w = torch.rand(C, dtype=torch.float64, device=device) + 0.5 if affine else None
        b = torch.randn(C, dtype=torch.float64, device=device) if affine else None
        dy = torch.randn(shape, dtype=torch.float64, device=device)
        xr = x.detach().requires_grad_()
        wr = w.clone().requires_grad_() if affine else None
        torch.nn.functional.batch_norm(xr, None, None, wr, b, True, 0.1, 1e-5).backward(dy)
        mean, m2 = OPS.batch_norm_stats(x)
        count = x.numel() // C
        invstd = (m2 / count + 1e-5).rsqrt()
        sum_dy, sum_dy_xmu = OPS.batch_norm_backward_reduce(dy, x, mean)
        dims = _channel_dims(x)
        assert_close(sum_dy, dy.sum(dims))
        dx = OPS.batch_norm_backward_elemt(dy, x, w, mean, invstd, sum_dy, sum_dy_xmu, count)
        assert dx.stride() == x.stride()
        assert_close(dx, xr.grad)
        if affine:
            assert_close(sum_dy_xmu * invstd, wr.grad)


def test_elemt_with_a_larger_count_is_the_gradient_of_the_whole_batch():
    """Two halves of a batch, sums added as an all-reduce would: each half's dx is the full batch's."""
    x = torch.randn(10, 4, 3, 3, dtype=torch.float64)
    dy = torch.randn_like(x)
    xr = x.clone().requires_grad_()
    torch.nn.functional.batch_norm(xr, None, None, None, None, True, 0.1, 1e-5).backward(dy)
    dims = _channel_dims(x)
    mean, var = x.mean(dims), x.var(dims, unbiased=False)
    invstd = (var + 1e-5).rsqrt()
    halves = [(x[:6], dy[:6]), (x[6:], dy[6:])]
    sums = [OPS.batch_norm_backward_reduce(g, part, mean) for part, g in halves]
    sum_dy = sums[0][0] + sums[1][0]
    sum_dy_xmu = sums[0][1] + sums[1][1]
    count = x.numel() // 4
    dx = torch.cat([OPS.batch_norm_backward_elemt(g, part, None, mean, invstd, sum_dy, sum_dy_xmu, count)
                    for part, g in halves])
    assert_close(dx, xr.grad)


def test_empty_batch_is_the_identity_of_the_merge():
    x = torch.randn(0, 3, 4)
    mean, m2 = OPS.batch_norm_stats(x)
    assert mean.tolist() == [0, 0, 0] and m2.tolist() == [0, 0, 0]
    sum_dy, sum_dy_xmu = OPS.batch_norm_backward_reduce(x, x, mean)
    assert sum_dy.tolist() == [0, 0, 0] and sum_dy_xmu.tolist() == [0, 0, 0]
    ones = torch.ones(3)
    assert OPS.batch_norm_backward_elemt(x, x, None, mean, ones, ones, ones, 5).shape == x.shape


def test_float32_stats_are_accurate():
    x = torch.randn(64, 8, 6, 6) + 1000
    mean, m2 = OPS.batch_norm_stats(x)
    x64 = x.double()
    torch.testing.assert_close(mean.double(), x64.mean((0, 2, 3)), rtol=1e-6, atol=0)
    torch.testing.assert_close(m2.double(), ((x64 - x64.mean((0, 2, 3), keepdim=True)) ** 2).sum((0, 2, 3)),
                               rtol=1e-4, atol=0)


def test_opcheck():
    x = torch.randn(4, 3, 5, 5)
    dy, mean, invstd = torch.randn_like(x), torch.randn(3), torch.rand(3) + 1
    for xs in (x, x.contiguous(memory_format=torch.channels_last), torch.randn(7, 3)):
        torch.library.opcheck(OPS.batch_norm_stats.default, (xs,))
    torch.library.opcheck(OPS.batch_norm_backward_reduce.default, (dy, x, mean))
    torch.library.opcheck(OPS.batch_norm_backward_elemt.default,
                          (dy, x, torch.randn(3), mean, invstd, torch.randn(3), torch.randn(3), 200))
    torch.library.opcheck(OPS.batch_norm_backward_elemt.default,
                          (torch.randn(7, 3), torch.randn(7, 3), None, mean, invstd, torch.randn(3), torch.randn(3), 7))


def test_meta_shapes():
    x = torch.randn(4, 3, 5, device="meta")
    mean, m2 = OPS.batch_norm_stats(x)
    assert mean.shape == m2.shape == (3,)
    assert OPS.batch_norm_backward_elemt(x, x, None, mean, mean, mean, mean, 20).shape == x.shape


BAD = [
    ("batch_norm_stats", lambda: (torch.randn(4, 3).half(),), TypeError, "expected float32 or float64"),
    ("batch_norm_stats", lambda: (torch.randn(4),), ValueError, "got 1-D"),
    ("batch_norm_backward_reduce", lambda: (torch.randn(4, 2), torch.randn(4, 3), torch.zeros(3)), ValueError,
     "grad_y has shape"),
    ("batch_norm_backward_reduce", lambda: (torch.randn(4, 3), torch.randn(4, 3), torch.zeros(2)), ValueError,
     r"mean must have shape \(3\)"),
    ("batch_norm_backward_elemt", lambda: (torch.randn(4, 3), torch.randn(4, 3), None, torch.zeros(3),
                                           torch.ones(3), torch.zeros(3), torch.zeros(3), 3), ValueError,
     "count must be positive and at least the 4 values"),
    ("batch_norm_backward_elemt", lambda: (torch.randn(4, 3), torch.randn(4, 3), None, torch.zeros(3),
                                           torch.ones(3), torch.zeros(2), torch.zeros(3), 8), ValueError,
     r"sum_dy must have shape \(3\)"),
    ("batch_norm_backward_elemt", lambda: (torch.randn(4, 3), torch.randn(4, 3), None, torch.zeros(3),
                                           torch.ones(3), torch.zeros(3), torch.zeros(3).double(), 8), TypeError,
     "sum_dy_xmu has dtype torch.float64"),
]


@pytest.mark.parametrize("op,make_args,error,match", BAD, ids=lambda v: v if isinstance(v, str) else "")
def test_bad_input(op, make_args, error, match):
    with pytest.raises(error, match=match):
        getattr(OPS, op)(*make_args())
