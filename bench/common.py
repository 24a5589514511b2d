"""What the benchmark scripts share: interleaved median timing, the benchmarked models, options and tables.

- Timing: :func:`median_seconds` times several functions in turn within each
  round (ours and torch's alternate, so drifts in machine speed hit both) and
  returns each one's median after warm-up; a sample of a call shorter than
  ``MIN_SAMPLE_SECONDS`` is a loop of calls.
- Models: :func:`model_variants` lists what ``bench/models.py`` times and
  ``bench/kernels.py`` takes its layer shapes from: every registered preset at
  its recipe's batch size, plus a batch-norm variant (``<preset>+bn``) of each
  MLP/CNN preset that has no batch norm of its own.
- Options and output: :func:`add_common_arguments`, :func:`apply_threads`,
  :func:`run_description`, :class:`Table` (fixed-width text or markdown) and
  :func:`geometric_mean`.
"""

from __future__ import annotations

import argparse
import fnmatch
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

import zoo
from zoo.data import dataset_info
from zoo.train.allocator import keep_freed_memory

# ---------------------------------------------------------------- timing


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work so wall-clock times are complete (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# A timed sample repeats a call until it lasts at least this long: a single call of a few
# microseconds measures the timer, the scheduler and the first touch of caches as much as the call.
MIN_SAMPLE_SECONDS = 0.02


def time_calls(fn: Callable[[], object], device: torch.device, device_time: bool = True, calls: int = 1) -> float:
    """Seconds per call of ``fn`` over ``calls`` calls in a row.

    On the CPU: wall clock. On a GPU with ``device_time``: CUDA events around the
    calls (the GPU's time, what a kernel costs); without it: wall clock between
    two ``torch.cuda.synchronize()`` calls (what a user waits for, launch and
    Python overhead included).
    """
    if device.type == "cuda" and device_time:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / calls
    synchronize(device)
    start_time = time.perf_counter()
    for _ in range(calls):
        fn()
    synchronize(device)
    return (time.perf_counter() - start_time) / calls


def median_seconds(
    fns: dict[str, Callable[[], object]],
    device: torch.device,
    repeat: int,
    warmup: int,
    device_time: bool = True,
    min_sample_seconds: float = MIN_SAMPLE_SECONDS,
) -> dict[str, float]:
    """Median seconds per call of each function over ``repeat`` samples, the functions timed in turn.

    Each function first runs ``warmup`` times untimed; one more timed call then
    sets how many calls in a row make one of its samples (enough to last
    ``min_sample_seconds``; one for anything slower). Interleaving keeps the
    comparison fair when the machine's speed drifts (other load, clock
    changes) during the run. ``device_time`` is passed to :func:`time_calls`.
    """
    calls = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        calls[name] = max(1, math.ceil(min_sample_seconds / max(time_calls(fn, device, device_time), 1e-9)))
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            times[name].append(time_calls(fn, device, device_time, calls[name]))
    return {name: statistics.median(t) for name, t in times.items()}


def geometric_mean(values: Iterable[float]) -> float:
    """Geometric mean of positive numbers (nan for none)."""
    values = list(values)
    if not values:
        return math.nan
    return math.exp(sum(map(math.log, values)) / len(values))


# ---------------------------------------------------------------- the benchmarked models


@dataclass(frozen=True)
class ModelVariant:
    """One benchmarked model: a registered preset, possibly with architecture overrides.

    Attributes:
        label: how tables and ``--only`` name it: the preset name, ``+bn`` appended
            for the batch-norm variant.
        preset: the registry name.
        overrides: passed to :func:`zoo.create_model` (e.g. ``batch_norm=True``).
    """

    label: str
    preset: str
    overrides: dict[str, Any] = field(default_factory=dict)

    def create(self) -> nn.Module:
        """A freshly initialised model (CPU, float32, training mode)."""
        return zoo.create_model(self.preset, **self.overrides)

    @property
    def batch_size(self) -> int:
        """The batch size of the preset's recipe (128 when the recipe names none)."""
        return int(zoo.model_config(self.preset).recipe.get("batch_size", 128))

    @property
    def num_classes(self) -> int:
        """Outputs of the model: the classes of the preset's dataset."""
        return dataset_info(zoo.model_config(self.preset).dataset).num_classes

    def input_shape(self, batch: int) -> tuple[int, int, int, int]:
        """``(batch, channels, height, width)`` of the preset's dataset images."""
        info = dataset_info(zoo.model_config(self.preset).dataset)
        return (batch, info.in_channels, *info.image_size)


def has_batch_norm(model: nn.Module) -> bool:
    """Whether any module of ``model`` is a batch-norm layer (zoo's or torch's)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def model_variants() -> list[ModelVariant]:
    """Every registered preset, each followed by its ``+bn`` variant if it is an MLP/CNN without batch norm.

    NIN presets come with and without batch norm in the registry already, so
    they get no extra variant.
    """
    variants = []
    for name in zoo.list_models():
        variants.append(ModelVariant(name, name))
        model = zoo.create_model(name)
        if isinstance(model, (zoo.models.DNN, zoo.models.CNN)) and not has_batch_norm(model):
            variants.append(ModelVariant(f"{name}+bn", name, {"batch_norm": True}))
    return variants


def matches(label: str, patterns: Sequence[str]) -> bool:
    """Whether ``label`` matches one of the shell-style ``patterns`` (all labels match when there are none)."""
    return not patterns or any(fnmatch.fnmatchcase(label, p) for p in patterns)


def is_slow_on_cpu(model: nn.Module) -> bool:
    """Whether a training step of ``model`` takes seconds on a small CPU (the NIN family: ~2 s on 2 cores)."""
    return isinstance(model, zoo.models.NIN)


# ---------------------------------------------------------------- options and output


def add_common_arguments(parser: argparse.ArgumentParser, rounds: int) -> None:
    """The options both scripts take: device, threads, rounds, warm-up, ``--only`` and ``--markdown``."""
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where to run (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--rounds", "--repeat", dest="rounds", type=int, default=rounds,
                        help=f"timed rounds per measurement; the median is reported (default {rounds})")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs of each function first (default 2)")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown, for docs/benchmarks.md")


def add_keep_freed_argument(parser: argparse.ArgumentParser) -> None:
    """``--keep-freed-memory``: malloc keeps freed blocks for reuse, as zoo's training runs."""
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="have malloc keep freed blocks for reuse, as zoo's training does "
                             "(zoo.train.allocator; ours and torch's run so)")


