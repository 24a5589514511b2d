"""zoo dropout: its mask against an independent Philox4x32-10 (checked on Random123's known answers),
torch's dropout semantics (scaling, NaN, p = 0 / 1, eval, layouts, errors), gradients and tracing."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck, gradgradcheck

import zoo

MASK32 = np.uint64(0xFFFFFFFF)


def philox4x32_10(counter, key):
    """Philox4x32-10 of numpy uint64 arrays holding 32-bit words (Salmon et al. 2011), independent of zoo's C++."""
    c = [np.asarray(v, dtype=np.uint64) for v in counter]
    k = [np.asarray(v, dtype=np.uint64) for v in key]
    for _ in range(10):
        p0, p1 = np.uint64(0xD2511F53) * c[0], np.uint64(0xCD9E8D57) * c[2]
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ k[0], p1 & MASK32, (p0 >> np.uint64(32)) ^ c[3] ^ k[1], p0 & MASK32]
        k = [(k[0] + np.uint64(0x9E3779B9)) & MASK32, (k[1] + np.uint64(0xBB67AE85)) & MASK32]
    return c


def reference_keep(n: int, p: float, seed: int) -> torch.Tensor:
    """Which of n elements the documented rule keeps: word i % 4 of block i // 4 below floor((1 - p) 2^32)."""
    j = np.arange((n + 3) // 4, dtype=np.uint64)
    zero = np.zeros_like(j)
    key = (np.uint64(seed) & MASK32, np.uint64(seed) >> np.uint64(32))
    words = np.stack(philox4x32_10((j & MASK32, j >> np.uint64(32), zero, zero), key), axis=1).reshape(-1)[:n]
    return torch.from_numpy(words < math.floor(math.ldexp(1.0 - p, 32)))


def seed_tensor(seed: int, device: str = "cpu") -> torch.Tensor:
    return torch.tensor(seed, dtype=torch.int64, device=device)


@pytest.mark.parametrize(
    ("counter", "key", "expected"),
    [  # Random123's kat_vectors, philox4x32 10
        ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
        ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
         (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
    ],
)
def test_reference_philox_has_the_published_answers(counter, key, expected):
    assert tuple(int(v) for v in philox4x32_10(counter, key)) == expected


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [1, 3, 4, 5, 63, 64, 65, 1000, 70001])
@pytest.mark.parametrize(("p", "seed"), [(0.5, 0), (0.1, 2**62 - 1), (1 / 3, 123456789012345), (0.9, 7)])
def test_mask_is_the_documented_philox_rule(dtype, n, p, seed):
    x = torch.randn(n, dtype=dtype) + 3
    y = torch.ops.zoo.dropout(x, p, seed_tensor(seed))
    # torch's arithmetic: a 0/1 mask divided by (1 - p) in x's dtype, times x.
    expected = x * (reference_keep(n, p, seed).to(dtype) / (1 - p))
    torch.testing.assert_close(y, expected, rtol=0, atol=0)


def test_mask_does_not_depend_on_threads_or_shape():
    x = torch.randn(3, 5, 7, 11, 13)
    seed = seed_tensor(99)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = torch.ops.zoo.dropout(x, 0.4, seed)
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(torch.ops.zoo.dropout(x, 0.4, seed), one, rtol=0, atol=0)
    torch.testing.assert_close(torch.ops.zoo.dropout(x.reshape(-1), 0.4, seed).reshape(x.shape), one, rtol=0, atol=0)


def test_kept_fraction_and_mean_are_right():
    x = torch.ones(1_000_000)
    for p in (0.2, 0.5, 0.8):
        y = zoo.ops.dropout(x, p)
        kept = (y != 0).double().mean().item()
        assert abs(kept - (1 - p)) < 5 * math.sqrt(p * (1 - p) / x.numel())  # 5 sigma
        assert torch.all((y == 0) | (y == torch.tensor(1 / (1 - p))))


def test_seeded_by_torch_manual_seed_and_fresh_each_call():
    x = torch.randn(4096)
    torch.manual_seed(5)
    first, second = zoo.ops.dropout(x, 0.5), zoo.ops.dropout(x, 0.5)
    torch.manual_seed(5)
    assert torch.equal(zoo.ops.dropout(x, 0.5), first)
    assert not torch.equal(first, second)


def test_torch_semantics_of_the_edge_cases():
    x = torch.tensor([float("nan"), float("inf"), -2.0, 1.0] * 64)
    for training, p in ((False, 0.5), (True, 0.0)):
        assert zoo.ops.dropout(x, p, training) is x
        assert F.dropout(x, p, training) is x
    empty = torch.empty(0, 3)
    assert zoo.ops.dropout(empty, 0.5) is empty
    # p = 1: x * 0, so NaN and inf give NaN, as torch's
    torch.testing.assert_close(zoo.ops.dropout(x, 1.0), F.dropout(x, 1.0), rtol=0, atol=0, equal_nan=True)
    # dropped NaN and inf stay NaN (x * 0), kept ones are scaled; dropped negatives give -0.0, as torch's
    y = zoo.ops.dropout(x, 0.5)
    kept = ~torch.isnan(y) & (y != 0)
    assert torch.isnan(y[0::4]).all()
    assert torch.equal(y[2::4][kept[2::4]], torch.full_like(y[2::4][kept[2::4]], -4.0))
    assert torch.equal(torch.signbit(y[2::4]), torch.ones(64, dtype=torch.bool))
    assert zoo.ops.dropout(torch.tensor(3.0), 0.5).shape == ()


@pytest.mark.parametrize("make", [
    lambda: torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last),
    lambda: torch.randn(6, 7).t(),
    lambda: torch.randn(4, 10)[:, ::3],
    lambda: torch.randn(1, 5).expand(3, 5),
])
def test_other_layouts_keep_torch_strides_and_the_logical_mask(make):
    x = make()
    torch.manual_seed(1)
    y = zoo.ops.dropout(x, 0.5)
    torch.manual_seed(1)
    y_contiguous = zoo.ops.dropout(x.contiguous(), 0.5)
    assert torch.equal(y, y_contiguous)  # element i of the row-major order, whatever the strides
    assert y.stride() == F.dropout(x, 0.5, True).stride()


