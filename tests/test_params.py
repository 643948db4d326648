"""Typed experiment parameters (``base.Param``): profiles as overrides of the declared defaults,
``param_help`` from the declarations, and each check a type implies, with its message."""

import pytest

from randadv.errors import ConfigError
from randadv.framework import Experiment, Param


class Toy(Experiment):
    name = ""   # not registered
    parameters = dict(
        n=Param(3, "a count", min=1, why="standard errors"),
        rate=Param(0.5, "a probability", gt=0, lt=1),
        sizes=Param([4, 8], "sides", min=4, max=512, unique=True),
        kind=Param("a", "a kind", choices=("a", "b")),
        kinds=Param(["a"], "kinds", choices=("a", "b")),
        nets=Param(2),
    )
    profiles = {"smoke": dict(n=1), "quick": {}, "paper": dict(sizes=[8, 16], nets=5)}


def test_profiles_are_the_defaults_with_overrides():
    t = Toy()
    assert t.profiles["quick"] == dict(n=3, rate=0.5, sizes=[4, 8], kind="a", kinds=["a"],
                                       nets=2)
    assert t.profiles["smoke"]["n"] == 1 and t.profiles["smoke"]["sizes"] == [4, 8]
    assert t.profiles["paper"]["sizes"] == [8, 16] and t.profiles["paper"]["n"] == 3
    assert t.param_help["n"] == "a count"
    assert t.param_help["nets"].startswith("number of random networks")   # COMMON_HELP


def test_profiles_do_not_share_mutable_defaults():
    t = Toy()
    p = t.params("quick")
    p["sizes"].append(99)
    assert t.params("quick")["sizes"] == [4, 8]


@pytest.mark.parametrize("key, text, needle", [
    ("n", "0", r"n must be >= 1, got 0 \(standard errors\)"),
    ("rate", "1", r"rate must be in \(0, 1\), got 1.0"),
    ("rate", "0", r"rate must be in \(0, 1\)"),
    ("sizes", "2,8", r"sizes must be in \[4, 512\], got \[2, 8\]"),
    ("sizes", "600", r"sizes must be in \[4, 512\]"),
    ("sizes", "8,8", r"sizes repeat: \[8, 8\]"),
    ("kind", "c", "unknown kind 'c'; known: a, b"),
    ("kinds", "a,c", r"unknown kinds \['c'\]; known: a, b"),
])
def test_checks_from_the_declaration(key, text, needle):
    with pytest.raises(ConfigError, match=needle):
        Toy().params("quick", {key: text})


def test_valid_overrides_pass():
    p = Toy().params("quick", {"n": "1", "rate": "0.99", "sizes": "4,512", "kinds": "b,a"})
    assert (p["n"], p["rate"], p["sizes"], p["kinds"]) == (1, 0.99, [4, 512], ["b", "a"])


def test_undeclared_override_is_refused_at_definition():
    with pytest.raises(TypeError, match=r"profile 'smoke' sets undeclared \['m'\]"):
        class Bad(Experiment):
            parameters = dict(n=Param(1, "a count"))
            profiles = {"smoke": dict(m=2)}


def test_bad_profile_value_is_caught():
    class Empty(Experiment):
        parameters = dict(ks=Param([1], "widths", min=1))
        profiles = {"quick": dict(ks=[])}

    with pytest.raises(ConfigError, match="ks must be a non-empty list"):
        Empty().params("quick")


# ---------------------------------------------------------------------- records
def test_columns_come_from_the_record_type():
    from typing import TypedDict

    from randadv.framework.params import record_columns

    Row = TypedDict("Row", {"d": int, "eta": float, "flipped": bool, "kind": str})

    class WithRecord(Experiment):
        record = Row

    assert WithRecord.columns == (("d", "int"), ("eta", "float"), ("flipped", "bool"),
                                  ("kind", "str"))
    with pytest.raises(TypeError, match="not int, float, str or bool"):
        record_columns(TypedDict("Bad", {"x": list}))


def test_store_refuses_records_of_another_shape(tmp_path):
    from randadv.errors import StoreError
    from randadv.runner.store import ResultStore

    store = ResultStore(tmp_path, "toy", {"a": 1}, [("n", "int"), ("v", "float")])
    try:
        store.write_unit("u0", 0, {"n": 0}, [dict(n=0, v=1.0)], 0.1)
        with pytest.raises(StoreError, match=r"missing \['v'\], extra \['w'\]"):
            store.write_unit("u1", 1, {"n": 1}, [dict(n=1, w=2.0)], 0.1)
        assert store.done_keys() == {"u0"}     # nothing of the refused unit was stored
    finally:
        store.close()
