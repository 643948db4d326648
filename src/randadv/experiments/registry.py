"""The experiments randadv can run, by name: every module of this package that defines an
:class:`Experiment` subclass with a ``name`` is registered (no list to edit)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import randadv.experiments as _pkg
from randadv.errors import ConfigError
from randadv.experiments.base import Experiment

_SKIP = {"base", "registry"}


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


def get_experiment(name: str) -> Experiment:
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ConfigError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)} "
                          "(see `randadv list`)") from None
