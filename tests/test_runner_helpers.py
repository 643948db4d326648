"""Shared helpers of the runner tests (imported by test_ray, test_durability, test_determinism);
also small unit tests of the executor spec, the lock probe and the cost model."""

from __future__ import annotations

import io
import os
import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from randadv.cli import main
from randadv.errors import ConfigError
from randadv.framework import Experiment, UnitContext
from randadv.runner.cost import check_memory, fmt_bytes, fmt_seconds, pick_units
from randadv.runner.executors import ExecutorSpec, exp_ref
from randadv.runner.lock import RunLock, lock_holder

EXP = "two-layer-single-step"
# 20 units of ~10-40 ms: d, k in {20, 100}, depth 1, 5 networks x 10 inputs
SMALL = ["--set", "depth=1", "--set", "nets=5"]


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def export_bytes(out: Path) -> bytes:
    res = invoke("export", EXP, "--out", str(out))
    assert res.exit_code == 0, res.output
    return res.output.encode()


def n_units(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM units").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def store_consistent(db: Path) -> tuple[int, int]:
    """(units, records) of a store that passes quick_check and whose units all hold exactly
    their records (no partial unit, no orphan record)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        assert con.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        units = con.execute("SELECT COUNT(*), COALESCE(SUM(n_records), 0) FROM units").fetchone()
        recs = con.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        orphans = con.execute("SELECT COUNT(*) FROM records WHERE unit_idx NOT IN "
                              "(SELECT idx FROM units)").fetchone()[0]
    finally:
        con.close()
    assert units[1] == recs and orphans == 0, (units, recs, orphans)
    return units[0], recs


class Squares(Experiment):
    """A tiny deterministic experiment for executor tests (not registered)."""

    name = "test-squares"
    profiles = {"smoke": dict(n=[1, 2, 3, 4], crash_dir="", crash_idx=-1, mem=0)}
    default_profile = "smoke"
    columns = (("n", "int"), ("sq", "float"), ("pid", "int"))

    def units(self, p):
        return [dict(n=n) for n in p["n"]]

    def run_unit(self, unit, p, ctx: UnitContext):
        if unit["n"] == p["crash_idx"] and p["crash_dir"]:
            marker = Path(p["crash_dir"]) / f"crashed-{unit['n']}"
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                os._exit(1)   # the worker dies mid-unit
        return [dict(n=unit["n"], sq=float(unit["n"]) ** 2, pid=0)]

    def unit_cost(self, unit, p):
        return float(unit["n"])

    def unit_memory(self, unit, p):
        return p["mem"] or None


def test_executor_spec_rejects_bad_values():
    for kw, needle in [(dict(kind="slurm"), "unknown executor 'slurm'"),
                       (dict(workers=0), "--workers must be >= 1"),
                       (dict(threads=0), "--threads must be >= 1"),
                       (dict(kind="ray", gpus_per_task=-1), "--gpus-per-task must be >= 0"),
                       (dict(kind="ray", max_retries=-1), "--max-retries"),
                       (dict(address="auto"), "need --executor ray")]:
        with pytest.raises(ConfigError, match=needle):
            ExecutorSpec(**kw)


def test_registered_experiments_travel_by_name_others_by_value():
    from randadv.experiments.registry import get_experiment

    assert exp_ref(get_experiment(EXP)) == EXP
    sq = Squares()
    assert exp_ref(sq) is sq


def test_lock_holder_probe(tmp_path):
    assert lock_holder(tmp_path) is None
    assert not (tmp_path / ".randadv.lock").exists()   # the probe creates nothing
    with RunLock(tmp_path):
        assert lock_holder(tmp_path) == str(os.getpid())
        t0 = time.perf_counter()
        with pytest.raises(Exception, match="in use by another randadv run"):
            with RunLock(tmp_path):
                pass
        assert time.perf_counter() - t0 < 2
    assert lock_holder(tmp_path) is None


def test_memory_refused_up_front_with_the_estimate(tmp_path):
    from randadv.runner.run import run_experiment

    sq = Squares()
    params = sq.params("smoke", {"mem": str(10**18)})
    with pytest.raises(ConfigError, match=r"needs about [\d.]+ TiB, more than the"):
        check_memory(sq, sq.units(params), params)
    with pytest.raises(ConfigError, match="more than the .* available"):
        run_experiment(sq, "smoke", params, out=tmp_path / "o", quiet=True)
    assert not (tmp_path / "o").exists()
    params = sq.params("smoke", {"mem": str(10**6)})
    check_memory(sq, sq.units(params), params)


def test_cost_helpers():
    assert pick_units({0: 1.0, 1: 5.0, 2: 3.0}, 2) == [0, 1]
    assert pick_units({0: 1.0, 1: 5.0, 2: 3.0}, 3) == [0, 2, 1]
    assert pick_units({4: 1.0}, 3) == [4]
    assert fmt_bytes(2048) == "2.0 KiB" and fmt_seconds(90) == "90.0 s"
    assert fmt_seconds(3 * 3600) == "3.0 h"


def test_dry_run_writes_nothing_and_estimates(tmp_path):
    out = tmp_path / "never"
    res = invoke("run", EXP, "--profile", "smoke", *SMALL, "--out", str(out), "--dry-run",
                 "--calibrate-seconds", "30")
    assert res.exit_code == 0, res.output
    assert "20 units, 20 to run" in res.output
    assert "estimated compute:" in res.output and "memory per unit:" in res.output
    assert "calibration unit 0 " in res.output and "calibration unit 19 " in res.output
    assert not out.exists()


def test_dry_run_reports_calibration_progress_as_each_unit_ends():
    """The calibration of minute-long units must not be silent: a line on stderr as the
    warm-up starts and one per timed unit, before the estimate, naming the same units and
    times as the summary lines on stdout."""
    res = invoke("run", EXP, "--profile", "smoke", *SMALL, "--dry-run", "--calibrate", "2",
                 "--calibrate-repeats", "1", "--calibrate-seconds", "30")
    assert res.exit_code == 0, res.output
    err, out = res.stderr.splitlines(), res.stdout.splitlines()
    assert err[0].startswith("calibrating: untimed warm-up on unit ") and "within 30 s" in err[0]
    timed = [line for line in err[1:] if line.startswith("  unit ")]
    summary = [line for line in out if line.startswith("  calibration unit ")]
    assert timed and len(timed) == len(summary)
    for t, s in zip(timed, summary, strict=True):
        idx = t.split()[1]
        assert s.split()[2] == idx, (t, s)
    assert "estimated compute:" not in res.stderr


def test_dry_run_budget_is_auto_by_default_and_a_bad_budget_is_named():
    res = invoke("run", EXP, "--profile", "smoke", *SMALL, "--dry-run")
    assert res.exit_code == 0, res.output
    assert "estimated compute:" in res.output and "(auto: the larger of 60 s" in res.output
    assert "warm-up" in res.stderr and "the timed units get" in res.stderr
    for bad in ("abc", "0.5", "nan", "inf"):
        res = invoke("run", EXP, "--profile", "smoke", "--dry-run", "--calibrate-seconds", bad)
        assert res.exit_code == 2 and "--calibrate-seconds" in res.output, (bad, res.output)


def test_dry_run_counts_only_and_sees_stored_units(tmp_path):
    from randadv.experiments.registry import get_experiment
    from randadv.runner.run import run_experiment

    exp = get_experiment(EXP)
    params = exp.params("smoke", {"depth": "1", "nets": "5"})
    run_experiment(exp, "smoke", params, out=tmp_path, quiet=True, max_units=3)
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    res = invoke("run", EXP, "--profile", "smoke", *SMALL, "--out", str(tmp_path), "--dry-run",
                 "--calibrate", "0")
    assert res.exit_code == 0, res.output
    assert "20 units, 17 to run (3 already stored" in res.output
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before


def test_status_reports_progress_and_remaining_time(tmp_path):
    from randadv.experiments.registry import get_experiment
    from randadv.runner.run import run_experiment

    exp = get_experiment(EXP)
    params = exp.params("smoke", {"depth": "1", "nets": "5"})
    run_experiment(exp, "smoke", params, out=tmp_path, quiet=True, max_units=4)
    res = invoke("status", EXP, "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert "4 / 20 units done, 16 remaining" in res.output
    assert "estimated remaining compute" in res.output
    log = (tmp_path / "run.log").read_text()
    assert "ETA" in log and "4 / 20 done" in log


def test_export_csv_parses(tmp_path):
    from randadv.experiments.registry import get_experiment
    from randadv.runner.run import run_experiment

    exp = get_experiment(EXP)
    params = exp.params("smoke", {"depth": "1", "nets": "1", "d": "20", "k": "20"})
    run_experiment(exp, "smoke", params, out=tmp_path, quiet=True)
    import pandas as pd

    df = pd.read_csv(io.BytesIO(export_bytes(tmp_path)))
    assert len(df) == 10 and df.flipped.dtype == bool