def apply_keep_freed(keep: bool) -> None:
    """Have malloc keep freed blocks when ``keep``; exit with a message where that does not apply."""
    if keep and not keep_freed_memory():
        sys.exit("--keep-freed-memory: not applicable here (needs Linux with glibc, ZOO_KEEP_FREED_MEMORY unset or 1)")


def apply_threads(threads: int | None) -> None:
    """Set torch's CPU thread count when one is given."""
    if threads is not None:
        torch.set_num_threads(threads)


def run_description(device: torch.device) -> str:
    """torch version and what runs the benchmark: CPU threads, or the GPU's name and whether torch's convolutions use TF32."""
    if device.type == "cuda":
        tf32 = "on" if torch.backends.cudnn.allow_tf32 else "off"
        where = f"{torch.cuda.get_device_name(device)}, torch's cuDNN TF32 {tf32}"
    else:
        threads = torch.get_num_threads()
        where = f"{threads} thread{'s' * (threads > 1)}"
    return f"torch {torch.__version__} on {device.type} ({where})"


class Table:
    """A table printed one row at a time: fixed-width text, or markdown with ``markdown=True``.

    ``widths`` are the text column widths; the columns numbered in ``left`` are
    left-aligned, the others right-aligned. Markdown ignores both.
    """

    def __init__(self, header: Sequence[str], widths: Sequence[int], markdown: bool, left: Sequence[int] = (0,)) -> None:
        self.header, self.widths, self.markdown, self.left = list(header), list(widths), markdown, set(left)

    def print_header(self) -> None:
        """Print the header line (and the markdown separator)."""
        self.print_row(self.header)
        if self.markdown:
            print("|" + "---|" * len(self.header), flush=True)

    def print_row(self, cells: Sequence[str]) -> None:
        """Print one row."""
        if self.markdown:
            print("| " + " | ".join(cells) + " |", flush=True)
            return
        aligned = [f"{c:{'<' if i in self.left else '>'}{w}s}" for i, (c, w) in enumerate(zip(cells, self.widths))]
        print("  ".join(aligned).rstrip(), flush=True)


def milliseconds(seconds: float) -> str:
    """``seconds`` as a table cell in milliseconds."""
    return f"{seconds * 1e3:.2f} ms"


def speedup(torch_seconds: float, our_seconds: float) -> str:
    """The speed-up cell: torch time / our time (above 1: ours is faster)."""
    return f"{torch_seconds / our_seconds:.2f}x"
