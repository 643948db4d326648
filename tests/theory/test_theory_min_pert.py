"""Min-Pert radius ||W1^+ W1 x|| (Bartlett et al. 2021, Appendix D)."""

import math

import numpy as np
import pytest
import torch

from randadv.errors import InvalidInputError
from randadv.theory.min_pert import (
    min_pert_delta,
    min_pert_radius,
    min_pert_ratio,
    min_pert_ratio_mean,
    min_pert_ratio_sq_moments,
    min_pert_ratio_theory,
    row_space_basis,
)


def test_k_at_least_d_gives_norm_of_x():
    rng = np.random.default_rng(0)
    d = 30
    x = rng.standard_normal((4, d))
    for k in (d, d + 1, 3 * d):
        W = rng.standard_normal((k, d))
        np.testing.assert_allclose(min_pert_radius(W, x), np.linalg.norm(x, axis=1), rtol=1e-12)
        np.testing.assert_allclose(min_pert_delta(W, x), x, atol=1e-12)
        assert min_pert_ratio_theory(k, d) == 1.0
        assert min_pert_ratio_sq_moments(k, d) == (1.0, 0.0)
        assert min_pert_ratio_mean(k, d) == 1.0


def test_orthonormal_rows_exact_projection():
    rng = np.random.default_rng(1)
    d, k = 50, 7
    Q, _ = np.linalg.qr(rng.standard_normal((d, k)))   # (d, k), orthonormal columns
    W = Q.T                                             # orthonormal rows
    x = rng.standard_normal(d)
    assert min_pert_radius(W, x) == pytest.approx(np.linalg.norm(W @ x), rel=1e-13)
    np.testing.assert_allclose(min_pert_delta(W, x), W.T @ (W @ x), atol=1e-13)
    # the Min-Pert constraint W1 (x - delta) = 0 holds and delta is orthogonal to the kernel
    delta = min_pert_delta(W, x)
    np.testing.assert_allclose(W @ (x - delta), 0.0, atol=1e-13)
    # scale invariance (the scale of W1 does not matter, as noted in Section 1 and App. D)
    assert min_pert_radius(1e-6 * W, x) == pytest.approx(min_pert_radius(W, x), rel=1e-12)
    assert isinstance(min_pert_radius(W, x), float)


def test_matches_pseudo_inverse_and_handles_rank_deficiency():
    rng = np.random.default_rng(2)
    d = 12
    W = rng.standard_normal((3, d))
    W = np.vstack([W, W[0] + 2 * W[1], -W[2]])        # 5 rows, rank 3
    assert row_space_basis(W).shape == (d, 3)
    x = rng.standard_normal((6, d))
    pinv = np.linalg.norm(x @ (np.linalg.pinv(W) @ W).T, axis=1)
    np.testing.assert_allclose(min_pert_radius(W, x), pinv, rtol=1e-10)
    # k >= d but rank-deficient: NOT ||x||
    W2 = rng.standard_normal((d + 5, 4)) @ rng.standard_normal((4, d))
    assert row_space_basis(W2).shape == (d, 4)
    assert min_pert_radius(W2, x[0]) < np.linalg.norm(x[0]) - 1e-3
    assert row_space_basis(np.zeros((3, d))).shape == (d, 0)
    assert min_pert_radius(np.zeros((3, d)), x[0]) == 0.0


def test_ill_conditioned_rows_are_stable():
    # W = U diag(s) V^T with singular values down to 1e-10: the row space is span(V) exactly,
    # so the radius is ||V^T x|| whatever s. A backward-stable method errs by O(kappa eps)
    # ~ 1e-6 (kappa = 1e10 is the problem's own condition number; measured 1.5e-8); the
    # normal equations W^T (W W^T)^-1 W x square kappa and are off by 14% here.
    rng = np.random.default_rng(3)
    d, k = 40, 10
    U, _ = np.linalg.qr(rng.standard_normal((k, k)))
    V, _ = np.linalg.qr(rng.standard_normal((d, k)))
    W = U @ np.diag(np.logspace(0, -10, k)) @ V.T
    x = rng.standard_normal(d)
    exact = np.linalg.norm(V.T @ x)
    assert min_pert_radius(W, x) == pytest.approx(exact, rel=1e-6)
    normal_eq = np.linalg.norm(W.T @ np.linalg.solve(W @ W.T, W @ x))
    assert abs(normal_eq / exact - 1) > 1e-3


