"""Data-parallel training on 2 processes (gloo over loopback) against one process with the same global batch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ddp_ranks import STEP_MODELS, fit_case, step_setup, train_steps_case
from test_data import write_idx

from zoo.cli import main
from zoo.train import TrainConfig, fit
from zoo.train.distributed import Shard, check_batch_size, from_environment
from zoo.train.launch import LaunchError, launch
from zoo.train.loop import train_one_epoch

pytestmark = pytest.mark.usefixtures("one_thread")
# float32 training: two ranks add in another order than one process.
TOL = dict(rtol=1e-4, atol=1e-5)


def assert_close_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key].double(), b[key].double(), **TOL, msg=key)


def test_two_ranks_take_the_steps_of_one_process(tmp_path):
    """MLP+BN and CNN+BN: the same loss at every step and the same final weights, a short uneven last batch too."""
    launch(2, train_steps_case, (str(tmp_path),), threads=1, timeout_s=180)
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(2)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the ranks: the kernels' per-thread partial sums change the rounding
    try:
        reference = {}
        for name in STEP_MODELS:
            model, optimizer, batches = step_setup(name)
            losses = [train_one_epoch(model, optimizer, [batch], torch.device("cpu")).loss for batch in batches]
            reference[name] = (model, losses)
    finally:
        torch.set_num_threads(threads)
    for name, (model, losses) in reference.items():
        for rank in ranks:
            torch.testing.assert_close(rank[name]["losses"], losses, **TOL)
            assert_close_state(rank[name]["state_dict"], model.state_dict())
        for key, value in ranks[0][name]["state_dict"].items():  # every rank holds the same model
            assert torch.equal(value, ranks[1][name]["state_dict"][key]), key


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    # Its own RNG: test_data's shared one would change the data of the modules that run after this one.
    root = tmp_path_factory.mktemp("data")
    (root / "mnist").mkdir()
    rng = np.random.default_rng(7)
    for prefix, n in (("train", 84), ("t10k", 20)):
        write_idx(root / "mnist" / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(root / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return root


def tiny(root) -> dict:
    # 64 training images in batches of 16 and 12 validation images; dropout off.
    return dict(model="emnist_dnn_2x100", dataset="mnist", model_args={"hidden": [16], "batch_norm": True},
                data_dir=str(root), val_size=12, epochs=3, batch_size=16, optimizer="sgd", lr=0.05, momentum=0.9,
                quiet=True, eval_batch_size=8)


@pytest.fixture(scope="module")
def two_rank_run(mnist_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("two")
    launch(2, fit_case, (str(out), tiny(mnist_root)), threads=1, timeout_s=180)
    return out, [torch.load(out / f"rank{rank}.pt") for rank in range(2)]


def test_fit_on_two_ranks_follows_one_process(mnist_root, two_rank_run, tmp_path):
    out, ranks = two_rank_run
    one = fit(TrainConfig(**tiny(mnist_root)), tmp_path / "one")
    for rank in ranks:
        assert len(rank["history"]) == 3 and rank["test_acc"] == one.test.accuracy
        for mine, ref in zip(rank["history"], one.history):
            for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
                assert mine[key] == pytest.approx(ref[key], rel=1e-4), key
    assert_close_state(ranks[0]["state_dict"], torch.load(tmp_path / "one" / "checkpoint.pt")["state_dict"])
    config = json.loads((out / "run" / "config.json").read_text())
    assert config["distributed"] == {"world_size": 2, "sync_bn": True}
    assert (out / "run" / "results.json").is_file() and (out / "run" / "learning_curves.png").is_file()


def test_a_rank_killed_mid_epoch_leaves_a_resumable_checkpoint(mnist_root, two_rank_run, tmp_path):
    # 4 steps per epoch: rank 1 dies in the middle of epoch 2, and the other rank stops too (no hang).
    with pytest.raises(LaunchError, match="rank 1 was killed by SIGKILL"):
        launch(2, fit_case, (str(tmp_path), tiny(mnist_root), 6), threads=1, timeout_s=120)
    assert torch.load(tmp_path / "run" / "checkpoint.pt")["epoch"] == 1
    launch(2, fit_case, (str(tmp_path), tiny(mnist_root), None, True), threads=1, timeout_s=120)
    resumed = torch.load(tmp_path / "rank0.pt")
    _, ranks = two_rank_run
    assert [row["train_loss"] for row in resumed["history"]] == [row["train_loss"] for row in ranks[0]["history"]]
    for key, value in resumed["state_dict"].items():  # identical to the uninterrupted two-rank run
        assert torch.equal(value, ranks[0]["state_dict"][key]), key


def test_cli_nproc_trains_and_refuses_bad_counts(mnist_root, tmp_path, capsys):
    args = ["train", "emnist_dnn_2x100", "--dataset", "mnist", "--data-dir", str(mnist_root), "--val-size", "0",
            "--epochs", "1", "--batch-size", "16", "--model-arg", "hidden=[8]", "--model-arg", "batch_norm=true",
            "--threads", "1", "--quiet", "--out", str(tmp_path / "run")]
    assert main([*args, "--nproc", "2"]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["test_samples"] == 20 and results["epochs"] == 1
    capsys.readouterr()
    assert main([*args, "--nproc", "3", "--out", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "batch size 16 does not divide over 3 processes" in err
    assert main([*args, "--nproc", "0"]) == 1
    assert "--nproc must be >= 1" in capsys.readouterr().err


def test_world_size_errors(monkeypatch, mnist_root, tmp_path):
    with pytest.raises(ValueError, match="batch size 10 does not divide over 4 processes"):
        check_batch_size(10, 4)
    with pytest.raises(ValueError, match="batch size 16 does not divide over 3 processes"):
        fit(TrainConfig(**tiny(mnist_root)), tmp_path / "run", shard=Shard(0, 3))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="RANK=2, WORLD_SIZE=2"):
        from_environment()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ValueError, match="RANK='x' is not an integer"):
        from_environment()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(ValueError, match="needs MASTER_ADDR"):
        from_environment()


def test_shares_cover_each_batch_once():
    batch = torch.arange(5)
    assert [Shard(r, 2).split(batch).tolist() for r in range(2)] == [[0, 1, 2], [3, 4]]
    assert [Shard(r, 4).split(torch.arange(2)).tolist() for r in range(4)] == [[0], [1], [], []]
