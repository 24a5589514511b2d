"""Mini-batches from an in-memory ImageDataset, one training epoch and one evaluation pass."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from zoo.data import ImageDataset
from zoo.train.distributed import Shard
from zoo.train.optim import l1_penalty

__all__ = [
    "DivergenceError",
    "EpochStats",
    "EvalResult",
    "confusion_matrix",
    "count_batches",
    "eval_batches",
    "evaluate",
    "iterate_batches",
    "train_one_epoch",
]

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


def count_batches(num_samples: int, batch_size: int, max_batches: int | None = None) -> int:
    """Batches per pass over ``num_samples`` (the last one may be smaller), capped at ``max_batches``."""
    count = math.ceil(num_samples / batch_size)
    return count if max_batches is None else min(count, max_batches)


def iterate_batches(
    dataset: ImageDataset,
    batch_size: int,
    generator: torch.Generator | None = None,
    max_batches: int | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(images, labels)`` batches.

    With a ``generator`` the order is a fresh ``randperm`` drawn from it (and
    augmentation uses it too), so the generator's state alone fixes the data
    order; without one, batches come in dataset order (for evaluation).
    """
    n = len(dataset)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for index in range(count_batches(n, batch_size, max_batches)):
        yield dataset.get_batch(order[index * batch_size : (index + 1) * batch_size], generator=generator)


def eval_batches(
    dataset: ImageDataset, batch_size: int, max_batches: int | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches for evaluation: the whole split in order, or with ``max_batches`` a fixed random
    subset (files are often sorted by class, so the first batches alone could hold one class)."""
    generator = torch.Generator().manual_seed(0) if max_batches is not None else None
    return iterate_batches(dataset, batch_size, generator, max_batches)


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(num_classes, num_classes)`` int64 counts; row = true label, column = prediction."""
    flat = labels.to(torch.int64) * num_classes + predictions.to(torch.int64)
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


class DivergenceError(RuntimeError):
    """The loss became NaN or infinite: training diverged (try a smaller learning rate)."""


@dataclass
class EpochStats:
    """Mean cross-entropy loss and accuracy over the samples seen in training mode."""

    loss: float
    accuracy: float


@dataclass
class EvalResult:
    """Mean cross-entropy loss, accuracy and confusion matrix (rows: true, columns: predicted)."""

    loss: float
    accuracy: float
    confusion: torch.Tensor

    @property
    def chance_accuracy(self) -> float:
        """What always predicting the most common true class scores on the same images."""
        total = int(self.confusion.sum())
        return int(self.confusion.sum(dim=1).max()) / total if total else 0.0


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Batches,
    device: torch.device,
    l1: float = 0.0,
    batch_scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    progress: tqdm | None = None,
    penalty_model: nn.Module | None = None,
    shard: Shard | None = None,
) -> EpochStats:
    """Run one pass of mini-batch training.

    Args:
        model: the (possibly compiled) network, put in training mode here.
        batches: ``(images, labels)`` pairs.
        l1: weight of the L1 penalty added to the loss.
        batch_scheduler: a scheduler stepped after every batch (CyclicLR).
        progress: a tqdm bar to advance per batch, or None.
        penalty_model: where to find the weights for the L1 penalty
            (the uncompiled module; defaults to ``model``).
        shard: in data-parallel training (``model`` wrapped in
            DistributedDataParallel), this process's place: ``batches`` are the
            global batches, identical on every rank, of which this rank trains
            on its share; the loss, the divergence check and the returned
            statistics are those of the global batch.

    Raises:
        DivergenceError: the loss became NaN/inf; no step is taken with it.
    """
    if shard is not None:
        return _train_one_epoch_sharded(model, optimizer, batches, device, l1, batch_scheduler, progress,
                                        penalty_model, shard)
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for index, (images, labels) in enumerate(batches):
        images, labels = images.to(device), labels.to(device)
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
        objective = loss + l1 * l1_penalty(penalty_model or model) if l1 > 0 else loss
        value = objective.item()
        _check_finite(value, index)
        _step(optimizer, objective, batch_scheduler)
        total_loss += loss.item() * len(labels)
        correct += int((logits.argmax(dim=1) == labels).sum())
        seen += len(labels)
        _advance(progress, loss.item())
    return EpochStats(total_loss / seen, correct / seen)


