"""Damaged checkpoints: every truncation, zeroed range or bit flip is refused with one error naming the file,
or (damage to bytes no record depends on) loads exactly the saved data."""

from __future__ import annotations

import struct
import zipfile

import pytest
import torch
from faults import damaged_copies, flip_bit
from test_data import make_mnist

from zoo.cli import main
from zoo.train import CheckpointError, TrainConfig, fit, load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_mnist(root, n_train=64, n_test=20)
    run = tmp_path_factory.mktemp("run")
    config = TrainConfig("emnist_dnn_2x100", "mnist", model_args={"hidden": [8], "batch_norm": True},
                         data_dir=str(root), val_size=16, epochs=1, batch_size=16, quiet=True)
    fit(config, run, resume=True)
    return root, run


def same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)  # NaN equals NaN here


def test_damage_is_refused_or_harmless(run, tmp_path):
    original = (run[1] / "checkpoint.pt").read_bytes()
    saved = load_checkpoint(run[1])
    path = tmp_path / "checkpoint.pt"
    refused = 0
    for what, data in damaged_copies(original, count=60):
        path.write_bytes(data)
        try:
            loaded = load_checkpoint(path)
        except CheckpointError as err:
            assert str(path) in str(err) and "\n" not in str(err), what
            refused += 1
        else:  # the damage hit bytes no record depends on (e.g. zip padding)
            assert same(loaded, saved), f"{what}: loaded different data without an error"
    assert refused > 150


def test_one_flipped_bit_in_a_weight_is_refused(run, tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes((run[1] / "checkpoint.pt").read_bytes())
    with zipfile.ZipFile(path) as archive:
        record = next(r for r in archive.infolist() if r.filename.endswith("/data/0"))
    # The tensor's bytes follow the 30-byte local header, the name and the (alignment) extra field.
    header = path.read_bytes()[record.header_offset:record.header_offset + 30]
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    flip_bit(path, record.header_offset + 30 + name_length + extra_length + 5, bit=3)
    with pytest.raises(CheckpointError, match=r"damaged checkpoint: its record '\S+/data/0' fails its CRC-32"):
        load_checkpoint(path)


def test_crcs_are_written_even_when_switched_off(run, tmp_path):
    from zoo.train.checkpoint import save_checkpoint

    checkpoint = load_checkpoint(run[1])
    torch.serialization.set_crc32_options(False)
    try:
        save_checkpoint(tmp_path / "c.pt", checkpoint)
        torch.save(checkpoint, tmp_path / "unchecked.pt")
    finally:
        torch.serialization.set_crc32_options(True)
    assert same(load_checkpoint(tmp_path / "c.pt"), checkpoint)
    with pytest.raises(CheckpointError, match="unchecked.pt: saved without CRC-32 checksums"):
        load_checkpoint(tmp_path / "unchecked.pt")


@pytest.mark.parametrize("damage", ["truncate", "empty", "random", "flip"])
def test_commands_say_one_line(run, tmp_path, capsys, damage):
    root, source = run
    target = tmp_path / "run"
    target.mkdir()
    (target / "config.json").write_bytes((source / "config.json").read_bytes())
    data = (source / "checkpoint.pt").read_bytes()
    path = target / "checkpoint.pt"
    path.write_bytes({"truncate": data[:len(data) // 2], "empty": b"", "random": bytes(range(256)) * 40,
                      "flip": data}[damage])
    if damage == "flip":
        flip_bit(path, len(data) // 2)
    train = ["train", "emnist_dnn_2x100", "--dataset", "mnist", "--data-dir", str(root), "--val-size", "16",
             "--batch-size", "16", "--epochs", "2", "--model-arg", "hidden=[8]", "--model-arg", "batch_norm=true",
             "--quiet", "--out", str(target), "--resume"]
    for argv in (["eval", str(target), "--data-dir", str(root)], train,
                 ["export", str(target), "-o", str(tmp_path / "m.onnx")]):
        assert main(argv) == 1, argv[0]
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{path}: " in err and "checkpoint" in err, (argv[0], err)
