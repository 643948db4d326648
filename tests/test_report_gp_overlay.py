"""The infinite-width (GP) overlays of the single-step figures: reference values against closed
forms, the hidden-gain guard, and drawing."""

import math

import pandas as pd
import pytest

from randadv.report.figures import eta_and_grad_figure, gp_two_layer_reference
from randadv.report.figures_multilayer import gp_nn_def_reference
from randadv.theory import mean_abs_uniform_coordinate


def test_nn_def_reference_matches_closed_forms():
    # bias-free ReLU limit: f = x . grad f, grad f ~ N(0, 2^-L I/d): E|f| = sqrt(2^(1-L)/pi),
    # ||eta grad f|| / ||x|| = |u_1| (u uniform on the sphere); tolerance 4/sqrt(n) relative, about
    # 5 Monte-Carlo standard errors (both have std / mean ~ 0.75)
    ref = gp_nn_def_reference([1, 3], [16, 256])
    tol = 4 / math.sqrt(100_000)
    for r in ref.itertuples():
        assert r.abs_f == pytest.approx(math.sqrt(2.0 ** (1 - r.depth) / math.pi),
                                        rel=tol)
        assert r.rel == pytest.approx(mean_abs_uniform_coordinate(r.d), rel=tol)
        # E||grad f|| = sqrt(2^-L / d) E chi_d < sqrt(E||grad f||^2) = 2^(-L/2) (Jensen)
        assert r.grad < 2.0 ** (-r.depth / 2)


def test_two_layer_reference_guards_the_hidden_gain():
    # a table drawn at hidden_gain = 2 has E f^2 = (2/2)^(L-1) / 2 = 0.5 for ReLU at L = 2
    with pytest.warns(RuntimeWarning, match="hidden_gain"):
        assert gp_two_layer_reference("relu", 2, 50, f_sq_theory=0.5) is None
    st = gp_two_layer_reference("relu", 2, 50, hidden_gain=2.0, f_sq_theory=0.5)
    assert st is not None and st.f_abs_mean == pytest.approx(math.sqrt(1 / math.pi), rel=0.02)
    # depth 1 does not depend on the gain: never skipped
    assert gp_two_layer_reference("tanh", 1, 50, f_sq_theory=123.0) is not None


def test_eta_and_grad_figure_draws_with_the_overlay(tmp_path):
    t = pd.DataFrame(dict(depth=1, activation="relu", d=[20, 100, 20, 100], k=[20, 20, 100, 100],
                          eta_mean=1.1, eta_std=0.5, eta_theory=1.128, grad_norm_mean=0.7,
                          grad_norm_std=0.05, grad_norm_theory=0.707, f_sq_theory=0.5))
    path = eta_and_grad_figure(t, tmp_path / "a.png")
    assert path.stat().st_size > 5000
    assert eta_and_grad_figure(t, tmp_path / "b.png", gp=False).exists()
