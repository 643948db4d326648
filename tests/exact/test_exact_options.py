"""Input bounds, time limits, errors, conv layers and the missing-SCIP message."""

import math
import sys

import numpy as np
import pytest
import torch
from torch import nn

from randadv.errors import InvalidInputError, ModelOutputError
from randadv.exact import (
    AffineNet,
    ScipNotInstalledError,
    min_distance,
    to_affine_layers,
)
from randadv.nets import RandomMLP


def _has_scip():
    try:
        import pyscipopt  # noqa: F401
    except ImportError:
        return False
    return True


NORMS = ["linf", "l1"] + (["l2"] if _has_scip() else [])


def _affine(w, b):
    lin = nn.Linear(len(w), 1).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([w], dtype=torch.float64))
        lin.bias.fill_(b)
    return lin


@pytest.mark.parametrize("norm,expected", [("linf", 0.25), ("l1", 0.30),
                                           ("l2", math.hypot(0.05, 0.25))])
def test_bounds_closed_form(norm, expected):
    # f = x1 + 0.2 x2 - 1.15 < 0 at x; the box x1 <= 1 binds: optimum (1, 0.75) in all norms
    if norm == "l2" and not _has_scip():
        pytest.skip("pyscipopt not installed")
    model = _affine([1.0, 0.2], -1.15)
    x = torch.tensor([0.95, 0.5], dtype=torch.float64)
    free = min_distance(model, x, norm)
    r = min_distance(model, x, norm, bounds=(0.0, 1.0))
    assert r.status == "optimal"
    assert r.distance == pytest.approx(expected, rel=1e-6)
    assert free.distance < r.distance
    assert torch.all(r.x_adv >= 0) and torch.all(r.x_adv <= 1)
    with torch.no_grad():
        assert float(model(r.x_adv[None])) >= 0


def test_sign_change_only_on_box_corner():
    # f = x1 + x2 - 2 reaches 0 in [0, 1]^2 only at the corner (1, 1): f = 0 there is a sign
    # change (sign 0) that cannot be pushed further
    model = _affine([1.0, 1.0], -2.0)
    x = torch.tensor([0.5, 0.75], dtype=torch.float64)
    r = min_distance(model, x, "linf", bounds=(0.0, 1.0))
    assert r.status == "optimal" and r.verified
    assert r.distance == pytest.approx(0.5) and r.f_adv == 0.0


@pytest.mark.parametrize("norm", NORMS)
def test_bounds_respected_relu(norm):
    model = RandomMLP([5, 8], seed=4, bias_std=0.2)
    x = torch.rand(5, generator=torch.Generator().manual_seed(0))
    lo = torch.zeros(5)
    hi = torch.ones(5)
    free = min_distance(model, x, norm)
    r = min_distance(model, x, norm, bounds=(lo, hi))
    if r.status == "infeasible":
        assert r.x_adv is None and math.isinf(r.distance)
        return
    assert r.status == "optimal"
    assert torch.all(r.x_adv >= lo) and torch.all(r.x_adv <= hi)
    assert r.distance >= free.distance * (1 - 1e-6)
    assert np.sign(r.f_adv) != np.sign(r.f_x)


def test_bounds_without_sign_change_is_infeasible():
    model = _affine([1.0, 1.0], -10.0)  # f < 0 on all of [0, 1]^2
    x = torch.tensor([0.5, 0.5], dtype=torch.float64)
    r = min_distance(model, x, "linf", bounds=(0.0, 1.0))
    assert r.status == "infeasible" and r.x_adv is None
    assert math.isinf(r.distance) and r.lower_bound == math.inf


def test_constant_sign_net_infeasible_within_radius():
    model = _affine([0.0, 0.0], 1.0)
    x = torch.tensor([0.1, 0.2], dtype=torch.float64)
    r = min_distance(model, x, "l1", radius=5.0)
    assert r.status == "infeasible" and r.lower_bound == 5.0 and r.search_radius == 5.0


@pytest.mark.parametrize("norm", NORMS)
def test_tiny_time_limit(norm):
    model = RandomMLP([10, 16, 16], seed=3, bias_std=0.1)
    x = torch.randn(10, generator=torch.Generator().manual_seed(0))
    r = min_distance(model, x, norm, time_limit=1e-3)
    assert r.status == "time_limit"
    assert 0.0 <= r.lower_bound <= r.upper_bound
    if r.x_adv is not None:
        assert r.verified and np.sign(r.f_adv) != np.sign(r.f_x)
        assert r.upper_bound == r.distance


def test_input_on_boundary():
    model = _affine([1.0, -1.0], 0.0)
    x = torch.tensor([0.25, 0.25], dtype=torch.float64)
    r = min_distance(model, x, "linf")
    assert r.distance == 0.0 and r.status == "optimal"


def test_unsupported_layers_and_inputs():
    bad = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    with pytest.raises(InvalidInputError, match="Tanh"):
        min_distance(bad, torch.zeros(3), "linf")
    with pytest.raises(InvalidInputError, match="activation"):
        min_distance(RandomMLP([3, 4], "tanh"), torch.zeros(3), "linf")
    with pytest.raises(InvalidInputError, match="one scalar output"):
        to_affine_layers(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
    with pytest.raises(InvalidInputError, match="final ReLU"):
        to_affine_layers(nn.Sequential(nn.Linear(3, 1), nn.ReLU()))
    with pytest.raises(InvalidInputError, match="input_shape"):
        to_affine_layers(nn.Sequential(nn.Conv2d(1, 1, 2), nn.Flatten(), nn.Linear(4, 1)))
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    with pytest.raises(InvalidInputError, match="NaN"):
        min_distance(model, torch.tensor([0.0, float("nan"), 1.0]), "l1")
    with pytest.raises(InvalidInputError, match="norm"):
        min_distance(model, torch.zeros(3), "l3")
    with pytest.raises(InvalidInputError, match="shape"):
        min_distance(model, torch.zeros(4), "l1")
    with pytest.raises(InvalidInputError, match="outside"):
        min_distance(model, torch.full((3,), 2.0), "l1", bounds=(0.0, 1.0))


def test_conv_model_dense_and_distance():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(18, 1)).double()
    net = AffineNet(to_affine_layers(model, input_shape=(1, 3, 3)))
    xs = torch.randn(5, 1, 3, 3, dtype=torch.float64)
    with torch.no_grad():
        ref = model(xs).reshape(-1).numpy()
    np.testing.assert_allclose(net.forward(xs.reshape(5, -1).numpy()), ref, atol=1e-12)
    x = xs[0]
    r = min_distance(model, x, "linf", input_shape=(1, 3, 3))
    assert r.status == "optimal" and r.x_adv.shape == (1, 3, 3)
    with torch.no_grad():
        assert np.sign(float(model(r.x_adv[None]))) != np.sign(float(model(x[None])))
    assert r.distance == pytest.approx(float((r.x_adv - x).abs().max()), rel=1e-12)


def test_missing_scip_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyscipopt", None)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    with pytest.raises(ScipNotInstalledError, match=r"pip install randadv\[scip\]") as info:
        min_distance(model, torch.ones(3), "l2")
    assert isinstance(info.value, ImportError)


def test_forward_mismatch_is_detected():
    class Shifted(nn.Sequential):
        def forward(self, x):
            return super().forward(x) + 1.0

    model = Shifted(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    with pytest.raises(ModelOutputError, match="extracted"):
        min_distance(model, torch.ones(3), "linf")
