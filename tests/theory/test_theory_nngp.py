"""NNGP kernel and expected gradient norm: closed forms, identities and Monte-Carlo over nets.

Monte-Carlo protocol (as neural-tangents tests its kernels): average a per-network estimator over
N independent ``RandomMLP``s (fixed seeds 0..N-1, float64) and require

    |MC mean - (theory + b)| <= 4 SE + |b|,

where SE is the standard error of the mean and ``b`` is the finite-width bias of the mean at the
test widths, DERIVED below (``_finite_width_bias``) by a second-order delta method. The bias is
O(1/width); ``|b|`` bounds the O(1/width^2) remainder of that expansion. Where the theory is exact
at every width (depth 1; diagonal of bias-free ReLU; ReLU gradient norms) the derivation gives
b = 0 and the check is a pure 4-SE test.
"""

import contextlib
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.polynomial.hermite_e import hermegauss

from randadv.errors import InvalidInputError
from randadv.nets import RandomMLP, RandomMLPEnsemble, get_activation, sphere_points
from randadv.theory.correlation import (
    gaussian_expectation_2d,
    numpy_activation,
    relu_correlation_iterates,
    relu_dual_kernel,
)
from randadv.theory.nngp import (
    NNGPKernel,
    expected_grad_norm_sq,
    nngp_kernel,
    nngp_kernel_matrix,
)

RHO_IN = 0.3


def _pair(d: int, rho: float = RHO_IN, key: str = "nngp-test") -> tuple[np.ndarray, np.ndarray]:
    """x, y on the sphere of radius sqrt(d) with x.y / d = rho exactly."""
    p = sphere_points(2, d, 1.0, key, dtype=torch.float64).numpy()
    x = p[0]
    u = p[1] - (p[1] @ x) * x
    u /= np.linalg.norm(u)
    return math.sqrt(d) * x, math.sqrt(d) * (rho * x + math.sqrt(1 - rho * rho) * u)


# --------------------------------------------------------------------------- finite-width bias
# Derivation. Let S_l be the empirical Gram matrix (1/n_l) sum_j phi_j phi_j^T of per-unit
# features at hidden layer l: phi_j = (psi(z_j(x)), psi(z_j(y))) for the kernel, or
# phi_j = (psi(z_j), psi'(z_j) e.grad z_j) for the gradient along a direction e. Given layer l,
# the rows of layer l+1 are i.i.d. Gaussian with covariance Sig_{l+1} = sigma_w^2 S_l + bias term,
# so E[S_{l+1} | S_l] = F(Sig_{l+1}) and Cov[S_{l+1} | S_l] = C(Sig_{l+1}) / n_{l+1} exactly,
# with F(Sig) = E phi phi^T and C(Sig) = Cov(phi phi^T) under N(0, Sig). Writing
# Sig = mu + delta with E delta = O(1/n), Cov delta = V = O(1/n) and Taylor-expanding F:
#     mu_{l+1} = F(mu_l) + H_F[V_l] / 2,  V_{l+1} = J_F V_l J_F^T + C(mu_l) / n_l   (+ O(1/n^2)),
# starting from the exact layer-1 covariance (V_1 = 0). The output moment is sigma_w^2 E S_L
# (E over the output layer a, Gaussian or Rademacher, gives exactly that), so its bias is
# sigma_w^2 (F(mu_L) + H_F[V_L] / 2) - (infinite-width value) = O(1/n), the remainder O(1/n^2).
_GH_Z, _GH_W = hermegauss(96)  # tanh: GH error ~2e-10 at 96 nodes (~1e-6 at 48)
_GH_G1 = np.repeat(_GH_Z, _GH_Z.size)
_GH_G2 = np.tile(_GH_Z, _GH_Z.size)
_GH_WW = np.outer(_GH_W, _GH_W).ravel() / (2 * math.pi)


def _feature_moments(features, s, cov=True):
    """E p and Cov p for p = (phi1^2, phi1 phi2, phi2^2), (u, v) ~ N(0, [[s0, s1], [s1, s2]])."""
    a = math.sqrt(s[0])
    b = s[1] / a
    c = math.sqrt(max(s[2] - b * b, 0.0))
    f1, f2 = features(a * _GH_G1, b * _GH_G1 + c * _GH_G2)
    p = np.stack([f1 * f1, f1 * f2, f2 * f2])
    mean = p @ _GH_WW
    return mean, ((p * _GH_WW) @ p.T - np.outer(mean, mean)) if cov else None


