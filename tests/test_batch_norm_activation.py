"""Batch norm with a fused activation (zoo.ops.batch_norm_activation / batch_norm_relu, zoo.nn.BatchNormReLU*d,
BatchNormLeakyReLU*d, BatchNormELU*d) against torch's batch norm then torch's activation."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import gradcheck

import zoo
from conftest import assert_close
from test_batch_norm import SHAPES, grads, make_inputs

# name -> (alpha used here, torch's functional form, the fused 1d and 2d layers, their activation keyword)
ACTIVATIONS = {
    "relu": (0.0, lambda y, alpha: F.relu(y), zoo.nn.BatchNormReLU1d, zoo.nn.BatchNormReLU2d, None),
    "leaky_relu": (0.2, F.leaky_relu, zoo.nn.BatchNormLeakyReLU1d, zoo.nn.BatchNormLeakyReLU2d, "negative_slope"),
    "elu": (1.3, F.elu, zoo.nn.BatchNormELU1d, zoo.nn.BatchNormELU2d, "alpha"),
}


def fused(activation, x, running_mean, running_var, weight, bias, training):
    """zoo's batch norm with `activation` fused, through the public functional form."""
    alpha = ACTIVATIONS[activation][0]
    return zoo.ops.batch_norm_activation(x, running_mean, running_var, weight, bias, training, activation=activation,
                                         alpha=alpha)


def then(activation, y):
    """torch's `activation` of y."""
    alpha, function = ACTIVATIONS[activation][:2]
    return function(y, alpha)


def reference(activation, x, weight, bias, training, running_mean=None, running_var=None):
    """torch's batch norm, then torch's activation."""
    return then(activation, F.batch_norm(x, running_mean, running_var, weight, bias, training=training))


def layer(activation, dims, *args, **kwargs):
    """The fused layer of `activation`, with this file's alpha."""
    alpha, _, one_d, two_d, keyword = ACTIVATIONS[activation]
    extra = {keyword: alpha} if keyword else {}
    return (one_d if dims == 1 else two_d)(*args, **kwargs, **extra)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_forward_gradients_and_running_stats_match_torch(activation, shape, dtype, affine, training):
    # offset 0: about half of the pre-activations are negative, so both branches matter.
    x, weight, bias = make_inputs(shape, dtype, affine, offset=0.0)
    if training and x.numel() // shape[1] <= 1:
        pytest.skip("one value per channel cannot train")
    rm, rv = torch.randn(shape[1], dtype=dtype), torch.rand(shape[1], dtype=dtype) + 0.5
    ours_rm, ours_rv, ref_rm, ref_rv = rm.clone(), rv.clone(), rm.clone(), rv.clone()
    grad_y = torch.randn(shape, dtype=dtype)
    ours, our_grads = grads(lambda a, w, b: fused(activation, a, ours_rm, ours_rv, w, b, training), x, weight,
                            bias, grad_y)
    ref, ref_grads = grads(lambda a, w, b: reference(activation, a, w, b, training, ref_rm, ref_rv), x, weight, bias,
                           grad_y)
    assert_close(ours, ref)
    assert_close(ours_rm, ref_rm)
    assert_close(ours_rv, ref_rv)
    for g, r in zip(our_grads, ref_grads):
        if r is not None:
            assert_close(g, r, scale=10)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("layout", ["planar", "channels_last", "rows", "streaming"])
def test_agrees_with_zoo_batch_norm_then_torch_activation(activation, dtype, layout):
    # The fused backward recomputes the pre-activation from x; if it rounded differently from the forward,
    # a value near zero would take the other branch's gradient. Against zoo's own unfused batch norm the
    # arithmetic is the same: ReLU's values and gradients agree bit for bit, LeakyReLU's values too (its
    # gradient sums may contract dy * slope into their adds), and ELU to its exponentials' ulp (zoo's own
    # against torch's). The streaming case: over 32 MiB, non-temporal stores.
    shape = {"planar": (16, 12, 9, 11), "channels_last": (8, 24, 6, 5), "rows": (300, 40),
             "streaming": (65, 128, 31, 33)}[layout]
    if layout == "streaming" and dtype == torch.float64:
        shape = (33, 128, 31, 33)
    x, weight, bias = make_inputs(shape, dtype, True, channels_last=layout == "channels_last", offset=0.0)
    grad_y = torch.randn(shape, dtype=dtype)
    ours, our_grads = grads(lambda a, w, b: fused(activation, a, None, None, w, b, True), x, weight, bias, grad_y)
    plain, plain_grads = grads(lambda a, w, b: then(activation, zoo.ops.batch_norm(a, None, None, w, b, True)), x,
                               weight, bias, grad_y)
    if activation == "elu":
        assert_close(ours, plain)
    else:
        assert torch.equal(ours, plain)
    for f, p in zip(our_grads, plain_grads):
        if activation == "relu":
            assert torch.equal(f, p)
        else:
            # a wrong branch would be off by about |dy| (1 - slope) at that value, far beyond this
            assert_close(f, p, scale=10)


