"""The l1 / l2 / linf norms of the papers' distance bounds (De Palma et al. 2021, Remark 5),
as one type shared by the attacks, the exact solvers and the experiments, and the one set of
norm helpers: :func:`lp_norm` / :func:`dual_norm` on torch rows, :func:`pnorm` /
:func:`dual_pnorm` on the exact solvers' float64 numpy vectors."""

from __future__ import annotations

import math
from enum import Enum

import numpy as np
import torch

from randadv.errors import InvalidInputError

NORMS = ("l1", "l2", "linf")
"""The norms' names, in order.

Paper:
    De Palma et al. 2021, Remark 5 (the l_p distances, p = 1, 2, inf).

Example:
    >>> from randadv.protocol import NORMS
    >>> NORMS
    ('l1', 'l2', 'linf')
"""
_ALIASES = {"l1": "l1", "1": "l1", "l2": "l2", "2": "l2", "linf": "linf", "inf": "linf",
            "l_inf": "linf", "l_infty": "linf"}


class Norm(str, Enum):
    """An l_p norm, p in {1, 2, inf}. A ``str`` subclass equal to its name (``Norm.L2 ==
    "l2"``), so it keys dictionaries, serialises to JSON and compares as the plain names did.

    Paper:
        De Palma et al. 2021, Remark 5 (the l1, l2, linf distances of Figures 1, 2).

    Attributes:
        L1, L2, LINF: the members; ``p``: the exponent (1.0, 2.0, inf); ``dual``: the dual norm.

    Arguments:
        value: a member's name (``Norm("l2")``); :meth:`parse` also takes aliases.

    Example:
        >>> from randadv.protocol import Norm
        >>> Norm.parse("inf"), Norm.L1.dual, Norm.L2.p
        (<Norm.LINF: 'linf'>, <Norm.LINF: 'linf'>, 2.0)
        >>> Norm.L2 == "l2"
        True
    """

    L1 = "l1"
    L2 = "l2"
    LINF = "linf"

    __hash__ = str.__hash__

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, norm: object) -> Norm:
        """``norm`` as a :class:`Norm` (aliases ``"1"``, ``"inf"``, ``"l_inf"`` ... accepted);
        :class:`InvalidInputError` naming the known norms otherwise."""
        if isinstance(norm, Norm):
            return norm
        key = str(norm).lower().replace(" ", "")
        if key not in _ALIASES:
            raise InvalidInputError(f"norm must be one of {NORMS}, got {norm!r}")
        return cls(_ALIASES[key])

    @property
    def p(self) -> float:
        """The exponent p (``math.inf`` for linf)."""
        return {"l1": 1.0, "l2": 2.0, "linf": math.inf}[self.value]

    @property
    def dual(self) -> Norm:
        """The dual norm: l1 <-> linf, l2 <-> l2."""
        return Norm({"l1": "linf", "l2": "l2", "linf": "l1"}[self.value])


def check_norm(norm: object) -> Norm:
    """Normalise ``norm`` to :class:`Norm` (``"l1"``, ``"l2"`` or ``"linf"``).

    Paper:
        De Palma et al. 2021, Remark 5 (the l1, l2, linf distances).

    Arguments:
        norm: a :class:`Norm`, a name or an alias (``"inf"``, ``"2"``, ...).

    Returns:
        The :class:`Norm`; :class:`randadv.errors.InvalidInputError` for anything else.

    Example:
        >>> from randadv.protocol import check_norm
        >>> check_norm("2")
        <Norm.L2: 'l2'>
    """
    return Norm.parse(norm)


def _dual_name(norm: str) -> str:
    return {"l1": "linf", "l2": "l2", "linf": "l1"}[norm]


