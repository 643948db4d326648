"""The results store against damaged files: truncated, random bytes in the middle, one stored
value altered (only the per-unit checksum can see it). Every command refuses with one line and
exit code 2 and leaves the file as it is, or (damage in unused space) exports the same bytes."""

from __future__ import annotations

import random
import shutil
import sqlite3
import struct

import pytest
from test_runner_helpers import EXP, export_bytes, invoke

from randadv.errors import StoreError
from randadv.experiments.registry import get_experiment
from randadv.runner.run import run_experiment
from randadv.runner.store import ResultStore

ARGS = ["--profile", "smoke", "--set", "depth=1", "--set", "nets=2"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    out = tmp_path_factory.mktemp("pristine")
    res = invoke("run", EXP, *ARGS, "--out", str(out), "--quiet")
    assert res.exit_code == 0, res.output
    assert not (out / "results.sqlite-wal").exists()   # checkpointed at close
    return out, export_bytes(out)


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst / "results.sqlite"


def _refused_or_identical(out, db, good_export):
    before = db.read_bytes()
    outcomes = []
    for args in (["export", EXP, "--out", str(out)], ["report", EXP, "--out", str(out)],
                 ["run", EXP, *ARGS, "--out", str(out), "--quiet"]):
        res = invoke(*args)
        if res.exit_code == 2:
            lines = res.output.strip().splitlines()
            assert len(lines) == 1 and "corrupted" in lines[0], res.output
            assert str(db) in lines[0]
            outcomes.append("refused")
        else:
            assert res.exit_code == 0, res.output
            if args[0] == "export":
                assert res.output.encode() == good_export
            outcomes.append("ok")
        assert db.read_bytes() == before, f"{args[0]} changed the damaged file"
    return outcomes


def test_truncated_store_is_refused_and_left_as_is(pristine, tmp_path):
    out, good = pristine
    for frac in (0.3, 0.7, 0.95):
        dst = tmp_path / f"t{frac}"
        db = _copy(out, dst)
        data = db.read_bytes()
        db.write_bytes(data[:int(len(data) * frac) // 512 * 512 + 100])
        assert _refused_or_identical(dst, db, good) == ["refused"] * 3


@pytest.mark.parametrize("seed", range(6))
def test_random_bytes_in_the_middle_never_give_wrong_results(pristine, tmp_path, seed):
    out, good = pristine
    db = _copy(out, tmp_path / "o")
    data = bytearray(db.read_bytes())
    rng = random.Random(seed)
    at = rng.randrange(len(data) // 4, 3 * len(data) // 4)
    data[at:at + 64] = rng.randbytes(64)
    db.write_bytes(bytes(data))
    outcomes = _refused_or_identical(tmp_path / "o", db, good)
    assert len(set(outcomes)) == 1   # every command agrees


def test_one_altered_value_is_caught_by_the_checksum(pristine, tmp_path):
    out, good = pristine
    db = _copy(out, tmp_path / "o")
    con = sqlite3.connect(db)
    (value,) = con.execute("SELECT grad_norm FROM records WHERE unit_idx = 1 AND row = 3"
                           ).fetchone()
    con.close()
    data = bytearray(db.read_bytes())
    packed = struct.pack(">d", value)     # SQLite stores REAL big-endian
    assert data.count(packed) == 1
    at = data.index(packed)
    data[at + 7] ^= 1                     # the last bit of the mantissa
    db.write_bytes(bytes(data))
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert con.execute("PRAGMA quick_check").fetchone()[0] == "ok"   # SQLite sees nothing
    con.close()
    assert _refused_or_identical(tmp_path / "o", db, good) == ["refused"] * 3
    res = invoke("export", EXP, "--out", str(tmp_path / "o"))
    assert "records of unit 1 do not match their checksum" in res.output


def test_store_refuses_duplicate_units_and_keeps_the_first(tmp_path):
    exp = get_experiment(EXP)
    params = exp.params("smoke", {"depth": "1", "nets": "1"})
    run_experiment(exp, "smoke", params, out=tmp_path, quiet=True, max_units=1)
    store = ResultStore(tmp_path, EXP, None, exp.columns, create=False)
    try:
        unit = store.units_table().iloc[0]
        with pytest.raises(StoreError, match="already stored"):
            store.write_unit(unit.key, int(unit.idx), {}, [], 0.0)
        assert len(store.units_table()) == 1 and len(store.records()) == 10
    finally:
        store.close()


def test_store_as_context_manager_closes_on_exit_and_on_error(tmp_path):
    columns = [("k", "int")]
    with ResultStore(tmp_path, "demo", {"seed": 0}, columns) as store:
        store.write_unit("k=1", 0, {"k": 1}, [{"k": 1}], 0.1)
    assert store.con is None
    with pytest.raises(StoreError, match="already stored"):
        with ResultStore(tmp_path, "demo", None, columns, create=False) as again:
            assert again.done_keys() == {"k=1"}
            again.write_unit("k=1", 0, {"k": 1}, [{"k": 1}], 0.1)
    assert again.con is None


def test_non_writable_or_impossible_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out in (blocker / "sub", blocker):
        res = invoke("run", EXP, *ARGS, "--out", str(out), "--quiet")
        assert res.exit_code == 2, res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and "output folder" in lines[0] and "not usable" in lines[0]
    assert blocker.read_text() == "x"


def test_read_only_folder_is_refused(tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        res = invoke("run", EXP, *ARGS, "--out", str(ro), "--quiet")
        assert res.exit_code == 2 and "not usable" in res.output
    finally:
        ro.chmod(0o700)


def test_store_of_other_record_columns_is_refused_by_name(tmp_path):
    """A store written when the experiment recorded other columns (an earlier randadv) is
    refused with a message naming the columns, not called corrupted."""
    old = [("k", "int"), ("eta", "float")]
    store = ResultStore(tmp_path, "demo", {"seed": 0}, old)
    store.close()
    with pytest.raises(StoreError, match=r"other columns.*new: \['eta_boundary'\]") as e:
        ResultStore(tmp_path, "demo", {"seed": 0}, [*old, ("eta_boundary", "float")])
    assert "corrupted" not in str(e.value)
    ResultStore(tmp_path, "demo", {"seed": 0}, old).close()     # the same columns still open