def _jac_hess(F, s, h):
    f0 = F(s)
    J, H, E = np.zeros((3, 3)), np.zeros((3, 3, 3)), np.diag(h)
    for i in range(3):
        fp, fm = F(s + E[i]), F(s - E[i])
        J[:, i] = (fp - fm) / (2 * h[i])
        H[:, i, i] = (fp - 2 * f0 + fm) / h[i] ** 2
        for j in range(i):
            mixed = (F(s + E[i] + E[j]) - F(s + E[i] - E[j])
                     - F(s - E[i] + E[j]) + F(s - E[i] - E[j]))
            H[:, i, j] = H[:, j, i] = mixed / (4 * h[i] * h[j])
    return f0, J, H


def _mean_moment(F, features, sigma1, hidden, sw2, bias_pattern, finite=True):
    """sigma_w^2 E S_L to O(1/n) at hidden widths ``hidden`` (finite=False: infinite width)."""
    mu, V, pat = np.asarray(sigma1, float), np.zeros((3, 3)), np.asarray(bias_pattern, float)
    for n in hidden[:-1]:
        f0, J, H = _jac_hess(F, mu, np.full(3, 1e-3 * math.sqrt(mu[0] * mu[2])))
        mean = f0 + 0.5 * np.einsum("kij,ij->k", H, V)
        cov = J @ V @ J.T + (_feature_moments(features, mu)[1] / n if finite else 0.0)
        mu, V = sw2 * mean + pat, sw2**2 * cov
    f0, _, H = _jac_hess(F, mu, np.full(3, 1e-3 * math.sqrt(mu[0] * mu[2])))
    return sw2 * (f0 + 0.5 * np.einsum("kij,ij->k", H, V))


def _finite_width_bias(F, features, sigma1, hidden, sw2=1.0, bias_pattern=(0, 0, 0)):
    """(leading-order bias (3,) of sigma_w^2 E S_L at widths ``hidden``, infinite-width value)."""
    finite = _mean_moment(F, features, sigma1, hidden, sw2, bias_pattern)
    infinite = _mean_moment(F, features, sigma1, hidden, sw2, bias_pattern, finite=False)
    return finite - infinite, infinite


def _kernel_bias(activation, bias_std, x, y, hidden):
    psi = numpy_activation(activation)
    feats = lambda u, v: (psi(u), psi(v))  # noqa: E731
    if activation == "relu":
        F = lambda s: np.array([s[0] / 2, float(relu_dual_kernel(*s)), s[2] / 2])  # noqa: E731
    else:
        F = lambda s: _feature_moments(feats, s, cov=False)[0]  # noqa: E731
    d, sb2 = x.size, bias_std**2
    sigma1 = [x @ x / d + sb2, x @ y / d + sb2, y @ y / d + sb2]
    bias, infinite = _finite_width_bias(F, feats, sigma1, hidden, bias_pattern=(sb2,) * 3)
    # cross-check: without fluctuations this independent code reproduces nngp_kernel
    k = nngp_kernel(x, y, len(hidden), activation, bias_std)
    np.testing.assert_allclose(infinite, [k.kxx, k.kxy, k.kyy], rtol=1e-6)
    return bias, infinite


def _grad_bias(activation, bias_std, x, hidden):
    """Bias of E ||grad f||^2 = (d - 1) T_n + R_n (orthogonal / radial directions)."""
    psi, dpsi = numpy_activation(activation), numpy_activation(activation, derivative=True)
    feats = lambda z, v: (psi(z), dpsi(z) * v)  # noqa: E731
    F = lambda s: _feature_moments(feats, s, cov=False)[0]  # noqa: E731
    d, sb2 = x.size, bias_std**2
    r = float(np.linalg.norm(x))
    a1 = r * r / d + sb2
    t, t_inf = _finite_width_bias(F, feats, [a1, 0.0, 1 / d], hidden, bias_pattern=(sb2, 0, 0))
    rad, rad_inf = _finite_width_bias(F, feats, [a1, r / d, 1 / d], hidden,
                                      bias_pattern=(sb2, 0, 0))
    # cross-check: without fluctuations this reproduces expected_grad_norm_sq
    assert (d - 1) * t_inf[2] + rad_inf[2] == pytest.approx(
        expected_grad_norm_sq(x, len(hidden), activation, bias_std), rel=1e-6)
    return (d - 1) * t[2] + rad[2]


