"""The infinite-width limit of randadv's random MLPs: a Gaussian process with its gradient.

Bubeck, Cherapanamjeri, Gidel, Tachet des Combes (2021), Section 1.1 ("the actual limit case
k = +infinity, where the random model (1) yields a Gaussian process"): as every hidden width tends
to infinity, ``f`` becomes a centred Gaussian process on R^d with covariance ``K(x, y)``, the NNGP
kernel (Neal 1996; Lee et al. 2018; :mod:`randadv.theory.nngp`), and its gradient is the
gradient of that process (Yang 2019). At one input x the pair ``(f(x), grad f(x))`` is therefore
jointly Gaussian, centred, with

    Var f(x) = K(x, x),   Cov(f(x), grad f(x)) = grad_y K(x, y)|_{y=x},
    Cov(grad f(x)) = grad_x grad_y K(x, y)|_{y=x}.

The kernels of these nets are rotation invariant, ``K(x, y) = kappa(x.x, x.y, y.y)``, so with
``u = x / ||x||`` the law has four numbers (a radial part plus an isotropic part):

    Var f = A,   Cov(f, grad f) = B u,   Cov(grad f) = T I + (R - T) u u^T,

i.e. ``f`` and the radial component ``g_r = u . grad f`` are a Gaussian pair
``N(0, [[A, B], [B, R]])``, and the tangential component ``(I - u u^T) grad f`` is
``N(0, T (I - u u^T))``, independent of ``(f, g_r)``. ``T = d kappa / d(x.y)`` at y = x
(the gradient-independence term), ``R - T`` the radial correction (O(1/d)).

The four numbers are computed by propagating the joint law of ``(z_l, e . grad z_l)`` through the
layers for ``e = u`` (radial) and ``e`` orthogonal to x (tangential), exactly as
:func:`randadv.theory.nngp.expected_grad_norm_sq` does for ``E ||grad f||^2 = (d - 1) T + R``,
with the weight scales of :class:`randadv.nets.RandomMLP`: ``W_1`` entries N(0, 1/d), ``W_l``
(l >= 2) N(0, g / d_{l-1}) with ``g = hidden_gain`` (1: NN-DEF, Bartlett et al. 2021), biases
N(0, bias_std^2), output ``a`` with ``E a_j^2 = 1/d_L`` (Rademacher ``+-1/sqrt(d_L)``, eq. (1) of
the two-layer paper, or Gaussian N(0, I/d_L), NN-DEF: the same kernel). With ``(z, v)`` the
pre-activation of one unit and ``e . grad`` of it, ``(z, v) ~ N(0, [[a, b], [b, c]])``:

    layer 1:   a = ||x||^2 / d + bias_std^2,  b = ||x|| / d (radial) or 0 (tangential),  c = 1 / d;
    layer l+1: a <- g E psi(z)^2 + bias_std^2,  b <- g E psi(z) psi'(z) v,  c <- g E psi'(z)^2 v^2;
    output:    A = E psi(z_L)^2,  B = E psi psi'(z_L) v_L,  R (or T) = E psi'(z_L)^2 v_L^2.

Two-layer nets (``TwoLayerRandomNet(d, k, psi)``, L = 1): ``A = E psi(w.x)^2``,
``B = E psi psi'(w.x) (w.u)``, ``R = E psi'(w.x)^2 (w.u)^2``, ``T = E psi'(w.x)^2 / d`` with
``w ~ N(0, I/d)``: these second moments are exact at every width k (f and grad f are sums of k
i.i.d. terms); only the Gaussianity needs k -> infinity. Bias-free ReLU nets of any depth:
``f = x . grad f`` (positive homogeneity), so ``A = ||x||^2 R``, ``B = ||x|| R`` and, by the sign
symmetry of Bartlett et al. (2021), Lemma 2.1, ``R = T``: the limit gradient is isotropic
``N(0, (2^-L / d) I)`` at ``||x|| = sqrt(d)`` (NN-DEF) and ``f = x . grad f``.

Single-step quantities at infinite width (:func:`gp_single_step`). The limit process is locally
linear on the mesoscopic scale ``||delta|| = o(||x||) = o(sqrt(d))`` (Bubeck et al. 2021,
Section 1.2), which contains the flipping perturbation ``||delta|| = |f| / ||grad f|| = O(1)``.
For two-layer ReLU nets the deviation from the tangent along a fixed delta orthogonal to x is, at
every width and hence in the limit (:func:`two_layer_linearisation_rms`),

    E (f(x + delta) - f(x) - grad f(x) . delta)^2 = (||x + delta||^2 / d) (t - sin t cos t) / pi
                                                ~ (2 / (3 pi)) (||delta|| / sqrt(d))^3,

with ``t`` the angle between x and x + delta (``||x|| = sqrt(d)``): O(d^-3/4) at ||delta|| = 1,
against |f| = O(1). (Smooth psi: O(||delta||^2 / d), the Hessian bound (5) of Bubeck et al.) So
what the sampler reports is the linearised step ``eta = -f / ||grad f||^2`` (the step along
grad f at which the tangent vanishes, Lemma 1 of Bubeck et al. with a constant gradient), the
limit as d -> infinity of the smallest flipping step of the process; at finite d the process's own
smallest step differs from it by the curvature above (relative O(d^-3/4) for ReLU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike

from randadv.errors import InvalidInputError
from randadv.nets.activations import ACTIVATIONS, Activation, TensorFn, get_activation
from randadv.theory.correlation import DEFAULT_N_QUAD, _as_float_array
from randadv.theory.nngp import _clip_cov, _Duals

FULL_GRAD_MAX_ENTRIES = 50_000_000   # n * d above this: refuse to materialise grad vectors


# --------------------------------------------------------------------------- the law
@dataclass(frozen=True)
class ValueGradLaw:
    """Joint Gaussian law of ``(f(x), grad f(x))`` at one input of norm ``x_norm`` in R^d.

    ``f_var`` = A = Var f(x); ``f_radial_cov`` = B = Cov(f(x), u . grad f(x)) with u = x/||x||;
    ``radial_var`` = R = Var(u . grad f(x)); ``tangential_var`` = T = Var(e . grad f(x)) for every
    unit e orthogonal to x. See the module docstring.

    Paper:
        Bubeck et al. 2021, Section 1.1 (the Gaussian-process limit of eq. (1)); Bartlett et al.
        2021, (NN-DEF) for deeper ReLU nets.

    Attributes:
        d, x_norm: the input's dimension and norm; f_var, f_radial_cov, radial_var,
        tangential_var: A, B, R, T above.

    Example:
        >>> from randadv.theory import gp_value_grad_law
        >>> law = gp_value_grad_law(100, 1, "relu")   # E f^2 = E psi^2, d T = E psi'^2
        >>> round(law.f_var, 6), round(100 * law.tangential_var, 6)
        (0.5, 0.5)
    """

    d: int
    x_norm: float
    f_var: float
    f_radial_cov: float
    radial_var: float
    tangential_var: float

    @property
    def grad_norm_sq_mean(self) -> float:
        """``E ||grad f(x)||^2 = (d - 1) T + R``."""
        return (self.d - 1) * self.tangential_var + self.radial_var

    @property
    def f_abs_mean(self) -> float:
        """``E |f(x)| = sqrt(2 A / pi)``."""
        return math.sqrt(2.0 * self.f_var / math.pi)

    @property
    def f_radial_corr(self) -> float:
        """Correlation of f(x) and u . grad f(x) (1 for bias-free ReLU: f = x . grad f)."""
        den = math.sqrt(self.f_var * self.radial_var)
        return float(np.clip(self.f_radial_cov / den, -1.0, 1.0)) if den > 0 else 0.0

    def covariance(self, x: ArrayLike) -> np.ndarray:
        """The (d + 1) x (d + 1) covariance of ``(f(x), grad f(x))`` at a vector x of norm
        ``x_norm`` (small d only): ``[[A, B u^T], [B u, T I + (R - T) u u^T]]``."""
        u = _unit(x, self.d, self.x_norm)
        cov = np.empty((self.d + 1, self.d + 1))
        cov[0, 0] = self.f_var
        cov[0, 1:] = cov[1:, 0] = self.f_radial_cov * u
        cov[1:, 1:] = self.tangential_var * np.eye(self.d) + (
            self.radial_var - self.tangential_var) * np.outer(u, u)
        return cov

    def sample(self, n: int, seed: int | np.random.Generator = 0, *,
               x: ArrayLike | None = None, full: bool = False) -> GPSamples:
        """``n`` independent draws of ``(f(x), grad f(x))``; see :func:`sample_gp_value_and_grad`.

        ``full=True`` also materialises the gradients (n, d) at the vector ``x`` (default
        ``x_norm`` times the first basis vector); otherwise only the sufficient statistics
        ``f``, ``u . grad f`` and ``||(I - u u^T) grad f||^2`` are drawn (O(n), any d)."""
        n = _positive_int(n, "n")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        a, b, r = self.f_var, self.f_radial_cov, self.radial_var
        z1, z2 = rng.standard_normal(n), rng.standard_normal(n)
        sa = math.sqrt(a)
        f = sa * z1
        slope = b / sa if sa > 0 else 0.0
        g_r = slope * z1 + math.sqrt(max(r - slope * slope, 0.0)) * z2
        grad = None
        if full:
            if n * self.d > FULL_GRAD_MAX_ENTRIES:
                raise InvalidInputError(f"full gradients need n * d = {n * self.d} entries, over "
                                        f"{FULL_GRAD_MAX_ENTRIES}; use full=False")
            if x is None:
                x = np.zeros(self.d)
                x[0] = self.x_norm
            u = _unit(x, self.d, self.x_norm)
            xi = rng.standard_normal((n, self.d))
            perp = math.sqrt(self.tangential_var) * (xi - np.outer(xi @ u, u))
            grad = perp + g_r[:, None] * u
            t_sq = (perp * perp).sum(1)
        elif self.d > 1:
            t_sq = self.tangential_var * rng.chisquare(self.d - 1, n)
        else:
            t_sq = np.zeros(n)
        return GPSamples(d=self.d, x_norm=self.x_norm, f=f, grad_radial=g_r,
                         grad_tangential_sq=t_sq, grad=grad)


@dataclass(frozen=True)
class GPSamples:
    """Draws of ``(f(x), grad f(x))`` from the infinite-width law, each field of shape (n,).

    ``grad_radial`` = u . grad f (u = x/||x||); ``grad_tangential_sq`` = ||(I - u u^T) grad f||^2;
    ``grad`` (n, d) only when drawn with ``full=True``. The derived quantities are those of the
    linearised single step (module docstring).

    Paper:
        Bubeck et al. 2021, Section 1.1 (the k = +infinity Gaussian process); De Palma et al.
        2021, Section 3.

    Attributes:
        d, x_norm: the input's dimension and norm; f, grad_radial, grad_tangential_sq, grad:
        as above.

    Example:
        >>> import numpy as np
        >>> from randadv.theory import sample_gp_value_and_grad
        >>> s = sample_gp_value_and_grad(np.ones(10), 1000, seed=0)
        >>> s.f.shape, s.grad is None
        ((1000,), True)
    """

    d: int
    x_norm: float
    f: np.ndarray
    grad_radial: np.ndarray
    grad_tangential_sq: np.ndarray
    grad: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.f.shape[0])

    @property
    def grad_norm_sq(self) -> np.ndarray:
        return self.grad_radial ** 2 + self.grad_tangential_sq

    @property
    def grad_norm(self) -> np.ndarray:
        return np.sqrt(self.grad_norm_sq)

    @property
    def abs_f(self) -> np.ndarray:
        return np.abs(self.f)

    @property
    def x_dot_grad(self) -> np.ndarray:
        """``x . grad f(x) = ||x|| u . grad f``."""
        return self.x_norm * self.grad_radial

    @property
    def eta(self) -> np.ndarray:
        """Linearised smallest flipping step ``-f / ||grad f||^2`` (signed)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return -self.f / self.grad_norm_sq

    @property
    def perturbation_norm(self) -> np.ndarray:
        """``||eta grad f|| = |f| / ||grad f||``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.abs_f / self.grad_norm

    @property
    def rel_perturbation(self) -> np.ndarray:
        """``||eta grad f|| / ||x|| = |f| / (||grad f|| ||x||)``."""
        return self.perturbation_norm / self.x_norm

    @property
    def radial_fraction(self) -> np.ndarray:
        """``|u . grad f| / ||grad f||``: the cosine between the flipping direction and x (the
        rest of the step is tangential to the sphere through x)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.abs(self.grad_radial) / self.grad_norm

    def flipped(self, max_eta: float = 20.0, max_rel: float | None = None) -> np.ndarray:
        """Whether the linearised step lies within the search bound: ``|eta| <= max_eta`` or
        (if ``max_rel`` is given) ``||eta grad f|| <= max_rel ||x||``; False where grad f = 0."""
        eta = np.abs(self.eta)
        ok = np.isfinite(eta) & (eta <= max_eta)
        if max_rel is not None:
            ok |= np.isfinite(eta) & (self.rel_perturbation <= max_rel)
        return ok


