"""Decoupled direction and norm (DDN) attack for binary (scalar-output) models in l2.

Paper:
    Rony, Hafemann, Oliveira, Ben Ayed, Sabourin, Granger, "Decoupling direction and norm for
    efficient gradient-based L2 adversarial attacks and defenses", CVPR 2019 (Algorithm 1).

Distance: l2.

The direction follows a normalised descent step on ``L = sign f(x) * f(x + delta)``; the norm
eps is decoupled: ``eps <- (1 - gamma) eps`` when the iterate is adversarial, ``(1 + gamma) eps``
otherwise, and ``delta <- eps delta / ||delta||``. The step length is cosine-annealed; it is
relative to eps here (one setting for every input scale), and eps starts at the linear estimate
``|f(x)| / ||grad f(x)||`` instead of the paper's 1.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from randadv.attacks.base import AttackProblem, Found, MinNormAttack
from randadv.attacks.lp_geometry import steepest
from randadv.attacks.min_norm import (
    Best,
    ClosestResult,
    clip,
    linear_distance_estimate,
    value_and_grad,
)
from randadv.protocol.adversarial import is_adversarial


def ddn_candidates(problem: AttackProblem, best: Best, steps: int = 100, gamma: float = 0.05,
                   alpha: float = 0.5, rows: torch.Tensor | None = None) -> None:
    """Run DDN on ``problem`` from x, offering adversarial iterates to ``best`` (l2; at
    ``rows``)."""
    model, x, f_x, box = problem.model, problem.x, problem.f_x, problem.box
    view = (-1,) + (1,) * (x.dim() - 1)
    s = torch.sign(f_x).view(view)
    delta = torch.zeros_like(x)
    eps = None
    for k in range(steps):
        y = clip(x + delta, box)
        f, g = value_and_grad(model, y)
        adv = is_adversarial(f, f_x)
        best.offer(y, adv, rows, value=f, grad=g)
        if eps is None:
            eps = linear_distance_estimate(f, g, x)
        else:
            eps = torch.where(adv, eps * (1 - gamma), eps * (1 + gamma))
        am = alpha * (1 + math.cos(math.pi * k / steps)) / 2 + 1e-3
        delta = delta - (am * eps).view(view) * steepest(s * g, "l2")
        delta = steepest(delta, "l2") * eps.view(view)        # 0 where delta = 0
        delta = clip(x + delta, box) - x
    y = clip(x + delta, box)
    with torch.no_grad():
        f, _ = value_and_grad(model, y)
    best.offer(y, is_adversarial(f, f_x), rows)


class DDN(MinNormAttack):
    """DDN (Rony et al., CVPR 2019) as a :class:`randadv.attacks.base.MinNormAttack` (l2
    only): ``DDN(steps=50)(model, x, "l2", budget=100)`` returns a :class:`ClosestResult`; the
    call's arguments (``model``, ``x``, ``norm``, ``bounds``, ``budget``) as in :func:`ddn`.

    Paper:
        Rony, Hafemann, Oliveira, Ben Ayed, Sabourin, Granger 2019, Algorithm 1 (decoupled
        direction and norm; eps starts at the linear estimate, see the module docstring).

    Arguments:
        steps: iterations; None: 100, or with a ``budget`` as many as fit in it.
        gamma: norm adaptation factor.
        alpha: initial step length relative to eps (cosine-annealed).

    Example:
        On binary images every pixel lies on a face of the box [0, 1]: DDN's free l2 point
        leaves the box, and with ``bounds=(0, 1)`` it stays inside, further away:

        >>> from randadv.attacks import DDN
        >>> from randadv.nets import build_architecture, uniform_images
        >>> net = build_architecture("fc", 6, channels=1, seed=0)
        >>> binary = (uniform_images(4, 6, "binary", 0, channels=1) > 0.5).float()
        >>> attack = DDN()
        >>> attack
        DDN(steps=None, gamma=0.05, alpha=0.5)
        >>> free, boxed = attack(net, binary, "l2"), attack(net, binary, "l2", (0, 1))
        >>> ((free.x_adv < 0) | (free.x_adv > 1)).flatten(1).any(1).tolist()
        [True, True, True, True]
        >>> boxed.success.tolist(), bool(((boxed.x_adv >= 0) & (boxed.x_adv <= 1)).all())
        ([True, True, True, True], True)
        >>> bool((boxed.distance > 1.1 * free.distance).all())
        True
    """

    name = "ddn"
    norms = ("l2",)

    def __init__(self, steps: int | None = None, gamma: float = 0.05, alpha: float = 0.5
                 ) -> None:
        self.steps, self.gamma, self.alpha = steps, gamma, alpha

    def search(self, problem: AttackProblem) -> Found:
        steps = self.steps
        if steps is None:
            steps = problem.default_steps(100, 2, 2)
        best = problem.best()
        ddn_candidates(problem, best, steps, self.gamma, self.alpha)
        return Found(best, self.name)


def ddn(model: nn.Module, x: torch.Tensor, norm: str = "l2", bounds: tuple | None = None, *,
        steps: int | None = None, gamma: float = 0.05, alpha: float = 0.5,
        budget: int | None = None) -> ClosestResult:
    """DDN (Rony et al., CVPR 2019) for a scalar-output model.

    Distance: l2 only.

    Paper:
        Rony, Hafemann, Oliveira, Ben Ayed, Sabourin, Granger 2019, Algorithm 1 (the changes
        for a scalar output and the relative step are in the module docstring).

    Arguments:
        model: torch module returning one scalar f per input; the decision is sign f.
        x: inputs (B, ...), floating point.
        norm: must be ``"l2"``.
        bounds: optional box ``(lo, hi)``.
        steps: iterations; default 100, or with a ``budget`` as many as fit
            (``(budget - 2 - VERIFY_RESERVE) // 2``: a forward and a backward each, and a
            forward of the last iterate).
        gamma: norm adaptation factor.
        alpha: initial step length relative to eps (cosine-annealed).
        budget: model propagations per input (forwards + backwards, AttackBench's count), the
            f(x) pass and the final verification included: ``propagations <= budget``.
            Default None: no limit (100 steps spend 2 * 100 + 2 + about 2).

    Returns:
        A :class:`ClosestResult` for x (B, ...): ``x_adv`` (B, ...), ``distance``,
        ``success``, ``propagations`` (B,); every point verified by a forward pass.

    Example:
        The zoo's fc net on uniform 1 x 8 x 8 images, pixels kept in [0, 1], 50 propagations
        per input: (50 - 2 - 4) // 2 = 22 steps. DDN is an l2 attack only.

        >>> from randadv.attacks import ddn
        >>> from randadv.nets import build_architecture, uniform_images
        >>> fc = build_architecture("fc", 8, channels=1, seed=0)
        >>> images = uniform_images(3, 8, "ddn", 0, channels=1)
        >>> r = ddn(fc, images, bounds=(0, 1), budget=50)
        >>> r.method, r.success.tolist(), r.propagations.tolist()
        ('ddn', [True, True, True], [47, 47, 47])
        >>> ddn(fc, images, "linf")
        Traceback (most recent call last):
        ...
        randadv.errors.InvalidInputError: DDN is an l2 attack, got norm='linf'
    """
    return DDN(steps, gamma, alpha)(model, x, norm, bounds, budget=budget)