def test_torch_inputs_and_batches():
    g = torch.Generator().manual_seed(4)
    W = torch.randn(6, 20, generator=g)                  # float32 weights
    x = torch.randn(3, 20, generator=g, dtype=torch.float64)
    out = min_pert_radius(W, x)
    assert isinstance(out, np.ndarray) and out.shape == (3,)
    ref = min_pert_radius(W.double().numpy(), x.numpy())  # float32 values, float64 arithmetic
    np.testing.assert_allclose(out, ref, rtol=1e-14)
    assert min_pert_radius(W, x[1]) == pytest.approx(out[1], rel=1e-14)
    np.testing.assert_allclose(min_pert_ratio(W, x), out / x.norm(dim=1).numpy(), rtol=1e-14)


def test_ratio_over_random_gaussian_w_matches_beta_law():
    # For W1 Gaussian (k x d, k < d) and x independent, the row space is a uniform random
    # k-subspace, so ratio^2 ~ Beta(k/2, (d-k)/2): mean k/d, exact sd
    # sqrt(2 k (d-k) / (d^2 (d+2))). Over M draws the mean of ratio^2 is within 4 exact SEs of
    # k/d; the mean ratio is within 4 SEs (sd^2 = k/d - E[ratio]^2) of its exact value
    # Gamma((k+1)/2) Gamma(d/2) / (Gamma(k/2) Gamma((d+1)/2)).
    rng = np.random.default_rng(5)
    d, M = 60, 400
    x = rng.standard_normal(d)
    for k in (3, 15, 45):
        ratios = np.array([min_pert_ratio(rng.standard_normal((k, d)), x) for _ in range(M)])
        mean_sq, sd_sq = min_pert_ratio_sq_moments(k, d)
        assert mean_sq == k / d
        assert abs((ratios**2).mean() - mean_sq) < 4 * sd_sq / math.sqrt(M)
        mean = min_pert_ratio_mean(k, d)
        assert abs(ratios.mean() - mean) < 4 * math.sqrt(k / d - mean**2) / math.sqrt(M)
        assert mean < min_pert_ratio_theory(k, d)        # Jensen: E sqrt(B) < sqrt(E B)


def test_single_draw_concentrates_at_sqrt_k_over_d():
    # Appendix D / Fig. 1: one draw already gives ratio ~ sqrt(k/d). Derived band: ratio^2
    # within 4 exact Beta standard deviations of k/d (Chebyshev: probability >= 15/16 each;
    # seeds fixed).
    rng = np.random.default_rng(6)
    d = 200   # small enough for BLAS to stay single-threaded on a busy machine
    x = rng.standard_normal(d)
    for k in (2, 20, 100):
        ratio = min_pert_ratio(rng.standard_normal((k, d)), x)
        mean_sq, sd_sq = min_pert_ratio_sq_moments(k, d)
        lo, hi = math.sqrt(max(mean_sq - 4 * sd_sq, 0.0)), math.sqrt(mean_sq + 4 * sd_sq)
        assert lo <= ratio <= hi
        assert min_pert_ratio_theory(k, d) == pytest.approx(math.sqrt(k / d))


def test_invalid_inputs_raise():
    W = np.ones((3, 5))
    bad_calls = [
        lambda: min_pert_radius(np.ones(5), np.ones(5)),           # W1 not 2-D
        lambda: min_pert_radius(np.ones((0, 5)), np.ones(5)),
        lambda: min_pert_radius(W, np.ones(4)),                    # d mismatch
        lambda: min_pert_radius(W, np.ones((2, 4))),
        lambda: min_pert_radius(W, np.ones((2, 2, 5))),
        lambda: min_pert_radius(W, np.array([1.0, np.nan, 0, 0, 0])),
        lambda: min_pert_radius(np.full((3, 5), np.inf), np.ones(5)),
        lambda: min_pert_delta(W, "abc"),
        lambda: min_pert_ratio(W, np.zeros(5)),                    # ratio needs x != 0
        lambda: min_pert_ratio_theory(0, 5),
        lambda: min_pert_ratio_theory(3, 2.5),
        lambda: min_pert_ratio_sq_moments(-1, 5),
        lambda: min_pert_ratio_mean(True, 5),
    ]
    for call in bad_calls:
        with pytest.raises(InvalidInputError):
            call()
    assert min_pert_radius(W, np.zeros(5)) == 0.0                  # the radius itself is fine