# --------------------------------------------------------------------------- recursion
def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidInputError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _unit(x: ArrayLike, d: int, x_norm: float) -> np.ndarray:
    arr = _as_float_array(x, "x")
    if arr.shape != (d,):
        raise InvalidInputError(f"x must have shape ({d},), got {arr.shape}")
    nrm = float(np.linalg.norm(arr))
    if not math.isclose(nrm, x_norm, rel_tol=1e-9, abs_tol=1e-12):
        raise InvalidInputError(f"||x|| = {nrm} does not match the law's x_norm = {x_norm}")
    if nrm == 0:
        raise InvalidInputError("x = 0 has no radial direction")
    return arr / nrm


def _scalar(value: float, name: str, positive: bool = False) -> float:
    v = float(_as_float_array(value, name))
    if v < 0 or (positive and v == 0):
        raise InvalidInputError(f"{name} must be {'> 0' if positive else '>= 0'}, got {v}")
    return v


def gp_value_grad_law(d: int, depth: int = 1, activation: str | Activation | TensorFn = "relu",
                      *, x_norm: float | None = None, bias_std: float = 0.0,
                      hidden_gain: float = 1.0, n_quad: int = DEFAULT_N_QUAD,
                      quad: str = "polar") -> ValueGradLaw:
    """Infinite-width law of ``(f(x), grad f(x))`` for ``RandomMLP([d] + [k] * depth, activation,
    bias_std=bias_std, hidden_gain=hidden_gain)`` (k -> infinity; any output type) at an input of
    norm ``x_norm`` (default sqrt(d), the sphere of the papers).

    ``depth = 1`` is the two-layer net of Bubeck et al. (2021), eq. (1) (``TwoLayerRandomNet``);
    ``activation="relu"`` with ``bias_std = 0``, ``hidden_gain = 1`` the NN-DEF net of Bartlett
    et al. (2021) (``DeepReLUNet``). Piecewise-linear activations use closed forms, others 2-D
    Gaussian quadrature (``n_quad``, ``quad`` as in :func:`randadv.theory.nngp.nngp_kernel`).
    Only the number of hidden layers matters in the limit, not their widths.

    Paper:
        Bubeck et al. 2021, eq. (1) and Section 1.1 (k = +infinity); Bartlett et al. 2021,
        (NN-DEF).

    Arguments:
        d: input dimension; depth: number of hidden layers; activation: psi; x_norm: ||x||;
        bias_std: hidden biases' std; hidden_gain: the hidden layers' gain; n_quad, quad: the
        quadrature of non-piecewise-linear activations.

    Returns:
        :class:`ValueGradLaw`.

    Example:
        >>> from randadv.theory import gp_value_grad_law
        >>> law = gp_value_grad_law(50, 2, "relu")   # ReLU: E ||grad f||^2 = 2^-depth
        >>> round(49 * law.tangential_var + law.radial_var, 6)
        0.25
    """
    d = _positive_int(d, "d")
    depth = _positive_int(depth, "depth")
    r = math.sqrt(d) if x_norm is None else _scalar(x_norm, "x_norm")
    sb2 = _scalar(bias_std, "bias_std") ** 2
    gain = _scalar(hidden_gain, "hidden_gain", positive=True)
    duals = _Duals(activation, n_quad, quad)
    a = np.array(r * r / d + sb2)
    b_rad, c, zero = np.array(r / d), np.array(1.0 / d), np.array(0.0)
    c_rad, c_tan = c, c
    for _ in range(depth - 1):
        m_a, m_b, m_c = duals.grad(a, b_rad, c_rad)
        m_t = duals.grad(a, zero, c_tan)[2]
        a, b_rad, c_rad, c_tan = (gain * m_a + sb2, gain * _clip_cov(m_a, m_b, m_c), gain * m_c,
                                  gain * m_t)
    f_var, f_rad, rad = duals.grad(a, b_rad, c_rad)
    tan = duals.grad(a, zero, c_tan)[2]
    return ValueGradLaw(d=d, x_norm=r, f_var=float(f_var),
                        f_radial_cov=float(_clip_cov(f_var, f_rad, rad)), radial_var=float(rad),
                        tangential_var=float(tan))


