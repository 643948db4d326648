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
    every result reports (De Palma et al. 2021, Remark 5: l1, l2, linf).

    Example::

        >>> lp_norm(torch.tensor([[3.0, -4.0]]), "l2"), lp_norm(torch.tensor([[3.0, -4.0]]), "l1")
        (tensor([5.]), tensor([7.]))
    """
    v = v.reshape(v.shape[0], -1)
    if norm == "l1":
        return v.abs().sum(1)
    if norm == "l2":
        return v.norm(dim=1)
    return v.abs().amax(1)


def dual_norm(v: torch.Tensor, norm: str) -> torch.Tensor:
    """The dual norm (l1 <-> linf, l2 <-> l2) of every row of ``v`` (B, ...) -> (B,)."""
    return lp_norm(v, _dual_name(norm))


def pnorm(v: np.ndarray, norm: str, axis: int = -1) -> np.ndarray:
    """The l1 / l2 / linf norm of a float64 numpy ``v`` along ``axis`` (the exact solvers'
    twin of :func:`lp_norm`)."""
    if norm == "l1":
        return np.abs(v).sum(axis=axis)
    if norm == "l2":
        return np.sqrt((v * v).sum(axis=axis))
    return np.abs(v).max(axis=axis) if v.shape[axis] > 0 else np.zeros(v.shape[:axis])


def dual_pnorm(v: np.ndarray, norm: str, axis: int = -1) -> np.ndarray:
    """The dual norm of :func:`pnorm`: l1 -> linf, l2 -> l2, linf -> l1."""
    return pnorm(v, _dual_name(norm), axis=axis)
