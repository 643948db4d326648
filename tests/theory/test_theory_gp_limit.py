"""Infinite-width law of (f(x), grad f(x)) (``randadv.theory.gp_limit``): identities with the NNGP
recursion, kernel derivatives, closed forms, and Monte-Carlo over finite random nets.

Monte-Carlo protocol: one fixed input x, N independent nets (fixed seeds, float64), one sample of
each statistic per net, so the samples are i.i.d. and the standard error (SE) of their mean is
``std / sqrt(N)``. The infinite-width side comes from :meth:`ValueGradLaw.sample` with its own
Monte-Carlo SE. A check passes when ``|net mean - GP mean| <= 4 sqrt(SE_net^2 + SE_gp^2)``.
Where the law is exact at every width (second moments of two-layer nets; the linearisation
remainder of two-layer ReLU nets) tiny widths are used and the check is a pure SE test. Elsewhere
the widths are large enough that the finite-width bias is far below the SE: it is O(1/k) for the
two-layer nets (relative ~ kurtosis / k ~ 1e-3 at k = 1024, against SEs of 2-5%) and O(L/width)
for the deep nets (~ 1e-2 at width 256 and L = 2, against SEs of 3-6%).
"""

import math

import numpy as np
import pytest
import torch

from randadv.errors import InvalidInputError
from randadv.nets import DeepReLUNet, RandomMLPEnsemble, TwoLayerRandomNet, sphere_points
from randadv.theory import mean_abs_uniform_coordinate
from randadv.theory.gp_limit import (
    GPSamples,
    ValueGradLaw,
    gp_law_of,
    gp_single_step,
    gp_value_grad_law,
    sample_gp_value_and_grad,
    summarise_samples,
    two_layer_gp_law,
    two_layer_linearisation_rms,
)
from randadv.theory.nngp import expected_grad_norm_sq, nngp_kernel


def _x(d: int, norm: float | None = None, key: str = "gp-test") -> np.ndarray:
    p = sphere_points(1, d, 1.0, key, dtype=torch.float64).numpy()[0]
    return p * (math.sqrt(d) if norm is None else norm)


def _net_samples(widths, activation, x, n_nets, bias_std=0.0, output="rademacher", chunk=100):
    """Per-net f(x) and grad f(x) at one x: arrays (N,) and (N, d), seeds 0..N-1, float64."""
    X = torch.tensor(x)[None]
    fs, gs = [], []
    for s0 in range(0, n_nets, chunk):
        ens = RandomMLPEnsemble(widths, list(range(s0, min(s0 + chunk, n_nets))), activation,
                                output=output, bias_std=bias_std, dtype=torch.float64)
        f, g = ens.value_and_grad(X)
        fs.append(f[:, 0])
        gs.append(g[:, 0])
    return torch.cat(fs).numpy(), torch.cat(gs).numpy()


def _as_samples(f, g, x) -> GPSamples:
    r = float(np.linalg.norm(x))
    g_r = g @ (x / r)
    return GPSamples(d=x.size, x_norm=r, f=f, grad_radial=g_r,
                     grad_tangential_sq=(g * g).sum(1) - g_r ** 2, grad=g)


STATS = {
    "|f|": lambda s: s.abs_f,
    "||grad f||": lambda s: s.grad_norm,
    "|eta_lin|": lambda s: np.abs(s.eta),
    "||eta grad f|| / ||x||": lambda s: s.rel_perturbation,
    "|u . grad f| / ||grad f||": lambda s: s.radial_fraction,
    "f^2": lambda s: s.f ** 2,
    "||grad f||^2": lambda s: s.grad_norm_sq,
}


def _compare(nets: GPSamples, gp: GPSamples, names=tuple(STATS), z_max=4.0):
    """Means of each statistic (and the variance of |f|, ||grad f||, |eta|) within z_max
    combined standard errors; returns the z-scores."""
    zs = {}
    for name in names:
        a, b = STATS[name](nets), STATS[name](gp)
        se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
        zs[name] = (a.mean() - b.mean()) / se
    for name in ("||grad f||", "|eta_lin|", "|f|"):
        a, b = STATS[name](nets), STATS[name](gp)
        # SE of a sample variance: sqrt((m4 - var^2) / n)
        se = math.sqrt(sum((((v - v.mean()) ** 4).mean() - v.var() ** 2) / v.size
                           for v in (a, b)))
        zs[f"Var {name}"] = (a.var(ddof=1) - b.var(ddof=1)) / se
    bad = {k: round(float(v), 2) for k, v in zs.items() if abs(v) > z_max}
    assert not bad, f"z-scores beyond {z_max}: {bad}"
    return zs