# --------------------------------------------------------------------------- Monte-Carlo
@contextlib.contextmanager
def _one_thread():
    # many tiny batched products: one thread is faster and does not fight other processes
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _monte_carlo(widths, activation, bias_std, x, y, n_nets, chunk=250):
    """Per-network estimators over RandomMLPs with seeds 0..n_nets-1 (float64, Gaussian output).

    kernel: E_a f f = (1/n_L) psi(z_L(.)) . psi(z_L(.)) (Rao-Blackwellised over a), shape (N, 3);
    ff: f(x)^2, f(x) f(y), f(y)^2; grad / grad_radial: E_a ||grad f(x)||^2 and its part along
    x / ||x||, from the Jacobian of z_L; grad_direct: ||net.value_and_grad(x)[1]||^2.
    """
    act = get_activation(activation)
    X = torch.tensor(np.stack([x, y]))
    xhat = X[0] / X[0].norm()
    out = {k: [] for k in ("kernel", "ff", "grad", "grad_radial", "grad_direct")}
    with _one_thread():
        for s0 in range(0, n_nets, chunk):
            ens = RandomMLPEnsemble(widths, list(range(s0, min(s0 + chunk, n_nets))), activation,
                                    output="gaussian", bias_std=bias_std, dtype=torch.float64)
            zs = ens.preactivations(X)
            h = act(zs[-1])
            out["kernel"].append(torch.stack([(h[:, 0] ** 2).mean(-1), (h[:, 0] * h[:, 1]).mean(-1),
                                              (h[:, 1] ** 2).mean(-1)], 1))
            f = ens(X)
            out["ff"].append(torch.stack([f[:, 0] ** 2, f[:, 0] * f[:, 1], f[:, 1] ** 2], 1))
            jac = ens.W0
            for i in range(1, ens.depth):
                mask = act.derivative(zs[i - 1][:, 0])[..., None]
                jac = torch.bmm(getattr(ens, f"W{i}"), mask * jac)
            dpsi2 = act.derivative(zs[-1][:, 0]) ** 2
            out["grad"].append((dpsi2 * (jac**2).sum(-1)).mean(-1))
            out["grad_radial"].append((dpsi2 * (jac @ xhat) ** 2).mean(-1))
            _, g = ens.value_and_grad(X[:1])
            out["grad_direct"].append((g[:, 0] ** 2).sum(-1))
    return {k: torch.cat(v).numpy() for k, v in out.items()}


def _check(samples, theory, bias=0.0, name=""):
    """|mean - (theory + bias)| <= 4 SE + |bias|, elementwise; returns the z-scores vs theory."""
    samples = np.asarray(samples)
    mean = samples.mean(0)
    se = samples.std(0, ddof=1) / math.sqrt(samples.shape[0])
    theory, bias = np.asarray(theory, float), np.asarray(bias, float)
    ok = np.abs(mean - theory - bias) <= 4 * se + np.abs(bias)
    assert np.all(ok), f"{name}: MC {mean} +- {se} vs theory {theory} (+ bias {bias})"
    return (mean - theory) / se


@pytest.fixture(scope="module")
def relu_deep():
    d, widths = 8, [8, 256, 256]
    x, y = _pair(d)
    return x, y, widths, _monte_carlo(widths, "relu", 0.0, x, y, n_nets=1200)


@pytest.fixture(scope="module")
def tanh_deep():
    d, widths = 8, [8, 256, 256]
    x, y = _pair(d)
    return x, y, widths, _monte_carlo(widths, "tanh", 0.5, x, y, n_nets=800)


def test_mc_relu_kernel_depth2(relu_deep):
    x, y, widths, mc = relu_deep
    bias, infinite = _kernel_bias("relu", 0.0, x, y, widths[1:])
    # derived: the diagonal is exact at every width (E S_{l+1} = S_l / 2 is linear), the
    # off-diagonal bias is -0.042 / 256 ~ -1.7e-4 (the correlation map is convex)
    assert np.allclose(bias[[0, 2]], 0.0, atol=1e-12) and -1e-3 < bias[1] < 0
    _check(mc["kernel"], infinite, bias, "relu kernel (Rao-Blackwellised)")
    _check(mc["ff"], infinite, bias, "relu f(x) f(y)")


