"""Pretrained weights: the shipped files, create_model(pretrained=...), damaged files refused, release, docs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_data import write_idx  # the IDX writer of the data tests

import zoo
from zoo.cli import build_parser, main
from zoo.pretrained import manifest
from zoo.pretrained.cards import models_page
from zoo.pretrained.loading import WeightsError, load_state_dict, sha256_of
from zoo.pretrained.manifest import PretrainedTag, manifest_text, read_manifest
from zoo.pretrained.release import recipe, release, save_weights
from zoo.train import TrainConfig
from zoo.train.cli import _resolve_config, train_command_line

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = read_manifest()
RELEASED = [tag for tag, entry in SHIPPED.items() if entry.released]
MAX_SHIPPED_BYTES = 25 * 10**6

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- what ships


def test_shipped_weights_are_small_and_match_their_checksums():
    assert RELEASED, "no released weights"
    assert sum(SHIPPED[tag].weights["size_bytes"] for tag in RELEASED) <= MAX_SHIPPED_BYTES
    files = {path.name for path in manifest.WEIGHTS_DIR.glob("*.pt")}
    assert files == {SHIPPED[tag].weights["file"] for tag in RELEASED}  # no stray or missing file
    for tag in RELEASED:
        weights = SHIPPED[tag].weights
        path = manifest.WEIGHTS_DIR / weights["file"]
        assert path.stat().st_size == weights["size_bytes"] and sha256_of(path) == weights["sha256"]
        assert weights["file"] == f"{tag}-{weights['sha256'][:8]}.pt"  # torch.hub's NAME-HASH naming


@pytest.mark.parametrize("tag", RELEASED)
def test_every_shipped_tag_loads_and_is_described_truthfully(tag):
    entry = SHIPPED[tag]
    model = zoo.create_model(tag, pretrained=True)
    assert sum(p.numel() for p in model.parameters()) == entry.weights["params"]
    assert entry.weights["test_samples"] == 10_000  # the whole official test set (MNIST, Fashion-MNIST, CIFAR-10)
    config = TrainConfig.from_dict({**entry.train, "threads": entry.weights["threads"]})
    assert train_command_line(config) == entry.weights["command"]
    # The recorded command is the recipe: `zoo train` resolves it back to the same settings.
    args = build_parser().parse_args(entry.weights["command"].split()[1:])
    assert _resolve_config(args).identity() == config.identity()


def test_docs_models_page_is_generated_from_the_manifest():
    assert (ROOT / "docs" / "models.md").read_text() == models_page(), \
        "docs/models.md is stale: run `python -m zoo.pretrained.cards docs/models.md`"


def test_create_model_pretrained_forms():
    tag = "mnist_cnn_32_64.mnist"  # the README's example
    name, dataset = tag.split(".")
    expected = zoo.create_model(tag).state_dict()
    for model in (zoo.create_model(name, pretrained=True) if tag == _default(name) else None,
                  zoo.create_model(name, pretrained=dataset), zoo.create_model(name, pretrained=tag),
                  zoo.create_model(name, dataset=dataset, pretrained=True)):
        if model is not None:
            assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), expected.values()))
    fresh = zoo.create_model(name, dataset=dataset).state_dict()
    assert not all(torch.equal(a, b) for a, b in zip(fresh.values(), expected.values()))
    with pytest.raises(ValueError, match="no pretrained weights"):
        zoo.create_model(name, pretrained="emnist-balanced")
    with pytest.raises(ValueError, match="is for"):
        zoo.create_model("mnist_cnn", pretrained=tag)
    with pytest.raises(ValueError, match="trained on"):
        zoo.create_model(name, dataset="fashion-mnist", pretrained=tag)
    assert zoo.list_pretrained("*.no-such-dataset") == []


def _default(name):
    released = [t for t in RELEASED if t.startswith(name + ".")]
    own = f"{name}.{zoo.model_config(name).dataset}"
    return own if own in released else sorted(released)[0]


def test_list_pretrained_command(capsys):
    assert main(["list", "--pretrained"]) == 0
    out = capsys.readouterr().out
    assert all(tag in out for tag in SHIPPED)


# ---------------------------------------------------------------- a package of generated weights


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A manifest and weights folder of its own (the shipped ones untouched), with one released tag."""
    monkeypatch.setattr(manifest, "MANIFEST_PATH", tmp_path / "manifest.json")
    monkeypatch.setattr(manifest, "WEIGHTS_DIR", tmp_path / "weights")
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    manifest.WEIGHTS_DIR.mkdir()
    model = zoo.create_model("mnist_cnn")
    path = save_weights(model.state_dict(), "mnist_cnn.mnist")
    config = TrainConfig("mnist_cnn", "mnist")
    weights = {"file": path.name, "sha256": sha256_of(path), "size_bytes": path.stat().st_size, "epochs": 1,
               "params": 0, "flops": 0, "test_accuracy": 0.5, "val_accuracy": None, "train_time_s": 1.0,
               "threads": 1, "machine": "test", "command": "zoo train mnist_cnn"}
    tags = {"mnist_cnn.mnist": PretrainedTag("mnist_cnn.mnist", "mnist_cnn", "mnist", config.identity(),
                                             weights=weights)}
    manifest.MANIFEST_PATH.write_text(manifest_text(tags))
    return model.state_dict(), path


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_generated_tag_loads(package):
    state, _ = package
    loaded = zoo.create_model("mnist_cnn", pretrained=True).state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


