"""Random networks: determinism, streaming, ensembles, gradients, moments, input checks.

Theory checked (Bubeck, Cherapanamjeri, Gidel, Tachet des Combes 2021, eq. (1) and Section 1.2):
for f(x) = k^-1/2 sum_l a_l psi(w_l . x), w_l ~ N(0, I/d), a_l uniform on {-1, +1}, and any x
with ||x||^2 = d, w_l . x ~ N(0, 1) exactly, so for every d and k

    E f(x)^2 = E psi(X)^2,
    E ||grad f(x)||^2 = E psi'(w.x)^2 ||w||^2 = ((d - 1) E psi'(X)^2 + E X^2 psi'(X)^2) / d

(split w into its component along x, X / sqrt(d), and an independent orthogonal part with
E ||w_perp||^2 = (d - 1) / d). For L hidden ReLU layers with fan-in weights N(0, g_i / d_{i-1})
(g_1 = 1, g_i = hidden_gain after) and a symmetric pre-activation z, E relu(z)^2 = E z^2 / 2, so
E z_{i+1}^2 = g_{i+1} E z_i^2 / 2 and E f^2 = E z_L^2 / 2 = hidden_gain^(L-1) 2^-L exactly.

Statistical checks use many independent (network, input) pairs, so the sample values are i.i.d.
and the standard error is the sample std / sqrt(n); each asserts |mean - theory| < 4 SE.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import stats

from randadv.errors import InvalidInputError
from randadv.nets import (
    GEN_BLOCK_ROWS,
    DeepRandomNet,
    GaussianMatrix,
    RandomMLP,
    RandomMLPEnsemble,
    TwoLayerRandomNet,
    derive_seed,
    sphere_points,
)
from randadv.nets.seeding import rademacher
from randadv.theory.gaussian import activation_moments, single_step_prediction

N_SE = 4.0


def _randn(*shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)


def _autograd_value_and_grad(model, x):
    xx = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        f = model(xx)
        (g,) = torch.autograd.grad(f.sum(), xx)
    return f.detach(), g


# ---------------------------------------------------------------- determinism and streaming


@pytest.mark.parametrize("k", [700, 256, 1])
def test_two_layer_net_is_pure_function_of_seed(k):
    a = TwoLayerRandomNet(13, k, seed=5)
    torch.randn(1000)  # advancing the global RNG must not matter
    torch.manual_seed(12345)
    b = TwoLayerRandomNet(13, k, seed=5)
    assert torch.equal(a.layers[0].full(), b.layers[0].full())
    assert torch.equal(a.out_weight, b.out_weight)
    c = TwoLayerRandomNet(13, k, seed=6)
    assert not torch.equal(a.layers[0].full(), c.layers[0].full())
    assert a.layers[0].full().shape == (k, 13)
    # eq. (1): a_l = +-1/sqrt(k), w_l ~ N(0, I/d)
    torch.testing.assert_close(a.out_weight.abs(), torch.full((k,), 1 / math.sqrt(k)),
                               rtol=1e-6, atol=0)


def test_weight_scales_match_eq1():
    d, k = 50, 4000
    w = TwoLayerRandomNet(d, k, seed=1).layers[0].full().double()
    n = w.numel()
    # entries N(0, 1/d): the sample variance of n entries has SE sqrt(2/n) / d
    assert abs(float(w.var()) - 1 / d) < N_SE * math.sqrt(2.0 / n) / d
    assert abs(float(w.mean())) < N_SE / math.sqrt(d * n)
    a = TwoLayerRandomNet(d, k, seed=1).out_weight.double() * math.sqrt(k)
    assert abs(float(a.mean())) < N_SE / math.sqrt(k)
    deep = RandomMLP([d, 300, 200], seed=2, hidden_gain=2.0)
    w2 = deep.layers[1].full().double()
    assert abs(float(w2.var()) - 2.0 / 300) < N_SE * math.sqrt(2.0 / w2.numel()) * 2.0 / 300


@pytest.mark.parametrize("block_rows", [1, 256, 512, 1000])
@pytest.mark.parametrize("k", [700, 1024])
def test_streamed_equals_materialised(block_rows, k):
    d = 17
    full = TwoLayerRandomNet(d, k, seed=3)
    streamed = TwoLayerRandomNet(d, k, seed=3, max_weight_bytes=0, block_rows=block_rows)
    layer = streamed.layers[0]
    assert full.layers[0].materialized and not layer.materialized
    expected_rows = max(GEN_BLOCK_ROWS, math.ceil(block_rows / GEN_BLOCK_ROWS) * GEN_BLOCK_ROWS)
    assert layer.block_rows == expected_rows
    assert torch.equal(layer.full(), full.layers[0].full())
    # the blocks tile the matrix in order, each of at most block_rows rows
    starts, parts = zip(*layer.blocks(), strict=True)
    assert list(starts) == list(range(0, k, expected_rows))
    assert all(p.shape[0] <= expected_rows for p in parts)
    assert torch.equal(torch.cat(parts), full.layers[0].full())
    assert torch.equal(streamed.out_weight, full.out_weight)
    x = _randn(9, d, seed=1, dtype=torch.float32)
    torch.testing.assert_close(streamed(x), full(x), rtol=1e-5, atol=1e-6)
    fs, gs = streamed.value_and_grad(x)
    ff, gf = full.value_and_grad(x)
    torch.testing.assert_close(fs, ff, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gs, gf, rtol=1e-5, atol=1e-6)


def test_streamed_equals_materialised_float64_deep():
    widths = [11, 700, 300, 520]
    full = RandomMLP(widths, "tanh", seed=8, bias_std=0.3, hidden_gain=2.0, dtype=torch.float64)
    streamed = RandomMLP(widths, "tanh", seed=8, bias_std=0.3, hidden_gain=2.0,
                         dtype=torch.float64, max_weight_bytes=0, block_rows=300)
    assert not any(layer.materialized for layer in streamed.layers)
    for a, b in zip(full.layers, streamed.layers, strict=True):
        assert torch.equal(a.full(), b.full())
    # the float64 net is the float32 net up to float32 rounding of the weights
    f32 = RandomMLP(widths, "tanh", seed=8, bias_std=0.3, hidden_gain=2.0)
    for a, b in zip(full.layers, f32.layers, strict=True):
        torch.testing.assert_close(a.full().float(), b.full(), rtol=2.0 ** -23, atol=0)
    x = _randn(6, 11, seed=2)
    torch.testing.assert_close(streamed(x), full(x), rtol=1e-12, atol=1e-14)
    fs, gs = streamed.value_and_grad(x)
    ff, gf = full.value_and_grad(x)
    torch.testing.assert_close(fs, ff, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(gs, gf, rtol=1e-12, atol=1e-14)


# float64 weights hold exactly the float32 weights' values (GaussianMatrix docstring)
def test_float64_weights_hold_float32_values_exactly():
    for std in (1.0 / math.sqrt(11), 0.3):
        w64 = GaussianMatrix(300, 11, std, (8, "W", 0), dtype=torch.float64).full()
        w32 = GaussianMatrix(300, 11, std, (8, "W", 0), dtype=torch.float32).full()
        assert torch.equal(w64, w32.double())


def test_gaussian_matrix_mm_rmm_streamed():
    m_full = GaussianMatrix(600, 7, 0.5, (1, "t"), dtype=torch.float64, materialize=True)
    m_str = GaussianMatrix(600, 7, 0.5, (1, "t"), dtype=torch.float64, materialize=False,
                           block_rows=256)
    w = m_full.full()
    x, y = _randn(4, 7, seed=3), _randn(4, 600, seed=4)
    torch.testing.assert_close(m_str.mm(x), x @ w.T, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(m_str.rmm(y), y @ w, rtol=1e-12, atol=1e-13)
    assert torch.equal(m_str.full(), w)


@pytest.mark.parametrize("materialize", [True, False])
def test_gaussian_matrix_mm_rmm_one_pass_equals_two_passes(materialize):
    # mm_rmm draws a streamed matrix once for z = x W^T and u W; its values are those of mm
    # then rmm bit for bit (same blocks, same order), and back sees each block's z and start
    m = GaussianMatrix(1100, 9, 0.5, (2, "t"), materialize=materialize, block_rows=256)
    x = _randn(5, 9, seed=6, dtype=torch.float32)
    a = _randn(1, 1100, seed=7, dtype=torch.float32)[0]
    seen = []

    def back(start, zb):
        seen.append((start, zb.shape[-1]))
        return torch.relu(zb) * a[start:start + zb.shape[-1]]

    z, g = m.mm_rmm(x, back)
    z2 = m.mm(x)
    assert torch.equal(z, z2)
    # the same products on the same blocks in the same order (bit-identical on this project's
    # machine, benchmarks/bench_single_step.py --streamed); rmm slices a strided view where
    # mm_rmm has the block contiguous, which a BLAS may round otherwise: float32 tolerance
    torch.testing.assert_close(g, m.rmm(torch.relu(z2) * a), rtol=1e-6, atol=1e-6)
    expected = [(0, 1100)] if materialize else [(s, min(256, 1100 - s))
                                                for s in range(0, 1100, 256)]
    assert seen == expected


def test_batch_size_independence():
    net = RandomMLP([12, 40, 30], "gelu", seed=4, bias_std=0.5, dtype=torch.float64)
    x = _randn(10, 12, seed=5)
    batched = net(x)
    rows = torch.stack([net(x[i:i + 1])[0] for i in range(10)])
    singles = torch.stack([net(x[i]) for i in range(10)])
    torch.testing.assert_close(batched, rows, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(batched, singles, rtol=1e-12, atol=1e-14)
    f, g = net.value_and_grad(x)
    f3, g3 = net.value_and_grad(x[3:6])
    torch.testing.assert_close(f[3:6], f3, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(g[3:6], g3, rtol=1e-12, atol=1e-14)
    assert net(x[0]).shape == ()


def test_ensemble_members_equal_single_nets():
    widths, seeds = [9, 33, 21], [4, 17, 2, 99]
    kw = dict(bias_std=0.5, hidden_gain=2.0, dtype=torch.float64)
    ens = RandomMLPEnsemble(widths, seeds, "tanh", **kw)
    alone = RandomMLPEnsemble(widths, [seeds[2]], "tanh", **kw)  # built with other nets or not
    x = _randn(5, 9, seed=6)
    f_ens = ens(x)
    assert f_ens.shape == (4, 5)
    fe, ge = ens.value_and_grad(x)
    for j, s in enumerate(seeds):
        net = RandomMLP(widths, "tanh", seed=s, **kw)
        for i in range(net.depth):
            assert torch.equal(getattr(ens, f"W{i}")[j], net.layers[i].full())
            assert torch.equal(getattr(ens, f"b{i}")[j], net.bias(i))
        assert torch.equal(ens.out_weight[j], net.out_weight)
        torch.testing.assert_close(f_ens[j], net(x), rtol=1e-12, atol=1e-14)
        fn, gn = net.value_and_grad(x)
        torch.testing.assert_close(fe[j], fn, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(ge[j], gn, rtol=1e-12, atol=1e-14)
    assert torch.equal(alone.W0[0], ens.W0[2])
    # per-member inputs (N, B, d)
    xs = _randn(4, 3, 9, seed=7)
    f3 = ens(xs)
    for j, s in enumerate(seeds):
        torch.testing.assert_close(f3[j], RandomMLP(widths, "tanh", seed=s, **kw)(xs[j]),
                                   rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("act", ["relu", "tanh", "softplus"])
def test_ensemble_value_and_grad_equals_autograd(act):
    ens = RandomMLPEnsemble([8, 16, 12], [1, 2, 3], act, bias_std=0.5, hidden_gain=2.0,
                            dtype=torch.float64)
    x = _randn(3, 4, 8, seed=8)
    f, g = ens.value_and_grad(x)
    fa, ga = _autograd_value_and_grad(ens, x)
    torch.testing.assert_close(f, fa, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(g, ga, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- gradients


def _sin(z):
    return torch.sin(z)


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "tanh", "softplus", "gelu", "sigmoid",
                                 _sin, lambda z: z * torch.tanh(z)])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_value_and_grad_equals_autograd(act, depth):
    net = RandomMLP([10] + [25] * depth, act, seed=depth, bias_std=0.5, hidden_gain=2.0,
                    dtype=torch.float64)
    x = _randn(7, 10, seed=9) * 2.0
    f, g = net.value_and_grad(x)
    fa, ga = _autograd_value_and_grad(net, x)
    assert f.shape == (7,) and g.shape == (7, 10)
    torch.testing.assert_close(f, fa, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(g, ga, rtol=1e-10, atol=1e-12)


def test_value_and_grad_float32_and_gaussian_output():
    net = DeepRandomNet(10, 30, 2, "tanh", seed=1, output="gaussian")
    x = _randn(5, 10, seed=10, dtype=torch.float32)
    f, g = net.value_and_grad(x)
    fa, ga = _autograd_value_and_grad(net, x)
    assert f.dtype == torch.float32 and g.dtype == torch.float32
    torch.testing.assert_close(f, fa, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g, ga, rtol=1e-4, atol=1e-6)
    # Gaussian output weights are not all of one magnitude
    assert net.out_weight.abs().std() > 0


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("act", ["relu", "leaky_relu"])
def test_positive_homogeneity_f_equals_grad_dot_x(depth, act):
    net = RandomMLP([15] + [40] * depth, act, seed=11 + depth, dtype=torch.float64)
    x = _randn(20, 15, seed=11) * 3.0
    f, g = net.value_and_grad(x)
    torch.testing.assert_close((g * x).sum(1), f, rtol=1e-10, atol=1e-12)
    # f(c x) = c f(x) for c > 0
    torch.testing.assert_close(net(2.5 * x), 2.5 * f, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- moments against theory


def _gauss_expect(fn, n=200):
    """E fn(X), X ~ N(0, 1), by Gauss-Hermite quadrature (probabilists'), for smooth fn."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(n)
    return float(np.sum(weights * fn(nodes)) / math.sqrt(2 * math.pi))


def test_activation_moments_closed_forms():
    relu = activation_moments("relu")
    assert relu.psi_sq == pytest.approx(0.5, rel=1e-8)
    assert relu.dpsi_sq == pytest.approx(0.5, rel=1e-8)
    assert relu.x2_dpsi_sq == pytest.approx(0.5, rel=1e-8)
    tanh = activation_moments("tanh")
    assert tanh.psi_sq == pytest.approx(_gauss_expect(lambda z: np.tanh(z) ** 2), rel=1e-8)
    assert tanh.dpsi_sq == pytest.approx(
        _gauss_expect(lambda z: (1 - np.tanh(z) ** 2) ** 2), rel=1e-8)
    assert tanh.x2_dpsi_sq == pytest.approx(
        _gauss_expect(lambda z: z * z * (1 - np.tanh(z) ** 2) ** 2), rel=1e-8)
    d = 10
    pred = single_step_prediction("tanh", 1, d)
    assert pred.f_var == pytest.approx(tanh.psi_sq, rel=1e-12)
    assert pred.grad_norm_sq == pytest.approx(
        ((d - 1) * tanh.dpsi_sq + tanh.x2_dpsi_sq) / d, rel=1e-12)
    assert single_step_prediction("relu", 1, d).grad_norm_sq == pytest.approx(0.5, rel=1e-8)


def _assert_mean(samples: torch.Tensor, theory: float, what: str):
    s = samples.double().flatten()
    n = s.numel()
    se = float(s.std()) / math.sqrt(n)
    mean = float(s.mean())
    assert se > 0
    assert abs(mean - theory) < N_SE * se, (
        f"{what}: sample mean {mean:.5f} vs theory {theory:.5f} (SE {se:.5f}, n={n})")


def _independent_pairs(widths, act, n, tag, **kw):
    """f and grad f of n independent networks, each at its own independent point of
    sqrt(d) S^{d-1}."""
    d = widths[0]
    ens = RandomMLPEnsemble(widths, [derive_seed("test_nets", tag, i) for i in range(n)], act,
                            dtype=torch.float64, **kw)
    x = sphere_points(n, d, math.sqrt(d), "test_nets", tag, dtype=torch.float64)
    f, g = ens.value_and_grad(x.unsqueeze(1))
    return f[:, 0], g[:, 0, :]


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_two_layer_moments_exact_in_d_and_k(act):
    d, k, n = 10, 30, 1500
    pred = single_step_prediction(act, 1, d)
    f, g = _independent_pairs([d, k], act, n, f"moments-{act}")
    _assert_mean(f ** 2, pred.f_var, "E f^2")
    _assert_mean((g ** 2).sum(1), pred.grad_norm_sq, "E ||grad f||^2")
    # f is centred (a_l symmetric): E f = 0
    _assert_mean(f, 0.0, "E f")


def test_moment_check_has_power():
    """The same check rejects a wrong theory value: the large-d limit E psi'(X)^2 of
    E ||grad f||^2 differs from the exact finite-d value for tanh at d = 3 by many SEs."""
    d, k, n = 3, 30, 1500
    exact = single_step_prediction("tanh", 1, d).grad_norm_sq
    limit = activation_moments("tanh").dpsi_sq
    _, g = _independent_pairs([d, k], "tanh", n, "power")
    s = (g ** 2).sum(1)
    se = float(s.std()) / math.sqrt(n)
    assert abs(float(s.mean()) - exact) < N_SE * se
    assert abs(float(s.mean()) - limit) > N_SE * se


@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_deep_relu_output_variance(depth, gain):
    d, k, n = 10, 30, 1500
    theory = gain ** (depth - 1) * 2.0 ** -depth
    assert single_step_prediction("relu", depth, hidden_gain=gain).f_var == pytest.approx(
        theory, rel=1e-8)
    f, _ = _independent_pairs([d] + [k] * depth, "relu", n, f"deep-{depth}-{gain}",
                              hidden_gain=gain)
    _assert_mean(f ** 2, theory, f"E f^2, L={depth}, gain={gain}")


# ---------------------------------------------------------------- invalid inputs


@pytest.mark.parametrize("widths, match", [
    ([10, 0], "positive"),
    ([10, -3], "positive"),
    ([0, 5], "positive"),
    ([10, 5, 0], "positive"),
    ([10], "hidden width"),
    ([], "hidden width"),
])
def test_bad_widths(widths, match):
    with pytest.raises(InvalidInputError, match=match):
        RandomMLP(widths)


def test_bad_constructor_arguments():
    with pytest.raises(InvalidInputError, match="depth"):
        DeepRandomNet(10, 5, 0)
    with pytest.raises(InvalidInputError, match="unknown activation 'swish'"):
        RandomMLP([3, 4], "swish")
    with pytest.raises(InvalidInputError, match="output"):
        RandomMLP([3, 4], output="uniform")
    with pytest.raises(InvalidInputError, match="bias_std"):
        RandomMLP([3, 4], bias_std=-1.0)
    with pytest.raises(InvalidInputError, match="hidden_gain"):
        RandomMLP([3, 4], hidden_gain=0.0)
    with pytest.raises(InvalidInputError, match="dtype"):
        RandomMLP([3, 4], dtype=torch.float16)
    with pytest.raises(InvalidInputError, match="at least one seed"):
        RandomMLPEnsemble([3, 4], [])
    for rows, cols in [(0, 3), (3, 0), (-1, 2)]:
        with pytest.raises(InvalidInputError, match="positive"):
            GaussianMatrix(rows, cols, 1.0, (0,))


def test_bad_network_inputs():
    net = RandomMLP([4, 6], seed=0)
    with pytest.raises(InvalidInputError, match="dimension 5"):
        net(torch.randn(2, 5))
    with pytest.raises(InvalidInputError, match="shape"):
        net(torch.randn(2, 3, 4))
    with pytest.raises(InvalidInputError, match="floating"):
        net(torch.ones(2, 4, dtype=torch.int64))
    with pytest.raises(InvalidInputError, match="dimension"):
        net.value_and_grad(torch.randn(2, 5))
    with pytest.raises(InvalidInputError, match="torch.Tensor"):
        net(np.ones((2, 4)))
    ens = RandomMLPEnsemble([4, 6], [0, 1])
    with pytest.raises(InvalidInputError, match="ensemble input"):
        ens(torch.randn(3, 2, 4))
    with pytest.raises(InvalidInputError, match="ensemble input"):
        ens(torch.randn(2, 5))


# ---------------------------------------------------------------- seeding


def test_derive_seed_stable_and_key_sensitive():
    s = derive_seed(1, "W", 0)
    assert s == derive_seed(1, "W", 0)
    assert 0 <= s < 2 ** 63
    others = {derive_seed("W", 1, 0), derive_seed(1, "W", 1), derive_seed(2, "W", 0),
              derive_seed(1, "w", 0), derive_seed(1, "W", 0, 0), derive_seed(1, "W")}
    assert s not in others and len(others) == 6
    # dict keys are sorted: insertion order does not matter
    assert derive_seed({"a": 1, "b": 2}) == derive_seed({"b": 2, "a": 1})


def test_derive_seed_stable_across_processes():
    """Not Python's salted hash(): another interpreter with another hash seed agrees."""
    code = ("from randadv.nets.seeding import derive_seed;"
            "print(derive_seed(7, 'layer', 3), derive_seed('x'))")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, timeout=120).stdout.split()
    assert [int(v) for v in out] == [derive_seed(7, "layer", 3), derive_seed("x")]