def two_layer_gp_law(d: int, activation: str | Activation | TensorFn = "relu", *,
                     x_norm: float | None = None, bias_std: float = 0.0) -> ValueGradLaw:
    """:func:`gp_value_grad_law` of ``TwoLayerRandomNet(d, k, activation)`` as k -> infinity."""
    return gp_value_grad_law(d, 1, activation, x_norm=x_norm, bias_std=bias_std)


def gp_law_of(net, x_norm: float | None = None, **quad_options) -> ValueGradLaw:
    """The limit law of a :class:`randadv.nets.RandomMLP` (any subclass) or of its description
    :class:`randadv.arch.MLPSpec` (both have ``d``, ``depth``, ``activation``, ``bias_std`` and
    ``hidden_gain``, the one set of names): its depth, activation, biases and hidden gain, at
    ``x_norm`` (default sqrt(d)); its widths are sent to infinity."""
    from randadv.nets.mlp import RandomMLP

    names = ("d", "depth", "activation", "bias_std", "hidden_gain", "widths")
    if not (isinstance(net, RandomMLP) or all(hasattr(net, a) for a in names)):
        raise InvalidInputError(f"net must be a RandomMLP or an MLPSpec, got "
                                f"{type(net).__name__}")
    return gp_value_grad_law(net.d, net.depth, net.activation, x_norm=x_norm,
                             bias_std=net.bias_std, hidden_gain=net.hidden_gain, **quad_options)