def lp_norm(v: torch.Tensor, norm: str) -> torch.Tensor:
    """``||v_b||_p`` of every row of ``v`` (B, ...) -> (B,): the distance every attack and
    every result reports.

    Paper:
        De Palma et al. 2021, Remark 5 (the l1, l2, linf distances).

    Arguments:
        v: (B, ...) tensor; each row (all dimensions after the first) is one vector.
        norm: ``"l1"``, ``"l2"`` or ``"linf"`` (a :class:`Norm` or its name; anything else is
            read as linf: check it with :func:`check_norm` first).

    Returns:
        The (B,) norms, in v's dtype.

    Example:
        >>> import torch
        >>> from randadv.protocol import lp_norm
        >>> v = torch.tensor([[3.0, -4.0], [0.0, 1.0]])
        >>> lp_norm(v, "l1"), lp_norm(v, "l2"), lp_norm(v, "linf")
        (tensor([7., 1.]), tensor([5., 1.]), tensor([4., 1.]))
    """
    v = v.reshape(v.shape[0], -1)
    if norm == "l1":
        return v.abs().sum(1)
    if norm == "l2":
        return v.norm(dim=1)
    return v.abs().amax(1)


def dual_norm(v: torch.Tensor, norm: str) -> torch.Tensor:
    """The dual norm (l1 <-> linf, l2 <-> l2) of every row of ``v`` (B, ...) -> (B,): the l_p
    distance from x to the zero set of a linear ``f(x) + g . d`` is ``|f(x)| / ||g||_dual``.

    Paper:
        none (utility: Hoelder duality, used by the linear distance estimates of the attacks).

    Arguments:
        v: (B, ...) tensor; each row is one vector.
        norm: the primal norm, ``"l1"``, ``"l2"`` or ``"linf"``.

    Returns:
        The (B,) dual norms ``lp_norm(v, dual)``.

    Example:
        >>> import torch
        >>> from randadv.protocol import dual_norm
        >>> g = torch.tensor([[3.0, 4.0]])
        >>> dual_norm(g, "l1"), dual_norm(g, "l2"), dual_norm(g, "linf")
        (tensor([4.]), tensor([5.]), tensor([7.]))
    """
    return lp_norm(v, _dual_name(norm))


def pnorm(v: np.ndarray, norm: str, axis: int = -1) -> np.ndarray:
    """The l1 / l2 / linf norm of a float64 numpy ``v`` along ``axis`` (the exact solvers'
    twin of :func:`lp_norm`); the linf norm of an empty axis is 0.

    Paper:
        De Palma et al. 2021, Remark 5 (the l1, l2, linf distances).

    Arguments:
        v: numpy array (float64 in the exact solvers).
        norm: ``"l1"``, ``"l2"`` or ``"linf"`` (anything else is read as linf).
        axis: the axis summed over (default the last).

    Returns:
        The norms: a numpy array with ``axis`` removed (a numpy float for a vector).

    Example:
        >>> import numpy as np
        >>> from randadv.protocol import pnorm
        >>> v = np.array([[3.0, -4.0], [0.0, 1.0]])
        >>> pnorm(v, "l1").tolist(), pnorm(v, "l2").tolist(), pnorm(v, "linf", axis=0).tolist()
        ([7.0, 1.0], [5.0, 1.0], [3.0, 4.0])
    """
    if norm == "l1":
        return np.abs(v).sum(axis=axis)
    if norm == "l2":
        return np.sqrt((v * v).sum(axis=axis))
    return np.abs(v).max(axis=axis) if v.shape[axis] > 0 else np.zeros(v.shape[:axis])


def dual_pnorm(v: np.ndarray, norm: str, axis: int = -1) -> np.ndarray:
    """The dual norm of :func:`pnorm`: l1 -> linf, l2 -> l2, linf -> l1 (the exact solvers'
    twin of :func:`dual_norm`).

    Paper:
        none (utility: Hoelder duality on the exact solvers' numpy vectors).

    Arguments:
        v: numpy array.
        norm: the primal norm, ``"l1"``, ``"l2"`` or ``"linf"``.
        axis: the axis summed over (default the last).

    Returns:
        ``pnorm(v, dual, axis)``.

    Example:
        >>> import numpy as np
        >>> from randadv.protocol import dual_pnorm
        >>> g = np.array([3.0, 4.0])
        >>> float(dual_pnorm(g, "l1")), float(dual_pnorm(g, "l2")), float(dual_pnorm(g, "linf"))
        (4.0, 5.0, 7.0)
    """
    return pnorm(v, _dual_name(norm), axis=axis)
