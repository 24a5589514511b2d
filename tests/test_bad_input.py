"""Bad input raises a clear Python exception naming the problem, at every entry point."""

import pytest
import torch

import zoo
from zoo import _C


def conv(x, w, b=None, **kw):
    return zoo.ops.conv2d(x, w, b, **kw)


X = torch.randn(2, 3, 8, 8)
W = torch.randn(4, 3, 3, 3)


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: conv(torch.randn(3, 8), W), ValueError, "3-D .* or 4-D .* got 2-D"),
        (lambda: conv(torch.randn(1, 2, 3, 8, 8), W), ValueError, "got 5-D"),
        (lambda: conv(X, torch.randn(4, 2, 3, 3)), ValueError, "expects 2 input channels.*has 3"),
        (lambda: conv(X, torch.randn(4, 3, 3)), ValueError, "4-D weight"),
        (lambda: conv(X, W, torch.randn(5)), ValueError, r"bias must have shape \(4\), got \[5\]"),
        (lambda: conv(X, W.double()), TypeError, "weight has dtype torch.float64 but x has dtype torch.float32"),
        (lambda: conv(X.half(), W.half()), TypeError, "expected float32 or float64, got torch.float16"),
        (lambda: conv(X.int(), W), TypeError, "expected float32 or float64, got torch.int32"),
        (lambda: conv(torch.randn(2, 0, 8, 8), torch.randn(4, 0, 3, 3)), ValueError, "empty input"),
        (lambda: conv(X, torch.randn(0, 3, 3, 3)), ValueError, "empty input"),
        (lambda: conv(X, W, stride=-1), ValueError, "stride must be positive"),
        (lambda: conv(X, W, stride=0), ValueError, "stride must be positive"),
        (lambda: conv(X, W, padding=-1), ValueError, "padding must be non-negative"),
        (lambda: conv(X, W, dilation=0), ValueError, "dilation must be positive"),
        (lambda: conv(X, W, dilation=5), ValueError, "smaller than the dilated kernel"),
        (lambda: conv(torch.randn(1, 3, 2, 2), W), ValueError, "no output"),
        (lambda: conv(X, W, stride=(1, 2, 3)), ValueError, "stride must be an int or a sequence of 1 or 2 ints"),
        (lambda: conv(X, W, groups=3), NotImplementedError, "groups=3"),
        (lambda: conv(X.to_sparse(), W), TypeError, "layout"),
        (lambda: conv(X.numpy(), W), TypeError, "input must be a torch.Tensor"),
        (lambda: conv(X, W.to("meta")), ValueError, "weight is on meta but x is on cpu"),
        (lambda: conv(X, W, torch.randn(4).to_sparse()), TypeError, "bias has layout"),
    ],
)
def test_conv2d_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def bn(x, training=True, weight=None, bias=None, rm=None, rv=None):
    return zoo.ops.batch_norm(x, rm, rv, weight, bias, training)


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: bn(torch.randn(5)), ValueError, "2-D, 3-D or 4-D .* got 1-D"),
        (lambda: bn(torch.randn(1, 3)), ValueError, "more than 1 value per channel"),
        (lambda: bn(torch.randn(1, 3, 1, 1)), ValueError, "more than 1 value per channel"),
        (lambda: bn(torch.randn(4, 3), weight=torch.randn(4)), ValueError, r"weight must have shape \(3\), got \[4\]"),
        (lambda: bn(torch.randn(4, 3), bias=torch.randn(3, 1)), ValueError, r"bias must have shape \(3\), got \[3, 1\]"),
        (lambda: bn(torch.randn(4, 3), weight=torch.randn(3).double()), TypeError, "weight has dtype torch.float64"),
        (lambda: bn(torch.randn(4, 3).half()), TypeError, "expected float32 or float64, got torch.float16"),
        (lambda: bn(torch.randn(4, 3), training=False), ValueError, "running_mean and running_var are required"),
        (lambda: bn(torch.randn(4, 3), training=False, rm=torch.zeros(2), rv=torch.ones(3)), ValueError, r"running_mean must have shape \(3\)"),
        (lambda: bn(torch.randn(4, 3), rm=torch.zeros(2), rv=torch.ones(3)), ValueError, r"running_mean must have shape \(3\)"),
        (lambda: bn(torch.randn(4, 3), rm=torch.zeros(3), rv=torch.ones(3).double()), TypeError, "running_var has dtype torch.float64"),
        (lambda: zoo.ops.batch_norm(torch.randn(4, 3), None, None, training=True, eps=-1.0), ValueError, "eps must be positive during training"),
        (lambda: zoo.ops.batch_norm(torch.randn(4, 3), None, None, training=True, eps=0.0), ValueError, "eps must be positive during training"),
        (lambda: zoo.ops.batch_norm(torch.randn(4, 3), torch.zeros(3), torch.ones(3), eps=-1.0), ValueError, "eps must be non-negative"),
        (lambda: bn(torch.randn(4, 3).to_sparse()), TypeError, "input has layout"),
        (lambda: bn(torch.randn(4, 3).numpy()), TypeError, "input must be a torch.Tensor"),
        (lambda: bn(torch.randn(4, 3), weight=[1.0, 1.0, 1.0]), TypeError, "weight must be a torch.Tensor"),
        (lambda: bn(torch.randn(4, 3), training=False, rm=torch.zeros(3, device="meta"), rv=torch.ones(3)), ValueError,
         "running_mean is on meta but x is on cpu"),
        (lambda: bn(torch.randn(4, 3, device="meta"), weight=torch.ones(3)), ValueError, "weight is on cpu but x is on meta"),
    ],
)
def test_batch_norm_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_a_tensor_the_dispatcher_cannot_run_gets_one_clear_error():
    # The dispatcher's own message is replaced, not chained under ours.
    with pytest.raises(TypeError, match="input has layout torch.sparse_coo") as raised:
        conv(X.to_sparse(), W)
    assert raised.value.__suppress_context__ and "Could not run" not in str(raised.value)


