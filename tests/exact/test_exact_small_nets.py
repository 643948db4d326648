"""Exact distances of small ReLU nets against brute force and attacks (the optimum is never above
a found adversarial point), witness checks and the l_inf <= l_2 <= l_1 ordering."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from randadv.exact import AffineNet, closest_in_region, min_distance, to_affine_layers
from randadv.nets import RandomMLP

P = {"l1": 1, "l2": 2, "linf": np.inf}
DUAL = {"l1": np.inf, "l2": 2, "linf": 1}


def _push_allowance(model, r):
    """The verification push past the boundary in l_p: |f| must clear the rounding bound B, which
    to first order moves the point by B / ||grad f||_q (q the dual norm), x1.01 overshoot; x2."""
    net = AffineNet(to_affine_layers(model))
    _, g = net.value_and_grad(r.x_adv.double().reshape(-1).numpy())
    return 2.0 * r.rounding_bound / np.linalg.norm(g, DUAL[r.norm])


def _has_scip():
    try:
        import pyscipopt  # noqa: F401
    except ImportError:
        return False
    return True


NORMS = ["linf", "l1"] + (["l2"] if _has_scip() else [])
needs_scip = pytest.mark.skipif(not _has_scip(), reason="pyscipopt not installed (randadv[scip])")


def _seq(widths, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    mods = []
    for i in range(len(widths) - 1):
        lin = nn.Linear(widths[i], widths[i + 1]).to(dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=g) / math.sqrt(widths[i]))
            lin.bias.copy_(0.3 * torch.randn(lin.bias.shape, generator=g))
        mods += [lin, nn.ReLU()]
    mods.append(nn.Linear(widths[-1], 1).to(dtype))
    with torch.no_grad():
        mods[-1].weight.copy_(torch.randn(1, widths[-1], generator=g) / math.sqrt(widths[-1]))
        mods[-1].bias.zero_()
    return nn.Sequential(*mods)


def _f(model, pts):
    with torch.no_grad():
        return model(torch.as_tensor(pts, dtype=torch.float64)).reshape(-1).numpy()


def _check_witness(model, x, r, norm):
    assert r.verified and r.x_adv is not None
    assert r.x_adv.shape == x.shape and r.x_adv.dtype == x.dtype
    fx = _f64(model)(x.double().numpy()[None])[0]
    fa = _f64(model)(r.x_adv.double().numpy()[None])[0]
    assert fa == r.f_adv
    assert np.sign(fa) != np.sign(fx)
    d = float(np.linalg.norm((r.x_adv.double() - x.double()).numpy().ravel(), P[norm]))
    assert d == pytest.approx(r.distance, rel=1e-12, abs=1e-15)
    assert r.lower_bound <= r.distance + 1e-12
    assert r.upper_bound == pytest.approx(r.distance)


# --------------------------------------------------------------------- 2-D brute force
@pytest.fixture(scope="module")
def net2d():
    model = _seq([2, 8, 8], seed=8)
    return model


@pytest.fixture(scope="module")
def grid2d(net2d):
    h = 6.0 / 600
    t = np.arange(-3.0, 3.0 + h / 2, h)
    gx, gy = np.meshgrid(t, t, indexing="ij")
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1)
    return pts, _f(net2d, pts), h


@pytest.mark.parametrize("norm", NORMS)
def test_2d_against_grid(net2d, grid2d, norm):
    pts, fg, h = grid2d
    x = torch.tensor([0.3, -0.2], dtype=torch.float64)
    fx = float(_f(net2d, x[None])[0])
    r = min_distance(net2d, x, norm)
    assert r.status == "optimal"
    _check_witness(net2d, x, r, norm)
    adv = pts[np.sign(fg) != np.sign(fx)]
    grid_best = np.linalg.norm(adv - x.numpy(), P[norm], axis=1).min()
    assert r.distance <= grid_best + 1e-9  # never above any grid adversarial point
    assert grid_best <= r.distance + 2 * h  # and the grid gets close to it


@needs_scip
def test_2d_l2_against_polar_scan(net2d):
    x = np.array([0.3, -0.2])
    fx = _f(net2d, x[None])[0]
    th = np.linspace(0, 2 * np.pi, 2000, endpoint=False)
    u = np.stack([np.cos(th), np.sin(th)], axis=1)
    ts = np.linspace(0, 3, 1501)[1:]
    f = _f(net2d, (x[None, None, :] + ts[None, :, None] * u[:, None, :]).reshape(-1, 2))
    f = f.reshape(len(th), len(ts))
    cross = np.sign(f) != np.sign(fx)
    first = np.where(cross.any(axis=1), ts[np.argmax(cross, axis=1)], np.inf)
    r = min_distance(net2d, torch.tensor(x), "l2")
    assert r.distance <= first.min() + 1e-9
    assert first.min() <= r.distance * (1 + 2 * np.pi / 2000) + (ts[1] - ts[0])


# --------------------------------------------------------------------- random nets
def _random_search(model, x, norm, n_dir=64, t_max=6.0, seed=0):
    """Distances of adversarial points found by random directions + line search."""
    f64 = _f64(model)
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((n_dir, x.numel()))
    if norm == "linf":
        u = np.sign(u)
    u /= np.linalg.norm(u, P[norm], axis=1, keepdims=True)
    xs = x.double().numpy()
    sx = np.sign(f64(xs[None])[0])
    ts = np.linspace(0, t_max, 301)[1:]
    f = f64((xs[None, None] + ts[None, :, None] * u[:, None]).reshape(-1, len(xs)))
    hit = (np.sign(f.reshape(n_dir, len(ts))) != sx)
    keep = hit.any(axis=1)
    idx = np.argmax(hit, axis=1)[keep]
    u = u[keep]
    a = np.where(idx > 0, ts[np.maximum(idx - 1, 0)], 0.0)
    b = ts[idx]
    for _ in range(50):  # vectorised bisection on [a, b]
        m = 0.5 * (a + b)
        adv = np.sign(f64(xs[None] + m[:, None] * u)) != sx
        a, b = np.where(adv, a, m), np.where(adv, m, b)
    return b  # unit l_p directions: the distances


def _f64(model):
    """A float64 forward function of the model (a copy)."""
    import copy

    m = copy.deepcopy(model).double()
    if isinstance(model, RandomMLP):
        m.dtype = torch.float64
        for layer in m.layers:
            layer.dtype = torch.float64

    def f(pts):
        with torch.no_grad():
            return m(torch.as_tensor(pts, dtype=torch.float64)).reshape(-1).numpy()

    return f


CASES = [
    ("mlp", lambda: RandomMLP([5, 8], seed=1, bias_std=0.1), 5, 1),
    ("mlp2", lambda: RandomMLP([6, 10, 10], seed=2, bias_std=0.2), 6, 2),
    ("seq", lambda: _seq([7, 10, 8], seed=3), 7, 3),
]


@pytest.mark.parametrize("name,make,d,seed", CASES, ids=[c[0] for c in CASES])
def test_random_nets_all_norms(name, make, d, seed):
    model = make()
    dtype = torch.float64 if isinstance(model, nn.Sequential) else torch.float32
    x = torch.randn(d, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    dist = {}
    for norm in NORMS:
        r = min_distance(model, x, norm, time_limit=60)
        assert r.status == "optimal", (norm, r)
        assert r.verified
        fx = _f64(model)(x.double().numpy()[None])[0]
        fa = _f64(model)(r.x_adv.double().numpy()[None])[0]
        assert np.sign(fa) != np.sign(fx)
        assert fa == pytest.approx(r.f_adv, abs=1e-12)
        d_w = float(np.linalg.norm((r.x_adv.double() - x.double()).numpy(), P[norm]))
        assert d_w == pytest.approx(r.distance, rel=1e-12)
        push = _push_allowance(model, r)
        assert r.lower_bound <= r.distance <= r.lower_bound * (1 + 1e-5) + push
        found = _random_search(model, x, norm, seed=seed)
        assert len(found) > 0
        assert r.distance <= found.min() * (1 + 1e-7) + push
        dist[norm] = r.distance
    tol = 1e-5
    if "l2" in dist:
        assert dist["linf"] <= dist["l2"] * (1 + tol) and dist["l2"] <= dist["l1"] * (1 + tol)
    assert dist["linf"] <= dist["l1"] * (1 + tol)


def test_batched_rows_match_single():
    model = RandomMLP([5, 8], seed=7, bias_std=0.1)
    xs = torch.randn(3, 5, generator=torch.Generator().manual_seed(1))
    res = min_distance(model, xs, "linf")
    assert len(res) == 3
    for i, r in enumerate(res):
        single = min_distance(model, xs[i], "linf")
        assert r.distance == pytest.approx(single.distance, rel=1e-6)
        assert r.x_adv.shape == (5,)


def test_closest_in_region_relu():
    model = _seq([4, 6], seed=9)
    net = AffineNet(to_affine_layers(model))
    x = torch.randn(4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for norm in ["l1", "linf"] + (["l2"] if _has_scip() else []):
        res = closest_in_region(model, x, x, norm)
        exact = min_distance(model, x, norm)
        if res.point is None:
            continue  # f = 0 not reachable in this region
        assert res.exact
        assert float(_f(model, res.point[None])[0]) == pytest.approx(0.0, abs=1e-8)
        z_x = net.preactivations(x.numpy()[None])[0][0]
        z_p = net.preactivations(res.point.numpy()[None])[0][0]
        assert np.all((z_p * np.sign(z_x)) >= -1e-8)  # same region (closure)
        assert res.distance >= exact.distance * (1 - 1e-6)
