"""zoo's CPU kernels give the same answer on 1 and 2 threads (their parallel loops split
work and sum partial results per thread: a race or a lost partial sum shows here)."""

import pytest
import torch

import zoo


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def run_on(threads, fn):
    torch.set_num_threads(threads)
    return fn()


# (N, Cin, H, W, Cout, kernel, padding): one layer of each CPU algorithm: direct, Winograd
# 3x3 and 5x5, im2col with its per-thread chunks, pointwise.
LAYERS = [
    (16, 1, 28, 28, 32, 3, 1),
    (16, 32, 14, 14, 64, 3, 1),
    (8, 96, 16, 16, 32, 5, 2),
    (64, 5, 12, 12, 10, 5, 0),
    (8, 64, 8, 8, 48, 1, 0),
    (4, 20, 17, 13, 24, 3, 0),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layer", LAYERS, ids=str)
def test_conv2d_one_and_two_threads_agree(layer, dtype, restore_threads):
    n, cin, h, w, cout, k, p = layer
    x = torch.randn(n, cin, h, w, dtype=dtype, requires_grad=True)
    weight = torch.randn(cout, cin, k, k, dtype=dtype, requires_grad=True)
    bias = torch.randn(cout, dtype=dtype, requires_grad=True)

    def step():
        y = zoo.ops.conv2d(x, weight, bias, padding=p)
        return (y.detach(), *torch.autograd.grad(y, (x, weight, bias), torch.ones_like(y)))

    one, two = run_on(1, step), run_on(2, step)
    # Threads sum partial results in another order: rounding apart, relative to each result's scale.
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    for a, b in zip(one, two):
        assert (a - b).abs().max() <= tolerance * a.abs().max()


@pytest.mark.parametrize("shape", [(256, 300), (64, 32, 20, 20), (3, 16, 9, 9)], ids=str)
def test_batch_norm_one_and_two_threads_agree(shape, restore_threads):
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    layer = (zoo.nn.BatchNorm1d if len(shape) == 2 else zoo.nn.BatchNorm2d)(shape[1]).double()

    def step():
        y = layer(x)
        return (y.detach(), *torch.autograd.grad(y, (x, layer.weight, layer.bias), torch.cos(y.detach())))

    one, two = run_on(1, step), run_on(2, step)
    for a, b in zip(one, two):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
