"""One module per experiment: its grid, profiles, unit of work, figures and claims."""

from randadv.experiments.registry import EXPERIMENTS, get_experiment
from randadv.framework import Claim, Experiment, UnitContext

__all__ = ["EXPERIMENTS", "Claim", "Experiment", "UnitContext", "get_experiment"]
