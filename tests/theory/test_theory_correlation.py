"""ReLU correlation map (Bartlett et al. 2021, Lemma 3.2), its iterates, and the quadrature map."""

import math

import numpy as np
import pytest
import torch

from randadv.errors import InvalidInputError
from randadv.nets import get_activation
from randadv.theory.correlation import (
    correlation_map,
    gaussian_expectation_2d,
    input_correlation,
    numpy_activation,
    relu_correlation_iterates,
    relu_correlation_map,
    relu_dual_kernel,
    relu_dual_kernel_derivative,
)

RHOS = np.linspace(-1.0, 1.0, 41)


def test_relu_map_special_values_and_types():
    assert relu_correlation_map(1.0) == 1.0
    assert relu_correlation_map(-1.0) == pytest.approx(0.0, abs=1e-15)
    assert relu_correlation_map(0.0) == pytest.approx(1.0 / math.pi, rel=1e-15)
    assert isinstance(relu_correlation_map(0.5), float)
    out = relu_correlation_map(RHOS.reshape(1, -1))
    assert isinstance(out, np.ndarray) and out.shape == (1, RHOS.size)
    # slightly outside [-1, 1] by rounding: clipped
    assert relu_correlation_map(1.0 + 1e-13) == 1.0
    assert relu_correlation_map(-1.0 - 1e-13) == pytest.approx(0.0, abs=1e-15)


def test_relu_map_shape_properties():
    c = relu_correlation_map(RHOS)
    assert np.all(np.diff(c) > 0)                       # increasing
    assert np.all(np.diff(c, 2) >= -1e-12)              # convex
    assert np.all(c >= RHOS - 1e-15) and np.all(c <= 1.0)
    # derivative c'(rho) = (pi - t) / pi = E 1{u>0} 1{v>0} / P(u>0) (Price's theorem)
    h = 1e-6
    r = np.linspace(-0.9, 0.9, 7)
    num = (relu_correlation_map(r + h) - relu_correlation_map(r - h)) / (2 * h)
    np.testing.assert_allclose(num, (np.pi - np.arccos(r)) / np.pi, atol=1e-8)


def test_lemma_3_2_formula_matches_ratio_of_expectations():
    # Lemma 3.2 in terms of x, y: E relu(g.x) relu(g.y) / sqrt(E relu(g.x)^2 E relu(g.y)^2),
    # with E relu(g.x)^2 = ||x||^2 / 2 and the closed-form arc-cosine kernel of the covariance.
    rng = np.random.default_rng(0)
    for _ in range(5):
        x, y = rng.standard_normal(7), rng.standard_normal(7) * 3.0
        num = relu_dual_kernel(x @ x, x @ y, y @ y)
        ratio = num / math.sqrt((x @ x / 2) * (y @ y / 2))
        assert ratio == pytest.approx(relu_correlation_map(input_correlation(x, y)), rel=1e-13)


def test_lemma_3_2_monte_carlo():
    # MC over g ~ N(0, I_d): mean of relu(g.x) relu(g.y) within 4 standard errors of the closed
    # form (no bias term: the estimator is unbiased).
    gen = torch.Generator().manual_seed(1)
    d, n = 5, 200_000
    x = torch.tensor([1.0, 2.0, 0.0, -1.0, 0.5], dtype=torch.float64)
    y = torch.tensor([0.5, 1.0, 1.0, 1.0, -2.0], dtype=torch.float64)
    g = torch.randn(n, d, generator=gen, dtype=torch.float64)
    prod = (torch.relu(g @ x) * torch.relu(g @ y)).numpy()
    se = prod.std(ddof=1) / math.sqrt(n)
    rho = input_correlation(x, y)
    theory = 0.5 * float(x.norm() * y.norm()) * relu_correlation_map(rho)
    assert abs(prod.mean() - theory) < 4 * se


def test_quadrature_map_matches_relu_closed_form():
    # polar rule: trapezoid error O(n^-2) across the ReLU kink (about 2e-5 at n = 256);
    # tensor Gauss-Hermite: only O(1/n) across a kink (measured ~2e-3 at n = 128).
    exact = relu_correlation_map(RHOS)
    for q in (0.3, 1.0, 7.0):  # ReLU is homogeneous: the normalised map does not depend on q
        np.testing.assert_allclose(correlation_map(RHOS, "relu", q), exact, atol=5e-5)
    np.testing.assert_allclose(correlation_map(RHOS, "relu", quad="hermite", n_quad=128),
                               exact, atol=5e-3)
    np.testing.assert_allclose(correlation_map(RHOS, "relu", n_quad=1024), exact, atol=2e-6)
    # a plain callable goes through the same quadrature (autograd derivative unused here)
    assert correlation_map(0.3, torch.relu) == pytest.approx(relu_correlation_map(0.3), abs=5e-5)


