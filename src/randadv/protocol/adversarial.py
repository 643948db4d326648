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

import numpy as np
import torch


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
