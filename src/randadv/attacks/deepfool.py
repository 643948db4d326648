"""DeepFool for binary (scalar-output) models in l1, l2 and l-infinity.

Paper:
    Moosavi-Dezfooli, Fawzi, Frossard, "DeepFool: a simple and accurate method to fool deep
    neural networks", CVPR 2016 (Algorithm 1, the binary case; Section 3.3, l_p).

Distance: l1, l2, linf.

Each step linearises f at the current point y and moves to the closest point of the hyperplane
``f(y) + g . (z - y) = 0`` in l_p (closed form per row; inside the box ``bounds`` it is the exact
box-constrained projection of :func:`randadv.attacks.lp_geometry.hyperplane_step`). The total
step is scaled by ``1 + overshoot``, as in the paper.
"""

from __future__ import annotations

import torch
from torch import nn

from randadv.attacks.base import AttackProblem, Found, MinNormAttack
from randadv.attacks.lp_geometry import hyperplane_step
from randadv.attacks.min_norm import ClosestResult, box_slack, clip, value_and_grad
from randadv.protocol.adversarial import is_adversarial


def deepfool_candidates(problem: AttackProblem, steps: int = 50, overshoot: float = 0.02,
                        with_values: bool = False, norm: str | None = None
                        ) -> tuple[torch.Tensor, ...]:
    """Raw DeepFool on ``problem`` (in ``norm``, default the problem's): ``(points, found)``
    (B, ...), (B,): the first adversarial iterate per row (a forward-pass check, not yet the
    reported verification); with ``with_values`` also f and grad f there (NaN where not
    found)."""
    model, x, f_x, box = problem.model, problem.x, problem.f_x, problem.box
    norm = problem.norm if norm is None else norm
    b = x.shape[0]
    r_tot = torch.zeros_like(x)
    out = torch.full_like(x, float("nan"))
    found = torch.zeros(b, dtype=torch.bool, device=x.device)
    f_out = torch.full((b,), float("nan"), dtype=x.dtype, device=x.device)
    g_out = torch.full_like(x, float("nan"))
    todo = torch.arange(b, device=x.device)
    y = x.clone()
    for _ in range(steps + 1):
        if todo.numel() == 0:
            break
        f, g = value_and_grad(model, y[todo])
        adv = is_adversarial(f, f_x[todo])
        out[todo[adv]] = y[todo[adv]]
        found[todo[adv]] = True
        f_out[todo[adv]], g_out[todo[adv]] = f[adv].to(x.dtype), g[adv].to(x.dtype)
        keep = ~adv
        todo, f, g = todo[keep], f[keep], g[keep]
        if todo.numel() == 0:
            break
        lo, hi = box_slack(y[todo], box)
        step = hyperplane_step(g, -f, norm, lo, hi)
        r_tot[todo] += step
        y[todo] = clip(x[todo] + (1 + overshoot) * r_tot[todo], box)
    return (out, found, f_out, g_out) if with_values else (out, found)