def test_inplace_writes_the_input_like_torch():
    x = torch.randn(100)
    original = x.clone()
    out = zoo.ops.dropout(x, 0.5, inplace=True)
    assert out is x
    assert torch.equal(x == 0, (out == 0))
    torch.testing.assert_close(x[x != 0], original[x != 0] * 2, rtol=0, atol=0)
    # On a non-leaf the gradient flows through the write, as through torch's in-place dropout.
    w = torch.randn(100, requires_grad=True)
    hidden = w * 3
    out = zoo.ops.dropout(hidden, 0.5, inplace=True)
    out.sum().backward()
    torch.testing.assert_close(w.grad, 3 * (out != 0) * torch.tensor(2.0), rtol=0, atol=0)
    leaf = torch.randn(4, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        zoo.ops.dropout(leaf, 0.5, inplace=True)
    with pytest.raises(RuntimeError, match="in-place"):
        F.dropout(leaf, 0.5, inplace=True)


def test_gradient_is_the_same_mask():
    x = torch.randn(3, 1000, requires_grad=True)
    y = zoo.ops.dropout(x, 0.3)
    dy = torch.randn_like(y)
    y.backward(dy)
    scale = torch.tensor(1 / 0.7)
    torch.testing.assert_close(x.grad, dy * (y != 0) * scale, rtol=0, atol=0)


def test_gradcheck_and_gradgradcheck():
    x = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    seed = seed_tensor(3)
    assert gradcheck(lambda t: torch.ops.zoo.dropout(t, 0.4, seed), (x,))
    assert gradgradcheck(lambda t: torch.ops.zoo.dropout(t, 0.4, seed), (x,))


def test_opcheck():
    for x in (torch.randn(3, 4, 5), torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True), torch.randn(0)):
        torch.library.opcheck(torch.ops.zoo.dropout.default, (x, 0.25, seed_tensor(11)))


