"""FAB (fast adaptive boundary) for binary (scalar-output) models in l1, l2 and l-infinity.

Paper:
    Croce, Hein, "Minimally distorted adversarial examples with a fast adaptive boundary
    attack", ICML 2020 (Algorithm 1; with a scalar output the "closest class" step is the one
    hyperplane f = 0).

Distance: l1, l2, linf.

Each step linearises f at the iterate y and projects both y and the original point x onto the
hyperplane ``f(y) + g . (z - y) = 0`` inside the box (exact l_p projections, see
:func:`randadv.attacks.lp_geometry.hyperplane_step`); the next iterate is the biased combination
``(1 - a)(y + eta d_y) + a (x + eta d_x)``, ``a = min(|d_y| / (|d_y| + |d_x|), alpha_max)``
(eq. (9) of the paper). Adversarial iterates are recorded and pulled back towards x,
``y <- x + beta (y - x)`` (the paper's backward step); here the pulled-back point reuses the
linearisation at y, saving a forward pass. Several starts (x, and random points of an l_p ball
around x) run as one batch.
"""

from __future__ import annotations

import torch
from torch import nn

from randadv.attacks.base import AttackProblem, Found, MinNormAttack
from randadv.attacks.budget import VERIFY_RESERVE, steps_within
from randadv.attacks.lp_geometry import hyperplane_step, random_in_ball
from randadv.attacks.min_norm import (
    Best,
    Box,
    ClosestResult,
    box_slack,
    clip,
    value_and_grad,
)
from randadv.protocol.adversarial import is_adversarial
from randadv.protocol.norms import lp_norm


def _sum_rows(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).sum(1)


def fab_candidates(problem: AttackProblem, best: Best, starts: torch.Tensor, steps: int = 20,
                   alpha_max: float = 0.1, eta: float = 1.05, beta: float = 0.9,
                   rows: torch.Tensor | None = None) -> None:
    """Run FAB on ``problem`` from ``starts`` (S*B, ...): start j of input i is row
    ``j * B + i``; every adversarial iterate is offered to ``best`` (at its row ``rows[k]``,
    default the input)."""
    model, x, f_x, norm, box = problem.model, problem.x, problem.f_x, problem.norm, problem.box
    b = x.shape[0]
    src = torch.arange(starts.shape[0], device=x.device) % b
    rows = src if rows is None else rows
    xo, fo = x[src], f_x[src]
    view = (-1,) + (1,) * (x.dim() - 1)
    y = starts.clone()
    for _ in range(steps):
        f, g = value_and_grad(model, y)
        adv = is_adversarial(f, fo)
        best.offer(y, adv, rows, value=f, grad=g)
        # backward step on adversarial iterates, linearisation at y reused
        yb = torch.where(adv.view(view), xo + beta * (y - xo), y)
        f_lin = f + _sum_rows(g * (yb - y))
        lo, hi = box_slack(yb, box)
        d_y = hyperplane_step(g, -f_lin, norm, lo, hi)
        f_lin_x = f + _sum_rows(g * (xo - y))
        lo, hi = box_slack(xo, box)
        d_x = hyperplane_step(g, -f_lin_x, norm, lo, hi)
        n_y, n_x = lp_norm(d_y, norm), lp_norm(d_x, norm)
        a = torch.clamp(n_y / (n_y + n_x).clamp_min(torch.finfo(x.dtype).tiny), max=alpha_max)
        a = a.view(view)
        y = clip((1 - a) * (yb + eta * d_y) + a * (xo + eta * d_x), box)
    # the gradient comes with the pass (a counter charges it): kept with the point, its
    # verification needs no further pass for the rounding bound
    with torch.no_grad():
        f, g = value_and_grad(model, y)
    best.offer(y, is_adversarial(f, fo), rows, value=f, grad=g)


def fab_starts(x: torch.Tensor, n_starts: int, radius: torch.Tensor, norm: str,
               box: Box | None, generator: torch.Generator) -> torch.Tensor:
    """x itself, then ``n_starts - 1`` random points of the l_p balls of radii ``radius``
    (B,) around x (half the best distance known, as FAB's restarts), clipped to the box."""
    out = [x]
    r = torch.where(torch.isfinite(radius), radius, torch.zeros_like(radius))
    for _ in range(n_starts - 1):
        out.append(clip(x + random_in_ball(tuple(x.shape), r, norm, generator, x.dtype,
                                           x.device), box))
    return torch.cat(out)


