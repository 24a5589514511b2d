"""Benchmark zoo's kernels against torch's own on every layer shape the zoo presets run.

The layers are not kept by hand: each benchmarked model (every preset and the
``+bn`` variants of the MLP/CNN presets, see ``bench/common.py``) runs one
small forward with hooks on its ``zoo.nn`` layers, which record each
convolution's, linear layer's, max-pool's, dropout's, maxout's or ELU's arguments and each layer's input shape; the batch dimension is
then set to the preset recipe's batch size and repeats are merged (the "used
by" column names the models that run a shape). Batch norm and dropout are timed
in training mode (batch statistics, a fresh mask per call), as a training step runs them.

Each layer is timed for ours and torch's in the same run, forward and
forward+backward (input, weight and bias gradients), as the median of
``--rounds`` runs after warm-up, ours and torch's taking turns within each
round. Prints a table with both times, the speed-up (torch time / our time),
GFLOP/s (convolution: 2·N·Cout·Ho·Wo·Cin·kh·kw forward, linear: 2·N·out·in, three times that
forward + backward) or GB/s (batch norm, dropout and ELU: 2 x tensor bytes / time,
the traffic of one read and one write; twice that backward; max pooling: the
input's bytes / time, forward and forward + backward), the geometric-mean speed-up,
and a 256 MB copy's bandwidth for scale. Each batch-norm forward is also timed
against ``torch.Tensor.copy_`` of its input in the same rounds ("% of copy": the
copy's time / ours, the fraction of the bandwidth a copy reached right then),
summarised as medians over every batch-norm layer and over inputs of 32 MiB or
more (out of cache). On a GPU, times are CUDA-event times.

    python bench/kernels.py                         # CPU, every layer (~2 min on the 2-core VM)
    python bench/kernels.py --list                  # the layers and who runs them, no timing
    python bench/kernels.py --only mnist_cnn_32_64  # the layers of one preset (names or shell patterns)
    python bench/kernels.py --only BN2d --max-layers 3
    python bench/kernels.py --device cuda --large --markdown   # GPU, plus every layer at batch 256
    python bench/kernels.py --keep-freed-memory     # malloc keeping freed blocks, as zoo's training runs
"""

from __future__ import annotations

import argparse
import fnmatch
import math
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/common.py, also when imported from elsewhere
from common import (  # noqa: E402
    ModelVariant,
    Table,
    add_common_arguments,
    add_keep_freed_argument,
    apply_keep_freed,
    apply_threads,
    geometric_mean,
    median_seconds,
    milliseconds,
    model_variants,
    run_description,
    speedup,
)

import zoo  # noqa: E402
from zoo.ops.activation import torch_activation  # noqa: E402
from zoo.ops.checks import pair  # noqa: E402
from zoo.ops.conv2d import output_size  # noqa: E402

__all__ = ["Layer", "median_seconds", "preset_layers", "measure"]  # median_seconds: bench/onnx_runtime.py imports it here

LARGE_BATCH = 256
# Batch-norm inputs from this size are out of the last-level cache on the VMs measured (32 MiB L3):
# their forward against a copy of x is the memory-bandwidth figure.
LARGE_TENSOR_BYTES = 32 << 20
Pair = tuple[int, int]


# How a batch-norm row names its fused activation.
_ACTIVATION_SUFFIX = {"none": "", "relu": "+ReLU", "leaky_relu": "+LeakyReLU", "elu": "+ELU"}


