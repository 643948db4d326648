"""``width-window`` end to end on its smoke profile (run, store, report with claims and figures),
unit determinism, the grid of widths, and bad --set values."""


import numpy as np
import pandas as pd
import pytest

from randadv.errors import ConfigError
from randadv.experiments.registry import get_experiment
from randadv.experiments.width_window import ratio_grid, widths_for
from randadv.framework import UnitContext

EXP = "width-window"


def test_smoke_profile_end_to_end(smoke_run):
    exp, params, summary, df, claims = smoke_run(EXP)
    assert len(df) == len(exp.units(params)) * params["inputs"]
    t = exp.summary_table(df, params)
    assert len(t) == len(exp.cells(params))
    # the GP reference does not depend on k and is finite
    assert (t.groupby("d").gp_eta.nunique() == 1).all() and np.isfinite(t.gp_rel).all()
    assert len(claims) == 5 and len(summary.figures) == 2


def test_unit_is_deterministic(unit_twice):
    exp, params, unit, a = unit_twice(EXP)
    assert len(a) == params["inputs"]
    assert all(set(r) == {c for c, _ in exp.columns} for r in a)
    c = exp.run_unit(unit, params, UnitContext(seed=4))
    assert [r["f_x"] for r in c] != [r["f_x"] for r in a]


def test_ratio_grid_and_widths():
    r = ratio_grid(0.1, 10.0, 17)
    assert r[0] == pytest.approx(0.1) and r[-1] == pytest.approx(10.0) and r[8] == pytest.approx(1)
    assert widths_for(100, r)[0] == 10 and widths_for(100, r)[-1] == 1000
    assert widths_for(4, r)[0] == 1                      # k >= 1, duplicates merged
    assert len(widths_for(4, r)) == len(set(widths_for(4, r)))
    exp = get_experiment(EXP)
    quick = exp.params("quick")
    assert max(c["d"] for c in exp.cells(quick)) == 1000
    assert max(c["d"] for c in exp.cells(exp.params("paper"))) == 10_000
    costs = [exp.unit_cost(u, quick) for u in exp.units(quick)]
    assert min(costs) > 0


@pytest.mark.parametrize("key, value", [
    ("d", "1"), ("d", "0,10"), ("ratio_min", "0"), ("ratio_min", "-1"), ("ratio_max", "0.01"),
    ("n_ratios", "0"), ("nets", "1"), ("inputs", "0"), ("max_eta", "0"), ("gp_samples", "10"),
    ("activation", "swish"), ("d", "abc"), ("no_such_key", "1"),
])
def test_bad_set_values_raise_config_error(key, value):
    with pytest.raises(ConfigError):
        get_experiment(EXP).params("smoke", {key: value})


def test_huge_cell_is_refused_up_front():
    with pytest.raises(ConfigError, match="weights"):
        get_experiment(EXP).params("smoke", {"d": "1000000", "ratio_max": "1000",
                                             "ratio_min": "1000", "n_ratios": "1"})


def test_excess_is_taken_at_the_root_not_at_the_verified_step(monkeypatch):
    """An input moved (Newton steps along grad f) to |f(x)| = 1e-5, below the forward pass's
    rounding bound (about 5e-5 here): the verified step is pushed past that bound, about ten
    times the linearised step |f|/||grad f||^2, while the root is the linearised step up to the
    O(step) curvature of tanh and the float32 rounding of f(x) (well under 1e-6, i.e. 10% of
    |f|). The cell's excess and the tanh local-linearity claim must come from the root: with the
    verified step, that one input alone puts the mean over 32 inputs near 30%."""
    import math

    from randadv.attacks.checks import value_and_grad
    from randadv.experiments import width_window
    from randadv.nets import TwoLayerRandomNet, sphere_points

    d = k = 1000
    inputs, target = 32, 1e-5
    net = TwoLayerRandomNet(d, k, "tanh", seed=3)
    x = sphere_points(inputs, d, math.sqrt(d), 0, "near-boundary test")
    for _ in range(3):
        f, g = value_and_grad(net, x)
        x = x.clone()
        x[0] = x[0] - (f[0] - f[0].sign() * target) / g[0].norm() ** 2 * g[0]
    assert 0.5 * target < abs(float(net(x[:1]).reshape(-1)[0])) < 2 * target
    monkeypatch.setattr(width_window, "TwoLayerRandomNet", lambda *a, **kw: net)
    monkeypatch.setattr(width_window, "sphere_points", lambda *a, **kw: x.clone())
    exp = get_experiment(EXP)
    p = exp.params("smoke", {"d": str(d), "activation": "tanh", "inputs": str(inputs),
                             "ratio_min": "1", "ratio_max": "1", "n_ratios": "1",
                             "gp_samples": "1000"})
    unit = dict(activation="tanh", d=d, k=k, net=0)
    recs = [dict(r, net=n) for n in range(2) for r in exp.run_unit(unit, p, UnitContext(seed=0))]
    df = pd.DataFrame(recs)
    near = df.iloc[0]
    lin = abs(near.f_x) / near.grad_norm ** 2
    assert near.flipped
    assert abs(near.eta) / lin - 1 > 3                   # the push dominates the verified step
    assert abs(abs(near.eta_boundary) / lin - 1) < 0.1   # the root: the linearised step
    t = exp.summary_table(df, p)
    assert len(t) == 1
    row = t.iloc[0]
    assert row.nonlin_verified_mean > 0.1               # what the old statistic measured
    assert abs(row.nonlin_mean) < 0.01                  # eq. (5): curvature O(1/d) at d = 1000
    fl = df[df.flipped]
    assert row.eta_mean == pytest.approx(fl.eta_boundary.abs().mean(), rel=1e-12)
    assert row.eta_mean < fl.eta.abs().mean()
    smooth = [c for c in exp.check_claims(df, p) if c.statement.startswith("Smooth psi")]
    assert len(smooth) == 1 and smooth[0].holds


def test_store_without_eta_boundary_falls_back_with_a_warning():
    exp = get_experiment(EXP)
    p = exp.params("smoke", {"gp_samples": "1000"})
    recs = exp.run_unit(exp.units(p)[0], p, UnitContext(seed=0))
    df = pd.DataFrame(recs)
    with pytest.warns(RuntimeWarning, match="eta_boundary"):
        old = exp.summary_table(df.drop(columns="eta_boundary"), p)
    assert (old.nonlin_mean == old.nonlin_verified_mean).all()
