"""Benchmark the zoo presets with zoo's layers against the same models with torch's layers.

For every registered preset, and the batch-norm variant (``<preset>+bn``) of
each MLP/CNN preset without batch norm, the model is built once and a "torch
twin" is made from it: every zoo layer (``zoo.nn.Conv2d``, ``Linear``, ``BatchNorm2d``...)
is swapped for ``torch.nn``'s class with the same constructor arguments and the
state_dict is copied, so both compute the same function from the same weights
(checked before timing). Inputs are random images of the preset's dataset
shape and random labels. In the same run, ours and torch's taking turns within
each round, the script times (median of ``--rounds`` after ``--warmup``; a
sample of a call under 20 ms is a loop of calls lasting 20 ms, so batch-1 rows
of a few microseconds are not timer noise):

- train: one training step at the recipe's batch size (forward,
  cross-entropy loss, backward, SGD-with-momentum update);
- infer 1 / infer N: one forward in eval mode without autograd, batch 1 and
  the recipe's batch size;

and prints torch time / our time for each (above 1: zoo is faster), with the
geometric mean of each column over the presets.

Peak memory of training, ours vs torch (``--no-memory`` skips it):

- CPU: each (preset, implementation) runs in a fresh child process, so
  neither the other implementation's allocations nor allocator caches left by
  earlier presets are counted. The child builds the model, optimizer and batch,
  records its resident set size (VmRSS), resets the kernel's peak-RSS counter
  (``echo 5 > /proc/self/clear_refs``), runs two training steps and reports
  peak RSS (VmHWM) minus the RSS before. That is the memory a user sees the
  process take: activations, gradients, momentum buffers, kernel scratch, and
  whatever the allocators keep (zoo's cache of freed output blocks, glibc's
  heap) -- not only live tensor bytes, which torch's profiler would count but
  which misses zoo's scratch buffers. Two steps, not one, so a cache that
  grows on every step would show. Needs Linux (``n/a`` elsewhere).
- CUDA: torch's caching allocator counts every byte both implementations ask
  for (zoo's CUDA kernels allocate through it), so the peak is
  ``torch.cuda.max_memory_allocated()`` over two training steps minus the
  memory allocated before, measured in this process with fresh models.

    python bench/models.py                          # CPU, every preset, NIN with --slow-rounds (~13 min on the 2-core VM)
    python bench/models.py --skip-slow              # without the NIN presets (~1.5 min)
    python bench/models.py --distinct               # one NIN of each architecture (~7 min)
    python bench/models.py --only mnist_cnn_32_64 --rounds 3
    python bench/models.py --only 'nin_relu*' --distinct
    python bench/models.py --device cuda --markdown # table for docs/benchmarks.md
    python bench/models.py --keep-freed-memory      # malloc keeping freed blocks, as zoo's training runs
"""

from __future__ import annotations

import argparse
import copy
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
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
    is_slow_on_cpu,
    matches,
    median_seconds,
    milliseconds,
    model_variants,
    run_description,
    speedup,
    synchronize,
)

import zoo  # noqa: E402
from zoo.ops.activation import torch_activation  # noqa: E402
from zoo.train.allocator import keep_freed_memory  # noqa: E402

IMPLEMENTATIONS = ("ours", "torch")
COLUMNS = ("train", "infer 1", "infer N")
MEMORY_STEPS = 2
MiB = 2**20


# ---------------------------------------------------------------- the torch twin


class _ActivationAfter:
    """Mixin: torch's batch norm layer it precedes in the bases, then ``activation`` by torch (no state_dict keys)."""

    activation = "none"
    activation_alpha = 0.0

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """activation(batch_norm(input)), each by torch."""
        return torch_activation(super().forward(input), self.activation, self.activation_alpha)


class TorchBatchNormAct1d(_ActivationAfter, nn.BatchNorm1d):
    """torch's BatchNorm1d then torch's activation, the twin of zoo.nn.BatchNormReLU1d (LeakyReLU1d, ELU1d)."""


class TorchBatchNormAct2d(_ActivationAfter, nn.BatchNorm2d):
    """torch's BatchNorm2d then torch's activation, the twin of zoo.nn.BatchNormReLU2d (LeakyReLU2d, ELU2d)."""


