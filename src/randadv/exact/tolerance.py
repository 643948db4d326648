"""How far an exact solve's lower bound may sit below the true minimal distance from the
solvers' float tolerances alone: :func:`solver_tolerance`. An attack's verified distance below
``lower_bound - solver_tolerance(...)`` contradicts the solve; one within it does not."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from randadv.protocol.norms import Norm

__all__ = ["solver_tolerance"]

FEAS_TOL = 1e-6     # HiGHS mip_feasibility_tolerance, SCIP numerics/feastol
REL_GAP = 1e-7      # min_distance's default rel_gap: relative optimality gap asked of the solver
MARGIN = 1e-7       # min_distance's default margin: push of the witness across the boundary


def solver_tolerance(layers: Sequence[tuple[np.ndarray, np.ndarray]], y: np.ndarray, norm: str,
                     distance: float, eps: float = FEAS_TOL) -> float:
    """How far below the true minimal distance the solver's lower bound may sit from float
    rounding alone (first order), given its feasibility tolerance ``eps``:

    * ``(REL_GAP + MARGIN) * distance``: the relative gap asked of the solver and the witness push;
    * objective rows satisfied to ``eps``: ``n eps`` (l1: one row ``e_i >= |delta_i|`` per input),
      ``eps`` (linf), ``eps * distance / 2`` (l2: ``q >= sum (delta_i / r)^2`` with ``r ~
      distance``);
    * every ReLU / output row satisfied to ``eps`` moves f by at most ``eps (1 + sum_l
      ||df/dh_l||_1)``, which the boundary absorbs within ``that / ||grad_x f||_*`` (dual norm).

    Paper:
        Tjeng, Xiao, Tedrake 2019 (the MILP whose rows these are); De Palma, Kiani, Lloyd 2021,
        Section 2 (the distance it bounds).

    Arguments:
        layers: the network's affine layers (:func:`randadv.exact.to_affine_layers`).
        y: the point where the derivatives are taken (the exact witness, or x).
        norm: ``"l1"``, ``"l2"`` or ``"linf"``.
        distance: the solver's distance (0 where it has none).
        eps: the solver's feasibility tolerance.

    Returns:
        The tolerance, a distance in the ``norm``.

    Example:
        >>> import numpy as np
        >>> from randadv.exact.tolerance import solver_tolerance
        >>> layers = [(np.array([[3.0, 4.0]]), np.array([-5.0]))]     # f = 3 x1 + 4 x2 - 5
        >>> round(solver_tolerance(layers, np.zeros(2), "l2", 1.0) * 1e6, 3)
        0.9
    """
    h = np.asarray(y, dtype=np.float64).reshape(-1)
    n = h.size
    masks = []
    for w, b in layers[:-1]:
        z = w @ h + b
        masks.append(z > 0)
        h = np.where(masks[-1], z, 0.0)
    g = np.asarray(layers[-1][0][0], dtype=np.float64)
    spread = float(np.abs(g).sum()) if len(layers) > 1 else 0.0   # df/dh_L
    for i in range(len(layers) - 2, -1, -1):
        g = layers[i][0].T @ (g * masks[i])
        if i > 0:
            spread += float(np.abs(g).sum())
    dual = float(np.linalg.norm(g.ravel(), Norm(norm).dual.p))
    d = distance if math.isfinite(distance) else 0.0
    obj = {"l1": n * eps, "linf": eps, "l2": eps * d / 2}[norm]
    rows = eps * (1.0 + spread) / dual if dual > 0 else 0.0
    return (REL_GAP + MARGIN) * d + obj + rows
