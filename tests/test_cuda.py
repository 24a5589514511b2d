"""The CUDA kernels against torch's CUDA ops: forward, gradients, gradcheck, opcheck, devices.

Skipped without a GPU (and on builds without the CUDA kernels).
"""

import random

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

import zoo
from conftest import assert_close, values_and_grad
from zoo import _C

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    pytest.mark.skipif(not _C.with_cuda, reason="zoo was built without its CUDA kernels"),
]

CONV_CASES = [
    (100, 1, 28, 28, 5, (5, 5), 1, 0, 1),
    (100, 5, 12, 12, 10, (5, 5), 1, 0, 1),
    (100, 4, 28, 28, 4, (3, 3), 1, 1, 1),
    (8, 3, 32, 32, 192, (5, 5), 1, 2, 1),
    (8, 192, 16, 16, 160, (1, 1), 1, 0, 1),
    (8, 96, 16, 16, 192, (5, 5), 1, 2, 1),
    (8, 192, 8, 8, 192, (3, 3), 1, 1, 1),
    (257, 2, 5, 5, 3, (3, 3), 1, 1, 1),
    (3, 3, 9, 11, 4, (3, 5), (2, 3), (1, 2), (2, 1)),
    (2, 3, 6, 6, 2, (1, 1), 2, 1, 1),
    (1, 1, 1, 1, 1, (1, 1), 1, 0, 1),
]
BN_SHAPES = [(2, 1), (100, 100), (257, 7), (3, 5, 7, 9), (16, 192, 13, 11), (128, 192, 8, 8), (257, 3, 2, 3)]


def run_conv(fn, x, weight, bias, grad_y):
    leaves = [t.detach().clone().requires_grad_() for t in (x, weight, bias)]
    y = fn(*leaves)
    y.backward(grad_y)
    return [y.detach()] + [t.grad for t in leaves]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_matches_torch_cuda(case, dtype):
    n, cin, h, w, cout, kernel, stride, padding, dilation = case
    x = torch.randn(n, cin, h, w, dtype=dtype, device="cuda")
    weight = torch.randn(cout, cin, *kernel, dtype=dtype, device="cuda") / (cin * kernel[0] * kernel[1]) ** 0.5
    bias = torch.randn(cout, dtype=dtype, device="cuda")
    grad_y = torch.randn_like(F.conv2d(x, weight, bias, stride, padding, dilation))
    with torch.backends.cudnn.flags(allow_tf32=False):
        ref = run_conv(lambda a, b, c: F.conv2d(a, b, c, stride, padding, dilation), x, weight, bias, grad_y)
    ours = run_conv(lambda a, b, c: zoo.ops.conv2d(a, b, c, stride, padding, dilation), x, weight, bias, grad_y)
    for o, r in zip(ours, ref):
        assert o.device.type == "cuda"
        assert_close(o, r, scale=10)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("channels_last", [False, True])
