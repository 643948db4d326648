"""Robustness radii of random deep networks: De Palma, Kiani, Lloyd (ICML 2021), Section 3.

With probability at least ``1 - delta`` over the random network, no classification boundary
crosses the l1 ball of radius ``r`` around ``x0`` (Corollary 1, eq. (16)), nor the segment of length
``r`` from ``x0`` along any fixed direction (eq. (18)). Notation:

* ``n = n_C^(0) |I^(0)|``: input dimension;
* ``pixel_ratio = |I^(L_f)| / |I^(0)|``: pixels of the layer flattened by the first fully connected
  layer over input pixels (:attr:`randadv.nets.conv.RandomImageNet.pixel_ratio`); Theorem 2,
  eq. (14): ``M = sqrt(|I^(0)| / |I^(L_f)|) = pixel_ratio ** -1/2``;
* ``a_n = 12 sqrt(ln 4n) + 8 ln n sqrt(ln 2n) + 2 sqrt(pi)``: the denominator of eqs. (10)/(16)
  (Dudley's entropy integral over the l1 ball; Remark 2: the constants are not sharp).

Remark 5 (eq. (23)): ``||v||_1 <= n^{1 - 1/p} ||v||_p``, so the l_p ball of radius
``r_1 n^{1/p - 1}`` lies in the l1 ball of radius ``r_1``: :func:`lp_radius` is that rigorous
consequence of eq. (16). For inputs with Theta(1) entries (``||x0||_2 = Theta(sqrt n)``) this gives
the scalings ``r_p = Omega~(n^{1/p - 1/2})`` (l1: sqrt(n), l2: 1, linf: 1/sqrt(n)) and relative
radii ``r_p / ||x0||_p = Omega~(1/sqrt(n))`` in every norm (:func:`remark5_exponent`).

Note: eq. (21) prints ``delta sqrt(n) |I^(L_f)|/|I^(0)|``; eqs. (14), (16), (20) give
``delta sqrt(n) sqrt(|I^(L_f)|/|I^(0)|)`` (the two agree on the scaling in n, Remark 5 keeps the
ratio fixed). The functions here implement (10), (12), (14), (16), (18) exactly as printed.

All functions accept scalars or numpy arrays (broadcast) and return a float or an array.
"""

from __future__ import annotations

import math

import numpy as np

from randadv.errors import InvalidInputError

ArrayLike = float | int | np.ndarray