@dataclass(frozen=True)
class Layer:
    """One benchmarked layer: its kind, input shape (batch first) and, for a convolution, its arguments."""

    kind: str  # "conv", "linear", "pool" (max pooling), "dropout", "maxout", "elu", "BN1d" or "BN2d"
    shape: tuple[int, ...]
    out_channels: int = 0  # a convolution's, or a linear layer's out_features
    kernel: Pair = (1, 1)
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    bias: bool = True  # conv or linear bias, or batch norm's affine weight and bias
    ceil_mode: bool = False  # max pooling's
    p: float = 0.0  # dropout's rate
    pieces: int = 0  # maxout's
    # batch norm's fused activation (zoo.nn.BatchNormReLU*d, ...) and its parameter, against torch's BN then it;
    # ELU's alpha (kind "elu", zoo.nn.ELU)
    activation: str = "none"
    alpha: float = 0.0

    @property
    def is_conv(self) -> bool:
        """Whether the layer is a convolution."""
        return self.kind == "conv"

    @property
    def counts_flops(self) -> bool:
        """Whether the layer's rate is GFLOP/s (a convolution or a linear layer's products)."""
        return self.kind in ("conv", "linear")

    @property
    def is_batch_norm(self) -> bool:
        """Whether the layer is batch norm (BN1d or BN2d)."""
        return self.kind.startswith("BN")

    @property
    def name(self) -> str:
        """A readable name, e.g. ``conv 3→192 k5 p2, 128x3x32x32`` or ``BN2d train 128x192x32x32``."""
        dims = "x".join(map(str, self.shape))
        if self.is_batch_norm:
            return f"{self.kind}{_ACTIVATION_SUFFIX[self.activation]} train {dims}"
        if self.kind == "dropout":
            return f"dropout p{self.p:g}, {dims}"
        if self.kind == "maxout":
            return f"maxout {self.pieces} pieces, {dims}"
        if self.kind == "elu":
            return f"ELU, {dims}"
        if self.kind == "linear":
            return f"linear {self.shape[-1]}→{self.out_channels}{'' if self.bias else ' no bias'}, {dims}"
        if self.is_conv:
            parts = [f"conv {self.shape[1]}→{self.out_channels}", "k" + _pair_text(self.kernel)]
        else:
            parts = ["maxpool", "k" + _pair_text(self.kernel)]
        stride_default = (1, 1) if self.is_conv else self.kernel  # a pool's stride defaults to its kernel
        for letter, value, default in (("s", self.stride, stride_default), ("p", self.padding, (0, 0)),
                                       ("d", self.dilation, (1, 1))):
            if value != default:
                parts.append(letter + _pair_text(value))
        if self.is_conv and not self.bias:
            parts.append("no bias")
        if self.ceil_mode:
            parts.append("ceil")
        return " ".join(parts) + f", {dims}"

    def output_hw(self) -> Pair:
        """The convolution's output height and width."""
        h, w = (output_size(s, k, st, p, d) for s, k, st, p, d
                in zip(self.shape[2:], self.kernel, self.stride, self.padding, self.dilation))
        return h, w

    def at_batch(self, batch: int) -> Layer:
        """The same layer with a batch of ``batch``."""
        return replace(self, shape=(batch, *self.shape[1:]))


def _pair_text(pair: Pair) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


# ---------------------------------------------------------------- the layers the presets run


def conv_padding(module: nn.Conv2d) -> Pair:
    """The symmetric zero padding a conv module applies ('valid' is 0; 'same' is its leading padding)."""
    if module.padding == "valid":
        return (0, 0)
    if module.padding == "same":
        return tuple(d * (k - 1) // 2 for d, k in zip(module.dilation, module.kernel_size))
    return tuple(module.padding)


def layer_of(module: nn.Module, shape: torch.Size) -> Layer:
    """The :class:`Layer` of a zoo layer ``module`` called on an input of ``shape``."""
    if isinstance(module, zoo.nn.Conv2d):
        return Layer("conv", tuple(shape), module.out_channels, tuple(module.kernel_size), tuple(module.stride),
                     conv_padding(module), tuple(module.dilation), module.bias is not None)
    if isinstance(module, zoo.nn.Linear):
        return Layer("linear", tuple(shape), module.out_features, bias=module.bias is not None)
    if isinstance(module, zoo.nn.MaxPool2d):  # torch.nn.MaxPool2d has set a stride of None to kernel_size
        kernel, stride, padding, dilation = (tuple(pair("bench", name, getattr(module, name)))
                                             for name in ("kernel_size", "stride", "padding", "dilation"))
        return Layer("pool", tuple(shape), kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                     ceil_mode=bool(module.ceil_mode))
    if isinstance(module, zoo.nn.Dropout):
        return Layer("dropout", tuple(shape), p=module.p)
    if isinstance(module, zoo.nn.ELU):
        return Layer("elu", tuple(shape), alpha=module.alpha)
    if isinstance(module, zoo.nn.Maxout):
        return Layer("maxout", tuple(shape), pieces=module.pieces)
    kind = "BN2d" if isinstance(module, zoo.nn.BatchNorm2d) else "BN1d"
    return Layer(kind, tuple(shape), bias=module.affine, activation=module.activation, alpha=module.activation_alpha)


def layers_of(variant: ModelVariant) -> list[Layer]:
    """The zoo layers (conv, linear, max-pool, dropout, maxout, ELU, batch norm) ``variant`` runs at its recipe's batch size, in call order.

    Runs a batch of 2 through the model in eval mode (dropout's hook still sees
    its input) with forward hooks on its zoo layers, then sets each recorded
    shape's batch dimension.
    """
    model = variant.create().eval()
    found: list[Layer] = []

    def record(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        found.append(layer_of(module, inputs[0].shape).at_batch(variant.batch_size))

    zoo_layers = (zoo.nn.Conv2d, zoo.nn.Linear, zoo.nn.MaxPool2d, zoo.nn.Dropout, zoo.nn.Maxout, zoo.nn.ELU, zoo.nn.BatchNorm1d,
                  zoo.nn.BatchNorm2d)
    handles = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, zoo_layers)]
    with torch.no_grad():
        model(torch.zeros(variant.input_shape(2)))
    for handle in handles:
        handle.remove()
    return found


