"""``two-layer-asymptotics`` end to end on its smoke profile, its records' columns (those of
``two-layer-single-step``), unit determinism and chunking, and bad --set values."""

import pytest

from randadv.errors import ConfigError
from randadv.experiments.registry import get_experiment
from randadv.framework import UnitContext

EXP = "two-layer-asymptotics"


def test_smoke_profile_end_to_end(smoke_run):
    exp, params, summary, df, claims = smoke_run(EXP)
    assert len(df) == len(exp.cells(params)) * params["pairs"]
    t = exp.summary_table(df, params)
    assert len(t) == len(exp.cells(params))
    assert len(summary.figures) == 2 and len(claims) >= 3
    # pairs are indexed 0..pairs-1 in every cell, each once
    assert (df.groupby(["activation", "d", "k"]).net.nunique() == params["pairs"]).all()


def test_columns_are_those_of_two_layer_single_step():
    ours = dict(get_experiment(EXP).columns)
    theirs = dict(get_experiment("two-layer-single-step").columns)
    assert ours == theirs


def test_unit_is_deterministic(unit_twice):
    exp, params, unit, a = unit_twice(EXP)
    assert len(a) == params["chunk"]
    assert all(set(r) == {c for c, _ in exp.columns} for r in a)
    c = exp.run_unit(unit, params, UnitContext(seed=4))
    assert [r["f_x"] for r in c] != [r["f_x"] for r in a]


def test_records_do_not_depend_on_the_chunking():
    exp = get_experiment(EXP)
    one = exp.params("smoke", {"pairs": "6", "chunk": "6", "d": "100", "k": "50"})
    three = exp.params("smoke", {"pairs": "6", "chunk": "2", "d": "100", "k": "50"})
    ctx = UnitContext(seed=0)
    a = [r for u in exp.units(one) for r in exp.run_unit(u, one, ctx)]
    b = [r for u in exp.units(three) for r in exp.run_unit(u, three, ctx)]
    assert len(exp.units(three)) == 3 and a == b


def test_sizes_beyond_materialised_nets_run():
    exp = get_experiment(EXP)
    p = exp.params("smoke", {"d": "1000000000", "k": "200000", "pairs": "2", "chunk": "2"})
    (unit,) = exp.units(p)
    recs = exp.run_unit(unit, p, UnitContext(seed=0))
    assert all(r["flipped"] and 0 < abs(r["eta"]) < 20 for r in recs)
    assert exp.unit_memory(unit, p) > 160 * 200_000


@pytest.mark.parametrize("key, value", [
    ("d", "0"), ("k", "0"), ("k", "2000000000"), ("pairs", "1"), ("chunk", "0"),
    ("max_eta", "0"), ("output", "uniform"), ("activation", "swish"), ("no_such_key", "1"),
])
def test_bad_set_values_raise_config_error(key, value):
    with pytest.raises(ConfigError):
        get_experiment(EXP).params("smoke", {key: value})
