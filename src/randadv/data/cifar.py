"""CIFAR-10 from the official binary (``cifar-10-batches-bin``) or python (``-py``) release."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from randadv.data._io import cached_parse, check_labels, read_bytes
from randadv.data.errors import DataFormatError
from randadv.data.mnist import check_split
from randadv.data.paths import find_file, not_found, search_dirs

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
"""The CIFAR-10 class names, by label 0..9.

Paper:
    De Palma et al. 2021, Section 4.1 (CIFAR-10).

Example:
    >>> from randadv.data import CIFAR10_CLASSES
    >>> len(CIFAR10_CLASSES), CIFAR10_CLASSES[0]
    (10, 'airplane')
"""
CIFAR10_BATCHES = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}
CIFAR10_SUBDIRS = ("cifar-10-batches-bin", "cifar-10-batches-py")
_PIXELS = 3 * 32 * 32
_RECORD = 1 + _PIXELS


@cached_parse
def read_cifar_bin(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse a binary batch (records of 1 label byte + 3072 pixel bytes, R, G, B planes).

    Returns read-only uint8 arrays ``(images (N, 3, 32, 32), labels (N,))``.
    """
    data = read_bytes(path)
    if len(data) == 0 or len(data) % _RECORD:
        raise DataFormatError(f"{path}: size {len(data)} bytes is not a positive multiple of the "
                              f"{_RECORD}-byte CIFAR-10 record (truncated or not a CIFAR-10 batch)")
    rec = np.frombuffer(data, dtype=np.uint8).reshape(-1, _RECORD)
    labels = np.ascontiguousarray(rec[:, 0])
    images = np.ascontiguousarray(rec[:, 1:]).reshape(-1, 3, 32, 32)
    return _checked(path, images, labels)


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds numpy arrays (a batch file must not run code)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed")


@cached_parse
def read_cifar_pickle(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse a python batch: a pickled dict with ``b"data"`` uint8 (N, 3072), ``b"labels"``.

    Returns read-only uint8 arrays ``(images (N, 3, 32, 32), labels (N,))``.
    """
    try:
        d = _SafeUnpickler(io.BytesIO(read_bytes(path)), encoding="bytes").load()
    except Exception as e:  # any unpickling failure means a bad file
        raise DataFormatError(f"{path}: not a CIFAR-10 python batch ({e})") from e
    if not isinstance(d, dict):
        raise DataFormatError(f"{path}: expected a pickled dict, got {type(d).__name__}")
    d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
    if "data" not in d or "labels" not in d:
        raise DataFormatError(f"{path}: pickled dict lacks b'data' or b'labels' "
                              f"(keys: {sorted(map(str, d))})")
    data = np.asarray(d["data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
        raise DataFormatError(f"{path}: b'data' must be uint8 (N, {_PIXELS}), "
                              f"got {data.dtype} {data.shape}")
    labels = np.asarray(d["labels"])
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise DataFormatError(f"{path}: b'labels' must be {data.shape[0]} integers, "
                              f"got {labels.dtype} {labels.shape}")
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) > 9):
        raise DataFormatError(f"{path}: labels must lie in 0..9, got "
                              f"{int(labels.min())}..{int(labels.max())}")
    images = np.ascontiguousarray(data).reshape(-1, 3, 32, 32)
    return _checked(path, images, labels.astype(np.uint8))


def _checked(path: Path, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    check_labels(path, labels)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def cifar10_dirs(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Directories searched for CIFAR-10 batches, in order (see :mod:`randadv.data.paths`).

    Paper:
        none (utility: where the data set is looked for).

    Arguments:
        root: a directory to search first (None: only the defaults).

    Returns:
        The directories, in search order.

    Example:
        >>> from pathlib import Path
        >>> from randadv.data import cifar10_dirs
        >>> cifar10_dirs("/tmp/my-cifar")[0] == Path("/tmp/my-cifar").resolve()
        True
    """
    return search_dirs("cifar10", root, CIFAR10_SUBDIRS)


def find_cifar10_batches(root: str | os.PathLike[str] | None = None,
                         split: str = "train") -> tuple[str, list[Path]]:
    """Locate a complete set of batches for ``split``: ``("bin" | "py", paths)``.

    In each searched directory the binary release is tried before the python one.
    """
    names = CIFAR10_BATCHES[check_split(split)]
    dirs = cifar10_dirs(root)
    for d in dirs:
        for fmt, suffix in (("bin", ".bin"), ("py", "")):
            paths = [find_file((n + suffix, n + suffix + ".gz"), [d]) for n in names]
            if all(p is not None for p in paths):
                return fmt, paths  # type: ignore[return-value]
    missing = " ".join(f"'{n}.bin'" for n in names)
    raise not_found(f"CIFAR-10 {split} batches (binary {missing}, or python "
                    f"{' '.join(repr(n) for n in names)})", dirs)


def load_cifar10(root: str | os.PathLike[str] | None = None,
                 split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Load CIFAR-10: ``images`` float32 (N, 3, 32, 32) in [0, 1], ``labels`` int64 (N,).

    Reads the binary or the python release from ``root``, ``root/cifar-10-batches-bin`` or
    ``root/cifar-10-batches-py``; ``None`` searches ``$RANDADV_DATA_DIR`` (and its ``cifar10``
    subfolder) or the default locations. The train split concatenates ``data_batch_1..5``.

    Paper:
        De Palma et al. 2021, Section 4.1 (CIFAR-10).

    Arguments:
        root: the data directory (None: the default search); split: ``"train"`` or ``"test"``.

    Returns:
        ``(images, labels)`` as above.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import numpy as np
        >>> from randadv.data import load_cifar10
        >>> root = Path(tempfile.mkdtemp())   # a one-image test batch in the binary format
        >>> rec = np.full((1, 3073), 255, dtype=np.uint8); rec[0, 0] = 3
        >>> _ = (root / "test_batch.bin").write_bytes(rec.tobytes())
        >>> images, labels = load_cifar10(root, split="test")
        >>> images.shape, float(images.max()), labels.tolist()
        (torch.Size([1, 3, 32, 32]), 1.0, [3])
    """
    fmt, paths = find_cifar10_batches(root, split)
    reader = read_cifar_bin if fmt == "bin" else read_cifar_pickle
    parts = [reader(p) for p in paths]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    x = torch.from_numpy(images.astype(np.float32))
    x.div_(255.0)
    return x, torch.from_numpy(labels.astype(np.int64))
