"""Exact distances of affine models against the closed form |f(x)| / ||w||_q (q the dual norm)."""

import numpy as np
import pytest
import torch
from torch import nn

from randadv.exact import AffineNet, closest_in_region, min_distance, to_affine_layers

DUAL = {"l1": np.inf, "l2": 2, "linf": 1}


def _norms():
    out = ["l1", "linf"]
    try:
        import pyscipopt  # noqa: F401

        out.append("l2")
    except ImportError:
        out.append(pytest.param("l2", marks=pytest.mark.skip(reason="pyscipopt not installed")))
    return out


def _linear_models():
    g = torch.Generator().manual_seed(3)
    one = nn.Linear(6, 1).double()
    seq = nn.Sequential(nn.Linear(6, 4), nn.Identity(), nn.Linear(4, 3), nn.Linear(3, 1)).double()
    for m in (one, seq):
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    return {"linear": one, "sequential": seq}


def _effective(model):
    (w, b), = to_affine_layers(model)
    return w[0], b[0]


@pytest.mark.parametrize("norm", _norms())
@pytest.mark.parametrize("kind", ["linear", "sequential"])
def test_closed_form(kind, norm):
    model = _linear_models()[kind]
    w, b = _effective(model)
    x = torch.randn(6, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    fx = float(w @ x.numpy() + b)
    expected = abs(fx) / np.linalg.norm(w, DUAL[norm])
    r = min_distance(model, x, norm)
    assert r.status == "optimal"
    assert r.distance == pytest.approx(expected, rel=1e-6)
    assert r.lower_bound <= r.distance <= r.upper_bound
    assert r.lower_bound == pytest.approx(expected, rel=1e-6)
    with torch.no_grad():
        f_adv = float(model(r.x_adv[None]))
    assert np.sign(f_adv) != np.sign(fx)
    assert r.x_adv.dtype == x.dtype and r.x_adv.shape == x.shape
    p = {"l1": 1, "l2": 2, "linf": np.inf}[norm]
    assert float(np.linalg.norm((r.x_adv - x).numpy(), p)) == pytest.approx(r.distance, rel=1e-12)


def test_affine_composition_matches_forward():
    model = _linear_models()["sequential"]
    net = AffineNet(to_affine_layers(model))
    xs = torch.randn(9, 6, dtype=torch.float64)
    with torch.no_grad():
        ref = model(xs).reshape(-1).numpy()
    np.testing.assert_allclose(net.forward(xs.numpy()), ref, rtol=1e-12, atol=1e-12)


def test_negative_side_and_batch():
    model = _linear_models()["linear"]
    w, b = _effective(model)
    xs = torch.randn(4, 6, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    res = min_distance(model, xs, "linf")
    assert isinstance(res, list) and len(res) == 4
    fx = xs.numpy() @ w + b
    assert (fx > 0).any() and (fx < 0).any()
    for r, f in zip(res, fx, strict=True):
        assert r.distance == pytest.approx(abs(f) / np.abs(w).sum(), rel=1e-6)
        assert np.sign(r.f_adv) == -np.sign(f)


@pytest.mark.parametrize("norm", ["l1", "linf", "l2"])
def test_closest_in_region_linear_is_closed_form(norm):
    model = _linear_models()["linear"]
    w, b = _effective(model)
    x = torch.randn(6, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    res = closest_in_region(model, x, x, norm)
    assert res.exact and res.status == "optimal"
    expected = abs(float(w @ x.numpy() + b)) / np.linalg.norm(w, DUAL[norm])
    assert res.distance == pytest.approx(expected, rel=1e-7)
    assert float(w @ res.point.numpy() + b) == pytest.approx(0.0, abs=1e-9)


def _touching(w, c):
    """f(x) = |w . x - c| (two ReLUs): f >= 0 everywhere, the boundary f = 0 is the hyperplane
    w . x = c, touched but never crossed."""
    net = nn.Sequential(nn.Linear(len(w), 2), nn.ReLU(), nn.Linear(2, 1)).double()
    with torch.no_grad():
        wt = torch.tensor(w, dtype=torch.float64)
        net[0].weight.copy_(torch.stack([wt, -wt]))
        net[0].bias.copy_(torch.tensor([-c, c], dtype=torch.float64))
        net[2].weight.fill_(1.0)
        net[2].bias.zero_()
    return net


@pytest.mark.parametrize("norm", _norms())
def test_touched_boundary_gives_a_weak_witness_on_it(norm):
    """Where no point is strictly across (f >= 0), min ||x' - x|| s.t. f(x') <= 0 is the distance
    to the touched hyperplane, c / ||w||_q; the witness is on it up to the forward pass's
    rounding (the solver's own point is off by its tolerance, ~1e-10, and used to be refused)."""
    rng = np.random.default_rng(0)
    x = torch.zeros(1, 3, dtype=torch.float64)
    for _ in range(8):
        w = rng.uniform(0.1, 1.0, 3).round(6)
        c = round(float(rng.uniform(0.1, 1.0)), 6)
        r = min_distance(_touching(w.tolist(), c), x, norm, bounds=(-10.0, 10.0),
                         time_limit=20)[0]
        assert r.status == "optimal" and r.verified
        exact = c / np.linalg.norm(w, DUAL[norm])
        # l2: the region f = 0 is the hyperplane itself, solved as a QP by SCIP, whose
        # feasibility tolerance 1e-6 on w . x = c moves the point by up to 1e-6 / ||w||_2
        tol = 2e-6 / np.linalg.norm(w) if norm == "l2" else 1e-9 * exact
        assert abs(r.distance - exact) <= tol
        # on the boundary up to rounding: within 32 eps (|f| + sum |x_i w_i|) at the witness
        p = r.x_adv.reshape(-1).numpy()
        bound = 32 * np.finfo(np.float64).eps * (abs(r.f_adv) + np.abs(p * w).sum())
        assert abs(r.f_adv) <= bound and r.rounding_bound == pytest.approx(bound)
        assert r.method == ("miqcp" if norm == "l2" else "milp")