class FAB(MinNormAttack):
    """FAB (Croce & Hein, ICML 2020) as a :class:`randadv.attacks.base.MinNormAttack`:
    ``FAB(n_starts=2)(model, x, "l1", budget=100)`` returns a :class:`ClosestResult`; the
    call's arguments (``model``, ``x``, ``norm``, ``bounds``, ``budget``) as in :func:`fab`.

    Paper:
        Croce, Hein 2020, Algorithm 1 and eq. (9) (the biased projection step; the backward
        step and the restarts as in the module docstring).

    Arguments:
        steps: FAB iterations per start; None: 20, or with a ``budget`` as many as fit.
        n_starts: x itself plus ``n_starts - 1`` random starts in the l_p ball of half the
            distance found by the first run.
        alpha_max, eta, beta: the paper's bias cap, overshoot and backward-step factor.
        seed: seed of the random starts (a private generator; the global RNG is untouched).

    Example:
        On an affine model f(x) = w . x + b the l_p distance to the boundary has a closed
        form, ``|f(x)| / ||w||_dual`` (:func:`randadv.protocol.dual_norm`). One FAB step is
        the exact l_p projection onto the hyperplane f = 0, overshot by ``eta`` = 1.05. The
        default 20 steps end at 2121/2110 = 1.0052 of it for every w, b, x and norm: the
        backward step pulls the first point to c = ``beta`` * ``eta`` = 0.945 of it, the next
        biased step lands at (2.1 - 1.1 c) / (2 - c) = 2121/2110, and no later one is closer.

        >>> import torch
        >>> from randadv.attacks import FAB
        >>> from randadv.protocol import dual_norm
        >>> affine = torch.nn.Linear(6, 1, dtype=torch.float64)      # random w, b
        >>> x = torch.rand(3, 6, dtype=torch.float64)
        >>> w, f = affine.weight.detach(), affine(x).detach()[:, 0]
        >>> one_step = FAB(steps=1, n_starts=1)
        >>> one_step
        FAB(steps=1, n_starts=1, alpha_max=0.1, eta=1.05, beta=0.9, seed=0)
        >>> for norm in ("l1", "l2", "linf"):
        ...     closed_form = f.abs() / dual_norm(w, norm)
        ...     one = one_step(affine, x, norm).distance / closed_form
        ...     full = FAB(n_starts=1)(affine, x, norm).distance / closed_form
        ...     print(norm, [round(v, 6) for v in one.tolist()],
        ...           [round(v, 4) for v in full.tolist()])
        l1 [1.05, 1.05, 1.05] [1.0052, 1.0052, 1.0052]
        l2 [1.05, 1.05, 1.05] [1.0052, 1.0052, 1.0052]
        linf [1.05, 1.05, 1.05] [1.0052, 1.0052, 1.0052]
    """

    name = "fab"

    def __init__(self, steps: int | None = None, n_starts: int = 4, alpha_max: float = 0.1,
                 eta: float = 1.05, beta: float = 0.9, seed: int = 0) -> None:
        self.steps, self.n_starts, self.alpha_max = steps, n_starts, alpha_max
        self.eta, self.beta, self.seed = eta, beta, seed

    def search(self, problem: AttackProblem) -> Found:
        steps, n_starts, x = self.steps, self.n_starts, problem.x
        if steps is None:
            steps = 20 if not problem.budget_given else max(
                1, (steps_within(problem.requested_budget, n_starts, 1 + VERIFY_RESERVE) - 1) // 2)
        best = problem.best()
        fab_candidates(problem, best, x, steps, self.alpha_max, self.eta, self.beta)
        if n_starts > 1:
            gen = torch.Generator(device=x.device).manual_seed(int(self.seed))
            starts = fab_starts(x, n_starts, 0.5 * best.dist, problem.norm, problem.box,
                                gen)[x.shape[0]:]
            fab_candidates(problem, best, starts, steps, self.alpha_max, self.eta, self.beta)
        return Found(best, self.name)


def fab(model: nn.Module, x: torch.Tensor, norm: str = "l2", bounds: tuple | None = None, *,
        steps: int | None = None, n_starts: int = 4, alpha_max: float = 0.1,
        eta: float = 1.05, beta: float = 0.9, seed: int = 0, budget: int | None = None
        ) -> ClosestResult:
    """FAB (Croce & Hein, ICML 2020) for a scalar-output model.

    Distance: l1, l2, linf (``norm``).

    Paper:
        Croce, Hein 2020, Algorithm 1 and eq. (9) (with a scalar output the "closest class"
        step is the one hyperplane f = 0; see the module docstring).

    Arguments:
        model: torch module returning one scalar f per input; the decision is sign f.
        x: inputs (B, ...), floating point.
        norm: ``"l1"``, ``"l2"`` or ``"linf"``.
        bounds: optional box ``(lo, hi)``.
        steps: FAB iterations per start; default 20, or with a ``budget`` as many as fit
            (``((budget - 1 - VERIFY_RESERVE) // n_starts - 1) // 2``: a forward and a
            backward each, and a forward of each start's last iterate).
        n_starts: x itself plus ``n_starts - 1`` random starts in the l_p ball of half the
            distance found by the first run.
        alpha_max, eta, beta: the paper's bias cap, overshoot and backward-step factor.
        seed: seed of the random starts (a private generator; the global RNG is untouched).
        budget: model propagations per input (forwards + backwards, AttackBench's count), the
            f(x) pass and the final verification included: ``propagations <= budget``.
            Default None: no limit (20 steps x 4 starts spend 4 * 41 + 1 + about 2).

    Returns:
        A :class:`ClosestResult` for x (B, ...): ``x_adv`` (B, ...), ``distance``,
        ``success``, ``propagations`` (B,); every point verified by a forward pass.

    Example:
        More starts never end further away: the first run from x is the same, and each random
        start's points only compete with it (a random ReLU net, l1):

        >>> import torch
        >>> from randadv.attacks import fab
        >>> from randadv.nets import RandomMLP
        >>> net = RandomMLP([10, 32, 32], seed=2)
        >>> x = torch.randn(12, 10)
        >>> single, restarts = fab(net, x, "l1", n_starts=1), fab(net, x, "l1", n_starts=4)
        >>> restarts.method, bool(restarts.success.all())
        ('fab', True)
        >>> ratio = restarts.distance / single.distance
        >>> bool((ratio <= 1).all()), bool((ratio < 0.95).any())   # some inputs gain over 5%
        (True, True)
    """
    return FAB(steps, n_starts, alpha_max, eta, beta, seed)(model, x, norm, bounds,
                                                           budget=budget)
