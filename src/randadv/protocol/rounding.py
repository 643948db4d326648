"""The bound on a forward pass's rounding error used to decide a flip on every path (the
module docstring of :mod:`randadv.attacks.verify` derives and measures it)."""

from __future__ import annotations

import torch

ROUNDING_FACTOR = 32
"""The factor of eps in the rounding bound (derived and measured in
:mod:`randadv.attacks.verify`).

Paper:
    none (utility: the margin a verified flip must clear).

Example:
    >>> from randadv.protocol import ROUNDING_FACTOR
    >>> ROUNDING_FACTOR
    32
"""


def rounding_bound_of(f: torch.Tensor, grad: torch.Tensor, points: torch.Tensor,
                      dtype: torch.dtype | None = None) -> torch.Tensor:
    """``ROUNDING_FACTOR * eps * (|f| + sum_i |x_i df/dx_i|)`` per row from f and grad f at
    ``points`` (B, ...); eps of ``dtype``, by default the points' (the exact solvers evaluate in
    float64 the bound of a float32 model).

    Paper:
        none (utility: deciding that a point is on the other side despite float rounding).

    Arguments:
        f: (B,) values at ``points``; grad: (B, ...) gradients; points: (B, ...) inputs;
        dtype: whose eps (default the points').

    Returns:
        The (B,) bounds, in the points' dtype.

    Example:
        >>> import torch
        >>> from randadv.protocol import rounding_bound_of
        >>> x = torch.ones(2, 3); g = torch.full((2, 3), 0.5); f = torch.tensor([1.5, -1.5])
        >>> b = rounding_bound_of(f, g, x)    # 32 * eps32 * (1.5 + 1.5)
        >>> torch.allclose(b, torch.full((2,), 32 * 2.0**-23 * 3.0))
        True
    """
    eps = torch.finfo(dtype if dtype is not None else points.dtype).eps
    terms = (points * grad).abs().reshape(points.shape[0], -1).sum(1)
    return ROUNDING_FACTOR * eps * (f.abs() + terms).to(points.dtype)
