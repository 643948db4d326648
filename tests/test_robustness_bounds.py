"""Corollary 1 (eqs. (16), (18)) and Remark 5 of De Palma, Kiani, Lloyd (2021)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from randadv.errors import InvalidInputError
from randadv.theory.robustness_bounds import (
    corollary1_l1_radius,
    corollary1_segment_radius,
    dudley_denominator,
    lp_radius,
    remark5_exponent,
    remark5_scaling,
    smoothness_constant,
    theorem1_l1_radius,
    theorem1_segment_radius,
    uniform_input_norm,
)


def test_dudley_denominator_hand_values():
    # n = 1: ln 1 = 0 -> 12 sqrt(ln 4) + 2 sqrt(pi)
    assert dudley_denominator(1) == pytest.approx(12 * math.sqrt(math.log(4)) + 2 * math.sqrt(
        math.pi))
    # n = 432 (s = 12): ln 1728 = 7.4547, ln 432 = 6.0684, ln 864 = 6.7616
    expected = 12 * math.sqrt(7.454719949) + 8 * 6.068425588 * math.sqrt(6.761572769) + 3.544908
    assert dudley_denominator(432) == pytest.approx(expected, rel=1e-6)
    arr = dudley_denominator(np.array([1.0, 432.0]))
    assert isinstance(arr, np.ndarray) and arr.shape == (2,)


def test_corollary1_l1_radius_eq16():
    # resnet at s = 12: n = 432, pixel ratio 9 / 144 = 1/16, ||x0||_2 = sqrt(n / 3) = 12
    n, delta, rho, x2 = 432, 0.5, 1 / 16, 12.0
    a_n = dudley_denominator(n)
    expected = x2 * delta * math.sqrt(math.pi) * 0.25 / a_n
    assert corollary1_l1_radius(n, delta, rho, x2) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.016356, abs=2e-6)  # 12 * 0.5 * 1.77245 * 0.25 / 162.55
    # = Theorem 1, eq. (10), with M from eq. (14)
    assert theorem1_l1_radius(x2, delta, smoothness_constant(rho), n) == pytest.approx(expected)
    assert smoothness_constant(rho) == pytest.approx(4.0)
    # linear in ||x0||_2 and delta, proportional to sqrt(pixel ratio)
    assert corollary1_l1_radius(n, 0.1, rho, 2 * x2) == pytest.approx(expected * 0.4)
    assert corollary1_l1_radius(n, delta, 4 * rho, x2) == pytest.approx(2 * expected)
    assert corollary1_l1_radius(n, delta, rho, 0.0) == 0.0


def test_corollary1_segment_radius_eq18():
    # pixel ratio 1 (M = 1): pi ||x|| delta / (2 + pi)
    assert corollary1_segment_radius(0.5, 1.0, 10.0) == pytest.approx(
        math.pi * 5 / (2 + math.pi))
    # pixel ratio 1/16 (M = 4): pi ||x|| delta / (8 + pi)
    assert corollary1_segment_radius(0.2, 1 / 16, 3.0) == pytest.approx(
        math.pi * 0.6 / (8 + math.pi))
    assert theorem1_segment_radius(3.0, 0.2, 4.0) == pytest.approx(
        corollary1_segment_radius(0.2, 1 / 16, 3.0))
    # limits: M -> 0 gives ||x|| delta; M -> inf gives pi ||x|| delta / (2 M) -> 0
    assert theorem1_segment_radius(3.0, 0.2, 1e-12) == pytest.approx(0.6)
    assert theorem1_segment_radius(3.0, 0.2, 1e8) * 2e8 == pytest.approx(math.pi * 0.6, rel=1e-6)
    # below ||x0||_2 delta always (no bound beyond the origin's distance)
    assert corollary1_segment_radius(0.99, 1.0, 1.0) < 0.99


def test_l1_radius_scaling_limits():
    """For ||x0||_2 = sqrt(n/3), eq. (16) grows as sqrt(n) / (ln n)^{3/2} (Remark 4)."""
    ns = np.array([1e4, 1e8, 1e16])
    r = np.asarray(corollary1_l1_radius(ns, 0.5, 1 / 16, np.sqrt(ns / 3)))
    assert np.all(np.diff(r) > 0)
    scaled = r * np.log(ns) ** 1.5 / np.sqrt(ns)
    limit = 0.5 * math.sqrt(math.pi) * 0.25 / math.sqrt(3) / 8
    assert scaled[-1] == pytest.approx(limit, rel=0.1)
    assert abs(scaled[-1] - limit) < abs(scaled[0] - limit)


def test_lp_radius_remark5():
    n, delta, rho, x2 = 10800, 0.5, 1 / 16, 60.0
    r1 = corollary1_l1_radius(n, delta, rho, x2)
    assert lp_radius(1, n, delta, rho, x2) == pytest.approx(r1)
    assert lp_radius(2, n, delta, rho, x2) == pytest.approx(r1 / math.sqrt(n))
    assert lp_radius(math.inf, n, delta, rho, x2) == pytest.approx(r1 / n)
    # eq. (23): the l_p ball of radius r_p is inside the l1 ball of radius r1
    rng = np.random.default_rng(0)
    for p in (2.0, 3.0, math.inf):
        v = rng.standard_normal(n)
        v *= lp_radius(p, n, delta, rho, x2) / np.linalg.norm(v, ord=p)
        assert np.abs(v).sum() <= r1 * (1 + 1e-12)


def test_remark5_scalings():
    assert remark5_exponent(1) == 0.5
    assert remark5_exponent(2) == 0.0
    assert remark5_exponent(math.inf) == -0.5
    assert all(remark5_exponent(p, relative=True) == -0.5 for p in (1, 2, math.inf))
    n = np.array([432.0, 10800.0])
    np.testing.assert_allclose(remark5_scaling(n, 1, c=2.0), 2 * np.sqrt(n))
    np.testing.assert_allclose(remark5_scaling(n, 2), 1.0)
    np.testing.assert_allclose(remark5_scaling(n, math.inf), 1 / np.sqrt(n))
    np.testing.assert_allclose(remark5_scaling(n, 2, relative=True), 1 / np.sqrt(n))


def test_uniform_input_norm():
    assert uniform_input_norm(432, 1) == pytest.approx(216)
    assert uniform_input_norm(432, 2) == pytest.approx(12)
    assert uniform_input_norm(432, math.inf) == 1.0
    assert uniform_input_norm(10, 2, low=-1.0, high=1.0) == pytest.approx(math.sqrt(10 / 3))
    assert uniform_input_norm(10, 1, low=-2.0, high=0.0) == pytest.approx(10.0)
    x = np.random.default_rng(1).uniform(size=(200, 3000))
    for p in (1, 2, 3):
        assert np.median(np.linalg.norm(x, ord=p, axis=1)) == pytest.approx(
            uniform_input_norm(3000, p), rel=0.01)


def test_bad_arguments():
    with pytest.raises(InvalidInputError, match="delta"):
        corollary1_l1_radius(100, 1.0, 0.5, 1.0)
    with pytest.raises(InvalidInputError, match="delta"):
        corollary1_segment_radius(0.0, 0.5, 1.0)
    with pytest.raises(InvalidInputError, match="n"):
        dudley_denominator(0)
    with pytest.raises(InvalidInputError, match="pixel_ratio"):
        corollary1_l1_radius(100, 0.5, 0.0, 1.0)
    with pytest.raises(InvalidInputError, match="x_norm2"):
        corollary1_l1_radius(100, 0.5, 0.5, -1.0)
    with pytest.raises(InvalidInputError, match="p must be"):
        lp_radius(0.5, 100, 0.5, 0.5, 1.0)
    with pytest.raises(InvalidInputError, match="finite"):
        corollary1_l1_radius(float("nan"), 0.5, 0.5, 1.0)
    with pytest.raises(InvalidInputError, match="low < high"):
        uniform_input_norm(10, 2, low=1.0, high=0.0)
