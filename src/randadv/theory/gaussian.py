"""Gaussian expectations of an activation and the large-width single-step predictions.

Bubeck et al. (2021), Section 1.2: for x on sqrt(d) S^{d-1} and large width k,
f(x) ~ N(0, E psi(X)^2) and E ||grad f(x)||^2 = E psi'(X)^2 (X ~ N(0, 1)); by Lemma 1 the step
along grad f that brings f to zero is eta ~ |f(x)| / ||grad f(x)||^2 at the mesoscopic scale.
For deeper fan-in-scaled networks the same quantities follow the mean-field recursion
q_1 = ||x||^2/d, q_{i+1} = E psi(sqrt(q_i) X)^2 (Poole et al. 2016; Bartlett et al. 2021, NN-DEF).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.special
import torch
from scipy import integrate

from randadv.nets.activations import Activation, TensorFn, get_activation

_SQRT_2PI = math.sqrt(2.0 * math.pi)


def gaussian_expectation(fn: TensorFn, variance: float = 1.0) -> float:
    """E[fn(X)] for X ~ N(0, variance), by adaptive quadrature split at 0 (handles ReLU kinks).

    Paper:
        none (utility: 1-D Gaussian quadrature behind the activation moments).

    Arguments:
        fn: elementwise torch function of X.
        variance: variance of X.

    Returns:
        The expectation as a float.

    Example:
        >>> import torch
        >>> from randadv.theory import gaussian_expectation
        >>> round(gaussian_expectation(torch.relu), 6)   # 1 / sqrt(2 pi)
        0.398942
    """
    if variance < 0:
        raise ValueError(f"variance must be >= 0, got {variance}")
    if variance == 0:
        return float(fn(torch.zeros(1, dtype=torch.float64))[0])
    s = math.sqrt(variance)

    def integrand(z: float) -> float:
        v = fn(torch.tensor([s * z], dtype=torch.float64))
        return float(v[0]) * math.exp(-0.5 * z * z) / _SQRT_2PI

    lo, _ = integrate.quad(integrand, -np.inf, 0.0, limit=200, epsabs=1e-12, epsrel=1e-10)
    hi, _ = integrate.quad(integrand, 0.0, np.inf, limit=200, epsabs=1e-12, epsrel=1e-10)
    return lo + hi


@dataclass(frozen=True)
class ActivationMoments:
    """Gaussian moments of psi at pre-activation variance ``q``.

    Paper:
        Bubeck et al. 2021, eqs. (2), (3) (the moments that set E f^2 and E ||grad f||^2).

    Attributes:
        q: the pre-activation variance.
        psi_sq, dpsi_sq, x2_dpsi_sq: E psi(X)^2, E psi'(X)^2, E X^2 psi'(X)^2 for X ~ N(0, q).

    Example:
        >>> from randadv.theory import activation_moments
        >>> m = activation_moments("relu")
        >>> round(m.psi_sq, 6), round(m.dpsi_sq, 6), round(m.x2_dpsi_sq, 6)
        (0.5, 0.5, 0.5)
    """

    q: float
    psi_sq: float       # E psi(X)^2
    dpsi_sq: float      # E psi'(X)^2
    x2_dpsi_sq: float   # E X^2 psi'(X)^2 (finite-d correction of the gradient norm)


@lru_cache(maxsize=256)
def _moments(act: Activation, q: float) -> ActivationMoments:
    psi, dpsi = act.fn, act.derivative
    return ActivationMoments(
        q=q,
        psi_sq=gaussian_expectation(lambda z: psi(z) ** 2, q),
        dpsi_sq=gaussian_expectation(lambda z: dpsi(z) ** 2, q),
        x2_dpsi_sq=gaussian_expectation(lambda z: z * z * dpsi(z) ** 2, q),
    )


def activation_moments(activation: str | Activation | TensorFn, q: float = 1.0
                       ) -> ActivationMoments:
    """E psi(X)^2, E psi'(X)^2 and E X^2 psi'(X)^2 for X ~ N(0, q).

    Paper:
        Bubeck et al. 2021, eqs. (2), (3) (E psi^2 and E psi'^2 set E f^2 and E ||grad f||^2).

    Arguments:
        activation: psi (name, :class:`randadv.nets.Activation` or callable).
        q: variance of X.

    Returns:
        :class:`ActivationMoments`.

    Example:
        >>> from randadv.theory import activation_moments
        >>> m = activation_moments("relu", q=2.0)   # ReLU: E psi^2 = q / 2, E psi'^2 = 1 / 2
        >>> round(m.psi_sq, 6), round(m.dpsi_sq, 6)
        (1.0, 0.5)
    """
    return _moments(get_activation(activation), float(q))


@dataclass(frozen=True)
class SingleStepPrediction:
    """Large-width predictions at ||x|| = sqrt(d) (Bubeck et al. 2021, eqs. (2), (3), Lemma 1).

    ``f_var``: E f(x)^2; ``grad_norm_sq``: E ||grad f(x)||^2; ``grad_norm``: its square root;
    ``eta_mean``/``eta_std``: mean and std of the linearised smallest step |f| / ||grad f||^2 with
    f ~ N(0, f_var) and ||grad f||^2 at its mean; ``perturbation_mean``: mean of |f| / ||grad f||.

    Paper:
        Bubeck et al. 2021, eqs. (2), (3) and Lemma 1.

    Attributes:
        activation, depth, d: the network the prediction is for (``d=None``: d -> infinity).
        f_var, grad_norm_sq: as above; the other quantities are properties.

    Example:
        >>> from randadv.theory import single_step_prediction
        >>> p = single_step_prediction("relu", depth=1, d=100)
        >>> round(p.f_var, 6), round(p.grad_norm_sq, 6)
        (0.5, 0.5)
    """

    activation: str
    depth: int
    d: int | None
    f_var: float
    grad_norm_sq: float

    @property
    def grad_norm(self) -> float:
        return math.sqrt(self.grad_norm_sq)

    @property
    def f_abs_mean(self) -> float:
        return math.sqrt(2.0 * self.f_var / math.pi)

    @property
    def eta_mean(self) -> float:
        return self.f_abs_mean / self.grad_norm_sq

    @property
    def eta_std(self) -> float:
        return math.sqrt(self.f_var * (1.0 - 2.0 / math.pi)) / self.grad_norm_sq

    @property
    def perturbation_mean(self) -> float:
        return self.f_abs_mean / self.grad_norm

    def flip_fraction(self, max_eta: float) -> float:
        """P(|f| < max_eta E||grad f||^2): the fraction of inputs whose linearised step is
        within ``max_eta``, f ~ N(0, f_var)."""
        return math.erf(max_eta * self.grad_norm_sq / math.sqrt(2.0 * self.f_var))


def single_step_prediction(activation: str | Activation | TensorFn = "relu", depth: int = 1,
                           d: int | None = None, x_norm_sq_over_d: float = 1.0,
                           hidden_gain: float = 1.0) -> SingleStepPrediction:
    """Infinite-width E f(x)^2 and E ||grad f(x)||^2 for a fan-in-scaled net of ``depth`` layers.

    Depth 1 is exact in d (for x with ||x||^2 = d): E ||grad f||^2 =
    ((d - 1) E psi'(X)^2 + E X^2 psi'(X)^2) / d (Bubeck et al. 2021, Lemma 3's decomposition),
    which tends to E psi'(X)^2 (eq. (3)). For depth > 1 the gradient uses the mean-field product
    E psi'(z_L)^2 prod_{i<L} g E psi'(z_i)^2 (gradient-independence approximation, g the
    ``hidden_gain`` of :class:`randadv.nets.RandomMLP`), without a finite-d term.

    Paper:
        Bubeck et al. 2021, eqs. (2), (3) and Lemma 3 (depth 1); the deeper nets of their
        Section 4 by the mean-field product.

    Arguments:
        activation: psi (name, :class:`randadv.nets.Activation` or callable).
        depth: number of hidden layers.
        d: input dimension (``None``: the d -> infinity limit).
        x_norm_sq_over_d: ``||x||^2 / d``.
        hidden_gain: g, the hidden layers' weight gain.

    Returns:
        :class:`SingleStepPrediction`.

    Example:
        >>> from randadv.theory import single_step_prediction
        >>> p = single_step_prediction("relu", depth=2)   # ReLU: E ||grad f||^2 = 2^-depth
        >>> round(p.grad_norm_sq, 6)
        0.25
    """
    act = get_activation(activation)
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    q = float(x_norm_sq_over_d)
    grad_sq = 1.0
    for layer in range(depth):
        m = activation_moments(act, q)
        gain = 1.0 if layer == depth - 1 else hidden_gain
        if depth == 1 and d is not None:
            grad_sq *= ((d - 1) * m.dpsi_sq + m.x2_dpsi_sq / q) / d
        else:
            grad_sq *= gain * m.dpsi_sq
        q = gain * m.psi_sq
    return SingleStepPrediction(act.name, depth, d, f_var=q, grad_norm_sq=grad_sq)


def mean_abs_uniform_coordinate(d: int) -> float:
    """``E |u_1|`` for u uniform on the sphere S^{d-1}: ``Gamma(d/2) / (sqrt(pi)
    Gamma((d+1)/2))``, asymptotically ``sqrt(2 / (pi d))``. In the linear limit (f = w.x) the
    single step's relative perturbation ``|eta| ||grad f|| / ||x|| = |w.x| / (||w|| ||x||)`` is
    ``|u_1|`` for x uniform on a sphere.

    Paper:
        Bartlett, Bubeck, Cherapanamjeri 2021, Theorem 2.1 (the step's size, sqrt(d) smaller
        than ||x|| in the linear limit); Bubeck et al. 2021, Theorem 1.1.

    Arguments:
        d: dimension (>= 1).

    Returns:
        The mean.

    Example:
        >>> import math
        >>> from randadv.theory import mean_abs_uniform_coordinate
        >>> round(mean_abs_uniform_coordinate(2) * math.pi / 2, 12)   # E |cos theta| = 2 / pi
        1.0
        >>> round(mean_abs_uniform_coordinate(10**4) / math.sqrt(2 / (math.pi * 10**4)), 4)
        1.0
    """
    return math.exp(math.lgamma(d / 2) - math.lgamma((d + 1) / 2)) / math.sqrt(math.pi)


def uniform_coordinate_quantile(d: int, q: float) -> float:
    """The q-quantile of ``|u_1|``, u uniform on S^{d-1} (``u_1^2 ~ Beta(1/2, (d-1)/2)``): the
    linear limit's quantile of the single step's relative perturbation
    (:func:`mean_abs_uniform_coordinate`).

    Paper:
        Bartlett, Bubeck, Cherapanamjeri 2021, Theorem 2.1 (linear limit of the single step).

    Arguments:
        d: dimension (>= 1; 1 for d = 1, where |u_1| = 1).
        q: the level in [0, 1].

    Returns:
        The quantile.

    Example:
        >>> from randadv.theory import uniform_coordinate_quantile
        >>> round(uniform_coordinate_quantile(3, 0.5), 6)        # |u_1| uniform on [0, 1] at d = 3
        0.5
    """
    return math.sqrt(float(scipy.special.betaincinv(0.5, (d - 1) / 2.0, q))) if d > 1 else 1.0

