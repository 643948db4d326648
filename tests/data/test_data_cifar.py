"""CIFAR-10 loader on small files written in the exact binary and python-pickle formats."""

from __future__ import annotations

import gzip
import os
import pickle

import numpy as np
import pytest
import torch

from randadv.data import (
    ENV_VAR,
    BinaryTask,
    DataFormatError,
    DataNotFoundError,
    cifar10_dirs,
    load_binary_cifar10,
    load_cifar10,
)

N = 7  # records per batch
TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


def make_batches(names, seed=0):
    rng = np.random.default_rng(seed)
    return {n: (rng.integers(0, 256, size=(N, 3072), dtype=np.uint8),
                rng.integers(0, 10, size=N).tolist()) for n in names}


def write_bin(folder, batches):
    folder.mkdir(parents=True, exist_ok=True)
    for name, (data, labels) in batches.items():
        recs = b"".join(bytes([lab]) + row.tobytes() for row, lab in zip(data, labels, strict=True))
        (folder / f"{name}.bin").write_bytes(recs)


def write_py(folder, batches, protocol=2):
    folder.mkdir(parents=True, exist_ok=True)
    for name, (data, labels) in batches.items():
        d = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
             b"filenames": [f"img{i}.png".encode() for i in range(N)]}
        with open(folder / name, "wb") as f:
            pickle.dump(d, f, protocol=protocol)


def expected(batches, names):
    data = np.concatenate([batches[n][0] for n in names])
    labels = sum((batches[n][1] for n in names), [])
    return torch.from_numpy(data).float().div(255).reshape(-1, 3, 32, 32), torch.tensor(labels)


@pytest.mark.parametrize("writer,sub", [(write_bin, "cifar-10-batches-bin"),
                                        (write_py, "cifar-10-batches-py")])
def test_roundtrip(tmp_path, writer, sub):
    batches = make_batches(TRAIN + ["test_batch"])
    writer(tmp_path / sub, batches)
    for root in (tmp_path, tmp_path / sub):
        x, y = load_cifar10(root, "train")
        ex, ey = expected(batches, TRAIN)
        assert x.shape == (5 * N, 3, 32, 32) and x.dtype == torch.float32
        assert y.dtype == torch.int64 and torch.equal(y, ey) and torch.equal(x, ex)
        xt, yt = load_cifar10(root, "test")
        assert torch.equal(xt, expected(batches, ["test_batch"])[0]) and yt.tolist() == \
            batches["test_batch"][1]


def test_binary_record_layout(tmp_path):
    # record = label byte, then the R, G, B planes, each 32 x 32 row-major
    rec = bytearray(3073)
    rec[0] = 6
    rec[1 + 0 * 1024 + 0 * 32 + 1] = 255  # R, row 0, col 1
    rec[1 + 1 * 1024 + 2 * 32 + 0] = 51  # G, row 2, col 0
    rec[1 + 2 * 1024 + 31 * 32 + 31] = 102  # B, row 31, col 31
    (tmp_path / "test_batch.bin").write_bytes(bytes(rec))
    x, y = load_cifar10(tmp_path, "test")
    assert y.tolist() == [6] and x.shape == (1, 3, 32, 32)
    assert x[0, 0, 0, 1] == 1.0 and x[0, 1, 2, 0] == 0.2 and x[0, 2, 31, 31] == 0.4
    assert int((x != 0).sum()) == 3


def test_binary_preferred_and_gz(tmp_path):
    b1, b2 = make_batches(["test_batch"], 1), make_batches(["test_batch"], 2)
    write_bin(tmp_path, b1)
    write_py(tmp_path, b2)
    assert load_cifar10(tmp_path, "test")[1].tolist() == b1["test_batch"][1]
    os.remove(tmp_path / "test_batch.bin")
    assert load_cifar10(tmp_path, "test")[1].tolist() == b2["test_batch"][1]
    write_py(tmp_path, b1, protocol=pickle.HIGHEST_PROTOCOL)
    assert load_cifar10(tmp_path, "test")[1].tolist() == b1["test_batch"][1]
    p = tmp_path / "test_batch"
    (tmp_path / "test_batch.gz").write_bytes(gzip.compress(p.read_bytes()))
    p.unlink()
    x, y = load_cifar10(tmp_path, "test")
    assert y.tolist() == b1["test_batch"][1] and torch.equal(x, expected(b1, ["test_batch"])[0])


def test_env_var(tmp_path, monkeypatch):
    batches = make_batches(["test_batch"], 3)
    write_py(tmp_path / "cifar10" / "cifar-10-batches-py", batches)
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert load_cifar10(split="test")[1].tolist() == batches["test_batch"][1]


def test_missing(tmp_path):
    with pytest.raises(DataNotFoundError) as ei:
        load_cifar10(tmp_path, "test")
    msg = str(ei.value)
    assert "test_batch.bin" in msg and "'test_batch'" in msg
    for d in cifar10_dirs(tmp_path):
        assert str(d) in msg
    assert "--data-dir" in msg and ENV_VAR in msg
    # an incomplete train set is not found either
    write_bin(tmp_path, make_batches(TRAIN[:4]))
    with pytest.raises(DataNotFoundError, match="data_batch_5"):
        load_cifar10(tmp_path, "train")


def test_truncated_binary(tmp_path):
    (tmp_path / "test_batch.bin").write_bytes(bytes(3073 * 2 - 5))
    with pytest.raises(DataFormatError, match="3073-byte") as ei:
        load_cifar10(tmp_path, "test")
    assert "test_batch.bin" in str(ei.value)


def test_bad_label(tmp_path):
    (tmp_path / "test_batch.bin").write_bytes(bytes([12]) + bytes(3072))
    with pytest.raises(DataFormatError, match="out of range"):
        load_cifar10(tmp_path, "test")


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def test_pickle_refuses_code(tmp_path):
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": _Evil(), b"labels": [0]}, f)
    with pytest.raises(DataFormatError, match="not allowed"):
        load_cifar10(tmp_path, "test")


def test_pickle_bad_shape(tmp_path):
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(DataFormatError, match="3072"):
        load_cifar10(tmp_path, "test")


def test_binary_cifar10_parity(tmp_path):
    batches = make_batches(["test_batch"], 4)
    write_bin(tmp_path, batches)
    x, y = load_binary_cifar10(tmp_path, "test", size=16)
    labels = torch.tensor(batches["test_batch"][1])
    assert x.shape == (N, 3 * 256) and torch.equal(y, torch.where(labels % 2 == 1, 1.0, -1.0))
    x2, y2 = load_binary_cifar10(tmp_path, "test", task=BinaryTask.groups([0, 1, 2], [3, 4, 5]))
    assert x2.shape[1] == 3072 and len(y2) == int((labels <= 5).sum())
