"""How an experiment is declared, below the experiments themselves: :class:`Experiment` (a grid
per profile, a unit of work, its records, figures and claims) and :class:`UnitContext`
(experiment.py); :class:`Param`, the ``--set`` parsing and the store's columns (params.py);
:class:`Claim` and the kinds of claim that decide a verdict from the numbers (claims.py);
:class:`UnitCost`, a unit cost with a part units share through a cache (unit_cost.py)."""

from randadv.framework.claims import ANY_SIZE, Claim
from randadv.framework.experiment import Experiment, UnitContext, unit_key
from randadv.framework.params import Param, require
from randadv.framework.unit_cost import UnitCost

__all__ = ["ANY_SIZE", "Claim", "Experiment", "Param", "UnitContext", "UnitCost", "require",
           "unit_key"]
