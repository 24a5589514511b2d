"""zoo batch norm against torch's own: forward, gradients, running stats, layouts, layers."""

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

import zoo
from conftest import assert_close

SHAPES = [
    (2, 1),
    (1, 3, 5),
    (100, 100),
    (257, 7),
    (3, 192),
    (2, 4, 9),
    (1, 2, 1, 2),
    (3, 5, 7, 9),
    (16, 16, 13, 11),
    (5, 192, 8, 8),
    (257, 3, 2, 3),
    (4, 10, 1, 1),
    (256, 1024),  # rows split over threads (64-row tasks), partial sums merged
]


def reference(x, weight, bias, training, running_mean=None, running_var=None, eps=1e-5):
    """torch's batch norm with its own gradients."""
    return F.batch_norm(x, running_mean, running_var, weight, bias, training=training, eps=eps)


def make_inputs(shape, dtype, affine, channels_last=False, offset=3.0):
    x = torch.randn(shape, dtype=dtype) * 2 + offset
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    c = shape[1]
    weight = torch.randn(c, dtype=dtype) if affine else None
    bias = torch.randn(c, dtype=dtype) if affine else None
    return x, weight, bias


def grads(fn, x, weight, bias, grad_y):
    leaves = [t.detach().clone().requires_grad_() if t is not None else None for t in (x, weight, bias)]
    y = fn(*leaves)
    y.backward(grad_y)
    return y.detach(), [t.grad if t is not None else None for t in leaves]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_forward_and_gradients_match_torch(shape, dtype, affine, training):
    x, weight, bias = make_inputs(shape, dtype, affine)
    rm = torch.randn(shape[1], dtype=dtype)
    rv = torch.rand(shape[1], dtype=dtype) + 0.5
    if training and x.numel() // shape[1] <= 1:
        pytest.skip("one value per channel cannot train")
    grad_y = torch.randn(shape, dtype=dtype)
    ours, our_grads = grads(lambda a, w, b: zoo.ops.batch_norm(a, rm.clone(), rv.clone(), w, b, training), x, weight, bias, grad_y)
    ref, ref_grads = grads(lambda a, w, b: reference(a, w, b, training, rm.clone(), rv.clone()), x, weight, bias, grad_y)
    assert_close(ours, ref)
    for g, r in zip(our_grads, ref_grads):
        if r is not None:
            assert_close(g, r, scale=10)  # gradient sums run over up to 257*... values


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", [(3, 5, 7, 9), (8, 192, 4, 4), (2, 3, 1, 5), (64, 64, 8, 8)], ids=str)
@pytest.mark.parametrize("training", [True, False])
def test_channels_last_matches_and_keeps_layout(shape, dtype, training):
    x, weight, bias = make_inputs(shape, dtype, True, channels_last=True)
    rm, rv = torch.zeros(shape[1], dtype=dtype), torch.ones(shape[1], dtype=dtype)
    grad_y = torch.randn(shape, dtype=dtype)
    ours, our_grads = grads(lambda a, w, b: zoo.ops.batch_norm(a, rm.clone(), rv.clone(), w, b, training), x, weight, bias, grad_y)
    ref, ref_grads = grads(lambda a, w, b: reference(a.contiguous(), w, b, training, rm.clone(), rv.clone()), x, weight, bias, grad_y)
    assert ours.is_contiguous(memory_format=torch.channels_last)
    assert_close(ours, ref)
    for g, r in zip(our_grads, ref_grads):
        assert_close(g, r, scale=10)


def test_non_contiguous_input_is_read_correctly():
    x = torch.randn(6, 8, 5, 4, dtype=torch.float64).transpose(2, 3)  # neither NCHW- nor NHWC-contiguous
    assert_close(zoo.ops.batch_norm(x, None, None, training=True), reference(x, None, None, True))


