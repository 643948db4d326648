"""The statistics every experiment's claims use: log-log slopes (with a bootstrap over
networks), Student-t critical values with a Bonferroni correction, binomial intervals, and the
sequential test of a claim decided in rounds.

Networks are the independent units throughout: inputs of one network are correlated, so
standard errors come from per-network summaries, never from pooled samples."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.stats

__all__ = ["binomial_interval", "binomial_se", "bonferroni_t", "bootstrap_median_slopes",
           "level_crossing", "loglog_fit", "loglog_slope", "mean_se", "percentile_fit",
           "sequential_level"]


def loglog_fit(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray
               ) -> tuple[float, float]:
    """Least-squares ``log y = a + b log x`` over the finite positive pairs; returns ``(b, a)``,
    NaN unless there are at least 2 such pairs at 2 distinct x.

    Paper:
        De Palma et al. 2021, Figures 1, 2 (distance vs n on log-log axes); Lazy training 2022
        ("Adversarial Robustness is at Odds with Lazy Training", NeurIPS 2022), Figures 2, 3.

    Arguments:
        x, y: the points (non-finite or non-positive pairs are left out).

    Returns:
        ``(slope b, intercept a)``.

    Example:
        >>> from randadv.stats import loglog_fit
        >>> b, a = loglog_fit([1, 4, 16], [2, 4, 8])      # y = 2 x^(1/2)
        >>> round(b, 6), round(a, 6)                        # a = log 2
        (0.5, 0.693147)
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if ok.sum() < 2 or len(np.unique(x[ok])) < 2:
        return math.nan, math.nan
    b, a = np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)
    return float(b), float(a)