@pytest.mark.parametrize("damage", ["flip", "truncate", "missing", "replaced"])
def test_damaged_shipped_file_is_refused_in_one_line(package, damage, capsys, tmp_path):
    _, path = package
    if damage == "flip":
        _flip_byte(path, path.stat().st_size // 2)
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "missing":
        path.unlink()
    else:  # a valid weight file, but not the one released
        save_weights(zoo.create_model("mnist_cnn").state_dict(), "other", tmp_path).replace(path)
    message = "missing from this installation" if damage == "missing" else "checksum mismatch"
    with pytest.raises(WeightsError, match=message):
        zoo.create_model("mnist_cnn", pretrained=True)
    assert main(["predict", "mnist_cnn.mnist", "x.png"]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_user_files_are_checked(package, tmp_path):
    state, shipped = package
    # A path named NAME-HASH.pt is held to its hash; any path to the records' CRC-32s.
    copy = shutil.copy(shipped, tmp_path / shipped.name)
    assert all(torch.equal(a, b) for a, b in zip(load_state_dict(copy).values(), state.values()))
    _flip_byte(Path(copy), Path(copy).stat().st_size // 2)
    with pytest.raises(WeightsError, match="checksum mismatch"):
        zoo.create_model("mnist_cnn", pretrained=str(copy))
    plain = tmp_path / "plain.pt"
    plain.write_bytes(shipped.read_bytes()[:-200])
    with pytest.raises(WeightsError, match="damaged weight file"):
        zoo.create_model("mnist_cnn", pretrained=str(plain))
    torch.save({"state_dict": state, "epoch": 3}, plain)
    with pytest.raises(WeightsError, match="not a state_dict"):
        load_state_dict(plain)
    with pytest.raises(WeightsError, match="no weight file"):
        load_state_dict(tmp_path / "nothing.pt")
    with pytest.raises(ValueError, match="do not fit"):
        zoo.create_model("emnist_dnn_2x100", dataset="mnist", pretrained=str(shipped))


def test_urls_go_through_torch_hub_with_its_hash_check(package, tmp_path):
    state, shipped = package
    served = tmp_path / "served"
    served.mkdir()
    good = Path(shutil.copy(shipped, served / shipped.name))
    loaded = zoo.create_model("mnist_cnn", pretrained=good.as_uri()).state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    # The cached copy is checked again on every load, not only on download.
    cached = tmp_path / "cache" / "weights" / shipped.name
    assert cached.is_file()
    _flip_byte(cached, cached.stat().st_size // 2)
    with pytest.raises(WeightsError, match="checksum mismatch"):
        zoo.create_model("mnist_cnn", pretrained=good.as_uri())
    cached.unlink()
    _flip_byte(good, good.stat().st_size // 2)
    with pytest.raises(WeightsError, match="hash"):
        zoo.create_model("mnist_cnn", pretrained=good.as_uri())


def test_a_recipe_without_weights_says_how_to_make_them(package):
    tags = read_manifest()
    tags["nin_relu_bn.cifar10"] = recipe("nin_relu_bn.cifar10")
    manifest.MANIFEST_PATH.write_text(manifest_text(tags))
    with pytest.raises(ValueError, match="zoo release nin_relu_bn.cifar10 --write"):
        zoo.create_model("nin_relu_bn", pretrained=True)
    assert zoo.list_pretrained() == ["mnist_cnn.mnist"]
    assert "nin_relu_bn.cifar10" in zoo.list_pretrained(released=False)


def test_release_trains_records_and_reproduces(package, tmp_path):
    # Its own generator: drawing from the data tests' shared RNG would change the data later tests generate.
    rng = np.random.default_rng(3)
    (tmp_path / "data" / "mnist").mkdir(parents=True)
    for prefix, n in (("train", 48), ("t10k", 20)):
        write_idx(tmp_path / "data" / "mnist" / f"{prefix}-images-idx3-ubyte.gz",
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(tmp_path / "data" / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    tags = read_manifest()
    settings = {**recipe("emnist_dnn_2x100.mnist").train, "epochs": 2, "val_size": 16, "batch_size": 16}
    tags["emnist_dnn_2x100.mnist"] = PretrainedTag("emnist_dnn_2x100.mnist", "emnist_dnn_2x100", "mnist", settings)
    manifest.MANIFEST_PATH.write_text(manifest_text(tags))
    data = str(tmp_path / "data")
    first = release("emnist_dnn_2x100.mnist", write=True, out=tmp_path / "run1", data_dir=data, quiet=True)
    entry = read_manifest()["emnist_dnn_2x100.mnist"]
    assert first["passed"] is None and Path(first["written"]).name == entry.weights["file"]
    assert entry.weights["test_accuracy"] == first["test_accuracy"] and entry.weights["test_samples"] == 20
    assert entry.weights["command"].startswith("zoo train emnist_dnn_2x100 --dataset mnist --val-size 16")
    assert entry.weights["flops"] == 2 * (784 * 100 + 100 * 100 + 100 * 10)
    zoo.create_model("emnist_dnn_2x100", pretrained="mnist")
    again = release("emnist_dnn_2x100.mnist", out=tmp_path / "run2", data_dir=data, quiet=True)
    assert again["passed"] and again["same_weights"] and again["difference"] == 0
    # A finished run of the same settings can be recorded as it is; a run of other settings cannot.
    assert release("emnist_dnn_2x100.mnist", from_run=tmp_path / "run2")["same_weights"]
    with pytest.raises(ValueError, match="not a run of"):
        release("mnist_cnn.mnist", from_run=tmp_path / "run2")
    assert "`emnist_dnn_2x100.mnist`" in models_page()


def test_export_and_predict_take_a_tag(package, tmp_path, capsys):
    from PIL import Image

    image = tmp_path / "digit.png"
    Image.new("L", (28, 28), 200).save(image)
    assert main(["predict", "mnist_cnn.mnist", str(image), "--json"]) == 0
    top = json.loads(capsys.readouterr().out)[0]["top"]
    assert len(top) == 3
    assert list((tmp_path / "cache" / "onnx").glob("mnist_cnn.mnist-*.onnx"))
    out = tmp_path / "m.onnx"
    assert main(["export", "mnist_cnn.mnist", "-o", str(out), "--random", "8", "--batch1-samples", "2"]) == 0
    assert "exported mnist_cnn (mnist, 1 epochs)" in capsys.readouterr().out
