"""The closest point of the decision boundary within one linear region of a ReLU network.

On the linear region ``R`` of a point (its activation pattern fixed), ``f(x) = c . x + c0`` and
``R`` is the polyhedron of sign constraints on all hidden pre-activations (affine in ``x`` there).
``min ||x - x0||_p`` over ``R ∩ {f = level} ∩ box`` is an LP for l1/linf and a QP for l2 (first
tried in closed form: the projection of ``x0`` onto the hyperplane, exact if it lies in ``R``).
This is the in-region step of minimum-norm attacks (e.g. Croce & Hein 2019, FAB; Jordan et al.
2019, GeoCert) and the exact refinement used by :func:`randadv.exact.min_distance`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import sparse
from scipy.optimize import linprog
from torch import nn

from randadv.errors import InvalidInputError
from randadv.protocol.norms import check_norm, pnorm
from randadv.protocol.piecewise import AffineNet, read_piecewise_linear


@dataclass
class RegionPoint:
    """Result of :func:`closest_in_region`.

    Attributes:
        point: the closest point (same dtype/shape as ``x_origin``), None if infeasible.
        distance: ``||point - x_origin||_p`` (inf if infeasible).
        exact: True when the region's LP/QP was solved to optimality (or the closed-form
            projection lies in the region).
        status: ``"optimal"``, ``"infeasible"`` or ``"approximate"`` (l2 without pyscipopt).
        method: ``"projection"``, ``"lp"``, ``"scip"`` or ``"slsqp"``.

    Paper:
        De Palma et al. 2021, Section 4 (the closest adversarial example, here within one
        linear region).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from randadv.exact import closest_in_region
        >>> lin = nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))
        >>> with torch.no_grad():
        ...     _ = lin[0].weight.copy_(torch.tensor([[1.0, 0.0]])); _ = lin[0].bias.fill_(-1.0)
        >>> r = closest_in_region(lin, torch.zeros(1, 2), torch.zeros(1, 2), "l2")
        >>> r.distance, r.exact, r.status
        (1.0, True, 'optimal')
    """

    point: torch.Tensor | None
    distance: float
    exact: bool
    status: str
    method: str


def region_constraints(net: AffineNet, x_point: np.ndarray | None = None,
                       pattern: list[np.ndarray] | None = None
                       ) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """``(c, c0, G, g)``: on the region of ``x_point`` (or of ``pattern``), ``f = c . x + c0``
    and the region is ``G x <= g`` (active neurons ``z >= 0``, inactive ``z <= 0``)."""
    pat = net.pattern(x_point) if pattern is None else pattern
    c, c0, maps = net.region_map(x_point, pat)
    gs, hs = [], []
    for (a, e), p in zip(maps, pat, strict=True):
        sgn = np.where(p, -1.0, 1.0)  # active: -z <= 0; inactive: z <= 0
        gs.append(sgn[:, None] * a)
        hs.append(-sgn * e)
    if gs:
        return c, c0, np.vstack(gs), np.concatenate(hs)
    return c, c0, np.zeros((0, net.d)), np.zeros(0)


def _lp_closest(c: np.ndarray, f_lo: float, f_hi: float, g_mat: np.ndarray, g_vec: np.ndarray,
                x0: np.ndarray, norm: str, lo: np.ndarray, hi: np.ndarray) -> np.ndarray | None:
    """l1/linf: min ||x - x0|| over ``G x <= g``, ``f_lo <= c . x <= f_hi``, ``lo <= x <= hi``."""
    d = len(x0)
    n_aux = d if norm == "l1" else 1
    obj = np.concatenate([np.zeros(d), np.ones(n_aux)])
    eye = sparse.identity(d, format="csr")
    aux = eye if norm == "l1" else sparse.csr_matrix(np.ones((d, 1)))
    # x - aux <= x0 ; -x - aux <= -x0
    a_abs = sparse.vstack([sparse.hstack([eye, -aux]), sparse.hstack([-eye, -aux])])
    a_reg = sparse.hstack([sparse.csr_matrix(g_mat), sparse.csr_matrix((len(g_vec), n_aux))])
    rows, rhs = [a_abs, a_reg], [x0, -x0, g_vec]
    c_row = sparse.csr_matrix(np.concatenate([c, np.zeros(n_aux)])[None, :])
    a_eq = b_eq = None
    if f_lo == f_hi:
        a_eq, b_eq = c_row, [f_lo]
    else:
        if math.isfinite(f_hi):
            rows.append(c_row)
            rhs.append([f_hi])
        if math.isfinite(f_lo):
            rows.append(-c_row)
            rhs.append([-f_lo])
    a_ub = sparse.vstack(rows).tocsr()
    b_ub = np.concatenate([np.asarray(r, float) for r in rhs])
    bounds = [(lo[i], hi[i]) for i in range(d)] + [(0, None)] * n_aux
    res = linprog(obj, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds,
                  method="highs", options={"primal_feasibility_tolerance": 1e-10,
                                           "dual_feasibility_tolerance": 1e-10})
    if res.status != 0:
        return None
    return np.clip(res.x[:d], lo, hi)


def _qp_closest_scip(c: np.ndarray, f_lo: float, f_hi: float, g_mat: np.ndarray,
                     g_vec: np.ndarray, x0: np.ndarray, lo: np.ndarray, hi: np.ndarray
                     ) -> np.ndarray | None:
    from pyscipopt import Model, quicksum

    m = Model()
    m.hideOutput()
    d = len(x0)
    scale = max(1.0, float(np.abs(x0).max(initial=0.0)))
    xs = [m.addVar(lb=float(lo[i]) if math.isfinite(lo[i]) else None,
                   ub=float(hi[i]) if math.isfinite(hi[i]) else None) for i in range(d)]
    q = m.addVar(lb=0.0)
    for k in range(g_mat.shape[0]):
        nz = np.nonzero(g_mat[k])[0]
        m.addCons(quicksum(float(g_mat[k, i]) * xs[i] for i in nz) <= float(g_vec[k]))
    cx = quicksum(float(c[i]) * xs[i] for i in range(d))
    if f_lo == f_hi:
        m.addCons(cx == float(f_lo))
    else:
        if math.isfinite(f_hi):
            m.addCons(cx <= float(f_hi))
        if math.isfinite(f_lo):
            m.addCons(cx >= float(f_lo))
    m.addCons(quicksum((xs[i] - float(x0[i])) * (xs[i] - float(x0[i])) for i in range(d))
              <= q * scale)
    m.setObjective(q, "minimize")
    m.setParam("limits/gap", 1e-9)
    m.optimize()
    if m.getNSols() == 0 or m.getStatus() not in ("optimal", "gaplimit"):
        return None
    sol = m.getBestSol()
    return np.clip(np.array([sol[v] for v in xs]), lo, hi)


def _qp_closest_slsqp(c, f_lo, f_hi, g_mat, g_vec, x0, lo, hi, start) -> np.ndarray | None:
    from scipy.optimize import minimize

    cons = []
    if f_lo == f_hi:
        cons.append({"type": "eq", "fun": lambda x: c @ x - f_lo, "jac": lambda x: c})
    else:
        if math.isfinite(f_hi):
            cons.append({"type": "ineq", "fun": lambda x: f_hi - c @ x, "jac": lambda x: -c})
        if math.isfinite(f_lo):
            cons.append({"type": "ineq", "fun": lambda x: c @ x - f_lo, "jac": lambda x: c})
    if len(g_vec):
        cons.append({"type": "ineq", "fun": lambda x: g_vec - g_mat @ x, "jac": lambda x: -g_mat})
    res = minimize(lambda x: 0.5 * np.sum((x - x0) ** 2), start, jac=lambda x: x - x0,
                   constraints=cons, bounds=list(zip(lo, hi, strict=True)), method="SLSQP",
                   options={"ftol": 1e-14, "maxiter": 500})
    return np.clip(res.x, lo, hi) if res.success else None


def closest_in_pattern(net: AffineNet, pattern: list[np.ndarray], x0: np.ndarray, norm: str,
                       lo: np.ndarray, hi: np.ndarray, f_lo: float, f_hi: float,
                       slack: float = 0.0, allow_qp: bool = True
                       ) -> tuple[np.ndarray | None, bool, str]:
    """min ``||x - x0||_p`` over the region of ``pattern`` shrunk by ``slack`` (active
    ``z >= slack``, inactive ``z <= -slack``), ``f_lo <= f(x) <= f_hi`` and the box.
    Returns ``(point or None, exact, method)``."""
    c, c0, g_mat, g_vec = region_constraints(net, x0, pattern)
    if slack > 0:
        g_vec = g_vec - slack
    lo_c, hi_c = f_lo - c0, f_hi - c0
    if not np.any(c):  # f constant on the region
        if not (lo_c <= 0.0 <= hi_c):
            return None, True, "lp"
        c, lo_c, hi_c = np.zeros_like(c), -np.inf, np.inf
    if norm != "l2":
        p = _lp_closest(c, lo_c, hi_c, g_mat, g_vec, x0, norm, lo, hi)
        return _onto_level(p, c, lo_c, hi_c, norm, lo, hi), True, "lp"
    cx0 = c @ x0
    target = min(max(cx0, lo_c), hi_c)
    proj = x0 - (cx0 - target) / (c @ c) * c if np.any(c) else x0.copy()
    tol = 1e-12 * (1.0 + np.abs(g_mat) @ np.abs(proj) + np.abs(g_vec))
    if np.all(g_mat @ proj <= g_vec + tol) and np.all(proj >= lo) and np.all(proj <= hi):
        return proj, True, "projection"
    if not allow_qp:
        return None, False, "projection"
    try:
        import pyscipopt  # noqa: F401
    except ImportError:
        p = _qp_closest_slsqp(c, lo_c, hi_c, g_mat, g_vec, x0, lo, hi, proj)
        return _onto_level(p, c, lo_c, hi_c, norm, lo, hi), False, "slsqp"
    p = _qp_closest_scip(c, lo_c, hi_c, g_mat, g_vec, x0, lo, hi)
    p = _active_set_polish(p, x0, c, lo_c, hi_c, g_mat, g_vec, lo, hi)
    return _onto_level(p, c, lo_c, hi_c, norm, lo, hi), True, "scip"


def _active_set_polish(p: np.ndarray | None, x0: np.ndarray, c: np.ndarray, lo_c: float,
                       hi_c: float, g_mat: np.ndarray, g_vec: np.ndarray, lo: np.ndarray,
                       hi: np.ndarray) -> np.ndarray | None:
    """Re-solve the l2 projection exactly on the constraints active at the QP solver's ``p``
    (removes its ~1e-8 feasibility errors); keep ``p`` if that point is not feasible."""
    if p is None:
        return p
    d = len(p)
    cp = float(c @ p)
    rows, rhs = [], []
    if np.any(c):
        rows.append(c)
        rhs.append(min(max(cp, lo_c), hi_c))
    scale = 1e-6 * (1.0 + np.abs(g_mat) @ np.abs(p) + np.abs(g_vec))
    act = np.nonzero(g_vec - g_mat @ p <= scale)[0]
    rows += list(g_mat[act])
    rhs += list(g_vec[act])
    eye = np.eye(d)
    with np.errstate(invalid="ignore"):
        at_box = ((np.isfinite(lo) & (p - lo <= 1e-9 * (1 + np.abs(lo))))
                  | (np.isfinite(hi) & (hi - p <= 1e-9 * (1 + np.abs(hi)))))
    for i in np.nonzero(at_box)[0]:
        rows.append(eye[i])
        rhs.append(lo[i] if p[i] - lo[i] <= hi[i] - p[i] else hi[i])
    if not rows:
        return p
    a = np.asarray(rows)
    lam, *_ = np.linalg.lstsq(a @ a.T, a @ x0 - np.asarray(rhs), rcond=None)
    q = x0 - a.T @ lam
    tol = 1e-10 * (1.0 + np.abs(g_mat) @ np.abs(q) + np.abs(g_vec))
    ok = (np.all(g_mat @ q <= g_vec + tol) and np.all(q >= lo - 1e-12) and np.all(q <= hi + 1e-12)
          and np.linalg.norm(q - x0) <= np.linalg.norm(p - x0) * (1 + 1e-6))
    return q if ok else p


def _onto_level(p: np.ndarray | None, c: np.ndarray, lo_c: float, hi_c: float, norm: str,
                lo: np.ndarray, hi: np.ndarray) -> np.ndarray | None:
    """Remove a solver's residual on ``lo_c <= c . p <= hi_c`` by the smallest l_p move."""
    if p is None or not np.any(c):
        return p
    cp = float(c @ p)
    gap = (lo_c - cp) if cp < lo_c else (hi_c - cp) if cp > hi_c else 0.0
    if gap == 0.0:
        return p
    if norm == "l2":
        step = gap / (c @ c) * c
    elif norm == "linf":
        step = np.sign(c) * gap / np.abs(c).sum()
    else:
        i = int(np.argmax(np.abs(c)))
        step = np.zeros_like(c)
        step[i] = gap / c[i]
    return np.clip(p + step, lo, hi)


