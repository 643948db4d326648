"""Exact adversarial distances of small ReLU networks by mixed-integer programming.

:func:`min_distance` computes ``min ||x' - x||_p`` (p = 1, 2, inf) over ``x'`` on the other side
of the decision boundary (De Palma, Kiani, Lloyd 2021) with the MILP of Tjeng, Xiao, Tedrake
(2019): HiGHS for l1/linf, SCIP for l2 (``pip install randadv[scip]``).
:func:`closest_in_region` solves the same problem within one linear region (an LP/QP).
"""

from randadv.exact.distance import ExactDistance, UnverifiedWitnessError, min_distance
from randadv.exact.milp import ScipNotInstalledError
from randadv.exact.region import RegionPoint, closest_in_region
from randadv.protocol.piecewise import AffineNet, to_affine_layers

__all__ = [
    "AffineNet", "ExactDistance", "RegionPoint", "ScipNotInstalledError",
    "UnverifiedWitnessError", "closest_in_region", "min_distance", "to_affine_layers",
]