def test_mc_relu_grad_norm_is_exactly_2_to_minus_L(relu_deep):
    x, _, widths, mc = relu_deep
    theory = expected_grad_norm_sq(x, widths, "relu")
    assert theory == pytest.approx(0.25, rel=1e-12)
    _check(mc["grad"], theory, name="relu grad (RB)")   # exact at every width: no bias term
    _check(mc["grad_direct"], theory, name="relu grad (value_and_grad)")
    # the radial part is the orthogonal part T = 2^-L / d (homogeneity), exactly
    _check(mc["grad_radial"], theory / x.size, name="relu radial grad")


def test_mc_tanh_bias_kernel_and_grad_depth2(tanh_deep):
    x, y, widths, mc = tanh_deep
    bias, infinite = _kernel_bias("tanh", 0.5, x, y, widths[1:])
    assert np.all(np.abs(bias) < 1e-3)           # O(1/256), measured ~ -6e-5 on the diagonal
    _check(mc["kernel"], infinite, bias, "tanh kernel (RB)")
    _check(mc["ff"], infinite, bias, "tanh f(x) f(y)")
    exact = expected_grad_norm_sq(x, 2, "tanh", 0.5)
    gia = expected_grad_norm_sq(x, 2, "tanh", 0.5, method="gia")
    gbias = _grad_bias("tanh", 0.5, x, widths[1:])
    assert abs(gbias) < 1e-3
    _check(mc["grad"], exact, gbias, "tanh grad (RB)")
    _check(mc["grad_direct"], exact, gbias, "tanh grad (value_and_grad)")
    # the gradient-independence product misses the radial O(1/d) term: rejected at d = 8
    mean = mc["grad"].mean()
    se = mc["grad"].std(ddof=1) / math.sqrt(mc["grad"].size)
    assert abs(mean - gia) > 4 * se + abs(gbias) + 10 * abs(mean - exact)


def test_mc_depth1_exact_at_any_width_tanh_bias():
    # depth 1: E f f = E psi psi and E||grad f||^2 = E psi'(z)^2 ||w||^2 hold at every width
    # (rows of W_1 i.i.d., a independent): no bias term. d = 4 makes the radial term large.
    d, widths = 4, [4, 256]
    x, y = _pair(d)
    mc = _monte_carlo(widths, "tanh", 0.5, x, y, n_nets=1500)
    k = nngp_kernel(x, y, widths, "tanh", 0.5)
    _check(mc["kernel"], [k.kxx, k.kxy, k.kyy], name="depth-1 tanh kernel")
    exact = expected_grad_norm_sq(x, 1, "tanh", 0.5)
    _check(mc["grad"], exact, name="depth-1 tanh grad")
    _check(mc["grad_direct"], exact, name="depth-1 tanh grad (value_and_grad)")
    gia = expected_grad_norm_sq(x, 1, "tanh", 0.5, method="gia")
    se = mc["grad"].std(ddof=1) / math.sqrt(mc["grad"].size)
    assert abs(mc["grad"].mean() - gia) > 20 * se


def test_mc_relu_bias_depth3_grad_exact():
    # With biases, rows (w_j, b_j) are still sign-symmetric, so the activation pattern is an
    # independent Bernoulli(1/2) mask (Bartlett et al. 2021, Lemma 2.1): E||grad||^2 = 2^-3.
    d, widths = 8, [8, 128, 128, 128]
    x, y = _pair(d)
    mc = _monte_carlo(widths, "relu", 0.5, x, y, n_nets=600)
    theory = expected_grad_norm_sq(x, widths, "relu", 0.5)
    assert theory == pytest.approx(0.125, rel=1e-12)
    # derived bias: 0 (the moments are linear in the state), up to finite-difference rounding
    assert _grad_bias("relu", 0.5, x, widths[1:]) == pytest.approx(0.0, abs=1e-9)
    _check(mc["grad"], theory, name="relu+bias grad (RB)")
    _check(mc["grad_direct"], theory, name="relu+bias grad (value_and_grad)")


# --------------------------------------------------------------------------- closed forms
def test_relu_depth1_is_cho_saul_arccos_kernel():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(6), 2.0 * rng.standard_normal(6)
    k = nngp_kernel(x, y, 1)
    t = math.acos(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))
    cho_saul = np.linalg.norm(x) * np.linalg.norm(y) * (math.sin(t) + (math.pi - t) * math.cos(t))
    assert k.kxy == pytest.approx(cho_saul / (2 * math.pi * 6), rel=1e-13)
    assert k.kxx == pytest.approx(x @ x / 12, rel=1e-13)
    assert k.layers == ((x @ x / 6, x @ y / 6, y @ y / 6),)