def f_range(net: AffineNet, pattern: list[np.ndarray], x0: np.ndarray, s: float,
            margin: float) -> tuple[float, float]:
    """Target range of ``f`` on the other side of ``sign f = s``: ``s f <= -margin``, or
    ``s f <= 0`` on a plateau (``f`` constant on the region, ``f = 0`` counts)."""
    c, _, _ = net.region_map(x0, pattern)
    m = 0.0 if not np.any(c) else margin
    return (-np.inf, -m) if s > 0 else (m, np.inf)


def closest_in_region_np(net: AffineNet, x_point: np.ndarray, x0: np.ndarray, norm: str,
                         lo: np.ndarray | None = None, hi: np.ndarray | None = None,
                         level: float = 0.0, allow_qp: bool = True
                         ) -> tuple[np.ndarray | None, bool, str]:
    """Numpy core of :func:`closest_in_region`: ``(point or None, exact, method)``."""
    d = len(x0)
    lo = np.full(d, -np.inf) if lo is None else lo
    hi = np.full(d, np.inf) if hi is None else hi
    c, _, _, _ = region_constraints(net, x_point)
    if not np.any(c):
        return None, True, "lp"
    return closest_in_pattern(net, net.pattern(x_point), x0, norm, lo, hi, level, level,
                              allow_qp=allow_qp)


