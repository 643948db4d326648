"""MNIST from the four standard IDX files (gzipped or not)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from randadv.data._io import cached_parse, check_labels, read_bytes
from randadv.data.errors import DataFormatError
from randadv.data.paths import find_file, not_found, search_dirs
from randadv.errors import InvalidInputError

IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_SUBDIRS = ("MNIST/raw",)  # torchvision layout


def _header(path: Path, data: bytes, magic: int, n_dims: int) -> tuple[int, ...]:
    size = 4 * (1 + n_dims)
    if len(data) < size:
        raise DataFormatError(f"{path}: truncated IDX file ({len(data)} bytes, "
                              f"header alone needs {size})")
    fields = np.frombuffer(data, dtype=">u4", count=1 + n_dims)
    if int(fields[0]) != magic:
        raise DataFormatError(f"{path}: bad IDX magic number {int(fields[0])}, expected {magic} "
                              f"({'images' if magic == IDX_IMAGES_MAGIC else 'labels'} file)")
    return tuple(int(v) for v in fields[1:])


def _payload(path: Path, data: bytes, offset: int, shape: tuple[int, ...]) -> np.ndarray:
    need = int(np.prod(shape))
    have = len(data) - offset
    if have != need:
        kind = "truncated" if have < need else "oversized"
        raise DataFormatError(f"{path}: {kind} IDX file: header says {shape} = {need} data bytes, "
                              f"file holds {have}")
    arr = np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)
    arr.setflags(write=False)
    return arr


def _read_idx(path: Path, magic: int, n_dims: int) -> np.ndarray:
    """The array of the IDX file ``path``: a header (magic, ``n_dims`` sizes), then uint8 data."""
    data = read_bytes(path)
    return _payload(path, data, 4 * (1 + n_dims), _header(path, data, magic, n_dims))


@cached_parse
def read_idx_images(path: Path) -> np.ndarray:
    """Parse an IDX3 image file (magic 2051) into a read-only uint8 array (N, rows, cols).

    Paper:
        none (utility: the MNIST file format; the data of Lazy training 2022, Section 5).

    Arguments:
        path: the file (gzipped or not).

    Returns:
        A read-only uint8 array (N, rows, cols).

    Example:
        >>> import struct, tempfile
        >>> from pathlib import Path
        >>> from randadv.data import read_idx_images
        >>> path = Path(tempfile.mkdtemp()) / "images-idx3-ubyte"
        >>> _ = path.write_bytes(struct.pack(">iiii", 2051, 2, 2, 3) + bytes(range(12)))
        >>> a = read_idx_images(path)
        >>> a.shape, a[1].tolist()
        ((2, 2, 3), [[6, 7, 8], [9, 10, 11]])
    """
    return _read_idx(path, IDX_IMAGES_MAGIC, 3)


@cached_parse
def read_idx_labels(path: Path) -> np.ndarray:
    """Parse an IDX1 label file (magic 2049) into a read-only uint8 array (N,).

    Paper:
        none (utility: the MNIST file format; the data of Lazy training 2022, Section 5).

    Arguments:
        path: the file (gzipped or not).

    Returns:
        A read-only uint8 array (N,).

    Example:
        >>> import struct, tempfile
        >>> from pathlib import Path
        >>> from randadv.data import read_idx_labels
        >>> path = Path(tempfile.mkdtemp()) / "labels-idx1-ubyte"
        >>> _ = path.write_bytes(struct.pack(">ii", 2049, 3) + bytes([7, 0, 1]))
        >>> read_idx_labels(path).tolist()
        [7, 0, 1]
    """
    return _read_idx(path, IDX_LABELS_MAGIC, 1)


def check_split(split: str) -> str:
    """Return ``split`` if it is ``"train"`` or ``"test"``, else raise InvalidInputError."""
    if split not in ("train", "test"):
        raise InvalidInputError(f"split must be 'train' or 'test', got {split!r}")
    return split


def mnist_dirs(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Directories searched for the MNIST files, in order (see :mod:`randadv.data.paths`).

    Paper:
        none (utility: where the data set is looked for).

    Arguments:
        root: a directory to search first (None: only the defaults).

    Returns:
        The directories, in search order.

    Example:
        >>> from pathlib import Path
        >>> from randadv.data import mnist_dirs
        >>> mnist_dirs("/tmp/my-mnist")[0] == Path("/tmp/my-mnist").resolve()
        True
    """
    return search_dirs("mnist", root, MNIST_SUBDIRS)


def find_mnist_file(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Path of MNIST file ``name`` (plain or ``.gz``); raise DataNotFoundError if absent."""
    dirs = mnist_dirs(root)
    path = find_file((name, name + ".gz"), dirs)
    if path is None:
        raise not_found(f"MNIST file '{name}' (or '{name}.gz')", dirs)
    return path


def load_mnist(root: str | os.PathLike[str] | None = None,
               split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Load MNIST: ``images`` float32 (N, 28, 28) in [0, 1] and ``labels`` int64 (N,).

    ``root`` is a directory holding the IDX files (gzipped or not), directly or under
    ``MNIST/raw/``; ``None`` searches ``$RANDADV_DATA_DIR`` or the default locations.
    Parsed files are cached in memory; each call returns fresh tensors.

    Paper:
        Lazy training 2022 ("Adversarial Robustness is at Odds with Lazy Training", NeurIPS
        2022), Section 5 (MNIST).

    Arguments:
        root: the data directory (None: the default search); split: ``"train"`` or ``"test"``.

    Returns:
        ``(images, labels)`` as above.

    Example:
        >>> from randadv.data import load_mnist
        >>> images, labels = load_mnist(split="test")
        >>> images.shape, labels.dtype, float(images.max()) <= 1.0
        (torch.Size([10000, 28, 28]), torch.int64, True)
    """
    img_name, lab_name = MNIST_FILES[check_split(split)]
    img_path = find_mnist_file(img_name, root)
    lab_path = find_mnist_file(lab_name, root)
    images = read_idx_images(img_path)
    labels = read_idx_labels(lab_path)
    if images.shape[0] != labels.shape[0]:
        raise DataFormatError(f"MNIST {split}: {img_path} holds {images.shape[0]} images but "
                              f"{lab_path} holds {labels.shape[0]} labels")
    check_labels(lab_path, labels)
    x = torch.from_numpy(images.astype(np.float32))
    x.div_(255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y