def preset_layers(variants: list[ModelVariant]) -> dict[Layer, list[str]]:
    """Every distinct layer the variants run (convolutions, linear layers, pools, dropout, then the rest), each with the labels of the variants running it."""
    users: dict[Layer, list[str]] = {}
    for variant in variants:
        for layer in layers_of(variant):
            labels = users.setdefault(layer, [])
            if variant.label not in labels:
                labels.append(variant.label)
    order = {"conv": 0, "linear": 1, "pool": 2, "dropout": 3}
    return dict(sorted(users.items(), key=lambda item: order.get(item[0].kind, 4)))  # stable: call order within each kind


def rebatched(users: dict[Layer, list[str]], batch: int) -> dict[Layer, list[str]]:
    """The same layers at batch size ``batch``, merging those that become equal."""
    merged: dict[Layer, list[str]] = {}
    for layer, labels in users.items():
        target = merged.setdefault(layer.at_batch(batch), [])
        target += [label for label in labels if label not in target]
    return merged


def used_by(labels: list[str]) -> str:
    """The "used by" cell: the first model and how many others."""
    return labels[0] + (f" +{len(labels) - 1}" if len(labels) > 1 else "")


def select_layers(users: dict[Layer, list[str]], only: list[str], max_layers: int | None) -> dict[Layer, list[str]]:
    """Layers whose name contains an ``--only`` text or that a model matching an ``--only`` pattern runs; at most ``max_layers``."""
    def wanted(layer: Layer, labels: list[str]) -> bool:
        return not only or any(text in layer.name or fnmatch.filter(labels, text) for text in only)

    chosen = [(layer, labels) for layer, labels in users.items() if wanted(layer, labels)]
    return dict(chosen[:max_layers])


# ---------------------------------------------------------------- timing one layer


def layer_functions(layer: Layer, device: torch.device, dtype: torch.dtype):
    """(zoo forward, torch forward, inputs that take gradients) for one layer."""
    def tensor(*shape: int) -> torch.Tensor:
        return torch.randn(shape, device=device, dtype=dtype)

    x = tensor(*layer.shape).requires_grad_()
    if layer.is_conv:
        weight = tensor(layer.out_channels, layer.shape[1], *layer.kernel)
        weight = (weight / math.sqrt(weight[0].numel())).requires_grad_()
        bias = tensor(layer.out_channels).requires_grad_() if layer.bias else None
        args = (layer.stride, layer.padding, layer.dilation)
        ours = lambda: zoo.ops.conv2d(x, weight, bias, *args)  # noqa: E731
        theirs = lambda: F.conv2d(x, weight, bias, *args)  # noqa: E731
        return ours, theirs, tuple(t for t in (x, weight, bias) if t is not None)
    if layer.kind == "linear":
        weight = (tensor(layer.out_channels, layer.shape[-1]) / math.sqrt(layer.shape[-1])).requires_grad_()
        bias = tensor(layer.out_channels).requires_grad_() if layer.bias else None
        ours = lambda: zoo.ops.linear(x, weight, bias)  # noqa: E731
        theirs = lambda: F.linear(x, weight, bias)  # noqa: E731
        return ours, theirs, tuple(t for t in (x, weight, bias) if t is not None)
    if layer.kind == "pool":
        args = (layer.kernel, layer.stride, layer.padding, layer.dilation, layer.ceil_mode)
        return lambda: zoo.ops.max_pool2d(x, *args), lambda: F.max_pool2d(x, *args), (x,)
    if layer.kind == "dropout":
        return lambda: zoo.ops.dropout(x, layer.p), lambda: F.dropout(x, layer.p), (x,)
    if layer.kind == "elu":
        return lambda: zoo.ops.elu(x, layer.alpha), lambda: F.elu(x, layer.alpha), (x,)
    if layer.kind == "maxout":  # torch's: the amax form zoo's Maxout layer had before its kernel
        return (lambda: zoo.ops.maxout(x, layer.pieces), lambda: x.unflatten(1, (-1, layer.pieces)).amax(2), (x,))
    channels = layer.shape[1]
    weight, bias = (tensor(channels).requires_grad_(), tensor(channels).requires_grad_()) if layer.bias else (None, None)
    stats = [torch.zeros(channels, device=device, dtype=dtype), torch.ones(channels, device=device, dtype=dtype)]
    if layer.activation != "none":
        ours = lambda: zoo.ops.batch_norm_activation(  # noqa: E731
            x, *stats, weight, bias, training=True, activation=layer.activation, alpha=layer.alpha)
        theirs = lambda: torch_activation(  # noqa: E731
            F.batch_norm(x, *stats, weight, bias, training=True), layer.activation, layer.alpha)
    else:
        ours = lambda: zoo.ops.batch_norm(x, *stats, weight, bias, training=True)  # noqa: E731
        theirs = lambda: F.batch_norm(x, *stats, weight, bias, training=True)  # noqa: E731
    return ours, theirs, tuple(t for t in (x, weight, bias) if t is not None)


