"""A claim's verdict and every flip of two-layer-single-step come out the same under 1 and 2
torch threads (issue 15): the quick profile's cheap cells (d <= 100, k <= 1000, every depth and
activation, 3 networks), run unit by unit under each thread count."""

from __future__ import annotations

import pandas as pd
import torch

from randadv.experiments.registry import get_experiment
from randadv.framework import UnitContext


def _run(exp, params, units, threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rows = [r for u in units for r in exp.run_unit(u, params, UnitContext(seed=0))]
    finally:
        torch.set_num_threads(before)
    return pd.DataFrame(rows)


def test_flips_and_verdicts_do_not_depend_on_threads():
    exp = get_experiment("two-layer-single-step")
    params = exp.params("quick", {"d": "[50,100]", "k": "[100,1000]", "nets": "3"})
    units = exp.units(params)
    one, two = _run(exp, params, units, 1), _run(exp, params, units, 2)
    assert len(one) == len(two) > 0
    assert one.flipped.tolist() == two.flipped.tolist()
    assert 0 < one.flipped.mean() < 1          # both outcomes occur (deep nets miss some)
    v1 = [c.verdict for c in exp.check_claims(one, params)]
    v2 = [c.verdict for c in exp.check_claims(two, params)]
    assert v1 == v2 and len(v1) >= 5