def sample_gp_value_and_grad(x: ArrayLike, n: int, depth: int = 1,
                             activation: str | Activation | TensorFn = "relu", *,
                             seed: int | np.random.Generator = 0, full: bool = False,
                             bias_std: float = 0.0, hidden_gain: float = 1.0,
                             n_quad: int = DEFAULT_N_QUAD, quad: str = "polar") -> GPSamples:
    """``n`` independent draws of ``(f(x), grad f(x))`` of the infinite-width network at the
    vector x (shape (d,)), i.e. of ``n`` independent infinitely wide nets at the same x.

    ``full=False`` (default) draws only the sufficient statistics of the single step, at O(n)
    cost whatever d: ``f``, ``u . grad f`` (u = x/||x||) and ``||(I - u u^T) grad f||^2 =
    T chi^2_{d-1}``; ``full=True`` also returns the gradients (n, d). Deterministic in ``seed``
    (numpy ``default_rng``). Architecture arguments as in :func:`gp_value_grad_law`.

    Paper:
        Bubeck et al. 2021, Section 1.1 (the Gaussian-process limit).

    Arguments:
        x: the input (d,); n: number of draws; depth, activation, bias_std, hidden_gain,
        n_quad, quad: as in :func:`gp_value_grad_law`; seed: int or numpy Generator; full:
        also draw the gradients.

    Returns:
        :class:`GPSamples`.

    Example:
        >>> import numpy as np
        >>> from randadv.theory import sample_gp_value_and_grad
        >>> s = sample_gp_value_and_grad(np.ones(10), 4000, seed=0, full=True)
        >>> s.grad.shape, bool(abs(s.f.var() - 0.5) < 0.06)   # Var f = 1/2; SE 0.011
        ((4000, 10), True)
    """
    arr = _as_float_array(x, "x")
    if arr.ndim != 1 or arr.size == 0:
        raise InvalidInputError(f"x must be one input of shape (d,), got {arr.shape}")
    law = gp_value_grad_law(arr.size, depth, activation, x_norm=float(np.linalg.norm(arr)),
                            bias_std=bias_std, hidden_gain=hidden_gain, n_quad=n_quad,
                            quad=quad)
    return law.sample(n, seed, x=arr, full=full)