# --------------------------------------------------------------------------- identities
@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "leaky_relu"])
@pytest.mark.parametrize("depth", [1, 2, 4])
@pytest.mark.parametrize("bias", [0.0, 0.6])
def test_law_matches_the_nngp_recursion(activation, depth, bias):
    d, r = 9, 2.3
    x = _x(d, r)
    law = gp_value_grad_law(d, depth, activation, x_norm=r, bias_std=bias)
    assert law.f_var == pytest.approx(nngp_kernel(x, x, depth, activation, bias).kxx, rel=1e-12)
    assert law.grad_norm_sq_mean == pytest.approx(
        expected_grad_norm_sq(x, depth, activation, bias), rel=1e-12)
    assert law.f_radial_cov ** 2 <= law.f_var * law.radial_var * (1 + 1e-12)


@pytest.mark.parametrize("activation, depth, bias", [("tanh", 1, 0.0), ("tanh", 2, 0.5),
                                                     ("gelu", 1, 0.3), ("gelu", 3, 0.0)])
def test_law_is_the_derivatives_of_the_kernel(activation, depth, bias):
    # B = d/dt K(x, x + t u), R = d^2/ds dt K(x + s u, x + t u), T the same along e orthogonal
    # to x, all at 0: the brief's grad_y K and grad_x grad_y K, by central finite differences
    d, r = 6, 1.7
    x = _x(d, r)
    u = x / r
    e = np.zeros(d)
    e[np.argmin(np.abs(u))] = 1.0
    e -= (e @ u) * u
    e /= np.linalg.norm(e)
    h = 1e-3

    def K(a, b):
        return nngp_kernel(a, b, depth, activation, bias).kxy

    def mixed(v):
        return (K(x + h * v, x + h * v) - K(x + h * v, x - h * v) - K(x - h * v, x + h * v)
                + K(x - h * v, x - h * v)) / (4 * h * h)

    law = gp_value_grad_law(d, depth, activation, x_norm=r, bias_std=bias)
    assert law.f_radial_cov == pytest.approx((K(x, x + h * u) - K(x, x - h * u)) / (2 * h),
                                             rel=1e-5)
    assert law.radial_var == pytest.approx(mixed(u), rel=1e-4)
    assert law.tangential_var == pytest.approx(mixed(e), rel=1e-4)
    assert (K(x, x + h * e) - K(x, x - h * e)) / (2 * h) == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_bias_free_relu_is_isotropic_with_f_equal_x_dot_grad(depth):
    d, r = 12, 4.0
    law = gp_value_grad_law(d, depth, x_norm=r)
    assert law.radial_var == pytest.approx(law.tangential_var, rel=1e-12)
    assert law.f_radial_cov == pytest.approx(r * law.radial_var, rel=1e-12)
    assert law.f_var == pytest.approx(r * r * law.radial_var, rel=1e-12)
    assert law.f_radial_corr == pytest.approx(1.0, abs=1e-12)
    nn_def = gp_value_grad_law(d, depth)   # ||x|| = sqrt(d): E f^2 = E ||grad f||^2 = 2^-L
    assert nn_def.f_var == pytest.approx(2.0 ** -depth, rel=1e-12)
    assert nn_def.grad_norm_sq_mean == pytest.approx(2.0 ** -depth, rel=1e-12)
    s = nn_def.sample(1000, seed=1)
    np.testing.assert_allclose(s.f, s.x_dot_grad, rtol=1e-12, atol=1e-14)


