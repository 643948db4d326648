"""The claims' layer (randadv.framework.claims): each kind decides its verdict from the numbers
at the boundary of its criterion, is undecided on NaN, and fills its templates."""

import math

import numpy as np
import pandas as pd
import pytest

from randadv.framework import ANY_SIZE
from randadv.framework import claims as C


def test_count_holds_only_when_all_pass_and_fills_the_numbers():
    c = C.count("s", 3, 3, "{passed} of {total}, {failed} failed", "all", scale=ANY_SIZE)
    assert (c.holds, c.measured, c.criterion) == (True, "3 of 3, 0 failed", "all")
    assert C.count("s", 2, 3, "m", "c", scale=ANY_SIZE).holds is False


def test_a_free_text_value_is_not_read_as_a_template():
    c = C.count("s", 1, 1, "{passed} ok{details}", "c", scale=ANY_SIZE,
                details="; SCIP: error {in} LP")
    assert c.measured == "1 ok; SCIP: error {in} LP"


@pytest.mark.parametrize("kind, value, bound, holds", [
    (C.at_most, 4.0, 4.0, True), (C.at_most, 4.0 + 1e-12, 4.0, False),
    (C.at_least, 0.99, 0.99, True), (C.at_least, 0.98, 0.99, False),
    (C.at_most, math.nan, 4.0, None), (C.at_least, math.nan, 0.9, None)])
def test_bounds_at_the_boundary_and_nan(kind, value, bound, holds):
    c = kind("s", value, bound, "{value} vs {bound}", "c", scale=ANY_SIZE)
    assert c.holds is holds
    assert c.verdict == {True: "holds", False: "does not hold", None: "undecided"}[holds]


def test_within_is_symmetric_and_undecided_on_nan():
    for v in (0.45, 0.55):
        assert C.within("s", v, 0.5, 0.05 + 1e-12, "{dev:+.2f}", "c", scale=ANY_SIZE).holds
    assert C.within("s", 0.56, 0.5, 0.05, "m", "c", scale=ANY_SIZE).holds is False
    assert C.within("s", 0.5, 0.5, math.nan, "m", "c", scale=ANY_SIZE).holds is None
    assert C.within("s", 0.4, 0.5, 0.2, "{dev:+.1f}", "c", scale=ANY_SIZE).measured == "-0.1"


def test_exponent_tolerance_z_and_undecided_fits():
    c = C.exponent("s", 0.6, 0.05, 0.5, "{z:+.1f}", "{k:g} SE + {allow:g}", scale="n",
                   allow=0.0, reached=False)
    assert (c.holds, c.measured, c.criterion, c.verdict) == (True, "+2.0", "2 SE + 0",
                                                             "not reached at this scale")
    assert C.exponent("s", 0.61, 0.05, 0.5, "m", "c", scale="n").holds is False
    assert C.exponent("s", 0.61, 0.05, 0.5, "m", "c", scale="n", allow=0.02).holds is True
    assert C.exponent("s", 0.5, 0.05, 0.5, "m", "c", scale="n", decided=False).holds is None
    nan_se = C.exponent("s", 0.5, math.nan, 0.5, "{z}", "c", scale="n")
    assert nan_se.holds is None and nan_se.measured == "nan"
    assert C.exponent("s", 0.5, 0.0, 0.5, "{z}", "c", scale="n").measured == "nan"


def test_every_counts_the_failing_cells():
    c = C.every("s", pd.Series([True, False, False]), "{failed}/{cells}", "c", scale="x")
    assert (c.holds, c.measured) == (False, "2/3")
    assert C.every("s", np.array([True, True]), "m", "c", scale="x").holds is True
    assert C.every("s", [], "{cells} cells", "c", scale="x").holds is None


def test_trend_and_reported():
    assert C.trend("s", 1 < 2, "m", "c", scale="x").holds is True
    assert C.trend("s", True, "m", "c", scale="x", numbers=[1.0, None]).holds is None
    assert C.trend("s", True, "m", "c", scale="x", decided=False).holds is None
    r = C.reported("s", "{a:.1f}", "none", scale="x", a=0.25)
    assert (r.measured, r.decidable, r.holds, r.verdict) == ("0.2", False, None,
                                                             "reported (no criterion)")


def test_a_claim_without_a_scale_is_still_refused():
    with pytest.raises(ValueError, match="scale"):
        C.count("s", 1, 1, "m", "c", scale="")


def test_cellwise_checks():
    assert C.within_se([1.0, 2.0, 3.0], [1.2, 2.0, 2.0], [0.1, 0.1, 0.4], k=2,
                       allow=[0.0, 0.0, 0.2]).tolist() == [True, True, True]
    assert C.within_se([1.0], [1.3], [0.1], k=2).tolist() == [False]
    # 0.05 + 2 sqrt(0.05 * 0.95 / 100) = 0.0936
    assert C.below_binomial([0.093, 0.094], 0.05, 100).tolist() == [True, False]
    assert C.below_binomial([0.3, 0.3], [0.1, 0.5], [10, 10], k=1).tolist() == [False, True]


def test_listing_formats_each_row():
    t = pd.DataFrame(dict(n=[16, 64], f=[0.123, 0.5]))
    assert C.listing(t, "n={n}: {f:.2f}") == "n=16: 0.12, n=64: 0.50"
    assert C.listing([dict(a=1), dict(a=2)], "{a}", sep="; ") == "1; 2"
    assert C.listing(t.iloc[:0], "{n}") == ""