# --------------------------------------------------------------------------- single step
@dataclass(frozen=True)
class GPSingleStep:
    """Monte-Carlo summary of the linearised single step at infinite width (``n`` draws).

    Means and standard deviations over the draws; ``eta_*`` and ``rel_*`` over the draws whose
    linearised step lies within the search bound (``flipped``), the others over all draws.
    The Monte-Carlo error of a mean is its std / sqrt(n).

    Paper:
        Bubeck et al. 2021, Theorem 1 and Section 4 (the single step, here at infinite width).

    Attributes:
        n: draws; flipped: fraction within the bound; eta_mean, eta_std, grad_norm_mean,
        grad_norm_std, f_abs_mean, f_abs_std, pert_mean, rel_mean, rel_std,
        radial_fraction_mean: the means and standard deviations named.

    Example:
        >>> from randadv.theory import gp_single_step
        >>> s = gp_single_step(100, n=2000, seed=0)
        >>> s.n, 0.0 <= s.flipped <= 1.0
        (2000, True)
    """

    n: int
    flipped: float
    eta_mean: float
    eta_std: float
    grad_norm_mean: float
    grad_norm_std: float
    f_abs_mean: float
    f_abs_std: float
    pert_mean: float
    rel_mean: float
    rel_std: float
    radial_fraction_mean: float


