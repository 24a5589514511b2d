"""Per-call overhead of zoo's ops on tiny inputs, where the kernels' own work is negligible.

Times ``zoo.ops.batch_norm`` (a small BN1d; also ``zoo.ops.batch_norm_relu`` against
torch's batch norm then ReLU), ``zoo.ops.conv2d`` (a small conv)
and ``zoo.ops.dropout`` (seed drawn from torch's generator included) forward, and
forward + backward, and as inference calls them (eval mode under
``torch.no_grad()``, batch 1), against ``torch.nn.functional``'s on the same
tensors, in one run: each sample is a loop of calls, ours and torch's take
turns, and the table shows medians in microseconds per call. What is left
after torch's time is what zoo's Python wrapper, the dispatch into its
kernels and its autograd cost on top.

    python bench/op_overhead.py               # 1 thread, the default sizes
    python bench/op_overhead.py --markdown    # table for docs/benchmarks.md
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import torch.nn.functional as F

import zoo
from common import median_seconds


def per_call_us(pair: tuple[Callable[[], object], Callable[[], object]], samples: int,
                sample_seconds: float) -> tuple[float, float]:
    """Median µs per call of ours and torch's; samples (loops of calls of >= ``sample_seconds``) taken in turns."""
    medians = median_seconds(dict(zip(("ours", "torch"), pair)), torch.device("cpu"), repeat=samples, warmup=10,
                             min_sample_seconds=sample_seconds)
    return medians["ours"] * 1e6, medians["torch"] * 1e6


def cases() -> list[tuple[str, Callable[[], object], Callable[[], object]]]:
    """(name, ours, torch's) for the forward, forward+backward and no-grad inference of a small BN1d, conv and linear
    layer, a training BN1d + ReLU, a training dropout and ELU."""
    x = torch.randn(8, 16, requires_grad=True)
    w, b = torch.ones(16, requires_grad=True), torch.zeros(16, requires_grad=True)
    rm, rv = torch.zeros(16), torch.ones(16)
    img = torch.randn(2, 1, 8, 8, requires_grad=True)
    cw, cb = torch.randn(4, 1, 3, 3, requires_grad=True), torch.zeros(4, requires_grad=True)

    def backward(fn: Callable[[], torch.Tensor]) -> Callable[[], None]:
        return lambda: fn().sum().backward()

    def without_grad(fn: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
        def call() -> torch.Tensor:
            with torch.no_grad():
                return fn()
        return call

    # Inference at batch 1: eval-mode BN1d of the MLP presets' width, a conv on one image.
    row = torch.randn(1, 1024)
    ew, eb = torch.rand(1024, requires_grad=True), torch.randn(1024, requires_grad=True)
    erm, erv = torch.randn(1024), torch.rand(1024) + 0.5
    one = torch.randn(1, 1, 8, 8)

    bn_ours = lambda: zoo.ops.batch_norm(x, rm, rv, w, b, training=True)  # noqa: E731
    bn_torch = lambda: F.batch_norm(x, rm, rv, w, b, training=True)  # noqa: E731
    bn_relu_ours = lambda: zoo.ops.batch_norm_relu(x, rm, rv, w, b, training=True)  # noqa: E731
    bn_relu_torch = lambda: F.relu(F.batch_norm(x, rm, rv, w, b, training=True))  # noqa: E731
    conv_ours = lambda: zoo.ops.conv2d(img, cw, cb, 1, 1)  # noqa: E731
    conv_torch = lambda: F.conv2d(img, cw, cb, 1, 1)  # noqa: E731
    drop_ours = lambda: zoo.ops.dropout(x, 0.5)  # noqa: E731
    drop_torch = lambda: F.dropout(x, 0.5)  # noqa: E731
    elu_ours = lambda: zoo.ops.elu(x)  # noqa: E731
    elu_torch = lambda: F.elu(x)  # noqa: E731
    lw, lb = torch.randn(10, 16, requires_grad=True), torch.zeros(10, requires_grad=True)
    linear_ours = lambda: zoo.ops.linear(x, lw, lb)  # noqa: E731
    linear_torch = lambda: F.linear(x, lw, lb)  # noqa: E731
    return [
        ("BN1d train (8, 16) forward", bn_ours, bn_torch),
        ("BN1d train (8, 16) forward+backward", backward(bn_ours), backward(bn_torch)),
        ("BN1d+ReLU train (8, 16) forward", bn_relu_ours, bn_relu_torch),
        ("BN1d+ReLU train (8, 16) forward+backward", backward(bn_relu_ours), backward(bn_relu_torch)),
        ("conv 1→4 k3 p1 (2, 1, 8, 8) forward", conv_ours, conv_torch),
        ("conv 1→4 k3 p1 (2, 1, 8, 8) forward+backward", backward(conv_ours), backward(conv_torch)),
        ("dropout p0.5 (8, 16) forward", drop_ours, drop_torch),
        ("dropout p0.5 (8, 16) forward+backward", backward(drop_ours), backward(drop_torch)),
        ("ELU (8, 16) forward", elu_ours, elu_torch),
        ("ELU (8, 16) forward+backward", backward(elu_ours), backward(elu_torch)),
        ("linear 16→10 (8, 16) forward", linear_ours, linear_torch),
        ("linear 16→10 (8, 16) forward+backward", backward(linear_ours), backward(linear_torch)),
        ("BN1d eval (1, 1024) forward, no_grad", without_grad(lambda: zoo.ops.batch_norm(row, erm, erv, ew, eb)),
         without_grad(lambda: F.batch_norm(row, erm, erv, ew, eb))),
        ("conv 1→4 k3 p1 (1, 1, 8, 8) forward, no_grad", without_grad(lambda: zoo.ops.conv2d(one, cw, cb, 1, 1)),
         without_grad(lambda: F.conv2d(one, cw, cb, 1, 1))),
        ("linear 16→10 (1, 16) forward, no_grad", without_grad(lambda: zoo.ops.linear(x[:1], lw, lb)),
         without_grad(lambda: F.linear(x[:1], lw, lb))),
    ]


def main() -> None:
    """Print the overhead table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: overhead, not parallelism)")
    parser.add_argument("--samples", type=int, default=21, help="samples per case (median taken)")
    parser.add_argument("--sample-seconds", type=float, default=0.005,
                        help="each sample is a loop of calls lasting at least this long (default 0.005)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for name, ours, theirs in cases():
        ours_us, torch_us = per_call_us((ours, theirs), args.samples, args.sample_seconds)
        rows.append((name, ours_us, torch_us))
    if args.markdown:
        print("| op call | zoo µs | torch µs | zoo − torch µs |")
        print("|---|---|---|---|")
        for name, ours_us, torch_us in rows:
            print(f"| {name} | {ours_us:.1f} | {torch_us:.1f} | {ours_us - torch_us:+.1f} |")
    else:
        print(f"{'op call':48s} {'zoo µs':>8s} {'torch µs':>9s} {'extra µs':>9s}")
        for name, ours_us, torch_us in rows:
            print(f"{name:48s} {ours_us:8.1f} {torch_us:9.1f} {ours_us - torch_us:+9.1f}")
    print(f"\ntorch {torch.__version__}, {args.threads} thread(s), median of {args.samples} samples "
          f"(loops of calls of >= {args.sample_seconds * 1e3:g} ms each)")


if __name__ == "__main__":
    main()