@pytest.mark.parametrize("depth", [1, 2, 5, 12])
def test_bias_free_relu_diagonal_and_lemma_3_2_iterates(depth):
    x, y = _pair(10, rho=-0.4)
    k = nngp_kernel(x, y, depth)
    assert isinstance(k, NNGPKernel) and k.depth == depth
    assert k.kxx == pytest.approx(2.0**-depth, rel=1e-13)  # ||x||^2 / d = 1
    assert k.correlation == pytest.approx(relu_correlation_iterates(-0.4, depth)[-1], abs=1e-13)
    # Rademacher and Gaussian output layers have the same second moments
    assert nngp_kernel(x, y, depth, output="rademacher") == k


def test_quadrature_path_and_sigma_w_and_widths():
    x, y = _pair(5)
    closed = nngp_kernel(x, y, 3, "relu", 0.3)
    quad = nngp_kernel(x, y, 3, torch.relu, 0.3)  # a callable is integrated numerically
    np.testing.assert_allclose([quad.kxx, quad.kxy, quad.kyy],
                               [closed.kxx, closed.kxy, closed.kyy], rtol=1e-4)
    # bias-free ReLU is homogeneous in the weights: K scales as sigma_w^{2(L+1)}
    k1, k2 = nngp_kernel(x, y, 3), nngp_kernel(x, y, 3, sigma_w2=1.5**2)
    assert k2.kxy == pytest.approx(1.5**8 * k1.kxy, rel=1e-12)
    # and as g^{L-1} in the hidden layers' gain g alone (the first and output layers keep theirs)
    k3 = nngp_kernel(x, y, 3, hidden_gain=2.0)
    assert k3.kxy == pytest.approx(2.0**2 * k1.kxy, rel=1e-12)
    # sigma_w: the deprecated alias of sigma_w2 = sigma_w ** 2, the same numbers
    with pytest.warns(DeprecationWarning, match="sigma_w2"):
        assert nngp_kernel(x, y, 3, sigma_w=1.5) == k2
    assert nngp_kernel(x, y, [5, 7, 9, 11]) == nngp_kernel(x, y, 3)
    # leaky ReLU closed form agrees with quadrature of a callable with the same values
    leaky = nngp_kernel(x, y, 2, "leaky_relu", 0.2)
    leaky_q = nngp_kernel(x, y, 2, lambda z: torch.where(z > 0, z, 0.01 * z), 0.2)
    assert leaky_q.kxy == pytest.approx(leaky.kxy, rel=1e-4)


def test_kernel_matrix():
    X = sphere_points(5, 6, math.sqrt(6), "kmat", dtype=torch.float64).numpy()
    K = nngp_kernel_matrix(X, None, 3, "tanh", 0.2)
    assert K.shape == (5, 5)
    np.testing.assert_allclose(K, K.T, atol=1e-12)
    assert np.linalg.eigvalsh(K).min() > -1e-10
    k = nngp_kernel(X[1], X[3], 3, "tanh", 0.2)
    assert K[1, 3] == pytest.approx(k.kxy, rel=1e-12)
    assert K[1, 1] == pytest.approx(k.kxx, rel=1e-12)
    assert nngp_kernel_matrix(X[:2], X, 2).shape == (2, 5)


def test_grad_norm_closed_forms():
    x = np.array([3.0, -1.0, 0.5, 2.0])
    for bias in (0.0, 0.7):
        for depth in (1, 2, 4):
            for method in ("exact", "gia"):
                assert expected_grad_norm_sq(x, depth, "relu", bias, method=method) == \
                    pytest.approx(2.0**-depth, rel=1e-12)
    assert expected_grad_norm_sq(x, 3, sigma_w2=4.0) == pytest.approx(2.0**8 / 8, rel=1e-12)
    assert expected_grad_norm_sq(x, 3, hidden_gain=2.0) == pytest.approx(2.0**2 / 8, rel=1e-12)
    assert expected_grad_norm_sq(x, 2, "leaky_relu") == pytest.approx(
        ((1 + 0.01**2) / 2) ** 2, rel=1e-12)
    assert expected_grad_norm_sq(x, 3, "linear", 0.4) == pytest.approx(1.0, rel=1e-12)
    batch = expected_grad_norm_sq(np.stack([x, 2 * x]), 2, "tanh")
    assert batch.shape == (2,) and batch[0] == pytest.approx(expected_grad_norm_sq(x, 2, "tanh"))