def summarise_samples(s: GPSamples, max_eta: float = 20.0,
                      max_rel: float | None = None) -> GPSingleStep:
    """:class:`GPSingleStep` of given draws (flipping bound as in :meth:`GPSamples.flipped`)."""
    ok = s.flipped(max_eta, max_rel)
    eta, rel = np.abs(s.eta[ok]), s.rel_perturbation[ok]

    def ms(v: np.ndarray) -> tuple[float, float]:
        if v.size == 0:
            return math.nan, math.nan
        return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan

    g, fa = ms(s.grad_norm), ms(s.abs_f)
    return GPSingleStep(n=len(s), flipped=float(ok.mean()), eta_mean=ms(eta)[0],
                        eta_std=ms(eta)[1], grad_norm_mean=g[0], grad_norm_std=g[1],
                        f_abs_mean=fa[0], f_abs_std=fa[1],
                        pert_mean=ms(s.perturbation_norm[ok])[0], rel_mean=ms(rel)[0],
                        rel_std=ms(rel)[1],
                        radial_fraction_mean=float(np.nanmean(s.radial_fraction)))


@lru_cache(maxsize=512)
def _gp_single_step_cached(d: int, depth: int, activation: str, x_norm: float | None,
                           bias_std: float, hidden_gain: float, max_eta: float,
                           max_rel: float | None, n: int, seed: int) -> GPSingleStep:
    law = gp_value_grad_law(d, depth, activation, x_norm=x_norm, bias_std=bias_std,
                            hidden_gain=hidden_gain)
    return summarise_samples(law.sample(n, seed), max_eta, max_rel)


