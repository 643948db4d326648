"""The kinds of claim the experiments check, each one function that decides the verdict from the
numbers and fills the claim's text with them: an experiment states what it claims (the
statement, the numbers, the templates of its measured text and criterion, the paper's scale) and
this module builds the :class:`Claim`.

The kinds: :func:`count` (x of n, all must pass), :func:`at_most` / :func:`at_least` (a statistic
against a bound), :func:`within` (a value within a tolerance of the theory's), :func:`exponent`
(a fitted exponent within k standard errors, plus an allowance, of the theory's), :func:`every`
(a check that must hold in every cell), :func:`trend` (any other yes / no, undecided where its
numbers are not finite) and :func:`reported` (a measurement with no criterion). The checks of
many cells at once are :func:`within_se` and :func:`below_binomial`; :func:`listing` writes a
table's rows into one line.

The ``measured`` and ``criterion`` texts are :meth:`str.format` templates: ``{name}`` (with a
format spec, ``{slope:+.3f}``) takes a number of the kind (named in each function's docstring)
or a keyword given to the call; a literal brace is written twice. A value is substituted as it
is, so free text (an error message) is safe as a keyword's value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from randadv.stats import binomial_se

__all__ = ["ANY_SIZE", "Claim", "at_least", "at_most", "below_binomial", "count", "every",
           "exponent", "listing", "reported", "trend", "within", "within_se"]


@dataclass(frozen=True)
class Claim:
    """One statement of a paper checked against the measurements.

    Paper:
        none (utility: a claim's ``statement`` cites the theorem or figure of its paper that
        it checks).

    Attributes:
        statement: the paper's words or a paraphrase, with its source; measured: the numbers;
        holds: True / False, None when undecided; criterion: how ``holds`` was decided;
        scale: the scale of the paper's claim; reached: whether the run reaches it;
        decidable: False for a claim reported only.

    Example:
        >>> from randadv.framework import Claim
        >>> c = Claim("Appendix D: the ratio is sqrt(k/d)", "0.50 vs 0.50", True,
        ...           criterion="|z| < 3", scale="d = 10^4")
        >>> c.holds, c.reached
        (True, True)
    """

    statement: str          # the paper's words or our paraphrase, with its source
    measured: str           # the numbers
    holds: bool | None      # None: not enough data to decide
    criterion: str = ""     # how "holds" was decided
    scale: str = ""         # the scale at which the paper makes the claim (required)
    reached: bool = True    # False: the run's grid does not reach that scale
    decidable: bool = True  # False: reported only (no criterion); never "undecided"

    def __post_init__(self) -> None:
        if not self.scale:
            raise ValueError(f"claim {self.statement[:60]!r} does not state the paper's scale")

    @property
    def verdict(self) -> str:
        """"holds" / "does not hold" / "undecided", or "not reached at this scale" where the
        profile's grid stops short of the paper's scale (the measured trend is still shown)."""
        if not self.decidable:
            return "reported (no criterion)"
        if not self.reached:
            return "not reached at this scale"
        return {True: "holds", False: "does not hold", None: "undecided"}[self.holds]


ANY_SIZE = "any size (an exact statement, or a check of the measurement itself)"
"""The ``scale=`` of a claim that holds at every size: an exact statement, or a check of the
measurement itself (every reported example verified).

Paper:
    none (utility: the scale of a claim that no grid can fall short of).

Example:
    >>> from randadv.framework import ANY_SIZE, claims
    >>> claims.count("every flip verified", 5, 5, "{passed} of {total}", "all",
    ...              scale=ANY_SIZE).verdict
    'holds'
