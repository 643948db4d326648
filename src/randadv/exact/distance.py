"""Exact l1 / l2 / linf distance from an input to the decision boundary of a small ReLU network.

The quantity is the adversarial distance of De Palma, Kiani, Lloyd (ICML 2021): for a network
with scalar output ``f`` and decision ``sign f``, ``min ||x' - x||_p`` over ``x'`` with
``sign f(x') != sign f(x)`` (inside an optional input box). It is computed by mixed-integer
programming (Tjeng, Xiao, Tedrake 2019): a quick attack gives an upper bound ``u``; pre-activation
bounds over ``{||x' - x||_inf <= u} ∩ box`` (interval arithmetic, then LP tightening) give the
big-M encoding; HiGHS (l1, linf) or SCIP (l2) solve it; the solver's point is re-checked.

One input runs four named steps: :func:`bound` (the quick attack's verified point: the upper
bound and the search radius), :func:`encode` (pre-activation bounds and the MILP on the search
box), :func:`solve` (the solver, re-solved where its answer calls for it) and
:func:`certify_solution` (the solver's point made a witness by :func:`certify`). A witness
passes the verification rule of every reported adversarial example
(:func:`randadv.protocol.verified_flip` against :func:`randadv.protocol.rounding_bound_of`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from randadv.errors import InvalidInputError, ModelOutputError, RandadvError
from randadv.exact.attack import quick_attack
from randadv.exact.encoding import Box, interval_bounds, lp_tighten
from randadv.exact.milp import Encoding, MipSolution, solve_highs, solve_scip
from randadv.exact.milp import encode as milp_encode
from randadv.exact.region import closest_in_pattern, f_range
from randadv.exact.tolerance import MARGIN, REL_GAP
from randadv.protocol.adversarial import verified_flip
from randadv.protocol.box import check_box
from randadv.protocol.norms import check_norm, pnorm
from randadv.protocol.piecewise import AffineNet, read_piecewise_linear
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


def float64_model(model: nn.Module) -> tuple[nn.Module, bool]:
    """A float64 copy of ``model`` (``(model, False)`` if it cannot be converted)."""
    try:
        m = copy.deepcopy(model).to(device="cpu", dtype=torch.float64)
        for mod in m.modules():
            if isinstance(getattr(mod, "dtype", None), torch.dtype):
                mod.dtype = torch.float64
        return m, True
    except Exception:  # noqa: BLE001 - any failure: verify in the native dtype
        return model, False


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
    lo, hi = check_box(bounds, (d,), torch.float64, "cpu", flat=True)
    return lo.detach().numpy(), hi.detach().numpy()


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
                 input_shape: Sequence[int] | None = None, margin: float = MARGIN,
                 rel_gap: float = REL_GAP, tighten: str = "auto", radius: float | None = None,
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
            ReLU :class:`randadv.nets.RandomMLP` (see :func:`randadv.protocol.to_affine_layers`).
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
    net = read_piecewise_linear(model, input_shape).affine()
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


# one input's search, in four steps: bound -> encode -> solve -> certify

Witness = tuple[torch.Tensor, np.ndarray, float]
"""A verified adversarial point: (the point in x's dtype and shape, its float64 flat copy, f)."""


@dataclass
class _Input:
    """One input's problem and settings (built by :func:`_prepare`)."""

    net: AffineNet
    check: _Checker
    row: torch.Tensor
    x: np.ndarray          # the input, flat float64
    lo: np.ndarray         # the input box
    hi: np.ndarray
    norm: str
    f0: float              # f(x), from the checker's forward pass
    s: float               # sign f(x)
    margin_abs: float      # margin * |f(x)|
    time_limit: float
    rel_gap: float
    tighten: str
    t_start: float

    @property
    def native(self) -> torch.dtype:
        return self.row.dtype

    def dist(self, p: np.ndarray) -> float:
        return float(pnorm(p - self.x, self.norm))


def _one(net: AffineNet, check: _Checker, row: torch.Tensor, norm: str, lo: np.ndarray,
         hi: np.ndarray, time_limit: float, margin: float, rel_gap: float, tighten: str,
         radius: float | None, strict: bool, seed: int) -> ExactDistance:
    """The exact distance of one input: :func:`_prepare`, then :func:`bound` (a verified
    attack point), :func:`solve` (:func:`encode` and the solver on the search box, re-solved
    where its answer calls for it) and :func:`certify_solution` (the solver's point as a
    verified witness, and the result)."""
    inp = _prepare(net, check, row, norm, lo, hi, time_limit, margin, rel_gap, tighten)
    if inp.f0 == 0.0:  # x is on the boundary
        return _result(inp, distance=0.0, x_adv=row.detach().clone(), status="optimal",
                       lower_bound=0.0, upper_bound=0.0, f_adv=0.0, verified=True,
                       n_binaries=0, attack_distance=0.0, search_radius=0.0, milp_time=0.0,
                       backend="none", method="boundary", rounding_bound=0.0)
    best, attack_dist, r = bound(inp, radius, seed)
    sol, backend, best, r = solve(inp, best, attack_dist, r)
    return certify_solution(inp, sol, backend, best, attack_dist, r, strict)


def _prepare(net: AffineNet, check: _Checker, row: torch.Tensor, norm: str, lo: np.ndarray,
             hi: np.ndarray, time_limit: float, margin: float, rel_gap: float, tighten: str
             ) -> _Input:
    """Check one input (inside the box; the model's f(x) equal to its affine layers') and
    gather its problem."""
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
    return _Input(net=net, check=check, row=row, x=x, lo=lo, hi=hi, norm=norm, f0=f0,
                  s=1.0 if f0 > 0 else -1.0, margin_abs=margin * abs(f0),
                  time_limit=time_limit, rel_gap=rel_gap, tighten=tighten, t_start=t_start)


def _result(inp: _Input, **kw) -> ExactDistance:
    """The :class:`ExactDistance` of ``kw``, with f(x), the elapsed time, the method from the
    backend, success (a verified witness) and the witness's rounding bound."""
    base = dict(norm=inp.norm, f_x=inp.f0, solve_time=time.perf_counter() - inp.t_start)
    base.update(kw)
    base.setdefault("method", {"highs": "milp", "scip": "miqcp"}.get(kw["backend"], "bounds"))
    base["success"] = bool(kw["x_adv"] is not None and kw["verified"])
    if kw["x_adv"] is not None and "rounding_bound" not in kw:
        p = kw["x_adv"].detach().to("cpu", torch.float64).reshape(-1).numpy()
        base["rounding_bound"] = _rounding_bound(inp, p, float(kw["f_adv"]),
                                                 inp.net.value_and_grad(p)[1])
    return ExactDistance(**base)


# --- 1. bound: a verified attack point, the initial upper bound and search radius

def bound(inp: _Input, radius: float | None, seed: int
          ) -> tuple[Witness | None, float | None, float]:
    """Step 1: the quick attack's point made a verified witness (:func:`certify`), its
    distance (the initial upper bound; None without one) and the linf radius to search: just
    above that distance, else the input box (inf) when finite, else ``radius`` (default
    ``10 max(1, ||x||_inf)``)."""
    x, lo, hi = inp.x, inp.lo, inp.hi
    r_def = radius if radius is not None else 10.0 * max(1.0, float(np.abs(x).max()))
    a_lo, a_hi = np.maximum(lo, x - r_def), np.minimum(hi, x + r_def)
    best: Witness | None = None
    y = quick_attack(inp.net, x, inp.norm, a_lo, a_hi, radius=r_def, seed=seed,
                     margin=inp.margin_abs)
    if y is not None:
        best = certify(inp, y, inp.net.pattern(y))
    attack_dist = inp.dist(best[1]) if best is not None else None
    box_finite = bool(np.all(np.isfinite(lo - x)) and np.all(np.isfinite(hi - x)))
    if attack_dist is not None:
        r = attack_dist * (1.0 + 1e-9) + 1e-12
    elif box_finite:
        r = math.inf
    else:
        r = r_def
    return best, attack_dist, r


# --- 2. encode: pre-activation bounds on the search box and the MILP

def encode(inp: _Input, r: float, tighten: str
           ) -> tuple[Encoding, float, float] | MipSolution | None:
    """Step 2: the search box (the input box within linf radius ``r`` of x), the
    pre-activation bounds over it (interval arithmetic, LP-tightened for ``tighten="lp"``
    until half the time limit) and the MILP (:func:`randadv.exact.milp.encode`); returns
    ``(encoding, scale, seconds left)``, an infeasible :class:`MipSolution` where the bounds
    exclude a sign change in the box, or None where no time is left."""
    x, net = inp.x, inp.net
    box = Box(np.maximum(inp.lo - x, -r), np.minimum(inp.hi - x, r), inp.norm, r)
    if math.isfinite(r):
        scale = r
    else:
        scale = float(np.maximum(np.abs(box.lo), np.abs(box.hi)).max()) or 1.0
    bnds = interval_bounds(net, x, box)
    if tighten == "lp":
        deadline = inp.t_start + 0.5 * inp.time_limit
        bnds = lp_tighten(net, x, box, bnds, deadline=deadline)
    out_lo, out_hi = bnds[-1]
    if inp.s * (out_lo[0] if inp.s > 0 else out_hi[0]) > 0:  # no sign change in the box
        return MipSolution("infeasible", None, math.inf, math.inf, 0, "none", 0.0)
    remaining = inp.time_limit - (time.perf_counter() - inp.t_start)
    if remaining <= 0:
        return None
    return milp_encode(net, x, inp.s, box, bnds), scale, remaining


# --- 3. solve: the solver on the search box, re-solved where its answer calls for it

def _solve_once(inp: _Input, r: float, tighten: str) -> tuple[MipSolution | None, str]:
    """:func:`encode` and the solver (HiGHS for l1 / linf, SCIP for l2) on radius ``r``:
    ``(solution or None where no time was left, backend)``."""
    enc = encode(inp, r, tighten)
    if enc is None:
        return None, "none"
    if isinstance(enc, MipSolution):
        return enc, "none"
    enc, scale, remaining = enc
    if inp.norm == "l2":
        return solve_scip(enc, r, scale, remaining, inp.rel_gap), "scip"
    return solve_highs(enc, inp.norm, r, scale, remaining, inp.rel_gap), "highs"


def solve(inp: _Input, best: Witness | None, attack_dist: float | None, r: float
          ) -> tuple[MipSolution | None, str, Witness | None, float]:
    """Step 3: solve on radius ``r``; an l1 / l2 optimum beyond it (not proven) or far inside
    a large default box (loose big-M, coarse tolerances) is certified and solved again on the
    box of its radius; an infeasible answer despite a verified point is retried once on a
    looser box with interval bounds. Returns ``(solution, backend, best witness, radius)``."""
    sol, backend = _solve_once(inp, r, inp.tighten)
    if sol is not None and sol.status == "optimal" and sol.delta is not None and (
            sol.objective > r or (attack_dist is None and sol.objective < 0.5 * r)):
        cand = certify(inp, inp.x + sol.delta, sol.pattern)
        if cand is not None:
            best = cand
            r = inp.dist(cand[1]) * (1.0 + 1e-9) + 1e-12
            sol, backend = _solve_once(inp, r, inp.tighten)
    if sol is not None and sol.status == "infeasible" and best is not None:
        # contradicts the attack's verified point: retry once, looser box, interval bounds
        r = r * (1.0 + 1e-6) + 1e-9
        sol, backend = _solve_once(inp, r, "interval")
        if sol is not None and sol.status == "infeasible":
            raise RandadvError("the solver reports no sign change although an adversarial "
                               "point exists: numerical trouble in the MILP")
    return sol, backend, best, r


# --- 4. certify: verified witnesses, by the attacks' verification rule

def _rounding_bound(inp: _Input, p: np.ndarray, fp: float, g: np.ndarray) -> float:
    """The verification rule's rounding bound of the model (in x's dtype) at ``p``
    (:func:`randadv.protocol.rounding_bound_of`)."""
    return float(rounding_bound_of(torch.tensor([fp]), torch.from_numpy(g)[None],
                                   torch.from_numpy(p)[None], dtype=inp.native)[0])


def _push_across(inp: _Input, cand: np.ndarray, allow_weak: bool = False) -> Witness | None:
    """Push ``cand`` along ``cand - x`` (by at most 0.1%) until it passes the verification
    rule of every reported example (:func:`randadv.protocol.verified_flip`: ``s f <= -B``, B
    the rounding bound of the forward pass after rounding to x's dtype, here at least
    ``margin |f(x)|``). ``allow_weak``: else accept the first point on the boundary,
    ``s f <= B`` (f = 0 up to rounding, e.g. where the boundary is only touched or on the box
    boundary)."""
    x, s, native = inp.x, inp.s, inp.native
    eps_t = 1e-15 if native == torch.float64 else 1e-7
    v = cand - x
    t = 1.0
    weak = None
    for k in range(40):
        p_t = torch.as_tensor(np.clip(x + t * v, inp.lo, inp.hi), dtype=native)
        p = p_t.to(torch.float64).numpy()
        fp = float(inp.check(p)[0])
        _, g = inp.net.value_and_grad(p)
        bnd = _rounding_bound(inp, p, fp, g)
        need = max(inp.margin_abs, bnd)
        if bool(verified_flip(fp, s, bnd, inp.margin_abs)) or (fp == 0.0 and not np.any(g)):
            return p_t.reshape(inp.row.shape).clone(), p, fp
        if weak is None and s * fp <= bnd:
            weak = (p_t.reshape(inp.row.shape).clone(), p, fp)
        slope = s * float(g @ v)
        step = (s * fp + need) / -slope * 1.01 if slope < 0 else 0.0
        t += max(step, t * eps_t) * 2.0**k
        if t > 1.001:
            break
    return weak if allow_weak else None


def _closer(inp: _Input, a: Witness | None, b: Witness | None) -> Witness | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if inp.dist(a[1]) <= inp.dist(b[1]) else b


def certify(inp: _Input, point: np.ndarray | None, pattern: list[np.ndarray] | None
            ) -> Witness | None:
    """A verified witness near ``point``: the point pushed slightly across, or the exact
    closest point of its linear region ``pattern`` shrunk by a tiny slack with
    ``s f <= -margin`` (removes solver tolerance errors; the slack is larger for float32
    inputs, whose rounding moves pre-activations by ~1e-7); where neither passes, a point on
    the boundary (f = 0 up to rounding) of the region or along ``point``."""
    net, x, s, norm = inp.net, inp.x, inp.s, inp.norm
    best_c = _push_across(inp, point) if point is not None else None
    if pattern is not None:
        f_lo, f_hi = f_range(net, pattern, x, s, inp.margin_abs)
        zs = 1.0 + float(np.abs(x).max())
        slacks = (1e-9, 1e-7, 0.0) if inp.native == torch.float64 else (1e-7, 1e-5, 1e-3)
        for slack in slacks:
            p, _, _ = closest_in_pattern(net, pattern, x, norm, inp.lo, inp.hi, f_lo, f_hi,
                                         slack=slack * zs)
            if p is not None and (c := _push_across(inp, p)) is not None:
                best_c = _closer(inp, best_c, c)
                break
    if best_c is None and pattern is not None:
        # no strictly adversarial point in the region (the boundary is only touched, f >= 0
        # around it): its closest point of s f <= 0, on the boundary up to rounding
        f_lo, f_hi = (-np.inf, 0.0) if s > 0 else (0.0, np.inf)
        p, _, _ = closest_in_pattern(net, pattern, x, norm, inp.lo, inp.hi, f_lo, f_hi)
        if p is not None:
            best_c = _push_across(inp, p, allow_weak=True)
    if best_c is None and point is not None:
        best_c = _push_across(inp, point, allow_weak=True)
    return best_c


def certify_solution(inp: _Input, sol: MipSolution | None, backend: str,
                     best: Witness | None, attack_dist: float | None, r: float,
                     strict: bool) -> ExactDistance:
    """Step 4: the solver's point certified (:func:`certify` on its region) and compared with
    the best witness; a solver point better than every verified one that fails the check
    raises :class:`UnverifiedWitnessError` (``strict``) or is returned unverified. Returns
    the :class:`ExactDistance`."""
    x, row = inp.x, inp.row
    milp_time = sol.solve_time if sol is not None else 0.0
    n_bin = sol.n_binaries if sol is not None else 0
    unverified: np.ndarray | None = None
    if sol is not None and sol.delta is not None:
        cand = certify(inp, x + sol.delta, sol.pattern)
        if cand is not None:
            best = _closer(inp, best, cand)
        elif best is None or sol.objective < inp.dist(best[1]) * (1 - 1e-6):
            # the solver's point is better than every verified one but fails the check
            if strict:
                raise UnverifiedWitnessError(
                    f"the solver's point (distance {sol.objective:.6g}) is not on the other "
                    "side for the model's forward pass; try a larger margin")
            unverified = x + sol.delta
    status = "time_limit" if sol is None else sol.status
    lower = 0.0 if sol is None else sol.lower_bound
    common = dict(n_binaries=n_bin, search_radius=r, milp_time=milp_time, backend=backend)
    if status == "infeasible":
        lower = r if math.isfinite(r) else math.inf
        return _result(inp, distance=math.inf, x_adv=None, status="infeasible",
                       lower_bound=lower, upper_bound=math.inf, f_adv=None, verified=True,
                       attack_distance=None, **common)
    if unverified is not None:
        pt = torch.as_tensor(unverified, dtype=inp.native).reshape(row.shape)
        d_u = inp.dist(unverified)
        upper = inp.dist(best[1]) if best is not None else math.inf
        return _result(inp, distance=d_u, x_adv=pt, status=status, lower_bound=min(lower, d_u),
                       upper_bound=upper, f_adv=float(inp.check(unverified)[0]),
                       verified=False, attack_distance=attack_dist, **common)
    if best is None:
        return _result(inp, distance=math.inf, x_adv=None, status="time_limit",
                       lower_bound=lower, upper_bound=math.inf, f_adv=None, verified=True,
                       attack_distance=attack_dist, **common)
    dist = inp.dist(best[1])
    return _result(inp, distance=dist, x_adv=best[0], status=status,
                   lower_bound=min(lower, dist), upper_bound=dist, f_adv=best[2],
                   verified=True, attack_distance=attack_dist, **common)