def test_large_float32_input_matches_the_float64_reference():
    # Over 32 MB: y and dx are written with non-temporal stores; 31 x 33 planes start off
    # the 64-byte boundary those stores need (scalar head and tail).
    x = torch.randn(65, 128, 31, 33, requires_grad=True)
    weight, bias = torch.randn(128), torch.randn(128)
    grad_y = torch.randn(65, 128, 31, 33)
    y = zoo.ops.batch_norm(x, None, None, weight, bias, training=True)
    (dx,) = torch.autograd.grad(y, x, grad_y)
    x64 = x.detach().double().requires_grad_()
    exact = reference(x64, weight.double(), bias.double(), True)
    (exact_dx,) = torch.autograd.grad(exact, x64, grad_y.double())
    for ours, ref in ((y, exact), (dx, exact_dx)):
        assert (ours.double() - ref).abs().max().item() < 1e-4 * ref.abs().max().item()


def test_statistics_are_stable_for_large_means():
    # E[x^2] - E[x]^2 in float32 would lose the variance of data centred at 1e4.
    x = torch.randn(64, 4, 16, 16, dtype=torch.float64) + 1e4
    rm, rv = torch.zeros(4, dtype=torch.float32), torch.zeros(4, dtype=torch.float32)
    zoo.ops.batch_norm(x.float(), rm, rv, training=True, momentum=1.0)
    expected = x.var(dim=(0, 2, 3)).float()
    torch.testing.assert_close(rv, expected, rtol=2e-3, atol=0)


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 5), (2, 3, 4, 5)], ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_gradcheck_training(shape, affine):
    x, weight, bias = make_inputs(shape, torch.float64, affine)
    inputs = [t.requires_grad_() for t in (x, weight, bias) if t is not None]
    fn = (lambda a, w, b: zoo.ops.batch_norm(a, None, None, w, b, True)) if affine else (
        lambda a: zoo.ops.batch_norm(a, None, None, None, None, True)
    )
    assert gradcheck(fn, tuple(inputs))


def test_gradcheck_channels_last_training():
    x, weight, bias = make_inputs((2, 3, 3, 4), torch.float64, True, channels_last=True)
    assert gradcheck(lambda a, w, b: zoo.ops.batch_norm(a, None, None, w, b, True), (x.requires_grad_(), weight.requires_grad_(), bias.requires_grad_()))


def test_gradcheck_eval():
    x, weight, bias = make_inputs((3, 4, 2, 3), torch.float64, True)
    rm, rv = torch.randn(4, dtype=torch.float64), torch.rand(4, dtype=torch.float64) + 0.5
    assert gradcheck(lambda a, w, b: zoo.ops.batch_norm(a, rm, rv, w, b, False), (x.requires_grad_(), weight.requires_grad_(), bias.requires_grad_()))


@pytest.mark.parametrize("op_name", ["batch_norm_train", "batch_norm_eval", "batch_norm_backward"])
def test_opcheck(op_name):
    x = torch.randn(4, 3, 5, 5)
    w, b = torch.randn(3, requires_grad=True), torch.randn(3, requires_grad=True)
    samples = {
        "batch_norm_train": [(x.requires_grad_(), w, b, torch.randn(3), torch.rand(3) + 1, 0.1, 1e-5), (x.contiguous(memory_format=torch.channels_last), None, None, None, None, 0.1, 1e-3), (torch.randn(7, 3), w, b, torch.zeros(3), None, 0.5, 1e-5)],
        "batch_norm_eval": [(x, w, b, torch.randn(3), torch.rand(3) + 1, 1e-5), (torch.randn(5, 3, 6), None, None, torch.randn(3), torch.rand(3) + 1, 0.0)],
        "batch_norm_backward": [(torch.randn(4, 3, 5, 5), x.detach(), w.detach(), torch.randn(3), torch.rand(3) + 1, True), (torch.randn(7, 3), torch.randn(7, 3), None, torch.randn(3), torch.rand(3) + 1, False)],
    }[op_name]
    op = getattr(torch.ops.zoo, op_name).default
    for args in samples:
        torch.library.opcheck(op, args)