class TorchMaxout(nn.Module):
    """zoo.nn.Maxout's computation with torch's ops (``unflatten`` + ``amax``), the twin of zoo's layer."""

    def __init__(self, pieces: int) -> None:
        super().__init__()
        self.pieces = pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The maximum of each group of ``pieces`` channels."""
        return x.unflatten(1, (-1, self.pieces)).amax(dim=2)


_TORCH_BATCH_NORM = {
    zoo.nn.BatchNorm1d: nn.BatchNorm1d, zoo.nn.BatchNorm2d: nn.BatchNorm2d,
    zoo.nn.BatchNormReLU1d: TorchBatchNormAct1d, zoo.nn.BatchNormReLU2d: TorchBatchNormAct2d,
    zoo.nn.BatchNormLeakyReLU1d: TorchBatchNormAct1d, zoo.nn.BatchNormLeakyReLU2d: TorchBatchNormAct2d,
    zoo.nn.BatchNormELU1d: TorchBatchNormAct1d, zoo.nn.BatchNormELU2d: TorchBatchNormAct2d,
}


def torch_layer(module: nn.Module) -> nn.Module | None:
    """torch.nn's layer built with the same constructor arguments as zoo layer ``module``; None for other modules."""
    if type(module) is zoo.nn.Conv2d:
        layer = nn.Conv2d(
            module.in_channels, module.out_channels, module.kernel_size, module.stride, module.padding,
            module.dilation, module.groups, module.bias is not None, module.padding_mode,
        )
    elif type(module) in _TORCH_BATCH_NORM:
        layer = _TORCH_BATCH_NORM[type(module)](module.num_features, module.eps, module.momentum, module.affine,
                                                module.track_running_stats)
        if isinstance(layer, _ActivationAfter):
            layer.activation, layer.activation_alpha = module.activation, module.activation_alpha
    elif type(module) is zoo.nn.MaxPool2d:
        return nn.MaxPool2d(module.kernel_size, module.stride, module.padding, module.dilation, module.return_indices,
                            module.ceil_mode)
    elif type(module) is zoo.nn.Dropout:
        return nn.Dropout(module.p, module.inplace)
    elif type(module) is zoo.nn.Maxout:
        return TorchMaxout(module.pieces)
    elif type(module) is zoo.nn.ELU:
        return nn.ELU(module.alpha, module.inplace)
    elif type(module) is zoo.nn.Linear:
        layer = nn.Linear(module.in_features, module.out_features, module.bias is not None)
    else:
        return None
    reference = next((t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()), None)
    return layer if reference is None else layer.to(reference.device, reference.dtype)


