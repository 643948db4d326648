"""Property-based tests of the ``--set key=value`` parser (cli.parse_sets + base.parse_value):
round trips of every value type, and any text either parses or raises ConfigError (never
another exception)."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from randadv.cli import parse_sets
from randadv.errors import ConfigError
from randadv.framework.params import parse_value

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEFAULTS = [3, 2.5, True, "relu", [1, 2], [0.5], ["relu"], [True], []]


@FAST
@given(st.integers(min_value=-10**15, max_value=10**15))
def test_ints_round_trip(n):
    assert parse_value("n", str(n), 1) == n
    assert parse_value("n", f" {n} ", 1) == n


@FAST
@given(st.integers(min_value=-10**6, max_value=10**6))
def test_integral_floats_are_ints(n):
    assert parse_value("n", f"{float(n)}", 1) == n
    assert parse_value("n", f"{n:e}", 1) == n


@FAST
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_round_trip(x):
    assert parse_value("x", repr(x), 1.0) == x


@FAST
@given(st.lists(st.integers(min_value=-10**9, max_value=10**9), min_size=1, max_size=8),
       st.booleans())
def test_int_lists_round_trip(xs, brackets):
    text = ",".join(map(str, xs))
    assert parse_value("d", f"[{text}]" if brackets else text, [10]) == xs


@FAST
@given(st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), min_size=1,
                max_size=5))
def test_str_lists_round_trip(xs):
    assert parse_value("activation", ",".join(xs), ["relu"]) == xs


@FAST
@given(st.text(max_size=30), st.sampled_from(DEFAULTS))
def test_any_text_parses_or_raises_config_error(text, default):
    try:
        value = parse_value("key", text, default)
    except ConfigError as e:
        assert "\n" not in str(e) and "key" in str(e)
        return
    if isinstance(default, bool):
        assert isinstance(value, bool)
    elif isinstance(default, int):
        assert isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        assert isinstance(value, float) and math.isfinite(value)
    elif isinstance(default, list):
        assert isinstance(value, list) and value


@pytest.mark.parametrize("text, default, needle", [
    ("", 1, "empty value"), ("  ", [1], "empty value"), ("1.5", 1, "expected an integer"),
    ("nan", 1, "expected an integer"), ("1e400", 1, "expected an integer"),
    ("1e30", 1, "expected an integer"), ("inf", 1.0, "finite"), ("nan", 1.0, "finite"),
    ("x", 1.0, "expected a number"), ("maybe", True, "true or false"), (",", [1], "empty list"),
    ("1,x", [1], "expected an integer"), ("9" * 5000, 1, "expected an integer"),
])
def test_bad_values_name_the_problem(text, default, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_value("key", text, default)


@FAST
@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True),
                       st.text(max_size=12), max_size=5))
def test_parse_sets_round_trip(pairs):
    assert parse_sets([f"{k}={v}" for k, v in pairs.items()]) == pairs


@FAST
@given(st.lists(st.text(max_size=15), max_size=4))
def test_parse_sets_never_crashes(pairs):
    try:
        out = parse_sets(pairs)
    except ConfigError as e:
        assert "\n" not in str(e).strip() or "--set" in str(e)
        return
    assert all(k.isidentifier() for k in out)


@pytest.mark.parametrize("pairs, needle", [
    (["nets"], "malformed --set 'nets'"), (["=3"], "malformed"), ([" =3"], "malformed"),
    (["a b=1"], "malformed"), (["nets=1", "nets=2"], "given twice"),
])
def test_parse_sets_errors(pairs, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_sets(pairs)
