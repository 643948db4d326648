import os

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


@pytest.fixture
def one_torch_thread():
    """One torch thread, as the runner runs each unit (the attacks' many small kernels run
    several times slower with two threads on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def smoke_run(tmp_path):
    """``smoke_run(name)``: run an experiment's smoke profile into a fresh folder, check that every
    unit ran, that every claim was measured (verdict True, False or None), that the report has
    its claims table and that the figures exist; return ``(experiment, params, summary,
    records, claims)``."""
    from randadv.experiments.registry import get_experiment
    from randadv.runner.run import open_results, run_experiment

    def run(name: str):
        exp = get_experiment(name)
        params = exp.params("smoke")
        summary = run_experiment(exp, "smoke", params, seed=0, out=tmp_path, quiet=True)
        assert summary.units_run == summary.units_total == len(exp.units(params))
        store = open_results(exp, tmp_path)
        try:
            df = store.records()
        finally:
            store.close()
        claims = exp.check_claims(df, params)
        assert claims and all(c.measured for c in claims)
        assert all(c.holds in (True, False, None) for c in claims)
        assert "Claims of the paper, checked" in summary.report.read_text()
        assert summary.figures and all(f.exists() for f in summary.figures)
        return exp, params, summary, df, claims

    return run


@pytest.fixture
def unit_twice():
    """``unit_twice(name, overrides=None, unit_index=None, ignore=())``: run one unit of an
    experiment's smoke grid (the middle one unless ``unit_index``) twice with the same seed,
    assert the records are identical (NaN equal to NaN; keys in ``ignore``, e.g. timings, are
    not compared), return ``(exp, params, unit, records)``."""
    import math

    from randadv.experiments.registry import get_experiment
    from randadv.framework import UnitContext

    def same(u, v):
        return u == v or (isinstance(u, float) and math.isnan(u) and math.isnan(v))

    def run(name: str, overrides: dict | None = None, unit_index: int | None = None,
            ignore: tuple | set = ()):
        exp = get_experiment(name)
        params = exp.params("smoke", overrides)
        units = exp.units(params)
        unit = units[len(units) // 2 if unit_index is None else unit_index]
        a = exp.run_unit(unit, params, UnitContext(seed=3))
        b = exp.run_unit(unit, params, UnitContext(seed=3))
        assert len(a) == len(b) > 0
        assert all(same(r[k], s[k]) for r, s in zip(a, b, strict=True) for k in r
                   if k not in ignore)
        return exp, params, unit, a

    return run
