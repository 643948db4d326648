"""Common ground of the minimum-norm attacks: the result type, input checks, the box, gradients,
keeping the best candidate per input, and the final verification.

Every minimum-norm attack of randadv returns a :class:`ClosestResult` built by
:func:`finalize`, which sends every candidate through
:func:`randadv.attacks.verify.verified_adversarial` (a forward pass, with a small documented
push across the boundary): no unverified point is ever reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from randadv.attacks.checks import check_attack_input, scalar_output
from randadv.attacks.single_step import value_and_grad  # noqa: F401  (re-exported)
from randadv.attacks.verify import rounding_bound_of, verified_adversarial
from randadv.errors import InvalidInputError
from randadv.protocol.adversarial import is_adversarial, verified_flip
from randadv.protocol.box import check_box
from randadv.protocol.norms import check_norm, lp_norm
from randadv.protocol.piecewise import PiecewiseLinearStack
from randadv.protocol.result import AdversarialResult

Box = tuple[torch.Tensor, torch.Tensor]


@dataclass(kw_only=True)
class ClosestResult(AdversarialResult):
    """Result of a minimum-norm attack (:func:`randadv.attacks.closest_adversarial`, FMN, DDN,
    DeepFool, FAB) on a batch of B inputs: the one result type
    (:class:`randadv.protocol.result.AdversarialResult`) with (B,) tensors, plus
    ``exact_region``.

    Attributes:
        x_adv: (B, ...) adversarial examples, dtype of x; equal to x where ``success`` is False.
        distance: (B,) ``||x_adv - x||_p`` in the requested norm; inf where not ``success``.
        success: (B,) ``sign f(x_adv) != sign f(x)`` (f(x_adv) = 0 does not count), from the
            verifying forward pass.
        f_x: (B,) f(x).
        f_adv: (B,) f(x_adv) from the verifying forward pass.
        norm: ``"l1"``, ``"l2"`` or ``"linf"``.
        exact_region: (B,) True where x_adv is the exact closest boundary point of the linear
            region it was refined in (the region LP/QP of :func:`closest_adversarial`'s step 4
            was solved there; up to the verification push). Not a global optimality claim.
        method: the attack that produced the points (a str for the whole batch): the stages
            of :func:`closest_adversarial` that ran joined by ``"+"`` (e.g.
            ``"ray+fmn+region"``), or ``"fmn"``, ``"ddn"``, ``"fab"``, ``"deepfool"``.
        rounding_bound: (B,) the bound on the forward pass's rounding error the flip was
            checked against (:func:`randadv.attacks.verify.rounding_bound`); ``|f_adv| /
            rounding_bound`` is the verified margin (:attr:`verified_margin`). NaN where there
            was no candidate.
        propagations: (B,) model propagations spent per input (forwards + backwards of that
            input, AttackBench's count; :mod:`randadv.attacks.budget`), verification included;
            None from constructors that do not count.

    Paper:
        De Palma, Kiani, Lloyd 2021, Section 4 (the l_p distance from each input to the
        closest point on the other side of sign f).

    Example:
        >>> import torch
        >>> from randadv.attacks import fmn
        >>> net = torch.nn.Linear(2, 1)                    # f(x) = 3 x1 + 4 x2 - 5
        >>> net.weight.data, net.bias.data = torch.tensor([[3.0, 4.0]]), torch.tensor([-5.0])
        >>> r = fmn(net, torch.tensor([[0.0, 0.0], [1.0, 1.0]]), "l2")   # exact: 1 and 0.4
        >>> r
        ClosestResult(norm=l2, n=2, success=2/2, median distance=0.4, method='fmn')
        >>> len(r), r.success_rate, [round(d, 3) for d in r.distance.tolist()]
        (2, 1.0, [1.0, 0.4])
        >>> r.f_x.tolist(), bool((torch.sign(r.f_adv) != torch.sign(r.f_x)).all())
        ([-5.0, 2.0], True)
        >>> bool((r.verified_margin > 1).all()), r.exact_region.tolist()
        (True, [False, False])
    """

    exact_region: torch.Tensor

    def __len__(self) -> int:
        return int(self.distance.shape[0])

    @property
    def success_rate(self) -> float:
        return float(self.success.float().mean())

    def __repr__(self) -> str:
        n = len(self)
        d = self.distance[self.success]
        med = f"{float(d.median()):.4g}" if d.numel() else "nan"
        return (f"ClosestResult(norm={self.norm}, n={n}, success={int(self.success.sum())}/{n}, "
                f"median distance={med}, method={self.method!r})")


def prepare(model: nn.Module, x: torch.Tensor, norm: str, bounds, graph: bool = False
            ) -> tuple[str, Box | None, torch.Tensor]:
    """Checked ``(norm, box, f(x))``. The box is two tensors of one sample's shape with a
    leading 1 (scalars broadcast); x must lie inside it. With ``graph`` the forward pass
    records autograd on an x that requires grad and f(x) keeps its graph (one backward then
    gives grad f(x) without a second forward)."""
    if not isinstance(model, nn.Module):
        raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_attack_input(x)
    norm = check_norm(norm)
    box = box_of(x, bounds)
    if graph:
        with torch.enable_grad():
            return norm, box, scalar_output(model, x).to(x.dtype)
    with torch.no_grad():
        f_x = scalar_output(model, x).to(x.dtype)
    return norm, box, f_x


def box_of(x: torch.Tensor, bounds) -> Box | None:
    """The box of ``bounds`` (:func:`randadv.protocol.box.check_box`) as two tensors of one
    sample's shape with a leading 1, in x's dtype and device (None for no ``bounds``); x must
    lie inside it."""
    if bounds is None:
        return None
    lo, hi = (t.unsqueeze(0) for t in check_box(bounds, x.shape[1:], x.dtype, x.device))
    if bool(((x < lo) | (x > hi)).any()):
        raise InvalidInputError("x lies outside bounds")
    return lo, hi


def clip(y: torch.Tensor, box: Box | None) -> torch.Tensor:
    return y if box is None else torch.minimum(torch.maximum(y, box[0]), box[1])


def box_slack(y: torch.Tensor, box: Box | None) -> tuple[torch.Tensor | None,
                                                         torch.Tensor | None]:
    """``(lo - y, hi - y)``: the moves the box allows from y (None without a box)."""
    if box is None:
        return None, None
    return box[0] - y, box[1] - y



class Best:
    """The closest adversarial candidate per input among everything offered to it; with a
    ``box``, candidates outside it are refused (the final verification would clip them, which
    can undo the flip and lose the row).

    An attack that has f and grad f at its candidates may offer them too (``value``,
    ``grad``); they are kept with the point (NaN where the point came without them), so that a
    later step that needs them at the best point (the boundary projection) does not pay for
    another forward and backward pass."""

    def __init__(self, x: torch.Tensor, norm: str, box: Box | None = None) -> None:
        self.x, self.norm, self.box = x, norm, box
        self.point = torch.full_like(x, float("nan"))
        self.dist = torch.full((x.shape[0],), float("inf"), dtype=x.dtype, device=x.device)
        self.value = torch.full((x.shape[0],), float("nan"), dtype=x.dtype, device=x.device)
        self.grad = torch.full_like(x, float("nan"))

    def offer(self, cand: torch.Tensor, ok: torch.Tensor, rows: torch.Tensor | None = None,
              value: torch.Tensor | None = None, grad: torch.Tensor | None = None) -> None:
        """Offer candidates ``cand`` (for ``rows`` of x, default all; several per row
        allowed) where ``ok``, optionally with f (``value``) and grad f (``grad``) there."""
        if rows is None:
            rows = torch.arange(cand.shape[0], device=cand.device) % self.x.shape[0]
        d = lp_norm(cand - self.x[rows], self.norm)
        if self.box is not None:
            outside = (cand < self.box[0]) | (cand > self.box[1])
            ok = ok & ~outside.reshape(cand.shape[0], -1).any(1)
        d = torch.where(ok & torch.isfinite(d), d, torch.full_like(d, float("inf")))
        # best candidate of each row among the offered ones
        best_d = torch.full_like(self.dist, float("inf")).scatter_reduce(
            0, rows, d, reduce="amin")
        better = best_d < self.dist
        if not bool(better.any()):
            return
        hit = better[rows] & (d == best_d[rows])
        idx = torch.nonzero(hit).flatten()
        self.point[rows[idx]] = cand[idx]
        self.dist[rows[idx]] = d[idx]
        known = value is not None and grad is not None
        self.value[rows[idx]] = value[idx].to(self.x.dtype) if known else float("nan")
        self.grad[rows[idx]] = grad[idx].to(self.x.dtype) if known else float("nan")

    def value_and_grad(self, model: nn.Module, rows: torch.Tensor,
                       stack: PiecewiseLinearStack | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """f and grad f at the best points of ``rows``: the ones offered with them, a forward
        and backward pass (through ``stack`` if given) for the others."""
        f, g = self.value[rows].clone(), self.grad[rows].clone()
        miss = ~torch.isfinite(f) | ~torch.isfinite(g.reshape(len(rows), -1)).all(1)
        if bool(miss.any()):
            m = torch.nonzero(miss).flatten()
            f[m], g[m] = value_and_grad(model, self.point[rows[m]], stack)
        return f, g


# cap of the linear distance estimate |f| / ||grad f||_2, in units of 1 + ||x||_2: a gradient
# that small carries no direction worth following (it underflows on saturated units), and
# steps scaled by the raw estimate overflowed to inf (inf * 0 = NaN) on a saturated tanh model
LINEAR_ESTIMATE_CAP = 1e6


def linear_distance_estimate(f: torch.Tensor, g: torch.Tensor, x: torch.Tensor
                             ) -> torch.Tensor:
    """``|f| / ||g||_2`` per row, the l2 distance to the tangent hyperplane's zero (DeepFool's
    first step); 1 where g = 0 or f = 0, at most ``LINEAR_ESTIMATE_CAP (1 + ||x||_2)``."""
    g2 = lp_norm(g, "l2")
    est = f.abs() / g2.clamp_min(torch.finfo(g2.dtype).tiny)
    est = torch.where((g2 > 0) & (est > 0) & torch.isfinite(est), est, torch.ones_like(est))
    return torch.minimum(est, LINEAR_ESTIMATE_CAP * (1 + lp_norm(x, "l2")))


def gradient_stack(model: nn.Module, stack: PiecewiseLinearStack | None
                   ) -> PiecewiseLinearStack | None:
    """``stack`` if backpropagating through it is no dearer than through the model: dense maps
    with at most twice the model's weights (a ReLU MLP, whose stack is its own matrices: no
    autograd graph, about 25% less time per FMN call on the zoo fc net), else None (densified
    convolutions are far larger than their kernels)."""
    if stack is None or stack.rmaps is None or stack.n_weights is None:
        return None
    own = sum(p.numel() for p in model.parameters() if p.dim() >= 2)
    return stack if stack.n_weights <= 2 * own else None


def finalize(model: nn.Module, x: torch.Tensor, best: Best, f_x: torch.Tensor, norm: str,
             box: Box | None, exact_region: torch.Tensor | None = None,
             method: str = "closest", propagations: torch.Tensor | None = None
             ) -> ClosestResult:
    """Verify every candidate by a forward pass (:func:`verified_adversarial`) and measure;
    ``model`` may be a :class:`randadv.attacks.budget.PropagationCounter`, whose counts after
    the verification become ``propagations``."""
    from randadv.attacks.budget import PropagationCounter

    point, bound = best.point, None
    if isinstance(model, PropagationCounter):
        point, bound = _bound_within_budget(model, best)
    if isinstance(model, PropagationCounter) and math.isfinite(model.budget):
        x_adv, success, f_adv, bound = _verified_within_budget(model, x, point, f_x, box, bound)
    else:
        x_adv, success, f_adv, bound = verified_adversarial(model, x, point, f_x, box,
                                                            bound=bound)
    dist = lp_norm(x_adv - x, norm)
    dist = torch.where(success, dist, torch.full_like(dist, float("inf")))
    if exact_region is None:
        exact_region = torch.zeros_like(success)
    return ClosestResult(x_adv=x_adv, distance=dist, success=success, f_x=f_x, f_adv=f_adv,
                         norm=norm, exact_region=exact_region & success, method=method,
                         rounding_bound=bound,
                         propagations=model.used.clone() if isinstance(model, PropagationCounter)
                         else propagations)


def _verified_within_budget(counter: nn.Module, x: torch.Tensor, point: torch.Tensor,
                            f_x: torch.Tensor, box: Box | None, bound: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`verified_adversarial` under a budget: each point alone (a batch of one is the
    evaluation alone; a candidate already clearly across costs 1 forward), then every accepted
    point once more in one batch (1 forward), where a failure is a failure. In one batch call,
    every accepted point is evaluated again at each push round of any other point, and a
    counter that refuses those passes would revoke points already verified."""
    b = x.shape[0]
    x_adv, f_adv, bnd = x.clone(), f_x.clone().to(x.dtype), bound.clone()
    success = torch.zeros(b, dtype=torch.bool, device=x.device)

    def alone(i: int, candidate: torch.Tensor, skip_candidate: bool = False) -> None:
        # each evaluation is charged to the point's own sample (a point far from its original
        # can lie nearer another one: on the 10-d nets of benchmarks/bench_budget.py the
        # nearest-original rule charged one point's check to another, whose own check was
        # then refused)
        with counter.attributed(torch.tensor([i], device=x.device)):
            xa, ok, fa, bi = verified_adversarial(counter, x[i:i + 1], candidate[i:i + 1],
                                                  f_x[i:i + 1], box, bound=bnd[i:i + 1],
                                                  skip_candidate=skip_candidate)
        x_adv[i], success[i], f_adv[i], bnd[i] = xa[0], ok[0], fa[0], bi[0]

    for i in torch.nonzero(torch.isfinite(point.reshape(b, -1)).all(1)).flatten().tolist():
        alone(i, point)
    acc = torch.nonzero(success).flatten()
    if acc.numel() > 1:
        with counter.attributed(acc):
            f_all = scalar_output(counter, x_adv[acc]).to(x.dtype)
        bad = ~verified_flip(f_all, f_x[acc], bnd[acc])
        rows = acc[bad]
        # a point the batch rounds back within its bound is pushed on from where it was
        # accepted, alone, while its budget lasts (on a 10-16-16-1 net at budget 500 in l1 a
        # region optimum accepted alone at f = 1.004e-6 against a bound of 9.9e-7 came out
        # at 9.2e-7 in the batch, and was lost)
        for i in rows.tolist():
            alone(i, x_adv, skip_candidate=True)
    return x_adv, success, f_adv, bnd


