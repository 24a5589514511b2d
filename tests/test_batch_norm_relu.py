"""Batch norm with the fused ReLU (zoo.ops.batch_norm_relu, zoo.nn.BatchNormReLU*d) against torch's batch norm then ReLU."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import gradcheck

import zoo
from conftest import assert_close
from test_batch_norm import SHAPES, grads, make_inputs


def reference(x, weight, bias, training, running_mean=None, running_var=None):
    """torch's batch norm, then torch's ReLU."""
    return F.relu(F.batch_norm(x, running_mean, running_var, weight, bias, training=training))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_forward_gradients_and_running_stats_match_torch(shape, dtype, affine, training):
    # offset 0: about half of the outputs are negative, so ReLU's mask matters.
    x, weight, bias = make_inputs(shape, dtype, affine, offset=0.0)
    if training and x.numel() // shape[1] <= 1:
        pytest.skip("one value per channel cannot train")
    rm, rv = torch.randn(shape[1], dtype=dtype), torch.rand(shape[1], dtype=dtype) + 0.5
    ours_rm, ours_rv, ref_rm, ref_rv = rm.clone(), rv.clone(), rm.clone(), rv.clone()
    grad_y = torch.randn(shape, dtype=dtype)
    ours, our_grads = grads(lambda a, w, b: zoo.ops.batch_norm_relu(a, ours_rm, ours_rv, w, b, training), x, weight,
                            bias, grad_y)
    ref, ref_grads = grads(lambda a, w, b: reference(a, w, b, training, ref_rm, ref_rv), x, weight, bias, grad_y)
    assert_close(ours, ref)
    assert_close(ours_rm, ref_rm)
    assert_close(ours_rv, ref_rv)
    for g, r in zip(our_grads, ref_grads):
        if r is not None:
            assert_close(g, r, scale=10)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("layout", ["planar", "channels_last", "rows", "streaming"])
def test_equals_zoo_batch_norm_then_relu_bit_for_bit(dtype, layout):
    # The fused backward recomputes ReLU's mask from x; if it rounded differently from the forward, an
    # output near zero would get the other gradient. Against zoo's own unfused batch norm every value is
    # the same arithmetic, so they must agree exactly (the streaming case: over 32 MiB, non-temporal stores).
    shape = {"planar": (16, 12, 9, 11), "channels_last": (8, 24, 6, 5), "rows": (300, 40),
             "streaming": (65, 128, 31, 33)}[layout]
    if layout == "streaming" and dtype == torch.float64:
        shape = (33, 128, 31, 33)
    x, weight, bias = make_inputs(shape, dtype, True, channels_last=layout == "channels_last", offset=0.0)
    grad_y = torch.randn(shape, dtype=dtype)
    fused, fused_grads = grads(lambda a, w, b: zoo.ops.batch_norm_relu(a, None, None, w, b, True), x, weight, bias,
                               grad_y)
    plain, plain_grads = grads(lambda a, w, b: torch.relu(zoo.ops.batch_norm(a, None, None, w, b, True)), x, weight,
                               bias, grad_y)
    assert torch.equal(fused, plain)
    for f, p in zip(fused_grads, plain_grads):
        assert torch.equal(f, p)


def test_nan_propagates_as_in_torch():
    x = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    rm, rv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    x[1, 2, 3, 4] = float("nan")
    ours = zoo.ops.batch_norm_relu(x, rm, rv, training=False)
    torch.testing.assert_close(ours, reference(x, None, None, False, rm, rv), equal_nan=True)
    assert ours[1, 2, 3, 4].isnan()


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 5), (2, 3, 4, 5)], ids=str)
@pytest.mark.parametrize("training", [True, False])
def test_gradcheck(shape, training):
    x, weight, bias = make_inputs(shape, torch.float64, True, offset=0.0)
    rm, rv = torch.randn(shape[1], dtype=torch.float64), torch.rand(shape[1], dtype=torch.float64) + 0.5
    assert gradcheck(lambda a, w, b: zoo.ops.batch_norm_relu(a, rm, rv, w, b, training),
                     (x.requires_grad_(), weight.requires_grad_(), bias.requires_grad_()))


def test_gradcheck_channels_last_without_affine():
    x, _, _ = make_inputs((3, 3, 3, 4), torch.float64, False, channels_last=True, offset=0.0)
    assert gradcheck(lambda a: zoo.ops.batch_norm_relu(a, None, None, None, None, True), (x.requires_grad_(),))


@pytest.mark.parametrize("op_name", ["batch_norm_train", "batch_norm_eval", "batch_norm_backward"])
def test_opcheck_with_relu(op_name):
    x = torch.randn(4, 3, 5, 5)
    w, b = torch.randn(3, requires_grad=True), torch.randn(3, requires_grad=True)
    samples = {
        "batch_norm_train": [
            (x.requires_grad_(), w, b, torch.randn(3), torch.rand(3) + 1, 0.1, 1e-5, True),
            (torch.randn(7, 3, requires_grad=True), None, None, None, None, 0.1, 1e-3, True),
        ],
        "batch_norm_eval": [(x, w, b, torch.randn(3), torch.rand(3) + 1, 1e-5, True)],
        "batch_norm_backward": [
            (torch.randn(4, 3, 5, 5), x.detach(), w.detach(), torch.randn(3), torch.rand(3) + 1, True, b.detach(), True),
            (torch.randn(7, 3), torch.randn(7, 3), None, torch.randn(3), torch.rand(3) + 1, True, None, True),
        ],
    }[op_name]
    op = getattr(torch.ops.zoo, op_name).default
    for args in samples:
        torch.library.opcheck(op, args)


def test_relu_backward_outside_training_is_refused():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="fused ReLU's backward needs train=True"):
        torch.ops.zoo.batch_norm_backward(x, x, None, torch.zeros(3), torch.ones(3), False, None, True)


def test_wrong_bias_shape_is_named():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="bias must have shape"):
        torch.ops.zoo.batch_norm_backward(x, x, None, torch.zeros(3), torch.ones(3), True, torch.zeros(4), True)


def test_errors_name_the_public_function():
    with pytest.raises(ValueError, match="zoo.ops.batch_norm_relu: running_mean and running_var are required"):
        zoo.ops.batch_norm_relu(torch.randn(4, 3), None, None, training=False)


def test_compiles_and_exports():
    layer = zoo.nn.BatchNormReLU2d(3)
    x = torch.randn(4, 3, 5, 5)
    expected = layer(x)
    layer.num_batches_tracked.zero_()
    layer.reset_running_stats()
    torch.testing.assert_close(torch.compile(layer, fullgraph=True)(x), expected)
    layer.eval()
    program = torch.export.export(layer, (x,))
    torch.testing.assert_close(program.module()(x), layer(x))


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_layer_is_drop_in_for_torch_batch_norm_then_relu(dims, momentum):
    ours = (zoo.nn.BatchNormReLU1d if dims == 1 else zoo.nn.BatchNormReLU2d)(6, momentum=momentum).double()
    plain = (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(6, momentum=momentum).double()
    with torch.no_grad():
        plain.weight.normal_()
        plain.bias.normal_()
    ours.load_state_dict(plain.state_dict())
    assert list(ours.state_dict()) == list(plain.state_dict())
    shape = (20, 6) if dims == 1 else (5, 6, 4, 3)
    for _ in range(3):
        x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
        (ours_dx,) = torch.autograd.grad(ours(x).sum(), x)
        (plain_dx,) = torch.autograd.grad(torch.relu(plain(x)).sum(), x)
        assert_close(ours_dx, plain_dx, scale=10)
    for name, tensor in plain.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[name], tensor)
    ours.eval()
    plain.eval()
    x = torch.randn(shape, dtype=torch.float64)
    assert_close(ours(x), torch.relu(plain(x)))


def test_sync_conversion_keeps_the_relu():
    model = nn.Sequential(zoo.nn.Conv2d(2, 3, 3), zoo.nn.BatchNormReLU2d(3), nn.Identity(), zoo.nn.BatchNorm2d(3))
    converted = zoo.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert type(converted[1]) is zoo.nn.SyncBatchNormReLU
    assert type(converted[3]) is zoo.nn.SyncBatchNorm
    x = torch.randn(4, 2, 6, 6)
    # Without a process group the synchronized layers are the plain ones (same parameters and buffers).
    assert (converted[1](converted[0](x)) >= 0).all()
    model.eval()
    converted.eval()
    torch.testing.assert_close(converted(x), model(x))
