"""Second derivatives (create_graph=True) through every zoo op: under create_graph each backward computes with
torch's differentiable backward ops, so gradgradcheck holds and the answers are torch's; the first backward
(no create_graph) stays on zoo's kernels."""

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

import zoo
from conftest import assert_close

ACTIVATIONS = [("none", 0.0), ("relu", 0.0), ("leaky_relu", 0.2), ("elu", 1.3)]


def away_from_zero(*shape: int) -> torch.Tensor:
    """float64 values at least 0.1 from 0: finite differences never cross a ReLU's kink."""
    x = torch.rand(*shape, dtype=torch.float64) + 0.1
    return (x * torch.randint(0, 2, shape, dtype=torch.float64).mul(2).sub(1)).requires_grad_()


def params(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def test_conv2d():
    x, w, b = params(2, 3, 5, 6), params(4, 3, 3, 2), params(4)
    assert gradgradcheck(lambda a, c, d: zoo.ops.conv2d(a, c, d, stride=(2, 1), padding=1, dilation=(1, 2)), (x, w, b))


def test_linear():
    assert gradgradcheck(zoo.ops.linear, (params(5, 7), params(3, 7), params(3)))


@pytest.mark.parametrize("activation,alpha", ACTIVATIONS)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training(activation, alpha, affine):
    x = params(6, 3, 2, 2) * 2 + 1
    w, b = (params(3) + 2, params(3)) if affine else (None, None)
    inputs = (x, w, b) if affine else (x,)

    def fn(a, c=None, d=None):
        return zoo.ops.batch_norm_activation(a, None, None, c, d, training=True, activation=activation, alpha=alpha)

    assert gradgradcheck(fn, inputs)


@pytest.mark.parametrize("activation,alpha", ACTIVATIONS)
def test_batch_norm_eval(activation, alpha):
    x, w, b = params(4, 3, 2, 2), params(3), params(3)
    mean, var = torch.randn(3, dtype=torch.float64), torch.rand(3, dtype=torch.float64) + 0.5

    def fn(a, c, d):
        return zoo.ops.batch_norm_activation(a, mean, var, c, d, training=False, activation=activation, alpha=alpha)

    assert gradgradcheck(fn, (x, w, b))


@pytest.mark.parametrize("activation,alpha", ACTIVATIONS[1:])
def test_activation(activation, alpha):
    assert gradgradcheck(lambda a: torch.ops.zoo.activation(a, activation, alpha), (away_from_zero(3, 4, 5),))


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_max_pool2d(ceil_mode):
    x = torch.randperm(2 * 3 * 7 * 6, dtype=torch.float64).reshape(2, 3, 7, 6).div(10).requires_grad_()  # no ties
    assert gradgradcheck(lambda a: zoo.ops.max_pool2d(a, 3, 2, 1, ceil_mode=ceil_mode), (x,))


def test_maxout():
    x = torch.randperm(4 * 6 * 3, dtype=torch.float64).reshape(4, 6, 3).div(10).requires_grad_()
    assert gradgradcheck(lambda a: zoo.ops.maxout(a, 3), (x,))


def test_dropout():
    seed = torch.tensor([7])
    assert gradgradcheck(lambda a: torch.ops.zoo.dropout(a, 0.4, seed), (params(5, 6),))


def test_second_derivatives_equal_torch_in_a_model():
    """A gradient penalty (the squared norm of the input gradient) differentiated through conv, BN + ReLU, pooling
    and linear layers: zoo's parameter gradients are torch's."""
    zoo_model = torch.nn.Sequential(zoo.nn.Conv2d(2, 4, 3, padding=1), zoo.nn.BatchNormReLU2d(4),
                                    zoo.nn.MaxPool2d(2), torch.nn.Flatten(), zoo.nn.Linear(16, 3)).double()
    torch_model = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                      torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(16, 3)).double()
    torch_model.load_state_dict({k.replace("2.", "3.").replace("4.", "5.") if k[0] in "24" else k: v
                                 for k, v in zoo_model.state_dict().items()})
    x = torch.randn(5, 2, 4, 4, dtype=torch.float64)
    penalties = []
    for model in (zoo_model, torch_model):
        leaf = x.clone().requires_grad_()
        (grad_x,) = torch.autograd.grad(model(leaf).square().sum(), leaf, create_graph=True)
        penalty = grad_x.square().sum()
        penalties.append((penalty, torch.autograd.grad(penalty, list(model.parameters()))))
    assert_close(penalties[0][0], penalties[1][0])
    for ours, theirs in zip(penalties[0][1], penalties[1][1]):
        assert_close(ours, theirs)


def test_first_backward_stays_on_zoo_kernels():
    """Without create_graph nothing changes: gradcheck, and no torch backward op in the graph's recorded kernels."""
    x, w = params(2, 3, 5, 5), params(4, 3, 3, 3)
    assert gradcheck(lambda a, c: zoo.ops.conv2d(a, c), (x, w))
    with torch.profiler.profile() as prof:
        zoo.ops.conv2d(x, w).sum().backward()
    names = {event.name for event in prof.events()}
    assert "zoo::conv2d_backward" in names and "aten::convolution_backward" not in names


def test_sync_batch_norm_refuses_a_second_derivative(tmp_path):
    """As torch's SyncBatchNorm: its backward is once-differentiable, so create_graph through it raises."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        x = params(4, 3, 2, 2)
        y = zoo.ops.sync_batch_norm(x, None, None, params(3), params(3))
        (grad_x,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
        with pytest.raises(RuntimeError, match="once_differentiable"):
            grad_x.sum().backward()
    finally:
        dist.destroy_process_group()