class DeepFool(MinNormAttack):
    """DeepFool (Moosavi-Dezfooli et al., CVPR 2016) as a
    :class:`randadv.attacks.base.MinNormAttack`: ``DeepFool()(model, x, "linf", budget=20)``
    returns a :class:`ClosestResult`; the call's arguments (``model``, ``x``, ``norm``,
    ``bounds``, ``budget``) as in :func:`deepfool`.

    Paper:
        Moosavi-Dezfooli, Fawzi, Frossard 2016, Algorithm 1 (the binary case) and Section 3.3
        (l_p).

    Arguments:
        steps: maximum number of linearisation steps; None: 50, or with a ``budget`` as many
            as fit.
        overshoot: the total step is multiplied by ``1 + overshoot``.

    Example:
        DeepFool stops at its first adversarial point. On a random ReLU net that takes one to
        three steps here: 7 propagations are f(x), a forward and a backward pass at x and at
        the one step, and the verification's two forward passes (the batch and each point
        alone); each further step adds 2.

        >>> import torch
        >>> from randadv.attacks import DeepFool
        >>> from randadv.nets import RandomMLP
        >>> net = RandomMLP([10, 32, 32], seed=2)
        >>> x = torch.randn(6, 10)
        >>> attack = DeepFool()
        >>> attack
        DeepFool(steps=None, overshoot=0.02)
        >>> r = attack(net, x, "l2")
        >>> r.success.tolist(), r.propagations.tolist()
        ([True, True, True, True, True, True], [7, 9, 9, 9, 11, 7])
        >>> DeepFool(steps=1)(net, x, "l2").success.tolist()   # one step flips rows 1 and 6
        [True, False, False, False, False, True]
    """

    name = "deepfool"

    def __init__(self, steps: int | None = None, overshoot: float = 0.02) -> None:
        self.steps, self.overshoot = steps, overshoot

    def search(self, problem: AttackProblem) -> Found:
        steps = self.steps
        if steps is None:
            steps = problem.default_steps(50, 2, 3)
        pts, found, f, g = deepfool_candidates(problem, steps, self.overshoot,
                                               with_values=True)
        best = problem.best()
        best.offer(pts, found, value=f, grad=g)
        return Found(best, self.name)


def deepfool(model: nn.Module, x: torch.Tensor, norm: str = "l2",
             bounds: tuple | None = None, *, steps: int | None = None,
             overshoot: float = 0.02, budget: int | None = None) -> ClosestResult:
    """DeepFool (Moosavi-Dezfooli et al., CVPR 2016) for a scalar-output model.

    Distance: l1, l2, linf (``norm``).

    Paper:
        Moosavi-Dezfooli, Fawzi, Frossard 2016, Algorithm 1 (the binary case) and Section 3.3
        (the l_p steps: closed form per row, exact box-constrained projection in a box).

    Arguments:
        model: torch module returning one scalar f per input; the decision is sign f.
        x: inputs (B, ...), floating point (float64 stays float64).
        norm: ``"l1"``, ``"l2"`` or ``"linf"``.
        bounds: optional box ``(lo, hi)`` (scalars or tensors of one input's shape).
        steps: maximum number of linearisation steps; default 50, or with a ``budget`` as
            many as fit (``(budget - 1 - VERIFY_RESERVE) // 2 - 1``).
        overshoot: the total step is multiplied by ``1 + overshoot``.
        budget: model propagations per input (forwards + backwards, AttackBench's count), the
            f(x) pass and the final verification included: ``propagations <= budget``.
            Default None: no limit (DeepFool stops at its first adversarial point: typically
            a few steps, 2 propagations each).

    Returns:
        A :class:`ClosestResult` for x (B, ...) with ``x_adv`` (B, ...), ``distance``,
        ``success``, ``propagations`` (B,); every point verified by a forward pass.

    Example:
        On the zoo's conv4 net in linf inside the box [0, 1], DeepFool spends a tenth of the
        propagations per image that FMN's 100 steps spend (2 * 101 and the verification's),
        and pays for it in distance (its linearisation and its overshoot):

        >>> from randadv.attacks import deepfool, fmn
        >>> from randadv.nets import build_architecture, uniform_images
        >>> conv4 = build_architecture("conv4", 8, channels=1, seed=0)
        >>> images = uniform_images(4, 8, "deepfool", 0, channels=1)
        >>> quick = deepfool(conv4, images, "linf", bounds=(0, 1))
        >>> slow = fmn(conv4, images, "linf", bounds=(0, 1))
        >>> quick.success.tolist(), bool((10 * quick.propagations < slow.propagations).all())
        ([True, True, True, True], True)
        >>> bool((quick.distance > slow.distance).all())
        True
    """
    return DeepFool(steps, overshoot)(model, x, norm, bounds, budget=budget)