def _arr(value: ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise InvalidInputError(f"{name} must be finite, got {value!r}")
    return a


def _out(a: np.ndarray) -> float | np.ndarray:
    return float(a) if a.ndim == 0 else a


def _check_n(n: ArrayLike) -> np.ndarray:
    a = _arr(n, "n")
    if np.any(a < 1):
        raise InvalidInputError(f"n (input dimension) must be >= 1, got {n!r}")
    return a


def _check_delta(delta: ArrayLike) -> np.ndarray:
    a = _arr(delta, "delta")
    if np.any((a <= 0) | (a >= 1)):
        raise InvalidInputError(f"delta must be in (0, 1), got {delta!r}")
    return a


def _check_positive(value: ArrayLike, name: str, allow_zero: bool = False) -> np.ndarray:
    a = _arr(value, name)
    if np.any(a < 0) or (not allow_zero and np.any(a == 0)):
        raise InvalidInputError(f"{name} must be {'>=' if allow_zero else '>'} 0, got {value!r}")
    return a


def _check_p(p: float) -> float:
    p = float(p)
    if not p >= 1:
        raise InvalidInputError(f"p must be >= 1 (or inf), got {p}")
    return p


def dudley_denominator(n: ArrayLike) -> float | np.ndarray:
    """``a_n = 12 sqrt(ln 4n) + 8 ln n sqrt(ln 2n) + 2 sqrt(pi)``: denominator of (10), (16)."""
    a = _check_n(n)
    return _out(12 * np.sqrt(np.log(4 * a)) + 8 * np.log(a) * np.sqrt(np.log(2 * a))
                + 2 * math.sqrt(math.pi))


def dudley_denominator_exponent(n_min: float, n_max: float) -> float:
    """``d ln a_n / d ln n`` between ``n_min`` and ``n_max``: the exponent the logarithmic
    factor ``a_n`` of eq. (16) (:func:`dudley_denominator`) adds to a fitted ``n^e`` over that
    range (NaN unless ``n_max > n_min``).

    Paper:
        De Palma et al. 2021, Corollary 1, eq. (16) (a_n), Remark 5 (the exponents).

    Arguments:
        n_min, n_max: the range of input dimensions.

    Returns:
        The exponent (small and positive: a_n grows like ln n sqrt(ln n)).

    Example:
        >>> from randadv.theory.robustness_bounds import dudley_denominator_exponent
        >>> round(dudley_denominator_exponent(432, 10800), 3)
        0.166
    """
    if n_max <= n_min:
        return float("nan")
    a = np.asarray(dudley_denominator(np.array([n_min, n_max], float)))
    return float(np.log(a[1] / a[0]) / np.log(n_max / n_min))


def smoothness_constant(pixel_ratio: ArrayLike) -> float | np.ndarray:
    """Theorem 2, eq. (14): ``M = sqrt(|I^(0)| / |I^(L_f)|) = pixel_ratio ** -1/2``."""
    return _out(1.0 / np.sqrt(_check_positive(pixel_ratio, "pixel_ratio")))


def theorem1_l1_radius(x_norm2: ArrayLike, delta: ArrayLike, M: ArrayLike,
                       n: ArrayLike) -> float | np.ndarray:
    """Theorem 1, eq. (10): ``||x0||_2 delta sqrt(pi) / (M a_n)`` for a Gaussian process whose
    kernel satisfies eq. (8) with constant ``M``.

    Paper:
        De Palma et al. 2021, Theorem 1, eq. (10).

    Arguments:
        x_norm2: ``||x0||_2``; delta: failure probability; M: the constant of eq. (8); n: input
        dimension.

    Returns:
        The l1 radius (float or array).

    Example:
        >>> from randadv.theory import theorem1_l1_radius
        >>> r_m1 = theorem1_l1_radius(1.0, 0.5, 1.0, 100)
        >>> r_m2 = theorem1_l1_radius(1.0, 0.5, 2.0, 100)
        >>> round(float(r_m2 / r_m1), 6)   # proportional to 1 / M
        0.5
    """
    x = _check_positive(x_norm2, "x_norm2", allow_zero=True)
    d, m = _check_delta(delta), _check_positive(M, "M")
    return _out(x * d * math.sqrt(math.pi) / (m * np.asarray(dudley_denominator(n))))


def theorem1_segment_radius(x_norm2: ArrayLike, delta: ArrayLike,
                            M: ArrayLike) -> float | np.ndarray:
    """Theorem 1, eq. (12): ``pi ||x0||_2 delta / (2 M + pi)``.

    Paper:
        De Palma et al. 2021, Theorem 1, eq. (12).

    Arguments:
        x_norm2: ``||x0||_2``; delta: failure probability; M: the constant of eq. (8).

    Returns:
        The length (float or array).

    Example:
        >>> from randadv.theory import theorem1_segment_radius
        >>> round(float(theorem1_segment_radius(1.0, 0.5, 1.0)), 4)   # pi / 2 / (2 + pi)
        0.3055
    """
    x = _check_positive(x_norm2, "x_norm2", allow_zero=True)
    d, m = _check_delta(delta), _check_positive(M, "M")
    return _segment_radius(x, d, m)


def _segment_radius(x: np.ndarray, d: np.ndarray, m: np.ndarray) -> float | np.ndarray:
    """Eq. (12) on checked arguments: ``pi x d / (2 m + pi)`` (Theorem 1 and, with
    ``m = pixel_ratio ** -1/2``, Corollary 1's eq. (18))."""
    return _out(math.pi * x * d / (2 * m + math.pi))


def corollary1_l1_radius(n: ArrayLike, delta: ArrayLike, pixel_ratio: ArrayLike,
                         x_norm2: ArrayLike) -> float | np.ndarray:
    """Corollary 1, eq. (16): the l1 radius
    ``||x0||_2 delta sqrt(pi) sqrt(|I^(L_f)|/|I^(0)|) / a_n`` within which, with probability
    ``>= 1 - delta``, no boundary crosses the ball ``B^1_r(x0)`` (eq. (17)).

    Paper:
        De Palma et al. 2021, Corollary 1, eqs. (16), (17).

    Arguments:
        n: input dimension; delta: failure probability; pixel_ratio: ``|I^(L_f)| / |I^(0)|``;
        x_norm2: ``||x0||_2``.

    Returns:
        The radius (float or array, broadcast over the arguments).

    Example:
        >>> from randadv.theory import corollary1_l1_radius
        >>> r1 = corollary1_l1_radius(784, 0.5, 1.0, 1.0)
        >>> r2 = corollary1_l1_radius(784, 0.5, 1.0, 2.0)
        >>> round(float(r2 / r1), 6)   # linear in ||x0||_2
        2.0
    """
    x = _check_positive(x_norm2, "x_norm2", allow_zero=True)
    d, rho = _check_delta(delta), _check_positive(pixel_ratio, "pixel_ratio")
    return _out(x * d * math.sqrt(math.pi) * np.sqrt(rho) / np.asarray(dudley_denominator(n)))


def corollary1_segment_radius(delta: ArrayLike, pixel_ratio: ArrayLike,
                              x_norm2: ArrayLike) -> float | np.ndarray:
    """Corollary 1, eq. (18): ``pi ||x0||_2 delta / (2 sqrt(|I^(0)|/|I^(L_f)|) + pi)``: the
    length of a segment from ``x0`` along a fixed unit direction that, with probability
    ``>= 1 - delta``, no boundary crosses (eq. (19)). Independent of n. It is Theorem 1's
    eq. (12) (:func:`theorem1_segment_radius`) with ``M = pixel_ratio ** -1/2`` (eq. (14)).

    Paper:
        De Palma et al. 2021, Corollary 1, eqs. (18), (19).

    Arguments:
        delta: failure probability; pixel_ratio: ``|I^(L_f)| / |I^(0)|``; x_norm2: ``||x0||_2``.

    Returns:
        The length (float or array).

    Example:
        >>> from randadv.theory import corollary1_segment_radius, theorem1_segment_radius
        >>> round(float(corollary1_segment_radius(0.5, 1.0, 1.0)), 4)   # pi / 2 / (2 + pi)
        0.3055
        >>> r = corollary1_segment_radius(0.5, 0.25, 1.0)   # pixel_ratio 1/4: M = 2
        >>> bool(r == theorem1_segment_radius(1.0, 0.5, 2.0))
        True
    """
    x = _check_positive(x_norm2, "x_norm2", allow_zero=True)
    d, rho = _check_delta(delta), _check_positive(pixel_ratio, "pixel_ratio")
    return _segment_radius(x, d, 1.0 / np.sqrt(rho))


def lp_radius(p: float, n: ArrayLike, delta: ArrayLike, pixel_ratio: ArrayLike,
              x_norm2: ArrayLike) -> float | np.ndarray:
    """Remark 5: the l_p radius implied by eq. (16) through eq. (23),
    ``r_p = r_1 n^{1/p - 1}`` (``p = inf``: ``r_1 / n``): with probability ``>= 1 - delta`` no
    boundary crosses ``B^p_{r_p}(x0)`` (eq. (24)).

    Paper:
        De Palma et al. 2021, Remark 5, eqs. (23), (24).

    Arguments:
        p: the norm (1, 2, ..., ``float("inf")``); n, delta, pixel_ratio, x_norm2: as in
        :func:`corollary1_l1_radius`.

    Returns:
        ``r_p`` (float or array).

    Example:
        >>> from randadv.theory import corollary1_l1_radius, lp_radius
        >>> r1 = corollary1_l1_radius(100, 0.5, 1.0, 1.0)
        >>> [round(float(lp_radius(p, 100, 0.5, 1.0, 1.0) / r1), 6) for p in (2, float("inf"))]
        [0.1, 0.01]
    """
    p = _check_p(p)
    r1 = np.asarray(corollary1_l1_radius(n, delta, pixel_ratio, x_norm2))
    return _out(r1 * np.asarray(_check_n(n)) ** (1.0 / p - 1.0))


def remark5_exponent(p: float, relative: bool = False) -> float:
    """Exponent ``e`` of the Remark 5 scaling ``r_p ~ n^e`` (up to logarithms) for inputs with
    Theta(1) entries: ``1/p - 1/2`` (l1: 1/2, l2: 0, linf: -1/2); ``relative=True``: of
    ``r_p / ||x0||_p``, ``-1/2`` for every p.

    Paper:
        De Palma et al. 2021, Remark 5.

    Arguments:
        p: the norm (``float("inf")`` for linf); relative: the exponent of ``r_p / ||x0||_p``.

    Returns:
        The exponent as a float.

    Example:
        >>> from randadv.theory import remark5_exponent
        >>> [remark5_exponent(p) for p in (1, 2, float("inf"))], remark5_exponent(1, relative=True)
        ([0.5, 0.0, -0.5], -0.5)
    """
    p = _check_p(p)
    return -0.5 if relative else 1.0 / p - 0.5


def remark5_scaling(n: ArrayLike, p: float, c: float = 1.0,
                    relative: bool = False) -> float | np.ndarray:
    """``c n^e`` with ``e = remark5_exponent(p, relative)``: the reference lines ``c sqrt(n)``,
    ``c``, ``c / sqrt(n)`` of the distance-vs-n figures (Figures 1, 2).

    Paper:
        De Palma et al. 2021, Remark 5 and Figures 1, 2.

    Arguments:
        n: input dimension(s); p: the norm; c: the prefactor; relative: as in
        :func:`remark5_exponent`.

    Returns:
        ``c n^e`` (float or array).

    Example:
        >>> from randadv.theory import remark5_scaling
        >>> float(remark5_scaling(100, 1, c=2.0)), float(remark5_scaling(100, float("inf")))
        (20.0, 0.1)
    """
    return _out(float(c) * np.asarray(_check_n(n)) ** remark5_exponent(p, relative))


def uniform_input_norm(n: ArrayLike, p: float, low: float = 0.0,
                       high: float = 1.0) -> float | np.ndarray:
    """Typical ``||x||_p`` of ``x`` with ``n`` i.i.d. entries uniform in [low, high], for the
    overlays when no measured norm is at hand: ``(n E|x_i|^p)^{1/p}`` (the law of large numbers'
    value; p = inf: ``max(|low|, |high|)``). For [0, 1]: l1 ``n/2``, l2 ``sqrt(n/3)``.

    Paper:
        De Palma et al. 2021, Remark 5 (inputs with Theta(1) entries) and Figures 1, 2.

    Arguments:
        n: input dimension(s); p: the norm; low, high: the interval of the entries.

    Returns:
        ``||x||_p`` (float or array).

    Example:
        >>> from randadv.theory import uniform_input_norm
        >>> [float(uniform_input_norm(n, p)) for n, p in ((100, 1), (300, 2), (5, float("inf")))]
        [50.0, 10.0, 1.0]
    """
    p = _check_p(p)
    a = _check_n(n)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise InvalidInputError(f"need finite low < high, got [{low}, {high}]")
    if math.isinf(p):
        return _out(np.full_like(a, max(abs(low), abs(high))))
    # E|x|^p for x ~ U[low, high]: integral of |t|^p dt / (high - low)
    def prim(t: float) -> float:
        return math.copysign(abs(t) ** (p + 1) / (p + 1), t)
    moment = (prim(high) - prim(low)) / (high - low)
    return _out((a * moment) ** (1.0 / p))
