"""Extending a run by a larger network count (nets / seeds / runs) in the same --out folder:
the stored units are kept and moved to their indices in the larger run, so the folder equals a
fresh run with that count; any other change of the configuration is still refused."""

from __future__ import annotations

import ast
import json
import sqlite3
from pathlib import Path

import pytest
from test_runner_helpers import EXP, export_bytes, invoke

import randadv.experiments as experiments_pkg
from randadv.errors import StoreError
from randadv.experiments import get_experiment
from randadv.runner.store import ResultStore

SMALL = ["--set", "depth=1", "--set", "k=20,100", "--quiet"]
COLUMNS = [("net", "int"), ("v", "float")]


def _run(out: Path, nets: int, *extra: str):
    return invoke("run", EXP, "--profile", "smoke", *SMALL, "--set", "d=20",
                  "--set", f"nets={nets}", *extra, "--out", str(out))


def _config(nets: int, **other) -> dict:
    return {"experiment": "demo", "params": {"nets": nets, "d": 10, **other}, "seed": 0}


def test_a_larger_count_extends_the_run_to_the_bytes_of_a_fresh_one(tmp_path):
    small, fresh = tmp_path / "small", tmp_path / "fresh"
    assert _run(small, 2).exit_code == 0
    res = _run(small, 3)
    assert res.exit_code == 0, res.output
    assert _run(fresh, 3).exit_code == 0
    assert export_bytes(small) == export_bytes(fresh)
    log = (small / "run.log").read_text()
    assert "run extended: nets 2 -> 3" in log
    con = sqlite3.connect(f"file:{small / 'results.sqlite'}?mode=ro", uri=True)
    history = json.loads(con.execute("SELECT value FROM meta WHERE key = 'extended'").fetchone()[0])
    units = con.execute("SELECT COUNT(*) FROM units").fetchone()[0]
    con.close()
    assert [(h["param"], h["stored"], h["now"]) for h in history] == [("nets", 2, 3)]
    assert units == 2 * 3          # two cells (k = 20, 100) x three networks


@pytest.mark.parametrize("change", [["--set", "nets=1", "--set", "d=20"],
                                    ["--set", "nets=3", "--set", "d=30"],
                                    ["--set", "nets=3", "--set", "d=20", "--seed", "1"]])
def test_a_smaller_count_or_any_other_change_is_still_refused(tmp_path, change):
    out = tmp_path / "run"
    assert _run(out, 2).exit_code == 0
    before = export_bytes(out)
    res = invoke("run", EXP, "--profile", "smoke", *SMALL, *change, "--out", str(out))
    assert res.exit_code != 0
    assert "another configuration" in res.output and "a run extends only by a larger nets" \
        in res.output
    assert export_bytes(out) == before


def test_store_extension_moves_units_to_their_new_indices_in_one_step(tmp_path):
    with ResultStore(tmp_path, "demo", _config(2), COLUMNS) as s:
        for i in range(2):   # cells a, b x nets 0, 1 -> indices 0..3
            for cell, idx in (("a", 2 * 0 + i), ("b", 2 * 1 + i)):
                s.write_unit(f"{cell}{i}", idx, {"cell": cell, "net": i},
                             [{"net": i, "v": float(idx)}], 0.1)
    new_index = {f"{c}{i}": 3 * j + i for j, c in enumerate("ab") for i in range(3)}
    with pytest.raises(StoreError, match="another configuration"):
        ResultStore(tmp_path, "demo", _config(3), COLUMNS)          # not extendable
    with ResultStore(tmp_path, "demo", _config(3), COLUMNS, extendable=("nets",),
                     unit_index=new_index) as s:
        assert s.extended == ("nets", 2, 3) and s.config["params"]["nets"] == 3
        table = s.units_table()
        assert dict(zip(table.key, table.idx, strict=True)) == {
            k: new_index[k] for k in ("a0", "a1", "b0", "b1")}
        recs = s.records(unit_index=True)
        # each record moved with its unit (v is the old index)
        assert sorted(zip(recs.unit_idx, recs.v, strict=True)) == [
            (0, 0.0), (1, 1.0), (3, 2.0), (4, 3.0)]
    with ResultStore(tmp_path, "demo", _config(3), COLUMNS) as s:    # verified on reopening
        assert s.extended is None and len(s.records()) == 4


def test_store_extension_refuses_a_stored_unit_the_larger_run_lacks(tmp_path):
    with ResultStore(tmp_path, "demo", _config(2), COLUMNS) as s:
        s.write_unit("x0", 0, {"net": 0}, [{"net": 0, "v": 1.0}], 0.1)
    with pytest.raises(StoreError, match="not a unit of the run"):
        ResultStore(tmp_path, "demo", _config(3), COLUMNS, extendable=("nets",),
                    unit_index={"a0": 0})
    with ResultStore(tmp_path, "demo", _config(2), COLUMNS) as s:    # untouched
        assert s.config["params"]["nets"] == 2 and s.units_table().idx.tolist() == [0]


COUNTS = {"nets", "seeds", "runs"}
READERS = {"units", "check_claims", "summary_table", "draw_figures", "fit_standard_errors",
           "validate", "unit_cost"}


def test_no_experiment_reads_its_network_count_while_computing_a_unit():
    """What makes an extension equal a fresh run: a unit's records do not depend on how many
    networks the run has. The count may be read where units are listed, costed, validated or
    summarised, never in the work (run_unit and what it calls)."""
    bad = []
    for path in sorted(Path(experiments_pkg.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef) or fn.name in READERS:
                continue
            inner = {id(n) for g in ast.walk(fn) if isinstance(g, ast.FunctionDef)
                     and g is not fn for n in ast.walk(g)}
            for node in ast.walk(fn):
                if (isinstance(node, ast.Constant) and node.value in COUNTS
                        and id(node) not in inner):
                    bad.append(f"{path.name}:{node.lineno} {fn.name} reads {node.value!r}")
    assert not bad, "\n".join(bad)


def test_dry_run_of_a_larger_count_counts_the_stored_units_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    assert _run(out, 2).exit_code == 0
    before = export_bytes(out)
    res = _run(out, 3, "--dry-run", "--calibrate", "0")
    assert res.exit_code == 0, res.output
    assert "6 units, 2 to run (4 already stored" in res.output
    with ResultStore(out, EXP, None, get_experiment(EXP).columns, create=False) as s:
        assert s.config["params"]["nets"] == 2
    assert export_bytes(out) == before
    res = invoke("run", EXP, "--profile", "smoke", *SMALL, "--set", "d=30", "--set", "nets=3",
                 "--dry-run", "--calibrate", "0", "--out", str(out))
    assert res.exit_code == 2 and "another configuration" in res.output
