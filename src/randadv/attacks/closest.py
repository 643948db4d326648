"""The closest adversarial example of a scalar-output model in l1, l2 or l-infinity.

Paper:
    De Palma, Kiani, Lloyd, "Adversarial robustness guarantees for random deep neural
    networks", ICML 2021 (Section 4: the l_p distance of the closest adversarial example of
    random networks, Figures 1-2).

Distance: l1, l2, linf.

Pipeline (all batched over inputs and starts; only the exact region step loops over inputs):

1-2. FMN (Pintor et al. 2021) from x, ``steps`` iterations: the main search (an adaptive l_p
   radius and l2-normalised gradient steps; default). Optionally DeepFool in l_p
   (Moosavi-Dezfooli et al. 2016), FAB (Croce & Hein 2020) and DDN (Rony et al. 2019, l2).
   Inputs none of them flips get an l2 DeepFool point (any adversarial point is a candidate in
   every norm), and where that fails too (a gradient that vanishes at x or on the way: dead
   ReLU regions, saturated units) the first boundary crossing along random rays from x
   (:func:`_fallback_rays`). With ``n_starts > 1`` the iterative attacks also run from
   ``n_starts - 1`` random points of the l_p ball of half the best distance so far. The
   closest adversarial iterate per (input, start) is kept.
3. Boundary projection: at the best point y, project x onto the tangent hyperplane of f at y
   (exact l_p projection inside the box); for ReLU networks randadv can read, walk the ray from
   x towards it, inside the box, to its first boundary crossing (exact region walk, see
   :mod:`randadv.attacks.segment`), for other models try the projection itself (pushed just
   across, one forward pass); repeat while it gets closer. Where the projection stays in y's
   linear region this is the exact closest boundary point of that region (l2 and the
   hyperplane's l1/linf projection alike; exact on linear models).
4. Exact region refinement (``refine``; ReLU networks that :func:`randadv.exact.to_affine_layers`
   can convert and that are small enough): the closest point of the boundary within the
   linear region of the best point, an LP for l1/linf and a projection / QP for l2
   (:func:`randadv.exact.closest_in_region`), then the neighbouring regions across its tight
   neurons while it improves (local search over regions).
4b. Radial shrink (:func:`radial_shrink`): each best point moves to the first boundary
   crossing of its own segment from x (after step 4, whose search starts from the attack's point).
5. Verification: every reported point passes
   :func:`randadv.attacks.verify.verified_adversarial` (forward passes in the batch and alone;
   a boundary point is pushed along ``x_adv - x`` until |f| exceeds the forward pass's rounding
   bound, :func:`randadv.attacks.verify.rounding_bound`).

ReLU MLPs (randadv's, a ``nn.Sequential`` of Linear/ReLU, the zoo's fc net) are read as
piecewise-linear stacks: FMN backpropagates through their matrices without autograd
(:func:`randadv.attacks.min_norm.gradient_stack`) and steps 3 and 4b walk their rays exactly.

Every distance found is an upper bound of the true minimal distance (the point is a verified
adversarial example); on small ReLU networks :func:`randadv.exact.min_distance` gives the exact
value to compare with.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from randadv.attacks.base import AttackProblem, Found, MinNormAttack
from randadv.attacks.budget import VERIFY_RESERVE, PropagationCounter
from randadv.attacks.ddn import ddn_candidates
from randadv.attacks.deepfool import deepfool_candidates
from randadv.attacks.fab import fab_candidates, fab_starts
from randadv.attacks.fmn import REACH as FMN_REACH
from randadv.attacks.fmn import fmn_candidates
from randadv.attacks.line_search import first_root_bracketed
from randadv.attacks.lp_geometry import hyperplane_step
from randadv.attacks.min_norm import Best, Box, ClosestResult, box_slack
from randadv.attacks.piecewise_linear import first_root_on_ray
from randadv.attacks.segment import first_boundary_crossing
from randadv.attacks.verify import verified_adversarial, verified_flip_along
from randadv.errors import InvalidInputError
from randadv.nets.seeding import generator as seeded_generator
from randadv.protocol.norms import lp_norm
from randadv.protocol.piecewise import PiecewiseLinearStack, read_piecewise_linear

__all__ = ["ClosestAdversarial", "ClosestResult", "budget_plan", "closest_adversarial"]

METHODS = ("deepfool", "fab", "fmn", "ddn")
MIN_FMN_STEPS = 30                # FMN's cosine schedules need about this many steps
# affine-layer weights above which refine="auto" skips the region LP (l1, linf) / QP (l2): on the
# zoo fc net at n = 432 (53k weights, 8 points) the LPs took 3.4-4.3 s and the QPs 61 s against
# 0.05-0.07 s for the attack, for a median gain below 0.1%
MAX_EXACT_ENTRIES = 20_000
# a tangent projection of a model randadv cannot walk exactly is dropped when its first pushed
# point has |f| above this fraction of |f(x)| (see verified_flip_along's give_up): on the zoo
# ResNet no projection ever flipped and the three further pushes cost about 1.2 gradient steps
PROJECTION_GIVE_UP = 1e-2
# the random-ray fallback for inputs no gradient attack flips (see _fallback_rays): rays per
# input, their grid for models randadv cannot walk exactly, and their length without a box
FALLBACK_RAYS = 16
FALLBACK_GRID = 64
FALLBACK_REACH = 16.0


class ClosestAdversarial(MinNormAttack):
    """:func:`closest_adversarial` as a :class:`randadv.attacks.base.MinNormAttack`:
    ``ClosestAdversarial(n_starts=4)(model, x, "l1", (0, 1), budget=200)`` returns a
    :class:`ClosestResult`; the call's arguments (``model``, ``x``, ``norm``, ``bounds``,
    ``budget``) as in :func:`closest_adversarial`. It keeps its own reserves
    (:func:`budget_plan`), so :attr:`reserve` is 0.

    Paper:
        De Palma, Kiani, Lloyd 2021, Section 4 (the closest adversarial example in l1, l2,
        linf); the stages' papers as in :func:`closest_adversarial`.

    Arguments:
        seed: seed of the random starts (a private generator).
        n_starts: starts per input of the iterative attacks.
        steps: iterations per start; None: 30, or with a ``budget`` as many as fit.
        methods: attack families of steps 1-2 (None: ``("fmn",)``).
        refine: exact region refinement: True, False or ``"auto"``.
        projection_steps: rounds of boundary projection.
        max_region_solves: LPs/QPs per input of the region refinement.
        input_shape: a conv ``nn.Sequential``'s input shape where it differs from
            ``x.shape[1:]``.

    Example:
        The zoo's LeNet on 1 x 8 x 8 images with pixels in [0, 1], in linf, with two starts
        per input and at most 100 propagations per input:

        >>> from randadv.attacks import ClosestAdversarial
        >>> from randadv.nets import build_architecture, uniform_images
        >>> lenet = build_architecture("lenet", 8, channels=1, seed=0)
        >>> images = uniform_images(3, 8, "closest", 0, channels=1)
        >>> attack = ClosestAdversarial(n_starts=2)
        >>> r = attack(lenet, images, "linf", (0, 1), budget=100)
        >>> r.success.tolist(), r.method, bool((r.propagations <= 100).all())
        ([True, True, True], 'fmn+projection', True)
        >>> in_box = ((r.x_adv >= 0) & (r.x_adv <= 1)).all()
        >>> bool(in_box), bool((r.verified_margin > 1).all())   # flips past the rounding bound
        (True, True)
    """

    name = "closest"
    # the pipeline keeps its own reserves (:func:`budget_plan`)
    reserve = 0

    def __init__(self, *, seed: int = 0, n_starts: int = 1, steps: int | None = None,
                 methods: Sequence[str] | None = None, refine: bool | str = "auto",
                 projection_steps: int = 2, max_region_solves: int = 20,
                 input_shape: Sequence[int] | None = None) -> None:
        self.seed, self.n_starts, self.steps, self.methods = seed, n_starts, steps, methods
        self.refine, self.projection_steps = refine, projection_steps
        self.max_region_solves, self.input_shape = max_region_solves, input_shape

    def keeps_start_graph(self) -> bool:
        # FMN's first step from x is the gradient of the f(x) pass
        return "fmn" in self._methods()

    def _methods(self) -> Sequence[str]:
        return ("fmn",) if self.methods is None else self.methods

    def search(self, problem: AttackProblem) -> Found:
        seed, n_starts, steps, methods = self.seed, self.n_starts, self.steps, self.methods
        refine, projection_steps = self.refine, self.projection_steps
        counter, norm, box = problem.counter, problem.norm, problem.box
        # the pipeline's budget; what a budget has past CAP_BUDGET goes to continuation rounds
        full = counter.budget
        base = min(full, CAP_BUDGET) if problem.budget_given else full
        small = base < SMALL_BUDGET or (
            base < SHORT_BUDGET and not _may_refine(problem.net, refine))
        if methods is None:
            # FMN at every budget and norm: in l1 below SMALL_BUDGET FAB was the default until
            # FMN's first step reached past the linearised boundary (fmn.REACH) and its points
            # needed no push at the verification; at budget 20, 3 nets x 20 points, FMN's
            # median l1 distance / adv-lib FAB's was 1.0001 on the zoo fc net (FAB's own
            # 98% verified), 0.867 on the zoo ResNet (FAB's 85% verified), 1.003 on the
            # 10-16-16-1 nets (benchmarks/budget_probe.py)
            methods = self._methods()
        bad = [m for m in methods if m not in METHODS]
        if bad or not methods:
            raise InvalidInputError(f"methods must be a non-empty subset of {METHODS}, got "
                                    f"{list(methods)}")
        if "ddn" in methods and norm != "l2":
            raise InvalidInputError("DDN is an l2 attack; drop 'ddn' from methods for "
                                    f"norm={norm!r}")
        if refine not in (True, False, "auto"):
            raise InvalidInputError(f"refine must be True, False or 'auto', got {refine!r}")
        for name, v, least in (("n_starts", n_starts, 1),
                               ("steps", 1 if steps is None else steps, 1),
                               ("projection_steps", projection_steps, 0)):
            if not isinstance(v, int) or isinstance(v, bool) or v < least:
                raise InvalidInputError(f"{name} must be an integer >= {least}, got {v!r}")
        if small:
            projection_steps, refine = 0, False
        grad_x = counter.gradient_at_x() if "fmn" in methods else None
        # below SMALL_BUDGET the propagation the shared f(x) pass saves buys a step; above,
        # it stays with the reserve of steps 3-5 (taken as a step there, the zoo-like
        # 20-32-32-1 net of tests/test_budget.py at budget 300 had a point whose
        # verification found no propagation left)
        plan = budget_plan(base, methods, n_starts, projection_steps,
                           shared_fx=grad_x is not None and small, short=small)
        if steps is None:
            steps = plan[0]
        min_fmn = MIN_FMN_STEPS if not problem.budget_given else 1
        # the verification reports on the detached inputs too
        problem.x = x = problem.x.detach()
        gen = torch.Generator(device=x.device).manual_seed(int(seed))
        b, s = x.shape[0], n_starts
        # one candidate per (start, input): row j * B + i of the expanded batch
        rep = problem.repeated(s)
        per = rep.best()
        first = torch.arange(b, device=x.device)
        with torch.no_grad():
            stack, grads = problem.stack, problem.grads
            with counter.limited(base - plan[1]):
                _candidates(problem, per, x, methods, steps, first, grads, min_fmn, grad_x)
                _fallback_l2(problem, per)
                _fallback_rays(problem, per, stack, seed)
                if s > 1:
                    radius = 0.5 * per.dist[:b]
                    starts = fab_starts(x, s, radius, norm, box, gen)[b:]
                    _candidates(rep.take(slice(b, None)), per, starts,
                                [m for m in methods if m in ("fab", "fmn")] or ["fab"], steps,
                                torch.arange(b, s * b, device=x.device), grads, min_fmn)
            # the points of steps 3-4b come without f and grad f: their verification also pays
            # for the rounding bound (2) at the point
            with counter.limited(base - plan[1] if small else base - VERIFY_RESERVE - 2):
                if projection_steps > 0:
                    boundary_projection(rep, per, projection_steps, stack, grad_stack=grads)
                exact_s = torch.zeros(s * b, dtype=torch.bool, device=x.device)
                if refine:
                    exact_s = exact_region_refinement(rep, per, self.max_region_solves,
                                                      self.input_shape,
                                                      required=refine is True)
                    if projection_steps > 0 and bool(exact_s.any()):
                        before = per.dist.clone()
                        boundary_projection(rep, per, 2, stack, grad_stack=grads)
                        exact_s &= per.dist >= before
                if projection_steps > 0:
                    # after the region refinement: its LP / QP search starts from the attack's
                    # own point (started from the shrunk point it ended worse on 8 of 96
                    # small-net l1 inputs)
                    before = per.dist.clone()
                    radial_shrink(rep, per, stack)
                    # a region optimum stays one up to its verification push (relative 1e-9)
                    exact_s &= per.dist >= before * (1 - 1e-6)
            rounds = 0
            if full > base and "fmn" in methods:
                before = per.dist.clone()
                rounds = continuation_rounds(rep, per, full - VERIFY_RESERVE - 2, grads)
                exact_s &= per.dist >= before
            best = problem.best()
            best.offer(per.point, torch.isfinite(per.dist),
                       torch.arange(s * b, device=x.device) % b, value=per.value, grad=per.grad)
            # exact_region of the chosen start
            chosen = per.dist.view(s, b) == best.dist.view(1, b)
            exact = (chosen & exact_s.view(s, b)).any(0)
        stages = list(methods) + ["projection"] * (projection_steps > 0)
        if refine is True or bool(exact_s.any()):
            stages.append("region")
        stages += ["continuation"] * (rounds > 0)
        return Found(best, "+".join(stages), exact)


def closest_adversarial(model: nn.Module, x: torch.Tensor, norm: str = "l2",
                        bounds: tuple | None = None, *, seed: int = 0, n_starts: int = 1,
                        steps: int | None = None, methods: Sequence[str] | None = None,
                        refine: bool | str = "auto", projection_steps: int = 2,
                        max_region_solves: int = 20, input_shape: Sequence[int] | None = None,
                        budget: int | None = None) -> ClosestResult:
    """The closest adversarial example of ``x`` for the decision sign f(x) of ``model``.

    Paper:
        De Palma, Kiani, Lloyd 2021, Section 4 and Figures 1-2 (the l_p distance of the closest
        adversarial example of random deep networks); attacks of Moosavi-Dezfooli et al.
        (2016), Croce & Hein (2020), Pintor et al. (2021), Rony et al. (2019); exact region
        refinement as in FAB / GeoCert (Jordan et al. 2019).

    Distance: l1, l2, linf (``norm``).

    Arguments:
        model: torch module returning one scalar f per input ((B,) or (B, 1)); a two-logit
            classifier is one model of the logit difference. Rows must be independent.
        x: inputs (B, ...), floating point; float64 stays float64 (the model must accept it).
        norm: ``"l1"``, ``"l2"`` or ``"linf"``.
        bounds: optional box ``(lo, hi)`` (scalars or tensors of one input's shape) that
            x_adv must respect (e.g. ``(0, 1)`` for images); x must lie in it.
        seed: seed of the random starts (private ``torch.Generator``; no global RNG effect).
        n_starts: starts per input of the iterative attacks (x itself plus random ones in the
            l_p ball of half the distance found from x); each start's best point is refined
            (steps 3-4) and the closest kept. Default 1 (speed); 3-8 find the global optimum
            more often on small networks (see tests/test_closest.py and the benchmark).
        steps: iterations per start of FAB and DDN, and of FMN with at least 30 (its annealed
            radius and step schedules need about that many); DeepFool runs up to
            ``max(steps, 50)`` and stops at its first adversarial point. Default 30; with a
            ``budget``, as many as fit in it (:func:`budget_plan`; no minimum of 30 then).
        methods: attack families of steps 1-2 among ``"deepfool"``, ``"fab"``, ``"fmn"``,
            ``"ddn"`` (l2 only); default ``("fmn",)`` (as good as FMN and DDN with 100 steps
            at 30 in benchmarks/bench_closest.py); below :data:`SMALL_BUDGET` (40), and below
            :data:`SHORT_BUDGET` (60) on a net too large for the region refinement, no steps
            3-4b. Inputs none of them flips get an l2
            DeepFool point as a start (any adversarial point is a candidate in every norm),
            then random rays from x (a gradient that vanishes gives no direction).
        refine: exact region refinement (step 4): True, False, or ``"auto"`` (when the model
            is a ReLU network :func:`randadv.exact.to_affine_layers` converts with at most
            2e4 weights, ``MAX_EXACT_ENTRIES``; ``True`` refines any size).
        projection_steps: rounds of boundary projection (step 3); a row stops at its first
            round that does not get closer.
        max_region_solves: LPs/QPs per input in step 4.
        input_shape: unused unless the model is a conv ``nn.Sequential`` whose input shape
            differs from ``x.shape[1:]``.
        budget: model propagations per input: each forward and each backward pass of an
            input counts 1 (AttackBench, Cina et al. 2024), the f(x) pass, gradients through a
            ReLU MLP's own matrices (1 + 1) and exact ray walks on them (2) included, and the
            final verification inside it too: ``propagations <= budget`` for every input (a
            :class:`randadv.attacks.budget.PropagationCounter` around the model cuts each input
            off there). The steps follow from it (:func:`budget_plan`); past
            :data:`CAP_BUDGET` (500) the pipeline runs as at 500 and spends the rest on
            :func:`continuation_rounds` (no input ends farther than at 500). The exact region
            refinement (step 4) reads the weights and calls the model only to verify (counted).
            Default None: no limit, the pipeline above with ``steps=30``, which spends 73-80
            propagations per input (measured on the zoo's fc and resnet at n = 432, 8 inputs,
            every norm: 1 + 2 x 31 for f(x) and FMN, the rest projection, shrink and
            verification).

    Returns:
        A :class:`ClosestResult` for x (B, ...): ``x_adv`` (B, ...), ``distance``,
        ``success``, ``f_x``, ``f_adv``, ``exact_region``, ``rounding_bound``,
        ``propagations`` (B,) and ``method`` (the stages that ran, e.g.
        ``"fmn+projection+region"``; ``region`` only where the exact region refinement ran).
        Rows with f(x) = 0 have no side to leave: ``success`` False, ``distance`` inf.

    Raises:
        InvalidInputError: bad x, norm, bounds (x outside them) or method.
        ModelOutputError: the model does not return one finite scalar per input.

    Example:
        On a small random ReLU net it finds the exact distance
        (:func:`randadv.exact.min_distance`); with a ``budget`` below :data:`SMALL_BUDGET` it
        runs FMN alone, within the budget, for a verified upper bound:

        >>> import torch
        >>> from randadv.attacks import closest_adversarial
        >>> from randadv.exact import min_distance
        >>> from randadv.nets import RandomMLP
        >>> net = RandomMLP([4, 8], seed=2, dtype=torch.float64)
        >>> x = torch.rand(3, 4, dtype=torch.float64)
        >>> exact = torch.tensor([e.distance for e in min_distance(net, x, "l1", bounds=(0, 1))])
        >>> r = closest_adversarial(net, x, "l1", bounds=(0, 1))
        >>> r.method, r.exact_region.tolist()
        ('fmn+projection+region', [True, True, True])
        >>> bool(((r.distance - exact).abs() < 1e-6 * exact).all())
        True
        >>> cheap = closest_adversarial(net, x, "l1", bounds=(0, 1), budget=30)
        >>> cheap.method, cheap.success.tolist(), bool((cheap.propagations <= 30).all())
        ('fmn', [True, True, True], True)
        >>> bool((cheap.distance >= (1 - 1e-6) * exact).all())   # exact: a 1e-7 margin across
        True
    """
    return ClosestAdversarial(
        seed=seed, n_starts=n_starts, steps=steps, methods=methods, refine=refine,
        projection_steps=projection_steps, max_region_solves=max_region_solves,
        input_shape=input_shape)(model, x, norm, bounds, budget=budget)


def _candidates(problem: AttackProblem, best: Best, starts: torch.Tensor,
                methods: Sequence[str], steps: int, rows: torch.Tensor,
                grads: PiecewiseLinearStack | None, min_fmn: int = MIN_FMN_STEPS,
                grad_x: torch.Tensor | None = None) -> None:
    """Steps 1-2: the attack families ``methods`` from ``starts`` (x's rows, or random starts
    for the iterative ones), offering their adversarial iterates to ``best`` at ``rows``; FMN
    backpropagates through ``grads`` if given, and starts from ``grad_x`` (grad f at x, where
    ``starts`` are x) if given."""
    if "deepfool" in methods:
        pts, found = deepfool_candidates(problem, steps=max(steps, 50))
        best.offer(pts, found, rows)
    if "fmn" in methods:
        fmn_candidates(problem, best, starts, max(steps, min_fmn), rows=rows, stack=grads,
                       clear=problem.budget_given, grad_x=grad_x,
                       reach=FMN_REACH if problem.budget_given else 0.0,
                       jump=problem.budget_given, finish=problem.budget_given)
    if "fab" in methods:
        fab_candidates(problem, best, starts, steps, rows=rows)
    if "ddn" in methods:
        ddn_candidates(problem, best, steps, rows=rows)


def _fallback_l2(problem: AttackProblem, best: Best) -> None:
    """Inputs (the first B rows of ``best``) with no candidate yet: an l2 DeepFool point
    (valid in every norm)."""
    rows = torch.nonzero(~torch.isfinite(best.dist[:problem.x.shape[0]])).flatten()
    if rows.numel():
        pts, found = deepfool_candidates(problem.take(rows), steps=50, norm="l2")
        best.offer(pts, found, rows)


def _fallback_rays(problem: AttackProblem, best: Best, stack: PiecewiseLinearStack | None,
                   seed: int, n_rays: int = FALLBACK_RAYS) -> None:
    """Inputs (the first B rows of ``best``) that no gradient attack flipped, typically because
    the gradient vanishes at x or at an iterate (dead ReLU regions, saturated units): the
    first boundary crossing along ``n_rays`` random rays from x, to uniform points of a finite
    box, else along Gaussian directions of l2 length ``FALLBACK_REACH (1 + ||x||_2)`` (cut at
    the box's edge); exact walk on ``stack``, else bracketed on a grid of
    ``FALLBACK_GRID`` points (forward passes only, then Newton)."""
    model, x, f_x, box = problem.model, problem.x, problem.f_x, problem.box
    b = x.shape[0]
    rows = torch.nonzero(~torch.isfinite(best.dist[:b]) & (f_x != 0)).flatten()
    if rows.numel() == 0:
        return
    rep = rows.repeat_interleave(n_rays)
    xr = x[rep]
    view = (-1,) + (1,) * (x.dim() - 1)
    gen = seeded_generator(seed, "closest_adversarial", "fallback rays")
    finite_box = box is not None and bool(torch.isfinite(box[0]).all()
                                          & torch.isfinite(box[1]).all())
    if finite_box:
        w = torch.rand(xr.shape, generator=gen, dtype=torch.float64).to(xr)
        u = box[0] + (box[1] - box[0]) * w - xr
    else:
        z = torch.randn(xr.shape, generator=gen, dtype=torch.float64).to(xr)
        reach = FALLBACK_REACH * (1 + lp_norm(xr, "l2"))
        u = z * (reach / lp_norm(z, "l2")).view(view)
        u = u * torch.clamp(ray_box_exit(xr, u, box), max=1.0).view(view)
    if stack is not None:
        # the exact walk reads the model's matrices: charged as two forward passes
        ok = torch.nonzero(model.charge(xr, 2)).flatten()
        rep, xr, u = rep[ok], xr[ok], u[ok]
        if ok.numel() == 0:
            return
    # the segment-crossing search: exact walk on ``stack``, else bracketed (no second
    # inspection of the model)
    crossing = first_boundary_crossing(model, xr, u, 1.0, exact=stack is not None,
                                       n_grid=FALLBACK_GRID, stack=stack, bounds=box)
    best.offer(crossing.x_adv, crossing.crossed, rep)


def boundary_projection(problem: AttackProblem, best: Best, rounds: int,
                        stack: PiecewiseLinearStack | None, n_grid: int = 0,
                        grad_stack: PiecewiseLinearStack | None = None) -> None:
    """Step 3: project x onto the tangent hyperplane of f at the best point (inside the box),
    then take the first boundary crossing of the ray from x towards the projection (exact walk
    on ``stack``), or for other models the projection itself pushed just across (one forward
    pass; with ``n_grid > 0``, where that does not flip, the ray's first crossing bracketed on
    ``n_grid`` points and refined by Newton); every point verified; rows stop when a round
    does not get closer. Gradients through ``grad_stack`` if given."""
    model, x, f_x, norm, box = problem.model, problem.x, problem.f_x, problem.norm, problem.box
    view = (-1,) + (1,) * (x.dim() - 1)
    rows = torch.nonzero(torch.isfinite(best.dist)).flatten()
    for _ in range(rounds):
        if rows.numel() == 0:
            break
        y, xr = best.point[rows], x[rows]
        f, g = best.value_and_grad(model, rows, grad_stack)
        f_lin_x = f + ((xr - y) * g).reshape(len(rows), -1).sum(1)
        lo, hi = box_slack(xr, box)
        d = hyperplane_step(g, -f_lin_x, norm, lo, hi)
        dist = best.dist[rows]
        # u: the direction scaled so that t = 1 is the best distance so far, or the box's edge
        # along d if nearer (the projection x + d lies in the box, but the ray beyond it leaves
        # the box at once on every saturated coordinate: a crossing there is no candidate)
        nd = lp_norm(d, norm)
        scale = dist / nd.clamp_min(torch.finfo(x.dtype).tiny)
        scale = torch.minimum(scale, ray_box_exit(xr, d, box))
        u = d * scale.view(view)
        # rows whose tangent projection is no closer than their best point stop (converged:
        # the ray would cross at t >= 1 to first order)
        ok = torch.isfinite(u.reshape(len(rows), -1)).all(1) & (nd > 0) & (nd < dist)
        rows, xr, u, scale = rows[ok], xr[ok], u[ok], scale[ok]
        if rows.numel() == 0:
            break
        if stack is not None:
            dt = stack.out_w.dtype
            t = first_root_on_ray(stack, xr.to(dt), u.to(dt), 1.0).to(x.dtype)
            t = _charged_walk(model, xr, t)
            t_adv, crossed, x_adv, _ = verified_flip_along(model, xr, u, t, f_x[rows], box)
        else:
            # first the projection itself (t = 1 / scale, pushed just across): exact where it
            # stays in y's linear region, one forward pass
            t = 1.0 / scale
            t_adv, crossed, x_adv, _ = verified_flip_along(model, xr, u, t, f_x[rows], box,
                                                           give_up=PROJECTION_GIVE_UP)
            miss = torch.nonzero(~crossed).flatten()
            if n_grid > 0 and miss.numel():
                # else the first crossing of the ray, bracketed to 1e-6 relative (the point is
                # verified anyway)
                t = first_root_bracketed(model, xr[miss], u[miss], f_x[rows[miss]], 1.0,
                                         n_grid=n_grid, chunk=n_grid, rtol=1e-6)
                _, c2, x2, _ = verified_flip_along(model, xr[miss], u[miss], t,
                                                   f_x[rows[miss]], box)
                crossed[miss], x_adv[miss] = c2, x2
        before = best.dist[rows].clone()
        best.offer(x_adv, crossed, rows)
        improved = best.dist[rows] < before * (1 - 1e-9)
        rows = rows[improved]


def radial_shrink(problem: AttackProblem, best: Best, stack: PiecewiseLinearStack | None
                  ) -> None:
    """Step 4b: move each best point y towards x, to the first boundary crossing of the segment
    from x to y (then pushed just across and verified). An attack's last adversarial iterate
    lies inside the adversarial region (FMN's radius oscillates by its final gamma, 1e-3): on
    the zoo fc net at n = 432 its points were 1e-5 to 2e-3 (median 3e-4) of their distance past
    the crossing of their own segment, in every norm. Exact walk on ``stack``; for other models
    the linear estimate ``t = 1 - f(y) / (grad f(y) . (y - x))`` from the f and grad f kept with
    y (rows without them are skipped: no extra gradient), one forward pass unless it flips.
    The segment lies in the box (both ends do), so no clipping."""
    model, x, f_x, box = problem.model, problem.x, problem.f_x, problem.box
    rows = torch.nonzero(torch.isfinite(best.dist)).flatten()
    if stack is None and rows.numel():
        known = torch.isfinite(best.value[rows]) & torch.isfinite(
            best.grad[rows].reshape(len(rows), -1)).all(1)
        rows = rows[known]
    if rows.numel() == 0:
        return
    xr, u = x[rows], best.point[rows] - x[rows]
    if stack is not None:
        dt = stack.out_w.dtype
        t = first_root_on_ray(stack, xr.to(dt), u.to(dt), 1.0).to(x.dtype)
        t = _charged_walk(model, xr, t)
        give_up = None
    else:
        s = torch.sign(f_x[rows])
        phi = s * best.value[rows]                       # < 0: y is adversarial
        slope = s * (best.grad[rows] * u).reshape(len(rows), -1).sum(1)
        t = torch.where(slope < 0, 1 - phi / slope, torch.full_like(phi, float("nan")))
        give_up = PROJECTION_GIVE_UP
    t = torch.where((t > 0) & (t < 1), t, torch.full_like(t, float("nan")))
    _, crossed, x_adv, _ = verified_flip_along(model, xr, u, t, f_x[rows], box, give_up=give_up)
    best.offer(x_adv, crossed, rows)


def _charged_walk(model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Charge an exact ray walk on the model's matrices as two forward passes per row to a
    :class:`PropagationCounter` ``model``; rows it refuses get no crossing (NaN)."""
    if not isinstance(model, PropagationCounter):
        return t
    ok = model.charge(x, 2)
    return torch.where(ok, t, torch.full_like(t, float("nan")))


# budgets below which closest_adversarial runs the attack of steps 1-2 alone (no projection or
# shrink, whose points would need their rounding bound at the verification) and keeps back only
# SMALL_VERIFY_RESERVE for the verification (the point in its batch and alone: a point that
# needs a push is lost)
SMALL_BUDGET = 40
SMALL_VERIFY_RESERVE = 2
# budgets below which it does so too on a net the region refinement skips (:func:`_may_refine`):
# the stages after FMN then only cost FMN steps. At budget 50 (benchmarks/budget_probe.py,
# 1 net x 10 points a row) the median distance / reference went on the zoo ResNet from 1.0098
# to 1.0071 in linf (best peer 1.0067), 1.0049 to 1.0043 in l2, 1.0237 to 1.0157 in l1; on the
# lenet from 1.0057 to 1.0037 (l2); on the fc net 1.0019 to 1.0015 (linf), 1.0162 to 1.0082
# (l1), 1.0013 to 1.0019 (l2). On the 10-16-16-1 nets, which the refinement solves, it lost
# 0.02-0.03% (1.0002 to 1.0004-1.0005): there the pipeline stays
SHORT_BUDGET = 60
# budgets above which the pipeline runs as at CAP_BUDGET and spends the rest on continuation
# rounds (:func:`continuation_rounds`): FMN runs of at most CONTINUATION_STEPS steps (no round
# of fewer than CONTINUATION_MIN_STEPS) from the best point, with CONTINUATION_ALPHA times the
# default step lengths (on the zoo ResNet's 30 l1 points at budget 1000, points more than 0.1%
# closer than at 500: 7, at most 4.0% closer, with factor 1 and CONTINUATION_CLEAR 3; keeping
# points past 1 bound, 3 / 5 / 0 with factors 1 / 0.1 / 0.01)
CAP_BUDGET = 500
CONTINUATION_STEPS = 100
CONTINUATION_MIN_STEPS = 10
CONTINUATION_ALPHA = 1.0
# and keeps a point only past this many rounding bounds B of f (the point it would replace
# passed its verification): the verification's own forward pass rounds otherwise, by up to 2 B
# (kept past 1 B, a zoo ResNet point ended 0.7% farther at 1000 than at 500, pushed)
CONTINUATION_CLEAR = 3.0
# propagations per input kept back for boundary projection and radial shrink under a budget
# (measured on the zoo's nets: 6-10 with two projection rounds, 3-4 for the shrink alone)
POST_RESERVE = {0: 4, 1: 8, 2: 12}


def continuation_rounds(problem: AttackProblem, best: Best, limit: float,
                        grads: PiecewiseLinearStack | None) -> int:
    """The propagations a budget has past :data:`CAP_BUDGET`, up to ``limit`` per input: FMN
    runs of at most :data:`CONTINUATION_STEPS` steps each, started from each input's best point
    (x where there is none) with step lengths :data:`CONTINUATION_ALPHA` times the default's,
    each ending on the tangent projection; a run's point replaces the best only where closer.
    Returns the number of rounds run.

    So the pipeline at a budget B > CAP_BUDGET runs as at CAP_BUDGET and then continues:
    its distance per input is at most the one at CAP_BUDGET (up to the verification push,
    which a larger budget leaves more room for), and grows no worse with every further
    round; before, one FMN run took the whole budget, and its cosine schedule, set by the
    number of steps, made the medians of the zoo ResNet at n = 432 larger at 1000 than at 500
    (l1 1.0011 against 1.0004, linf 1.0008 against 1.0005: benchmarks/bench_budget.py)."""
    counter, x = problem.counter, problem.x
    b = best.dist.shape[0]
    view = (-1,) + (1,) * (x.dim() - 1)
    rounds = 0
    with counter.limited(limit):
        while True:
            # every input's first step and finish (2 gradients) included
            left = int(limit - float(counter.used.max()))
            steps = min(CONTINUATION_STEPS, (left - 2) // 2)
            if steps < CONTINUATION_MIN_STEPS:
                return rounds
            found = torch.isfinite(best.dist)
            starts = torch.where(found.view(view), best.point, x[:b])
            fmn_candidates(problem, best, starts, steps, rows=torch.arange(b, device=x.device),
                           stack=grads, clear=CONTINUATION_CLEAR, alpha_scale=CONTINUATION_ALPHA,
                           finish=True)
            rounds += 1


def budget_plan(budget: float, methods: Sequence[str] | None, n_starts: int,
                projection_steps: int, shared_fx: bool = False,
                short: bool = False) -> tuple[int, int]:
    """``(steps, reserve)`` of :func:`closest_adversarial` under ``budget`` propagations per
    input: ``reserve`` kept back after the attacks of steps 1-2 (boundary projection, radial
    shrink: :data:`POST_RESERVE`; the final verification:
    :data:`randadv.attacks.budget.VERIFY_RESERVE`, plus 2 for the rounding bound of a point
    those steps found), and the most iterations per start that fit
    in the rest (one forward and one backward each, the f(x) pass and each run's first point
    included). Below :data:`SMALL_BUDGET`, or with ``short``, only
    :data:`SMALL_VERIFY_RESERVE` is kept back.

    Paper:
        none (utility: splitting a budget of propagations per input, AttackBench's count of
        Cina et al. 2024, between the pipeline's stages).

    Arguments:
        budget: propagations per input (``float("inf")``: no limit, then ``steps`` is 30).
        methods: the attack families of steps 1-2 (None: ``("fmn",)``).
        n_starts: starts per input of the iterative attacks.
        projection_steps: rounds of boundary projection (their reserve grows with them).
        shared_fx: the f(x) pass is the forward of FMN's first gradient (it kept its graph:
            :meth:`randadv.attacks.budget.PropagationCounter.gradient_at_x`), not a
            propagation of its own.
        short: the attacks of steps 1-2 run alone (as below :data:`SMALL_BUDGET`; on a net
            the region refinement skips, below :data:`SHORT_BUDGET`).

    Returns:
        ``(steps, reserve)``, two ints (``steps`` at least 1).

    Example:
        >>> from randadv.attacks.closest import budget_plan
        >>> budget_plan(float("inf"), None, 1, 2)
        (30, 18)
        >>> budget_plan(200, ("fmn",), 1, 2)      # (200 - 1 - 18 - 2) // 2
        (89, 18)
        >>> budget_plan(200, ("fmn",), 1, 2, shared_fx=True)   # (200 - 18 - 2) // 2
        (90, 18)
        >>> budget_plan(30, ("fab",), 1, 0)       # below SMALL_BUDGET: (30 - 1 - 2 - 2) // 2
        (12, 2)
        >>> budget_plan(20, ("fmn",), 1, 0, shared_fx=True)   # 2 x 9 gradients + 2: 20
        (8, 2)
    """
    methods = tuple(methods or ("fmn",))
    runs = n_starts * sum(m in methods for m in ("fmn", "fab", "ddn")) + ("deepfool" in methods)
    post = POST_RESERVE.get(min(projection_steps, 2), 12)
    reserve = VERIFY_RESERVE + 2 + post
    if budget == float("inf"):
        return 30, reserve
    if budget < SMALL_BUDGET or short:
        reserve = SMALL_VERIFY_RESERVE
    # FMN: steps + 1 gradients per run; FAB: steps gradients and a last one (its point keeps
    # f and grad f for the verification); DDN: steps gradients and one forward
    last = 2 if "fmn" in methods or "fab" in methods else 1
    fx = 0 if shared_fx else 1
    steps = max(1, int((budget - fx - reserve - last * max(runs, 1)) // (2 * max(runs, 1))))
    return steps, reserve


def ray_box_exit(x: torch.Tensor, d: torch.Tensor, box: Box | None) -> torch.Tensor:
    """The largest s >= 0 with ``x + s d`` inside the box, per row (inf without a box or where
    d = 0); x must lie in the box."""
    if box is None:
        return torch.full((x.shape[0],), float("inf"), dtype=x.dtype, device=x.device)
    lo, hi = box_slack(x, box)
    room = torch.where(d > 0, hi, torch.where(d < 0, lo, torch.full_like(d, float("inf"))))
    s = torch.where(d != 0, room / torch.where(d != 0, d, torch.ones_like(d)), room)
    return s.clamp_min(0.0).reshape(x.shape[0], -1).amin(1)


def _may_refine(net: nn.Module, refine: bool | str) -> bool:
    """Whether :func:`exact_region_refinement` may run on ``net`` (False: it surely skips it):
    a net with more than :data:`MAX_EXACT_ENTRIES` weights has at least as many entries in its
    affine layers."""
    return refine is True or (refine == "auto" and _weight_count(net) <= MAX_EXACT_ENTRIES)


def _weight_count(model: nn.Module) -> int:
    """Weights of the model's matrices and kernels: a conv or dense layer's affine matrix has at
    least about as many entries (a cheap test before densifying, which costs a forward pass per
    input entry)."""
    return sum(p.numel() for p in model.parameters() if p.dim() >= 2)


def exact_region_refinement(problem: AttackProblem, best: Best, max_solves: int,
                            input_shape: Sequence[int] | None, required: bool) -> torch.Tensor:
    """Step 4: the exact closest boundary point of the best point's linear region (LP / QP),
    then of neighbouring regions while it improves. Returns the rows whose best point is that
    region optimum. The LPs read the weights of ``problem.net``; the verification runs through
    ``problem.model`` (its counter)."""
    model, x, f_x, norm, box = problem.model, problem.x, problem.f_x, problem.norm, problem.box
    from randadv.exact.attack import pattern_search

    shape = tuple(input_shape) if input_shape is not None else (
        tuple(x.shape[1:]) if x.dim() > 2 else None)
    net = problem.net
    if not required and _weight_count(net) > 10 * MAX_EXACT_ENTRIES:
        return torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    try:
        net = read_piecewise_linear(net, shape).affine()
    except InvalidInputError:
        if required:
            raise
        return torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    if sum(w.size for w, _ in net.layers) > MAX_EXACT_ENTRIES and not required:
        return torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    d = net.d
    lo = np.full(d, -np.inf) if box is None else box[0].reshape(-1).double().cpu().numpy()
    hi = np.full(d, np.inf) if box is None else box[1].reshape(-1).double().cpu().numpy()
    rows = torch.nonzero(torch.isfinite(best.dist)).flatten().tolist()
    out = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    if not rows:
        return out
    # strictly across in float64, by a margin that survives rounding to x's dtype
    rel = 1e-9 if x.dtype == torch.float64 else 1e-5
    xs = x[rows].reshape(len(rows), -1).double().cpu().numpy()
    ys = best.point[rows].reshape(len(rows), -1).double().cpu().numpy()
    fs = f_x[rows].double().cpu().numpy()
    cands = []
    for xi, yi, fi in zip(xs, ys, fs, strict=True):
        s = 1.0 if fi > 0 else -1.0
        cands.append(pattern_search(net, xi, yi, norm, lo, hi, s, rel * abs(float(fi)),
                                    max_solves=max_solves))
    cand = torch.as_tensor(np.stack(cands), dtype=x.dtype, device=x.device).reshape(
        (len(rows),) + tuple(x.shape[1:]))
    idx = torch.as_tensor(rows, device=x.device)
    x_adv, success, _, _ = verified_adversarial(model, x[idx], cand, f_x[idx], box)
    best.offer(x_adv, success, idx)
    # the region optimum (to the verification push) is the row's best point
    d_region = lp_norm(x_adv - x[idx], norm)
    out[idx] = success & (d_region <= best.dist[idx] * (1 + 1e-6))
    return out
