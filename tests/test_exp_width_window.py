"""``width-window`` end to end on its smoke profile (run, store, report with claims and figures),
unit determinism, the grid of widths, and bad --set values."""


import numpy as np
import pytest

from randadv.errors import ConfigError
from randadv.experiments.base import UnitContext
from randadv.experiments.registry import get_experiment
from randadv.experiments.width_window import ratio_grid, widths_for

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
