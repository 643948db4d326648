"""Crash safety: ``randadv run`` killed with SIGKILL at random moments, including inside the
database write transaction, then resumed, gives byte-identical exports to an uninterrupted run;
two runs on one folder at once: the second is refused, the store stays intact.

The runs are real processes started from a fork server that has randadv imported (a fresh
``python -m randadv`` spends seconds importing torch; the kills would then mostly land there).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest
from test_runner_helpers import EXP, export_bytes, n_units, store_consistent

# 200 units of ~5-40 ms
SETS = ["--set", "depth=1", "--set", "nets=50"]
N_UNITS = 200


def _cli_child(argv: list[str], env: dict[str, str], log: str) -> None:
    os.environ.update(env)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    from randadv.cli import main

    main(argv, prog_name="randadv")


@pytest.fixture(scope="module")
def ctx():
    c = multiprocessing.get_context("forkserver")
    c.set_forkserver_preload(["randadv.cli", "randadv.runner.run", "randadv.runner.report",
                              "randadv.experiments.registry", "pandas", "matplotlib.pyplot"])
    return c


def start(ctx, out: Path, log: Path, *extra: str, env: dict | None = None):
    argv = ["run", EXP, "--profile", "smoke", *SETS, "--out", str(out), "--quiet", *extra]
    p = ctx.Process(target=_cli_child, args=(argv, env or {}, str(log)))
    p.start()
    return p


def _lines(path: Path) -> int:
    try:
        return len(path.read_text().split())
    except FileNotFoundError:
        return 0


def stored_indices(db: Path) -> set[int]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {i for (i,) in con.execute("SELECT idx FROM units")}
    finally:
        con.close()


def kill_and_resume(ctx, tmp_path: Path, rounds: int, seed: int) -> int:
    """``rounds`` runs each SIGKILLed at a random moment, in turn: inside a write transaction
    (the test hook sleeps there), a few units after the last stored one (between or during
    units and writes), or a short random delay after start (start-up, opening the store).
    Every store is checked consistent after each kill. Returns the number of kills."""
    rng = random.Random(seed)
    db = tmp_path / "killed" / "results.sqlite"
    out, log, marker = tmp_path / "killed", tmp_path / "log.txt", tmp_path / "writes.txt"
    kills = in_write_kills = 0
    for i in range(rounds):
        mode = ("in write", "after units", "at start")[i % 3]
        # writes slowed down a little in the other modes, so that a fast machine does not
        # finish the run within a round
        env = {"RANDADV_TEST_WRITE_HOOK": f"{marker}:{0.5 if mode == 'in write' else 0.02}"}
        before_marks, before_units = _lines(marker), n_units(db)
        p = start(ctx, out, log, env=env)
        deadline = time.time() + 60
        if mode == "in write":
            # the marker line is written inside the transaction, then the writer sleeps 0.5 s
            target = before_marks + rng.randint(1, 3)
            while _lines(marker) < target and p.is_alive() and time.time() < deadline:
                time.sleep(0.005)
        elif mode == "after units":
            target = before_units + rng.randint(1, 12)
            while n_units(db) < target and p.is_alive() and time.time() < deadline:
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.02))
        else:
            time.sleep(rng.uniform(0.0, 0.4))
        if p.is_alive():
            os.kill(p.pid, signal.SIGKILL)
            kills += 1
        p.join(30)
        assert p.exitcode in (-signal.SIGKILL, 0), (p.exitcode, log.read_text()[-2000:])
        if db.exists():
            units, _ = store_consistent(db)
            if mode == "in write" and p.exitcode == -signal.SIGKILL:
                # every unit whose write began is stored, but the one killed mid-transaction
                # (if this test, slowed down, woke up only after that commit: none)
                began = _lines(marker) - before_marks
                assert units - before_units in (began - 1, began), (units, before_units, began)
                if units - before_units == began - 1:
                    in_write_kills += 1
                    last = int(marker.read_text().split()[-1])
                    assert last not in stored_indices(db)
    assert in_write_kills >= 1, "no kill landed inside a write transaction"
    return kills


def test_sigkill_at_random_moments_then_resume_is_identical(ctx, tmp_path):
    ref = tmp_path / "ref"
    p = start(ctx, ref, tmp_path / "ref.log")
    p.join(120)
    assert p.exitcode == 0, (tmp_path / "ref.log").read_text()[-2000:]

    kills = kill_and_resume(ctx, tmp_path, rounds=12, seed=1)
    assert kills >= 10
    killed = tmp_path / "killed"
    assert n_units(killed / "results.sqlite") < N_UNITS   # the kills did interrupt work
    p = start(ctx, killed, tmp_path / "log.txt")
    p.join(120)
    assert p.exitcode == 0, (tmp_path / "log.txt").read_text()[-2000:]
    assert store_consistent(killed / "results.sqlite") == (N_UNITS, N_UNITS * 10)
    a, b = export_bytes(ref), export_bytes(killed)
    assert a == b and len(a.splitlines()) == N_UNITS * 10 + 1


@pytest.mark.slow
def test_sigkill_many_rounds(ctx, tmp_path):
    kills = kill_and_resume(ctx, tmp_path, rounds=40, seed=2)
    assert kills >= 30


def test_second_run_on_same_folder_is_refused_and_store_intact(ctx, tmp_path):
    out, marker = tmp_path / "o", tmp_path / "writes.txt"
    first = start(ctx, out, tmp_path / "first.log",
                  env={"RANDADV_TEST_WRITE_HOOK": f"{marker}:0.05"})
    deadline = time.time() + 60
    while _lines(marker) < 2 and first.is_alive() and time.time() < deadline:
        time.sleep(0.01)
    assert first.is_alive()
    second = start(ctx, out, tmp_path / "second.log")
    second.join(60)
    assert second.exitcode == 2
    msg = (tmp_path / "second.log").read_text().strip().splitlines()
    assert len(msg) == 1 and "in use by another randadv run" in msg[0]
    assert f"pid {first.pid}" in msg[0]

    from test_runner_helpers import invoke

    status = invoke("status", EXP, "--out", str(out))
    assert status.exit_code == 0 and f"running (pid {first.pid})" in status.output
    first.join(120)
    assert first.exitcode == 0, (tmp_path / "first.log").read_text()[-2000:]
    assert store_consistent(out / "results.sqlite") == (N_UNITS, N_UNITS * 10)
    assert "running" not in invoke("status", EXP, "--out", str(out)).output


def test_real_cli_process_is_refused_while_a_run_holds_the_folder(tmp_path):
    """Same with ``python -m randadv`` (a cold start) against a lock held here."""
    import subprocess

    from randadv.runner.lock import RunLock

    with RunLock(tmp_path):
        r = subprocess.run([sys.executable, "-m", "randadv", "run", EXP, "--profile", "smoke",
                            "--out", str(tmp_path), "--quiet"], capture_output=True, text=True,
                           timeout=300)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"randadv: error: {tmp_path} is in use by another randadv run (pid {os.getpid()}); "
        "wait for it or use another --out"]
    assert not (tmp_path / "results.sqlite").exists()
