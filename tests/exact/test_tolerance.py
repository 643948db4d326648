"""The solver tolerance that "attack >= exact" allows (attack-optimality's check)."""

import numpy as np
import pytest

from randadv.exact.tolerance import solver_tolerance


def test_solver_tolerance_of_a_linear_model():
    """f(x) = w.x + b: no hidden rows, so tol = (rel_gap + margin) d + objective slack
    + eps / ||w||_* with the dual norm of each norm, computed here by hand."""
    w = np.array([[3.0, -4.0, 0.5]])
    layers = [(w, np.array([0.2]))]
    x = np.array([0.1, 0.2, 0.3])
    d, eps = 0.25, 1e-6
    expect = {"l1": 2e-7 * d + 3 * eps + eps / 4.0,          # dual of l1: max |w_i| = 4
              "l2": 2e-7 * d + eps * d / 2 + eps / 5.0249378,  # ||w||_2 = sqrt(25.25)
              "linf": 2e-7 * d + eps + eps / 7.5}             # dual of linf: sum |w_i|
    for norm, want in expect.items():
        assert solver_tolerance(layers, x, norm, d, eps) == pytest.approx(want, rel=1e-6)
