"""``closest-adversarial`` (De Palma, Kiani, Lloyd 2021, Figures 1-2): smoke run end to end, unit
determinism, bad --set values, verification of the reported examples, the exponent fit."""


import numpy as np
import pytest
import torch

from randadv.attacks.all_norms import closest_adversarial_all_norms
from randadv.errors import ConfigError
from randadv.experiments.registry import get_experiment
from randadv.framework import UnitContext
from randadv.nets.conv import uniform_images
from randadv.nets.zoo import build_architecture
from randadv.protocol.norms import lp_norm
from randadv.stats import bootstrap_median_slopes as bootstrap_slopes
from randadv.stats import loglog_fit as fit_loglog

NAME = "closest-adversarial"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_smoke_profile_end_to_end(smoke_run):
    _, p, _, df, _ = smoke_run(NAME)
    assert len(df) == len(p["sizes"]) * p["nets"] * p["points"] * len(p["norms"])
    assert set(df.n) == {3 * s * s for s in p["sizes"]}
    ok = df[df.success]
    assert len(ok) > 0 and (ok.distance > 0).all()
    # the relative distance is the distance over the input's own l_p norm
    assert np.allclose(ok.rel_distance, ok.distance / ok.x_norm)
    # a found example is one the second forward pass confirms: sign f(x_adv) != sign f(x)
    assert (ok.recheck & (np.sign(ok.f_adv) * np.sign(ok.f_x) < 0)).all()
    # every example counts in every norm and ||d||_inf <= ||d||_2 <= ||d||_1 for each d, so
    # the closest distances of one point are ordered the same way
    wide = ok.pivot_table(index=["n", "net", "index"], columns="norm", values="distance")
    assert (wide.linf <= wide.l2 * (1 + 1e-9)).all() and (wide.l2 <= wide.l1 * (1 + 1e-9)).all()


def test_unit_is_deterministic(unit_twice):
    exp, p, unit, a = unit_twice(NAME, unit_index=-1)
    c = exp.run_unit(unit, p, UnitContext(seed=4))
    assert len(a) == p["points"] * len(p["norms"])
    assert {k for k, _ in exp.columns} == set(a[0])
    assert [r["x_norm"] for r in a] != [r["x_norm"] for r in c]   # the seed matters


@pytest.mark.parametrize("key, value", [
    ("architectures", "vgg"), ("architectures", "fc,fc"), ("sizes", "0"), ("sizes", "-4"),
    ("sizes", "12,0"), ("sizes", "abc"), ("norms", "l3"), ("norms", "l2,l2"), ("nets", "0"),
    ("points", "0"), ("delta", "1.5"), ("delta", "0"), ("attack_steps", "0"),
    ("n_starts", "0"), ("size_caps", "vgg:12"), ("size_caps", "resnet"),
    ("size_caps", "resnet:x"), ("channels", "0"), ("nonsense", "1"),
])
def test_bad_set_values_raise_config_error(key, value):
    with pytest.raises(ConfigError):
        get_experiment(NAME).params("smoke", {key: value})


def test_size_caps_and_paper_grid():
    exp = get_experiment(NAME)
    q = exp.params("quick", {"size_caps": "resnet:20"})
    units = exp.units(q)
    assert max(u["s"] for u in units if u["architecture"] == "resnet") == 20
    assert max(u["s"] for u in units if u["architecture"] == "fc") == max(q["sizes"])
    p = exp.params("paper")
    assert p["sizes"] == list(range(12, 61, 4)) and p["nets"] == 200 and p["points"] == 10
    assert len(exp.units(p)) == 4 * 13 * 200
    costs = [exp.unit_cost(u, p) for u in exp.units(p)[:: 1000]]
    assert all(c > 0 for c in costs)


def test_every_reported_example_is_verified():
    """Re-run the model on the examples the shared helper reports: each flips the sign, lies in
    [0, 1]^n, and its distance is its own l_p distance to x."""
    net = build_architecture("fc", 8, seed=5)
    x = uniform_images(4, 8, "test-verify")
    best = closest_adversarial_all_norms(net, x, ["l1", "l2", "linf"],
                                         {"l1": 1, "l2": 2, "linf": 3}, n_starts=1, steps=5)
    with torch.no_grad():
        f_x = net(x)
        for norm, r in best.items():
            assert r.success.any()
            f_adv = net(r.x_adv[r.success])
            assert (torch.sign(f_adv) * torch.sign(f_x[r.success]) < 0).all()
            assert (r.x_adv >= 0).all() and (r.x_adv <= 1).all()
            d = lp_norm(r.x_adv.double() - x.double(), norm)
            assert torch.allclose(d[r.success], r.distance[r.success], rtol=1e-12)
            assert torch.isinf(r.distance[~r.success]).all()
            assert (r.recheck == r.success).all()


def test_exponent_fit_recovers_a_power_law():
    """Synthetic cells with median c n^b (log-normal spread per network) give back b within a
    few bootstrap standard errors, and the standard error shrinks with more networks."""
    rng = np.random.default_rng(0)
    ns = np.array([432.0, 1200.0, 2352.0, 3888.0, 5808.0])

    def cells(nets):
        return [(n, 0.3 * n ** 0.5 * np.exp(rng.normal(0, 0.5, (nets, 1))
                                             + rng.normal(0, 0.2, (nets, 4)))) for n in ns]

    small, large = cells(10), cells(160)
    meds = [np.median(v) for _, v in large]
    b, _ = fit_loglog(ns, np.array(meds))
    se_small = bootstrap_slopes(small).std(ddof=1)
    se_large = bootstrap_slopes(large).std(ddof=1)
    assert abs(b - 0.5) <= 4 * se_large
    assert se_large < se_small
    # a cell with most points unattacked (+inf) has an infinite median: no slope from it
    bad = [(n, np.full((3, 2), np.inf)) for n in ns[:2]]
    assert bootstrap_slopes(bad).size == 0