def test_relu_matches_zoo_batch_norm_relu():
    x, weight, bias = make_inputs((8, 5, 4, 4), torch.float32, True, offset=0.0)
    assert torch.equal(zoo.ops.batch_norm_relu(x, None, None, weight, bias, True),
                       fused("relu", x, None, None, weight, bias, True))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_nan_and_infinities_as_in_torch(activation):
    x = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    rm, rv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    x[1, 2, 3, 4] = float("nan")
    x[0, 1, 0, 0], x[0, 1, 0, 1] = float("inf"), float("-inf")
    ours = fused(activation, x, rm, rv, None, None, False)
    torch.testing.assert_close(ours, reference(activation, x, None, None, False, rm, rv), equal_nan=True)
    assert ours[1, 2, 3, 4].isnan()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_elu_over_its_whole_range(dtype):
    # zoo's exp and expm1 (csrc/cpu/exp.h) against torch's, from where expm1 is -1 to where ELU is the identity,
    # with the tiny and underflowing tails, forward and backward.
    values = torch.cat([-torch.logspace(-30, 3, 2000, dtype=torch.float64), torch.linspace(-5, 5, 2001,
                                                                                            dtype=torch.float64)])
    x = values.to(dtype).reshape(-1, 1).repeat(1, 2)  # (M, 2): a rows layout, identity normalisation
    rm, rv = torch.zeros(2, dtype=dtype), torch.full((2,), 1 - 1e-5, dtype=dtype)
    ours = fused("elu", x, rm, rv, None, None, False)
    torch.testing.assert_close(ours, F.elu(F.batch_norm(x, rm, rv, training=False), 1.3), rtol=4e-7 if
                               dtype == torch.float32 else 1e-15, atol=0)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 5), (2, 3, 4, 5)], ids=str)
@pytest.mark.parametrize("training", [True, False])
def test_gradcheck(activation, shape, training):
    x, weight, bias = make_inputs(shape, torch.float64, True, offset=0.0)
    rm, rv = torch.randn(shape[1], dtype=torch.float64), torch.rand(shape[1], dtype=torch.float64) + 0.5
    assert gradcheck(lambda a, w, b: fused(activation, a, rm, rv, w, b, training),
                     (x.requires_grad_(), weight.requires_grad_(), bias.requires_grad_()))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradcheck_channels_last_without_affine(activation):
    x, _, _ = make_inputs((3, 3, 3, 4), torch.float64, False, channels_last=True, offset=0.0)
    assert gradcheck(lambda a: fused(activation, a, None, None, None, None, True), (x.requires_grad_(),))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("op_name", ["batch_norm_train", "batch_norm_eval", "batch_norm_backward"])
def test_opcheck(activation, op_name):
    alpha = ACTIVATIONS[activation][0]
    x = torch.randn(4, 3, 5, 5)
    w, b = torch.randn(3, requires_grad=True), torch.randn(3, requires_grad=True)
    samples = {
        "batch_norm_train": [
            (x.requires_grad_(), w, b, torch.randn(3), torch.rand(3) + 1, 0.1, 1e-5, activation, alpha),
            (torch.randn(7, 3, requires_grad=True), None, None, None, None, 0.1, 1e-3, activation, alpha),
        ],
        "batch_norm_eval": [(x, w, b, torch.randn(3), torch.rand(3) + 1, 1e-5, activation, alpha)],
        "batch_norm_backward": [
            (torch.randn(4, 3, 5, 5), x.detach(), w.detach(), torch.randn(3), torch.rand(3) + 1, True, b.detach(),
             activation, alpha),
            (torch.randn(7, 3), torch.randn(7, 3), None, torch.randn(3), torch.rand(3) + 1, True, None, activation,
             alpha),
        ],
    }[op_name]
    op = getattr(torch.ops.zoo, op_name).default
    for args in samples:
        torch.library.opcheck(op, args)