def closest_in_region(model: nn.Module, x_point: torch.Tensor, x_origin: torch.Tensor,
                      norm: str = "l2", *, bounds: tuple | None = None, level: float = 0.0,
                      input_shape: Sequence[int] | None = None) -> RegionPoint:
    """The point of ``{f = level}`` closest to ``x_origin`` in l_p within the linear region of
    ``x_point`` (its activation pattern fixed; the closure of the region, so ``f = 0`` on its
    boundary is allowed), optionally inside the box ``bounds = (lo, hi)``.

    Exact when the region's LP (l1, linf; HiGHS) or QP (l2; closed-form hyperplane projection
    when it stays in the region, else SCIP) is solved; without pyscipopt the l2 QP falls back to
    SLSQP and the result is marked ``exact=False``. Use ``level`` slightly past 0 (on the other
    side of ``f(x_origin)``) to get a strictly adversarial point.

    Paper:
        De Palma et al. 2021, Section 4 and Figures 1, 2 (the closest adversarial example in
        l1, l2, linf), within one linear region.

    Arguments:
        model: a ReLU network :func:`randadv.protocol.to_affine_layers` reads; x_point: a
        point of the region;
        x_origin: the point whose distance is measured; norm: ``"l1"``, ``"l2"`` or ``"linf"``;
        bounds: optional box; level: the level set ``f = level``; input_shape: as in
        :func:`randadv.protocol.to_affine_layers`.

    Returns:
        :class:`RegionPoint`.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from randadv.exact import closest_in_region
        >>> lin = nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))   # f = x_1 - 1: one region
        >>> with torch.no_grad():
        ...     _ = lin[0].weight.copy_(torch.tensor([[1.0, 0.0]])); _ = lin[0].bias.fill_(-1.0)
        >>> x0 = torch.zeros(1, 2)
        >>> [closest_in_region(lin, x0, x0, n).distance for n in ("l1", "l2", "linf")]
        [1.0, 1.0, 1.0]
    """
    norm = check_norm(norm)
    for name, t in (("x_point", x_point), ("x_origin", x_origin)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise InvalidInputError(f"{name} must be a floating-point torch.Tensor")
        if not bool(torch.isfinite(t).all()):
            raise InvalidInputError(f"{name} holds NaN or inf")
    if x_point.numel() != x_origin.numel():
        raise InvalidInputError(f"x_point and x_origin differ in size: {tuple(x_point.shape)} "
                                f"vs {tuple(x_origin.shape)}")
    net = read_piecewise_linear(model, input_shape).affine()
    xp = x_point.detach().to("cpu", torch.float64).reshape(-1).numpy()
    x0 = x_origin.detach().to("cpu", torch.float64).reshape(-1).numpy()
    if len(x0) != net.d:
        raise InvalidInputError(f"input size {len(x0)} does not match the model's {net.d}")
    lo = hi = None
    if bounds is not None:
        lo = np.broadcast_to(np.asarray(bounds[0], np.float64).reshape(-1)
                             if np.ndim(bounds[0]) else float(bounds[0]), (net.d,)).copy()
        hi = np.broadcast_to(np.asarray(bounds[1], np.float64).reshape(-1)
                             if np.ndim(bounds[1]) else float(bounds[1]), (net.d,)).copy()
    pt, exact, method = closest_in_region_np(net, xp, x0, norm, lo, hi, level)
    if pt is None:
        return RegionPoint(None, math.inf, exact, "infeasible", method)
    out = torch.as_tensor(pt, dtype=x_origin.dtype).reshape(x_origin.shape)
    dist = float(pnorm(out.to(torch.float64).reshape(-1).numpy() - x0, norm))
    return RegionPoint(out, dist, exact, "optimal" if exact else "approximate", method)
