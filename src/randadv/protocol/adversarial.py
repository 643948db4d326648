"""The one test of "on the other side": the decision of a scalar-output model is sign f, and a
point x' is adversarial for x when ``sign f(x') != sign f(x)`` strictly, by more than a margin
(De Palma, Kiani, Lloyd 2021, Section 2: the adversarial distance of a binary classifier).

:func:`verified_flip` is the verification rule of every reported example: the test with the
rounding bound of the forward pass as its margin
(:func:`randadv.protocol.rounding.rounding_bound_of`), used by the attacks' verification
(:mod:`randadv.attacks.verify`) and by the exact solver's witnesses
(:func:`randadv.exact.min_distance`); the searches use the test with margin 0 or their own
margin."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from randadv.protocol.norms import Norm
from randadv.protocol.rounding import rounding_bound_of


def is_adversarial(f: torch.Tensor | np.ndarray, f_x: torch.Tensor | np.ndarray | float,
                   margin: torch.Tensor | np.ndarray | float = 0.0
                   ) -> torch.Tensor | np.ndarray:
    """``sign f(x) * f(x') < -margin`` elementwise: strictly on the other side of the decision
    boundary, by more than ``margin`` (>= 0); never where f(x) = 0 or f(x') = 0 (x has no side
    to leave, x' is on the boundary) or either is NaN.

    Paper:
        De Palma, Kiani, Lloyd 2021, Section 2 (the decision sign f of a binary classifier,
        whose other side the adversarial distance measures).

    Arguments:
        f: f at the candidate points (torch or numpy).
        f_x: f at their originals (same shape, or a scalar / broadcastable).
        margin: how far past the boundary (a scalar or one per point; e.g. the rounding
            bound of the forward pass).

    Returns:
        Boolean tensor (numpy array for numpy ``f``) of f's shape.

    Example:
        >>> import numpy as np
        >>> import torch
        >>> from randadv.protocol import is_adversarial
        >>> is_adversarial(torch.tensor([-0.5, 0.0, 0.2]), torch.tensor([1.0, 1.0, 1.0]))
        tensor([ True, False, False])
        >>> is_adversarial(np.array([-0.5, -1e-9]), 1.0, margin=1e-6).tolist()   # within margin
        [True, False]
    """
    s = torch.sign(f_x) if isinstance(f_x, torch.Tensor) else np.sign(f_x)
    return s * f < -margin


def verified_flip(f_adv: torch.Tensor | np.ndarray | float,
                  f_x: torch.Tensor | np.ndarray | float,
                  bound: torch.Tensor | np.ndarray | float,
                  margin: float | None = None) -> torch.Tensor | np.ndarray:
    """The verification rule: ``x'`` counts as adversarial when it is on the other side of the
    boundary by more than the rounding bound ``bound`` of the forward pass that gave
    ``f_adv`` (:func:`randadv.protocol.rounding_bound_of`), and by more than ``margin`` where
    one is asked for: :func:`is_adversarial` with margin ``bound`` (or ``max(margin, bound)``).

    Paper:
        none (utility: the one rule by which every reported adversarial example, of an attack
        or of the exact solver, is accepted despite float rounding).

    Arguments:
        f_adv: f at the candidates (torch, numpy or a float).
        f_x: f at their originals (or their signs).
        bound: the rounding bound at the candidates (one per candidate, or a scalar).
        margin: an extra margin (a float; the exact solver's ``margin |f(x)|``), None for none.

    Returns:
        Boolean tensor (numpy array / numpy bool for numpy or float ``f_adv``) of f_adv's shape.

    Example:
        >>> import torch
        >>> from randadv.protocol import verified_flip
        >>> f_adv, f_x = torch.tensor([-1e-6, -1e-3, 0.2]), torch.ones(3)
        >>> verified_flip(f_adv, f_x, torch.full((3,), 1e-5)).tolist()   # within the bound
        [False, True, False]
        >>> bool(verified_flip(-1e-3, 1.0, 1e-5, margin=1e-2))          # within the margin
        False
    """
    return is_adversarial(f_adv, f_x, bound if margin is None else max(margin, bound))


def recheck_example(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor,
                    bounds: tuple | None, norm: str, distance: float,
                    allow_zero: bool = False) -> bool:
    """An audit of one reported example by float64 forward passes, independent of the search
    that found it: ``sign f(x_adv) != sign f(x)`` both for ``x_adv`` alone and in a batch with
    ``x`` (a point whose sign depends on the summation order of the forward pass is not
    adversarial), ``x_adv`` inside the box, and ``||x_adv - x||_p`` equal to ``distance``
    (relative 1e-9). With ``allow_zero`` a point on the boundary up to rounding also passes:
    ``|f(x_adv)|`` within the rounding bound of the forward pass
    (:func:`randadv.protocol.rounding_bound_of` at ``x_adv``) in both passes, as the exact
    solver's witness on a plateau ``f = 0`` or a touched boundary is documented to be
    (:func:`randadv.exact.min_distance`); its sign there is the rounding's, which differs
    between summation orders and CPUs, so it is not asked for.

    Paper:
        De Palma, Kiani, Lloyd 2021, Section 2 (the adversarial distance whose witness this
        checks).

    Arguments:
        model: the scalar-output model (it must accept float64 inputs).
        x: one input (shape of one row, without the batch dimension).
        x_adv: the reported example (same shape).
        bounds: the box ``(lo, hi)`` or None.
        norm: ``"l1"``, ``"l2"`` or ``"linf"``.
        distance: the reported distance.
        allow_zero: accept ``f(x_adv) = 0`` up to the rounding bound.

    Returns:
        True when every check passes; False where f(x) is 0 or not finite.

    Example:
        >>> import torch
        >>> from randadv.protocol.adversarial import recheck_example
        >>> net = torch.nn.Linear(2, 1).double()
        >>> with torch.no_grad():
        ...     _ = net.weight.copy_(torch.tensor([[3.0, 4.0]])); _ = net.bias.fill_(-5.0)
        >>> x = torch.tensor([1.0, 1.0], dtype=torch.float64)        # f = 2
        >>> x_adv = torch.tensor([0.5, 0.5], dtype=torch.float64)    # f = -1.5
        >>> recheck_example(net, x, x_adv, None, "linf", 0.5)
        True
    """
    with torch.no_grad():
        f = model(torch.stack([x, x_adv]).to(torch.float64)).reshape(-1).double()
    point = x_adv.unsqueeze(0).to(torch.float64).detach().requires_grad_(allow_zero)
    with torch.set_grad_enabled(allow_zero):
        alone = model(point).reshape(-1).double()
    bound = 0.0
    if allow_zero:     # the rounding bound needs grad f at x_adv
        grad, = torch.autograd.grad(alone.sum(), point)
        alone = alone.detach()
        bound = float(rounding_bound_of(alone, grad, point.detach())[0])
    fx = float(f[0])
    if fx == 0 or not math.isfinite(fx):
        return False
    flipped = True
    for fa in (float(f[1]), float(alone[0])):
        flipped &= math.isfinite(fa) and ((allow_zero and abs(fa) <= bound)
                                          or bool(is_adversarial(fa, fx)))
    inside = bounds is None or bool(((x_adv >= bounds[0]) & (x_adv <= bounds[1])).all())
    d = float(np.linalg.norm((x_adv - x).double().cpu().numpy().ravel(), Norm(norm).p))
    return bool(flipped and inside and abs(d - distance) <= 1e-9 * max(1.0, abs(distance)))
