"""Training engine: optimisers, schedules, metrics, checkpoints with exact resume, evaluation.

Quick use::

    from zoo.train import TrainConfig, fit
    result = fit(TrainConfig("mnist_cnn", "mnist", epochs=2, optimizer="adam", lr=1e-3), "runs/demo")
    result.test.accuracy
"""

from __future__ import annotations

from zoo.train.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint, save_checkpoint
from zoo.train.config import (
    LOCAL_FIELDS,
    MACHINE_FIELDS,
    OPTIMIZERS,
    RUNTIME_FIELDS,
    SCHEDULES,
    TrainConfig,
    read_config_file,
)
from zoo.train.evaluate import evaluate_checkpoint
from zoo.train.fit import RunResult, fit
from zoo.train.loop import DivergenceError, EpochStats, EvalResult, evaluate, train_one_epoch
from zoo.train.optim import build_optimizer, build_scheduler, l1_penalty

__all__ = [
    "LOCAL_FIELDS",
    "MACHINE_FIELDS",
    "OPTIMIZERS",
    "RUNTIME_FIELDS",
    "SCHEDULES",
    "CheckpointError",
    "DivergenceError",
    "EpochStats",
    "EvalResult",
    "RunResult",
    "TrainConfig",
    "build_optimizer",
    "build_scheduler",
    "evaluate",
    "evaluate_checkpoint",
    "fit",
    "l1_penalty",
    "load_checkpoint",
    "model_from_checkpoint",
    "read_config_file",
    "save_checkpoint",
    "train_one_epoch",
]
