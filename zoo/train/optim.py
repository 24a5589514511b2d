"""Optimisers, learning-rate schedules and the L1 penalty, all from torch.optim."""

from __future__ import annotations

import torch
from torch import nn

from zoo.train.config import TrainConfig

__all__ = ["build_optimizer", "build_scheduler", "l1_penalty"]


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (plain, momentum or Nesterov), RMSProp or Adam over all parameters; L2 via ``weight_decay``."""
    params = model.parameters()
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                               weight_decay=config.weight_decay)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, batches_per_epoch: int = 1
) -> tuple[torch.optim.lr_scheduler.LRScheduler | None, bool]:
    """Return ``(scheduler or None, steps_per_batch)``.

    ``'step'`` is a MultiStepLR (x0.1 at each milestone epoch), stepped once per
    epoch; ``'cyclic'`` is a triangular CyclicLR (``step_size`` batches up, as
    many down), stepped once per batch; ``'onecycle'`` is a OneCycleLR peaking at
    ``config.lr`` over ``config.epochs * batches_per_epoch`` batches, stepped once
    per batch (its length is fixed, so such a run cannot be extended with more
    epochs); ``'constant'`` has no scheduler.
    """
    if config.schedule == "step":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, config.milestones, gamma=0.1), False
    if config.schedule == "cyclic":
        # cycle_momentum would fail for Adam (no 'momentum') and change SGD's momentum; keep it fixed.
        scheduler = torch.optim.lr_scheduler.CyclicLR(
            optimizer, base_lr=config.lr_min, max_lr=config.lr_max, step_size_up=config.step_size,
            mode="triangular", cycle_momentum=False,
        )
        return scheduler, True
    if config.schedule == "onecycle":
        # Momentum (Adam's beta1) cycles opposite to the learning rate, as in Smith & Topin's recipe.
        total = config.epochs * batches_per_epoch
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total), True
    return None, False


def l1_penalty(model: nn.Module) -> torch.Tensor:
    """Sum of ``|w|`` over the weights of Linear and Conv2d layers (biases and BN parameters excluded)."""
    weights = [m.weight for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    return torch.stack([w.abs().sum() for w in weights]).sum()
