"""Typed exceptions raised by randadv. All derive from :class:`RandadvError`."""

from __future__ import annotations


class RandadvError(Exception):
    """Base class of every error randadv raises on purpose."""


class InvalidInputError(RandadvError, ValueError):
    """A tensor or argument given to the library is malformed (shape, dtype, NaN/inf, range)."""


class ModelOutputError(RandadvError, ValueError):
    """A model returned something other than one finite scalar per input."""


class ConfigError(RandadvError, ValueError):
    """An experiment name, profile, ``--set`` key or value is unknown or malformed."""


class StoreError(RandadvError):
    """The results store cannot be used (foreign or corrupted file, locked, other config)."""
