"""Correlation maps of random networks: how the correlation of two inputs evolves with depth.

For a layer ``z -> W psi(z)`` with i.i.d. Gaussian weights, two pre-activations (u, v) that are
jointly Gaussian with equal variance q and correlation rho produce next-layer pre-activations of
correlation ``c(rho) = E psi(u) psi(v) / E psi(u)^2`` (the normalised dual kernel).

* ReLU: ``c(rho) = (sin t + (pi - t) cos t) / pi`` with ``t = arccos rho``
  (Bartlett, Bubeck, Cherapanamjeri 2021, Lemma 3.2; Cho & Saul 2009, eq. (6), arc-cosine kernel
  of degree 1). Iterating it drives every correlation to 1, which is why very deep random ReLU
  networks are nearly constant on the sphere (Bartlett et al. 2021, Theorem 3.1):
  ``1 - c^l(rho) ~ 9 pi^2 / (2 l^2)``.
* Any activation: 2-D Gaussian quadrature (:func:`gaussian_expectation_2d`).

All functions here are pure numpy: arrays (or floats) in, arrays (or floats) out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import scipy.special
import torch
from numpy.polynomial.hermite_e import hermegauss
from numpy.polynomial.laguerre import laggauss
from numpy.typing import ArrayLike

from randadv.errors import InvalidInputError
from randadv.nets.activations import ACTIVATIONS, Activation, TensorFn, get_activation

RHO_TOL = 1e-12
"""Correlations in ``[-1 - RHO_TOL, 1 + RHO_TOL]`` are accepted and clipped to [-1, 1]."""

QUADRATURES = ("polar", "hermite")
DEFAULT_N_QUAD = 256

NumpyFn2 = Callable[[np.ndarray, np.ndarray], np.ndarray]


# --------------------------------------------------------------------------- validation helpers
def _as_float_array(value: ArrayLike, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().to(torch.float64).numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be numeric, got {type(value).__name__}") from exc
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{name} holds NaN or inf")
    return arr


def check_rho(rho: ArrayLike) -> np.ndarray:
    """``rho`` as a float64 array clipped to [-1, 1]; InvalidInputError on NaN/inf or on values
    outside ``[-1 - RHO_TOL, 1 + RHO_TOL]``."""
    arr = _as_float_array(rho, "rho")
    if np.any(np.abs(arr) > 1.0 + RHO_TOL):
        bad = arr[np.abs(arr) > 1.0 + RHO_TOL].ravel()[0]
        raise InvalidInputError(f"correlation rho must lie in [-1, 1], got {bad!r}")
    return np.clip(arr, -1.0, 1.0)


def _out(arr: np.ndarray, scalar: bool) -> np.ndarray | float:
    return float(arr) if scalar else arr


def input_correlation(x: ArrayLike, y: ArrayLike) -> float:
    """Cosine ``x.y / (||x|| ||y||)`` of two nonzero vectors of the same shape (d,).

    Paper:
        Bartlett et al. 2021, Lemma 3.2 (cos theta of the two inputs).

    Arguments:
        x, y: nonzero vectors of the same shape (d,).

    Returns:
        The cosine as a float.

    Example:
        >>> from randadv.theory import input_correlation
        >>> round(input_correlation([1.0, 0.0], [1.0, 1.0]), 4)
        0.7071
    """
    xa, ya = _as_float_array(x, "x"), _as_float_array(y, "y")
    if xa.ndim != 1 or xa.shape != ya.shape:
        raise InvalidInputError(f"x and y must be vectors of the same shape (d,), got "
                                f"{xa.shape} and {ya.shape}")
    nx, ny = float(np.linalg.norm(xa)), float(np.linalg.norm(ya))
    if nx == 0.0 or ny == 0.0:
        raise InvalidInputError("the correlation of a zero vector is undefined")
    return float(np.clip(xa @ ya / (nx * ny), -1.0, 1.0))


# --------------------------------------------------------------------------- ReLU closed forms
def relu_correlation_map(rho: ArrayLike) -> np.ndarray | float:
    """ReLU correlation map ``c(rho) = (sin t + (pi - t) cos t) / pi``, ``t = arccos rho``.

    Bartlett et al. 2021, Lemma 3.2 (Cho & Saul 2009, eq. (6)). ``c(1) = 1``, ``c(0) = 1/pi``,
    ``c(-1) = 0``; c is increasing, convex and ``c(rho) >= rho``. Float in, float out; arrays
    elementwise. ``rho`` is clipped to [-1, 1] (values beyond ``1 + 1e-12`` raise).

    Paper:
        Bartlett et al. 2021, Lemma 3.2.

    Arguments:
        rho: correlation in [-1, 1] (float or array).

    Returns:
        ``c(rho)``, a float for a float, else an array.

    Example:
        >>> from randadv.theory import relu_correlation_map
        >>> [round(float(relu_correlation_map(r)), 4) for r in (-1.0, 0.0, 1.0)]
        [0.0, 0.3183, 1.0]
    """
    r = check_rho(rho)
    t = np.arccos(r)
    sin_t = np.sqrt((1.0 - r) * (1.0 + r))      # accurate near |rho| = 1
    out = np.clip((sin_t + (np.pi - t) * r) / np.pi, 0.0, 1.0)
    return _out(out, r.ndim == 0)


def relu_correlation_iterates(rho: ArrayLike, depth: int) -> np.ndarray:
    """``[rho, c(rho), c(c(rho)), ..., c^depth(rho)]``: the correlation of two inputs' hidden
    representations after each of ``depth`` ReLU layers (infinite width, no bias).

    Shape ``(depth + 1,)`` for a scalar ``rho``, ``(depth + 1, *rho.shape)`` for an array. The
    iterates increase to 1 (Bartlett et al. 2021, Lemma 3.2 and proof of Theorem 3.1).

    Paper:
        Bartlett et al. 2021, Lemma 3.2 and Theorem 3.1 (very deep nets are nearly constant).

    Arguments:
        rho: the input correlation (float or array).
        depth: number of ReLU layers.

    Returns:
        The iterates, shape ``(depth + 1,)`` or ``(depth + 1, *rho.shape)``.

    Example:
        >>> import numpy as np
        >>> from randadv.theory import relu_correlation_iterates
        >>> r = relu_correlation_iterates(0.0, 50)
        >>> bool(np.all(np.diff(r) > 0)), round(float(r[1]), 4), bool(r[-1] > 0.95)
        (True, 0.3183, True)
    """
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 0:
        raise InvalidInputError(f"depth must be an integer >= 0, got {depth!r}")
    r = check_rho(rho)
    out = np.empty((int(depth) + 1, *r.shape))
    out[0] = r
    for i in range(int(depth)):
        out[i + 1] = relu_correlation_map(out[i])
    return out


def relu_dual_kernel(s11: ArrayLike, s12: ArrayLike, s22: ArrayLike,
                     slope_pos: float = 1.0, slope_neg: float = 0.0) -> np.ndarray:
    """``E psi(u) psi(v)`` for ``(u, v) ~ N(0, [[s11, s12], [s12, s22]])`` and the
    piecewise-linear ``psi(z) = slope_pos * z (z > 0), slope_neg * z (z < 0)`` (ReLU by default).

    Cho & Saul 2009, arc-cosine kernel of degree 1: ``E relu(u) relu(v) =
    sqrt(s11 s22) (sin t + (pi - t) cos t) / (2 pi)``, ``cos t = s12 / sqrt(s11 s22)``; the
    leaky case follows from ``psi(z) = a relu(z) - b relu(-z)``.

    Paper:
        Bartlett et al. 2021, Lemma 3.2 (its numerator, unnormalised); the NNGP layer map of
        De Palma et al. 2021, Section 3.

    Arguments:
        s11, s12, s22: covariance entries (broadcast together).
        slope_pos, slope_neg: the slopes of psi for z > 0 and z < 0.

    Returns:
        ``E psi(u) psi(v)``, an array of the broadcast shape.

    Example:
        >>> from randadv.theory import relu_dual_kernel
        >>> [round(float(relu_dual_kernel(1.0, s12, 1.0)), 4) for s12 in (1.0, 0.0)]
        [0.5, 0.1592]
    """
    a, b = float(slope_pos), float(slope_neg)
    s11, s12, s22 = np.broadcast_arrays(*(np.asarray(s, dtype=np.float64) for s in (s11, s12, s22)))
    norm = np.sqrt(s11 * s22)
    rho = np.divide(s12, norm, out=np.ones_like(norm), where=norm > 0)
    rho = np.clip(rho, -1.0, 1.0)
    t = np.arccos(rho)
    sin_t = np.sqrt((1.0 - rho) * (1.0 + rho))
    k_same = (sin_t + (np.pi - t) * rho) / (2.0 * np.pi)   # E relu(u') relu(v'), unit variances
    k_opp = (sin_t - t * rho) / (2.0 * np.pi)               # E relu(u') relu(-v')
    return norm * ((a * a + b * b) * k_same - 2.0 * a * b * k_opp)


def relu_dual_kernel_derivative(s11: ArrayLike, s12: ArrayLike, s22: ArrayLike,
                                slope_pos: float = 1.0, slope_neg: float = 0.0) -> np.ndarray:
    """``E psi'(u) psi'(v)`` for the same Gaussian pair and piecewise-linear psi
    (Cho & Saul 2009, arc-cosine kernel of degree 0: ``P(u > 0, v > 0) = (pi - t) / (2 pi)``).

    Paper:
        Bartlett et al. 2021, Lemma 2.1 (at x = y: each ReLU unit is active with probability
        1/2); the gradient kernel of the NNGP limit (De Palma et al. 2021, Section 3).

    Arguments:
        s11, s12, s22: covariance entries (broadcast together).
        slope_pos, slope_neg: the slopes of psi for z > 0 and z < 0.

    Returns:
        ``E psi'(u) psi'(v)``, an array of the broadcast shape.

    Example:
        >>> from randadv.theory import relu_dual_kernel_derivative
        >>> round(float(relu_dual_kernel_derivative(1.0, 0.0, 1.0)), 4)   # P(u > 0, v > 0) = 1/4
        0.25
    """
    a, b = float(slope_pos), float(slope_neg)
    s11, s12, s22 = np.broadcast_arrays(*(np.asarray(s, dtype=np.float64) for s in (s11, s12, s22)))
    norm = np.sqrt(s11 * s22)
    rho = np.clip(np.divide(s12, norm, out=np.ones_like(norm), where=norm > 0), -1.0, 1.0)
    t = np.arccos(rho)
    return ((a * a + b * b) * (np.pi - t) + 2.0 * a * b * t) / (2.0 * np.pi)


# --------------------------------------------------------------------------- quadrature
@lru_cache(maxsize=16)
def _nodes(quad: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes (g1, g2) and weights (summing to 1) of a rule for E F(g), g ~ N(0, I_2)."""
    if quad == "hermite":
        z, w = hermegauss(n)
        g1, g2 = np.meshgrid(z, z, indexing="ij")
        weights = np.outer(w, w) / (2.0 * math.pi)
        return g1.ravel(), g2.ravel(), weights.ravel()
    # polar: g = R (cos phi, sin phi), R e^{-R^2/2} dR = e^{-t} dt with t = R^2 / 2 (Gauss-
    # Laguerre in t, both signs of R so that phi runs over [0, pi)), trapezoid in phi (spectral for
    # smooth integrands, O(n^-2) across the ray kinks of ReLU-like activations).
    n_rad = min(max(16, n // 4), 96)   # laggauss overflows beyond ~180 nodes
    t, wt = laggauss(n_rad)
    radius = np.concatenate([np.sqrt(2.0 * t), -np.sqrt(2.0 * t)])
    w_rad = np.concatenate([wt, wt]) / 2.0
    phi = (np.arange(n) + 0.5) * (math.pi / n)
    g1 = np.outer(radius, np.cos(phi)).ravel()
    g2 = np.outer(radius, np.sin(phi)).ravel()
    weights = np.repeat(w_rad / n, n)
    return g1, g2, weights


def check_covariance(s11: ArrayLike, s12: ArrayLike, s22: ArrayLike
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcast and validate the entries of 2x2 covariance matrices (PSD up to rounding)."""
    s11, s12, s22 = np.broadcast_arrays(_as_float_array(s11, "s11"), _as_float_array(s12, "s12"),
                                        _as_float_array(s22, "s22"))
    if np.any(s11 < 0) or np.any(s22 < 0):
        raise InvalidInputError("variances s11, s22 must be >= 0")
    if np.any(s12 * s12 > s11 * s22 * (1.0 + 1e-9) + 1e-300):
        raise InvalidInputError("covariance [[s11, s12], [s12, s22]] is not positive semidefinite")
    return s11, s12, s22


def gaussian_expectation_2d(fn: NumpyFn2, s11: ArrayLike, s12: ArrayLike, s22: ArrayLike, *,
                            n_quad: int = DEFAULT_N_QUAD, quad: str = "polar",
                            max_nodes: int = 4_000_000) -> np.ndarray | tuple[np.ndarray, ...]:
    """``E fn(u, v)`` for ``(u, v) ~ N(0, [[s11, s12], [s12, s22]])`` by 2-D Gaussian quadrature.

    ``fn`` maps numpy arrays ``(u, v)`` elementwise to an array of the same shape, or to a tuple
    of such arrays (then a tuple of expectations is returned, from one pass over the nodes). The
    covariance entries broadcast together; each result has their broadcast shape.

    ``quad="hermite"``: tensor Gauss-Hermite rule with ``n_quad <= 150`` nodes per axis
    (geometric convergence for analytic fn, e.g. tanh: 1e-6 at n = 48, 1e-11 at n = 128; only
    O(1/n) across a ReLU kink: 2e-3 at n = 128).
    ``quad="polar"`` (default): Gauss-Laguerre in the squared radius times the trapezoid rule in
    the angle (``n_quad`` angles). Kinks of ReLU-like activations lie on rays through 0, so the
    error is O(n^-2) for them (about 2e-5 at n = 256) and spectral for smooth fn.
    Uses ``u = a g1``, ``v = b g1 + c g2`` with the Cholesky factor of the covariance.

    Paper:
        none (utility: 2-D Gaussian quadrature behind the dual kernels and the infinite-width law).

    Arguments:
        fn: elementwise ``(u, v) -> array`` or a tuple of arrays (numpy).
        s11, s12, s22: the covariance entries (broadcast together).
        n_quad: nodes per axis (hermite) or angles (polar).
        quad: ``"polar"`` or ``"hermite"``.
        max_nodes: cap on nodes times broadcast size (memory guard).

    Returns:
        ``E fn(u, v)`` of the broadcast shape (a tuple when ``fn`` returns a tuple).

    Example:
        >>> from randadv.theory import gaussian_expectation_2d
        >>> round(float(gaussian_expectation_2d(lambda u, v: u * v, 1.0, 0.3, 2.0)), 6)   # E uv
        0.3
    """
    if quad not in QUADRATURES:
        raise InvalidInputError(f"quad must be one of {QUADRATURES}, got {quad!r}")
    if isinstance(n_quad, bool) or not isinstance(n_quad, (int, np.integer)) or n_quad < 2:
        raise InvalidInputError(f"n_quad must be an integer >= 2, got {n_quad!r}")
    if quad == "hermite" and n_quad > 150:   # hermegauss overflows beyond ~170 nodes
        raise InvalidInputError(f"quad='hermite' supports n_quad <= 150, got {n_quad}")
    s11, s12, s22 = check_covariance(s11, s12, s22)
    shape = s11.shape
    a = np.sqrt(s11).ravel()
    b = np.divide(s12.ravel(), a, out=np.zeros_like(a), where=a > 0)
    c = np.sqrt(np.maximum(s22.ravel() - b * b, 0.0))
    g1, g2, w = _nodes(quad, int(n_quad))
    outs: list[np.ndarray] = []
    multi = False
    chunk = max(1, max_nodes // g1.size)
    for lo in range(0, a.size, chunk):
        sl = slice(lo, lo + chunk)
        u = a[sl, None] * g1
        v = b[sl, None] * g1 + c[sl, None] * g2
        vals = fn(u, v)
        multi = isinstance(vals, (tuple, list))
        vals = vals if multi else (vals,)
        if not outs:
            outs = [np.empty(a.shape) for _ in vals]
        for o, val in zip(outs, vals, strict=True):
            o[sl] = np.broadcast_to(np.asarray(val, dtype=np.float64), u.shape) @ w
    res = tuple(o.reshape(shape) for o in outs)
    return res if multi else res[0]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return scipy.special.expit(z)


def _gelu(z: np.ndarray) -> np.ndarray:
    return z * scipy.special.ndtr(z)


def _gelu_grad(z: np.ndarray) -> np.ndarray:
    return scipy.special.ndtr(z) + z * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


# numpy twins of the registry activations of randadv.nets (same formulas; torch is slow on busy
# CPUs for the many small elementwise calls of the quadrature)
_NUMPY_TWINS: dict[str, tuple[Callable, Callable]] = {
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(np.float64)),
    "linear": (lambda z: z, np.ones_like),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1.0 - _sigmoid(z))),
    "softplus": (lambda z: np.logaddexp(0.0, z), _sigmoid),
    "gelu": (_gelu, _gelu_grad),
}


def numpy_activation(activation: str | Activation | TensorFn, derivative: bool = False
                     ) -> Callable[[np.ndarray], np.ndarray]:
    """The activation psi (or psi') of randadv.nets as a float64 numpy function.

    Registry activations use numpy twins of their torch formulas; any other activation calls its
    torch function on float64 tensors."""
    act = get_activation(activation)
    twin = _NUMPY_TWINS.get(act.name)
    if twin is not None and ACTIVATIONS.get(act.name) is act:
        return twin[1] if derivative else twin[0]
    fn = act.derivative if derivative else act.fn

    def f(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return fn(torch.from_numpy(np.ascontiguousarray(z, dtype=np.float64))).numpy()

    return f


def correlation_map(rho: ArrayLike, activation: str | Activation | TensorFn = "relu",
                    q: float = 1.0, *, n_quad: int = DEFAULT_N_QUAD, quad: str = "polar"
                    ) -> np.ndarray | float:
    """Normalised dual kernel ``E psi(X) psi(Y) / E psi(X)^2`` with X, Y ~ N(0, q), corr rho.

    The correlation of the next layer's (bias-free) pre-activations given correlation ``rho``
    and variance ``q`` at this layer (Lee et al. 2018 (NNGP); Poole et al. 2016). Computed by
    :func:`gaussian_expectation_2d` for any activation; for ReLU it equals
    :func:`relu_correlation_map` for every q (Bartlett et al. 2021, Lemma 3.2). For
    non-homogeneous activations (tanh, gelu, ...) it depends on q.

    Paper:
        Bartlett et al. 2021, Lemma 3.2 (the ReLU case, the same for every q); other activations:
        the layer-to-layer kernel map of the NNGP limit, De Palma et al. 2021, Section 3.

    Arguments:
        rho: correlation of the two pre-activations (float or array, in [-1, 1]).
        activation: psi (name, :class:`randadv.nets.Activation` or callable).
        q: variance of each pre-activation.
        n_quad, quad: the quadrature of :func:`gaussian_expectation_2d`.

    Returns:
        The next layer's correlation, a float for a float ``rho``, else an array of its shape.

    Example:
        >>> from randadv.theory import correlation_map
        >>> round(float(correlation_map(0.0, "relu")), 4)   # c(0) = 1/pi
        0.3183
        >>> round(float(correlation_map(1.0, "tanh", q=2.0)), 4)
        1.0
    """
    r = check_rho(rho)
    q = float(_as_float_array(q, "q"))
    if q <= 0:
        raise InvalidInputError(f"variance q must be > 0, got {q}")
    psi = numpy_activation(activation)
    num = gaussian_expectation_2d(lambda u, v: psi(u) * psi(v), q, q * r, q,
                                  n_quad=n_quad, quad=quad)
    den = float(gaussian_expectation_2d(lambda u, v: psi(u) ** 2, q, 0.0, q,
                                        n_quad=n_quad, quad=quad))
    if not den > 0:
        raise InvalidInputError("E psi(X)^2 = 0: the correlation map is undefined")
    return _out(num / den, r.ndim == 0)