def forward_backward(forward: Callable[[], torch.Tensor], leaves: tuple[torch.Tensor, ...], grad: torch.Tensor):
    """A closure running forward then backward with a fixed output gradient."""

    def run() -> None:
        for t in leaves:
            t.grad = None
        forward().backward(grad)

    return run


def measure(layer: Layer, device: torch.device, dtype: torch.dtype, rounds: int, warmup: int) -> dict[str, float]:
    """Times of one layer, forward and forward+backward, ours and torch's, and the work they do (FLOP or bytes)."""
    ours, theirs, leaves = layer_functions(layer, device, dtype)
    timed = {"ours": ours, "torch": theirs}
    if layer.is_batch_norm:
        # A copy of x, timed in the same rounds: what one read and one write of x cost right then.
        source, target = leaves[0].detach(), torch.empty_like(leaves[0])
        timed["copy"] = lambda: target.copy_(source)
    with torch.no_grad():
        grad = torch.randn_like(theirs())
        forward = median_seconds(timed, device, rounds, warmup)
    both = {"ours": forward_backward(ours, leaves, grad), "torch": forward_backward(theirs, leaves, grad)}
    forward_and_backward = median_seconds(both, device, rounds, warmup)
    result = {}
    for side in ("ours", "torch"):
        result[f"{side}_fwd"] = forward[side]
        result[f"{side}_fwdbwd"] = forward_and_backward[side]
    if layer.is_conv:
        n, cin = layer.shape[:2]
        result["flop_fwd"] = 2.0 * n * layer.out_channels * math.prod(layer.output_hw()) * cin * math.prod(layer.kernel)
        result["flop_fwdbwd"] = 3 * result["flop_fwd"]  # dx and dW each cost one forward
    elif layer.kind == "linear":
        result["flop_fwd"] = 2.0 * math.prod(layer.shape) * layer.out_channels
        result["flop_fwdbwd"] = 3 * result["flop_fwd"]
    elif layer.kind == "pool":
        result["bytes"] = math.prod(layer.shape) * torch.finfo(dtype).bits / 8
    elif layer.kind in ("dropout", "elu"):
        result["bytes"] = 2.0 * math.prod(layer.shape) * torch.finfo(dtype).bits / 8
    elif layer.kind == "maxout":  # x read, y (1 / pieces of x) written
        result["bytes"] = (1 + 1 / layer.pieces) * math.prod(layer.shape) * torch.finfo(dtype).bits / 8
    else:
        result["bytes"] = 2.0 * math.prod(layer.shape) * torch.finfo(dtype).bits / 8
        result["copy_fwd"] = forward["copy"]
    return result


def copy_bandwidth(device: torch.device, rounds: int) -> float:
    """GB/s of a 256 MB tensor copy (read + write counted), for scale."""
    src = torch.empty(64 * 2**20, device=device)
    dst = torch.empty_like(src)
    seconds = median_seconds({"copy": lambda: dst.copy_(src)}, device, rounds, 2)["copy"]
    return 2 * src.numel() * 4 / seconds / 1e9


def rate(layer: Layer, r: dict[str, float], kind: str, side: str) -> str:
    """GFLOP/s (convolution, linear) or GB/s (batch norm, max pooling...) of one measurement."""
    seconds = r[f"{side}_{kind}"]
    if layer.counts_flops:
        return f"{r[f'flop_{kind}'] / seconds / 1e9:.0f} GFLOP/s"
    if layer.kind == "pool":
        return f"{r['bytes'] / seconds / 1e9:.1f} GB/s"  # the input, read once
    if layer.kind in ("dropout", "maxout", "elu"):  # x read, y written; the backward reads dy (and x or a mask), writes dx
        return f"{(1 if kind == 'fwd' else 2) * r['bytes'] / seconds / 1e9:.1f} GB/s"
    if kind == "fwd":
        return f"{r['bytes'] / seconds / 1e9:.1f} GB/s ({r['copy_fwd'] / seconds:.0%} of copy)"
    return f"{2 * r['bytes'] / seconds / 1e9:.1f} GB/s"  # backward reads x and dy, writes dx