def torch_twin(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with each zoo layer replaced by torch.nn's, the state_dict (weights, buffers) copied."""
    twin = copy.deepcopy(model)
    for name, module in list(twin.named_modules()):
        replacement = torch_layer(module)
        if replacement is not None:
            parent_name, _, child = name.rpartition(".")
            setattr(twin.get_submodule(parent_name), child, replacement)
    twin.load_state_dict(model.state_dict())
    twin.train(model.training)
    leftover = [type(m).__name__ for m in twin.modules() if type(m).__module__.startswith("zoo.nn")]
    if leftover:
        raise TypeError(f"torch_twin: no torch.nn equivalent for {leftover}")
    return twin


def check_same_function(ours: nn.Module, theirs: nn.Module, x: torch.Tensor) -> None:
    """Raise if the two models' eval-mode outputs on ``x`` differ beyond float32 rounding.

    torch's cuDNN convolutions are held to full float32 for the check (they use
    TF32 by default, which the timed runs keep).
    """
    ours.eval()
    theirs.eval()
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.no_grad():
            torch.testing.assert_close(ours(x), theirs(x), rtol=1e-3, atol=1e-4)
    finally:
        torch.backends.cudnn.allow_tf32 = tf32


# ---------------------------------------------------------------- what is timed


@dataclass
class Batch:
    """Random images of a preset's input shape and random labels."""

    images: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def random(cls, variant: ModelVariant, size: int, device: torch.device) -> Batch:
        """A batch of ``size`` samples for ``variant``, on ``device``."""
        images = torch.randn(variant.input_shape(size), device=device)
        return cls(images, torch.randint(variant.num_classes, (size,), device=device))


def sgd(model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer of the timed training step: SGD with momentum (the recipes' optimizer for most presets)."""
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def training_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: Batch) -> None:
    """One training step: forward, cross-entropy loss, backward, optimizer update."""
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(model(batch.images), batch.labels).backward()
    optimizer.step()


def inference(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """One forward without autograd (call with the model in eval mode)."""
    with torch.no_grad():
        return model(images)


def build_pair(variant: ModelVariant, device: torch.device) -> dict[str, nn.Module]:
    """{"ours": the preset with zoo's layers, "torch": its torch twin}, same weights, on ``device``."""
    torch.manual_seed(0)
    ours = variant.create().to(device)
    return {"ours": ours, "torch": torch_twin(ours)}


def measure_speed(variant: ModelVariant, device: torch.device, rounds: int, warmup: int) -> dict[str, dict[str, float]]:
    """Median seconds of each column (``COLUMNS``) for ours and torch's: {column: {implementation: seconds}}."""
    models = build_pair(variant, device)
    check_same_function(models["ours"], models["torch"], Batch.random(variant, 4, device).images)
    batch = Batch.random(variant, variant.batch_size, device)
    single = Batch.random(variant, 1, device).images

    for model in models.values():
        model.train()
    optimizers = {side: sgd(model) for side, model in models.items()}
    train = {side: (lambda m=m, o=optimizers[side]: training_step(m, o, batch)) for side, m in models.items()}
    result = {"train": median_seconds(train, device, rounds, warmup, device_time=False)}

    for model in models.values():
        model.eval()
    for column, images in (("infer 1", single), ("infer N", batch.images)):
        fns = {side: (lambda m=m, x=images: inference(m, x)) for side, m in models.items()}
        result[column] = median_seconds(fns, device, rounds, warmup, device_time=False)
    return {column: result[column] for column in COLUMNS}


# ---------------------------------------------------------------- peak memory of training


def _status_kib(field_name: str) -> int:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise KeyError(field_name)


def cpu_peak_training_mib(variant: ModelVariant, implementation: str, threads: int, keep_freed: bool) -> float | None:
    """Peak RSS growth (MiB) over ``MEMORY_STEPS`` training steps; meant to run in a fresh process.

    ``keep_freed``: with malloc keeping freed blocks, as ``--keep-freed-memory`` sets.
    None when the peak-RSS counter cannot be reset (not Linux, or no /proc).
    """
    torch.set_num_threads(threads)
    if keep_freed:
        keep_freed_memory()
    model = build_pair(variant, torch.device("cpu"))[implementation]
    optimizer = sgd(model)
    batch = Batch.random(variant, variant.batch_size, torch.device("cpu"))
    try:
        before = _status_kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
        for _ in range(MEMORY_STEPS):
            training_step(model, optimizer, batch)
        return (_status_kib("VmHWM") - before) / 1024
    except OSError:
        return None


def cpu_peak_training_memory(variant: ModelVariant, threads: int, keep_freed: bool) -> dict[str, float | None]:
    """{implementation: peak MiB} on the CPU, each implementation in its own fresh process."""
    peaks = {}
    for implementation in IMPLEMENTATIONS:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            peaks[implementation] = pool.submit(cpu_peak_training_mib, variant, implementation, threads,
                                                keep_freed).result()
    return peaks


def cuda_peak_training_memory(variant: ModelVariant, device: torch.device) -> dict[str, float]:
    """{implementation: peak MiB} on a GPU: torch's allocator peak over ``MEMORY_STEPS`` steps minus the start."""
    peaks = {}
    for implementation in IMPLEMENTATIONS:
        model = build_pair(variant, device)[implementation]
        optimizer = sgd(model)
        batch = Batch.random(variant, variant.batch_size, device)
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        for _ in range(MEMORY_STEPS):
            training_step(model, optimizer, batch)
        synchronize(device)
        peaks[implementation] = (torch.cuda.max_memory_allocated(device) - before) / MiB
        del model, optimizer, batch
        torch.cuda.empty_cache()
    return peaks


def peak_training_memory(variant: ModelVariant, device: torch.device, keep_freed: bool) -> dict[str, float | None]:
    """{implementation: peak MiB of training} measured as the module docstring says for ``device``."""
    if device.type == "cuda":
        return cuda_peak_training_memory(variant, device)
    return cpu_peak_training_memory(variant, torch.get_num_threads(), keep_freed)


# ---------------------------------------------------------------- the run


def select_variants(only: list[str], skip_slow: bool, distinct: bool, device: torch.device) -> list[ModelVariant]:
    """The variants to benchmark: ``--only`` patterns, without the slow ones (CPU) or architecture repeats if asked."""
    chosen, seen = [], set()
    for variant in model_variants():
        if not matches(variant.label, only):
            continue
        model = variant.create()
        if skip_slow and device.type == "cpu" and is_slow_on_cpu(model):
            continue
        if distinct:  # presets that differ only in initialisation compute the same thing
            architecture = repr(model)
            if architecture in seen:
                continue
            seen.add(architecture)
        chosen.append(variant)
    return chosen


def memory_cell(peaks: dict[str, float | None] | None) -> str:
    """The peak-memory table cell: ``ours / torch MiB``."""
    if peaks is None:
        return "skipped"
    return " / ".join("n/a" if peaks[s] is None else f"{peaks[s]:.0f}" for s in IMPLEMENTATIONS) + " MiB"


def main() -> None:
    """Parse the options, benchmark each selected preset and print the table and geometric means."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, rounds=7)
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME",
                        help="presets to run: names or shell patterns ('nin_relu*', 'mnist_cnn+bn')")
    parser.add_argument("--skip-slow", action="store_true", help="on the CPU, skip the NIN presets (~2 s per training step)")
    parser.add_argument("--slow-rounds", type=int, default=3,
                        help="on the CPU, rounds for the NIN presets (default 3; warm-up 1)")
    parser.add_argument("--distinct", action="store_true",
                        help="skip presets whose architecture repeats an earlier one's (the _he twins: only init differs)")
    parser.add_argument("--no-memory", action="store_true", help="do not measure peak training memory")
    add_keep_freed_argument(parser)
    parser.add_argument("--list", action="store_true", help="list the selected presets and exit")
    args = parser.parse_args()

    device = torch.device(args.device)
    apply_threads(args.threads)
    apply_keep_freed(args.keep_freed_memory)
    variants = select_variants(args.only, args.skip_slow, args.distinct, device)
    if not variants:
        sys.exit(f"no preset matches --only {' '.join(args.only)}; --list shows them")
    if args.list:
        print("\n".join(f"{v.label} (batch {v.batch_size})" for v in variants))
        return
    slow_note = f" (NIN: {args.slow_rounds})" if device.type == "cpu" else ""
    malloc_note = ", malloc keeping freed blocks" if args.keep_freed_memory else ""
    print(f"zoo layers vs torch layers in the presets: {run_description(device)}, float32, "
          f"median of {args.rounds} rounds{slow_note}{malloc_note}; speed-up = torch time / ours")

    header = ["preset", "batch", "train ours", "train torch", "train x", "infer 1 ours", "infer 1 torch", "infer 1 x",
              "infer N ours", "infer N torch", "infer N x", "train peak ours / torch"]
    table = Table(header, [24, 5, 11, 11, 7, 12, 13, 9, 12, 13, 9, 23], args.markdown)
    table.print_header()
    speedups: dict[str, list[float]] = {column: [] for column in COLUMNS}
    memory_ratios: list[float] = []
    start = time.perf_counter()
    for variant in variants:
        slow = device.type == "cpu" and is_slow_on_cpu(variant.create())
        rounds, warmup = (args.slow_rounds, min(args.warmup, 1)) if slow else (args.rounds, args.warmup)
        times = measure_speed(variant, device, rounds, warmup)
        peaks = None if args.no_memory else peak_training_memory(variant, device, args.keep_freed_memory)
        cells = [variant.label, str(variant.batch_size)]
        for column in COLUMNS:
            ours, theirs = times[column]["ours"], times[column]["torch"]
            speedups[column].append(theirs / ours)
            cells += [milliseconds(ours), milliseconds(theirs), speedup(theirs, ours)]
        if peaks and peaks["ours"] and peaks["torch"]:
            memory_ratios.append(peaks["torch"] / peaks["ours"])
        table.print_row(cells + [memory_cell(peaks)])

    means = {column: geometric_mean(values) for column, values in speedups.items()}
    print(f"\ngeomean speed-up (torch time / ours) over {len(variants)} models: train {means['train']:.2f}x, "
          f"inference batch 1 {means['infer 1']:.2f}x, inference batch N {means['infer N']:.2f}x")
    if memory_ratios:
        print(f"geomean peak training memory ratio (torch / ours): {geometric_mean(memory_ratios):.2f}x")
    print(f"run time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