def _check_finite(value: float, index: int) -> None:
    if value != value or abs(value) == float("inf"):
        raise DivergenceError(f"loss is {value} at batch {index + 1}")


def _step(optimizer: torch.optim.Optimizer, objective: torch.Tensor,
          batch_scheduler: torch.optim.lr_scheduler.LRScheduler | None) -> None:
    optimizer.zero_grad(set_to_none=True)
    objective.backward()
    optimizer.step()
    if batch_scheduler is not None:
        batch_scheduler.step()


def _advance(progress: tqdm | None, loss: float) -> None:
    if progress is not None:
        progress.update()
        progress.set_postfix(loss=f"{loss:.4f}", refresh=False)


def _train_one_epoch_sharded(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Batches,
                             device: torch.device, l1: float,
                             batch_scheduler: torch.optim.lr_scheduler.LRScheduler | None, progress: tqdm | None,
                             penalty_model: nn.Module | None, shard: Shard) -> EpochStats:
    # train_one_epoch on this rank's share of each global batch.
    model.train()
    total_loss, correct = 0.0, torch.zeros(1, dtype=torch.float64)
    seen = 0
    for index, (images, labels) in enumerate(batches):
        batch_size = len(labels)
        images, labels = shard.split(images).to(device), shard.split(labels).to(device)
        logits = model(images)
        loss_sum = F.cross_entropy(logits, labels, reduction="sum")
        # DistributedDataParallel averages gradients over the ranks; scaled so, the average is the gradient of the
        # global batch's mean loss, even when the shares differ in size (a short last batch).
        objective = loss_sum * (shard.world_size / batch_size)
        penalty = l1 * l1_penalty(penalty_model or model) if l1 > 0 else None
        if penalty is not None:
            objective = objective + penalty
        # The global batch's loss, the same on every rank: all ranks stop together on a NaN.
        loss = float(shard.sum(loss_sum.detach().double().cpu().reshape(1)).item()) / batch_size
        _check_finite(loss + (penalty.item() if penalty is not None else 0.0), index)
        _step(optimizer, objective, batch_scheduler)
        total_loss += loss * batch_size
        correct += int((logits.argmax(dim=1) == labels).sum())
        seen += batch_size
        _advance(progress, loss)
    correct = shard.sum(correct)
    return EpochStats(total_loss / seen, int(correct.item()) / seen)


@torch.no_grad()
def evaluate(model: nn.Module, batches: Batches, num_classes: int, device: torch.device,
             shard: Shard | None = None) -> EvalResult:
    """Loss, accuracy and confusion matrix of ``model`` (in eval mode) over ``batches``.

    With a ``shard``, each rank evaluates every ``world_size``-th batch (``model``
    must be the plain module, not its DistributedDataParallel wrapper) and the
    result, summed over the ranks, is the whole split's on every rank.
    """
    model.eval()
    total_loss, seen = 0.0, 0
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for index, (images, labels) in enumerate(batches):
        if shard is not None and index % shard.world_size != shard.rank:
            continue
        logits = model(images.to(device)).cpu()
        total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
        confusion += confusion_matrix(labels, logits.argmax(dim=1), num_classes)
        seen += len(labels)
    if shard is not None:
        total_loss = float(shard.sum(torch.tensor([total_loss], dtype=torch.float64)).item())
        confusion = shard.sum(confusion)
        seen = int(confusion.sum())
    return EvalResult(total_loss / seen, int(confusion.trace()) / seen, confusion)
