"""Errors raised by :mod:`randadv.data`."""

from __future__ import annotations

from randadv.errors import RandadvError


class DataNotFoundError(RandadvError, FileNotFoundError):
    """A data set file is missing from every directory that was searched."""


class DataFormatError(RandadvError, ValueError):
    """A data set file exists but is not in the expected format (bad magic, truncated, ...)."""