def test_batch_norm_matches_torch_cuda(shape, dtype, training, channels_last):
    if channels_last and len(shape) != 4:
        pytest.skip("channels-last is 4-D only")
    x = torch.randn(shape, dtype=dtype, device="cuda") * 2 + 3
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    c = shape[1]
    weight, bias = torch.randn(c, dtype=dtype, device="cuda"), torch.randn(c, dtype=dtype, device="cuda")
    rm, rv = torch.randn(c, dtype=dtype, device="cuda"), torch.rand(c, dtype=dtype, device="cuda") + 0.5
    grad_y = torch.randn(shape, dtype=dtype, device="cuda")
    stats = {}
    results = {}
    for side, fn in (("ours", zoo.ops.batch_norm), ("torch", F.batch_norm)):
        stats[side] = (rm.clone(), rv.clone())
        results[side] = run_conv(lambda a, w, b: fn(a, *stats[side], w, b, training), x, weight, bias, grad_y)
    for o, r in zip(results["ours"], results["torch"]):
        assert_close(o, r, scale=10)
    for o, r in zip(stats["ours"], stats["torch"]):
        assert_close(o, r)
    if channels_last:
        assert results["ours"][0].is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("activation,alpha,then", [("relu", 0.0, lambda y: torch.relu(y)),
                                                   ("leaky_relu", 0.2, lambda y: F.leaky_relu(y, 0.2)),
                                                   ("elu", 1.3, lambda y: F.elu(y, 1.3))], ids=str)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", [(16, 12, 9, 11), (300, 40), (8, 24, 6, 5)], ids=str)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_activation_matches_torch_and_unfused_zoo_cuda(shape, dtype, training, activation, alpha, then):
    x = torch.randn(shape, dtype=dtype, device="cuda")
    c = shape[1]
    weight, bias = torch.randn(c, dtype=dtype, device="cuda"), torch.randn(c, dtype=dtype, device="cuda")
    rm, rv = torch.randn(c, dtype=dtype, device="cuda"), torch.rand(c, dtype=dtype, device="cuda") + 0.5
    grad_y = torch.randn(shape, dtype=dtype, device="cuda")
    sides = {
        "fused": lambda a, w, b: zoo.ops.batch_norm_activation(a, rm.clone(), rv.clone(), w, b, training,
                                                               activation=activation, alpha=alpha),
        "unfused": lambda a, w, b: then(zoo.ops.batch_norm(a, rm.clone(), rv.clone(), w, b, training)),
        "torch": lambda a, w, b: then(F.batch_norm(a, rm.clone(), rv.clone(), w, b, training)),
    }
    results = {side: run_conv(fn, x, weight, bias, grad_y) for side, fn in sides.items()}
    for fused, unfused, ref in zip(results["fused"], results["unfused"], results["torch"]):
        if activation == "relu":
            assert torch.equal(fused, unfused)  # the backward's recomputed mask is the forward's
        else:
            assert_close(fused, unfused, scale=10)
        assert_close(fused, ref, scale=10)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape,pieces", [((128, 384, 8, 8), 2), ((64, 2048), 2), ((3, 12, 5, 7), 3)], ids=str)
def test_maxout_matches_torch_amax_cuda(shape, pieces, dtype):
    x = torch.randn(shape, dtype=dtype, device="cuda")
    x.view(-1)[:64] = x.view(-1)[64:128]  # some tied pieces
    grad_y = torch.randn(shape[0], shape[1] // pieces, *shape[2:], dtype=dtype, device="cuda")
    ours = values_and_grad(lambda a: zoo.ops.maxout(a, pieces), x, grad_y)
    theirs = values_and_grad(lambda a: a.unflatten(1, (-1, pieces)).amax(2), x, grad_y)
    for o, r in zip(ours, theirs):
        assert o.device.type == "cuda"
        assert torch.equal(o, r)
    torch.library.opcheck(torch.ops.zoo.maxout.default, (x.requires_grad_(), pieces))


@pytest.mark.parametrize("activation,alpha,reference", [("relu", 0.0, lambda y: torch.relu(y)),
                                                        ("leaky_relu", 0.2, lambda y: F.leaky_relu(y, 0.2)),
                                                        ("elu", 1.3, lambda y: F.elu(y, 1.3))], ids=str)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_activation_matches_torch_cuda(activation, alpha, reference, dtype):
    x = torch.randn(64, 96, 9, 9, dtype=dtype, device="cuda") * 3
    x.view(-1)[:3] = torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=dtype)
    grad_y = torch.randn_like(x)
    (y, dx), (ref, ref_dx) = (values_and_grad(fn, x, grad_y) for fn in
                              (lambda a: torch.ops.zoo.activation(a, activation, alpha), reference))
    assert y.device.type == "cuda"
    torch.testing.assert_close(y, ref, equal_nan=True)
    if activation == "elu":  # ELU's gradient at NaN: NaN in zoo (and torch's CPU vector loop), dy in torch's CUDA
        assert dx[0, 0, 0, 0].isnan()
        dx, ref_dx = dx.flatten()[1:], ref_dx.flatten()[1:]
    torch.testing.assert_close(dx, ref_dx, equal_nan=True)
    torch.library.opcheck(torch.ops.zoo.activation.default, (x.requires_grad_(), activation, alpha))


