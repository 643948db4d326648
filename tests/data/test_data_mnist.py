"""MNIST loader: real files (found by the default search) and synthetic IDX files."""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import randadv
from randadv.data import (
    ENV_VAR,
    DataFormatError,
    DataNotFoundError,
    cifar10_dirs,
    load_binary_mnist,
    load_mnist,
    mnist_dirs,
)
from randadv.data.mnist import find_mnist_file
from randadv.errors import InvalidInputError, RandadvError

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def write_idx(path, magic, dims, payload: bytes, gz=False):
    raw = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path


def write_fake_mnist(folder, n=5, split="test", gz=False, seed=0):
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labs = rng.integers(0, 10, size=n, dtype=np.uint8)
    pre = "t10k" if split == "test" else "train"
    write_idx(folder / f"{pre}-images-idx3-ubyte", 2051, (n, 28, 28), imgs.tobytes(), gz)
    write_idx(folder / f"{pre}-labels-idx1-ubyte", 2049, (n,), labs.tobytes(), gz)
    return imgs, labs


@pytest.fixture(scope="module")
def real_train():
    try:
        return load_mnist(split="train")
    except DataNotFoundError as e:
        pytest.skip(f"real MNIST not found by the default search: {e}")


@pytest.fixture(scope="module")
def real_test():
    try:
        return load_mnist(split="test")
    except DataNotFoundError as e:
        pytest.skip(f"real MNIST not found by the default search: {e}")


def test_real_train(real_train):
    x, y = real_train
    assert x.shape == (60000, 28, 28) and x.dtype == torch.float32
    assert y.shape == (60000,) and y.dtype == torch.int64
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert torch.bincount(y, minlength=10).tolist() == TRAIN_COUNTS
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert abs(float(x.mean()) - 0.1307) < 5e-5


def test_real_test(real_test):
    x, y = real_test
    assert x.shape == (10000, 28, 28)
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert torch.bincount(y, minlength=10).tolist() == TEST_COUNTS


def test_fresh_tensors_each_call(real_test):
    x, y = real_test
    x2, y2 = load_mnist(split="test")
    assert x2.data_ptr() != x.data_ptr()
    x2[0].fill_(7.0)
    y2[0] = 3
    x3, y3 = load_mnist(split="test")
    assert torch.equal(x3, x) and torch.equal(y3, y)


def test_binary_mnist_0v1_counts(real_train, real_test):
    x, y = load_binary_mnist(split="train")
    assert x.shape == (12665, 784) and x.dtype == torch.float32
    assert int((y == 1).sum()) == 6742 and int((y == -1).sum()) == 5923
    xt, yt = load_binary_mnist(split="test", size=10, normalize=True)
    assert xt.shape == (2115, 100) and set(yt.tolist()) == {-1.0, 1.0}
    assert torch.allclose(xt.norm(dim=1), torch.ones(2115), atol=1e-5)
    # y = -1 for digit 0, +1 for digit 1, order preserved
    _, labels = real_test
    kept = labels[(labels == 0) | (labels == 1)]
    assert torch.equal(yt, torch.where(kept == 1, 1.0, -1.0))


def test_uncompressed_and_torchvision_layout(real_test, tmp_path):
    x, y = real_test
    lab_gz = find_mnist_file("t10k-labels-idx1-ubyte")
    img_gz = find_mnist_file("t10k-images-idx3-ubyte")
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    with gzip.open(lab_gz, "rb") as f:
        (raw / "t10k-labels-idx1-ubyte").write_bytes(f.read())
    shutil.copyfile(img_gz, raw / img_gz.name)
    for root in (tmp_path, raw):
        x2, y2 = load_mnist(root, split="test")
        assert torch.equal(y2, y) and torch.equal(x2, x)


def test_synthetic_roundtrip_gz_and_plain(tmp_path):
    for gz in (False, True):
        folder = tmp_path / f"gz{gz}"
        imgs, labs = write_fake_mnist(folder, n=6, split="train", gz=gz)
        x, y = load_mnist(folder, "train")
        assert torch.equal(y, torch.from_numpy(labs.astype(np.int64)))
        assert torch.equal(x, torch.from_numpy(imgs).float() / 255)


