"""A unit's relative cost with a part several units share (a cached model trained once).

:meth:`Experiment.unit_cost` returns a plain float, or a :class:`UnitCost` when units of a run
share work through a cache: lazy-sgd trains one model for every C0 of a (preprocessing, d, m,
seed) and its later units load it. The dry run's cost model (``runner/cost.py``) then charges
the shared part once per key, to the first pending unit of the key in run order (none where
the run folder's cache already holds it, :meth:`Experiment.shared_work_cached`). The
calibration times such a cached unit on that cache, at its own cost; any other unit it times
alone, without a cache, at both parts.
"""

from __future__ import annotations

from collections.abc import Hashable


class UnitCost(float):
    """A unit's relative cost (a float: ``own + shared``) and the part of it paid once per key.

    Paper:
        none (utility: the dry run's cost of units that share a cached trained model).

    Arguments:
        own, shared, key: as the attributes.

    Attributes:
        own: the unit's own cost (always paid).
        shared: the cost paid once per ``key`` (0 where nothing is shared).
        key: what the units sharing the work have in common (None: nothing shared).

    Example:
        >>> from randadv.framework import UnitCost
        >>> c = UnitCost(2.0, shared=30.0, key=("model", 0))
        >>> float(c), c.own, c.shared
        (32.0, 2.0, 30.0)
    """

    own: float
    shared: float
    key: Hashable | None

    def __new__(cls, own: float, shared: float = 0.0, key: Hashable | None = None
                ) -> UnitCost:
        self = super().__new__(cls, float(own) + float(shared))
        self.own, self.shared, self.key = float(own), float(shared), key
        return self


def cost_parts(cost: float) -> tuple[float, float, Hashable | None]:
    """``(own, shared, key)`` of a ``unit_cost`` value; a plain float shares nothing."""
    if isinstance(cost, UnitCost) and cost.key is not None:
        return cost.own, cost.shared, cost.key
    return float(cost), 0.0, None