# ---------------------------------------------------------------- the run


def main() -> None:
    """Parse the options, find the layers, time them and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, rounds=7)
    add_keep_freed_argument(parser)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--only", nargs="+", default=[], metavar="TEXT",
                        help="layers whose name contains TEXT ('BN2d', 'k5') or that a model matching TEXT runs "
                             "('mnist_cnn_32_64', 'nin_maxout*')")
    parser.add_argument("--max-layers", type=int, default=None, help="time at most this many layers (after --only)")
    parser.add_argument("--batch", type=int, default=None, help="every layer at this batch size instead of its recipe's")
    parser.add_argument("--large", action="store_true", help=f"add every layer again at batch {LARGE_BATCH} (GPU-sized)")
    parser.add_argument("--list", action="store_true", help="list the selected layers and their models, then exit")
    args = parser.parse_args()

    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    apply_threads(args.threads)
    apply_keep_freed(args.keep_freed_memory)
    users = preset_layers(model_variants())
    if args.batch is not None:
        users = rebatched(users, args.batch)
    if args.large:
        users = {**users, **{layer: labels for layer, labels in rebatched(users, LARGE_BATCH).items() if layer not in users}}
    users = select_layers(users, args.only, args.max_layers)
    if not users:
        sys.exit(f"no layer matches --only {' '.join(args.only)}; --list shows them")
    if args.list:
        print("\n".join(f"{layer.name}  (used by {', '.join(labels)})" for layer, labels in users.items()))
        return

    malloc_note = ", malloc keeping freed blocks" if args.keep_freed_memory else ""
    print(f"zoo kernels vs {run_description(device)}, {args.dtype}, median of {args.rounds}, "
          f"{len(users)} layers of the zoo presets{malloc_note}")
    print(f"reference copy bandwidth: {copy_bandwidth(device, args.rounds):.1f} GB/s (read + write)")
    header = ["layer", "fwd ours", "fwd torch", "fwd speed-up", "fwd+bwd ours", "fwd+bwd torch", "fwd+bwd speed-up",
              "ours rate fwd / fwd+bwd", "used by"]
    table = Table(header, [40, 10, 10, 12, 12, 13, 16, 25, 0], args.markdown, left=(0, 8))
    table.print_header()
    speedups: dict[str, list[float]] = {"fwd": [], "fwdbwd": []}
    copy_fractions: dict[str, list[float]] = {"all": [], "large": []}  # batch-norm forward vs copy of x
    for layer, labels in users.items():
        r = measure(layer, device, dtype, args.rounds, args.warmup)
        for kind in speedups:
            speedups[kind].append(r[f"torch_{kind}"] / r[f"ours_{kind}"])
        if layer.is_batch_norm:
            copy_fractions["all"].append(r["copy_fwd"] / r["ours_fwd"])
            if r["bytes"] / 2 >= LARGE_TENSOR_BYTES:
                copy_fractions["large"].append(r["copy_fwd"] / r["ours_fwd"])
        table.print_row([
            layer.name,
            milliseconds(r["ours_fwd"]), milliseconds(r["torch_fwd"]), speedup(r["torch_fwd"], r["ours_fwd"]),
            milliseconds(r["ours_fwdbwd"]), milliseconds(r["torch_fwdbwd"]), speedup(r["torch_fwdbwd"], r["ours_fwdbwd"]),
            f"{rate(layer, r, 'fwd', 'ours')} / {rate(layer, r, 'fwdbwd', 'ours')}",
            used_by(labels),
        ])
    print(f"geomean speed-up (torch time / ours): forward {geometric_mean(speedups['fwd']):.2f}x, "
          f"forward+backward {geometric_mean(speedups['fwdbwd']):.2f}x")
    for key, what in (("all", "every batch-norm layer"), ("large", f"inputs >= {LARGE_TENSOR_BYTES >> 20} MiB")):
        if copy_fractions[key]:
            values = copy_fractions[key]
            print(f"batch-norm training forward / copy of x timed in the same rounds, {what} ({len(values)}): "
                  f"median {statistics.median(values):.0%}, {min(values):.0%}-{max(values):.0%}")


if __name__ == "__main__":
    main()