@pytest.mark.parametrize("layer", ["BatchNorm1d", "BatchNorm2d"])
@pytest.mark.parametrize("momentum", [0.1, 0.7, None])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_running_stats_follow_torch_over_steps(layer, momentum, affine, dtype):
    shape = (16, 6) if layer == "BatchNorm1d" else (8, 6, 5, 5)
    ours = getattr(zoo.nn, layer)(6, momentum=momentum, affine=affine).to(dtype)
    ref = getattr(torch.nn, layer)(6, momentum=momentum, affine=affine).to(dtype)
    ours.load_state_dict(ref.state_dict())
    for _ in range(5):
        x = torch.randn(shape, dtype=dtype) * 3 + 2
        assert_close(ours(x), ref(x))
    assert_close(ours.running_mean, ref.running_mean)
    assert_close(ours.running_var, ref.running_var)
    assert ours.num_batches_tracked.item() == ref.num_batches_tracked.item() == 5
    ours.eval(), ref.eval()
    x = torch.randn(shape, dtype=dtype)
    assert_close(ours(x), ref(x))


def test_track_running_stats_false_uses_batch_stats_in_eval():
    ours, ref = zoo.nn.BatchNorm2d(3, track_running_stats=False), torch.nn.BatchNorm2d(3, track_running_stats=False)
    ours.load_state_dict(ref.state_dict())
    assert ours.running_mean is None and set(ours.state_dict()) == set(ref.state_dict())
    ours.eval(), ref.eval()
    x = torch.randn(4, 3, 5, 5)
    assert_close(ours(x), ref(x))


def test_state_dict_round_trips_with_torch():
    ref = torch.nn.BatchNorm2d(4)
    ref(torch.randn(8, 4, 3, 3))
    ours = zoo.nn.BatchNorm2d(4)
    ours.load_state_dict(ref.state_dict())
    assert list(ours.state_dict()) == list(ref.state_dict())
    back = torch.nn.BatchNorm2d(4)
    back.load_state_dict(ours.state_dict())
    for key, value in ref.state_dict().items():
        assert torch.equal(back.state_dict()[key], value)


def test_large_outputs_from_the_block_cache_never_alias_live_tensors():
    # Outputs of >= 1 MiB come from a cache of freed blocks; a live output must never be handed out again.
    x1, x2 = torch.randn(8, 64, 32, 32), torch.randn(8, 64, 32, 32)
    y1 = zoo.ops.batch_norm(x1, None, None, training=True)
    expected = y1.clone()
    y2 = zoo.ops.batch_norm(x2, None, None, training=True)
    assert y1.data_ptr() != y2.data_ptr()
    assert torch.equal(y1, expected)
    del y1
    y3 = zoo.ops.batch_norm(x1, None, None, training=True)  # may reuse y1's block, now free
    assert torch.equal(y3, expected)


@pytest.mark.parametrize("grad_mode", ["no_grad", "no input requires grad", "input requires grad"])
def test_running_buffer_updates_are_recorded_with_and_without_autograd(grad_mode):
    # The kernel writes the buffers below autograd; with or without an autograd node their version
    # moves, as after torch's own in-place update, so a stale saved copy is caught.
    x = torch.randn(8, 3, 4, 4, requires_grad=grad_mode == "input requires grad")
    rm, rv = torch.zeros(3), torch.ones(3)
    versions = rm._version, rv._version
    ref_rm, ref_rv = rm.clone(), rv.clone()
    with torch.set_grad_enabled(grad_mode != "no_grad"):
        y = zoo.ops.batch_norm(x, rm, rv, training=True, momentum=0.3)
        ref = F.batch_norm(x, ref_rm, ref_rv, training=True, momentum=0.3)
    assert rm._version > versions[0] and rv._version > versions[1]
    assert (y.grad_fn is None) == (grad_mode != "input requires grad") == (ref.grad_fn is None)
    assert_close(y, ref)
    assert_close(rm, ref_rm)
    assert_close(rv, ref_rv)


@pytest.mark.parametrize("training", [True, False])
def test_no_grad_calls_build_no_graph_and_match(training):
    x, weight, bias = make_inputs((6, 4, 3, 3), torch.float64, affine=True)
    weight.requires_grad_()
    rm, rv = torch.randn(4, dtype=torch.float64), torch.rand(4, dtype=torch.float64) + 0.5
    with torch.no_grad():
        y = zoo.ops.batch_norm(x, rm.clone(), rv.clone(), weight, bias, training)
    assert y.grad_fn is None and not y.requires_grad
    assert_close(y, reference(x, weight.detach(), bias, training, rm.clone(), rv.clone()))
