"""The multi-layer experiments (Bartlett, Bubeck, Cherapanamjeri 2021) end to end on their smoke
profiles: run, store, report with claims; unit determinism; bad --set values."""

import math

import numpy as np
import pytest

from randadv.errors import ConfigError
from randadv.experiments.registry import get_experiment

EXPERIMENTS = ["min-pert", "multilayer-single-step", "depth-constant", "bottleneck-linearity"]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_smoke_profile_end_to_end(name, smoke_run):
    _, _, _, df, _ = smoke_run(name)
    assert len(df) > 0


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_unit_is_deterministic(name, unit_twice):
    exp, params, _, a = unit_twice(name)
    cols = {c for c, _ in exp.columns}
    assert all(set(r) == cols for r in a)


@pytest.mark.parametrize("name, key, value", [
    ("min-pert", "d", "1"), ("min-pert", "runs", "1"), ("min-pert", "k", "0,10"),
    ("multilayer-single-step", "family", "spiral"), ("multilayer-single-step", "delta", "1.5"),
    ("multilayer-single-step", "depth", "0"), ("multilayer-single-step", "nets", "1"),
    ("depth-constant", "rho0", "2.0"), ("depth-constant", "width", "0"),
    ("depth-constant", "max_eta", "-1"),
    ("bottleneck-linearity", "architecture", "last"), ("bottleneck-linearity", "eps", "0"),
    ("bottleneck-linearity", "n_scan", "1"), ("bottleneck-linearity", "nets", "abc"),
])
def test_bad_set_values_raise_config_error(name, key, value):
    with pytest.raises(ConfigError):
        get_experiment(name).params("smoke", {key: value})


def test_flip_steps_capped_matches_region_walk_with_per_input_bounds():
    """The batched search of the multi-layer experiments gives, for every input, the smallest
    flipping step found by the region walk searching up to that input's own bound
    max(max_eta, max_rel ||x|| / ||grad f(x)||): same inputs flipped, |eta| within the
    verification margin (relative 1e-3) above the walk's root, rel_pert = |eta| ||grad f|| /
    ||x||. Some roots lie beyond their own bound but within the largest one (the case the
    batching must mask)."""
    import torch

    from randadv.attacks import value_and_grad
    from randadv.attacks.piecewise_linear import first_root_on_ray
    from randadv.experiments._flip_capped import flip_steps_capped
    from randadv.nets import DeepReLUNet, sphere_points
    from randadv.protocol.piecewise import as_piecewise_linear

    d, max_eta, max_rel = 16, 0.1, 0.3
    net = DeepReLUNet([d, 24, 24, 24, 24], seed=7, dtype=torch.float64)
    x = sphere_points(16, d, math.sqrt(d), "capped", dtype=torch.float64)
    r = flip_steps_capped(net, x, max_eta, max_rel)
    f, g = value_and_grad(net, x)
    bound = torch.clamp(max_rel * x.norm(dim=1) / g.norm(dim=1), min=max_eta)
    u = -torch.sign(f)[:, None] * g
    stack = as_piecewise_linear(net)
    own = first_root_on_ray(stack, x, u, bound, method="walk").numpy()
    anywhere = first_root_on_ray(stack, x, u, float(bound.max()), method="walk").numpy()
    assert (np.isnan(own) & ~np.isnan(anywhere)).any(), "test needs a root beyond its bound"
    assert 2 <= (~np.isnan(own)).sum() <= len(own) - 2
    assert np.array_equal(r["flipped"], ~np.isnan(own))
    fl = r["flipped"]
    assert np.isnan(r["eta"][~fl]).all() and np.isnan(r["rel_pert"][~fl]).all()
    eta = np.abs(r["eta"][fl])
    assert (eta >= own[fl]).all() and (eta <= own[fl] * (1 + 1e-3)).all()
    assert np.array_equal(np.sign(r["eta"][fl]), -np.sign(f.numpy()[fl]))
    np.testing.assert_allclose(r["rel_pert"][fl], eta * g.norm(dim=1).numpy()[fl] / math.sqrt(d),
                               rtol=1e-12)


def test_quantile_with_unflipped_inputs_as_inf():
    """depth-constant's quartiles count unflipped inputs as +inf: numpy's linear interpolation
    on finite values, +inf once the interpolation reaches an inf (numpy gives NaN there)."""
    from randadv.experiments.depth_constant import quantile_inf

    v = np.random.default_rng(1).standard_normal(13)
    for q in (0.0, 0.25, 0.5, 0.75, 1.0):
        assert quantile_inf(v, q) == pytest.approx(float(np.quantile(v, q)), rel=1e-12)
    inf = math.inf
    # sorted [1, 2, inf, inf]: positions 0.75, 1.5, 2.25
    assert [quantile_inf(np.array([inf, 2.0, 1.0, inf]), q) for q in (0.25, 0.5, 0.75)] == \
        [1.75, inf, inf]
    assert quantile_inf(np.array([3.0, 1.0, 2.0, inf, 5.0]), 0.75) == 5.0    # position 3
