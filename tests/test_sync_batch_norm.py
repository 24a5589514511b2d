"""zoo.nn.SyncBatchNorm over 2 processes (gloo, loopback) against torch's batch norm on the concatenated batch."""

from __future__ import annotations

import pytest
import torch
from ddp_ranks import SYNC_BN_CASES, sync_batch_norm_case

import zoo
from zoo.train.launch import launch

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def two_rank_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("syncbn")
    launch(2, sync_batch_norm_case, (str(out),), threads=1, timeout_s=120)
    return [torch.load(out / f"rank{rank}.pt") for rank in range(2)]


@pytest.mark.parametrize("index", range(len(SYNC_BN_CASES)))
def test_two_ranks_equal_torch_on_the_whole_batch(two_rank_results, index):
    shape, sizes, channels_last, affine, dtype = SYNC_BN_CASES[index]
    generator = torch.Generator().manual_seed(index)
    x = (torch.randn(shape, generator=generator, dtype=dtype) * 2 + 3).requires_grad_()
    dy = torch.randn(shape, generator=generator, dtype=dtype)
    ref = torch.nn.BatchNorm2d(shape[1], affine=affine, momentum=0.3).to(dtype)
    if affine:
        with torch.no_grad():
            ref.weight.copy_(torch.rand(shape[1], generator=generator, dtype=dtype) + 0.5)
            ref.bias.copy_(torch.randn(shape[1], generator=generator, dtype=dtype))
    ref._check_input_dim = lambda _: None  # torch's BatchNorm2d refuses the 2-D, 3-D and 5-D cases
    for _ in range(2):
        y = ref(x)
    (y * dy).sum().backward()
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-4)
    ranks = [results[index] for results in two_rank_results]
    torch.testing.assert_close(torch.cat([r["y"] for r in ranks]), y.detach(), **tol)
    torch.testing.assert_close(torch.cat([r["dx"] for r in ranks]), x.grad, **tol)
    if channels_last and sizes[0] > 0:
        assert ranks[0]["dx"].is_contiguous(memory_format=torch.channels_last)
    for r in ranks:  # running statistics identical on every rank, and torch's
        torch.testing.assert_close(r["running_mean"], ref.running_mean, **tol)
        torch.testing.assert_close(r["running_var"], ref.running_var, **tol)
        assert torch.equal(r["running_mean"], ranks[0]["running_mean"])
        assert torch.equal(r["running_var"], ranks[0]["running_var"])
        assert int(r["num_batches_tracked"]) == 2
    if affine:  # local parameter gradients: DistributedDataParallel sums them
        torch.testing.assert_close(ranks[0]["dweight"] + ranks[1]["dweight"], ref.weight.grad, **tol)
        torch.testing.assert_close(ranks[0]["dbias"] + ranks[1]["dbias"], ref.bias.grad, **tol)


def test_single_process_is_plain_batch_norm():
    """Without a process group (or in eval) the layer is zoo's BatchNorm: same numbers, bit for bit."""
    x = torch.randn(8, 3, 4, 4)
    plain = zoo.nn.BatchNorm2d(3)
    sync = zoo.nn.SyncBatchNorm.convert_sync_batchnorm(zoo.nn.BatchNorm2d(3))
    assert isinstance(sync, zoo.nn.SyncBatchNorm)
    assert torch.equal(sync(x), plain(x))
    assert torch.equal(sync.running_var, plain.running_var)
    sync.eval(), plain.eval()
    assert torch.equal(sync(x), plain(x))


def test_convert_keeps_parameters_buffers_and_state_dict_keys():
    model = torch.nn.Sequential(zoo.nn.Conv2d(1, 4, 3), zoo.nn.BatchNorm2d(4),
                                torch.nn.Sequential(torch.nn.BatchNorm1d(5, affine=False, momentum=None)))
    keys = list(model.state_dict())
    weight = model[1].weight
    converted = zoo.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert isinstance(converted[1], zoo.nn.SyncBatchNorm) and isinstance(converted[2][0], zoo.nn.SyncBatchNorm)
    assert converted[1].weight is weight and converted[2][0].momentum is None and converted[2][0].weight is None
    assert list(converted.state_dict()) == keys
    assert isinstance(converted[0], zoo.nn.Conv2d)


def test_functional_form_needs_a_process_group():
    with pytest.raises(RuntimeError, match="torch.distributed is not initialised"):
        zoo.ops.sync_batch_norm(torch.randn(4, 3), None, None)
