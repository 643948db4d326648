"""The one test of "on the other side": the decision of a scalar-output model is sign f, and a
point x' is adversarial for x when ``sign f(x') != sign f(x)`` strictly, by more than a margin
(De Palma, Kiani, Lloyd 2021, Section 2: the adversarial distance of a binary classifier).

The attacks' verification (:mod:`randadv.attacks.verify`) asks for a margin of the rounding
bound (:func:`randadv.protocol.rounding.rounding_bound_of`); their searches and the exact
solvers' numpy checks use the same test with margin 0 or their own push margin."""

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