def test_grad_norm_depth1_direct_formula():
    # depth 1: E||grad f||^2 = E psi'(z)^2 ||w||^2 with w ~ N(0, I/d), z = w.x + b; split
    # ||w||^2 = g^2 + ||w_perp||^2 with g = w.x/||x||: E psi'(z)^2 (g^2 + (d - 1)/d)
    d, bias = 5, 0.6
    x = np.full(d, 1.3)
    r = np.linalg.norm(x)
    dpsi = numpy_activation("gelu", derivative=True)
    # (z, g) jointly Gaussian: Var z = r^2/d + bias^2, Cov(z, g) = r/d, Var g = 1/d
    e = gaussian_expectation_2d(lambda z, g: dpsi(z) ** 2 * (g * g + (d - 1) / d),
                                r * r / d + bias**2, r / d, 1 / d)
    assert expected_grad_norm_sq(x, 1, "gelu", bias) == pytest.approx(float(e), rel=1e-10)


def test_grad_norm_radial_correction_is_order_one_over_d():
    # with ||x||^2 = d, both R and T scale exactly as 1/d (the layer-1 law has B_1^2, C_1
    # proportional to 1/d and the recursion is linear in (B^2, C), for any quadrature rule), so
    # d (exact - gia) = d (R - T) does not depend on d and exact / gia -> 1 as d grows
    diffs = []
    for d in (4, 400):
        x = np.ones(d)
        ex, gia = (expected_grad_norm_sq(x, 3, "tanh", 0.3, method=m, n_quad=64)
                   for m in ("exact", "gia"))
        diffs.append(d * (ex - gia))
    np.testing.assert_allclose(diffs, diffs[0], rtol=1e-9)
    assert diffs[0] < 0  # tanh: psi'^2 decreases away from 0, the radial direction pays for it


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), depth=st.integers(1, 4), width=st.integers(1, 40),
       d=st.integers(1, 12), act=st.sampled_from(["relu", "leaky_relu", "linear"]),
       output=st.sampled_from(["gaussian", "rademacher"]))
def test_positive_homogeneity_f_equals_grad_dot_x(seed, depth, width, d, act, output):
    # bias-free piecewise-linear nets are positively homogeneous of degree 1: f(x) = grad f(x).x
    # (Euler; Bartlett et al. 2021, proof of Lemma 2.2)
    net = RandomMLP([d] + [width] * depth, act, seed, output=output, dtype=torch.float64)
    x = torch.randn(3, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    f, g = net.value_and_grad(x)
    scale = 1e-12 * (1 + (g.abs() * x.abs()).sum(1))
    assert torch.all((f - (g * x).sum(1)).abs() <= scale)


def test_invalid_inputs_raise():
    x = np.ones(4)
    bad_calls = [
        lambda: nngp_kernel(np.array([1.0, np.nan]), np.ones(2), 2),
        lambda: nngp_kernel(x, np.ones(3), 2),
        lambda: nngp_kernel(np.ones((2, 4)), np.ones((2, 4)), 2),
        lambda: nngp_kernel(x, x, 0),
        lambda: nngp_kernel(x, x, [5, 10]),           # widths[0] != d
        lambda: nngp_kernel(x, x, [4]),               # no hidden layer
        lambda: nngp_kernel(x, x, 2, output="softmax"),
        lambda: nngp_kernel(x, x, 2, bias_std=-1.0),
        lambda: nngp_kernel(x, x, 2, sigma_w2=0.0),
        lambda: nngp_kernel(x, x, 2, hidden_gain=-1.0),
        lambda: nngp_kernel(x, x, 2, sigma_w2=2.0, sigma_w=1.0),
        lambda: nngp_kernel(x, x, 2, "no_such_activation"),
        lambda: nngp_kernel(np.zeros(4), x, 2).correlation,   # Var f(0) = 0 without bias
        lambda: nngp_kernel_matrix(np.ones((2, 3)), np.ones((2, 4)), 2),
        lambda: expected_grad_norm_sq(x, 2, method="ntk"),
        lambda: expected_grad_norm_sq(np.ones((2, 2, 2)), 2),
        lambda: expected_grad_norm_sq([np.inf, 1.0], 2),
        lambda: expected_grad_norm_sq(x, -1),
    ]
    for call in bad_calls:
        with pytest.raises(InvalidInputError):
            call()