"""


def _finite(*numbers: Any) -> bool:
    return all(v is not None and math.isfinite(float(v)) for v in numbers)


def _claim(statement: str, holds: bool | None, measured: str, criterion: str, scale: str,
           reached: bool, numbers: Mapping[str, Any]) -> Claim:
    return Claim(statement, measured.format(**numbers), None if holds is None else bool(holds),
                 criterion.format(**numbers), scale=scale, reached=bool(reached))


def count(statement: str, passed: int | float, total: int | float, measured: str,
          criterion: str, *, scale: str, reached: bool = True, **fields: Any) -> Claim:
    """"x of n": the claim holds when every one of ``total`` items passes.

    Paper:
        none (utility: the claims' layer; the statement cites the paper).

    Arguments:
        statement: the paper's words or a paraphrase, with its source (not a template).
        passed: how many items pass; total: how many were checked.
        measured: the template of the measured text; here it may name ``passed``, ``total``
            and ``failed`` (= total - passed).
        criterion: the template of how the verdict is decided.
        scale: the paper's scale of the claim; reached: whether the run reaches it.
        fields: further values the templates name.

    Returns:
        The :class:`Claim`: holds iff ``passed == total``.

    Example:
        >>> from randadv.framework.claims import count
        >>> c = count("every example verifies", 9, 10, "{passed} of {total}; {failed} failed",
        ...           "all verified", scale="any size")
        >>> c.measured, c.verdict
        ('9 of 10; 1 failed', 'does not hold')
    """
    return _claim(statement, passed == total, measured, criterion, scale, reached,
                  dict(fields, passed=passed, total=total, failed=total - passed))


def trend(statement: str, ok: Any, measured: str, criterion: str, *, scale: str,
          reached: bool = True, numbers: Iterable[Any] = (), decided: bool = True,
          **fields: Any) -> Claim:
    """A claim decided by one yes / no (a trend's direction, an order between cells): undecided
    where one of ``numbers`` is not finite.

    Paper:
        none (utility: the claims' layer; the statement cites the paper).

    Arguments:
        ok: whether the claim holds (anything ``bool`` reads).
        numbers: the numbers ``ok`` rests on; a NaN or None among them leaves it undecided.
        decided: False where the claim cannot be decided for another reason (too few cells).
        statement, measured, criterion, scale, reached, fields: as in :func:`count`.

    Returns:
        The :class:`Claim`.

    Example:
        >>> from randadv.framework.claims import trend
        >>> c = trend("f decreases with depth", 0.2 < 0.5, "{a:.1f} then {b:.1f}",
        ...           "last below first", scale="any depth", a=0.5, b=0.2)
        >>> c.measured, c.verdict
        ('0.5 then 0.2', 'holds')
        >>> trend("s", True, "m", "c", scale="any", numbers=[float("nan")]).verdict
        'undecided'
    """
    return _claim(statement, bool(ok) if decided and _finite(*numbers) else None, measured,
                  criterion, scale, reached, fields)


def at_most(statement: str, value: float, bound: float, measured: str, criterion: str, *,
            scale: str, reached: bool = True, **fields: Any) -> Claim:
    """A statistic (a largest deviation, a largest z) at most a bound; undecided where the
    statistic is NaN.

    Paper:
        none (utility: the claims' layer; the statement cites the paper).

    Arguments:
        value: the statistic; bound: its largest allowed value (``measured`` and
            ``criterion`` may name both).
        statement, measured, criterion, scale, reached, fields: as in :func:`count`.

    Returns:
        The :class:`Claim`: holds iff ``value <= bound``.

    Example:
        >>> from randadv.framework.claims import at_most
        >>> c = at_most("the means match", 2.5, 4.0, "largest z {value:.1f}",
        ...             "z <= {bound:g}", scale="any size")
        >>> c.measured, c.criterion, c.verdict
        ('largest z 2.5', 'z <= 4', 'holds')
    """
    return _bounded(statement, value <= bound, value, bound, measured, criterion, scale,
                    reached, fields)


def at_least(statement: str, value: float, bound: float, measured: str, criterion: str, *,
             scale: str, reached: bool = True, **fields: Any) -> Claim:
    """The mirror of :func:`at_most` (a smallest fraction, an R^2 at least ``bound``).

    Paper:
        none (utility: the claims' layer; the statement cites the paper).

    Arguments:
        statement, value, bound, measured, criterion, scale, reached, fields: as in
        :func:`at_most`.

    Returns:
        The :class:`Claim`: holds iff ``value >= bound``.

    Example:
        >>> from randadv.framework.claims import at_least
        >>> at_least("linear", 0.85, 0.9, "R^2 {value}", "R^2 >= {bound}", scale="x").verdict
        'does not hold'
    """
    return _bounded(statement, value >= bound, value, bound, measured, criterion, scale,
                    reached, fields)


def _bounded(statement: str, ok: bool, value: float, bound: float, measured: str,
             criterion: str, scale: str, reached: bool, fields: Mapping[str, Any]) -> Claim:
    return _claim(statement, ok if _finite(value) else None, measured, criterion, scale,
                  reached, dict(fields, value=value, bound=bound))


def within(statement: str, value: float, target: float, tol: float, measured: str,
           criterion: str, *, scale: str, reached: bool = True, **fields: Any) -> Claim:
    """A measured value within ``tol`` of the theory's ``target``; undecided where one of the
    three is NaN.

    Paper:
        none (utility: the claims' layer; the statement cites the paper).

    Arguments:
        value: the measurement; target: the theory's value; tol: the largest allowed
            ``|value - target|`` (the templates may name them and ``dev`` = value - target).
        statement, measured, criterion, scale, reached, fields: as in :func:`count`.

    Returns:
        The :class:`Claim`: holds iff ``|value - target| <= tol``.

    Example:
        >>> from randadv.framework.claims import within
        >>> c = within("the exponent is 1/2", 0.47, 0.5, 0.05, "exponent {value:.2f}",
        ...            "within {tol:g} of 1/2", scale="any size")
        >>> c.measured, c.verdict
        ('exponent 0.47', 'holds')
    """
    ok = abs(value - target) <= tol if _finite(value, target, tol) else None
    return _claim(statement, ok, measured, criterion, scale, reached,
                  dict(fields, value=value, target=target, tol=tol, dev=value - target))


def exponent(statement: str, slope: float, se: float, theory: float, measured: str,
             criterion: str, *, scale: str, k: float = 2.0, allow: float = 0.0,
             decided: bool = True, reached: bool = True, **fields: Any) -> Claim:
    """A fitted exponent (a log-log slope) within ``k`` standard errors, plus an allowance, of
    the theory's; undecided where the fit is not (``decided`` False: too few sizes or networks)
    or its slope or SE is not finite.

    Paper:
        none (utility: the claims' layer; the statement cites the paper).

    Arguments:
        slope: the fitted exponent; se: its standard error; theory: the theory's exponent.
        k: standard errors allowed; allow: a further allowance (a known finite-size
            correction); decided: False where the fit cannot decide (too few sizes or nets).
            The templates may name slope, se, theory, k, allow and ``z`` = (slope - theory)
            / se (NaN where se is not positive).
        statement, measured, criterion, scale, reached, fields: as in :func:`count`.

    Returns:
        The :class:`Claim`: holds iff
        ``|slope - theory| <= k se + allow``.

    Example:
        >>> from randadv.framework.claims import exponent
        >>> c = exponent("distance ~ n^(1/2)", 0.46, 0.03, 0.5,
        ...              "{slope:+.2f} +- {se:.2f} ({z:+.1f} SE)", "|b - 1/2| <= {k:g} SE",
        ...              scale="n up to 1e4")
        >>> c.measured, c.verdict
        ('+0.46 +- 0.03 (-1.3 SE)', 'holds')
    """
    z = (slope - theory) / se if se > 0 else math.nan
    ok = abs(slope - theory) <= k * se + allow if decided and _finite(slope, se) else None
    return _claim(statement, ok, measured, criterion, scale, reached,
                  dict(fields, slope=slope, se=se, theory=theory, z=z, k=k, allow=allow))


def every(statement: str, checks: Any, measured: str, criterion: str, *, scale: str,
          reached: bool = True, **fields: Any) -> Claim:
    """A check that must hold in every cell (every size, every grid point, every network).

    Paper:
        none (utility: the claims' layer; the statement cites the paper).

    Arguments:
        checks: one bool per cell (an array, a Series, a list); the templates may name
            ``cells`` (how many) and ``failed`` (how many fail).
        statement, measured, criterion, scale, reached, fields: as in :func:`count`.

    Returns:
        The :class:`Claim`: holds iff every check does; undecided
        where there is no cell.

    Example:
        >>> from randadv.framework.claims import every
        >>> c = every("accuracy > 98%", [True, False], "{failed} of {cells} below",
        ...           "every net", scale="the paper's nets")
        >>> c.measured, c.verdict
        ('1 of 2 below', 'does not hold')
    """
    ok = np.asarray(checks, dtype=bool)
    return _claim(statement, bool(ok.all()) if ok.size else None, measured, criterion, scale,
                  reached,
                  dict(fields, cells=int(ok.size), failed=int((~ok).sum())))


def reported(statement: str, measured: str, criterion: str, *, scale: str,
             **fields: Any) -> Claim:
    """A measurement reported with no criterion (its verdict reads "reported (no
    criterion)").

    Paper:
        none (utility: the claims' layer; the statement names what is measured).

    Arguments:
        statement: what is measured; criterion: why there is no criterion.
        measured, scale, fields: as in :func:`count`.

    Returns:
        The :class:`Claim`, not decidable.

    Example:
        >>> from randadv.framework.claims import reported
        >>> reported("gap", "median {m:.2f}", "reported", scale="small nets", m=0.0).verdict
        'reported (no criterion)'
    """
    return Claim(statement, measured.format(**fields), None, criterion.format(**fields),
                 scale=scale, decidable=False)


def within_se(values: Any, targets: Any, se: Any, k: float, allow: Any = 0.0) -> np.ndarray:
    """Cell by cell: ``|value - target| <= k se + allow`` (the cells' own standard errors).

    Paper:
        none (utility: the claims' layer).

    Arguments:
        values: the cells' measurements.
        targets: the theory's values (one, or one per cell).
        se: the cells' standard errors.
        k: standard errors allowed.
        allow: a further allowance (one, or one per cell).

    Returns:
        One bool per cell (an array).

    Example:
        >>> from randadv.framework.claims import within_se
        >>> within_se([1.0, 1.5], 1.1, [0.1, 0.1], k=2).tolist()
        [True, False]
    """
    v, t = np.asarray(values, float), np.asarray(targets, float)
    return np.abs(v - t) <= k * np.asarray(se, float) + np.asarray(allow, float)


def below_binomial(fractions: Any, levels: Any, n: Any, k: float = 2.0) -> np.ndarray:
    """Cell by cell: an empirical fraction at most its level plus ``k`` binomial standard
    errors, ``fraction <= level + k sqrt(level (1 - level) / n)`` (a bound P(...) <= level
    checked on n draws).

    Paper:
        none (utility: the claims' layer; the bounds are the papers', e.g. De Palma et al.
        2021, Corollary 1).

    Arguments:
        fractions: the measured fractions.
        levels: the bounds (one, or one per cell).
        n: the draws behind each fraction (one, or one per cell).
        k: standard errors allowed.

    Returns:
        One bool per cell (an array).

    Example:
        >>> from randadv.framework.claims import below_binomial
        >>> below_binomial([0.06, 0.2], 0.05, 100).tolist()
        [True, False]
    """
    lv = np.asarray(levels, float)
    return np.asarray(fractions, float) <= lv + k * np.asarray(binomial_se(lv, n), float)


def listing(rows: pd.DataFrame | Iterable[Mapping[str, Any]], template: str,
            sep: str = ", ") -> str:
    """The rows of a table written into one line: ``template`` filled with each row's columns,
    joined by ``sep``.

    Paper:
        none (utility: the claims' layer).

    Arguments:
        rows: a DataFrame, or mappings of column -> value.
        template: a :meth:`str.format` template naming the columns.
        sep: the separator.

    Returns:
        The line.

    Example:
        >>> import pandas as pd
        >>> from randadv.framework.claims import listing
        >>> listing(pd.DataFrame(dict(depth=[1, 4], frac=[0.5, 0.25])), "L={depth}: {frac:.0%}")
        'L=1: 50%, L=4: 25%'
    """
    items = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else rows
    return sep.join(template.format(**row) for row in items)
