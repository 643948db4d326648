"""Local-linearity measurement (Bartlett et al. 2021, eq. (1)): exact cases and monotonicity."""

import math

import pytest
import torch
from torch import nn

from randadv.attacks.linearity import linearity_radius, max_relative_gradient_change
from randadv.errors import InvalidInputError
from randadv.nets import DeepReLUNet, sphere_points


class Linear(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = w

    def forward(self, x):
        return x @ self.w


class Quadratic(nn.Module):
    """f(x) = x.A x / 2, grad f(x) = A x: the relative change over ||v|| <= r is at most
    r sigma_max(A) / ||A x||, attained at the top singular vector."""

    def __init__(self, a):
        super().__init__()
        self.a = a

    def forward(self, x):
        return 0.5 * ((x @ self.a) * x).sum(1)


def test_linear_model_gradient_never_changes():
    w = torch.randn(7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = torch.randn(3, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    r = max_relative_gradient_change(Linear(w), x, [0.1, 1.0, 10.0], seed=0)
    assert torch.all(r.change == 0)
    res = linearity_radius(Linear(w), x, 0.1, r_max=5.0)
    assert bool(res.censored.all()) and torch.allclose(res.radius, torch.tensor(5.0,
                                                                                 dtype=x.dtype))


def test_quadratic_model_matches_the_closed_form_bound():
    g = torch.Generator().manual_seed(2)
    m = torch.randn(6, 6, generator=g, dtype=torch.float64)
    a = m + m.T
    x = torch.randn(4, 6, generator=g, dtype=torch.float64)
    radii = torch.tensor([0.05, 0.2, 1.0], dtype=torch.float64)
    r = max_relative_gradient_change(Quadratic(a), x, radii, ascent_steps=12, seed=3)
    bound = radii[None] * torch.linalg.svdvals(a)[0] / (x @ a).norm(dim=1)[:, None]
    assert torch.all(r.change <= bound * (1 + 1e-9))
    assert torch.all(r.change >= 0.9 * bound)         # the ascent gets close to the optimum
    # the reported perturbation attains the value and is feasible
    v = r.perturbation
    assert torch.all(v.norm(dim=2) <= radii[None] * (1 + 1e-9))
    attained = (v @ a).norm(dim=2) / (x @ a).norm(dim=1)[:, None]
    assert torch.allclose(attained, r.change, rtol=1e-9)


def test_monotone_in_radius_and_deterministic():
    d = 40
    net = DeepReLUNet([d, 30, 20], seed=4)
    x = sphere_points(5, d, math.sqrt(d), 0, "x")
    radii = [0.05, 0.1, 0.3, 1.0, 3.0]
    r1 = max_relative_gradient_change(net, x, radii, n_directions=8, ascent_steps=2, seed=5)
    r2 = max_relative_gradient_change(net, x, radii, n_directions=8, ascent_steps=2, seed=5)
    assert torch.equal(r1.change, r2.change)
    assert torch.all(r1.change[:, 1:] >= r1.change[:, :-1])
    assert torch.all(r1.change >= 0)
    # ascent never does worse than random directions alone
    assert torch.all(r1.change >= r1.random_change)


def test_relu_radius_grows_with_the_bottleneck_width():
    d, eps = 256, 1.0
    medians = []
    for m in (8, 128):
        radii = []
        for s in range(2):
            net = DeepReLUNet([d, m], seed=100 + s)
            x = sphere_points(4, d, math.sqrt(d), s, "x")
            res = linearity_radius(net, x, eps, r_max=2 * math.sqrt(d), r_min=0.05, n_scan=6,
                                   bisect_steps=2, n_directions=6, ascent_steps=2, seed=s)
            radii.append(res.radius)
        medians.append(float(torch.cat(radii).median()))
    assert medians[1] > 1.5 * medians[0]


def test_bad_inputs_raise_typed_errors():
    net = DeepReLUNet([5, 4], seed=0)
    x = torch.ones(2, 5)
    with pytest.raises(InvalidInputError):
        max_relative_gradient_change(net, x, [1.0, 0.5])
    with pytest.raises(InvalidInputError):
        max_relative_gradient_change(net, x, [-1.0])
    with pytest.raises(InvalidInputError):
        max_relative_gradient_change(net, x, [1.0], n_directions=0)
    with pytest.raises(InvalidInputError):
        max_relative_gradient_change(net, torch.full((2, 5), float("nan")), [1.0])
    with pytest.raises(InvalidInputError):
        linearity_radius(net, x, -0.1, r_max=1.0)
    with pytest.raises(InvalidInputError):
        linearity_radius(net, x, 0.1, r_max=1.0, r_min=2.0)
    with pytest.raises(InvalidInputError):
        max_relative_gradient_change(Linear(torch.zeros(5)), x, [1.0])   # grad f = 0