def test_layer_is_drop_in_for_torch():
    ours, theirs = zoo.nn.Dropout(0.3), torch.nn.Dropout(0.3)
    assert isinstance(ours, torch.nn.Dropout)
    assert repr(ours) == repr(theirs) and ours.state_dict() == theirs.state_dict() == {}
    x = torch.randn(8, 16)
    assert ours.eval()(x) is x
    y, y_torch = ours.train()(x), theirs(x)
    assert (y.dtype, y.shape, y.stride()) == (y_torch.dtype, y_torch.shape, y_torch.stride())
    with pytest.raises(ValueError, match="between 0 and 1"):
        zoo.nn.Dropout(1.5)


def test_presets_use_zoo_dropout():
    for model in (zoo.create_model("nin_relu"), zoo.create_model("emnist_dnn_2x100", dropout_hidden=0.5)):
        kinds = [type(m) for m in model.modules()]
        assert zoo.nn.Dropout in kinds and torch.nn.Dropout not in kinds


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: zoo.ops.dropout(torch.randn(4), 1.5), ValueError, "between 0 and 1, but got 1.5"),
        (lambda: zoo.ops.dropout(torch.randn(4), -0.1), ValueError, "between 0 and 1"),
        (lambda: zoo.ops.dropout(torch.randn(4), float("nan")), ValueError, "between 0 and 1"),
        (lambda: torch.ops.zoo.dropout(torch.randn(4), 1.5, seed_tensor(0)), ValueError, "between 0 and 1"),
        (lambda: zoo.ops.dropout(torch.ones(4, dtype=torch.int64), 0.5), TypeError, "torch.int64"),
        (lambda: zoo.ops.dropout(torch.randn(4).half(), 0.5), TypeError, "float32 or float64"),
        (lambda: zoo.ops.dropout([1.0, 2.0], 0.5), TypeError, "torch.Tensor"),
        (lambda: zoo.ops.dropout(torch.randn(4, 4).to_sparse(), 0.5), TypeError, "layout"),
        (lambda: torch.ops.zoo.dropout(torch.randn(4), 0.5, torch.tensor(1.0)), TypeError, "seed must be torch.int64"),
        (lambda: torch.ops.zoo.dropout(torch.randn(4), 0.5, torch.tensor([1, 2])), ValueError, "one value"),
        (lambda: torch.ops.zoo.dropout(torch.randn(4), 0.5, torch.empty((), dtype=torch.int64, device="meta")),
         ValueError, "seed is on meta"),
    ],
)
def test_bad_input_gets_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_torch_compile_fullgraph_train_step():
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), zoo.nn.Dropout(0.5), torch.nn.Linear(32, 4))
    compiled = torch.compile(model, fullgraph=True)
    x = torch.randn(64, 16)
    hidden = model[0](x)
    out = compiled(x)
    out.sum().backward()
    assert out.shape == (64, 4) and model[0].weight.grad is not None
    drop = torch.compile(lambda t: zoo.ops.dropout(t, 0.5), fullgraph=True)
    x2 = (torch.rand(4096) + 1).requires_grad_()
    y = drop(x2)
    (dx,) = torch.autograd.grad(y, x2, torch.ones_like(y))
    assert torch.equal(y != 0, dx != 0) and 0.45 < (y == 0).float().mean() < 0.55
    torch.testing.assert_close(y[y != 0], 2 * x2[y != 0], rtol=0, atol=0)
    compiled.eval()
    torch.testing.assert_close(compiled(x), model[2](hidden))


def test_export_in_eval_has_no_dropout_node():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), zoo.nn.Dropout(0.5)).eval()
    program = torch.export.export(model, (torch.randn(2, 4),))
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert not any("dropout" in t for t in targets)
