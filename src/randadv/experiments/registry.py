"""The experiments randadv can run, by name."""

from __future__ import annotations

from randadv.errors import ConfigError
from randadv.experiments.base import Experiment
from randadv.experiments.two_layer_single_step import TwoLayerSingleStep

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (TwoLayerSingleStep(),)}


def get_experiment(name: str) -> Experiment:
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ConfigError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)} "
                          "(see `randadv list`)") from None
