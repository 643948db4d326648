"""The experiments randadv can run, by name: every module of this package that defines an
:class:`Experiment` subclass with a ``name`` is registered (no list to edit)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import randadv.experiments as _pkg
from randadv.errors import ConfigError
from randadv.framework import Experiment

_SKIP = {"registry"}


def _discover() -> dict[str, Experiment]:
    found: dict[str, Experiment] = {}
    for info in sorted(pkgutil.iter_modules(_pkg.__path__), key=lambda m: m.name):
        if info.name in _SKIP or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_pkg.__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Experiment) and cls is not Experiment and cls.name \
                    and cls.__module__ == module.__name__:
                if cls.name in found:
                    raise RuntimeError(f"two experiments named {cls.name!r}")
                found[cls.name] = cls()
    return found


EXPERIMENTS: dict[str, Experiment] = _discover()
"""Every experiment by its CLI name, found by importing the modules of
:mod:`randadv.experiments`.

Paper:
    none (utility: the registry behind ``randadv list``; each experiment cites its figures).

Example:
    >>> from randadv.experiments import EXPERIMENTS
    >>> "two-layer-single-step" in EXPERIMENTS, EXPERIMENTS["min-pert"].name
    (True, 'min-pert')
"""


def get_experiment(name: str) -> Experiment:
    """The registered experiment ``name`` (the names of ``randadv list``).

    Paper:
        none (utility: the registry behind ``randadv list``).

    Arguments:
        name: the CLI name.

    Returns:
        The :class:`Experiment`; :class:`randadv.errors.ConfigError` naming the known ones
        otherwise.

    Example:
        >>> from randadv.experiments import get_experiment
        >>> get_experiment("min-pert").name
        'min-pert'
    """
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ConfigError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)} "
                          "(see `randadv list`)") from None
