"""`zoo export` / `zoo predict`, torch-free prediction, the validation report, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
import torch
from PIL import Image
from test_data import make_mnist  # the IDX writer of the data tests

from zoo.cli import main
from zoo.data import normalize
from zoo.export import Classifier, export_model, load_for_export, preset_model, random_images, validate_export
from zoo.export.validate import report_path


# Training-heavy tests run on one thread: faster on 2 shared cores, and deterministic.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    path = tmp_path_factory.mktemp("data")
    make_mnist(path, n_train=96, n_test=40)
    return str(path)


@pytest.fixture(scope="module")
def run_dir(root, tmp_path_factory):
    """A trained (2 batches) mnist_cnn with batch norm."""
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(["train", "mnist_cnn", "--data-dir", root, "--val-size", "32", "--batch-size", "16", "--epochs", "1",
                 "--max-batches", "2", "--model-arg", "batch_norm=true", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def onnx_file(run_dir, tmp_path_factory):
    model, info = load_for_export(run_dir)
    return export_model(model, tmp_path_factory.mktemp("onnx") / "model.onnx", info)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Three 28x28 grayscale PNGs, one RGB PNG (converted), and one of the wrong size."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        paths.append(folder / f"digit{i}.png")
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(paths[-1])
    paths.append(folder / "rgb.png")
    Image.fromarray(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)).save(paths[-1])
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(folder / "big.png")
    return [str(p) for p in paths], str(folder / "big.png")


def test_cli_export_validates_on_the_test_split(run_dir, root, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(run_dir), "-o", str(out), "--data-dir", root, "--fold-bn", "--batch-size", "16"]) == 0
    printed = capsys.readouterr().out
    assert "validation passed on mnist test split (40 images)" in printed and "top-1 agreement 100.00%" in printed
    report = json.loads(report_path(out).read_text())
    assert report["passed"] and report["bn_folded"] and report["checker"].startswith("passed")
    assert "BatchNormalization" not in report["operators"]
    assert [(c["batch_size"], c["samples"]) for c in report["comparisons"]] == [(1, 40), (16, 40)]
    for c in report["comparisons"]:
        assert c["max_abs_diff"] <= 1e-4 and c["top1_agreement"] == 1.0
        assert c["torch_accuracy"] == c["onnxruntime_accuracy"]
    # zoo predict gives the same accuracy from the file alone, as zoo eval does from the checkpoint.
    assert main(["predict", str(out), "--dataset", "--data-dir", root, "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert main(["eval", str(run_dir), "--data-dir", root, "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert predicted["accuracy"] == evaluated["accuracy"] == report["comparisons"][1]["torch_accuracy"]
    assert predicted["samples"] == 40


def test_cli_export_untrained_preset_on_random_images(tmp_path, capsys):
    out = tmp_path / "p.onnx"
    assert main(["export", "emnist_cnn_2conv", "-o", str(out), "--random", "20", "--opset", "18"]) == 0
    assert "validation passed on 20 random uint8 images" in capsys.readouterr().out
    report = json.loads(report_path(out).read_text())
    assert report["opset"] == 18 and report["epochs"] == 0 and "torch_accuracy" not in report["comparisons"][0]


def test_cli_export_exits_nonzero_when_validation_fails(run_dir, root, tmp_path, monkeypatch, capsys):
    import zoo.export.onnx_export as onnx_export

    real = onnx_export.to_onnx

    def broken(*args, **kwargs):  # an exporter bug: one weight off by 0.01
        proto = real(*args, **kwargs)
        weight = next(t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 4)
        array = onnx.numpy_helper.to_array(weight) + np.float32(0.01)
        weight.CopyFrom(onnx.numpy_helper.from_array(array, weight.name))
        return proto

    monkeypatch.setattr(onnx_export, "to_onnx", broken)
    out = tmp_path / "bad.onnx"
    assert main(["export", str(run_dir), "-o", str(out), "--data-dir", root]) == 1
    assert "validation FAILED" in capsys.readouterr().out
    assert json.loads(report_path(out).read_text())["passed"] is False


def test_predict_images(onnx_file, images, capsys):
    paths, _ = images
    assert main(["predict", str(onnx_file), *paths, "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[0].startswith(paths[0] + ": ")
    classifier = Classifier(onnx_file)
    predictions = classifier.predict_files(paths, top_k=10)
    for p in predictions:
        names = [c for c, _ in p.top]
        assert sorted(names) == list("0123456789") and abs(sum(q for _, q in p.top) - 1) < 1e-5
        assert [q for _, q in p.top] == sorted((q for _, q in p.top), reverse=True)


def test_preprocessing_matches_zoo_normalize(onnx_file):
    classifier = Classifier(onnx_file)
    images = random_images(classifier.info, 50)
    expected = normalize(torch.from_numpy(images), classifier.info.mean, classifier.info.std).numpy()
    np.testing.assert_allclose(classifier.preprocess(images), expected, rtol=0, atol=1e-6)


def run_predict_without_torch(*args: str) -> subprocess.CompletedProcess:
    """`python -m zoo.export.predict ARGS` with torch made unimportable before anything of zoo loads."""
    script = textwrap.dedent(f"""
        import sys, runpy
        sys.modules["torch"] = None
        sys.argv = ["predict", *{list(args)!r}]
        try:
            runpy.run_module("zoo.export.predict", run_name="__main__")
        except SystemExit as exit:
            assert "torch" not in {{m.split(".")[0] for m, v in sys.modules.items() if v is not None}}
            raise
    """)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def test_predict_runs_without_torch(onnx_file, images, root):
    # Predicting image files must not need torch.
    paths, _ = images
    done = run_predict_without_torch(str(onnx_file), *map(str, paths))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 4 and all("(" in line and ")" in line for line in lines)
    first_class = lines[0].split(": ")[1].split(" (")[0]
    assert first_class == Classifier(onnx_file).predict_files(paths[:1])[0].top[0][0]


def test_predict_dataset_runs_without_torch(onnx_file, root):
    # Accuracy on a dataset split: zoo.data's array loaders and onnxruntime only.
    done = run_predict_without_torch(str(onnx_file), "--dataset", "--data-dir", str(root), "--json")
    assert done.returncode == 0, done.stderr
    assert 0.0 <= json.loads(done.stdout)["accuracy"] <= 1.0


def test_validation_report_beside_the_file(tmp_path):
    model, info = preset_model("mnist_mlp_1024_512")
    path = export_model(model, tmp_path / "mlp.onnx", info)
    report = validate_export(path, model, info, random_images(info, 10), batch_sizes=(1, 4), batch1_samples=3)
    assert report == json.loads((tmp_path / "mlp.validation.json").read_text())
    assert [(c["batch_size"], c["samples"]) for c in report["comparisons"]] == [(1, 3), (4, 10)]
    assert report["passed"] and report["versions"]["onnxruntime"]


# ---------------------------------------------------------------- bad input


def test_missing_or_corrupt_checkpoint(tmp_path, capsys):
    with pytest.raises(FileNotFoundError):
        load_for_export(tmp_path / "missing.pt")
    assert main(["export", str(tmp_path / "missing.pt"), "-o", str(tmp_path / "m.onnx")]) == 1
    assert "no checkpoint" in capsys.readouterr().err
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint" * 50)
    with pytest.raises(ValueError, match="garbage.pt: damaged checkpoint: not a readable zip archive"):
        load_for_export(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ValueError, match="not a zoo checkpoint"):
        load_for_export(foreign)
    assert not (tmp_path / "m.onnx").exists()


def test_missing_or_corrupt_onnx_file(onnx_file, tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="no ONNX file"):
        Classifier(tmp_path / "missing.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(onnx_file.read_bytes()[:200])  # truncated
    with pytest.raises(ValueError, match="corrupt.onnx: not a loadable ONNX model"):
        Classifier(corrupt)
    assert main(["predict", str(corrupt), "--dataset"]) == 1
    assert "not a loadable ONNX model" in capsys.readouterr().err
    # A valid ONNX model without zoo's metadata.
    bare = onnx.load(str(onnx_file))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(ValueError, match="no zoo.model metadata"):
        Classifier(tmp_path / "bare.onnx")


def test_bad_images(onnx_file, images, tmp_path, capsys):
    _, big = images
    classifier = Classifier(onnx_file)
    with pytest.raises(ValueError, match="image is 32x32, the model takes 28x28 images"):
        classifier.predict_files([big])
    assert main(["predict", str(onnx_file), big]) == 1
    assert "image is 32x32" in capsys.readouterr().err
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ValueError, match="not an image"):
        classifier.predict_files([text])
    with pytest.raises(FileNotFoundError):
        classifier.predict_files([tmp_path / "missing.png"])
    with pytest.raises(ValueError, match="expected uint8 images of shape"):
        classifier.logits(np.zeros((2, 1, 28, 28), np.float32))
    assert main(["predict", str(onnx_file)]) == 1  # neither images nor --dataset
    assert "IMAGE files or --dataset" in capsys.readouterr().err


def test_predict_dataset_mismatch(onnx_file, root, capsys):
    assert main(["predict", str(onnx_file), "--dataset", "cifar10", "--data-dir", root]) == 1
    assert "do not match" in capsys.readouterr().err
