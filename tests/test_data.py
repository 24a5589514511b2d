"""Tests for zoo.data: every format is generated small in tmp_path."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

import zoo.data as zd
from zoo.data import cifar, image_folder, mnist
from zoo.data.splits import split_indices

RNG = np.random.default_rng(1234)


# ---------------------------------------------------------------- file writers


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path, array, compress=True):
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def make_mnist(root, sub="mnist", n_train=12, n_test=5, compress=True, num_classes=10):
    folder = root / sub
    folder.mkdir(parents=True, exist_ok=True)
    data = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % num_classes
        ext = ".gz" if compress else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels, compress)
        data[split] = (images, labels)
    return data


def make_emnist_idx(root, n_train=20, n_test=6):
    folder = root / "emnist"
    folder.mkdir(parents=True, exist_ok=True)
    data = {}
    for split, n in (("train", n_train), ("test", n_test)):
        upright = RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        upright[:, 0, 5] = 255  # asymmetric marker: row 0, column 5
        upright[:, 5, 0] = 0
        labels = np.arange(n) % 47
        # The EMNIST files store every image transposed.
        write_idx(folder / f"emnist-balanced-{split}-images-idx3-ubyte.gz", upright.transpose(0, 2, 1))
        write_idx(folder / f"emnist-balanced-{split}-labels-idx1-ubyte.gz", labels)
        data[split] = (upright, labels)
    return data


def make_emnist_npz(root, sizes=(10, 4, 3), as_float=False):
    folder = root / "emnist"
    folder.mkdir(parents=True, exist_ok=True)
    data = {}
    for split, file, n in zip(("train", "val", "test"), ("emnist-train.npz", "emnist-valid.npz", "emnist-test.npz"), sizes):
        upright = RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) * 7) % 47
        flat = upright.reshape(n, 784)
        inputs = (flat / 255.0).astype(np.float32) if as_float else flat
        np.savez(folder / file, inputs=inputs, targets=labels)
        data[split] = (upright, labels)
    return data


def make_cifar_pickles(root, per_batch=4):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    data = {}
    for split, files in (("train", cifar.TRAIN_FILES), ("test", cifar.TEST_FILES)):
        rows, labels = [], []
        for i, file in enumerate(files):
            r = RNG.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
            lab = [(i + j) % 10 for j in range(per_batch)]
            with open(folder / file, "wb") as f:
                # Same structure as the official Python 2 pickles: bytes keys.
                pickle.dump({b"batch_label": b"x", b"data": r, b"labels": lab}, f, protocol=2)
            rows.append(r)
            labels += lab
        data[split] = (np.concatenate(rows), np.array(labels))
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in zd.dataset_info("cifar10").classes]}, f, protocol=2)
    return data


FOLDER_CLASSES = ("airplane", "bird", "truck")  # labels 0, 2, 9 in CIFAR-10 order


def make_images(n_per_class=2, test_per_class=1):
    """{(split, class, name): uint8 HWC image}; flat colour blocks survive JPEG almost exactly."""
    images = {}
    for split, n in (("train", n_per_class), ("test", test_per_class)):
        for c in FOLDER_CLASSES:
            for k in range(n):
                img = np.zeros((32, 32, 3), np.uint8)
                img[:, :] = RNG.integers(0, 256, 3)
                img[:16, :16] = RNG.integers(0, 256, 3)
                images[(split, c, f"{k:04d}")] = img
    return images


def encode(img, fmt):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def make_folder_dir(base, images):
    for (split, c, name), img in images.items():
        (base / split / c).mkdir(parents=True, exist_ok=True)
        (base / split / c / f"{name}.png").write_bytes(encode(img, "PNG"))
    return base


def make_folder_tar(path, images, fmt="JPEG", prefix="cifar-10-jpeg/", reverse=False):
    items = sorted(images.items(), reverse=reverse)
    ext = {"JPEG": "jpg", "PNG": "png"}[fmt]
    with tarfile.open(path, "w:gz") as tar:
        readme = b"not an image"
        info = tarfile.TarInfo(prefix + "README.md")
        info.size = len(readme)
        tar.addfile(info, io.BytesIO(readme))
        for (split, c, name), img in items:
            data = encode(img, fmt)
            info = tarfile.TarInfo(f"{prefix}{split}/{c}/{name}.{ext}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def expected_folder(images, split):
    keys = sorted((k for k in images if k[0] == split), key=lambda k: (FOLDER_CLASSES.index(k[1]), k[2]))
    cifar_classes = zd.dataset_info("cifar10").classes
    x = np.stack([images[k] for k in keys]).transpose(0, 3, 1, 2)
    y = np.array([cifar_classes.index(k[1]) for k in keys])
    return x, y


# ---------------------------------------------------------------- info table


def test_dataset_info_table():
    assert set(zd.DATASETS) == {"mnist", "fashion-mnist", "emnist-balanced", "cifar10"}
    em = zd.dataset_info("emnist-balanced")
    assert em.num_classes == len(em.classes) == 47
    assert em.classes[:10] == tuple("0123456789") and em.classes[10] == "A" and em.classes[36:] == tuple("abdefghnqrt")
    c10 = zd.dataset_info("cifar10")
    assert (c10.in_channels, c10.image_size, len(c10.mean), len(c10.std)) == (3, (32, 32), 3, 3)
    for info in zd.DATASETS.values():
        assert len(info.classes) == info.num_classes and len(info.mean) == info.in_channels
    with pytest.raises(ValueError, match="unknown dataset"):
        zd.dataset_info("imagenet")


# ---------------------------------------------------------------- MNIST / Fashion-MNIST


@pytest.mark.parametrize("name,sub", [("mnist", "mnist"), ("fashion-mnist", "fashion-mnist"), ("mnist", "MNIST/raw")])
def test_mnist_like_reads_values(tmp_path, name, sub):
    data = make_mnist(tmp_path, sub)
    arrays = zd.load_arrays(name, root=tmp_path)
    assert set(arrays) == {"train", "test"}
    for split, (images, labels) in data.items():
        x, y = arrays[split]
        assert x.shape == (len(images), 1, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
        np.testing.assert_array_equal(x[:, 0], images)
        np.testing.assert_array_equal(y, labels)


def test_uncompressed_idx_and_env_root(tmp_path, monkeypatch):
    data = make_mnist(tmp_path, compress=False)
    monkeypatch.setenv("ZOO_DATA", str(tmp_path))
    x, y = zd.load_arrays("mnist")["test"]
    np.testing.assert_array_equal(x[:, 0], data["test"][0])


def test_missing_file_names_it(tmp_path):
    make_mnist(tmp_path)
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.*download=True"):
        zd.load_arrays("mnist", root=tmp_path)


def test_truncated_gzip(tmp_path):
    make_mnist(tmp_path)
    path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz.*truncated gzip"):
        zd.load_arrays("mnist", root=tmp_path)


def test_wrong_magic(tmp_path):
    make_mnist(tmp_path)
    path = tmp_path / "mnist" / "train-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[3] = 3  # claims 3 dimensions
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.gz.*magic number 0x00000803"):
        zd.load_arrays("mnist", root=tmp_path)


def test_truncated_idx_content(tmp_path):
    make_mnist(tmp_path)
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-28]))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz: truncated.*\(5, 28, 28\)"):
        zd.load_arrays("mnist", root=tmp_path)


def test_bad_label_and_count_mismatch(tmp_path):
    make_mnist(tmp_path)
    write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", np.array([0] * 11 + [10]))
    with pytest.raises(ValueError, match="train-labels.*label 10 at index 11 is outside 0..9"):
        zd.load_arrays("mnist", root=tmp_path)
    write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", np.zeros(11))
    with pytest.raises(ValueError, match="12 images but 11 labels"):
        zd.load_arrays("mnist", root=tmp_path)


def test_canonical_md5_checked_on_uncompressed_content(tmp_path, monkeypatch):
    make_mnist(tmp_path)
    path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    good = hashlib.md5(gzip.decompress(path.read_bytes())).hexdigest()
    table = dict(mnist.CANONICAL["mnist"])
    monkeypatch.setitem(mnist.CANONICAL, "mnist", table)
    table["train-images-idx3-ubyte"] = ((12, 28, 28), good)
    # Re-gzipping at another level changes the .gz bytes but not the content.
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), compresslevel=1))
    zd.load_arrays("mnist", root=tmp_path)
    table["train-images-idx3-ubyte"] = ((12, 28, 28), "0" * 32)
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz: uncompressed MD5"):
        zd.load_arrays("mnist", root=tmp_path)
    zd.load_arrays("mnist", root=tmp_path, verify=False)


# ---------------------------------------------------------------- EMNIST


def test_emnist_idx_is_transposed_upright(tmp_path):
    data = make_emnist_idx(tmp_path)
    arrays = zd.load_arrays("emnist-balanced", root=tmp_path)
    assert set(arrays) == {"train", "test"}
    for split, (upright, labels) in data.items():
        x, y = arrays[split]
        np.testing.assert_array_equal(x[:, 0], upright)
        assert (x[:, 0, 0, 5] == 255).all() and (x[:, 0, 5, 0] == 0).all()
        np.testing.assert_array_equal(y, labels)
    # Without an official val split, validation is carved from train.
    ds = zd.get_dataset("emnist-balanced", "val", root=tmp_path, val_size=5)
    assert len(ds) == 5 and len(zd.get_dataset("emnist-balanced", "train", root=tmp_path, val_size=5)) == 15


@pytest.mark.parametrize("as_float", [False, True])
def test_emnist_npz_layout(tmp_path, as_float):
    make_emnist_idx(tmp_path)  # npz takes precedence when both exist
    data = make_emnist_npz(tmp_path, as_float=as_float)
    arrays = zd.load_arrays("emnist-balanced", root=tmp_path)
    assert list(arrays) == ["train", "val", "test"]
    for split, (upright, labels) in data.items():
        x, y = arrays[split]
        assert x.dtype == np.uint8 and x.shape == (len(upright), 1, 28, 28)
        np.testing.assert_array_equal(x[:, 0], upright)  # row-major, no transpose
        np.testing.assert_array_equal(y, labels)
    assert [len(zd.get_dataset("emnist-balanced", s, root=tmp_path)) for s in ("train", "val", "test")] == [10, 4, 3]
    with pytest.raises(ValueError, match="fixed validation split"):
        zd.get_dataset("emnist-balanced", "train", root=tmp_path, val_size=2)


def test_emnist_npz_errors(tmp_path):
    make_emnist_npz(tmp_path)
    np.savez(tmp_path / "emnist" / "emnist-valid.npz", inputs=np.zeros((2, 784), np.uint8), targets=np.array([0, 47]))
    with pytest.raises(ValueError, match="emnist-valid.npz.*label 47"):
        zd.load_arrays("emnist-balanced", root=tmp_path)
    np.savez(tmp_path / "emnist" / "emnist-valid.npz", inputs=np.zeros((2, 783), np.uint8), targets=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"emnist-valid.npz: inputs have shape \(2, 783\)"):
        zd.load_arrays("emnist-balanced", root=tmp_path)
    np.savez(tmp_path / "emnist" / "emnist-valid.npz", inputs=np.zeros((2, 784), np.uint8), targets=np.array([0, 1]))
    (tmp_path / "emnist" / "emnist-test.npz").unlink()
    with pytest.raises(FileNotFoundError, match="emnist-test.npz"):
        zd.load_arrays("emnist-balanced", root=tmp_path)


def test_emnist_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="emnist-balanced-train-images-idx3-ubyte"):
        zd.load_arrays("emnist-balanced", root=tmp_path)


# ---------------------------------------------------------------- CIFAR-10 pickles


def test_cifar_pickles_values_and_chw_order(tmp_path):
    data = make_cifar_pickles(tmp_path)
    arrays = zd.load_arrays("cifar10", root=tmp_path, cache_dir=tmp_path / "cache")
    for split, (rows, labels) in data.items():
        x, y = arrays[split]
        assert x.shape == (len(rows), 3, 32, 32)
        # Row layout: 1024 red, then 1024 green, then 1024 blue, each row-major.
        np.testing.assert_array_equal(x[0, 1, 2, 3], rows[0, 1024 + 2 * 32 + 3])
        np.testing.assert_array_equal(x.reshape(len(rows), -1), rows)
        np.testing.assert_array_equal(y, labels)
    assert len(arrays["train"][1]) == 20 and len(arrays["test"][1]) == 4


def test_cifar_pickle_errors(tmp_path, monkeypatch):
    make_cifar_pickles(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    good = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="data_batch_3: not a readable CIFAR batch"):
        zd.load_arrays("cifar10", root=tmp_path)
    # Pickles may only rebuild numpy arrays, never call arbitrary functions.
    (folder / "data_batch_3").write_bytes(pickle.dumps(os.system))
    with pytest.raises(ValueError, match="data_batch_3.*not allowed"):
        zd.load_arrays("cifar10", root=tmp_path)
    (folder / "data_batch_3").write_bytes(good)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 11]}, f)
    with pytest.raises(ValueError, match="test_batch.*label 11"):
        zd.load_arrays("cifar10", root=tmp_path)
    (folder / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match="test_batch"):
        zd.load_arrays("cifar10", root=tmp_path)


def test_cifar_official_md5_check(tmp_path, monkeypatch):
    make_cifar_pickles(tmp_path)
    monkeypatch.setattr(cifar, "OFFICIAL_BATCH_SIZE", 4)  # treat the small batches as "full size"
    with pytest.raises(ValueError, match="data_batch_1: MD5 .* does not match the official"):
        zd.load_arrays("cifar10", root=tmp_path)
    assert len(zd.load_arrays("cifar10", root=tmp_path, verify=False)["train"][1]) == 20


def test_cifar_meta_mismatch(tmp_path):
    make_cifar_pickles(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"a"] * 10}, f)
    with pytest.raises(ValueError, match="batches.meta: label names"):
        zd.load_arrays("cifar10", root=tmp_path)


# ---------------------------------------------------------------- image folder


def test_image_folder_directory_png_exact(tmp_path):
    images = make_images()
    make_folder_dir(tmp_path / "cifar-10-jpeg", images)
    arrays = zd.load_arrays("cifar10", root=tmp_path, cache_dir=tmp_path / "cache")
    for split in ("train", "test"):
        x, y = expected_folder(images, split)
        np.testing.assert_array_equal(arrays[split][0], x)
        np.testing.assert_array_equal(arrays[split][1], y)


def test_image_folder_tar_jpeg_order_independent(tmp_path):
    images = make_images()
    base = tmp_path / "cifar-10-jpeg"
    base.mkdir()
    make_folder_tar(base / "cifar-10-jpeg.tar.gz", images, "JPEG", reverse=True)
    arrays = zd.load_arrays("cifar10", root=tmp_path, cache_dir=tmp_path / "cache")
    for split in ("train", "test"):
        x, y = expected_folder(images, split)
        assert arrays[split][0].shape == x.shape
        got = arrays[split][0].astype(int)
        # JPEG is lossy and rings at the colour edge: compare the flat interiors.
        for rows, cols in ((slice(2, 12), slice(2, 12)), (slice(20, 30), slice(20, 30))):
            assert np.abs(got[..., rows, cols] - x[..., rows, cols]).max() <= 8
        np.testing.assert_array_equal(arrays[split][1], y)


def test_image_folder_parallel_decode_matches_serial(tmp_path, monkeypatch):
    images = make_images(n_per_class=4, test_per_class=2)
    tar = make_folder_tar(tmp_path / "a.tar.gz", images, "PNG", prefix="")
    classes = zd.dataset_info("cifar10").classes
    serial = image_folder.read_image_folder(tar, classes, 3, (32, 32), workers=1)
    monkeypatch.setattr(image_folder, "_CHUNK", 4)  # force several chunks through the process pool
    parallel = image_folder.read_image_folder(tar, classes, 3, (32, 32), workers=2)
    for split in ("train", "test"):
        np.testing.assert_array_equal(serial[split][0], parallel[split][0])
        np.testing.assert_array_equal(serial[split][0], expected_folder(images, split)[0])


def test_image_folder_grayscale(tmp_path):
    images = make_images()
    tar = make_folder_tar(tmp_path / "g.tar.gz", images, "PNG")
    arrays = image_folder.read_image_folder(tar, None, 1, (32, 32), workers=1)
    assert arrays["train"][0].shape == (6, 1, 32, 32)
    np.testing.assert_array_equal(arrays["train"][1], [0, 0, 1, 1, 2, 2])  # sorted folder names


def test_image_folder_errors(tmp_path):
    images = make_images()
    base = make_folder_dir(tmp_path / "cifar-10-jpeg", images)
    cache = tmp_path / "cache"
    bad = base / "train" / "bird" / "0001.png"
    bad.write_bytes(b"\x89PNG garbage")
    with pytest.raises(ValueError, match="bird/0001.png: cannot decode image"):
        zd.load_arrays("cifar10", root=tmp_path, cache_dir=cache)
    Image.new("RGB", (30, 32)).save(bad)
    with pytest.raises(ValueError, match="bird/0001.png: image is 30x32, expected 32x32"):
        zd.load_arrays("cifar10", root=tmp_path, cache_dir=cache)
    bad.unlink()
    (base / "train" / "unicorn").mkdir()
    Image.new("RGB", (32, 32)).save(base / "train" / "unicorn" / "0.png")
    with pytest.raises(ValueError, match="unknown class folder train/'unicorn'"):
        zd.load_arrays("cifar10", root=tmp_path, cache_dir=cache)


def test_image_folder_truncated_archive(tmp_path):
    base = tmp_path / "cifar-10-jpeg"
    base.mkdir()
    tar = make_folder_tar(base / "cifar-10-jpeg.tar.gz", make_images())
    tar.write_bytes(tar.read_bytes()[:-200])
    with pytest.raises(ValueError, match="cifar-10-jpeg.tar.gz: corrupt or truncated archive"):
        zd.load_arrays("cifar10", root=tmp_path, cache_dir=tmp_path / "cache")


def test_cifar_missing_everything(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py.*cifar-10-jpeg"):
        zd.load_arrays("cifar10", root=tmp_path)


# ---------------------------------------------------------------- cache


def test_decoded_arrays_are_cached(tmp_path, monkeypatch):
    images = make_images()
    base = tmp_path / "cifar-10-jpeg"
    base.mkdir()
    tar = make_folder_tar(base / "cifar-10-jpeg.tar.gz", images)
    cache = tmp_path / "cache"
    first = zd.load_arrays("cifar10", root=tmp_path, cache_dir=cache)
    assert len(list(cache.glob("cifar10-*.npz"))) == 1

    def no_decode(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(image_folder, "_decode_one", no_decode)
    second = zd.load_arrays("cifar10", root=tmp_path, cache_dir=cache)
    assert list(second) == ["train", "test"]
    for split in first:
        np.testing.assert_array_equal(first[split][0], second[split][0])
        np.testing.assert_array_equal(first[split][1], second[split][1])
    # Touching the source invalidates the entry.
    st = tar.stat()
    os.utime(tar, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(ValueError, match="cannot decode image.*decoded again"):
        zd.load_arrays("cifar10", root=tmp_path, cache_dir=cache)


def test_damaged_cache_entry_is_a_miss(tmp_path, monkeypatch):
    make_folder_dir(tmp_path / "cifar-10-jpeg", make_images())
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    zd.load_arrays("cifar10", root=tmp_path)
    (entry,) = (tmp_path / "cache").glob("*.npz")
    entry.write_bytes(b"junk")
    assert len(zd.load_arrays("cifar10", root=tmp_path)["train"][1]) == 6


# ---------------------------------------------------------------- splits and datasets


def test_split_indices_deterministic():
    a_train, a_val = split_indices(100, 10, seed=3)
    b_train, b_val = split_indices(100, 10, seed=3)
    np.testing.assert_array_equal(a_val, b_val)
    assert len(a_train) == 90 and len(a_val) == 10
    assert sorted(np.concatenate([a_train, a_val]).tolist()) == list(range(100))
    assert not np.array_equal(a_val, split_indices(100, 10, seed=4)[1])
    # Pinned value: the split must not change across numpy versions/platforms.
    np.testing.assert_array_equal(split_indices(10, 3, seed=0)[1], np.sort(np.random.default_rng(0).permutation(10)[:3]))
    with pytest.raises(ValueError, match="val_size"):
        split_indices(10, 10, 0)


def test_get_dataset_splits_and_normalisation(tmp_path):
    data = make_mnist(tmp_path, n_train=30)
    train = zd.get_dataset("mnist", "train", root=tmp_path, val_size=8, seed=5)
    val = zd.get_dataset("mnist", "val", root=tmp_path, val_size=8, seed=5)
    test = zd.get_dataset("mnist", "test", root=tmp_path)
    assert (len(train), len(val), len(test)) == (22, 8, 5)
    # train and val partition the official train set.
    merged = torch.cat([train.images, val.images]).flatten(1)
    official = torch.from_numpy(data["train"][0]).flatten(1)
    assert sorted(map(bytes, merged.numpy())) == sorted(map(bytes, official.numpy()))
    x, y = test[2]
    assert x.dtype == torch.float32 and x.shape == (1, 28, 28) and isinstance(y, int) and y == 2
    info = zd.dataset_info("mnist")
    raw = (x * info.std[0] + info.mean[0]) * 255
    np.testing.assert_allclose(raw[0].numpy(), data["test"][0][2], atol=1e-3)
    xb, yb = test.get_batch([0, 2])
    torch.testing.assert_close(xb[1], x)
    assert test.tensors[0].dtype == torch.uint8 and yb.tolist() == [0, 2]
    same = zd.get_dataset("mnist", "val", root=tmp_path, val_size=8, seed=5)
    assert torch.equal(same.images, val.images)
    other = zd.get_dataset("mnist", "val", root=tmp_path, val_size=8, seed=6)
    assert not torch.equal(other.labels, val.labels) or not torch.equal(other.images, val.images)
    assert len(zd.get_dataset("mnist", "train", root=tmp_path, val_size=0)) == 30
    with pytest.raises(ValueError, match="empty"):
        zd.get_dataset("mnist", "val", root=tmp_path, val_size=0)
    with pytest.raises(ValueError, match="split"):
        zd.get_dataset("mnist", "training", root=tmp_path)
    with pytest.raises(ValueError, match="augment"):
        zd.get_dataset("mnist", "val", root=tmp_path, augment=True)


def test_each_dataset_gets_its_own_augmentation(tmp_path):
    # Its own generator: drawing from the shared RNG would change the data every later test generates.
    images = np.random.default_rng(7).integers(0, 256, (30, 28, 28), dtype=np.uint8)
    (tmp_path / "mnist").mkdir()
    write_idx(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", np.arange(30) % 10)
    write_idx(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz", images[:5])
    write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz", np.arange(5))
    plain = zd.get_dataset("mnist", "train", root=tmp_path, val_size=8)
    shifted = zd.get_dataset("mnist", "train", root=tmp_path, val_size=8, augment=True)
    assert (shifted.padding, shifted.flip) == (2, False)  # digits: shifts only, never mirrored
    generator = torch.Generator().manual_seed(0)
    images, _ = shifted.get_batch(range(22), generator=generator)
    expected, _ = plain.get_batch(range(22))
    zero = zd.normalize(torch.zeros(1, 1, 1, dtype=torch.uint8), plain.mean, plain.std)
    generator = torch.Generator().manual_seed(0)
    again = zd.random_crop_flip(plain.images[:22], 2, False, generator=generator)
    assert torch.equal(images, zd.normalize(again, plain.mean, plain.std))
    assert not torch.equal(images, expected)
    assert images.shape == expected.shape and images.min() >= zero.min() - 1e-6
    assert zd.dataset_info("fashion-mnist").augmentation.flip and zd.dataset_info("cifar10").augmentation.padding == 4


def test_train_size_keeps_a_seeded_subset_of_the_train_split(tmp_path):
    make_mnist(tmp_path, n_train=30)
    train = zd.get_dataset("mnist", "train", root=tmp_path, val_size=8, seed=5)
    subset = zd.get_dataset("mnist", "train", root=tmp_path, val_size=8, seed=5, train_size=10)
    assert len(subset) == 10
    rows = {bytes(row) for row in train.images.flatten(1).numpy()}
    assert all(bytes(row) in rows for row in subset.images.flatten(1).numpy())  # drawn from the train split
    again = zd.get_dataset("mnist", "train", root=tmp_path, val_size=8, seed=5, train_size=10)
    assert torch.equal(again.images, subset.images) and torch.equal(again.labels, subset.labels)
    # Only the train split shrinks.
    assert len(zd.get_dataset("mnist", "val", root=tmp_path, val_size=8, seed=5, train_size=10)) == 8
    assert len(zd.get_dataset("mnist", "train", root=tmp_path, val_size=8, train_size=22)) == 22
    for bad in (0, 23):
        with pytest.raises(ValueError, match=f"train_size must be in 1..22 .* got {bad}"):
            zd.get_dataset("mnist", "train", root=tmp_path, val_size=8, train_size=bad)


def test_dataloader_with_augmentation_is_reproducible(tmp_path):
    make_cifar_pickles(tmp_path)

    def run(seed, workers=0):
        ds = zd.get_dataset("cifar10", "train", root=tmp_path, val_size=4, augment=True)
        torch.manual_seed(seed)
        loader = DataLoader(
            ds, batch_size=8, shuffle=True, num_workers=workers, generator=torch.Generator().manual_seed(seed)
        )
        return [(x.clone(), y.clone()) for x, y in loader]

    def same(a, b):
        return all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))

    a, b, c = run(0), run(0), run(1)
    assert [x.shape for x, _ in a] == [(8, 3, 32, 32), (8, 3, 32, 32)]
    assert same(a, b) and not same(a, c)
    # Worker processes are seeded from the loader's generator.
    assert same(run(3, workers=2), run(3, workers=2))


# ---------------------------------------------------------------- augmentation


def _padded_windows(img, pad=4):
    c, h, w = img.shape
    p = torch.nn.functional.pad(img, (pad,) * 4)
    return [p[:, i : i + h, j : j + w] for i in range(2 * pad + 1) for j in range(2 * pad + 1)]


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_random_crop_flip_is_shift_or_mirror(dtype):
    img = torch.arange(3 * 32 * 32).reshape(3, 32, 32).remainder(251).to(dtype) + 1
    windows = _padded_windows(img)
    candidates = windows + [w.flip(-1) for w in windows]
    torch.manual_seed(0)
    outs = [zd.random_crop_flip(img) for _ in range(40)]
    for out in outs:
        assert out.shape == img.shape and out.dtype == dtype
        assert any(torch.equal(out, cand) for cand in candidates)
    assert len({out.sum().item() for out in outs}) > 1 and any(not torch.equal(o, img) for o in outs)
    batch = torch.stack([img, img.flip(-1)])
    out = zd.random_crop_flip(batch, generator=torch.Generator().manual_seed(1))
    assert out.shape == batch.shape
    assert any(torch.equal(out[1], cand) for cand in _padded_windows(batch[1]) + [w.flip(-1) for w in _padded_windows(batch[1])])


def test_random_crop_flip_reproducible():
    batch = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    torch.manual_seed(7)
    a = zd.random_crop_flip(batch)
    torch.manual_seed(7)
    b = zd.random_crop_flip(batch)
    c = zd.random_crop_flip(batch, generator=torch.Generator().manual_seed(7))
    d = zd.random_crop_flip(batch, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and torch.equal(c, d)
    assert not torch.equal(a, zd.random_crop_flip(batch))
    torch.manual_seed(7)
    singles = [zd.random_crop_flip(batch[0]) for _ in range(5)]
    torch.manual_seed(7)
    assert all(torch.equal(s, zd.random_crop_flip(batch[0])) for s in singles)


# ---------------------------------------------------------------- download


def test_download_is_explicit_and_fails_clearly(tmp_path, monkeypatch):
    calls = []

    def offline(url, timeout=None):
        calls.append(url)
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(FileNotFoundError):
        zd.load_arrays("mnist", root=tmp_path)
    assert calls == []  # never downloads implicitly
    with pytest.raises(zd.DownloadError, match="(?s)train-images-idx3-ubyte.gz.*no network.*name resolution"):
        zd.load_arrays("mnist", root=tmp_path, download=True)
    assert calls and all(u.endswith("train-images-idx3-ubyte.gz") for u in calls)
    assert not list((tmp_path / "mnist").glob("*"))  # no partial files left behind


def test_download_success_with_md5(tmp_path, monkeypatch):
    source = tmp_path / "server"
    make_mnist(source)
    files = {p.name: p.read_bytes() for p in (source / "mnist").iterdir()}
    monkeypatch.setitem(mnist.GZ_MD5, "mnist", {k[:-3]: hashlib.md5(v).hexdigest() for k, v in files.items()})
    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout=None: io.BytesIO(files[url.rsplit("/", 1)[1]]))
    root = tmp_path / "root"
    arrays = zd.load_arrays("mnist", root=root, download=True)
    assert len(arrays["train"][1]) == 12 and (root / "mnist" / "train-images-idx3-ubyte.gz").is_file()
    mnist.GZ_MD5["mnist"]["t10k-labels-idx1-ubyte"] = "0" * 32
    (root / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(zd.DownloadError, match="MD5"):
        zd.load_arrays("mnist", root=root, download=True)