def test_layers_check_rank_like_torch():
    with pytest.raises(ValueError, match="expected 4D input"):
        zoo.nn.BatchNorm2d(3)(torch.randn(4, 3))
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        zoo.nn.BatchNorm1d(3)(torch.randn(4, 3, 2, 2))


# Bad input for the operators themselves (torch.ops.zoo.*, public too), as functions of the
# device: the C++ checks are the only shape and value checks, shared by both devices.
KERNEL_CASES = [
    ("conv2d", lambda d: (X.to(d), torch.randn(4, 2, 3, 3, device=d), None, [1, 1], [0, 0], [1, 1]),
     ValueError, "expects 2 input channels but x has 3"),
    ("conv2d", lambda d: (X.to(d), W.to(d), None, [0, 1], [0, 0], [1, 1]), ValueError, "stride must be positive"),
    ("conv2d", lambda d: (X.to(d), W.to(d), None, [1, 1, 1], [0, 0], [1, 1]), ValueError, "stride must have 2 values"),
    ("conv2d", lambda d: (X.to(d), W.double().to(d), None, [1, 1], [0, 0], [1, 1]), TypeError,
     "weight has dtype torch.float64 but x has dtype torch.float32"),
    ("conv2d", lambda d: (X.to(d), W.to(d), torch.randn(5, device=d), [1, 1], [0, 0], [1, 1]), ValueError,
     r"bias must have shape \(4\)"),
    ("conv2d", lambda d: (X[:, :, :0].to(d), W.to(d), None, [1, 1], [0, 0], [1, 1]), ValueError, "empty input"),
    ("conv2d", lambda d: (X.to(d), torch.randn(4, 3, 9, 9, device=d), None, [1, 1], [0, 0], [1, 1]), ValueError,
     "smaller than the dilated kernel"),
    ("conv2d", lambda d: (X.to(d), W.to(d), None, [1, 1], [2**62, 0], [1, 1]), ValueError,
     "padding overflows 64-bit sizes"),
    ("conv2d", lambda d: (X.to(d), W.to(d), None, [1, 1], [0, 0], [2**62, 1]), ValueError,
     "dilated kernel height overflows 64-bit sizes"),
    ("conv2d", lambda d: (X.to(d), W.to(d), None, [1, 1], [2**40, 2**40], [1, 1]), ValueError,
     "output size overflows 64-bit sizes"),
    ("conv2d_backward", lambda d: (torch.randn(2, 4, 5, 5, device=d), X.to(d), W.to(d), [1, 1], [0, 0], [1, 1],
                                   [True, True, True]), ValueError, "grad_y has shape"),
    ("batch_norm_train", lambda d: (torch.randn(1, 3, device=d), None, None, None, None, 0.1, 1e-5), ValueError,
     "more than 1 value per channel"),
    ("batch_norm_train", lambda d: (torch.randn(4, 3, device=d), None, None, None, None, 0.1, 0.0), ValueError, "eps must be positive"),
    ("batch_norm_eval", lambda d: (torch.randn(4, 3, device=d), None, None, torch.zeros(3, device=d),
                                   torch.ones(3, device=d), -1.0), ValueError, "eps must be non-negative"),
    ("batch_norm_train", lambda d: (torch.randn(4, 3, device=d), torch.randn(3, 1, device=d), None, None, None, 0.1,
                                    1e-5), ValueError,
     r"weight must have shape \(3\)"),
    ("batch_norm_train", lambda d: (torch.randn(4, 3, device=d), torch.randn(3, device=d).double(), None, None, None,
                                    0.1, 1e-5),
     TypeError, "weight has dtype torch.float64"),
    ("batch_norm_train", lambda d: (torch.randn(4, 3, device=d).half(), None, None, None, None, 0.1, 1e-5), TypeError,
     "expected float32 or float64, got torch.float16"),
    ("batch_norm_train", lambda d: (torch.randn(4, 3, 2, 2, 2, device=d), None, None, None, None, 0.1, 1e-5), ValueError, "got 5-D"),
    ("batch_norm_eval", lambda d: (torch.randn(4, 3, device=d), None, None, torch.zeros(2, device=d),
                                   torch.ones(3, device=d), 1e-5), ValueError, r"running_mean must have shape \(3\)"),
    ("batch_norm_train", lambda d: (torch.randn(4, 3, device=d), None, None, torch.zeros(3, device=d),
                                    torch.ones(3, 1, device=d), 0.1, 1e-5), ValueError, r"running_var must have shape \(3\)"),
    ("batch_norm_train", lambda d: (torch.randn(4, 3, device=d), None, None, torch.zeros(3, device=d).double(), None,
                                    0.1, 1e-5), TypeError, "running_mean has dtype torch.float64"),
    ("batch_norm_backward", lambda d: (torch.randn(4, 2, device=d), torch.randn(4, 3, device=d), None,
                                       torch.zeros(3, device=d), torch.ones(3, device=d), True), ValueError,
     "grad_y has shape"),
]
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not (torch.cuda.is_available() and _C.with_cuda),
                                                  reason="needs a CUDA GPU and zoo's CUDA kernels")),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op,make_args,error,match", KERNEL_CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_ops_reject_bad_input_without_the_python_wrappers(device, op, make_args, error, match):
    with pytest.raises(error, match=match):
        getattr(torch.ops.zoo, op)(*make_args(device))


