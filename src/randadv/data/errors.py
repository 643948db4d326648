"""Errors raised by :mod:`randadv.data`."""

from __future__ import annotations

from randadv.errors import RandadvError


class DataNotFoundError(RandadvError, FileNotFoundError):
    """A data set file is missing from every directory that was searched.

    Paper:
        none (utility: the data loaders' errors).

    Arguments:
        message: which file and the directories searched.

    Example:
        >>> import tempfile
        >>> from randadv.data import DataNotFoundError, load_cifar10
        >>> try:
        ...     load_cifar10(tempfile.mkdtemp(), split="test")
        ... except DataNotFoundError:
        ...     print("not found")
        not found
    """


class DataFormatError(RandadvError, ValueError):
    """A data set file exists but is not in the expected format (bad magic, truncated, ...).

    Paper:
        none (utility: the data loaders' errors).

    Arguments:
        message: what is wrong with which file.

    Example:
        >>> import struct, tempfile
        >>> from pathlib import Path
        >>> from randadv.data import DataFormatError, read_idx_labels
        >>> path = Path(tempfile.mkdtemp()) / "bad-idx1-ubyte"
        >>> _ = path.write_bytes(struct.pack(">ii", 1234, 0))
        >>> try:
        ...     read_idx_labels(path)
        ... except DataFormatError:
        ...     print("refused")
        refused
    """