def test_hidden_gain_and_net_introspection():
    # He scaling (gain 2) keeps ReLU at the L = 1 scale at every depth
    assert gp_value_grad_law(50, 4, hidden_gain=2.0).f_var == pytest.approx(0.5, rel=1e-12)
    net = TwoLayerRandomNet(30, 7, "tanh", seed=0, bias_std=0.2)
    assert gp_law_of(net) == two_layer_gp_law(30, "tanh", bias_std=0.2)
    deep = DeepReLUNet([16, 8, 9, 10], seed=0)
    assert gp_law_of(deep, x_norm=2.0) == gp_value_grad_law(16, 3, x_norm=2.0)


def test_single_step_closed_forms_bias_free_relu():
    # grad f ~ N(0, T I) and f = x . grad f: ||grad f|| = sqrt(T) chi_d and, with u_1 the cosine
    # of grad f and x (independent of ||grad f||), |eta| = ||x|| |u_1| / ||grad f||
    d, depth = 7, 2
    law = gp_value_grad_law(d, depth)
    t, r = law.tangential_var, law.x_norm
    e_chi = math.sqrt(2) * math.exp(math.lgamma((d + 1) / 2) - math.lgamma(d / 2))
    e_inv_chi = math.exp(math.lgamma((d - 1) / 2) - math.lgamma(d / 2)) / math.sqrt(2)
    e_u1 = mean_abs_uniform_coordinate(d)
    st = gp_single_step(d, depth, max_eta=1e12, n=400_000, seed=5)
    assert st.flipped == 1.0
    tol = 4 / math.sqrt(st.n)
    assert st.grad_norm_mean == pytest.approx(math.sqrt(t) * e_chi,
                                              abs=tol * st.grad_norm_std)
    assert st.eta_mean == pytest.approx(r * e_u1 * e_inv_chi / math.sqrt(t), abs=tol * st.eta_std)
    assert st.rel_mean == pytest.approx(e_u1, abs=tol * st.rel_std)
    assert st.radial_fraction_mean == pytest.approx(e_u1, abs=tol)
    assert st.f_abs_mean == pytest.approx(law.f_abs_mean, abs=tol * st.f_abs_std)
    # deterministic in the seed, cached
    assert gp_single_step(d, depth, max_eta=1e12, n=400_000, seed=5) is st