def test_cpu_kernels_reject_what_only_they_refuse():
    with pytest.raises(ValueError, match="contiguous or channels-last"):
        torch.ops.zoo.batch_norm_train(torch.randn(4, 3, 5).transpose(1, 2), None, None, None, None, 0.1, 1e-5)


def test_meta_tensors_get_shapes_from_the_fake_kernels():
    y, mean, _, _ = torch.ops.zoo.batch_norm_train(torch.randn(4, 3, 5, device="meta"), None, None, None, None, 0.1,
                                                   1e-5)
    assert y.shape == (4, 3, 5) and mean.shape == (3,) and y.device.type == "meta"
    out = torch.ops.zoo.conv2d(torch.randn(2, 3, 8, 8, device="meta"), W.to("meta"), None, [2, 1], [1, 0], [1, 1])
    assert out.shape == (2, 4, 4, 6)
    with pytest.raises(ValueError, match="smaller than the dilated kernel"):
        torch.ops.zoo.conv2d(torch.randn(2, 3, 2, 2, device="meta"), W.to("meta"), None, [1, 1], [0, 0], [1, 1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cpu_cuda_mix_is_refused():
    with pytest.raises(ValueError, match="weight is on cuda:0 but x is on cpu"):
        conv(X, W.cuda())
    with pytest.raises(ValueError, match="weight is on cpu but x is on cuda"):
        bn(torch.randn(4, 3).cuda(), weight=torch.randn(3))
