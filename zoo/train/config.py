"""TrainConfig: every setting of a training run, which of them identify the run, and reading them from a file."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["LOCAL_FIELDS", "MACHINE_FIELDS", "OPTIMIZERS", "RUNTIME_FIELDS", "SCHEDULES", "TrainConfig",
           "read_config_file"]

OPTIMIZERS = ("sgd", "rmsprop", "adam")
SCHEDULES = ("constant", "step", "cyclic", "onecycle")

# Settings of the machine a run happens on, not of the experiment: two configs that differ
# only in these are the same run (resuming it, or comparing a study's saved result, ignores them).
MACHINE_FIELDS = ("data_dir", "threads", "quiet", "compile", "device")
# The machine settings that mean nothing on another machine (a local path, terminal output):
# left out of result files meant to be shared.
LOCAL_FIELDS = ("data_dir", "quiet")
# What may change when a run is resumed: the machine settings, and ``epochs`` (to extend a finished run).
RUNTIME_FIELDS = ("epochs", *MACHINE_FIELDS)


@dataclass
class TrainConfig:
    """Settings of one training run (the CLI's options map 1:1 onto these fields).

    Attributes:
        model: preset name (see :func:`zoo.list_models`).
        dataset: dataset name (see :func:`zoo.data.dataset_info`).
        model_args: overrides passed to :func:`zoo.create_model` (e.g. ``{"batch_norm": true}``).
        data_dir: data root (default ``$ZOO_DATA``).
        val_size: validation images held out of train (None: the dataset's
            default; 0: no validation).
        train_size: train on a seeded random subset of this many of the
            training images (reduced-budget runs; None: all of them).
        augment: the dataset's augmentation on the training split (:attr:`zoo.data.DatasetInfo.augmentation`:
            random shifts, plus mirroring for CIFAR-10 and Fashion-MNIST).
        epochs, batch_size: training length and mini-batch size.
        eval_batch_size: batch size for validation and test (no gradients).
        optimizer: ``'sgd'`` (with ``momentum`` and ``nesterov``), ``'rmsprop'``
            (``momentum`` too) or ``'adam'``.
        lr, momentum, nesterov: learning rate and momentum settings.
        weight_decay: L2 penalty (the optimizer's weight decay, on every parameter).
        l1: L1 penalty: ``l1 * sum(|w|)`` over Linear/Conv weights is added to the loss.
        schedule: ``'constant'``; ``'step'`` (lr / 10 at each epoch in
            ``milestones``); ``'cyclic'`` (triangular between ``lr_min`` and
            ``lr_max``, ``step_size`` batches per half cycle); ``'onecycle'`` (one cycle over the
            whole run, per batch: warm up to ``lr`` over the first 30%, then cosine annealing to ~0).
        seed: fixes initialisation, data order, augmentation and dropout.
        compile: run the model through ``torch.compile``.
        threads: CPU threads for torch (None: torch's default).
        device: ``'cpu'`` or ``'cuda'``.
        max_batches: limit batches per epoch and per evaluation (smoke tests).
        quiet: no progress bars or per-epoch lines.
    """

    model: str
    dataset: str
    model_args: dict[str, Any] = field(default_factory=dict)
    data_dir: str | None = None
    val_size: int | None = None
    train_size: int | None = None
    augment: bool = False
    epochs: int = 10
    batch_size: int = 128
    eval_batch_size: int = 1000
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    l1: float = 0.0
    schedule: str = "constant"
    milestones: list[int] = field(default_factory=list)
    lr_min: float = 1e-4
    lr_max: float = 0.1
    step_size: int = 2000
    seed: int = 0
    compile: bool = False
    threads: int | None = None
    device: str = "cpu"
    max_batches: int | None = None
    quiet: bool = False

    def __post_init__(self) -> None:
        self.milestones = [int(m) for m in self.milestones]
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first invalid setting."""
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.schedule == "step" and not self.milestones:
            raise ValueError("schedule 'step' needs milestones (epochs at which lr is divided by 10)")
        if self.schedule == "cyclic" and not 0 < self.lr_min < self.lr_max:
            raise ValueError(f"schedule 'cyclic' needs 0 < lr_min < lr_max, got {self.lr_min}, {self.lr_max}")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise ValueError("nesterov needs optimizer 'sgd' and momentum > 0")
        for name in ("epochs", "batch_size", "eval_batch_size", "step_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if any(m < 1 for m in self.milestones):
            raise ValueError(f"milestones must be epochs >= 1, got {self.milestones}")
        for name in ("max_batches", "train_size", "threads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.weight_decay < 0 or self.l1 < 0 or self.momentum < 0:
            raise ValueError("lr must be > 0; weight_decay, l1 and momentum must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict of every field."""
        return asdict(self)

    def identity(self) -> dict[str, Any]:
        """The settings that identify the run: every field but :data:`MACHINE_FIELDS`."""
        return {k: v for k, v in self.to_dict().items() if k not in MACHINE_FIELDS}

    def portable(self) -> dict[str, Any]:
        """Every field but :data:`LOCAL_FIELDS`: what a shared result file records."""
        return {k: v for k, v in self.to_dict().items() if k not in LOCAL_FIELDS}

    def differences(self, saved: Mapping[str, Any], allowed: Sequence[str] = ()) -> list[str]:
        """``'key: old -> new'`` for each identifying setting (beyond ``allowed``) that differs from
        ``saved``, a config dict written earlier (:meth:`to_dict` or :meth:`portable`); empty if the
        two describe the same run."""
        ignored = {*MACHINE_FIELDS, *allowed}
        current = self.to_dict()
        keys = sorted((set(saved) | set(current)) - ignored)
        return [f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in keys if saved.get(k) != current.get(k)]

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The default of every field that has one."""
        return {f.name: f.default if f.default is not MISSING else f.default_factory()
                for f in fields(cls) if f.default is not MISSING or f.default_factory is not MISSING}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict; keys may use ``-`` or ``_``; unknown keys raise ValueError."""
        known = {f.name for f in fields(cls)}
        clean = {key.replace("-", "_"): value for key, value in values.items()}
        unknown = sorted(set(clean) - known)
        if unknown:
            raise ValueError(f"unknown training setting(s) {unknown}; known: {sorted(known)}")
        return cls(**clean)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read training settings from a ``.json`` or ``.toml`` file (keys as in :class:`TrainConfig`)."""
    path = Path(path)
    if path.suffix == ".toml":
        with path.open("rb") as f:
            values = tomllib.load(f)
    elif path.suffix == ".json":
        values = json.loads(path.read_text())
    else:
        raise ValueError(f"{path}: config files must end in .json or .toml")
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a table/object of settings")
    return {key.replace("-", "_"): value for key, value in values.items()}
