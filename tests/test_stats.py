"""randadv.stats: the fits and critical values behind the claims."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from randadv.stats import (
    binomial_interval,
    binomial_se,
    bonferroni_t,
    bootstrap_median_slopes,
    loglog_fit,
    loglog_slope,
    sequential_level,
)


def test_loglog_fit_recovers_a_power_law_and_skips_unusable_points():
    x = np.array([1.0, 10.0, 100.0, 1000.0])
    b, a = loglog_fit(x, 3.0 * x ** -0.5)
    assert b == pytest.approx(-0.5, abs=1e-12) and math.exp(a) == pytest.approx(3.0)
    y = 3.0 * x ** 0.5
    y_bad = np.concatenate([y, [np.nan, 0.0, np.inf, -1.0]])
    assert loglog_slope(np.concatenate([x, [5, 6, 7, 8]]), y_bad) == pytest.approx(0.5)
    assert math.isnan(loglog_slope([1.0], [2.0]))
    assert math.isnan(loglog_slope([2.0, 2.0], [1.0, 3.0]))


def test_bonferroni_t_has_its_family_wise_level():
    """Under the null (normal per-network means, 80 cells of 8 nets) the largest
    |mean| / SE over the cells exceeds the bound in 1 - (1 - 0.05/80)^80 = 4.9% of replicates;
    checked on 4000 replicates within 3 binomial standard errors."""
    cells, nets, reps = 80, 8, 4000
    rng = np.random.default_rng(0)
    m = rng.standard_normal((reps, cells, nets))
    t = np.abs(m.mean(2)) / (m.std(2, ddof=1) / math.sqrt(nets))
    rate = float((t.max(1) > bonferroni_t(cells, nets)).mean())
    expected = 1 - (1 - 0.05 / cells) ** cells
    assert abs(rate - expected) <= 3 * math.sqrt(expected * (1 - expected) / reps)


@pytest.mark.parametrize("cells", [1, 3, 40, 1000])
def test_bonferroni_t_at_infinitely_many_nets_is_the_normal_bonferroni_bound(cells):
    """n_nets = inf: normal tests (two-layer-asymptotics' z-tests), the normal quantile itself,
    to the last bit; the t bound falls towards it as the nets grow."""
    normal = float(scipy.stats.norm.ppf(1 - 1e-3 / (2 * cells)))
    assert bonferroni_t(cells, math.inf, alpha=1e-3) == normal
    ts = [bonferroni_t(cells, n, alpha=1e-3) for n in (5, 50, 5000)]
    assert ts[0] > ts[1] > ts[2] > normal and ts[2] == pytest.approx(normal, rel=1e-2)


@pytest.mark.parametrize("n", [10, 50])
def test_binomial_interval_covers_at_its_level(n):
    """Exact coverage of Clopper-Pearson, summed over the binomial law (no sampling)."""
    ivals = [binomial_interval(k, n, 0.9) for k in range(n + 1)]
    for p in np.linspace(0.01, 0.99, 41):
        pmf = scipy.stats.binom.pmf(np.arange(n + 1), n, p)
        cover = sum(w for (lo, hi), w in zip(ivals, pmf, strict=True) if lo <= p <= hi)
        assert cover >= 0.9 - 1e-12
    assert binomial_interval(0, n)[0] == 0.0 and binomial_interval(n, n)[1] == 1.0


def test_binomial_se_and_sequential_level():
    assert binomial_se(0.5, 100) == pytest.approx(0.05)
    assert sequential_level(0.05, 5) == pytest.approx(0.01)


def test_bootstrap_median_slopes_spread_shrinks_with_more_networks():
    """The bootstrap SE of a slope scales like 1/sqrt(nets): 4x the nets, about half the SE."""
    rng = np.random.default_rng(1)

    def cells(nets):
        return [(n, n ** 0.5 * np.exp(0.3 * rng.standard_normal((nets, 1))))
                for n in (10.0, 100.0, 1000.0)]

    se_small = bootstrap_median_slopes(cells(8), seed=0).std(ddof=1)
    se_large = bootstrap_median_slopes(cells(32), seed=0).std(ddof=1)
    assert 0.3 <= se_large / se_small <= 0.8


def test_mean_se_is_the_standard_error_of_a_mean_over_units():
    import pandas as pd

    from randadv.stats import mean_se

    rng = np.random.default_rng(3)
    # 2000 means of 25 N(0, 1) values: mean_se estimates 1/5; its average over the
    # replicates is within a few of its own standard errors (~0.141/5/sqrt(2000)) of c4/5
    ses = [mean_se(rng.standard_normal(25)) for _ in range(2000)]
    c4 = 0.98964   # E s / sigma for n = 25 (sd of s / sigma: 0.1436)
    assert abs(np.mean(ses) - c4 / 5) < 4 * 0.1436 / 5 / math.sqrt(2000)
    assert math.isnan(mean_se([1.0])) and math.isnan(mean_se([]))
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.0, 0.0, 0.0]})
    se = mean_se(df)
    assert se["b"] == 0 and abs(se["a"] - 1 / math.sqrt(3)) < 1e-15
    assert mean_se(pd.DataFrame({"a": [1.0]})).isna().all()