@pytest.mark.parametrize("shape", [(1, 784, 1024), (128, 512, 10), (100, 3072, 50)], ids=str)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_linear_matches_torch_cuda(shape, dtype):
    n, c, o = shape
    x, weight = torch.randn(n, c, dtype=dtype, device="cuda"), torch.randn(o, c, dtype=dtype, device="cuda")
    bias, grad_y = torch.randn(o, dtype=dtype, device="cuda"), torch.randn(n, o, dtype=dtype, device="cuda")
    leaves = [[t.clone().requires_grad_() for t in (x, weight, bias)] for _ in range(2)]
    outputs = [fn(*ts) for fn, ts in zip((zoo.ops.linear, F.linear), leaves)]
    for y, ts in zip(outputs, leaves):
        y.backward(grad_y)
    assert outputs[0].device.type == "cuda"
    torch.testing.assert_close(outputs[0], outputs[1])
    for ours, theirs in zip(*leaves):
        torch.testing.assert_close(ours.grad, theirs.grad)
    torch.library.opcheck(torch.ops.zoo.linear.default, (x.requires_grad_(), weight, bias))


def test_gradcheck_cuda():
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64, device="cuda", requires_grad=True)
    w = torch.randn(4, 3, 3, 2, dtype=torch.float64, device="cuda", requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, device="cuda", requires_grad=True)
    assert gradcheck(lambda a, c, d: zoo.ops.conv2d(a, c, d, (2, 1), 1, (1, 2)), (x, w, b))
    g = torch.randn(3, dtype=torch.float64, device="cuda", requires_grad=True)
    beta = torch.randn(3, dtype=torch.float64, device="cuda", requires_grad=True)
    assert gradcheck(lambda a, c, d: zoo.ops.batch_norm(a, None, None, c, d, True), (x, g, beta))
    assert gradcheck(lambda a, c, d: zoo.ops.batch_norm_relu(a, None, None, c, d, True), (x, g, beta))
    for activation in ("leaky_relu", "elu"):
        assert gradcheck(lambda a, c, d: zoo.ops.batch_norm_activation(a, None, None, c, d, True,
                                                                       activation=activation, alpha=0.3), (x, g, beta))


def test_opcheck_cuda():
    x = torch.randn(4, 3, 5, 5, device="cuda", requires_grad=True)
    w = torch.randn(6, 3, 3, 3, device="cuda", requires_grad=True)
    b = torch.randn(6, device="cuda", requires_grad=True)
    torch.library.opcheck(torch.ops.zoo.conv2d.default, (x, w, b, [1, 1], [1, 1], [1, 1]))
    gamma, beta = torch.randn(3, device="cuda", requires_grad=True), torch.randn(3, device="cuda", requires_grad=True)
    torch.library.opcheck(torch.ops.zoo.batch_norm_train.default,
                          (x, gamma, beta, torch.zeros(3, device="cuda"), torch.ones(3, device="cuda"), 0.1, 1e-5))
    torch.library.opcheck(torch.ops.zoo.batch_norm_eval.default, (x, gamma, beta, torch.zeros(3, device="cuda"), torch.ones(3, device="cuda"), 1e-5))
    torch.library.opcheck(torch.ops.zoo.batch_norm_train.default,
                          (x, gamma, beta, torch.zeros(3, device="cuda"), torch.ones(3, device="cuda"), 0.1, 1e-5, True))
    torch.library.opcheck(torch.ops.zoo.batch_norm_eval.default,
                          (x, gamma, beta, torch.zeros(3, device="cuda"), torch.ones(3, device="cuda"), 1e-5, True))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_max_pool2d_matches_torch_cuda(dtype):
    from test_max_pool import has_empty_window, random_case

    rng = random.Random(3)
    checked = 0
    for _ in range(150):
        x, *args = random_case(rng, dtype, 24)
        try:
            expected, expected_indices = F.max_pool2d(x, *args, return_indices=True)  # torch's CPU kernel
        except RuntimeError:
            continue
        xc = x.cuda().requires_grad_()
        y, indices = zoo.ops.max_pool2d(xc, *args, return_indices=True)
        torch.testing.assert_close(y.cpu(), expected, rtol=0, atol=0, equal_nan=True)
        torch.testing.assert_close(indices.cpu(), expected_indices, rtol=0, atol=0)
        with torch.no_grad():
            torch.testing.assert_close(zoo.ops.max_pool2d(xc, *args).cpu(), expected, rtol=0, atol=0, equal_nan=True)
        if has_empty_window(expected_indices, x):
            continue
        grad_y = torch.randn_like(expected)
        (dx,) = torch.autograd.grad(y, xc, grad_y.cuda())
        (expected_dx,) = torch.autograd.grad(F.max_pool2d(x.requires_grad_(), *args), x, grad_y)
        torch.testing.assert_close(dx.cpu(), expected_dx)
        checked += 1
    assert checked > 50
    x = torch.randn(2, 3, 7, 8, device="cuda", requires_grad=True)
    torch.library.opcheck(torch.ops.zoo.max_pool2d.default, (x, [3, 3], [2, 2], [1, 1], [1, 1], True))
    torch.library.opcheck(torch.ops.zoo.max_pool2d_with_indices.default, (x, [2, 2], [2, 2], [0, 0], [1, 1], False))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dropout_draws_the_cpu_mask_cuda(dtype):
    # One Philox stream for both devices: the same seed gives the same result, tails and p = 0 / 1 included.
    for n, p in ((1, 0.5), (5, 0.3), (70001, 0.5), (1 << 20, 0.9), (4097, 1.0), (33, 0.0)):
        x = torch.randn(n, dtype=dtype)
        seed = torch.tensor(12345678901, dtype=torch.int64)
        expected = torch.ops.zoo.dropout(x, p, seed)
        got = torch.ops.zoo.dropout(x.cuda(), p, seed.cuda())
        torch.testing.assert_close(got.cpu(), expected, rtol=0, atol=0)
    x = torch.randn(3, 4, 5, device="cuda", dtype=dtype, requires_grad=True)
    y = zoo.ops.dropout(x, 0.4)
    dy = torch.randn_like(y)
    (dx,) = torch.autograd.grad(y, x, dy)
    torch.testing.assert_close(dx, dy * (y != 0) / 0.6)
    torch.library.opcheck(torch.ops.zoo.dropout.default, (x, 0.25, torch.tensor(7, device="cuda")))
    with pytest.raises(ValueError, match="seed is on cpu but x is on cuda"):
        torch.ops.zoo.dropout(x, 0.5, torch.tensor(7))


