"""Same command and seed -> bit-identical exported CSV on CPU, whatever the number of workers,
the driver's own torch thread count, and interruptions (the Ray executor: tests/test_ray.py).

What is guaranteed: every unit runs with ``--threads`` torch threads (default 1) in every
executor, so its floating-point reductions happen in one order. Different ``--threads`` values,
CPUs with other vector units, or other torch/BLAS builds may change the last bits.
"""

from __future__ import annotations

import pytest
import torch
from test_runner_helpers import EXP, export_bytes

from randadv.experiments.registry import get_experiment
from randadv.nets.seeded_matrix import GaussianMatrix
from randadv.runner.executors import ExecutorSpec, run_one
from randadv.runner.run import run_experiment

OVERRIDES = {"depth": "1,2", "nets": "3"}   # 24 units, both depths


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    exp = get_experiment(EXP)
    out = tmp_path_factory.mktemp("ref")
    prev = torch.get_num_threads()
    torch.set_num_threads(2)   # the driver's own setting must not leak into units
    try:
        run_experiment(exp, "smoke", exp.params("smoke", OVERRIDES), out=out, quiet=True)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(prev)
    return export_bytes(out)


def test_two_workers_give_the_same_bytes(reference, tmp_path):
    exp = get_experiment(EXP)
    run_experiment(exp, "smoke", exp.params("smoke", OVERRIDES), out=tmp_path, quiet=True,
                   executor=ExecutorSpec("local", workers=2))
    assert export_bytes(tmp_path) == reference


def test_interrupted_and_resumed_gives_the_same_bytes(reference, tmp_path):
    exp = get_experiment(EXP)
    params = exp.params("smoke", OVERRIDES)
    run_experiment(exp, "smoke", params, out=tmp_path, quiet=True, max_units=5)
    run_experiment(exp, "smoke", params, out=tmp_path, quiet=True, max_units=7,
                   executor=ExecutorSpec("local", workers=2))
    s = run_experiment(exp, "smoke", params, out=tmp_path, quiet=True)
    assert (s.units_run, s.units_skipped) == (12, 12)
    assert export_bytes(tmp_path) == reference


def test_units_run_with_the_requested_threads_and_restore_the_driver():
    exp = get_experiment(EXP)
    params = exp.params("smoke", OVERRIDES)
    unit = exp.units(params)[-1]
    prev = torch.get_num_threads()
    seen = []

    class Probe(type(exp)):
        def run_unit(self, unit, p, ctx):
            seen.append(torch.get_num_threads())
            return super().run_unit(unit, p, ctx)

    torch.set_num_threads(2)
    try:
        run_one(Probe(), 0, unit, params, 0, "cpu", threads=1)
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(prev)


def test_streamed_weights_do_not_depend_on_the_block_size():
    """Documented guarantee of randadv.nets: the weights and ``x @ W.T`` are identical whatever
    the block size; ``y @ W`` sums blocks and may differ in the last bits (not asserted)."""
    ref = GaussianMatrix(600, 30, 1.0, (7, "W"), materialize=True)
    x = torch.randn(4, 30, generator=torch.Generator().manual_seed(0))
    for rows in (256, 512, 4096):
        s = GaussianMatrix(600, 30, 1.0, (7, "W"), materialize=False, block_rows=rows)
        assert torch.equal(s.full(), ref.full())
        assert torch.equal(s.mm(x), ref.mm(x))
