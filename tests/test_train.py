"""Tests for zoo.train on tiny generated datasets: files, determinism, exact resume, divergence."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from test_data import make_cifar_pickles, make_mnist, write_idx  # the IDX / pickle writers of the data tests

from zoo.train import (
    DivergenceError,
    TrainConfig,
    build_optimizer,
    build_scheduler,
    evaluate_checkpoint,
    fit,
    l1_penalty,
    load_checkpoint,
    model_from_checkpoint,
    read_config_file,
)
from zoo.train.loop import confusion_matrix

# A small MLP with batch norm and dropout, so BN buffers and dropout RNG take part in resume.
TINY_MLP = {"hidden": [16], "batch_norm": True, "dropout_hidden": 0.3}


# Fixed thread count: bit-exact comparisons, and a light load.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_mnist(root, n_train=96, n_test=20)
    return root


def tiny(root, **changes) -> TrainConfig:
    settings = dict(model="emnist_dnn_2x100", dataset="mnist", model_args=dict(TINY_MLP), data_dir=str(root),
                    val_size=32, epochs=3, batch_size=16, optimizer="sgd", lr=0.05, momentum=0.9, quiet=True)
    return TrainConfig(**{**settings, **changes})


def without_time(history):
    return [{k: v for k, v in row.items() if k != "time_s"} for row in history]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_fit_writes_run_directory(mnist_root, tmp_path):
    result = fit(tiny(mnist_root, epochs=2), tmp_path / "run")
    run = tmp_path / "run"
    for name in ("checkpoint.pt", "metrics.csv", "metrics.json", "results.json", "confusion_matrix.csv",
                 "learning_curves.png", "confusion_matrix.png", "config.json"):
        assert (run / name).is_file(), name
    assert not list(run.glob(".*.tmp"))
    lines = (run / "metrics.csv").read_text().splitlines()
    assert lines[0] == "epoch,lr,train_loss,train_acc,val_loss,val_acc,time_s" and len(lines) == 3
    results = json.loads((run / "results.json").read_text())
    assert results["test_samples"] == 20 and results["epochs"] == 2
    assert results["test_acc"] == result.test.accuracy and sum(map(sum, results["confusion_matrix"])) == 20
    assert json.loads((run / "config.json").read_text())["train_config"]["lr"] == 0.05
    assert (run / "confusion_matrix.csv").read_text().splitlines()[0].startswith("true\\predicted,0,1,")
    # The checkpoint alone rebuilds the model: evaluation reproduces the test numbers.
    evaluated, checkpoint = evaluate_checkpoint(run, data_dir=str(mnist_root))
    assert checkpoint["epoch"] == 2 and checkpoint["data"]["mean"] == [0.1307]
    assert evaluated.accuracy == result.test.accuracy and math.isclose(evaluated.loss, result.test.loss, rel_tol=1e-6)
    assert not model_from_checkpoint(checkpoint).training


def test_same_seed_same_numbers_other_seed_differs(mnist_root, tmp_path):
    a = fit(tiny(mnist_root, epochs=2), tmp_path / "a")
    b = fit(tiny(mnist_root, epochs=2), tmp_path / "b")
    c = fit(tiny(mnist_root, epochs=2, seed=1), tmp_path / "c")
    assert without_time(a.history) == without_time(b.history)
    assert_same_weights(load_checkpoint(tmp_path / "a")["state_dict"], load_checkpoint(tmp_path / "b")["state_dict"])
    assert without_time(a.history) != without_time(c.history)


class Killed(Exception):
    """Stands in for a crash or kill right after a checkpoint was written."""


def kill_after(epoch: int):
    def hook(done: int, row: dict) -> None:
        if done == epoch:
            raise Killed

    return hook


@pytest.mark.parametrize("changes", [
    {},  # SGD + momentum, BN, dropout
    {"optimizer": "adam", "lr": 1e-3, "schedule": "cyclic", "lr_min": 1e-4, "lr_max": 1e-2, "step_size": 3,
     "model": "mnist_cnn", "model_args": {"batch_norm": True, "dropout_input": 0.2}},
    {"schedule": "step", "milestones": [2], "nesterov": True, "weight_decay": 1e-3, "l1": 1e-4},
])
def test_resume_after_kill_equals_uninterrupted(mnist_root, tmp_path, changes):
    full = fit(tiny(mnist_root, **changes), tmp_path / "full")
    config = tiny(mnist_root, **changes)
    with pytest.raises(Killed):
        fit(config, tmp_path / "killed", on_epoch_end=kill_after(1))
    assert load_checkpoint(tmp_path / "killed")["epoch"] == 1
    resumed = fit(config, tmp_path / "killed", resume=True)
    assert without_time(resumed.history) == without_time(full.history)
    assert_same_weights(load_checkpoint(tmp_path / "full")["state_dict"],
                        load_checkpoint(tmp_path / "killed")["state_dict"])
    assert resumed.test.accuracy == full.test.accuracy and resumed.test.loss == full.test.loss


def test_resume_with_cifar_augmentation(tmp_path):
    make_cifar_pickles(tmp_path / "data", per_batch=8)  # 40 train images, 8 test
    config = TrainConfig(model="cifar10_mlp_3layer", dataset="cifar10", model_args={"dropout_hidden": 0.5},
                         data_dir=str(tmp_path / "data"), val_size=8, augment=True, epochs=3, batch_size=8,
                         lr=0.01, quiet=True)
    full = fit(config, tmp_path / "full")
    with pytest.raises(Killed):
        fit(config, tmp_path / "killed", on_epoch_end=kill_after(2))
    resumed = fit(config, tmp_path / "killed", resume=True)
    assert without_time(resumed.history) == without_time(full.history)
    assert_same_weights(load_checkpoint(tmp_path / "full")["state_dict"],
                        load_checkpoint(tmp_path / "killed")["state_dict"])


def test_extending_a_finished_run_equals_a_longer_run(mnist_root, tmp_path):
    longer = fit(tiny(mnist_root, epochs=2), tmp_path / "long")
    fit(tiny(mnist_root, epochs=1), tmp_path / "short")
    extended = fit(tiny(mnist_root, epochs=2), tmp_path / "short", resume=True)
    assert without_time(extended.history) == without_time(longer.history)


def test_resume_guards(mnist_root, tmp_path):
    fit(tiny(mnist_root, epochs=1), tmp_path / "run")
    with pytest.raises(FileExistsError, match="--resume"):
        fit(tiny(mnist_root, epochs=1), tmp_path / "run")
    with pytest.raises(ValueError, match="lr: 0.05 -> 0.1"):
        fit(tiny(mnist_root, epochs=2, lr=0.1), tmp_path / "run", resume=True)
    # Resuming a run that never wrote a checkpoint simply starts it.
    assert len(fit(tiny(mnist_root, epochs=1), tmp_path / "fresh", resume=True).history) == 1


def test_divergence_stops_with_clear_message(mnist_root, tmp_path):
    with pytest.raises(DivergenceError, match=r"diverged in epoch 1: loss is (nan|inf).*no checkpoint"):
        fit(tiny(mnist_root, lr=1e6, model_args={}), tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_divergence_keeps_last_good_checkpoint(mnist_root, tmp_path):
    run = tmp_path / "run"

    def poison(epoch: int, row: dict) -> None:
        # After epoch 1's checkpoint: make the weights NaN, so epoch 2's loss is NaN.
        if epoch == 1:
            for p in live_params:
                p.data.fill_(float("nan"))

    live_params = []
    original = torch.optim.SGD.__init__

    def capture(self, params, *args, **kwargs):
        params = list(params)
        live_params.extend(params)
        original(self, params, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.optim.SGD, "__init__", capture)
        with pytest.raises(DivergenceError, match=r"epoch 2: loss is nan.*checkpoint.pt, epoch 1\) is kept"):
            fit(tiny(mnist_root), run, on_epoch_end=poison)
    checkpoint = load_checkpoint(run)
    assert checkpoint["epoch"] == 1 and all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values())
    assert len((run / "metrics.csv").read_text().splitlines()) == 2


def test_schedules_and_optimizers(mnist_root, tmp_path):
    step = fit(tiny(mnist_root, schedule="step", milestones=[1, 2]), tmp_path / "step")
    assert [row["lr"] for row in step.history] == pytest.approx([0.05, 0.005, 0.0005])
    model = torch.nn.Linear(2, 2)
    for name, cls in (("sgd", torch.optim.SGD), ("rmsprop", torch.optim.RMSprop), ("adam", torch.optim.Adam)):
        config = TrainConfig("mnist_cnn", "mnist", optimizer=name, weight_decay=0.1)
        optimizer = build_optimizer(model, config)
        assert type(optimizer) is cls and optimizer.param_groups[0]["weight_decay"] == 0.1
    nesterov = build_optimizer(model, TrainConfig("mnist_cnn", "mnist", momentum=0.9, nesterov=True))
    assert nesterov.param_groups[0]["nesterov"] and nesterov.param_groups[0]["momentum"] == 0.9
    config = TrainConfig("mnist_cnn", "mnist", optimizer="adam", schedule="cyclic", lr_min=0.01, lr_max=0.05,
                         step_size=4)
    optimizer = build_optimizer(model, config)
    scheduler, per_batch = build_scheduler(optimizer, config)
    lrs = []
    for _ in range(9):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert per_batch and lrs == pytest.approx([0.01, 0.02, 0.03, 0.04, 0.05, 0.04, 0.03, 0.02, 0.01])
    assert build_scheduler(optimizer, TrainConfig("mnist_cnn", "mnist")) == (None, False)


def test_onecycle_schedule_warms_up_to_lr_then_anneals_over_the_whole_run():
    model = torch.nn.Linear(2, 2)
    config = TrainConfig("mnist_cnn", "mnist", optimizer="adam", lr=0.01, schedule="onecycle", epochs=2)
    optimizer = build_optimizer(model, config)
    scheduler, per_batch = build_scheduler(optimizer, config, batches_per_epoch=10)
    lrs = []
    for _ in range(20):  # epochs x batches: the scheduler's whole length
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    peak = lrs.index(max(lrs))
    assert per_batch and max(lrs) == pytest.approx(0.01) and 4 <= peak <= 6
    assert lrs[0] == pytest.approx(0.01 / 25) and lrs[-1] < lrs[0]


def test_l1_penalty_and_confusion_matrix():
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    assert l1_penalty(net).item() == pytest.approx(net[0].weight.abs().sum().item())
    cm = confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


def test_config_validation_and_files(tmp_path):
    with pytest.raises(ValueError, match="milestones"):
        TrainConfig("mnist_cnn", "mnist", schedule="step")
    with pytest.raises(ValueError, match="nesterov"):
        TrainConfig("mnist_cnn", "mnist", nesterov=True)
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig("mnist_cnn", "mnist", optimizer="lbfgs")
    with pytest.raises(ValueError, match="train_size must be >= 1, got 0"):
        TrainConfig("mnist_cnn", "mnist", train_size=0)
    with pytest.raises(ValueError, match="unknown training setting"):
        TrainConfig.from_dict({"model": "mnist_cnn", "dataset": "mnist", "learning_rate": 1})
    (tmp_path / "a.toml").write_text('lr = 0.5\nbatch-size = 64\nmilestones = [3, 6]\n[model_args]\nbatch_norm = true\n')
    (tmp_path / "a.json").write_text('{"lr": 0.5, "batch_size": 64, "milestones": [3, 6], "model_args": {"batch_norm": true}}')
    assert read_config_file(tmp_path / "a.toml") == read_config_file(tmp_path / "a.json") == {
        "lr": 0.5, "batch_size": 64, "milestones": [3, 6], "model_args": {"batch_norm": True}}
    with pytest.raises(ValueError, match="json or .toml"):
        read_config_file(tmp_path / "a.yaml")


@pytest.mark.slow
def test_compile_gives_a_working_run(mnist_root, tmp_path):
    result = fit(tiny(mnist_root, epochs=1, compile=True, model="mnist_cnn"), tmp_path / "run")
    assert math.isfinite(result.test.loss)


def test_run_identity_is_decided_by_train_config():
    config = TrainConfig("mnist_cnn", "mnist", threads=1, data_dir="here", quiet=True)
    saved = config.to_dict()
    assert config.differences({**saved, "threads": 4, "device": "cuda", "data_dir": None}) == []
    assert config.differences({**saved, "lr": 0.5}) == ["lr: 0.5 -> 0.01"]
    assert config.differences({**saved, "epochs": 3}) == ["epochs: 3 -> 10"]
    assert config.differences({**saved, "epochs": 3}, allowed=("epochs",)) == []
    assert "lr" in config.identity() and "threads" not in config.identity()
    assert "threads" in config.portable() and "data_dir" not in config.portable()


def test_only_a_run_at_chance_level_is_warned_about(mnist_root, tmp_path, capsys):
    learnable = tmp_path / "data"
    (learnable / "mnist").mkdir(parents=True)
    for prefix, n in (("train", 160), ("t10k", 50)):
        labels = np.arange(n) % 10
        images = np.random.default_rng(0).integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for image, label in zip(images, labels):
            image[2 * label:2 * label + 3] = 255  # a bright band whose row gives the class
        write_idx(learnable / "mnist" / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(learnable / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", labels)
    learned = fit(tiny(learnable, epochs=2, model_args={}), tmp_path / "learned")
    assert learned.test.accuracy > 0.9 and learned.results["warnings"] == []
    assert "warning" not in capsys.readouterr().err
    chance = fit(tiny(mnist_root, epochs=1), tmp_path / "noise")  # noise images: nothing to learn
    assert chance.test.chance_accuracy == 0.1 and chance.test.accuracy <= 0.15
    assert "at chance level (always predicting the most common class scores 0.1000)" in chance.results["warnings"][0]
    assert "zoo: warning: " in capsys.readouterr().err
