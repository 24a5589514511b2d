"""Damaged dataset files: every truncation, zeroed range or bit flip in a format with integrity data (gzip CRC,
zip CRC, official MD5) is refused with an error naming the file, or loads exactly the original arrays."""

from __future__ import annotations

import hashlib
import tarfile

import numpy as np
import pytest
from faults import damaged_copies
from test_data import make_cifar_pickles, make_emnist_npz, make_folder_tar, make_images, make_mnist

import zoo.data as zd
from zoo.data import cifar, mnist

COUNT = 20  # of each kind of damage, per file


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k][0], b[k][0]) and np.array_equal(a[k][1], b[k][1])
                                        for k in a)


def check_every_file(root, name, files, tmp_path):
    reference = zd.load_arrays(name, root=root, cache_dir=tmp_path / "cache-ref")
    case = 0
    for path in files:
        original = path.read_bytes()
        for what, data in damaged_copies(original, COUNT, seed=case):
            path.write_bytes(data)
            case += 1
            try:
                loaded = zd.load_arrays(name, root=root, cache_dir=tmp_path / f"cache{case}")
            except (ValueError, FileNotFoundError) as err:
                assert path.name in str(err), f"{path.name} {what}: {err}"
            else:
                assert same(loaded, reference), f"{path.name} {what}: different arrays without an error"
        path.write_bytes(original)


def test_mnist_gzip(tmp_path):
    make_mnist(tmp_path / "data", n_train=12, n_test=5)
    check_every_file(tmp_path / "data", "mnist", sorted((tmp_path / "data" / "mnist").iterdir()), tmp_path)


def test_mnist_raw_idx_with_official_md5(tmp_path, monkeypatch):
    make_mnist(tmp_path / "data", n_train=12, n_test=5, compress=False)
    files = sorted((tmp_path / "data" / "mnist").iterdir())
    # Treat the generated files as the official ones, so their MD5 is checked as the real files' would be.
    table = {p.name: (shape, hashlib.md5(p.read_bytes()).hexdigest())
             for p, shape in zip(files, ((5, 28, 28), (5,), (12, 28, 28), (12,)))}
    monkeypatch.setitem(mnist.CANONICAL, "mnist", table)
    check_every_file(tmp_path / "data", "mnist", files, tmp_path)


def test_emnist_npz(tmp_path):
    make_emnist_npz(tmp_path / "data")
    check_every_file(tmp_path / "data", "emnist-balanced", sorted((tmp_path / "data" / "emnist").iterdir()), tmp_path)


def test_cifar_pickles_with_official_md5(tmp_path, monkeypatch):
    make_cifar_pickles(tmp_path / "data")
    folder = tmp_path / "data" / "cifar-10-batches-py"
    monkeypatch.setattr(cifar, "OFFICIAL_BATCH_SIZE", 4)
    monkeypatch.setattr(cifar, "OFFICIAL_MD5", {p.name: hashlib.md5(p.read_bytes()).hexdigest()
                                                for p in folder.iterdir() if p.name != "batches.meta"})
    check_every_file(tmp_path / "data", "cifar10", [folder / "data_batch_2", folder / "test_batch"], tmp_path)


def test_cifar_jpeg_archive(tmp_path):
    archive = tmp_path / "data" / "cifar-10-jpeg" / "cifar-10-jpeg.tar.gz"
    archive.parent.mkdir(parents=True)
    make_folder_tar(archive, make_images())
    check_every_file(tmp_path / "data", "cifar10", [archive], tmp_path)
