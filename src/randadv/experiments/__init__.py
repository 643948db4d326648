"""One module per experiment: its grid, profiles, unit of work, figures and claims."""

from randadv.experiments.base import Claim, Experiment, UnitContext
from randadv.experiments.registry import EXPERIMENTS, get_experiment

__all__ = ["EXPERIMENTS", "Claim", "Experiment", "UnitContext", "get_experiment"]