def test_full_gradients_have_the_law_and_match_the_sufficient_statistics():
    d, r = 5, 1.9
    x = _x(d, r)
    law = gp_value_grad_law(d, 2, "tanh", x_norm=r, bias_std=0.4)
    n = 200_000
    s = sample_gp_value_and_grad(x, n, 2, "tanh", bias_std=0.4, seed=3, full=True)
    assert s.grad.shape == (n, d)
    np.testing.assert_allclose(s.grad @ (x / r), s.grad_radial, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose((s.grad ** 2).sum(1), s.grad_norm_sq, rtol=1e-10)
    joint = np.column_stack([s.f, s.grad])
    cov = law.covariance(x)
    emp = joint.T @ joint / n
    sd = np.sqrt(np.diag(cov))
    se = np.sqrt((np.outer(sd, sd) ** 2 + cov ** 2) / n)   # Gaussian SE of E[X_i X_j]
    assert np.all(np.abs(emp - cov) <= 5 * se)
    lean = law.sample(n, seed=4)
    assert lean.grad is None
    _compare(s, lean, names=("|f|", "||grad f||", "|eta_lin|", "||eta grad f|| / ||x||"))


# --------------------------------------------------------------------------- Monte-Carlo
@pytest.mark.parametrize("activation, bias", [("relu", 0.0), ("tanh", 0.5)])
def test_two_layer_second_moments_are_exact_at_any_width(activation, bias):
    # f and grad f are sums of k i.i.d. terms: A, B, R, T hold at k = 3
    d, k, n = 4, 3, 4000
    x = _x(d)
    f, g = _net_samples([d, k], activation, x, n, bias_std=bias, chunk=2000)
    s = _as_samples(f, g, x)
    law = two_layer_gp_law(d, activation, bias_std=bias)
    for samples, theory in ((s.f ** 2, law.f_var), (s.f * s.grad_radial, law.f_radial_cov),
                            (s.grad_radial ** 2, law.radial_var),
                            (s.grad_tangential_sq / (d - 1), law.tangential_var)):
        se = samples.std(ddof=1) / math.sqrt(n)
        assert abs(samples.mean() - theory) <= 4 * se, (samples.mean(), theory, se)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_wide_two_layer_nets_converge_to_the_gp(activation):
    d, k, n = 20, 1024, 500
    x = _x(d)
    nets = _as_samples(*_net_samples([d, k], activation, x, n), x)
    gp = two_layer_gp_law(d, activation).sample(200_000, seed=11)
    _compare(nets, gp)


def test_wide_deep_nets_converge_to_the_gp():
    d, n, w = 16, 300, 256
    x = _x(d)
    relu = _as_samples(*_net_samples([d, w, w], "relu", x, n, output="gaussian"), x)
    _compare(relu, gp_value_grad_law(d, 2).sample(200_000, seed=12))
    tanh = _as_samples(*_net_samples([d, w, w], "tanh", x, n, bias_std=0.5), x)
    _compare(tanh, gp_value_grad_law(d, 2, "tanh", bias_std=0.5).sample(200_000, seed=13))


def test_two_layer_relu_linearisation_remainder():
    # exact at every width: k = 5 nets, delta orthogonal to x
    d, k, n, s = 6, 5, 5000, 1.5
    x = _x(d)
    e = _x(d, 1.0, key="gp-test-dir")
    e -= (e @ x) / (x @ x) * x
    delta = s * e / np.linalg.norm(e)
    X = torch.tensor(np.stack([x, x + delta]))
    rem = []
    for s0 in range(0, n, 2500):
        ens = RandomMLPEnsemble([d, k], list(range(s0, s0 + 2500)), "relu",
                                dtype=torch.float64)
        f, g = ens.value_and_grad(X)
        rem.append((f[:, 1] - f[:, 0] - g[:, 0] @ torch.tensor(delta)).numpy())
    rem = np.concatenate(rem) ** 2
    theory = two_layer_linearisation_rms(d, s) ** 2
    assert abs(rem.mean() - theory) <= 4 * rem.std(ddof=1) / math.sqrt(n)
    # small-delta asymptote (2 / (3 pi)) (||delta|| / sqrt(d))^3
    d_big = 10_000
    assert two_layer_linearisation_rms(d_big, 1.0) ** 2 == pytest.approx(
        2 / (3 * math.pi) * d_big ** -1.5, rel=1e-3)


# --------------------------------------------------------------------------- inputs
def test_invalid_inputs_raise():
    law = gp_value_grad_law(4)
    bad = [
        lambda: gp_value_grad_law(0),
        lambda: gp_value_grad_law(4, 0),
        lambda: gp_value_grad_law(4, 1.5),
        lambda: gp_value_grad_law(4, bias_std=-1.0),
        lambda: gp_value_grad_law(4, hidden_gain=0.0),
        lambda: gp_value_grad_law(4, x_norm=float("nan")),
        lambda: gp_value_grad_law(4, activation="no_such"),
        lambda: law.sample(0),
        lambda: law.sample(3, x=np.ones(5), full=True),        # wrong shape
        lambda: law.sample(3, x=np.ones(4) * 3, full=True),    # ||x|| = 6 != sqrt(4)
        lambda: law.covariance(np.ones(3)),
        lambda: ValueGradLaw(10**6, 1e3, 1, 0, 1, 1).sample(100, full=True),
        lambda: sample_gp_value_and_grad(np.ones((2, 3)), 5),
        lambda: gp_single_step(4, max_eta=0.0),
        lambda: gp_single_step(4, max_rel=-1.0),
        lambda: two_layer_linearisation_rms(4, 1.0, activation="tanh"),
        lambda: two_layer_linearisation_rms(4, -1.0),
        lambda: gp_law_of(torch.nn.Linear(3, 1)),
    ]
    for call in bad:
        with pytest.raises(InvalidInputError):
            call()
    assert law.sample(3, x=np.full(4, 1.0), full=True).grad.shape == (3, 4)
    s = summarise_samples(law.sample(10, seed=0), max_eta=1e-9)
    assert s.flipped == 0.0 and math.isnan(s.eta_mean)
