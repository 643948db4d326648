"""``attack-optimality`` (attack vs exact distances, De Palma et al. 2021): smoke run end to end,
unit determinism, bad --set values, and the "attack >= exact" check failing on records made to
violate it."""

import math

import pandas as pd
import pytest
import torch

import randadv.experiments.attack_optimality as ao
from randadv.errors import ConfigError, InvalidInputError
from randadv.exact import to_affine_layers
from randadv.experiments.registry import get_experiment
from randadv.framework import UnitContext
from randadv.nets import ConvNetBuilder, RandomResNet
from randadv.nets.plain import plain_relu_sequential

NAME = "attack-optimality"
TIMES = {"exact_seconds", "attack_seconds"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_smoke_profile_end_to_end(smoke_run):
    _, p, _, df, claims = smoke_run(NAME)
    norms = [n for n in p["norms"] if n != "l2" or ao.scip_available()]
    assert len(df) == (len(p["archs"]) * p["nets"] * len(p["inputs"]) * p["points"]
                       * len(norms) * len(p["n_starts"]))
    # every successful attack was re-checked, never below the exact optimum
    assert df.attack_verified.all()
    opt = df[(df.exact_status == "optimal") & df.attack_success]
    assert len(opt) > 0
    assert (opt.attack_distance >= opt.exact_lower - opt.tol).all()
    assert (opt.ratio >= 1 - 1e-6).all()
    hard = [c for c in claims if c.statement.startswith("attack >= exact")]
    assert len(hard) == len(norms) and all(c.holds for c in hard)


def test_unit_is_deterministic(unit_twice):
    exp, p, _, a = unit_twice(NAME, {"norms": "l1,linf", "points": "2"}, unit_index=1,
                              ignore=TIMES)
    assert all(set(r) == {c for c, _ in exp.columns} for r in a)


@pytest.mark.parametrize("key, value", [
    ("archs", "fc:0:8"), ("archs", "fc:6"), ("archs", "conv:1x4:2"), ("archs", "mlp:4:4"),
    ("archs", "conv:1x4x4:2:q2"), ("archs", "conv:1x4x4:2:p9"), ("archs", "fc:2000:8"),
    ("norms", "l3"), ("inputs", "sphere"), ("n_starts", "0"), ("time_limit", "-1"),
    ("points", "0"), ("nets", "abc"), ("bias_std", "-0.1"),
])
def test_bad_set_values_raise_config_error(key, value):
    with pytest.raises(ConfigError):
        get_experiment(NAME).params("smoke", {key: value})


def _record(**kw):
    base = dict(arch="fc:6:8", family="fc", n=6, hidden=8, pixel_ratio=1.0, net=0,
                inputs="uniform", point=0, norm="l2", n_starts=1, x_norm=1.0, x_norm2=1.0,
                f_x=0.5, exact_distance=0.5, exact_lower=0.5, exact_status="optimal",
                exact_verified=True, exact_note="", n_binaries=3, exact_seconds=0.1,
                attack_distance=0.5, attack_success=True, attack_verified=True, attack_f=-0.1,
                attack_seconds=0.1, exact_region=True, ratio=1.0, tol=1e-6, radius_unit=0.01)
    base.update(kw)
    return base


def test_attack_below_exact_is_caught():
    """The hard check must fail on a record whose attack beats the exact lower bound by more
    than the tolerance, and on an attack success where the solver proved none exists; it must
    not fail within the tolerance."""
    exp = get_experiment(NAME)
    p = exp.params("smoke")
    ok = [_record(point=i, attack_distance=0.5 * (1 + 0.01 * i)) for i in range(3)]
    within = _record(point=3, attack_distance=0.5 - 0.5e-6)           # inside tol = 1e-6
    below = _record(point=4, attack_distance=0.49, ratio=0.98)        # 0.01 below
    infeasible = _record(point=5, exact_status="infeasible", exact_distance=math.inf,
                         exact_lower=math.inf, ratio=math.nan, attack_distance=0.7)
    df = pd.DataFrame(ok + [within])
    assert not ao.violations(df).any()
    claim = [c for c in exp.check_claims(df, p) if c.statement.startswith("attack >= exact")]
    assert [c.holds for c in claim] == [True]
    for bad in (below, infeasible):
        df = pd.DataFrame(ok + [within, bad])
        v = ao.violations(df)
        assert v.tolist() == [False] * 4 + [True]
        claim = [c for c in exp.check_claims(df, p)
                 if c.statement.startswith("attack >= exact")]
        assert [c.holds for c in claim] == [False]
    # a time-limited solve is checked against its dual bound
    tl = _record(point=6, exact_status="time_limit", exact_distance=0.6, exact_lower=0.45,
                 ratio=math.nan, attack_distance=0.44)
    assert ao.violations(pd.DataFrame([tl])).tolist() == [True]
    # an unverified attack point fails its claim
    df = pd.DataFrame(ok + [_record(point=7, attack_verified=False)])
    claim = [c for c in exp.check_claims(df, p) if "unverified" in c.statement]
    assert [c.holds for c in claim] == [False]


def test_plain_copy_of_a_conv_net_is_the_same_function():
    b = ConvNetBuilder("conv", (2, 5, 5), seed=4, dtype=torch.float64, bias=True, sigma_b2=0.1)
    b.conv(3, 3).act().conv(2, 3, padding="periodic").act().sum_pool(2).dense(4).act()
    net = b.build()
    plain = plain_relu_sequential(net)
    x = torch.randn(6, 2, 5, 5, generator=torch.Generator().manual_seed(1),
                    dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(plain(x)[:, 0], net(x), rtol=1e-12, atol=1e-12)
    layers = to_affine_layers(plain, (2, 5, 5))
    assert [w.shape[0] for w, _ in layers] == [75, 50, 4, 1]
    with pytest.raises(InvalidInputError):
        plain_relu_sequential(RandomResNet(8, 1, 0, widths=(2,), blocks_per_stage=1))


def test_l2_is_skipped_with_a_note_without_scip(monkeypatch):
    monkeypatch.setattr(ao, "scip_available", lambda: False)
    exp = get_experiment(NAME)
    p = exp.params("smoke", {"points": "1", "norms": "l2,linf", "inputs": "gaussian"})
    units = exp.units(p)
    assert [u["norm"] for u in units] == ["l2", "linf"]
    assert exp.run_unit(units[0], p, UnitContext(seed=0)) == []
    recs = exp.run_unit(units[1], p, UnitContext(seed=0))
    assert {r["norm"] for r in recs} == {"linf"}
    claims = exp.check_claims(pd.DataFrame(recs), p)
    note = [c for c in claims if c.statement.startswith("l2 exact")]
    assert len(note) == 1 and note[0].holds is None and "pyscipopt" in note[0].measured