def test_quadrature_map_general_activations():
    # linear: identity map, exact for any rule (polynomial integrand)
    np.testing.assert_allclose(correlation_map(RHOS, "linear"), RHOS, atol=1e-13)
    # odd activation: c(-rho) = -c(rho), c(0) = 0, c(1) = 1, |c| <= 1
    c = correlation_map(RHOS, "tanh", q=2.0)
    np.testing.assert_allclose(c, -c[::-1], atol=1e-12)
    assert c[RHOS.size // 2] == pytest.approx(0.0, abs=1e-13)
    assert c[-1] == pytest.approx(1.0, abs=1e-12)
    assert np.all(np.abs(c) <= 1 + 1e-12) and np.all(np.diff(c) > 0)
    # smooth integrands: polar and Gauss-Hermite rules agree to high accuracy
    for act in ("tanh", "gelu", "softplus"):
        a = correlation_map(RHOS[1:-1], act, q=1.5)
        b = correlation_map(RHOS[1:-1], act, q=1.5, quad="hermite", n_quad=96)
        np.testing.assert_allclose(a, b, atol=1e-7)
    # tanh at small q is nearly linear: c(rho) -> rho as q -> 0
    np.testing.assert_allclose(correlation_map(RHOS, "tanh", q=1e-4), RHOS, atol=1e-3)


def test_gaussian_expectation_2d_moments_and_derivative_kernel():
    s11, s12, s22 = 2.0, -0.7, 0.5
    assert gaussian_expectation_2d(lambda u, v: u * v, s11, s12, s22) == pytest.approx(s12)
    assert gaussian_expectation_2d(lambda u, v: u**2 * v**2, s11, s12, s22) == pytest.approx(
        s11 * s22 + 2 * s12**2)  # Isserlis
    # arc-cosine kernel of degree 0 (Cho & Saul 2009): P(u > 0, v > 0) = (pi - t) / (2 pi)
    quad = gaussian_expectation_2d(lambda u, v: (u > 0) * (v > 0) * 1.0, s11, s12, s22,
                                   n_quad=1024)
    assert quad == pytest.approx(relu_dual_kernel_derivative(s11, s12, s22), abs=1e-3)
    # leaky ReLU closed form against quadrature
    leaky = lambda z: np.where(z > 0, z, 0.2 * z)  # noqa: E731
    quad = gaussian_expectation_2d(lambda u, v: leaky(u) * leaky(v), s11, s12, s22)
    assert quad == pytest.approx(relu_dual_kernel(s11, s12, s22, 1.0, 0.2), abs=1e-4)
    # broadcasting over a batch of covariances
    out = gaussian_expectation_2d(lambda u, v: u * v, np.ones(3), np.array([0.1, 0.2, 0.3]), 1.0)
    np.testing.assert_allclose(out, [0.1, 0.2, 0.3], atol=1e-13)


def test_iterates_converge_to_one_like_theorem_3_1():
    it = relu_correlation_iterates(0.0, 20_000)
    assert it.shape == (20_001,) and it[0] == 0.0
    assert it[1] == pytest.approx(1 / math.pi)
    assert np.all(np.diff(it) > 0) and it[-1] < 1.0
    # Near 1, c(1 - e) = 1 - e + k e^{3/2} + O(e^2), k = 2 sqrt(2) / (3 pi); the ODE
    # e' = -k e^{3/2} gives 1 - rho_l ~ 4 / (k^2 l^2) = 9 pi^2 / (2 l^2), with relative
    # corrections O(log l / l) (< 1% here, and shrinking with l).
    ratios = [l**2 * (1 - it[l]) / (4.5 * math.pi**2) for l in (100, 1000, 10_000, 20_000)]
    assert np.all(np.diff(np.abs(np.subtract(ratios, 1.0))) < 0)
    assert ratios[-1] == pytest.approx(1.0, rel=1e-2)
    arr = relu_correlation_iterates(np.array([[-1.0, 0.5]]), 3)
    assert arr.shape == (4, 1, 2)
    np.testing.assert_allclose(arr[3, 0, 1], relu_correlation_map(
        relu_correlation_map(relu_correlation_map(0.5))))
    assert relu_correlation_iterates(0.2, 0).tolist() == [0.2]


@pytest.mark.parametrize("bad", [1.1, -1.0 - 1e-9, float("nan"), float("inf"), [0.0, 2.0]])
def test_invalid_rho_raises(bad):
    with pytest.raises(InvalidInputError):
        relu_correlation_map(bad)
    with pytest.raises(InvalidInputError):
        correlation_map(bad, "tanh")


def test_invalid_arguments_raise():
    with pytest.raises(InvalidInputError):
        relu_correlation_iterates(0.5, -1)
    with pytest.raises(InvalidInputError):
        relu_correlation_iterates(0.5, 2.5)
    with pytest.raises(InvalidInputError):
        correlation_map(0.5, "tanh", q=0.0)
    with pytest.raises(InvalidInputError):
        correlation_map(0.5, "tanh", q=float("nan"))
    with pytest.raises(InvalidInputError):
        correlation_map(0.5, "no_such_activation")
    with pytest.raises(InvalidInputError):
        correlation_map(0.5, lambda z: 0 * z)  # E psi^2 = 0
    with pytest.raises(InvalidInputError):
        correlation_map(0.5, quad="simpson")
    with pytest.raises(InvalidInputError):
        gaussian_expectation_2d(lambda u, v: u, 1.0, 2.0, 1.0)  # not PSD
    with pytest.raises(InvalidInputError):
        input_correlation(np.zeros(3), np.ones(3))
    with pytest.raises(InvalidInputError):
        input_correlation(np.ones(3), np.ones(4))
    with pytest.raises(InvalidInputError):
        input_correlation(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(InvalidInputError):
        input_correlation(np.array([1.0, np.nan]), np.ones(2))


def test_numpy_twins_match_torch_activations():
    # the quadratures evaluate registry activations with numpy twins of the torch formulas
    z = np.linspace(-30.0, 30.0, 2001)
    for name in ("relu", "linear", "tanh", "sigmoid", "softplus", "gelu"):
        act = get_activation(name)
        for deriv, torch_fn in ((False, act.fn), (True, act.derivative)):
            ref = torch_fn(torch.from_numpy(z)).numpy()
            # softplus: torch returns z itself above z = 20 (error e^-20 ~ 2e-9)
            np.testing.assert_allclose(numpy_activation(name, deriv)(z), ref,
                                       rtol=1e-9, atol=1e-14, err_msg=f"{name} {deriv}")
    # a callable goes through torch
    assert numpy_activation(torch.sin)(np.array([0.5]))[0] == pytest.approx(math.sin(0.5))
