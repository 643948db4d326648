"""Infinite-width (NNGP) kernel and expected input-gradient norm of the random MLPs of randadv.

Network (``randadv.nets.RandomMLP``, NN-DEF of Bartlett et al. 2021 with optional biases):
``z_1 = W_1 x + b_1``, ``z_{l+1} = W_{l+1} psi(z_l) + b_{l+1}``, ``f(x) = a . psi(z_L)``, with
``W_1`` entries N(0, sigma_w^2 / d), ``W_l`` (l >= 2) entries N(0, sigma_w^2 g / d_{l-1}),
``b_l`` entries N(0, bias_std^2) and ``a ~ N(0, sigma_w^2 I / d_L)`` (Gaussian output) or
``+-sigma_w / sqrt(d_L)`` (Rademacher output; same second moments, hence the same kernel).
The parameters have the names of :class:`randadv.nets.RandomMLP` and :mod:`randadv.arch`:
``hidden_gain`` = g (the hidden layers' variance gain; 2 is He scaling) and ``sigma_w2`` =
sigma_w^2 (every layer's variance gain, the name of :mod:`randadv.nets.zoo`; ``RandomMLP`` has
``sigma_w2 = 1``; the keyword ``sigma_w`` is its deprecated alias, ``sigma_w2 = sigma_w ** 2``).
Below, ``sigma_w^2`` multiplying a hidden layer stands for ``sigma_w^2 g``.

NNGP recursion (Lee et al. 2018 (NNGP), eq. (4); Neal 1996; Matthews et al. 2018): as
``d_1, ..., d_L -> infinity`` the pre-activations of each layer at inputs (x, y) are centred
Gaussian with covariance ``Sigma_l`` (2x2), where

    Sigma_1 = sigma_w^2 / d * [[x.x, x.y], [x.y, y.y]] + bias_std^2,
    Sigma_{l+1} = sigma_w^2 E[psi(u) psi(u)^T]_{u ~ N(0, Sigma_l)} + bias_std^2,
    E f(x) f(y) = sigma_w^2 E[psi(u_x) psi(u_y)]_{u ~ N(0, Sigma_L)}.

For ReLU (and any piecewise-linear psi) the expectation is the arc-cosine kernel of degree 1
(Cho & Saul 2009, eq. (6); Bartlett et al. 2021, Lemma 3.2); otherwise 2-D Gaussian quadrature.
For bias-free ReLU, ``E f(x)^2 = 2^-L ||x||^2 / d`` exactly at every width.

Gradient (:func:`expected_grad_norm_sq`): in the same limit the input gradient is the gradient of
the Gaussian process, ``E ||grad f(x)||^2 = sum_k d/dx_k d/dy_k K(x, y)|_{y = x}``. Splitting
R^d into the radial direction x/||x|| and its d - 1 orthogonal directions gives the exact limit

    E ||grad f(x)||^2 = (d - 1) T + R,

where each direction e contributes ``E (e . grad f)^2``, computed by propagating the joint
Gaussian law of ``(z_l, e . grad z_l)``: with ``(z, v) ~ N(0, [[A, B], [B, C]])``,

    A_{l+1} = sigma_w^2 E psi(z)^2 + bias_std^2,  B_{l+1} = sigma_w^2 E psi(z) psi'(z) v,
    C_{l+1} = sigma_w^2 E psi'(z)^2 v^2,           output: sigma_w^2 E psi'(z_L)^2 v_L^2,

starting from ``A_1 = sigma_w^2 ||x||^2 / d + bias_std^2``, ``C_1 = sigma_w^2 / d`` and
``B_1 = sigma_w^2 ||x|| / d`` (radial, giving R) or ``B_1 = 0`` (orthogonal, giving T). For an
orthogonal direction B stays 0 and ``T = sigma_w^2 / d * prod_{l=1}^{L} sigma_w^2 E psi'(z_l)^2``:
``d T`` is the usual gradient-independence product (Schoenholz et al. 2017; Yang 2019), with the
first layer contributing ``E ||W_1^T u||^2 = sigma_w^2 ||u||^2`` since W_1 has d columns of
variance sigma_w^2 / d. The radial term corrects it by ``R - T = O(1/d)``; it vanishes for
piecewise-linear activations, for which ``E ||grad f||^2 = sigma_w^{2(L+1)} ((a^2 + b^2) / 2)^L``
(``2^-L`` for ReLU, with or without bias, at every width; see :func:`expected_grad_norm_sq`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from randadv.errors import InvalidInputError
from randadv.nets.activations import Activation, TensorFn, get_activation
from randadv.theory.correlation import (
    DEFAULT_N_QUAD,
    _as_float_array,
    gaussian_expectation_2d,
    numpy_activation,
    relu_dual_kernel,
)

OUTPUTS = ("gaussian", "rademacher")
GRAD_METHODS = ("exact", "gia")


@dataclass(frozen=True)
class NNGPKernel:
    """Infinite-width second moments of a random MLP at two inputs x, y.

    ``kxy = E f(x) f(y)``, ``kxx = E f(x)^2``, ``kyy = E f(y)^2``; ``layers[l]`` is the
    pre-activation covariance ``(Sigma_xx, Sigma_xy, Sigma_yy)`` of hidden layer l + 1.

    Paper:
        De Palma et al. 2021, Section 3 (the kernel K(x, y) = E phi(x) phi(y) of the limit).

    Attributes:
        kxy, kxx, kyy, layers: as above.

    Example:
        >>> from randadv.theory import nngp_kernel
        >>> k = nngp_kernel([1.0, 1.0], [1.0, -1.0], 1)   # orthogonal inputs, ||x||^2 = d
        >>> round(k.kxx, 4), round(k.kxy / k.kxx, 4), len(k.layers)   # c(0) = 1/pi
        (0.5, 0.3183, 1)
    """

    kxy: float
    kxx: float
    kyy: float
    layers: tuple[tuple[float, float, float], ...]

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def correlation(self) -> float:
        """``kxy / sqrt(kxx kyy)``, the correlation of f(x) and f(y)."""
        if not (self.kxx > 0 and self.kyy > 0):
            raise InvalidInputError("correlation undefined: f(x) or f(y) has zero variance")
        return float(np.clip(self.kxy / np.sqrt(self.kxx * self.kyy), -1.0, 1.0))


# --------------------------------------------------------------------------- Gaussian moments
class _Duals:
    """Gaussian expectations of psi for the recursions, closed form when psi is piecewise linear."""

    def __init__(self, activation: str | Activation | TensorFn, n_quad: int, quad: str) -> None:
        self.act = get_activation(activation)
        self.closed = bool(self.act.piecewise_linear)
        self.slopes = (float(self.act.slope_pos), float(self.act.slope_neg))
        self.k = (self.slopes[0] ** 2 + self.slopes[1] ** 2) / 2.0   # E psi(z)^2 / E z^2
        self.opts = {"n_quad": n_quad, "quad": quad}
        if not self.closed:
            self.psi = numpy_activation(self.act)
            self.dpsi = numpy_activation(self.act, derivative=True)

    def _e(self, fn, s11, s12, s22) -> tuple[np.ndarray, ...]:
        return gaussian_expectation_2d(fn, s11, s12, s22, **self.opts)

    def kernel(self, s11: np.ndarray, s12: np.ndarray, s22: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(E psi(u)^2, E psi(u) psi(v), E psi(v)^2)``, ``(u, v) ~ N(0, Sigma)``."""
        if self.closed:
            return self.k * s11, relu_dual_kernel(s11, s12, s22, *self.slopes), self.k * s22

        def moments(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, ...]:
            pu, pv = self.psi(u), self.psi(v)
            return pu * pu, pu * pv, pv * pv

        return self._e(moments, s11, s12, s22)

    def grad(self, a: np.ndarray, b: np.ndarray, c: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(E psi(z)^2, E psi(z) psi'(z) v, E psi'(z)^2 v^2)``, ``(z, v) ~ N(0, [[a,b],[b,c]])``.

        Piecewise-linear psi: ``k (a, b, c)`` by the symmetry (z, v) -> (-z, -v)."""
        if self.closed:
            return self.k * a, self.k * b, self.k * c

        def moments(z: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, ...]:
            p, dp = self.psi(z), self.dpsi(z)
            return p * p, p * dp * v, dp * dp * v * v

        return self._e(moments, a, b, c)


# --------------------------------------------------------------------------- argument checks
def _check_scalar(value: float, name: str, positive: bool = False) -> float:
    v = float(_as_float_array(value, name))
    if v < 0 or (positive and v == 0):
        raise InvalidInputError(f"{name} must be {'> 0' if positive else '>= 0'}, got {v}")
    return v


def _depth(widths_or_depth: int | Sequence[int], d: int) -> int:
    """Number of hidden layers L from ``L`` or from the widths ``[d, d_1, ..., d_L]``."""
    if isinstance(widths_or_depth, (int, np.integer)) and not isinstance(widths_or_depth, bool):
        if widths_or_depth < 1:
            raise InvalidInputError(f"depth must be >= 1, got {widths_or_depth}")
        return int(widths_or_depth)
    try:
        widths = [int(w) for w in widths_or_depth]
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"widths_or_depth must be an int L >= 1 or widths "
                                f"[d, d_1, ..., d_L], got {widths_or_depth!r}") from exc
    if len(widths) < 2 or any(w <= 0 for w in widths):
        raise InvalidInputError(f"widths must be [d, d_1, ..., d_L] with positive entries and "
                                f"at least one hidden layer, got {widths}")
    if widths[0] != d:
        raise InvalidInputError(f"widths[0] = {widths[0]} does not match the input dimension {d}")
    return len(widths) - 1


def _inputs(x: ArrayLike, name: str) -> np.ndarray:
    """A nonempty (B, d) float64 array from (d,) or (B, d)."""
    arr = _as_float_array(x, name)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] == 0 or arr.shape[0] == 0:
        raise InvalidInputError(f"{name} must have shape (d,) or (B, d), got {arr.shape}")
    return arr


def _weight_variance(sigma_w2: float, sigma_w: float | None) -> float:
    """``sigma_w2``, or ``sigma_w ** 2`` from the deprecated keyword ``sigma_w``."""
    if sigma_w is None:
        return _check_scalar(sigma_w2, "sigma_w2", positive=True)
    if float(sigma_w2) != 1.0:
        raise InvalidInputError("pass sigma_w2 or the deprecated sigma_w, not both")
    warnings.warn("sigma_w is deprecated: pass sigma_w2 = sigma_w ** 2 (the name of "
                  "randadv.nets.zoo and of randadv.arch)", DeprecationWarning, stacklevel=4)
    return _check_scalar(sigma_w, "sigma_w", positive=True) ** 2


def _common(activation: str | Activation | TensorFn, bias_std: float, sigma_w2: float,
            sigma_w: float | None, hidden_gain: float, n_quad: int, quad: str
            ) -> tuple[_Duals, float, float, float]:
    """(moments of psi, bias_std^2, sigma_w^2, the hidden layers' sigma_w^2 hidden_gain)."""
    sb2 = _check_scalar(bias_std, "bias_std") ** 2
    sw2 = _weight_variance(sigma_w2, sigma_w)
    sh2 = sw2 * _check_scalar(hidden_gain, "hidden_gain", positive=True)
    return _Duals(activation, n_quad, quad), sb2, sw2, sh2


def _clip_cov(s11: np.ndarray, s12: np.ndarray, s22: np.ndarray) -> np.ndarray:
    """Clip an off-diagonal entry to Cauchy-Schwarz (quadrature rounding can exceed it)."""
    bound = np.sqrt(s11 * s22)
    return np.clip(s12, -bound, bound)


# --------------------------------------------------------------------------- NNGP kernel
def _nngp(duals: _Duals, s11: np.ndarray, s12: np.ndarray, s22: np.ndarray, depth: int,
          sw2: float, sb2: float, sh2: float
          ) -> tuple[tuple[np.ndarray, ...], list[tuple[np.ndarray, ...]]]:
    """Lee et al. 2018 recursion from the input Gram entries; returns (Kxx, Kxy, Kyy), layers.
    ``sw2``: the first and output layers' variance gain, ``sh2`` the hidden layers'."""
    sig = (sw2 * s11 + sb2, sw2 * s12 + sb2, sw2 * s22 + sb2)
    layers = [sig]
    for _ in range(depth - 1):
        m11, m12, m22 = duals.kernel(*sig)
        sig = (sh2 * m11 + sb2, _clip_cov(m11, m12, m22) * sh2 + sb2, sh2 * m22 + sb2)
        layers.append(sig)
    kxx, kxy, kyy = (sw2 * m for m in duals.kernel(*sig))
    return (kxx, kxy, kyy), layers


def nngp_kernel(x: ArrayLike, y: ArrayLike, widths_or_depth: int | Sequence[int],
                activation: str | Activation | TensorFn = "relu", bias_std: float = 0.0,
                output: str = "gaussian", *, hidden_gain: float = 1.0,
                sigma_w2: float = 1.0, n_quad: int = DEFAULT_N_QUAD, quad: str = "polar",
                sigma_w: float | None = None) -> NNGPKernel:
    """Infinite-width ``E f(x) f(y)``, ``E f(x)^2``, ``E f(y)^2`` of ``RandomMLP(widths, ...)``.

    Arguments:
        x, y: inputs of shape (d,) (numpy, lists or torch tensors).
        widths_or_depth: the number L of hidden layers, or the widths ``[d, d_1, ..., d_L]``
            (hidden widths only matter at finite width).
        activation: name or callable; piecewise-linear activations use the arc-cosine closed
            form (Cho & Saul 2009), others 2-D quadrature (``n_quad``, ``quad``).
        bias_std: standard deviation of the hidden biases.
        output: ``"gaussian"`` or ``"rademacher"`` output layer (same kernel).
        hidden_gain: variance gain g of the hidden layers ``W_2..W_L`` (as in RandomMLP).
        sigma_w2: variance gain of every layer, variances ``sigma_w2 / fan_in`` (1 for
            RandomMLP; the hidden layers' ``sigma_w2 hidden_gain / fan_in``).
        n_quad, quad: the quadrature of non-piecewise-linear activations.
        sigma_w: deprecated alias of ``sigma_w2 = sigma_w ** 2`` (DeprecationWarning).

    Recursion of Lee et al. 2018 (NNGP), eq. (4); for bias-free ReLU the normalised kernel is
    ``relu_correlation_iterates(rho, L)[L]`` (Bartlett et al. 2021, Lemma 3.2).

    Paper:
        De Palma et al. 2021, Section 3 (the Gaussian-process limit); Bartlett et al. 2021,
        Lemma 3.2 (bias-free ReLU).

    Returns:
        :class:`NNGPKernel`.

    Example:
        >>> from randadv.theory import nngp_kernel, relu_correlation_iterates
        >>> k = nngp_kernel([1.0, 1.0], [1.0, -1.0], 3)
        >>> abs(k.kxy / k.kxx - float(relu_correlation_iterates(0.0, 3)[3])) < 1e-9
        True
    """
    if output not in OUTPUTS:
        raise InvalidInputError(f"output must be one of {OUTPUTS}, got {output!r}")
    xa, ya = _inputs(x, "x"), _inputs(y, "y")
    if xa.shape[0] != 1 or ya.shape[0] != 1 or xa.shape != ya.shape:
        raise InvalidInputError(f"x and y must be vectors of the same shape (d,), got "
                                f"{xa.shape[1:] if xa.shape[0] == 1 else xa.shape} and "
                                f"{ya.shape[1:] if ya.shape[0] == 1 else ya.shape}")
    xa, ya = xa[0], ya[0]
    d = xa.size
    depth = _depth(widths_or_depth, d)
    duals, sb2, sw2, sh2 = _common(activation, bias_std, sigma_w2, sigma_w, hidden_gain,
                                    n_quad, quad)
    (kxx, kxy, kyy), layers = _nngp(duals, np.array(xa @ xa / d), np.array(xa @ ya / d),
                                    np.array(ya @ ya / d), depth, sw2, sb2, sh2)
    return NNGPKernel(kxy=float(kxy), kxx=float(kxx), kyy=float(kyy),
                      layers=tuple(tuple(float(s) for s in sig) for sig in layers))


def nngp_kernel_matrix(X: ArrayLike, Y: ArrayLike | None, widths_or_depth: int | Sequence[int],
                       activation: str | Activation | TensorFn = "relu", bias_std: float = 0.0,
                       output: str = "gaussian", *, hidden_gain: float = 1.0,
                       sigma_w2: float = 1.0, n_quad: int = DEFAULT_N_QUAD, quad: str = "polar",
                       sigma_w: float | None = None) -> np.ndarray:
    """The matrix ``E f(X_i) f(Y_j)`` of shape (n, m) for X (n, d) and Y (m, d) (Y = None: X).

    Same recursion and arguments as :func:`nngp_kernel`.

    Paper:
        De Palma et al. 2021, Section 3 (the kernel of the Gaussian-process limit).

    Arguments:
        X: inputs (n, d); Y: inputs (m, d) or None; widths_or_depth, activation, bias_std,
        output, hidden_gain, sigma_w2, n_quad, quad, sigma_w: as in :func:`nngp_kernel`.

    Returns:
        The (n, m) float64 matrix.

    Example:
        >>> import numpy as np
        >>> from randadv.theory import nngp_kernel_matrix
        >>> K = nngp_kernel_matrix(np.array([[1.0, 1.0], [1.0, -1.0]]), None, 1)
        >>> K.shape, np.round(np.diag(K), 4).tolist()
        ((2, 2), [0.5, 0.5])
    """
    if output not in OUTPUTS:
        raise InvalidInputError(f"output must be one of {OUTPUTS}, got {output!r}")
    xa = _inputs(X, "X")
    ya = xa if Y is None else _inputs(Y, "Y")
    if ya.shape[1] != xa.shape[1]:
        raise InvalidInputError(f"X and Y must have the same dimension, got {xa.shape[1]} and "
                                f"{ya.shape[1]}")
    d = xa.shape[1]
    depth = _depth(widths_or_depth, d)
    duals, sb2, sw2, sh2 = _common(activation, bias_std, sigma_w2, sigma_w, hidden_gain,
                                    n_quad, quad)
    s11 = np.broadcast_to((xa * xa).sum(1)[:, None] / d, (xa.shape[0], ya.shape[0]))
    s22 = np.broadcast_to((ya * ya).sum(1)[None, :] / d, s11.shape)
    (_, kxy, _), _ = _nngp(duals, s11, xa @ ya.T / d, s22, depth, sw2, sb2, sh2)
    return np.asarray(kxy)


# --------------------------------------------------------------------------- gradient norm
def _direction_second_moment(duals: _Duals, a: np.ndarray, b: np.ndarray, c: np.ndarray,
                             depth: int, sw2: float, sb2: float, sh2: float) -> np.ndarray:
    """``E (e . grad f(x))^2`` from the layer-1 law (A_1, B_1, C_1) of ``(z_1, e . grad z_1)``."""
    for _ in range(depth - 1):
        m_a, m_b, m_c = duals.grad(a, b, c)
        a, b, c = sh2 * m_a + sb2, sh2 * _clip_cov(m_a, m_b, m_c), sh2 * m_c
    return sw2 * duals.grad(a, b, c)[2]


def expected_grad_norm_sq(x: ArrayLike, widths_or_depth: int | Sequence[int],
                          activation: str | Activation | TensorFn = "relu",
                          bias_std: float = 0.0, *, hidden_gain: float = 1.0,
                          sigma_w2: float = 1.0, method: str = "exact",
                          n_quad: int = DEFAULT_N_QUAD, quad: str = "polar",
                          sigma_w: float | None = None) -> float | np.ndarray:
    """Infinite-width ``E ||grad f(x)||^2`` of ``RandomMLP`` (see the module docstring).

    ``method="exact"``: ``(d - 1) T + R`` (orthogonal and radial directions; exact in d).
    ``method="gia"``: ``d T = sigma_w^{2(L+1)} prod_l E psi'(z_l)^2``, the gradient-independence
    product, which ignores the O(1/d) radial correction (equal for piecewise-linear psi).

    For ReLU both give ``sigma_w^{2(L+1)} g^{L-1} 2^-L`` (``2^-L`` for RandomMLP with the
    default ``hidden_gain`` g = 1), exactly at every
    width, with or without bias: given layer l-1, the row (w, b) of unit j and its negative are
    equally likely, which flips 1{z_j > 0} but not ||grad z_j||^2, so
    ``E[1{z_j > 0} ||grad z_j||^2] = E ||grad z_j||^2 / 2`` (the sign symmetry behind
    Bartlett et al. 2021, Lemma 2.1, used in Lemma 2.2).

    Arguments:
        x: one input (d,) -> float, or a batch (B, d) -> array (B,).
        method: ``"exact"`` or ``"gia"`` (above).
        widths_or_depth, activation, bias_std, hidden_gain, sigma_w2, n_quad, quad, sigma_w: as
        in :func:`nngp_kernel`.

    Paper:
        Bubeck et al. 2021, eq. (3) (depth 1); Bartlett et al. 2021, Lemma 2.2 (deeper ReLU nets).

    Returns:
        ``E ||grad f(x)||^2``: a float for one input, an array (B,) for a batch.

    Example:
        >>> import numpy as np
        >>> from randadv.theory import expected_grad_norm_sq
        >>> round(float(expected_grad_norm_sq(np.ones(10), 3)), 6)   # ReLU: 2^-L
        0.125
    """
    if method not in GRAD_METHODS:
        raise InvalidInputError(f"method must be one of {GRAD_METHODS}, got {method!r}")
    arr = _as_float_array(x, "x")
    single = arr.ndim == 1
    xa = _inputs(arr, "x")
    d = xa.shape[1]
    depth = _depth(widths_or_depth, d)
    duals, sb2, sw2, sh2 = _common(activation, bias_std, sigma_w2, sigma_w, hidden_gain,
                                    n_quad, quad)
    r = np.linalg.norm(xa, axis=1)
    a1 = sw2 * r * r / d + sb2
    c1 = np.full_like(a1, sw2 / d)
    ortho = _direction_second_moment(duals, a1, np.zeros_like(a1), c1, depth, sw2, sb2,
                                     sh2)
    if method == "gia":
        out = d * ortho
    else:
        radial = _direction_second_moment(duals, a1, sw2 * r / d, c1, depth, sw2, sb2, sh2)
        out = (d - 1) * ortho + radial
    return float(out[0]) if single else out