def test_sphere_points():
    n, d, r = 4000, 5, 3.0
    p64 = sphere_points(n, d, r, "sp", 1, dtype=torch.float64)
    p32 = sphere_points(n, d, r, "sp", 1)
    assert p64.shape == (n, d) and p64.dtype == torch.float64 and p32.dtype == torch.float32
    torch.testing.assert_close(p64.norm(dim=1), torch.full((n,), r, dtype=torch.float64),
                               rtol=1e-13, atol=0)
    torch.testing.assert_close(p32.norm(dim=1), torch.full((n,), r), rtol=1e-6, atol=0)
    assert torch.equal(p32, p64.to(torch.float32))  # same points, rounded
    assert torch.equal(p64, sphere_points(n, d, r, "sp", 1, dtype=torch.float64))
    assert not torch.equal(p64, sphere_points(n, d, r, "sp", 2, dtype=torch.float64))
    # uniform on the sphere: E x = 0, E x x^T = r^2 I / d. n ||mean||^2 d / r^2 ~ chi2_d.
    stat = n * float((p64.mean(0) ** 2).sum()) * d / r ** 2
    assert stat < stats.chi2.ppf(1 - 1e-4, d)
    second = (p64.T @ p64) / n
    # each diagonal entry: mean of x_i^2 with Var(x_i^2) <= E x_i^4 = 3 r^4 / (d (d + 2))
    se = math.sqrt(3 * r ** 4 / (d * (d + 2)) / n)
    assert torch.all((second.diagonal() - r ** 2 / d).abs() < N_SE * se)


def test_rademacher_signs():
    s = rademacher(10000, "rad", 0)
    assert set(s.unique().tolist()) == {-1.0, 1.0}
    assert abs(float(s.mean())) < N_SE / math.sqrt(10000)
    assert torch.equal(s, rademacher(10000, "rad", 0))
