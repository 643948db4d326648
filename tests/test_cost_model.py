"""The dry run's cost model (issue 16, item 1): an estimate with a range, never a bare lower
bound, within 1.5x of the measured time on units whose cost is known."""

from __future__ import annotations

import time

import pytest

from randadv.experiments.base import Experiment, UnitContext
from randadv.runner.cost import estimate, fit_unit_time, format_estimate, loo_factor, makespan


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
