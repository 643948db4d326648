"""File reading shared by the loaders: gzip detection and an in-memory cache."""

from __future__ import annotations

import functools
import gzip
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from randadv.data.errors import DataFormatError

_GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: Path) -> bytes:
    """Raw contents of ``path``, gunzipped when it starts with the gzip magic bytes."""
    raw = path.read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataFormatError(f"{path}: corrupt or truncated gzip file ({e})") from e


def cached_parse(parse: Callable[[Path], Any]) -> Callable[[Path], Any]:
    """Memoize ``parse(path)`` on (resolved path, mtime, size): a changed file is re-read."""

    @functools.lru_cache(maxsize=32)
    def _cached(resolved: str, mtime_ns: int, size: int) -> Any:
        return parse(Path(resolved))

    @functools.wraps(parse)  # name, module and docstring of the parser (help(), the doc test)
    def wrapper(path: Path) -> Any:
        p = Path(path).resolve()
        st = p.stat()
        return _cached(str(p), st.st_mtime_ns, st.st_size)

    wrapper.cache_clear = _cached.cache_clear  # type: ignore[attr-defined]
    return wrapper


def check_labels(path: Path, labels: np.ndarray) -> None:
    """Raise DataFormatError unless every label of the file ``path`` is a digit class 0..9."""
    if labels.size and int(labels.max()) > 9:
        raise DataFormatError(f"{path}: label {int(labels.max())} out of range 0..9")
