"""Tests for zoo.studies: every study definition builds, the runner writes results/report/plots and resumes,
a diverged run is a result, and the numerical gradient check passes (and catches a wrong gradient)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest
import torch
from test_data import make_mnist  # the IDX writer of the data tests
from torch import nn

import zoo
import zoo.studies.plan as plan
import zoo.studies.report as study_report
import zoo.studies.runner as runner
from zoo.studies import (
    STUDIES,
    StudyOptions,
    StudyPaths,
    Study,
    build_config,
    check,
    check_gradients,
    get_study,
    run_study,
    select_runs,
)
from zoo.studies.cli import STUDY
from zoo.studies.findings import beats, rescues
from zoo.studies.report import render_report
from zoo.studies.spec import run


# Training-heavy tests run on one thread: faster on 2 shared cores, and deterministic.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def no_data(monkeypatch):
    # The cyclic step size needs the training-set size; the definitions test must not need data.
    monkeypatch.setattr(plan, "_train_images",
                        lambda dataset, data_dir, val_size, train_size: train_size or 45_000)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    path = tmp_path_factory.mktemp("data")
    make_mnist(path, n_train=5_100, n_test=20)  # the default 5,000 validation images fit
    return path


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    STUDY.add_to(parser.add_subparsers(dest="command"))
    return parser.parse_args(["study", *argv])


# ---------------------------------------------------------------- definitions


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_every_study_definition_builds(name, no_data):
    study = get_study(name)
    assert study.runs and study.groups and study.protocol
    published = [s.published for s in study.runs if s.published is not None] + [
        s.published for s in study.selections if s.published is not None]
    assert published and all(0 < value <= 1 for value in published)  # fractions, not percentages
    datasets = [None] if study.dataset != "emnist-balanced" else [None, "mnist", "fashion-mnist"]
    built = set()
    for dataset in datasets:
        for spec in study.runs:
            assert spec.model in zoo.list_models(), spec.model
            config = build_config(study, spec, StudyOptions(dataset=dataset))
            assert config.dataset == (dataset or study.dataset) and config.model == spec.model
            key = (spec.model, json.dumps(dict(spec.model_args), sort_keys=True), config.dataset)
            if key not in built:  # each architecture is built once per dataset
                built.add(key)
                zoo.create_model(spec.model, dataset=config.dataset, **spec.model_args)


def test_budget_options_scale_epochs_milestones_and_cyclic_step(no_data):
    nin = get_study("nin-cifar10-study")
    config = build_config(nin, nin.runs[0], StudyOptions(epoch_scale=0.05, device="cuda"))
    assert (config.epochs, config.milestones, config.device) == (8, [4, 6], "cuda")
    config = build_config(nin, nin.runs[0], StudyOptions(epochs=10, epoch_scale=0.05))
    assert (config.epochs, config.milestones) == (10, [5, 7])  # --epochs wins over --epoch-scale
    kmlp = get_study("kmlp-bn-study")
    full = build_config(kmlp, kmlp.runs[0], StudyOptions())
    assert (full.epochs, full.step_size, full.weight_decay) == (20, 5 * 450, 0.01)  # 45,000 / 100 batches per epoch
    half = build_config(kmlp, kmlp.runs[0], StudyOptions(epoch_scale=0.5))
    assert (half.epochs, half.step_size) == (10, 5 * 450 // 2)  # still 2 cycles
    small = build_config(kmlp, kmlp.runs[0], StudyOptions(train_size=9_000))
    assert (small.train_size, small.step_size) == (9_000, 5 * 90)  # the cycle counts epochs of the subset


def test_only_selects_by_label_or_group():
    study = get_study("mnist-bn-study")
    assert [s.label for s in select_runs(study, ["cnn-bn-*"])] == ["cnn-bn-lr0.01", "cnn-bn-lr0.05", "cnn-bn-lr0.5"]
    assert len(select_runs(study, ["MLP*"])) == 6 and len(select_runs(study, [])) == 12
    shared = get_study("emnist-mlp-study").run_named("relu-sgd-lr0.1")
    assert shared.groups == ("activation", "learning rate")  # trained once, reported in both comparisons


def test_findings():
    finding = rescues("BN rescues", "plain", "bn", below=0.5, above=0.9)
    assert check(finding, {"plain": 0.11, "bn": 0.97}) is True
    assert check(finding, {"plain": 0.95, "bn": 0.97}) is False
    assert check(finding, {"plain": 0.11}) is None
    with pytest.raises(ValueError, match="unknown runs"):
        Study("s", "t", "p", "mnist", "mnist", "test_acc", {}, (run("a", "mnist_cnn", "g"),),
              findings=(beats("x", "a", "b"),))


# ---------------------------------------------------------------- runner


def test_study_runs_writes_report_and_resumes(root, tmp_path, monkeypatch, capsys):
    out, runs = tmp_path / "docs", tmp_path / "runs"
    args = ["mnist-bn-study", "--only", "cnn-lr0.01", "cnn-bn-lr0.01", "--epochs", "1", "--max-batches", "2",
            "--data-dir", str(root), "--out", str(out), "--runs-dir", str(runs), "--threads", "1"]
    assert STUDY.run(parse(*args)) == 0
    for label in ("cnn-lr0.01", "cnn-bn-lr0.01"):
        record = json.loads((out / "mnist-bn-study" / "runs" / f"{label}.json").read_text())
        assert record["status"] == "done" and record["epochs_done"] == 1 and len(record["history"]) == 1
        assert 0 <= record["test_acc"] <= 1 and record["config"]["max_batches"] == 2
        assert "data_dir" not in record["config"]  # machine-specific paths stay out of committed files
        assert (runs / "mnist-bn-study" / label / "checkpoint.pt").is_file()
    report = (out / "mnist-bn-study.md").read_text()
    assert "| cnn-bn-lr0.01 |" in report and "94.87%" in report and "not run" in report and "MNIST" in report
    assert "BN improves the CNN at every learning rate | not checked" in report
    assert (out / "mnist-bn-study" / "cnn-2x4-3x3.png").stat().st_size > 1000
    assert "mnist-bn-study/cnn-2x4-3x3.png" in report

    # A second invocation trains nothing: every selected run has its result file.
    def no_training(*a, **k):
        raise AssertionError("fit called for a finished run")

    monkeypatch.setattr(runner, "fit", no_training)
    capsys.readouterr()
    assert STUDY.run(parse(*args)) == 0
    assert capsys.readouterr().out.count("done already") == 2
    # Other settings do not mix with the saved results.
    with pytest.raises(ValueError, match=r"epochs: 1 -> 2.*--rerun"):
        STUDY.run(parse(*args[:5], "2", *args[6:]))
    # The report comes back from the result files alone.
    (out / "mnist-bn-study.md").unlink()
    assert STUDY.run(parse("mnist-bn-study", "--report-only", "--out", str(out))) == 0
    assert (out / "mnist-bn-study.md").read_text() == report


def test_study_on_another_dataset_keeps_its_own_report(root, tmp_path):
    out, runs = tmp_path / "docs", tmp_path / "runs"
    args = ["emnist-mlp-study", "--dataset", "mnist", "--only", "relu-sgd-lr0.1", "--epochs", "1", "--train-size",
            "64", "--max-batches", "2", "--data-dir", str(root), "--out", str(out), "--runs-dir", str(runs)]
    assert STUDY.run(parse(*args)) == 0
    record = json.loads((out / "emnist-mlp-study-mnist" / "runs" / "relu-sgd-lr0.1.json").read_text())
    assert record["dataset"] == "mnist" and record["config"]["train_size"] == 64
    assert (runs / "emnist-mlp-study-mnist" / "relu-sgd-lr0.1" / "checkpoint.pt").is_file()
    report = (out / "emnist-mlp-study-mnist.md").read_text()
    assert "`zoo study emnist-mlp-study --dataset mnist --report-only`" in report
    assert "Reduced training set:** 64 images" in report
    assert not (out / "emnist-mlp-study.md").exists()


COMMITTED = Path(__file__).resolve().parent.parent / "docs" / "studies"


def _committed_reports() -> list[tuple[str, str | None]]:
    # (study, dataset) of every report in docs/studies: NAME.md, or NAME-DATASET.md for another dataset.
    found = []
    for name in STUDIES:
        for dataset in (None, *zoo.data.DATASETS):
            if StudyPaths(name, COMMITTED, Path("runs"), dataset).report.exists():
                found.append((name, dataset))
    return found


@pytest.mark.parametrize(("name", "dataset"), _committed_reports())
def test_committed_reports_match_their_result_files(name, dataset, tmp_path, monkeypatch):
    # The docs must be what `zoo study NAME [--dataset D] --report-only` makes of the committed result files.
    # Markdown only: plots are not redrawn (plot_group's answer, without drawing).
    monkeypatch.setattr(study_report, "plot_group", lambda records, path, title: any(r["history"] for r in records))
    committed = StudyPaths(name, COMMITTED, Path("runs"), dataset)
    assert list((committed.folder / "runs").glob("*.json")) or committed.gradcheck.exists()
    copy = StudyPaths(name, tmp_path, tmp_path / "runs", dataset)
    shutil.copytree(committed.folder, copy.folder)
    assert render_report(get_study(name), copy) == committed.report.read_text()


def test_diverged_run_is_recorded(root, tmp_path):
    study = Study("tiny-study", "Tiny", "a run that diverges", "mnist", "mnist", "test_acc",
                  {"epochs": 2, "batch_size": 16, "val_size": 32},
                  (run("huge-lr", "emnist_dnn_2x100", "lr", 0.5, train={"lr": float("inf")}, hidden=[8]),),
                  findings=(rescues("never", "huge-lr", "huge-lr", 0.5, 0.9),))
    paths = StudyPaths(study.name, tmp_path / "docs", tmp_path / "runs")
    run_study(study, paths, StudyOptions(data_dir=str(root), max_batches=3), log=lambda line: None)
    record = json.loads(paths.result("huge-lr").read_text())
    assert record["status"] == "diverged" and record["test_acc"] is None and "diverged" in record["error"]
    report = paths.report.read_text()
    assert "diverged (epoch" in report and "| never | **no** |" in report


# ---------------------------------------------------------------- gradient check


def test_gradient_check_passes_on_a_tiny_mlp():
    model = zoo.create_model("emnist_dnn_2x100", dataset="mnist", hidden=[6, 5], batch_norm=True,
                             dropout_hidden=0.5, input_size=[4, 4])
    images, labels = torch.randn(5, 1, 4, 4), torch.tensor([0, 1, 2, 1, 0])
    checks = check_gradients(model, images, labels, l2=0.005, max_entries=40)
    assert [c.name for c in checks] == [n for n, _ in model.named_parameters()]
    assert all(c.passed for c in checks), checks
    assert max(c.max_abs_err for c in checks) < 1e-7
    assert [c.checked for c in checks] == [min(40, p.numel()) for p in model.parameters()]
    assert next(model.parameters()).dtype == torch.float32  # the model itself is left as it was


class _WrongGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 1.0

    @staticmethod
    def backward(ctx, grad):
        return grad * 1.01  # 1% off: the check must notice


def test_gradient_check_catches_a_wrong_backward():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 3)

        def forward(self, x):
            return self.linear(_WrongGradient.apply(x.flatten(1)) * 2) + _WrongGradient.apply(self.linear.bias)

    checks = check_gradients(Net(), torch.randn(3, 4), torch.tensor([0, 1, 2]))
    assert not all(c.passed for c in checks) and max(c.max_rel_err for c in checks) > 1e-3