def loglog_slope(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """The slope (fitted exponent) of :func:`loglog_fit`.

    Paper:
        De Palma et al. 2021, Remark 5 and Figures 1, 2 (the exponent of r_p ~ n^e).

    Arguments:
        x, y: as in :func:`loglog_fit`.

    Returns:
        The slope (NaN without two distinct valid x).

    Example:
        >>> from randadv.stats import loglog_slope
        >>> round(loglog_slope([10, 100, 1000], [1.0, 0.1, 0.01]), 6)
        -1.0
    """
    return loglog_fit(x, y)[0]


def bootstrap_median_slopes(cells: list[tuple[float, np.ndarray]], replicates: int = 400,
                            seed: int = 0) -> np.ndarray:
    """Slopes of log median vs log x when the networks of every cell are resampled with
    replacement (the bootstrap over networks of De Palma et al.'s Figure 1 fits).

    Arguments:
        cells: ``(x, values)`` pairs, ``values`` of shape (nets, points); +inf where a point has
            no finite value (it counts in the median as the largest).
        replicates: bootstrap resamples.
        seed: seed of the private generator.

    Returns:
        the slopes of the replicates whose medians are all finite and positive (empty with
        fewer than 2 cells); their standard deviation is the slope's standard error.

    Paper:
        De Palma et al. 2021, Figures 1, 2 (the slope of the median distance vs n).

    Example:
        >>> import numpy as np
        >>> from randadv.stats import bootstrap_median_slopes
        >>> rng = np.random.default_rng(0)
        >>> cells = [(n, np.sqrt(n) * rng.uniform(0.9, 1.1, (20, 5))) for n in (10, 100, 1000)]
        >>> s = bootstrap_median_slopes(cells, replicates=200)
        >>> s.shape, bool(abs(s.mean() - 0.5) < 0.02)   # median ~ sqrt(n): slope 1/2
        ((200,), True)
    """
    rng = np.random.default_rng(seed)
    logn = np.log([c[0] for c in cells])
    meds = np.empty((replicates, len(cells)))
    for j, (_, v) in enumerate(cells):
        idx = rng.integers(0, v.shape[0], size=(replicates, v.shape[0]))
        meds[:, j] = np.quantile(v[idx].reshape(replicates, -1), 0.5, axis=1,
                                 method="inverted_cdf")
    ok = np.isfinite(meds).all(1) & (meds > 0).all(1)
    if ok.sum() == 0 or len(cells) < 2:
        return np.array([])
    ly = np.log(meds[ok])
    xc = logn - logn.mean()
    return (ly - ly.mean(1, keepdims=True)) @ xc / (xc @ xc)


def bonferroni_t(n_tests: int, n_nets: float, alpha: float = 0.05) -> float:
    """Two-sided critical value of the largest |mean - theory| / SE over ``n_tests`` cells when
    the theory holds: each ratio, with the SE from ``n_nets`` per-network means, is Student-t
    with ``n_nets - 1`` degrees of freedom; Bonferroni over the cells gives family-wise level
    ``alpha``. ``n_nets = math.inf`` is the normal limit (z-tests with a known or exact SE):
    the normal quantile itself.

    Paper:
        Bubeck et al. 2021, Section 4 and Figures 1-3 (measured means against the theory's,
        cell by cell).

    Arguments:
        n_tests: number of cells; n_nets: networks per cell (``math.inf``: normal tests);
        alpha: family-wise level.

    Returns:
        The critical value.

    Example:
        >>> from randadv.stats import bonferroni_t
        >>> round(bonferroni_t(1, 1_000_000), 2)   # the normal 97.5% quantile
        1.96
        >>> import math
        >>> round(bonferroni_t(10, math.inf, alpha=1e-3), 2)   # 10 normal tests at 1e-3
        3.89
    """
    q = 1 - alpha / (2 * max(n_tests, 1))
    if math.isinf(n_nets):
        return float(scipy.stats.norm.ppf(q))
    return float(scipy.stats.t.ppf(q, max(n_nets - 1, 1)))


def mean_se(values: Sequence[float] | np.ndarray | pd.Series | pd.DataFrame
            ) -> float | pd.Series:
    """Standard error of a mean over independent units (per-network summaries):
    ``std(ddof=1) / sqrt(n)``; NaN with fewer than 2 values. A DataFrame gives one per column.

    Paper:
        none (utility: the standard errors behind every claim's "within a few standard
        errors" criterion).

    Arguments:
        values: one value per independent unit (a sequence, array, Series or DataFrame).

    Returns:
        The standard error (a float; a Series with one per column for a DataFrame).

    Example:
        >>> from randadv.stats import mean_se
        >>> round(float(mean_se([1.0, 2.0, 3.0])), 6)     # std 1, n 3: 1 / sqrt(3)
        0.57735
    """
    v = values if isinstance(values, pd.Series | pd.DataFrame) else pd.Series(values, dtype=float)
    if len(v) < 2:
        return v.mean() * math.nan if isinstance(v, pd.DataFrame) else math.nan
    return v.std(ddof=1) / math.sqrt(len(v))


def binomial_se(p: float | np.ndarray, n: int | np.ndarray) -> float | np.ndarray:
    """Standard error ``sqrt(p (1 - p) / n)`` of a fraction estimated from n trials.

    Paper:
        Bubeck et al. 2021, Section 4 (the fraction of flipped signs).

    Arguments:
        p: the fraction(s); n: trials.

    Returns:
        The standard error (float or array).

    Example:
        >>> from randadv.stats import binomial_se
        >>> round(float(binomial_se(0.5, 100)), 6)
        0.05
    """
    return np.sqrt(np.asarray(p, float) * (1 - np.asarray(p, float)) / np.asarray(n, float))


def binomial_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval of a binomial proportion (k successes of n), exact coverage
    >= ``level``.

    Paper:
        Bubeck et al. 2021, Section 4 (the fraction of flipped signs).

    Arguments:
        k: successes; n: trials; level: the coverage.

    Returns:
        ``(lower, upper)``; ``(0, 1)`` when ``n <= 0``.

    Example:
        >>> from randadv.stats import binomial_interval
        >>> binomial_interval(100, 100)[0] > 0.96   # all 100 flipped: P >= 0.964 at 95%
        True
    """
    if n <= 0:
        return 0.0, 1.0
    a = 1 - level
    lo = 0.0 if k == 0 else float(scipy.stats.beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(scipy.stats.beta.ppf(1 - a / 2, k + 1, n - k))
    return lo, hi


def sequential_level(alpha: float, max_rounds: int) -> float:
    """Per-look level of a claim checked after each of at most ``max_rounds`` rounds: Bonferroni
    over the looks (``alpha / max_rounds``), so the chance that any look decides wrongly is at
    most ``alpha`` whatever the stopping rule.

    Paper:
        none (utility: the claims' sequential stopping, issue 18's stats module).

    Arguments:
        alpha: the overall level; max_rounds: the most looks.

    Returns:
        ``alpha / max_rounds``.

    Example:
        >>> from randadv.stats import sequential_level
        >>> sequential_level(0.05, 5)
        0.01
    """
    return alpha / max(int(max_rounds), 1)


def percentile_fit(distances: Sequence[float] | np.ndarray, upto: float = 0.25
                   ) -> tuple[float, float, float]:
    """The line through the low percentiles of a distance distribution: sort the distances
    (+inf where no adversarial example was found: they sit at the top), percentiles
    ``q = (i + 1/2) / N``, least squares ``distance = a + b q`` over ``q <= upto``.

    Paper:
        De Palma, Kiani, Lloyd 2021, Figure 3 (distance against percentile, trained and random
        networks).

    Arguments:
        distances: the distances (+inf allowed).
        upto: the highest percentile fitted.

    Returns:
        ``(a, b, R^2)``; NaNs with fewer than 3 distances or 2 finite fitted ones.

    Example:
        >>> from randadv.stats import percentile_fit
        >>> a, b, r2 = percentile_fit([1.0 + 2.0 * (i + 0.5) / 40 for i in range(40)])
        >>> round(a, 6), round(b, 6), round(r2, 6)
        (1.0, 2.0, 1.0)
    """
    d = np.sort(np.asarray(distances, float))
    if len(d) < 3:
        return float("nan"), float("nan"), float("nan")
    q = (np.arange(len(d)) + 0.5) / len(d)
    sel = (q <= upto) & np.isfinite(d)
    if sel.sum() < 2:
        return float("nan"), float("nan"), float("nan")
    b, a = np.polyfit(q[sel], d[sel], 1)
    resid = d[sel] - (a + b * q[sel])
    ss = float(((d[sel] - d[sel].mean()) ** 2).sum())
    return float(a), float(b), float(1 - (resid ** 2).sum() / ss) if ss > 0 else float("nan")


def level_crossing(xs: Sequence[float] | np.ndarray, ys: Sequence[float] | np.ndarray,
                   level: float = 0.5, decreasing: bool = True) -> float:
    """Where a curve first crosses ``level``: sort by x, find the first segment where y goes
    from ``>= level`` to ``< level`` (from ``<=`` to ``>`` when not ``decreasing``), and
    interpolate linearly in y against log x.

    Paper:
        Wang, Ullah, Mianjy, Arora 2022, Figure 4 (the perturbation budget where robust accuracy
        crosses 50%, against the input dimension and the width).

    Arguments:
        xs: the positive abscissae; ys: the curve's values there.
        level: the level crossed.
        decreasing: look for a downward crossing (True) or an upward one.

    Returns:
        The x of the first crossing, NaN where there is none.

    Example:
        >>> from randadv.stats import level_crossing
        >>> round(level_crossing([1, 10, 100], [1.0, 0.75, 0.25]), 6)    # halfway, log scale
        31.622777
    """
    order = np.argsort(xs)
    xs, ys = np.asarray(xs, float)[order], np.asarray(ys, float)[order]
    s = 1.0 if decreasing else -1.0
    for i in range(len(xs) - 1):
        a, b = s * (ys[i] - level), s * (ys[i + 1] - level)
        if a >= 0 > b:
            w = a / (a - b)
            return float(np.exp((1 - w) * np.log(xs[i]) + w * np.log(xs[i + 1])))
    return float("nan")

