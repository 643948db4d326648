"""The smallest single gradient step that flips the sign (Bubeck et al. 2021, Section 4).

``smallest_flip_step(model, x)`` returns eta with sign(eta) = -sign f(x), the smallest |eta| at
which f(x + eta grad f(x)) reaches 0 (``eta_boundary``), and a verified step just past it.
Every check here recomputes f and grad f itself (autograd / numpy), independently of the
library's explicit backpropagation and kink sweeps.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy.optimize import brentq
from torch import nn

from randadv.attacks import smallest_flip_step
from randadv.attacks.result import FlipStepResult
from randadv.attacks.verify import push_margins
from randadv.errors import InvalidInputError, ModelOutputError
from randadv.nets import Activation, RandomMLP, TwoLayerRandomNet, derive_seed, sphere_points
from randadv.theory.gaussian import single_step_prediction

D = 30
N_SE = 4.0


# ---------------------------------------------------------------- helpers (independent of the code)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _init_(module: nn.Module, seed: int, bias_std: float = 0.1) -> nn.Module:
    """Gaussian fan-in weights N(0, 1/fan_in) and N(0, bias_std^2) biases from a private
    generator (the global RNG is not touched); float64."""
    g = _gen(seed)
    module.double()
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g, dtype=torch.float64)
                               / math.sqrt(fan_in))
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g, dtype=torch.float64)
                                 * bias_std)
    return module


def _seq_relu(seed=0, hidden=(64, 64), act=nn.ReLU, flatten=False):
    mods, prev = ([nn.Flatten()] if flatten else []), D
    for h in hidden:
        mods += [nn.Linear(prev, h), act()]
        prev = h
    mods.append(nn.Linear(prev, 1))
    return _init_(nn.Sequential(*mods), seed)


def _points(n, tag, d=D, dtype=torch.float64):
    return sphere_points(n, d, math.sqrt(d), "test_single_step", tag, dtype=dtype)


def _f(model, x):
    with torch.no_grad():
        return model(x).reshape(-1)


def _f_and_grad(model, x):
    xx = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        f = model(xx).reshape(-1)
        (g,) = torch.autograd.grad(f.sum(), xx)
    return f.detach(), g


def _along(model, x, u, ts):
    """f(x_i + ts[i, j] u_i) for x, u of shape (B, ...), ts (B, n) -> (B, n)."""
    b, n = ts.shape
    view = (b, n) + (1,) * (x.dim() - 1)
    pts = x.unsqueeze(1) + ts.view(view) * u.unsqueeze(1)
    return _f(model, pts.reshape(b * n, *x.shape[1:])).view(b, n)


def _direction(model, x):
    f, g = _f_and_grad(model, x)
    s = torch.sign(f)
    return f, g, -s.view(-1, *([1] * (x.dim() - 1))) * g


# ---------------------------------------------------------------- exactness, piecewise linear

LEAKY_QUARTER = Activation("leaky_relu(0.25)", lambda z: torch.where(z > 0, z, 0.25 * z),
                           lambda z: torch.where(z > 0, 1.0, 0.25).to(z.dtype),
                           piecewise_linear=True, slope_neg=0.25)

PL_MODELS = {
    "relu-L1": lambda: RandomMLP([D, 200], "relu", seed=1, dtype=torch.float64),
    "relu-L1-bias": lambda: RandomMLP([D, 200], "relu", seed=2, bias_std=0.5,
                                      dtype=torch.float64),
    "relu-L1-streamed": lambda: RandomMLP([D, 600], "relu", seed=3, dtype=torch.float64,
                                          max_weight_bytes=0, block_rows=256),
    "relu-L2": lambda: RandomMLP([D, 100, 100], "relu", seed=4, dtype=torch.float64),
    "relu-L3-bias-gain": lambda: RandomMLP([D, 80, 80, 80], "relu", seed=5, bias_std=0.5,
                                           hidden_gain=2.0, dtype=torch.float64),
    # a negative slope exactly representable in float32 (see the xfail cases below)
    "leaky0.25-L1": lambda: RandomMLP([D, 200], LEAKY_QUARTER, seed=6, dtype=torch.float64),
    "leaky0.25-L2-bias": lambda: RandomMLP([D, 100, 100], LEAKY_QUARTER, seed=7, bias_std=0.5,
                                           dtype=torch.float64),
    "seq-relu-L2": lambda: _seq_relu(8),
    "seq-relu-L1": lambda: _seq_relu(9, hidden=(128,)),
    "seq-leaky0.25-flatten": lambda: _seq_relu(10, act=lambda: nn.LeakyReLU(0.25), flatten=True),
    "leaky-L1": lambda: RandomMLP([D, 200], "leaky_relu", seed=6, dtype=torch.float64),
    "leaky-L2-bias": lambda: RandomMLP([D, 100, 100], "leaky_relu", seed=7, bias_std=0.5,
                                       dtype=torch.float64),
    "seq-leaky0.1-flatten": lambda: _seq_relu(10, act=lambda: nn.LeakyReLU(0.1), flatten=True),
}

# leaky slopes such as 0.01 or 0.1 are not float32-representable: they must stay float64
PL_NAMES = list(PL_MODELS)


@pytest.mark.parametrize("name", PL_NAMES)
def test_exact_smallest_step_piecewise_linear(name):
    model = PL_MODELS[name]()
    b = 8
    x = _points(b, name)
    if "flatten" in name:
        x = x.view(b, 5, 6)
    r = smallest_flip_step(model, x)
    f0, g, u = _direction(model, x)
    torch.testing.assert_close(r.f_x, f0, rtol=1e-12, atol=1e-14)
    fl = r.flipped
    assert int(fl.sum()) >= b // 2, "test needs flipped rows to be meaningful"
    assert torch.isfinite(r.eta_boundary[fl]).all()
    t_star = r.eta_boundary[fl].abs()
    assert (t_star <= 20.0).all()
    # sign(eta) = -sign f(x)
    assert torch.equal(torch.sign(r.eta[fl]), -torch.sign(f0[fl]))
    assert torch.equal(torch.sign(r.eta_boundary[fl]), -torch.sign(f0[fl]))
    # no sign change on [0, t*(1 - 1e-9)]
    ts = t_star[:, None] * torch.linspace(0, 1 - 1e-9, 4000, dtype=torch.float64)[None]
    vals = _along(model, x[fl], u[fl], ts)
    assert (torch.sign(f0[fl])[:, None] * vals > 0).all()
    # f(x + t* u) = 0 to float rounding
    at = _along(model, x[fl], u[fl], t_star[:, None])[:, 0]
    assert (at.abs() < 1e-9 * f0[fl].abs()).all(), (at / f0[fl]).abs().max()
    # x_adv = x + eta grad f(x) is on the other side
    view = (-1,) + (1,) * (x.dim() - 1)
    x_adv = x[fl] + r.eta[fl].view(view) * g[fl]
    assert (torch.sign(_f(model, x_adv)) == -torch.sign(f0[fl])).all()
    torch.testing.assert_close(r.x_adv[fl], x_adv, rtol=1e-12, atol=1e-12)
    # |eta_boundary| <= |eta| <= |eta_boundary| (1 + 1e-3)
    eta = r.eta[fl].abs()
    assert (eta >= t_star).all() and (eta <= t_star * (1 + 1e-3)).all()


def _brute_force_first_root(w, bias, a, slope_neg, x, max_eta):
    """First t in (0, max_eta] with f(x + t u) = 0, u = -sign f(x) grad f(x), for
    f(x) = a . phi(W x + b), by enumerating every kink of the ray. Returns (t, sign f(x))."""

    def phi(z):
        return np.where(z > 0, z, slope_neg * z)

    z = w @ x + bias
    dphi = np.where(z > 0, 1.0, slope_neg)
    f0 = a @ phi(z)
    s = -np.sign(f0)
    c = w @ (s * (w.T @ (a * dphi)))
    with np.errstate(divide="ignore", invalid="ignore"):
        kinks = -z / c
    kinks = np.sort(kinks[(kinks > 0) & (kinks <= max_eta)])
    ts = np.concatenate([[0.0], kinks, [max_eta]])
    vals = phi(z[None, :] + ts[:, None] * c[None, :]) @ a  # exact f at every kink
    change = np.nonzero(np.sign(vals) != np.sign(f0))[0]
    if change.size == 0:
        return math.nan, s
    j = change[0]
    t0, t1, v0, v1 = ts[j - 1], ts[j], vals[j - 1], vals[j]
    return t0 + v0 / (v0 - v1) * (t1 - t0), s  # f is affine on [t0, t1]


@pytest.mark.parametrize("act, slope_neg, bias_std", [
    ("relu", 0.0, 0.0), ("relu", 0.0, 0.5), (LEAKY_QUARTER, 0.25, 0.5),
    ("leaky_relu", 0.01, 0.5),
])
def test_one_hidden_layer_matches_brute_force_kink_enumeration(act, slope_neg, bias_std):
    d, k, n, max_eta = 30, 200, 50, 20.0
    net = RandomMLP([d, k], act, seed=11, bias_std=bias_std, dtype=torch.float64)
    x = _points(n, f"brute-{slope_neg}-{bias_std}", d=d)
    r = smallest_flip_step(net, x, max_eta)
    w = net.layers[0].full().numpy()
    bias = net.bias(0).numpy()
    a = net.out_weight.numpy()
    n_found = 0
    for i in range(n):
        root, s = _brute_force_first_root(w, bias, a, slope_neg, x[i].numpy(), max_eta)
        got = float(r.eta_boundary[i])
        if math.isnan(root):
            assert math.isnan(got)
            continue
        n_found += 1
        assert got == pytest.approx(s * root, rel=1e-10, abs=0)
    assert n_found >= n // 2
    # the same through the generic (Sequential) reading of the same network
    seq = nn.Sequential(nn.Linear(d, k), nn.LeakyReLU(slope_neg) if slope_neg else nn.ReLU(),
                        nn.Linear(k, 1, bias=False)).double()
    with torch.no_grad():
        seq[0].weight.copy_(net.layers[0].full())
        seq[0].bias.copy_(net.bias(0))
        seq[2].weight.copy_(net.out_weight[None])
    r2 = smallest_flip_step(seq, x, max_eta)
    torch.testing.assert_close(r2.eta_boundary, r.eta_boundary, rtol=1e-10, atol=0,
                               equal_nan=True)


@pytest.mark.parametrize("model_name", ["relu-L1", "relu-L1-bias", "relu-L2", "leaky0.25-L2-bias",
                                        "leaky-L2-bias", "seq-relu-L2"])
def test_generic_path_agrees_with_exact_path(model_name):
    model = PL_MODELS[model_name]()
    x = _points(8, f"generic-{model_name}")
    exact = smallest_flip_step(model, x, exact=None)
    generic = smallest_flip_step(model, x, exact=False)
    assert exact.flipped.sum() >= 4
    torch.testing.assert_close(generic.eta_boundary, exact.eta_boundary, rtol=1e-6, atol=0,
                               equal_nan=True)
    assert torch.equal(generic.flipped, exact.flipped)
    forced = smallest_flip_step(model, x, exact=True)
    torch.testing.assert_close(forced.eta_boundary, exact.eta_boundary, rtol=1e-12, atol=0,
                               equal_nan=True)


# ---------------------------------------------------------------- layer sweep = region walk

SWEEP_MODELS = {
    "relu-L2": PL_MODELS["relu-L2"],
    "relu-L3-bias-gain": PL_MODELS["relu-L3-bias-gain"],
    "leaky0.25-L2-bias": PL_MODELS["leaky0.25-L2-bias"],
    "seq-relu-L2": PL_MODELS["seq-relu-L2"],
    "relu-L12-gain": lambda: RandomMLP([D] + [24] * 12, "relu", seed=21, hidden_gain=2.0,
                                       output="gaussian", dtype=torch.float64),
    "leaky0.25-L5-bias-gain": lambda: RandomMLP([D] + [24] * 5, LEAKY_QUARTER, seed=23,
                                                bias_std=0.1, hidden_gain=2.0,
                                                output="gaussian", dtype=torch.float64),
    # layers widening > 4x: new breakpoints interpolated in the layer's input
    "relu-widening-bias": lambda: RandomMLP([D, 6, 64, 6, 64], "relu", seed=33, bias_std=0.1,
                                            output="gaussian", dtype=torch.float64),
}


def _sweep_case(name, tag, n):
    """A model, n inputs and the gradient directions scaled to ||u|| = ||x|| = sqrt(D), so
    that t is the relative perturbation."""
    model = SWEEP_MODELS[name]()
    x = _points(n, f"{tag}-{name}")
    f0, _, u = _direction(model, x)
    return model, x, f0, u / u.norm(dim=1, keepdim=True) * math.sqrt(D)


@pytest.mark.parametrize("name", list(SWEEP_MODELS))
def test_layer_sweep_equals_region_walk(name):
    """The default layer sweep and the region walk enumerate the same regions: same first
    roots (float64 rounding), same rows without one, with one search bound per row; a tiny
    ``max_bytes`` forces the sweep to halve its windows (same roots again)."""
    from randadv.attacks.piecewise_linear import first_root_on_ray
    from randadv.protocol.piecewise import as_piecewise_linear

    n = 12
    model, x, _, u = _sweep_case(name, "sweep", n)
    stack = as_piecewise_linear(model)
    t_max = torch.logspace(-2, 0.5, n, dtype=torch.float64)
    walk = first_root_on_ray(stack, x, u, t_max, method="walk")
    found = ~torch.isnan(walk)
    assert 2 <= int(found.sum()) <= n - 2, "test needs rows with and without a root"
    assert (walk[found] <= t_max[found]).all()
    for max_bytes in (256 * 1024**2, 2048):
        sweep = first_root_on_ray(stack, x, u, t_max, max_bytes=max_bytes)
        torch.testing.assert_close(sweep, walk, rtol=1e-10, atol=0, equal_nan=True)
    # one scalar bound gives the same roots as that bound repeated per row
    torch.testing.assert_close(first_root_on_ray(stack, x, u, 1.0),
                               first_root_on_ray(stack, x, u, torch.full((n,), 1.0)),
                               rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("name", ["relu-L12-gain", "leaky0.25-L5-bias-gain"])
def test_layer_sweep_first_root_dense_check(name):
    """Independently of both enumerations, from forward passes of the model on a dense grid
    of each ray (50000 steps): f keeps the sign of f(x) up to the returned root, is 0 there,
    and rows without a root keep it over the whole of [0, t_max]."""
    from randadv.attacks.piecewise_linear import first_root_on_ray
    from randadv.protocol.piecewise import as_piecewise_linear

    n, t_max, m = 8, 3.0, 50_000
    model, x, f0, u = _sweep_case(name, "dense", n)
    root = first_root_on_ray(as_piecewise_linear(model), x, u, t_max)
    assert 1 <= int((~torch.isnan(root)).sum()) <= n - 1
    for i in range(n):
        end = float(root[i]) * (1 - 1e-9) if not math.isnan(root[i]) else t_max
        ts = torch.linspace(0, end, m, dtype=torch.float64)
        vals = _f(model, x[i] + ts[:, None] * u[i])
        assert (torch.sign(f0[i]) * vals > 0).all(), i
        if not math.isnan(root[i]):
            at = _f(model, (x[i] + root[i] * u[i])[None])[0]
            assert abs(float(at)) < 1e-9 * abs(float(f0[i]))


def test_first_root_on_ray_unknown_method():
    from randadv.attacks.piecewise_linear import first_root_on_ray
    from randadv.protocol.piecewise import as_piecewise_linear

    model = PL_MODELS["relu-L2"]()
    x = _points(2, "method")
    with pytest.raises(ValueError, match="method"):
        first_root_on_ray(as_piecewise_linear(model), x, x, 1.0, method="grid")


def test_exact_true_needs_a_piecewise_linear_model():
    net = RandomMLP([D, 20], "tanh", seed=0, dtype=torch.float64)
    with pytest.raises(InvalidInputError, match="piecewise-linear"):
        smallest_flip_step(net, _points(2, "exact-true"), exact=True)


# ---------------------------------------------------------------- smooth activations


@pytest.mark.parametrize("act, depth", [("tanh", 1), ("softplus", 1), ("gelu", 1), ("gelu", 2)])
def test_smooth_activation_first_root(act, depth):
    b, max_eta = 6, 20.0
    net = RandomMLP([D] + [200] * depth, act, seed=12, dtype=torch.float64)
    x = _points(b, f"smooth-{act}-{depth}")
    r = smallest_flip_step(net, x, max_eta)
    f0, g, u = _direction(net, x)
    assert r.flipped.all()
    t_lib = r.eta_boundary.abs()
    # a fine scan of our own up to just past the library's root
    n = 4000
    ts = t_lib[:, None] * torch.linspace(0, 1.02, n + 1, dtype=torch.float64)[None]
    vals = _along(net, x, u, ts)
    s0 = torch.sign(f0)
    for i in range(b):
        changed = torch.nonzero(s0[i] * vals[i] <= 0).flatten()
        assert changed.numel() > 0
        j = int(changed[0])
        # the first sign change is the library's root (no earlier one)
        assert ts[i, j] >= t_lib[i] * (1 - 1e-6)

        def h(t, i=i):
            return float(_f(net, (x[i] + t * u[i])[None])[0])

        root = brentq(h, float(ts[i, j - 1]), float(ts[i, j]), xtol=1e-15, rtol=1e-15)
        assert float(t_lib[i]) == pytest.approx(root, rel=1e-6, abs=0)
        # the step's stopping rules bound |f| at the boundary by 1e-6 of |f| on the way
        at = h(float(t_lib[i]))
        assert abs(at) <= 1e-6 * float(vals[i, :j].abs().max())
    assert (torch.sign(_f(net, r.x_adv)) == -s0).all()


# ---------------------------------------------------------------- result fields


def _conv_model(seed=13):
    return _init_(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(),
                                nn.Linear(4 * 6 * 6, 1)), seed)


FIELD_MODELS = {
    "two-layer-f32": (lambda: TwoLayerRandomNet(D, 200, seed=14), (D,)),
    "tanh-L2-f64": (lambda: RandomMLP([D, 50, 50], "tanh", seed=15, dtype=torch.float64), (D,)),
    "seq-relu": (lambda: _seq_relu(16), (D,)),
    "conv": (_conv_model, (1, 8, 8)),
}


@pytest.mark.parametrize("name", list(FIELD_MODELS))
def test_result_fields_consistent_with_forward_pass(name):
    make, shape = FIELD_MODELS[name]
    model = make()
    b = 12
    dtype = torch.float32 if name.endswith("f32") else torch.float64
    x = torch.randn(b, *shape, generator=_gen(17), dtype=torch.float64).to(dtype)
    full = smallest_flip_step(model, x)
    finite = full.eta_boundary[torch.isfinite(full.eta_boundary)].abs()
    assert finite.numel() >= 4
    max_eta = float(finite.median())  # about half of the rows flip within this bound
    r = smallest_flip_step(model, x, max_eta)
    assert isinstance(r, FlipStepResult) and len(r) == b
    assert 0 < int(r.flipped.sum()) < b, "test needs flipped and unflipped rows"
    f0, g = _f_and_grad(model, x)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(r.f_x, f0, **tol)
    torch.testing.assert_close(r.grad_norm, g.reshape(b, -1).norm(dim=1), **tol)
    f_adv = _f(model, r.x_adv)
    torch.testing.assert_close(r.f_adv, f_adv, **tol)
    assert torch.equal(r.flipped, torch.sign(f_adv) != torch.sign(f0))
    fl = r.flipped
    assert (r.eta_boundary[fl].abs() <= max_eta).all()
    torch.testing.assert_close(r.perturbation_norm[fl], r.eta[fl].abs() * r.grad_norm[fl],
                               **tol)
    x_adv = x[fl] + r.eta[fl].view(-1, *([1] * len(shape))) * g[fl]
    torch.testing.assert_close(r.x_adv[fl], x_adv, **tol)
    torch.testing.assert_close((r.x_adv - x)[fl].reshape(int(fl.sum()), -1).norm(dim=1),
                               r.perturbation_norm[fl], **tol)
    nf = ~fl
    assert torch.isnan(r.eta[nf]).all() and torch.isnan(r.perturbation_norm[nf]).all()
    assert torch.equal(r.x_adv[nf], x[nf])
    assert torch.isfinite(r.eta[fl]).all()
    assert 0.0 < r.flip_rate < 1.0
    assert "FlipStepResult(n=12" in repr(r)


@pytest.mark.parametrize("name", ["relu-L1", "relu-L2", "seq-relu-L2"])
def test_tiny_max_eta_flips_nothing(name):
    model = PL_MODELS[name]()
    x = _points(8, f"tiny-{name}")
    f0, g = _f_and_grad(model, x)
    # the first-order change 1e-6 ||g||^2 is far below |f(x)|: no flip is possible
    assert (f0.abs() > 1e3 * 1e-6 * (g ** 2).sum(1)).all()
    r = smallest_flip_step(model, x, max_eta=1e-6)
    assert not r.flipped.any()
    assert torch.isnan(r.eta).all() and torch.isnan(r.eta_boundary).all()
    assert torch.equal(r.x_adv, x)
    r2 = smallest_flip_step(model, x, max_eta=1e-6, exact=False)
    assert not r2.flipped.any() and torch.isnan(r2.eta).all()


def test_conv_model_generic_path():
    model = _conv_model()
    b = 8
    x = torch.randn(b, 1, 8, 8, generator=_gen(18), dtype=torch.float64)
    r = smallest_flip_step(model, x)
    f0, g, u = _direction(model, x)
    fl = r.flipped
    assert int(fl.sum()) >= b // 2
    assert (torch.sign(_f(model, r.x_adv[fl])) == -torch.sign(f0[fl])).all()
    t_star = r.eta_boundary[fl].abs()
    ts = t_star[:, None] * torch.linspace(0, 1 - 1e-6, 2000, dtype=torch.float64)[None]
    vals = _along(model, x[fl], u[fl], ts)
    assert (torch.sign(f0[fl])[:, None] * vals > 0).all()
    at = _along(model, x[fl], u[fl], t_star[:, None])[:, 0]
    assert (at.abs() <= 1e-6 * vals.abs().amax(1)).all()
    with pytest.raises(InvalidInputError, match="piecewise-linear"):
        smallest_flip_step(model, x, exact=True)


def test_float64_results_stay_float64():
    model = _init_(nn.Sequential(nn.Linear(D, 32), nn.Tanh(), nn.Linear(32, 1)), 19)
    x = _points(6, "dtype")
    r = smallest_flip_step(model, x)
    assert r.flipped.any()
    for name, v in vars(r).items():
        if name == "method":
            continue
        assert v.dtype == (torch.bool if name == "flipped" else torch.float64), name
    net = RandomMLP([D, 40], "relu", seed=20, dtype=torch.float64)
    r = smallest_flip_step(net, x.float())  # a float32 input to a float64 net
    for name, v in vars(r).items():
        if name == "method":
            continue
        assert v.dtype == (torch.bool if name == "flipped" else torch.float64), name


def test_float32_model_results_float32_and_verified():
    net = TwoLayerRandomNet(D, 300, seed=21)
    x = _points(16, "f32", dtype=torch.float32)
    r = smallest_flip_step(net, x)
    for name, v in vars(r).items():
        if name == "method":
            continue
        assert v.dtype == (torch.bool if name == "flipped" else torch.float32), name
    assert r.flipped.all()
    assert (torch.sign(net(r.x_adv)) == -torch.sign(net(x))).all()
    assert (r.eta.abs() >= r.eta_boundary.abs()).all()
    # pushed past the boundary by at most the last rung of the documented ladder
    top = push_margins(r.f_x, r.rounding_bound)[:, -1]
    assert (r.eta.abs() <= r.eta_boundary.abs() * (1 + top)).all()
    assert (r.f_adv.abs() > r.rounding_bound).all()


# ---------------------------------------------------------------- edge cases


def test_zero_input_zero_output_warns():
    net = RandomMLP([D, 50], "relu", seed=22, dtype=torch.float64)
    x = _points(3, "zero-row")
    x[1] = 0.0  # f(0) = 0 for a bias-free net
    with pytest.warns(RuntimeWarning, match="1 of 3"):
        r = smallest_flip_step(net, x)
    assert float(r.f_x[1]) == 0.0
    assert math.isnan(float(r.eta[1])) and math.isnan(float(r.eta_boundary[1]))
    assert not bool(r.flipped[1]) and torch.equal(r.x_adv[1], x[1])
    assert bool(r.flipped[0]) and bool(r.flipped[2])
    with pytest.warns(RuntimeWarning):
        r1 = smallest_flip_step(net, torch.zeros(D, dtype=torch.float64))
    assert math.isnan(float(r1.eta)) and not bool(r1.flipped)
    with pytest.warns(RuntimeWarning):  # the generic path too
        r2 = smallest_flip_step(net, torch.zeros(2, D, dtype=torch.float64), exact=False)
    assert torch.isnan(r2.eta).all() and not r2.flipped.any()


@pytest.mark.parametrize("case", ["zero-weights", "dead-relus"])
def test_zero_gradient_warns(case):
    model = _seq_relu(23, hidden=(16,))
    with torch.no_grad():
        if case == "zero-weights":
            model[0].weight.zero_()
            model[0].bias.fill_(1.0)
        else:
            model[0].bias.fill_(-100.0)  # every ReLU off on the unit-scale inputs
        model[2].bias.fill_(0.5)
    x = _points(4, f"zero-grad-{case}")
    f0, g = _f_and_grad(model, x)
    assert (f0 != 0).all() and (g == 0).all()
    for exact in (None, False):
        with pytest.warns(RuntimeWarning, match="4 of 4"):
            r = smallest_flip_step(model, x, exact=exact)
        assert torch.isnan(r.eta).all() and not r.flipped.any()
        assert torch.equal(r.x_adv, x)
        assert (r.grad_norm == 0).all()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_input_raises(bad):
    x = _points(3, "nonfinite")
    x[1, 4] = bad
    for model in (RandomMLP([D, 20], seed=0, dtype=torch.float64), _seq_relu(24)):
        with pytest.raises(InvalidInputError, match="NaN or inf"):
            smallest_flip_step(model, x)
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        smallest_flip_step(RandomMLP([D, 20], seed=0, dtype=torch.float64), x[1])


@pytest.mark.parametrize("max_eta", [0.0, -1.0, math.nan, math.inf, "1"])
def test_bad_max_eta_raises(max_eta):
    with pytest.raises(InvalidInputError, match="max_eta"):
        smallest_flip_step(_seq_relu(25), _points(2, "max-eta"), max_eta=max_eta)


def test_bad_x_raises():
    model = _seq_relu(26)
    with pytest.raises(InvalidInputError, match="floating"):
        smallest_flip_step(model, torch.ones(2, D, dtype=torch.int64))
    with pytest.raises(InvalidInputError, match="batch"):
        smallest_flip_step(model, torch.zeros(0, D, dtype=torch.float64))
    with pytest.raises(InvalidInputError, match="batch"):  # 1-D only for RandomMLP
        smallest_flip_step(model, torch.ones(D, dtype=torch.float64))


class _TwoLogits(nn.Module):
    def forward(self, x):
        return torch.stack([x.sum(1), -x.sum(1)], dim=1)


class _NaNModel(nn.Module):
    def forward(self, x):
        out = x.sum(1)
        return torch.where(torch.arange(x.shape[0]) == 1, torch.nan, out)


class _Column(nn.Module):
    def forward(self, x):
        return (x.sum(1) - 1.0)[:, None]  # (B, 1) is accepted


def test_model_output_errors():
    x = _points(3, "model-out")
    with pytest.raises(ModelOutputError, match="one scalar per input"):
        smallest_flip_step(_TwoLogits(), x)
    with pytest.raises(ModelOutputError, match="NaN or inf"):
        smallest_flip_step(_NaNModel(), x)
    r = smallest_flip_step(_Column(), x)
    # f(x) = sum(x) - 1 is affine: its gradient is the all-ones vector, so the boundary is
    # eta = -(sum(x) - 1) / d exactly
    expected = -(x.sum(1) - 1.0) / D
    torch.testing.assert_close(r.eta_boundary, expected, rtol=1e-9, atol=0)
    assert r.flipped.all()


def test_one_dimensional_input_gives_scalar_fields():
    net = RandomMLP([D, 100], "relu", seed=27, dtype=torch.float64)
    x = _points(3, "one-d")
    batch = smallest_flip_step(net, x)
    single = smallest_flip_step(net, x[2])
    for name, v in vars(single).items():
        if name == "method":
            assert v == batch.method
            continue
        expected_shape = (D,) if name == "x_adv" else ()
        assert v.shape == expected_shape, name
        torch.testing.assert_close(v, getattr(batch, name)[2], rtol=1e-12, atol=1e-14)
    deep = RandomMLP([D, 40, 40], "tanh", seed=28, dtype=torch.float64)
    single = smallest_flip_step(deep, x[0])
    assert single.eta.shape == () and single.x_adv.shape == (D,)


def test_one_dimensional_result_repr():
    net = RandomMLP([D, 100], "relu", seed=27, dtype=torch.float64)
    r = smallest_flip_step(net, _points(1, "one-d-repr")[0])
    assert "FlipStepResult" in repr(r)


# ---------------------------------------------------------------- the paper's claim, small scale


def test_two_layer_relu_always_flips_with_exact_moments():
    """Bubeck et al. 2021, Section 4 / Figure 2: for L = 1 and d, k >= 50 every input is flipped
    with |eta| < 20. Moments: E f^2 = E relu(X)^2 = 1/2 and E ||grad f||^2 = 1/2 exactly
    (Section 1.2 at ||x|| = sqrt(d)). The 20 inputs of one network are not independent, so the
    standard error comes from the 20 independent per-network means."""
    d = k = 200
    n_nets, n_in = 20, 20
    pred = single_step_prediction("relu", 1, d)
    assert pred.f_var == pytest.approx(0.5, rel=1e-8)
    assert pred.grad_norm_sq == pytest.approx(0.5, rel=1e-8)
    f2_means, g2_means = [], []
    for j in range(n_nets):
        net = TwoLayerRandomNet(d, k, seed=derive_seed("paper-claim", j), dtype=torch.float64)
        x = _points(n_in, f"paper-claim-{j}", d=d)
        r = smallest_flip_step(net, x, max_eta=20.0)
        assert r.flipped.all(), f"net {j}: {int((~r.flipped).sum())} inputs not flipped"
        assert (r.eta.abs() < 20.0).all()
        f2_means.append(float((r.f_x ** 2).mean()))
        g2_means.append(float((r.grad_norm ** 2).mean()))
    for means, theory, what in [(f2_means, pred.f_var, "E f^2"),
                                (g2_means, pred.grad_norm_sq, "E ||grad f||^2")]:
        m = torch.tensor(means, dtype=torch.float64)
        se = float(m.std()) / math.sqrt(n_nets)
        assert abs(float(m.mean()) - theory) < N_SE * se, (what, float(m.mean()), se)


def test_no_global_rng_use():
    net = RandomMLP([D, 60, 60], "relu", seed=29, dtype=torch.float64)
    x = _points(4, "rng")
    torch.manual_seed(0)
    a = smallest_flip_step(net, x, exact=False)
    torch.randn(100)
    b = smallest_flip_step(net, x, exact=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = smallest_flip_step(net, x)
    assert torch.equal(a.eta_boundary.nan_to_num(-1.0), b.eta_boundary.nan_to_num(-1.0))
    torch.testing.assert_close(c.eta_boundary, a.eta_boundary, rtol=1e-6, atol=0,
                               equal_nan=True)


@pytest.mark.parametrize("per_row_out", [False, True])
def test_kink_sweep_in_row_chunks_gives_the_same_roots(monkeypatch, per_row_out):
    # kink_sweep runs its windows over chunks of rows (KINK_SWEEP_CHUNK kinks): a row's roots
    # do not depend on the rows it shares a chunk with. The rays are those of the smallest
    # flipping step on a two-layer net (roots found), three of them reversed (heading away:
    # several windows, then no root), and z has exact zeros (h(0) and h'(0+) then come from
    # the whole batch, as before)
    import randadv.attacks.piecewise_linear as pl

    d, k = 20, 3000
    net = TwoLayerRandomNet(d, k, seed=12, dtype=torch.float64)
    x = _points(9, "chunks", d=d)
    w = net.layers[0].full()
    z = x @ w.T
    f, grad = net.value_and_grad(x)
    c = (-torch.sign(f)[:, None] * grad) @ w.T
    c[-3:] = -c[-3:]
    z[:, :2] = 0.0
    out = net.out_weight
    if per_row_out:
        out = out.expand(9, k).clone()
        out[::2] = -out[::2]
    whole = pl.kink_sweep(z, c, out, 0.0, 1.0, 0.0, 20.0)
    found = torch.isfinite(whole)
    assert 3 <= int(found.sum()) < 9
    for chunk in (1, 2 * k, 4 * k + 1):
        monkeypatch.setattr(pl, "KINK_SWEEP_CHUNK", chunk)
        parts = pl.kink_sweep(z, c, out, 0.0, 1.0, 0.0, 20.0)
        assert torch.equal(parts.nan_to_num(-1.0), whole.nan_to_num(-1.0))
