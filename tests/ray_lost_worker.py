"""The lost-worker scenarios of tests/test_ray.py, run in a fresh Python process each: a unit
that kills its Ray worker (``os._exit``) once made Ray end the pytest process itself with exit
status 1 and no output (1 full CI run in about a dozen), so the scenario gets its own driver.

Run: ``python -m ray_lost_worker NAME TMP_DIR`` with tests/ on the path; exit 0 when it holds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import ray
from test_runner_helpers import Squares

from randadv.runner.executors import ExecutorError, ExecutorSpec
from randadv.runner.run import run_experiment


def lost_worker_is_retried(tmp_path: Path) -> None:
    sq = Squares()
    params = sq.params("smoke", {"crash_dir": str(tmp_path), "crash_idx": "3"})
    s = run_experiment(sq, "smoke", params, out=tmp_path / "o", quiet=True,
                       executor=ExecutorSpec("ray", max_retries=2))
    assert s.units_run == 4
    assert (tmp_path / "crashed-3").exists()   # the first attempt died


def lost_worker_without_retries_fails_cleanly(tmp_path: Path) -> None:
    sq = Squares()
    params = sq.params("smoke", {"crash_dir": str(tmp_path), "crash_idx": "2"})
    with pytest.raises(ExecutorError, match="unit 1 lost after 0 retries"):
        run_experiment(sq, "smoke", params, out=tmp_path / "o", quiet=True,
                       executor=ExecutorSpec("ray", max_retries=0))
    # the units that finished are stored; a rerun computes only the rest
    s = run_experiment(sq, "smoke", params, out=tmp_path / "o", quiet=True,
                       executor=ExecutorSpec("ray", max_retries=0))
    assert s.units_run + s.units_skipped == 4


if __name__ == "__main__":
    name, folder = sys.argv[1], Path(sys.argv[2])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        {"lost_worker_is_retried": lost_worker_is_retried,
         "lost_worker_without_retries_fails_cleanly":
             lost_worker_without_retries_fails_cleanly}[name](folder)
    finally:
        ray.shutdown()