def _bound_within_budget(counter: nn.Module, best: Best) -> tuple[torch.Tensor, torch.Tensor]:
    """The rounding bound of each best point for its verification under a budget: from the f
    and grad f kept with the point (no propagation), else one forward and backward pass of the
    model charged to ``counter`` (a point it has no budget for is dropped: NaN)."""
    b = best.x.shape[0]
    flat = best.grad.reshape(b, -1)
    known = torch.isfinite(best.value) & torch.isfinite(flat).all(1)
    bound = torch.where(known, rounding_bound_of(torch.nan_to_num(best.value),
                                                 torch.nan_to_num(best.grad), best.point),
                        torch.full_like(best.value, float("nan")))
    point = best.point.clone()
    miss = torch.nonzero(~known & torch.isfinite(best.point.reshape(b, -1)).all(1)).flatten()
    if miss.numel():
        with counter.attributed(miss):
            # the pass below runs through the model: a counter around it counts it itself
            got = counter.charge(best.point[miss], 1, 1, nested=False)
        point[miss[~got]] = float("nan")
        miss = miss[got]
        if miss.numel():
            f, g = value_and_grad(counter.model, best.point[miss])
            bound[miss] = rounding_bound_of(f, g, best.point[miss])
    return point, bound


def adversarial(f: torch.Tensor, f_x: torch.Tensor) -> torch.Tensor:
    """Deprecated alias of :func:`randadv.protocol.is_adversarial` (margin 0)."""
    return is_adversarial(f, f_x)
