"""Benchmark zoo's kernels against torch's own on the zoo models' layer shapes.

Each layer is timed for ours and torch's in the same run, forward and
forward+backward (input, weight and bias gradients), as the median of repeated
runs after warm-up, ours and torch's taking turns within each round. Prints a table with both times, the speed-up (torch time /
our time), GFLOP/s (convolution) or GB/s (batch norm: 2 x tensor bytes / time,
the traffic of one read and one write), and the geometric-mean speed-up.

    python bench/kernels.py                  # CPU, every layer
    python bench/kernels.py --device cuda    # CUDA (needs a GPU and a CUDA build)
    python bench/kernels.py --markdown       # table as markdown, for docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

import zoo


@dataclass
class Layer:
    """One benchmarked layer: a name, the input shape and, for a convolution, its geometry."""

    name: str
    shape: tuple[int, ...]
    out_channels: int = 0  # 0 marks batch norm
    kernel: int = 1
    padding: int = 0

    @property
    def is_conv(self) -> bool:
        return self.out_channels > 0


LAYERS = [
    Layer("EMNIST CNN conv 1→5 k5", (100, 1, 28, 28), 5, 5),
    Layer("EMNIST CNN conv 5→10 k5", (100, 5, 12, 12), 10, 5),
    Layer("MNIST CNN conv 4→4 k3 p1", (100, 4, 28, 28), 4, 3, 1),
    Layer("NIN conv 3→192 k5 p2", (128, 3, 32, 32), 192, 5, 2),
    Layer("NIN conv 192→160 k1", (128, 192, 32, 32), 160, 1),
    Layer("NIN conv 96→192 k5 p2", (128, 96, 16, 16), 192, 5, 2),
    Layer("NIN conv 192→192 k3 p1", (128, 192, 8, 8), 192, 3, 1),
    Layer("BN1d train N=100 C=100", (100, 100)),
    Layer("BN2d train N=128 C=192 32x32", (128, 192, 32, 32)),
]
LARGE_LAYERS = [  # larger shapes for the GPU
    Layer("NIN conv 3→192 k5 p2, N=256", (256, 3, 32, 32), 192, 5, 2),
    Layer("NIN conv 192→160 k1, N=256", (256, 192, 32, 32), 160, 1),
    Layer("NIN conv 96→192 k5 p2, N=256", (256, 96, 16, 16), 192, 5, 2),
    Layer("NIN conv 192→192 k3 p1, N=256", (256, 192, 8, 8), 192, 3, 1),
    Layer("BN2d train N=256 C=192 32x32", (256, 192, 32, 32)),
]


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work so wall-clock times are complete."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fns: dict[str, Callable[[], object]], device: torch.device, repeat: int, warmup: int) -> dict[str, float]:
    """Median wall time of each function, the functions timed in turn within each round.

    Interleaving keeps the comparison fair when the machine's speed drifts
    (other load, clock changes) during the run.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            times[name].append(time_once(fn, device))
    return {name: statistics.median(t) for name, t in times.items()}