def gp_single_step(d: int, depth: int = 1, activation: str | Activation | TensorFn = "relu", *,
                   x_norm: float | None = None, bias_std: float = 0.0, hidden_gain: float = 1.0,
                   max_eta: float = 20.0, max_rel: float | None = None, n: int = 200_000,
                   seed: int = 0) -> GPSingleStep:
    """Infinite-width single-step statistics at ``||x|| = x_norm`` (default sqrt(d)): flipped
    fraction of the linearised step within the bound, ``|eta|``, ``||grad f||``, ``|f|``,
    ``||eta grad f||``, ``||eta grad f|| / ||x||`` and the radial fraction of the step, from
    ``n`` draws of :func:`gp_value_grad_law` (``seed``: deterministic; cached per arguments for
    registry activations). Cheap: O(n) whatever d.

    Paper:
        Bubeck et al. 2021, Theorem 1 and Section 4 (|eta| < 20, the fraction flipped).

    Arguments:
        d: input dimension; depth: hidden layers; activation: psi; x_norm: ||x||; bias_std,
        hidden_gain: as in :class:`randadv.nets.RandomMLP`; max_eta: the search bound on
        |eta|; max_rel: optional bound on ``||eta grad f|| / ||x||``; n: draws; seed: seed.

    Returns:
        :class:`GPSingleStep`.

    Example:
        >>> from randadv.theory import gp_single_step
        >>> s = gp_single_step(100, n=2000, seed=0)
        >>> s.flipped > 0.9   # ReLU: almost every linearised step flips within |eta| < 20
        True
    """
    d, depth, n = _positive_int(d, "d"), _positive_int(depth, "depth"), _positive_int(n, "n")
    if not max_eta > 0:
        raise InvalidInputError(f"max_eta must be > 0, got {max_eta}")
    if max_rel is not None and not max_rel > 0:
        raise InvalidInputError(f"max_rel must be > 0, got {max_rel}")
    act = get_activation(activation)
    args = (None if x_norm is None else float(x_norm), float(bias_std), float(hidden_gain),
            float(max_eta), None if max_rel is None else float(max_rel), n, int(seed))
    if ACTIVATIONS.get(act.name) is act:
        return _gp_single_step_cached(d, depth, act.name, *args)
    return _gp_single_step_cached.__wrapped__(d, depth, act, *args)


# --------------------------------------------------------------------------- local linearity
def two_layer_linearisation_rms(d: int, delta_norm: ArrayLike, *, x_norm: float | None = None,
                                activation: str | Activation | TensorFn = "relu"
                                ) -> float | np.ndarray:
    """RMS of ``f(x + delta) - f(x) - grad f(x) . delta`` for a bias-free two-layer net with a
    piecewise-linear psi (slopes s+, s-), for a fixed delta orthogonal to x of norm
    ``delta_norm``, at every width k and hence in the Gaussian-process limit:

        E (...)^2 = (s+ - s-)^2 (||x + delta||^2 / d) (t - sin t cos t) / pi,

    ``t = arctan(||delta|| / ||x||)`` the angle between x and x + delta. Derivation: the
    remainder is ``k^-1/2 sum_l a_l (psi'(w_l.y) - psi'(w_l.x)) (w_l . y)`` (y = x + delta), whose
    terms are nonzero only where the unit changes sign between x and y, a wedge of angle t in the
    plane of (w.x, w.y). For ``||x|| = sqrt(d)`` and ``||delta|| << sqrt(d)`` this is
    ``(2 / (3 pi)) (||delta|| / sqrt(d))^3``: the local linearity of the module docstring."""
    act = get_activation(activation)
    if not act.piecewise_linear:
        raise InvalidInputError(f"the closed form needs a piecewise-linear activation, got "
                                f"{act.name}")
    d = _positive_int(d, "d")
    r = math.sqrt(d) if x_norm is None else _scalar(x_norm, "x_norm", positive=True)
    s = _as_float_array(delta_norm, "delta_norm")
    if np.any(s < 0):
        raise InvalidInputError("delta_norm must be >= 0")
    t = np.arctan2(s, r)
    y_sq = r * r + s * s
    jump = (act.slope_pos - act.slope_neg) ** 2
    out = np.sqrt(jump * (y_sq / d) * (t - np.sin(t) * np.cos(t)) / math.pi)
    return float(out) if out.ndim == 0 else out
