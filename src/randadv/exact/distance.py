"""Exact l1 / l2 / linf distance from an input to the decision boundary of a small ReLU network.

The quantity is the adversarial distance of De Palma, Kiani, Lloyd (ICML 2021): for a network
with scalar output ``f`` and decision ``sign f``, ``min ||x' - x||_p`` over ``x'`` with
``sign f(x') != sign f(x)`` (inside an optional input box). It is computed by mixed-integer
programming (Tjeng, Xiao, Tedrake 2019): a quick attack gives an upper bound ``u``; pre-activation
bounds over ``{||x' - x||_inf <= u} ∩ box`` (interval arithmetic, then LP tightening) give the
big-M encoding; HiGHS (l1, linf) or SCIP (l2) solve it; the solver's point is re-checked.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from randadv.errors import InvalidInputError, ModelOutputError, RandadvError
from randadv.exact.attack import quick_attack
from randadv.exact.encoding import (
    AffineNet,
    Box,
    float64_model,
    interval_bounds,
    lp_tighten,
    to_affine_layers,
)
from randadv.exact.milp import MipSolution, encode, solve_highs, solve_scip
from randadv.exact.region import closest_in_pattern, f_range
from randadv.protocol.adversarial import is_adversarial
from randadv.protocol.norms import check_norm, pnorm
from randadv.protocol.result import AdversarialResult
from randadv.protocol.rounding import rounding_bound_of

STATUSES = ("optimal", "time_limit", "infeasible")


class UnverifiedWitnessError(RandadvError):
    """The solver's adversarial point is not on the other side for the torch model's forward
    pass, even after the documented push across the boundary (raised by :func:`min_distance`
    with ``strict=True``; ``strict=False`` returns the point with ``verified=False`` instead).

    Paper:
        none (utility: no unverified solver point is reported as a distance).

    Arguments:
        message: the solver's distance and a hint (try a larger ``margin``).

    Example:
        >>> from randadv.errors import RandadvError
        >>> from randadv.exact import UnverifiedWitnessError
        >>> issubclass(UnverifiedWitnessError, RandadvError)
        True
        >>> str(UnverifiedWitnessError("the solver's point is not on the other side"))
        "the solver's point is not on the other side"
    """


@dataclass(kw_only=True)
class ExactDistance(AdversarialResult):
    """Result of :func:`min_distance` for one input: the one result type of a minimum-norm
    search (:class:`randadv.protocol.result.AdversarialResult`, one input's floats) with the
    solver's bounds and status.

    Attributes:
        success: a verified witness was found (``x_adv`` passed the forward-pass check at
            ``distance``; True for x on the boundary, distance 0). False without a witness,
            and for an unverified solver point returned with ``strict=False``.
        distance: ``||x_adv - x||_p`` of the verified witness (inf if none). With status
            ``"optimal"`` it is the minimal distance up to the relative solver gap ``rel_gap``
            and the push ``margin`` across the boundary (both ~1e-7 relative by default; see
            :func:`min_distance`). An l2 witness in a region where f is constant (a touched
            boundary) comes from SCIP's QP, accurate to its feasibility tolerance (1e-6).
        x_adv: the witness (same dtype/shape as x), or None.
        status: ``"optimal"``, ``"time_limit"`` or ``"infeasible"`` (no sign change within the
            searched region; then ``lower_bound`` is ``search_radius`` or inf).
        lower_bound, upper_bound: bounds on the minimal distance: the solver's dual bound
            (up to its feasibility tolerances) and the verified witness's distance.
        solve_time: total seconds (attack, bounds and solver) for this input.
        norm: ``"l1"``, ``"l2"`` or ``"linf"``.
        f_x, f_adv: network outputs at x and at x_adv (float64 forward pass of the model).
        verified: the witness passed the forward-pass check (always True unless ``strict=False``).
        n_binaries: binary variables of the MILP (unstable ReLUs).
        attack_distance: distance of the quick attack's point (the initial upper bound).
        search_radius: linf radius of the searched box around x (inf: the input bounds alone).
        milp_time: seconds spent in the solver.
        backend: ``"highs"``, ``"scip"`` or ``"none"``.
        method: the search that decided the result: ``"milp"`` (HiGHS, l1 / linf), ``"miqcp"``
            (SCIP, l2), ``"bounds"`` (the pre-activation bounds alone: no sign change in the
            searched box, or no time left for a solver) or ``"boundary"`` (x is on it).
        rounding_bound: the verification rule's bound on the forward pass's rounding error at
            ``x_adv`` (:func:`randadv.protocol.rounding_bound_of`, eps of x's dtype;
            NaN without a witness): ``|f_adv| / rounding_bound`` is the verified margin
            (:attr:`verified_margin`; at most 1 for a witness on the boundary).
        propagations: None (the solver reads the weights; its forward passes are not counted).

    Paper:
        De Palma, Kiani, Lloyd 2021, Section 4 (the adversarial distance, here exact); the
        MILP of Tjeng, Xiao, Tedrake 2019 (big-M ReLU encoding, eq. (5)) whose bounds and
        status it reports.

    Example:
        >>> import torch
        >>> from randadv.exact import min_distance
        >>> net = torch.nn.Linear(2, 1)                    # f(x) = 3 x1 + 4 x2 - 5
        >>> net.weight.data, net.bias.data = torch.tensor([[3.0, 4.0]]), torch.tensor([-5.0])
        >>> r = min_distance(net, torch.zeros(2), "linf")  # exact: 5 / 7
        >>> r.status, r.method, r.backend, r.n_binaries, r.success, r.verified
        ('optimal', 'milp', 'highs', 0, True, True)
        >>> round(r.distance, 4), round(r.lower_bound, 4), r.upper_bound == r.distance
        (0.7143, 0.7143, True)
        >>> r.propagations is None, r.verified_margin >= 1
        (True, True)
    """

    success: bool = False
    status: str
    lower_bound: float
    upper_bound: float
    solve_time: float
    verified: bool
    n_binaries: int
    attack_distance: float | None
    search_radius: float
    milp_time: float
    backend: str
    method: str = "milp"
    rounding_bound: float = math.nan


def _native_dtype(model: nn.Module) -> torch.dtype:
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return t.dtype
    dt = getattr(model, "dtype", None)
    return dt if isinstance(dt, torch.dtype) else torch.float32


class _Checker:
    """Forward passes of the original model (a float64 copy when possible) on flat inputs."""

    def __init__(self, model: nn.Module, sample_shape: tuple[int, ...]) -> None:
        self.model, self.is_f64 = float64_model(model)
        self.dtype = torch.float64 if self.is_f64 else _native_dtype(model)
        self.sample_shape = sample_shape

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        pts = np.atleast_2d(pts)
        xt = torch.as_tensor(pts, dtype=self.dtype).reshape((len(pts), *self.sample_shape))
        with torch.no_grad():
            out = self.model(xt)
        if not isinstance(out, torch.Tensor) or out.numel() != len(pts):
            raise ModelOutputError(f"the model must return one scalar per input, got "
                                   f"{getattr(out, 'shape', type(out))} for {len(pts)} inputs")
        return out.detach().to(torch.float64).reshape(-1).cpu().numpy()


def _as_box(bounds: tuple | None, d: int) -> tuple[np.ndarray, np.ndarray]:
    if bounds is None:
        return np.full(d, -np.inf), np.full(d, np.inf)
    try:
        lo_in, hi_in = bounds
    except (TypeError, ValueError):
        raise InvalidInputError(f"bounds must be (lo, hi), got {bounds!r}") from None
    out = []
    for v in (lo_in, hi_in):
        a = v.detach().to("cpu", torch.float64).numpy() if isinstance(v, torch.Tensor) \
            else np.asarray(v, dtype=np.float64)
        a = a.reshape(-1) if a.size == d else a
        try:
            out.append(np.broadcast_to(a, (d,)).astype(np.float64).copy())
        except ValueError:
            raise InvalidInputError(f"bounds of shape {a.shape} do not fit inputs of size {d}"
                                    ) from None
    lo, hi = out
    if np.isnan(lo).any() or np.isnan(hi).any() or (lo > hi).any():
        raise InvalidInputError("bounds must satisfy lo <= hi with no NaN")
    return lo, hi


def _split_batch(x: torch.Tensor, d: int, sample_shape: tuple[int, ...] | None
                 ) -> tuple[torch.Tensor, bool]:
    """``(rows of shape (B, ...), is_batch)``."""
    shape = tuple(x.shape)
    if sample_shape is not None and len(sample_shape) > 1:
        if shape == sample_shape:
            return x.unsqueeze(0), False
        if shape[1:] == sample_shape:
            return x, True
    if x.dim() == 1 and shape[0] == d:
        return x.unsqueeze(0), False
    if x.dim() == 2 and shape[1] == d:
        return x, True
    raise InvalidInputError(f"x must have shape (d,) or (B, d) with d={d}"
                            + (f" (or {sample_shape} / (B, *{sample_shape}))"
                               if sample_shape and len(sample_shape) > 1 else "")
                            + f", got {shape}")


def min_distance(model: nn.Module, x: torch.Tensor, norm: str = "l2",
                 bounds: tuple | None = None, time_limit: float = 60.0, *,
                 input_shape: Sequence[int] | None = None, margin: float = 1e-7,
                 rel_gap: float = 1e-7, tighten: str = "auto", radius: float | None = None,
                 strict: bool = True, seed: int = 0) -> ExactDistance | list[ExactDistance]:
    """Exact minimal l_p distance (p = 1, 2, inf) from ``x`` to the decision boundary of a small
    ReLU network with scalar output: ``min ||x' - x||_p`` s.t. ``f(x') <= 0`` if ``f(x) > 0``
    (``f(x') >= 0`` if ``f(x) < 0``) and ``lo <= x' <= hi`` when ``bounds=(lo, hi)`` is given.
    This is the adversarial distance studied by De Palma, Kiani, Lloyd (ICML 2021), solved as the
    MILP of Tjeng, Xiao, Tedrake (ICLR 2019): HiGHS for l1/linf, SCIP (MIQCP) for l2.

    Paper:
        De Palma, Kiani, Lloyd 2021, Section 4 (the adversarial distance in l1, l2, linf);
        Tjeng, Xiao, Tedrake 2019 (the MILP of a ReLU network with pre-activation bounds;
        big-M ReLU encoding, eq. (5)).

    Arguments:
        model: ``nn.Sequential`` of Linear/ReLU/Flatten/Identity/Conv2d, an ``nn.Linear``, or a
            ReLU :class:`randadv.nets.RandomMLP` (see :func:`to_affine_layers`).
        x: one input ``(d,)`` (or ``input_shape``) or a batch ``(B, d)`` (or ``(B, *input_shape)``,
            or images ``(B, C, H, W)``): a batch returns a list of results.
        norm: ``"l1"``, ``"l2"`` or ``"linf"``.
        bounds: optional input domain ``(lo, hi)`` (scalars or tensors of the input's shape).
        time_limit: seconds per input (attack, bound tightening and solver together).
        input_shape: the sample shape, required when the first layer is ``nn.Conv2d`` and x
            is one flat input or a flat batch (a batch ``(B, C, H, W)`` gives it).
        margin: the MILP solves ``s f(x') <= 0`` (``s = sign f(x)``), whose optimum lies on
            the boundary ``f = 0``. The returned witness is instead strictly adversarial:
            the exact closest point of the solver's linear region (its activation pattern,
            shrunk by a slack of 1e-9 (float64 x) or 1e-7..1e-3 (float32 x) times
            ``1 + ||x||_inf``) with ``s f <= -max(margin |f(x)|, B)``, or the solver's point
            pushed along ``x_adv - x`` until so, B the attacks' bound on the forward pass's
            rounding error at the point (:func:`randadv.attacks.verify.rounding_bound_of`,
            eps of x's dtype: the flip holds for the model in x's dtype and in float64); it
            must pass the float64 forward pass of the model after rounding to x's dtype. So
            ``distance`` exceeds the exact infimum by about
            ``margin`` relative (1e-7; more for float32 inputs, whose rounding alone is
            ~1e-7). Where no strictly adversarial point is near (the boundary is a plateau
            ``f = 0`` or is only touched, ``s f >= 0`` around it, or the sign change is onto
            the box boundary), a witness on the boundary is accepted: the closest point of
            ``s f <= 0`` in its region, with ``|f(x_adv)| <= B`` (f = 0 up to the forward
            pass's rounding).
        rel_gap: relative optimality gap asked of the solver.
        tighten: ``"interval"``, ``"lp"`` (LP bound tightening of unstable neurons) or
            ``"auto"`` (LP when there are at most 256 hidden neurons).
        radius: linf radius searched when the attack finds no adversarial point and the bounds
            are not finite (default ``10 * max(1, ||x||_inf)``).
        strict: raise :class:`UnverifiedWitnessError` if a solver point fails the forward-pass
            check (default); otherwise return it with ``verified=False``.
        seed: seed of the random directions of the initial attack.

    Returns:
        An :class:`ExactDistance` for one input, a list of them (one per row) for a batch.

    Raises:
        InvalidInputError: unsupported layer/activation, bad shapes, NaN/inf in x or bounds.
        ScipNotInstalledError: l2 without pyscipopt (``pip install randadv[scip]``).

    Example:
        >>> import torch
        >>> from randadv.exact import min_distance
        >>> net = torch.nn.Linear(2, 1)                    # f(x) = 3 x1 + 4 x2 - 5
        >>> net.weight.data, net.bias.data = torch.tensor([[3.0, 4.0]]), torch.tensor([-5.0])
        >>> round(min_distance(net, torch.zeros(2), "l1").distance, 4)      # 5 / 4
        1.25
        >>> r = min_distance(net, torch.zeros(2), "l1", bounds=(0, 1))     # x2 <= 1: (1/3, 1)
        >>> round(r.distance, 4), [round(v, 4) for v in r.x_adv.tolist()]
        (1.3333, [0.3333, 1.0])
        >>> from randadv.nets import RandomMLP
        >>> net = RandomMLP([4, 8], seed=0, dtype=torch.float64)
        >>> rs = min_distance(net, torch.rand(2, 4, dtype=torch.float64), "linf")   # a batch
        >>> [r.status for r in rs], all(r.lower_bound <= r.distance for r in rs)
        (['optimal', 'optimal'], True)
    """
    norm = check_norm(norm)
    if tighten not in ("auto", "lp", "interval"):
        raise InvalidInputError(f"tighten must be 'auto', 'lp' or 'interval', got {tighten!r}")
    if not (time_limit > 0):
        raise InvalidInputError(f"time_limit must be > 0, got {time_limit}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise InvalidInputError("x must be a floating-point torch.Tensor")
    if not bool(torch.isfinite(x).all()):
        raise InvalidInputError("x holds NaN or inf")
    if norm == "l2":
        from randadv.exact.milp import _import_scip

        _import_scip()
    net = AffineNet(to_affine_layers(model, input_shape))
    shape_in = tuple(int(s) for s in input_shape) if input_shape is not None else None
    if shape_in is None and x.dim() > 2 and math.prod(x.shape[1:]) == net.d:
        shape_in = tuple(int(s) for s in x.shape[1:])   # a batch of images (B, C, H, W)
    rows, batched = _split_batch(x, net.d, shape_in)
    checker = _Checker(model, shape_in if shape_in is not None else (net.d,))
    lo, hi = _as_box(bounds, net.d)
    if tighten == "auto":
        tighten = "lp" if sum(net.hidden_widths) <= 256 else "interval"
    out = []
    for row in rows:
        out.append(_one(net, checker, row, norm, lo, hi, time_limit, margin, rel_gap, tighten,
                        radius, strict, seed))
    return out if batched else out[0]


def _one(net: AffineNet, check: Callable[[np.ndarray], np.ndarray], row: torch.Tensor, norm: str,
         lo: np.ndarray, hi: np.ndarray, time_limit: float, margin: float, rel_gap: float,
         tighten: str, radius: float | None, strict: bool, seed: int) -> ExactDistance:
    t_start = time.perf_counter()
    x = row.detach().to("cpu", torch.float64).reshape(-1).numpy().copy()
    if np.any(x < lo) or np.any(x > hi):
        raise InvalidInputError("x lies outside the given bounds")
    f0 = float(check(x)[0])
    f_np = float(net.forward(x[None, :])[0])
    tol = (1e-7 if check.is_f64 else 1e-3) * (1.0 + abs(f0)
                                              + float(np.abs(x).max(initial=0.0)))
    if not math.isfinite(f0) or abs(f0 - f_np) > tol:
        raise ModelOutputError(f"the model's output f(x)={f0!r} does not match its extracted "
                               f"affine layers ({f_np!r}): unsupported model structure?")

    native = row.dtype
    eps_t = 1e-15 if native == torch.float64 else 1e-7

    def bound_at(p: np.ndarray, fp: float, g: np.ndarray) -> float:
        """The verification rule's rounding bound of the model (in x's dtype) at ``p``."""
        return float(rounding_bound_of(torch.tensor([fp]), torch.from_numpy(g)[None],
                                       torch.from_numpy(p)[None], dtype=native)[0])

    def result(**kw) -> ExactDistance:
        base = dict(norm=norm, f_x=f0, solve_time=time.perf_counter() - t_start)
        base.update(kw)
        base.setdefault("method", {"highs": "milp", "scip": "miqcp"}.get(kw["backend"],
                                                                         "bounds"))
        base["success"] = bool(kw["x_adv"] is not None and kw["verified"])
        if kw["x_adv"] is not None and "rounding_bound" not in kw:
            p = kw["x_adv"].detach().to("cpu", torch.float64).reshape(-1).numpy()
            base["rounding_bound"] = bound_at(p, float(kw["f_adv"]), net.value_and_grad(p)[1])
        return ExactDistance(**base)

    if f0 == 0.0:  # x is on the boundary
        return result(distance=0.0, x_adv=row.detach().clone(), status="optimal",
                      lower_bound=0.0, upper_bound=0.0, f_adv=0.0, verified=True, n_binaries=0,
                      attack_distance=0.0, search_radius=0.0, milp_time=0.0, backend="none",
                      method="boundary", rounding_bound=0.0)
    s = 1.0 if f0 > 0 else -1.0
    margin_abs = margin * abs(f0)

    def finalize(cand: np.ndarray, allow_weak: bool = False
                 ) -> tuple[torch.Tensor, np.ndarray, float] | None:
        """Push ``cand`` along ``cand - x`` (by at most 0.1%) until strictly adversarial in the
        forward pass after rounding to the input's dtype: ``s f <= -max(margin |f(x)|, B)``, B
        the attacks' rounding bound (:func:`randadv.attacks.verify.rounding_bound_of`, eps of
        x's dtype). ``allow_weak``: else accept the first point on the boundary, ``s f <= B``
        (f = 0 up to rounding, e.g. where the boundary is only touched or on the box
        boundary)."""
        v = cand - x
        t = 1.0
        weak = None
        for k in range(40):
            p_t = torch.as_tensor(np.clip(x + t * v, lo, hi), dtype=native)
            p = p_t.to(torch.float64).numpy()
            fp = float(check(p)[0])
            _, g = net.value_and_grad(p)
            bound = bound_at(p, fp, g)
            need = max(margin_abs, bound)
            # the attacks' test (randadv.protocol.is_adversarial), margin max(margin, B)
            if bool(is_adversarial(fp, s, need)) or (fp == 0.0 and not np.any(g)):
                return p_t.reshape(row.shape).clone(), p, fp
            if weak is None and s * fp <= bound:
                weak = (p_t.reshape(row.shape).clone(), p, fp)
            slope = s * float(g @ v)
            step = (s * fp + need) / -slope * 1.01 if slope < 0 else 0.0
            t += max(step, t * eps_t) * 2.0**k
            if t > 1.001:
                break
        return weak if allow_weak else None

    def closer(a, b):
        if a is None:
            return b
        if b is None:
            return a
        return a if pnorm(a[1] - x, norm) <= pnorm(b[1] - x, norm) else b

    def certify(point: np.ndarray | None, pattern: list[np.ndarray] | None
                ) -> tuple[torch.Tensor, np.ndarray, float] | None:
        """A verified witness near ``point``: the point pushed slightly across, or the exact
        closest point of its linear region ``pattern`` shrunk by a tiny slack with
        ``s f <= -margin`` (removes solver tolerance errors; the slack is larger for float32
        inputs, whose rounding moves pre-activations by ~1e-7)."""
        best_c = finalize(point) if point is not None else None
        if pattern is not None:
            f_lo, f_hi = f_range(net, pattern, x, s, margin_abs)
            zs = 1.0 + float(np.abs(x).max())
            slacks = (1e-9, 1e-7, 0.0) if native == torch.float64 else (1e-7, 1e-5, 1e-3)
            for slack in slacks:
                p, _, _ = closest_in_pattern(net, pattern, x, norm, lo, hi, f_lo, f_hi,
                                             slack=slack * zs)
                if p is not None and (c := finalize(p)) is not None:
                    best_c = closer(best_c, c)
                    break
        if best_c is None and pattern is not None:
            # no strictly adversarial point in the region (the boundary is only touched, f >= 0
            # around it): its closest point of s f <= 0, on the boundary up to rounding
            f_lo, f_hi = (-np.inf, 0.0) if s > 0 else (0.0, np.inf)
            p, _, _ = closest_in_pattern(net, pattern, x, norm, lo, hi, f_lo, f_hi)
            if p is not None:
                best_c = finalize(p, allow_weak=True)
        if best_c is None and point is not None:
            best_c = finalize(point, allow_weak=True)
        return best_c

    def polish(sol: MipSolution) -> tuple[torch.Tensor, np.ndarray, float] | None:
        return certify(None if sol.delta is None else x + sol.delta, sol.pattern)

    # 1. quick attack: initial upper bound
    r_def = radius if radius is not None else 10.0 * max(1.0, float(np.abs(x).max()))
    dl, du = lo - x, hi - x
    a_lo, a_hi = np.maximum(lo, x - r_def), np.minimum(hi, x + r_def)
    best: tuple[torch.Tensor, np.ndarray, float] | None = None
    y = quick_attack(net, x, norm, a_lo, a_hi, radius=r_def, seed=seed, margin=margin_abs)
    if y is not None:
        best = certify(y, net.pattern(y))
    attack_dist = float(pnorm(best[1] - x, norm)) if best is not None else None

    # 2. search box and pre-activation bounds
    box_finite = bool(np.all(np.isfinite(dl)) and np.all(np.isfinite(du)))
    if attack_dist is not None:
        r = attack_dist * (1.0 + 1e-9) + 1e-12
    elif box_finite:
        r = math.inf
    else:
        r = r_def

    def solve(r: float, tighten: str = tighten) -> tuple[MipSolution | None, str]:
        box = Box(np.maximum(dl, -r), np.minimum(du, r), norm, r)
        if math.isfinite(r):
            scale = r
        else:
            scale = float(np.maximum(np.abs(box.lo), np.abs(box.hi)).max()) or 1.0
        bnds = interval_bounds(net, x, box)
        if tighten == "lp":
            deadline = t_start + 0.5 * time_limit
            bnds = lp_tighten(net, x, box, bnds, deadline=deadline)
        out_lo, out_hi = bnds[-1]
        if s * (out_lo[0] if s > 0 else out_hi[0]) > 0:  # no sign change in the box
            return MipSolution("infeasible", None, math.inf, math.inf, 0, "none", 0.0), "none"
        remaining = time_limit - (time.perf_counter() - t_start)
        if remaining <= 0:
            return None, "none"
        enc = encode(net, x, s, box, bnds)
        if norm == "l2":
            return solve_scip(enc, r, scale, remaining, rel_gap), "scip"
        return solve_highs(enc, norm, r, scale, remaining, rel_gap), "highs"

    sol, backend = solve(r)
    if sol is not None and sol.status == "optimal" and sol.delta is not None and (
            sol.objective > r or (attack_dist is None and sol.objective < 0.5 * r)):
        # l1/l2 optimum beyond the linf radius searched (not proven), or far inside a large
        # default box (loose big-M, coarse tolerances): re-solve on the box of its radius
        cand = polish(sol)
        if cand is not None:
            best = cand
            r = float(pnorm(cand[1] - x, norm)) * (1.0 + 1e-9) + 1e-12
            sol, backend = solve(r)

    if sol is not None and sol.status == "infeasible" and best is not None:
        # contradicts the attack's verified point: retry once, looser box, interval bounds
        r = r * (1.0 + 1e-6) + 1e-9
        sol, backend = solve(r, "interval")
        if sol is not None and sol.status == "infeasible":
            raise RandadvError("the solver reports no sign change although an adversarial "
                               "point exists: numerical trouble in the MILP")
    milp_time = sol.solve_time if sol is not None else 0.0
    n_bin = sol.n_binaries if sol is not None else 0
    unverified: np.ndarray | None = None
    if sol is not None and sol.delta is not None:
        cand = polish(sol)
        if cand is not None:
            best = closer(best, cand)
        elif best is None or sol.objective < pnorm(best[1] - x, norm) * (1 - 1e-6):
            # the solver's point is better than every verified one but fails the check
            if strict:
                raise UnverifiedWitnessError(
                    f"the solver's point (distance {sol.objective:.6g}) is not on the other "
                    "side for the model's forward pass; try a larger margin")
            unverified = x + sol.delta
    status = "time_limit" if sol is None else sol.status
    lower = 0.0 if sol is None else sol.lower_bound
    if status == "infeasible":
        lower = r if math.isfinite(r) else math.inf
        return result(distance=math.inf, x_adv=None, status="infeasible", lower_bound=lower,
                      upper_bound=math.inf, f_adv=None, verified=True, n_binaries=n_bin,
                      attack_distance=None, search_radius=r, milp_time=milp_time,
                      backend=backend)
    if unverified is not None:
        pt = torch.as_tensor(unverified, dtype=native).reshape(row.shape)
        d_u = float(pnorm(unverified - x, norm))
        upper = float(pnorm(best[1] - x, norm)) if best is not None else math.inf
        return result(distance=d_u, x_adv=pt, status=status, lower_bound=min(lower, d_u),
                      upper_bound=upper, f_adv=float(check(unverified)[0]), verified=False,
                      n_binaries=n_bin, attack_distance=attack_dist, search_radius=r,
                      milp_time=milp_time, backend=backend)
    if best is None:
        return result(distance=math.inf, x_adv=None, status="time_limit", lower_bound=lower,
                      upper_bound=math.inf, f_adv=None, verified=True, n_binaries=n_bin,
                      attack_distance=attack_dist, search_radius=r, milp_time=milp_time,
                      backend=backend)
    dist = float(pnorm(best[1] - x, norm))
    return result(distance=dist, x_adv=best[0], status=status, lower_bound=min(lower, dist),
                  upper_bound=dist, f_adv=best[2], verified=True, n_binaries=n_bin,
                  attack_distance=attack_dist, search_radius=r, milp_time=milp_time,
                  backend=backend)