def time_once(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds one call takes: CUDA events on a GPU (device time), wall clock on the CPU."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    start_time = time.perf_counter()
    fn()
    return time.perf_counter() - start_time


def layer_functions(layer: Layer, device: torch.device, dtype: torch.dtype):
    """(zoo forward, torch forward, inputs that take gradients) for one layer."""
    x = torch.randn(layer.shape, device=device, dtype=dtype, requires_grad=True)
    if layer.is_conv:
        weight = torch.randn(layer.out_channels, layer.shape[1], layer.kernel, layer.kernel, device=device, dtype=dtype)
        weight = (weight / math.sqrt(weight[0].numel())).requires_grad_()
        bias = torch.randn(layer.out_channels, device=device, dtype=dtype, requires_grad=True)
        ours = lambda: zoo.ops.conv2d(x, weight, bias, 1, layer.padding)  # noqa: E731
        theirs = lambda: F.conv2d(x, weight, bias, 1, layer.padding)  # noqa: E731
        return ours, theirs, (x, weight, bias)
    channels = layer.shape[1]
    weight = torch.randn(channels, device=device, dtype=dtype, requires_grad=True)
    bias = torch.randn(channels, device=device, dtype=dtype, requires_grad=True)
    stats = [torch.zeros(channels, device=device, dtype=dtype), torch.ones(channels, device=device, dtype=dtype)]
    ours = lambda: zoo.ops.batch_norm(x, *stats, weight, bias, training=True)  # noqa: E731
    theirs = lambda: F.batch_norm(x, *stats, weight, bias, training=True)  # noqa: E731
    return ours, theirs, (x, weight, bias)


def forward_backward(forward: Callable[[], torch.Tensor], leaves: tuple[torch.Tensor, ...], grad: torch.Tensor):
    """A closure running forward then backward with a fixed output gradient."""

    def run() -> None:
        for t in leaves:
            t.grad = None
        forward().backward(grad)

    return run


def measure(layer: Layer, device: torch.device, dtype: torch.dtype, repeat: int, warmup: int) -> dict:
    """Times of one layer: forward and forward+backward, ours and torch's."""
    ours, theirs, leaves = layer_functions(layer, device, dtype)
    with torch.no_grad():
        grad = torch.randn_like(theirs())
    result = {}
    with torch.no_grad():
        forward = median_seconds({"ours": ours, "torch": theirs}, device, repeat, warmup)
    both = {"ours": forward_backward(ours, leaves, grad), "torch": forward_backward(theirs, leaves, grad)}
    forward_and_backward = median_seconds(both, device, repeat, warmup)
    for side in ("ours", "torch"):
        result[f"{side}_fwd"] = forward[side]
        result[f"{side}_fwdbwd"] = forward_and_backward[side]
    if layer.is_conv:
        n, cin, h, w = layer.shape
        ho = h + 2 * layer.padding - layer.kernel + 1
        result["flop_fwd"] = 2.0 * n * layer.out_channels * ho * ho * cin * layer.kernel**2
        result["flop_fwdbwd"] = 3 * result["flop_fwd"]  # dx and dW each cost one forward
    else:
        result["bytes"] = 2.0 * math.prod(layer.shape) * torch.finfo(dtype).bits / 8
    return result


def copy_bandwidth(device: torch.device, repeat: int) -> float:
    """GB/s of a 256 MB tensor copy (read + write counted), for scale."""
    src = torch.empty(64 * 2**20, device=device)
    dst = torch.empty_like(src)
    seconds = median_seconds({"copy": lambda: dst.copy_(src)}, device, repeat, 2)["copy"]
    return 2 * src.numel() * 4 / seconds / 1e9


def rate(layer: Layer, r: dict, kind: str, side: str) -> str:
    seconds = r[f"{side}_{kind}"]
    if layer.is_conv:
        return f"{r[f'flop_{kind}'] / seconds / 1e9:.0f} GFLOP/s"
    if kind == "fwd":
        return f"{r['bytes'] / seconds / 1e9:.1f} GB/s"
    return f"{2 * r['bytes'] / seconds / 1e9:.1f} GB/s"  # backward reads x and dy, writes dx


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per measurement; the median is reported")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    parser.add_argument("--large", action="store_true", help="add the larger (N=256) shapes")
    parser.add_argument("--only", default="", help="run only layers whose name contains this text")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args()

    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    layers = LAYERS + (LARGE_LAYERS if args.large else [])
    layers = [layer for layer in layers if args.only in layer.name]
    threads = f"{torch.get_num_threads()} threads" if device.type == "cpu" else torch.cuda.get_device_name(device)
    print(f"zoo kernels vs torch {torch.__version__} on {args.device} ({threads}), {args.dtype}, median of {args.repeat}")
    print(f"reference copy bandwidth: {copy_bandwidth(device, args.repeat):.1f} GB/s (read + write)")

    header = ["layer", "fwd ours", "fwd torch", "fwd speed-up", "fwd+bwd ours", "fwd+bwd torch", "fwd+bwd speed-up", "ours rate fwd / fwd+bwd"]
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
    else:
        print(f"{'layer':32s} {'fwd ours':>10s} {'torch':>10s} {'x':>6s} {'f+b ours':>10s} {'torch':>10s} {'x':>6s}  ours rate fwd / fwd+bwd")
    speedups = {"fwd": [], "fwdbwd": []}
    for layer in layers:
        r = measure(layer, device, dtype, args.repeat, args.warmup)
        for kind in speedups:
            speedups[kind].append(r[f"torch_{kind}"] / r[f"ours_{kind}"])
        cells = [
            layer.name,
            f"{r['ours_fwd'] * 1e3:.2f} ms", f"{r['torch_fwd'] * 1e3:.2f} ms", f"{speedups['fwd'][-1]:.2f}x",
            f"{r['ours_fwdbwd'] * 1e3:.2f} ms", f"{r['torch_fwdbwd'] * 1e3:.2f} ms", f"{speedups['fwdbwd'][-1]:.2f}x",
            f"{rate(layer, r, 'fwd', 'ours')} / {rate(layer, r, 'fwdbwd', 'ours')}",
        ]
        if args.markdown:
            print("| " + " | ".join(cells) + " |")
        else:
            print(f"{cells[0]:32s} {cells[1]:>10s} {cells[2]:>10s} {cells[3]:>6s} {cells[4]:>10s} {cells[5]:>10s} {cells[6]:>6s}  {cells[7]}")
    geomean = {k: math.exp(sum(map(math.log, v)) / len(v)) for k, v in speedups.items()}
    print(f"geomean speed-up (torch time / ours): forward {geomean['fwd']:.2f}x, forward+backward {geomean['fwdbwd']:.2f}x")


if __name__ == "__main__":
    main()
