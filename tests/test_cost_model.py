"""The dry run's cost model (issue 16, item 1): an estimate with a range, never a bare lower
bound, within 1.5x of the measured time on units whose cost is known."""

from __future__ import annotations

import time

import pytest

from randadv.experiments.base import Experiment, UnitContext
from randadv.runner.cost import (
    Calibrated,
    cost_groups,
    estimate,
    fit_estimate,
    fit_grouped,
    fit_unit_time,
    format_estimate,
    loo_factor,
    makespan,
    pick_units,
    replay_estimate,
)


class Sleepy(Experiment):
    """Units that take 10 ms + 20 ms x n (not registered)."""

    name = "test-sleepy"
    profiles = {"smoke": dict(n=list(range(1, 13)))}
    default_profile = "smoke"
    columns = (("n", "int"),)

    def units(self, p):
        return [dict(n=n) for n in p["n"]]

    def run_unit(self, unit, p, ctx: UnitContext):
        time.sleep(0.01 + 0.02 * unit["n"])
        return [dict(n=unit["n"])]

    def unit_cost(self, unit, p):
        return float(unit["n"])


def test_fit_recovers_an_affine_cost_and_respects_censored_points():
    pts = [(c, 0.5 + 2.0 * c) for c in (1.0, 3.0, 10.0)]
    a, b = fit_unit_time(pts)
    assert a == pytest.approx(0.5) and b == pytest.approx(2.0)
    # a censored unit that ran 100 s at cost 20 is not predicted below 100 s
    a, b = fit_unit_time(pts, [(20.0, 100.0)])
    assert a + b * 20 >= 100 - 1e-9
    assert fit_unit_time([(2.0, 4.0)]) == (0.0, 2.0)       # one point: proportional
    assert loo_factor(pts) == pytest.approx(1.0)
    assert loo_factor(pts[:2]) == 1.5


def test_makespan_deals_units_in_order():
    assert makespan([3, 1, 1, 1], 2) == 3
    assert makespan([1, 1, 1, 1], 1) == 4
    assert makespan([5], 4) == 5


def test_estimate_within_1_5x_of_the_measured_time():
    exp = Sleepy()
    params = exp.params("smoke")
    units = exp.units(params)
    pending = list(enumerate(units))
    est = estimate(exp, units, pending, params, 0, "cpu", 1, n_units=4, budget_s=30)
    t0 = time.perf_counter()
    for u in units:
        exp.run_unit(u, params, UnitContext(seed=0))
    measured = time.perf_counter() - t0
    assert measured / 1.5 <= est.compute_seconds <= measured * 1.5
    text = "\n".join(format_estimate(est, 1, 2))
    assert "at least" not in text and "range" in text
    assert est.wall_seconds(2) < est.compute_seconds


def test_a_budget_too_short_for_the_dearest_unit_still_gives_a_range():
    exp = Sleepy()
    params = exp.params("smoke", {"n": "1,2,100"})        # the last unit sleeps 2 s
    units = exp.units(params)
    est = estimate(exp, units, list(enumerate(units)), params, 0, "cpu", 1, n_units=3,
                   budget_s=1.0)
    assert any(not c.finished for c in est.calibrated)
    text = "\n".join(format_estimate(est, 1, 1))
    assert "at least" not in text and "unfinished calibration unit" in text
    # the true total is 0.03 + 0.05 + 2.01 s: inside the stated range
    lo, hi = est.compute_seconds / est.factor, est.compute_seconds * est.factor
    assert lo <= 2.09 <= hi


def test_no_finished_unit_gives_no_estimate_rather_than_a_bound():
    exp = Sleepy()
    params = exp.params("smoke", {"n": "100,101"})        # 2 s each, budget 0.5 s
    units = exp.units(params)
    est = estimate(exp, units, list(enumerate(units)), params, 0, "cpu", 1, n_units=2,
                   budget_s=0.5)
    assert est.compute_seconds is None
    text = "\n".join(format_estimate(est, 1, 1))
    assert text.startswith("no time estimate") and "at least" not in text


class TwoSpeeds(Experiment):
    """Units of two 'activations' whose time per unit of cost differs 8x (not registered): the
    case a single ``unit_cost`` cannot rank (tanh line search vs ReLU kink sweep)."""

    name = "test-two-speeds"
    profiles = {"smoke": dict(n=list(range(1, 9)), act=["fast", "slow"])}
    default_profile = "smoke"
    columns = (("n", "int"),)

    def units(self, p):
        return [dict(act=a, n=n) for a in p["act"] for n in p["n"]]

    def run_unit(self, unit, p, ctx: UnitContext):
        time.sleep((0.02 if unit["act"] == "slow" else 0.0025) * unit["n"])
        return [dict(n=unit["n"])]

    def unit_cost(self, unit, p):
        return float(unit["n"])


def test_cost_groups_are_the_categorical_axes():
    units = [dict(act="a", n=1, flag=True), dict(act="b", n=2, flag=True)]
    assert cost_groups(units) == [("'a'",), ("'b'",)]      # flag takes one value: no axis
    assert cost_groups([dict(n=1), dict(n=2)]) == [(), ()]


def test_every_cost_group_gets_a_calibration_unit():
    costs = {i: float(i % 8 + 1) for i in range(16)}
    groups = {i: ("slow",) if i >= 8 else ("fast",) for i in range(16)}
    picks = pick_units(costs, 3, groups)
    assert {groups[i] for i in picks} == {("fast",), ("slow",)}


def test_group_factors_recover_two_speeds_that_a_pooled_fit_misses():
    # times 1 c (fast) and 8 c (slow): a pooled fit is off by ~4x on one group or the other
    pts = [(c, c, ("fast",)) for c in (1.0, 4.0)] + [(c, 8 * c, ("slow",)) for c in (2.0, 8.0)]
    a, b, m = fit_grouped(pts)
    for c, t, g in pts:
        assert (a + b * c) * m[g] == pytest.approx(t, rel=1e-6)
    assert m[("slow",)] / m[("fast",)] == pytest.approx(8.0, rel=1e-6)


def test_grouped_estimate_within_1_5x_where_the_pooled_one_is_not():
    exp = TwoSpeeds()
    params = exp.params("smoke")
    units = exp.units(params)
    elapsed = {}
    for i, u in enumerate(units):
        t0 = time.perf_counter()
        exp.run_unit(u, params, UnitContext(seed=0))
        elapsed[i] = time.perf_counter() - t0
    est, measured = replay_estimate(exp, params, units, elapsed, n_units=4)
    assert measured / 1.5 <= est.compute_seconds <= measured * 1.5
    # the same calibration units under one pooled fit: the model before cost groups
    picks = [c.idx for c in est.calibrated]
    cal = [Calibrated(i, units[i], float(units[i]["n"]), elapsed[i], None, True) for i in picks]
    pooled = fit_estimate(exp, units, list(enumerate(units)), params, cal, grouped=False)
    assert not measured / 1.5 <= pooled.compute_seconds <= measured * 1.5
