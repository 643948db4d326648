"""The Min-Pert radius of a one-hidden-layer network (Bartlett et al. 2021, Appendix D).

For ``f(x) = w_2^T relu(W_1 x)`` with ``W_1`` of shape (k, d), the smallest perturbation that maps
x into the kernel of ``W_1`` (after which every gradient pattern is reachable),

    min ||delta||  s.t.  W_1 (x - delta) = 0,                                      (Min-Pert)

is ``delta* = W_1^+ W_1 x``, the orthogonal projection of x onto the row space of W_1; its norm
upper-bounds the radius r of Appendix D. For Gaussian W_1 (any scale) and x independent of it,
the row space is a uniformly random min(k, d)-dimensional subspace, so for k < d

    ||delta*||^2 / ||x||^2 ~ Beta(k / 2, (d - k) / 2),    mean k / d,

which concentrates at the paper's prediction ``||delta*|| / ||x|| ~ sqrt(k / d)`` (Fig. 1); for
k >= d (and W_1 of full column rank) ``delta* = x``.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import torch
from numpy.typing import ArrayLike

from randadv.errors import InvalidInputError
from randadv.theory.correlation import _as_float_array

_to_float64 = _as_float_array   # one numeric-input check for the theory package


def _check_kd(k: int, d: int) -> tuple[int, int]:
    for name, v in (("k", k), ("d", d)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise InvalidInputError(f"{name} must be a positive integer, got {v!r}")
    return int(k), int(d)


def row_space_basis(W1: ArrayLike) -> np.ndarray:
    """Orthonormal basis (d, r) of the row space of ``W1`` (k, d), r = rank(W1), in float64.

    Rank-revealing (column-pivoted) QR of ``W1^T``: stable for any k, d and for rank-deficient
    W1, with the rank tolerance of ``numpy.linalg.matrix_rank`` on the diagonal of R."""
    W = _to_float64(W1, "W1")
    if W.ndim != 2 or W.shape[0] == 0 or W.shape[1] == 0:
        raise InvalidInputError(f"W1 must be a nonempty matrix (k, d), got shape {W.shape}")
    q, r, _ = scipy.linalg.qr(W.T, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    if diag.size == 0 or diag[0] == 0.0:
        return q[:, :0]
    tol = diag[0] * max(W.shape) * np.finfo(np.float64).eps
    return q[:, : int(np.sum(diag > tol))]


def _inputs(x: ArrayLike, d: int) -> tuple[np.ndarray, bool]:
    xa = _to_float64(x, "x")
    single = xa.ndim == 1
    if single:
        xa = xa[None, :]
    if xa.ndim != 2 or xa.shape[1] != d:
        raise InvalidInputError(f"x must have shape ({d},) or (B, {d}) to match W1, got "
                                f"{tuple(xa.shape) if not single else (xa.shape[1],)}")
    return xa, single


def min_pert_delta(W1: ArrayLike, x: ArrayLike) -> np.ndarray:
    """The solution ``delta* = W1^+ W1 x`` of Min-Pert (projection of x onto the row space of
    W1), shape of x: (d,) or (B, d); float64 numpy.

    Paper:
        Bartlett et al. 2021, Appendix D (Min-Pert).

    Arguments:
        W1: first-layer weights (k, d).
        x: one input (d,) or a batch (B, d).

    Returns:
        ``delta*``, float64 numpy of the shape of ``x``.

    Example:
        >>> import numpy as np
        >>> from randadv.theory import min_pert_delta
        >>> min_pert_delta(np.array([[1.0, 0.0, 0.0]]), np.array([1.0, 2.0, 3.0])).tolist()
        [1.0, 0.0, 0.0]
    """
    basis = row_space_basis(W1)
    xa, single = _inputs(x, basis.shape[0])
    delta = (xa @ basis) @ basis.T
    return delta[0] if single else delta


def min_pert_radius(W1: ArrayLike, x: ArrayLike) -> float | np.ndarray:
    """``||W1^+ W1 x||``, the optimal value of Min-Pert (Bartlett et al. 2021, Appendix D).

    Arguments:
        W1: first-layer weights (k, d), numpy or torch (any dtype; computed in float64).
        x: one input (d,) -> float, or a batch (B, d) -> array (B,).

    Equals ``||x||`` when k >= d and W1 has full column rank; for orthonormal rows it is the norm
    of the exact projection ``W1^T W1 x``.

    Paper:
        Bartlett et al. 2021, Appendix D (Min-Pert).

    Returns:
        ``||W1^+ W1 x||``: a float for one input, an array (B,) for a batch.

    Example:
        >>> import numpy as np
        >>> from randadv.theory import min_pert_radius
        >>> W1 = np.random.default_rng(0).standard_normal((5, 3))   # k >= d: the whole of x
        >>> round(float(min_pert_radius(W1, np.array([3.0, 0.0, 4.0]))), 6)
        5.0
    """
    basis = row_space_basis(W1)
    xa, single = _inputs(x, basis.shape[0])
    out = np.linalg.norm(xa @ basis, axis=1)   # ||Q^T x|| = ||Q Q^T x||, Q orthonormal
    return float(out[0]) if single else out


def min_pert_ratio(W1: ArrayLike, x: ArrayLike) -> float | np.ndarray:
    """``||W1^+ W1 x|| / ||x||`` (the quantity of Fig. 1); x must be nonzero.

    Paper:
        Bartlett et al. 2021, Appendix D, Figure 1.

    Arguments:
        W1: first-layer weights (k, d).
        x: one nonzero input (d,) or a batch (B, d).

    Returns:
        The ratio: a float for one input, an array (B,) for a batch.

    Example:
        >>> import numpy as np
        >>> from randadv.theory import min_pert_ratio
        >>> round(float(min_pert_ratio(np.array([[1.0, 0.0, 0.0, 0.0]]), np.ones(4))), 6)
        0.5
    """
    basis = row_space_basis(W1)
    xa, single = _inputs(x, basis.shape[0])
    norms = np.linalg.norm(xa, axis=1)
    if np.any(norms == 0):
        raise InvalidInputError("min_pert_ratio needs nonzero inputs x")
    out = np.linalg.norm(xa @ basis, axis=1) / norms
    return float(out[0]) if single else out


def min_pert_ratio_torch(w1: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """:func:`min_pert_ratio` for a Gaussian ``W1`` (k, d), full rank ``min(k, d)`` almost
    surely, from a Householder QR of ``W1^T`` in float64 with torch's thread settings (numpy's
    BLAS oversubscribes the cores of a shared machine: 7-30x slower measured on 2 busy cores).
    No rank detection: a rank-deficient ``W1`` needs :func:`min_pert_ratio`.

    Paper:
        Bartlett et al. 2021, Appendix D, Figure 1.

    Arguments:
        w1: first-layer weights (k, d), full rank.
        x: nonzero inputs (B, d).

    Returns:
        The ratios ``||W1^+ W1 x|| / ||x||``, a float64 tensor (B,).

    Example:
        >>> import torch
        >>> from randadv.theory import min_pert_ratio_torch
        >>> w1 = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
        >>> [round(v, 6) for v in min_pert_ratio_torch(w1, torch.ones(2, 4)).tolist()]
        [0.5, 0.5]
    """
    q = torch.linalg.qr(w1.T.to(torch.float64), mode="reduced").Q[:, : min(w1.shape)]
    xx = x.to(torch.float64)
    return (xx @ q).norm(dim=1) / xx.norm(dim=1)


def min_pert_ratio_theory(k: int, d: int) -> float:
    """The paper's prediction ``sqrt(min(k, d) / d)`` of ``||delta*|| / ||x||`` (Appendix D).

    Paper:
        Bartlett et al. 2021, Appendix D.

    Arguments:
        k: width; d: input dimension.

    Returns:
        ``sqrt(min(k, d) / d)`` as a float.

    Example:
        >>> from randadv.theory import min_pert_ratio_theory
        >>> min_pert_ratio_theory(25, 100), min_pert_ratio_theory(200, 100)
        (0.5, 1.0)
    """
    k, d = _check_kd(k, d)
    return math.sqrt(min(k, d) / d)


def min_pert_ratio_sq_moments(k: int, d: int) -> tuple[float, float]:
    """Exact mean and standard deviation of ``(||delta*|| / ||x||)^2`` for Gaussian W1 (k, d)
    and x independent of it: Beta(k/2, (d-k)/2), mean k/d, variance 2 k (d - k) / (d^2 (d + 2));
    the constant 1 when k >= d.

    Paper:
        Bartlett et al. 2021, Appendix D (the law of ||delta*||^2 / ||x||^2).

    Arguments:
        k: width; d: input dimension.

    Returns:
        ``(mean, std)`` of the squared ratio.

    Example:
        >>> from randadv.theory import min_pert_ratio_sq_moments
        >>> mean, std = min_pert_ratio_sq_moments(1, 2)   # Beta(1/2, 1/2): 1/2 and sqrt(1/8)
        >>> round(mean, 6), round(std, 6)
        (0.5, 0.353553)
    """
    k, d = _check_kd(k, d)
    if k >= d:
        return 1.0, 0.0
    return k / d, math.sqrt(2.0 * k * (d - k) / (d * d * (d + 2.0)))


def min_pert_ratio_mean(k: int, d: int) -> float:
    """Exact ``E ||delta*|| / ||x||`` for Gaussian W1 (k, d) and independent x:
    ``E sqrt(Beta(k/2, (d-k)/2)) = Gamma((k+1)/2) Gamma(d/2) / (Gamma(k/2) Gamma((d+1)/2))``,
    slightly below ``sqrt(k/d)`` (Jensen); 1 when k >= d.

    Paper:
        Bartlett et al. 2021, Appendix D (the concentration around sqrt(k/d)).

    Arguments:
        k: width; d: input dimension.

    Returns:
        The exact mean as a float.

    Example:
        >>> from randadv.theory import min_pert_ratio_mean
        >>> round(min_pert_ratio_mean(1, 2), 4), min_pert_ratio_mean(5, 3)   # 2 / pi; k >= d
        (0.6366, 1.0)
    """
    k, d = _check_kd(k, d)
    if k >= d:
        return 1.0
    return math.exp(math.lgamma((k + 1) / 2) + math.lgamma(d / 2)
                    - math.lgamma(k / 2) - math.lgamma((d + 1) / 2))