def test_rewritten_file_is_reread(tmp_path):
    write_fake_mnist(tmp_path, n=3, seed=1)
    _, y1 = load_mnist(tmp_path, "test")
    _, labs = write_fake_mnist(tmp_path, n=4, seed=2)
    _, y2 = load_mnist(tmp_path, "test")
    assert y2.tolist() == labs.tolist() and len(y1) == 3


def test_wrong_magic(tmp_path):
    write_fake_mnist(tmp_path, n=2)
    bad = write_idx(tmp_path / "t10k-images-idx3-ubyte", 2049, (2, 28, 28), bytes(2 * 784))
    with pytest.raises(DataFormatError) as ei:
        load_mnist(tmp_path, "test")
    msg = str(ei.value)
    assert str(bad.resolve()) in msg and "2049" in msg and "2051" in msg


def test_truncated_file(tmp_path):
    write_fake_mnist(tmp_path, n=2)
    bad = write_idx(tmp_path / "t10k-labels-idx1-ubyte", 2049, (5,), bytes(3))
    with pytest.raises(DataFormatError, match="truncated") as ei:
        load_mnist(tmp_path, "test")
    assert "t10k-labels-idx1-ubyte" in str(ei.value) and str(bad.resolve()) in str(ei.value)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00")
    with pytest.raises(DataFormatError, match="truncated"):
        load_mnist(tmp_path, "test")


def test_truncated_gzip(tmp_path):
    write_fake_mnist(tmp_path, n=50, gz=True)
    p = tmp_path / "t10k-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(DataFormatError, match="gzip") as ei:
        load_mnist(tmp_path, "test")
    assert "t10k-images-idx3-ubyte.gz" in str(ei.value)


def test_count_mismatch(tmp_path):
    write_fake_mnist(tmp_path, n=3)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", 2049, (2,), bytes(2))
    with pytest.raises(DataFormatError, match="3 images but .* 2 labels"):
        load_mnist(tmp_path, "test")


def test_missing_dir(tmp_path):
    root = tmp_path / "nowhere"
    with pytest.raises(DataNotFoundError) as ei:
        load_mnist(root, "train")
    err = ei.value
    assert isinstance(err, FileNotFoundError) and isinstance(err, RandadvError)
    msg = str(err)
    assert "train-images-idx3-ubyte" in msg
    for d in mnist_dirs(root):
        assert str(d) in msg
    assert str(root / "MNIST" / "raw") in msg
    assert "--data-dir" in msg and "RANDADV_DATA_DIR" in msg


def test_bad_split(tmp_path):
    with pytest.raises(InvalidInputError, match="split"):
        load_mnist(tmp_path, "valid")


# --- search order: explicit root, RANDADV_DATA_DIR, default locations ---


def test_env_var_subfolder_and_itself(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    imgs, labs = write_fake_mnist(tmp_path / "mnist", n=4, seed=3)
    x, y = load_mnist(split="test")
    assert y.tolist() == labs.tolist() and torch.equal(x, torch.from_numpy(imgs).float() / 255)

    other = tmp_path / "flat"
    monkeypatch.setenv(ENV_VAR, str(other))
    _, labs2 = write_fake_mnist(other, n=2, seed=4, gz=True)
    assert load_mnist(split="test")[1].tolist() == labs2.tolist()


def test_env_var_missing_names_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(DataNotFoundError) as ei:
        load_mnist(split="test")
    msg = str(ei.value)
    assert "t10k-images-idx3-ubyte" in msg
    for d in (tmp_path / "mnist", tmp_path, tmp_path / "MNIST" / "raw"):
        assert f"- {d}\n" in msg
    assert ENV_VAR in msg and "--data-dir" in msg


def test_default_search_list(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    dirs = mnist_dirs()
    home = Path.home() / ".randadv" / "data"
    assert dirs[-2:] == [home / "mnist", home / "mnist" / "MNIST" / "raw"]
    pkg = Path(randadv.__file__).resolve().parent
    for anc in list(pkg.parents)[:3]:
        assert anc / "shared" / "data" / "mnist" in dirs
    assert home / "cifar10" in cifar10_dirs()
    assert all("mnist" not in str(d) for d in cifar10_dirs())
