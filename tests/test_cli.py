"""Smoke tests for the `zoo` command line on tiny generated data."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from test_data import make_mnist  # the IDX writer of the data tests

from zoo.cli import main


# Training-heavy tests run on one thread: faster on 2 shared cores, and deterministic.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    path = tmp_path_factory.mktemp("data")
    make_mnist(path, n_train=96, n_test=20)
    return str(path)


def train_args(root, out, *extra):
    return ["train", "emnist_dnn_2x100", "--dataset", "mnist", "--data-dir", root, "--val-size", "32",
            "--batch-size", "16", "--out", str(out), "--quiet", *extra]


def test_python_dash_m_zoo_list_and_help():
    listed = subprocess.run([sys.executable, "-m", "zoo", "list"], capture_output=True, text=True, check=True)
    assert "nin_maxout_bn_he" in listed.stdout and "emnist-balanced" in listed.stdout
    helped = subprocess.run([sys.executable, "-m", "zoo", "train", "--help"], capture_output=True, text=True, check=True)
    for option in ("--resume", "--max-batches", "--milestones", "--lr-min", "--config", "--model-arg", "--compile"):
        assert option in helped.stdout


def test_list_filter_and_verbose(capsys):
    assert main(["list", "nin_relu*", "-v"]) == 0
    out = capsys.readouterr().out
    assert "nin_relu_bn_he" in out and "mnist_cnn" not in out and "recipe:" in out and "966,986" in out


def test_train_one_epoch_then_eval(root, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(train_args(root, out, "--epochs", "1", "--max-batches", "2")) == 0
    assert capsys.readouterr().out == ""  # --quiet
    results = json.loads((out / "results.json").read_text())
    config = json.loads((out / "config.json").read_text())["train_config"]
    # The recipe of emnist_dnn_2x100 fills what the command line leaves out.
    assert (config["optimizer"], config["momentum"], config["epochs"], config["max_batches"]) == ("sgd", 0.9, 1, 2)
    assert main(["eval", str(out / "checkpoint.pt"), "--data-dir", root, "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["accuracy"] == results["test_acc"] and evaluated["samples"] == 20
    assert main(["eval", str(out), "--data-dir", root, "--split", "val"]) == 0
    assert "on mnist val: accuracy" in capsys.readouterr().out
    assert main(["eval", str(out), "--data-dir", root, "--dataset", "cifar10"]) == 1
    assert "do not match" in capsys.readouterr().err


def test_config_file_and_precedence(root, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('model = "mnist_cnn"\nepochs = 1\nlr = 0.2\noptimizer = "sgd"\nmax-batches = 1\n'
                   '[model_args]\nbatch_norm = true\nhidden = [8]\n')
    out = tmp_path / "run"
    args = ["train", "--config", str(cfg), "--dataset", "mnist", "--data-dir", root, "--val-size", "32", "--quiet",
            "--out", str(out), "--lr", "0.05", "--model-arg", "activation=elu", "--model-arg", "alpha=0.5"]
    assert main(args) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["train_config"]["lr"] == 0.05 and saved["train_config"]["epochs"] == 1
    assert saved["model"]["args"]["hidden"] == [8]
    assert saved["train_config"]["model_args"] == {"batch_norm": True, "hidden": [8], "activation": "elu", "alpha": 0.5}


def test_resume_from_the_command_line(root, tmp_path):
    assert main(train_args(root, tmp_path / "a", "--epochs", "2")) == 0
    assert main(train_args(root, tmp_path / "b", "--epochs", "1")) == 0
    assert main(train_args(root, tmp_path / "b", "--epochs", "2")) == 1  # exists: needs --resume
    assert main(train_args(root, tmp_path / "b", "--epochs", "2", "--resume")) == 0

    def rows(run):  # metrics.csv without the time column
        return [line.split(",")[:-1] for line in (run / "metrics.csv").read_text().splitlines()]

    assert rows(tmp_path / "a") == rows(tmp_path / "b")


def test_resume_after_sigkill(root, tmp_path):
    args = train_args(root, tmp_path / "killed", "--epochs", "8", "--threads", "1")
    process = subprocess.Popen([sys.executable, "-m", "zoo", *args])
    checkpoint = tmp_path / "killed" / "checkpoint.pt"
    deadline = time.monotonic() + 60
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)  # wherever it is now: mid-epoch, mid-write, or done
    process.wait()
    assert main([*args, "--resume"]) == 0
    assert main(train_args(root, tmp_path / "whole", "--epochs", "8")) == 0
    for name in ("metrics.csv", "results.json"):
        killed = (tmp_path / "killed" / name).read_text().splitlines()
        whole = (tmp_path / "whole" / name).read_text().splitlines()
        if name == "metrics.csv":  # all but the time column
            killed, whole = ([line.rsplit(",", 1)[0] for line in lines] for lines in (killed, whole))
        else:
            killed, whole = ([line for line in lines if "time_s" not in line] for lines in (killed, whole))
        assert killed == whole, name


def test_default_run_directory_and_resume_latest(root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["train", "emnist_dnn_2x100", "--dataset", "mnist", "--data-dir", root, "--val-size", "32", "--quiet",
            "--batch-size", "32"]
    assert main([*args, "--epochs", "1"]) == 0
    (run,) = (tmp_path / "runs").glob("emnist_dnn_2x100-mnist-*")
    assert main([*args, "--epochs", "2", "--resume"]) == 0
    assert len((run / "metrics.csv").read_text().splitlines()) == 3


def test_divergence_exits_nonzero(root, tmp_path, capsys):
    assert main(train_args(root, tmp_path / "run", "--epochs", "1", "--lr", "1e6")) == 1
    assert "diverged in epoch 1" in capsys.readouterr().err


def test_usage_errors(root, tmp_path, capsys):
    assert main(["train", "no_such_model", "--data-dir", root]) == 1
    assert "unknown model" in capsys.readouterr().err
    assert main(["train", "mnist_cnn", "--schedule", "step", "--out", str(tmp_path / "x")]) == 1
    assert "milestones" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["train", "mnist_cnn", "--model-arg", "novalue"])
    assert exc.value.code == 2
    assert main(["eval", str(tmp_path / "missing.pt")]) == 1


@pytest.mark.parametrize("value, on", [("False", False), ("false", False), ("true", True), ("True", True)])
def test_model_arg_false_means_false(root, tmp_path, value, on):
    out = tmp_path / "run"
    assert main(train_args(root, out, "--epochs", "1", "--max-batches", "1", "--model-arg", f"batch_norm={value}")) == 0
    assert json.loads((out / "config.json").read_text())["model"]["args"]["batch_norm"] is on
    state = torch.load(out / "checkpoint.pt", weights_only=True)["state_dict"]
    assert any("running_mean" in key for key in state) is on


@pytest.mark.parametrize("arg, message", [
    ("batch_norm=maybe", "emnist_dnn_2x100: model argument batch_norm='maybe': expected bool"),
    ("foo=1", "emnist_dnn_2x100 has no model argument 'foo'; it takes"),
    ("hidden=-5", "emnist_dnn_2x100: model argument hidden='-5': expected Sequence[int]"),
    ("hidden=[0]", "hidden must be layer widths >= 1, got [0]"),
])
def test_bad_model_arg_is_one_line(root, tmp_path, capsys, arg, message):
    assert main(train_args(root, tmp_path / "run", "--epochs", "1", "--model-arg", arg)) == 1
    err = capsys.readouterr().err
    assert err.startswith("zoo: error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_user_errors_are_one_line_never_a_traceback(root, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert main(train_args(root, run, "--epochs", "1", "--max-batches", "1")) == 0
    capsys.readouterr()  # random data: the run's own chance-level warning
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cases = [
        (train_args(root, tmp_path / "a", "--device", "banana"), "unknown device 'banana'"),
        (train_args(root, tmp_path / "b", "--device", "cuda"), "device 'cuda': "),
        (["eval", str(run), "--data-dir", root, "--device", "banana"], "unknown device 'banana'"),
        (["eval", str(run), "--data-dir", root, "--device", "cuda"], "use --device cpu"),
        (train_args(root, tmp_path / "c", "--schedule", "step", "--milestones", "-3"), "milestones must be epochs >= 1"),
        (train_args(root, tmp_path / "d", "--threads", "0"), "threads must be >= 1"),
        (["eval", str(run), "--data-dir", root, "--batch-size", "0"], "--batch-size must be >= 1"),
        (["eval", str(run), "--data-dir", root, "--threads", "-1"], "--threads must be >= 1"),
        (["predict", str(tmp_path / "m.onnx"), "x.png", "--top-k", "0"], "--top-k must be >= 1"),
        (["study", "mnist-bn-study", "--epochs", "0"], "--epochs must be >= 1"),
        (train_args(str(tmp_path / "nodata"), tmp_path / "e"), "--data-dir DIR or $ZOO_DATA"),
        (train_args(root, tmp_path / "f.txt"), "f.txt"),
    ]
    (tmp_path / "f.txt").write_text("a file where the run directory should go")
    for argv, message in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith("zoo: error: ") and message in err and err.count("\n") == 1, (argv, err)


def test_chance_level_run_is_reported(root, tmp_path, capsys):
    # The generated images are noise: no model can beat chance on them.
    out = tmp_path / "run"
    assert main(train_args(root, out, "--epochs", "1")) == 0
    err = capsys.readouterr().err
    assert "zoo: warning: emnist_dnn_2x100 on mnist: test accuracy" in err and "at chance level" in err
    assert "at chance level" in json.loads((out / "results.json").read_text())["warnings"][0]