def test_activation_backward_outside_training_is_refused():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="fused elu's backward needs train=True"):
        torch.ops.zoo.batch_norm_backward(x, x, None, torch.zeros(3), torch.ones(3), False, None, "elu", 1.0)


def test_unknown_activation_is_named():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="unknown fused activation 'gelu'"):
        torch.ops.zoo.batch_norm_train(x, None, None, None, None, 0.1, 1e-5, "gelu")
    with pytest.raises(ValueError, match="zoo.ops.batch_norm_activation: unknown activation 'gelu'"):
        zoo.ops.batch_norm_activation(x, None, None, training=True, activation="gelu")


def test_wrong_bias_shape_is_named():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="bias must have shape"):
        torch.ops.zoo.batch_norm_backward(x, x, None, torch.zeros(3), torch.ones(3), True, torch.zeros(4), "relu")


def test_errors_name_the_public_function():
    with pytest.raises(ValueError, match="zoo.ops.batch_norm_relu: running_mean and running_var are required"):
        zoo.ops.batch_norm_relu(torch.randn(4, 3), None, None, training=False)
    with pytest.raises(ValueError, match="zoo.ops.batch_norm_activation: running_mean and running_var are required"):
        zoo.ops.batch_norm_activation(torch.randn(4, 3), None, None, training=False, activation="elu")


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_compiles_and_exports(activation):
    module = layer(activation, 2, 3)
    x = torch.randn(4, 3, 5, 5)
    expected = module(x)
    module.num_batches_tracked.zero_()
    module.reset_running_stats()
    torch.testing.assert_close(torch.compile(module, fullgraph=True)(x), expected)
    module.eval()
    program = torch.export.export(module, (x,))
    torch.testing.assert_close(program.module()(x), module(x))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_layer_is_drop_in_for_torch_batch_norm_then_activation(activation, dims, momentum):
    ours = layer(activation, dims, 6, momentum=momentum).double()
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
        (plain_dx,) = torch.autograd.grad(then(activation, plain(x)).sum(), x)
        assert_close(ours_dx, plain_dx, scale=10)
    for name, tensor in plain.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[name], tensor)
    ours.eval()
    plain.eval()
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    assert_close(ours(x), then(activation, plain(x)))
    # eval mode with a gradient: batch norm's kernel, then torch's activation
    (ours_dx,) = torch.autograd.grad(ours(x).sum(), x)
    (plain_dx,) = torch.autograd.grad(then(activation, plain(x)).sum(), x)
    assert_close(ours_dx, plain_dx)


def test_layers_show_their_parameter():
    assert "negative_slope=0.2" in repr(zoo.nn.BatchNormLeakyReLU2d(4, negative_slope=0.2))
    assert "alpha=0.5" in repr(zoo.nn.BatchNormELU1d(4, alpha=0.5))
    assert zoo.nn.BatchNormLeakyReLU1d(4).negative_slope == 0.01
    assert zoo.nn.BatchNormELU2d(4, eps=1e-3).alpha == 1.0


def test_sync_conversion_keeps_the_activation():
    model = nn.Sequential(zoo.nn.Conv2d(2, 3, 3), zoo.nn.BatchNormReLU2d(3), nn.Identity(), zoo.nn.BatchNorm2d(3),
                          zoo.nn.BatchNormELU2d(3, alpha=0.5), zoo.nn.BatchNormLeakyReLU2d(3, negative_slope=0.3))
    converted = zoo.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert type(converted[1]) is zoo.nn.SyncBatchNormReLU
    assert type(converted[3]) is zoo.nn.SyncBatchNorm and converted[3].activation == "none"
    assert (converted[4].activation, converted[4].activation_alpha) == ("elu", 0.5)
    assert (converted[5].activation, converted[5].activation_alpha) == ("leaky_relu", 0.3)
    x = torch.randn(4, 2, 6, 6)
    # Without a process group the synchronized layers are the plain ones (same parameters and buffers).
    assert (converted[1](converted[0](x)) >= 0).all()
    torch.testing.assert_close(converted(x), model(x))
    model.eval()
    converted.eval()
    torch.testing.assert_close(converted(x), model(x))
