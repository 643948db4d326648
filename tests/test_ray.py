"""The Ray executor against a local Ray instance started here (2 CPUs, no dashboard): same
exported bytes as the local executor, worker loss retried, errors carried back, resources."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray not installed (pip install 'randadv[ray]')")

from test_runner_helpers import EXP, SMALL, Squares, export_bytes, invoke  # noqa: E402

from randadv.errors import ConfigError  # noqa: E402
from randadv.experiments.registry import get_experiment  # noqa: E402
from randadv.runner.executors import ExecutorSpec  # noqa: E402
from randadv.runner.run import run_experiment  # noqa: E402


@pytest.fixture(scope="module")
def ray_local():
    here = str(Path(__file__).parent)
    path = os.pathsep.join([here, *(p for p in sys.path if p)])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield
    ray.shutdown()


def test_ray_and_local_give_identical_exports(ray_local, tmp_path):
    local, viaray = tmp_path / "local", tmp_path / "ray"
    assert invoke("run", EXP, "--profile", "smoke", *SMALL, "--out", str(local),
                  "--quiet").exit_code == 0
    res = invoke("run", EXP, "--profile", "smoke", *SMALL, "--out", str(viaray), "--quiet",
                 "--executor", "ray")
    assert res.exit_code == 0, res.output
    assert res.output.startswith("20 units computed")
    assert export_bytes(local) == export_bytes(viaray)
    assert "executor=ray" in (viaray / "run.log").read_text()


def test_ray_resumes_a_local_run(ray_local, tmp_path):
    exp = get_experiment(EXP)
    params = exp.params("smoke", {"depth": "1", "nets": "5"})
    run_experiment(exp, "smoke", params, out=tmp_path / "a", quiet=True, max_units=7)
    s = run_experiment(exp, "smoke", params, out=tmp_path / "a", quiet=True,
                       executor=ExecutorSpec("ray"))
    assert (s.units_run, s.units_skipped) == (13, 7)
    run_experiment(exp, "smoke", params, out=tmp_path / "b", quiet=True)
    assert export_bytes(tmp_path / "a") == export_bytes(tmp_path / "b")


def _isolated(name: str, tmp_path: Path) -> None:
    """Run the scenario ``name`` of tests/ray_lost_worker.py in its own Python process (its
    worker kills itself; see that module); its assertions must hold there."""
    import subprocess

    here = str(Path(__file__).parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([here, *(p for p in sys.path if p)]))
    # ~30 s alone; 353 s beside four CPU-bound jobs on 2 cores (Ray's retry is slow, not
    # hung, under load): the timeout only guards against a hang
    res = subprocess.run([sys.executable, "-m", "ray_lost_worker", name, str(tmp_path)],
                         cwd=here, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


def test_lost_worker_is_retried(tmp_path):
    _isolated("lost_worker_is_retried", tmp_path)


def test_lost_worker_without_retries_fails_cleanly(tmp_path):
    _isolated("lost_worker_without_retries_fails_cleanly", tmp_path)


def test_unit_errors_come_back_typed(ray_local, tmp_path):
    class Bad(Squares):
        def run_unit(self, unit, p, ctx):
            raise ConfigError(f"unit {unit['n']} is impossible")

    with pytest.raises(ConfigError, match="is impossible"):
        run_experiment(Bad(), "smoke", Bad().params("smoke"), out=tmp_path, quiet=True,
                       executor=ExecutorSpec("ray"))


def test_gpus_the_cluster_lacks_are_refused(ray_local, tmp_path):
    res = invoke("run", EXP, "--profile", "smoke", *SMALL, "--out", str(tmp_path / "o"),
                 "--quiet", "--executor", "ray", "--gpus-per-task", "1", "--device", "auto")
    assert res.exit_code == 2
    assert "--gpus-per-task 1" in res.output and "GPU" in res.output
    res = invoke("run", EXP, "--profile", "smoke", *SMALL, "--out", str(tmp_path / "o"),
                 "--quiet", "--executor", "ray", "--gpus-per-task", "1")
    assert res.exit_code == 2 and "--device cuda or auto" in res.output
    assert not (tmp_path / "o" / "results.sqlite").exists()