def test_layers_move_to_cuda_unchanged():
    net = torch.nn.Sequential(zoo.nn.Conv2d(1, 4, 3, padding=1), zoo.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 6), zoo.nn.BatchNorm1d(6))
    ref = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 6), torch.nn.BatchNorm1d(6))
    ref.load_state_dict(net.state_dict())
    net.cuda(), ref.cuda()
    x = torch.randn(16, 1, 8, 8, device="cuda")
    with torch.backends.cudnn.flags(allow_tf32=False):
        assert_close(net(x), ref(x))


def test_cross_device_inputs_are_refused():
    x = torch.randn(2, 3, 8, 8, device="cuda")
    with pytest.raises(ValueError, match="weight is on cpu but x is on cuda"):
        zoo.ops.conv2d(x, torch.randn(4, 3, 3, 3))
    with pytest.raises(ValueError, match="running_mean is on cpu"):
        zoo.ops.batch_norm(x, torch.zeros(3), torch.ones(3, device="cuda"), training=False)
    if torch.cuda.device_count() > 1:
        with pytest.raises(ValueError, match="cuda:1"):
            zoo.ops.conv2d(x, torch.randn(4, 3, 3, 3, device="cuda:1"))


def test_empty_batches_like_torch_cuda():
    x = torch.randn(0, 3, 8, 8, device="cuda", requires_grad=True)
    w = torch.randn(4, 3, 3, 3, device="cuda", requires_grad=True)
    y = zoo.ops.conv2d(x, w, None, 1, 1)
    assert y.shape == (0, 4, 8, 8) and y.is_cuda
    y.sum().backward()
    assert torch.equal(w.grad, torch.zeros_like(w))
    rm, rv = torch.zeros(3, device="cuda"), torch.ones(3, device="cuda")
    assert zoo.ops.batch_norm(x.detach(), rm, rv, training=True).shape == x.shape
    assert torch.equal(rm, torch.zeros(3, device="cuda")) and torch.equal(rv, torch.ones(3, device="cuda"))
