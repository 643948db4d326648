"""``segment-crossing`` (first boundary crossing along random directions, De Palma et al. 2021,
Theorem 1 / Corollary 1): smoke run end to end, unit determinism, bad --set values, and the
claims failing on records made to contradict them."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

import randadv.experiments.segment_crossing as sc
from randadv.errors import ConfigError
from randadv.experiments.registry import get_experiment
from randadv.framework import UnitContext

NAME = "segment-crossing"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_smoke_profile_end_to_end(smoke_run):
    exp, p, _, df, _ = smoke_run(NAME)
    assert len(df) == len(exp.units(p)) * p["points"] * p["directions"]
    assert df.exact.all() and not df.unverified.any()
    c = df[df.crossed]
    assert len(c) > 0 and (c.t > 0).all() and (c.t_rel <= c.t_cap_rel).all()
    assert df[~df.crossed].t.isna().all()


def test_crossings_are_sign_changes_of_the_network():
    """Independent check of one unit's records: f keeps its sign on a fine grid of [0, t*)
    and has the other sign just past t*."""
    exp = get_experiment(NAME)
    p = exp.params("smoke", {"families": "mlp1", "dims": "16", "nets": "2"})
    unit = exp.units(p)[0]
    recs = pd.DataFrame(exp.run_unit(unit, p, UnitContext(seed=5)))
    model, shape = exp._model(exp.spec(unit, p), sc.derive_seed(5, "net", "mlp1", 16, 0),
                              torch.device("cpu"))
    g = sc.generator(5, "inputs", "mlp1", 16, 0, "uniform")
    m, nd = p["points"], p["directions"]
    x = torch.rand((m, *shape), generator=g, dtype=torch.float64)
    v = torch.randn((m * nd, *shape), generator=g, dtype=torch.float64)
    v = v / v.norm(dim=1, keepdim=True)
    xs = x.repeat_interleave(nd, dim=0)
    for j, r in recs.iterrows():
        ts = torch.linspace(0, (r.t if r.crossed else r.t_cap_rel * r.x_norm2), 2001,
                            dtype=torch.float64)
        with torch.no_grad():
            f = model(xs[j] + ts[:, None] * v[j])
        s0 = torch.sign(f[0])
        assert bool((torch.sign(f[:-1]) == s0).all())
        if r.crossed:
            with torch.no_grad():
                f_past = model(xs[j] + r.t * (1 + 1e-3) * v[j])
            assert torch.sign(f_past) != s0


def test_unit_is_deterministic(unit_twice):
    exp, _, _, a = unit_twice(NAME)
    assert all(set(r) == {c for c, _ in exp.columns} for r in a)


@pytest.mark.parametrize("key, value", [
    ("families", "cnn"), ("families", "mlp0"), ("families", "mlpx"), ("q", "1.5"), ("q", "0"),
    ("t_cap", "0"), ("inputs", "sphere"), ("nets", "1"), ("dims", "1"), ("image_sizes", "1"),
    ("width", "0"), ("n_grid", "4"), ("bootstrap", "abc"),
])
def test_bad_set_values_raise_config_error(key, value):
    with pytest.raises(ConfigError):
        get_experiment(NAME).params("smoke", {key: value})


def test_quantile_with_no_crossing_as_inf():
    v = np.array([0.3, np.inf, 0.1, np.inf, 0.2])
    assert sc.quantile_inf(v, 0.2) == 0.1
    assert sc.quantile_inf(v, 0.6) == 0.3
    assert sc.quantile_inf(v, 0.8) == math.inf


def _fake(t_rel_of_n, nets=6, rays=40, seed=0):
    """Records with t* / ||x|| drawn by ``t_rel_of_n(n, rng, size)`` (inf: no crossing) and
    ||x|| = sqrt(n / 3) (uniform inputs)."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in (16, 64, 256, 1024):
        xn = math.sqrt(n / 3)
        for k in range(nets):
            rel = t_rel_of_n(n, rng, rays)
            for j, tr in enumerate(rel):
                c = bool(np.isfinite(tr))
                rows.append(dict(family="mlp1", inputs="uniform", n=n, size=n, net=k,
                                 point=j, direction=0, x_norm2=xn, f_x=1.0,
                                 t=tr * xn if c else math.nan, t_rel=tr if c else math.nan,
                                 crossed=c, unverified=False, t_cap_rel=10.0,
                                 end_flipped=c, nngp_end_flip=0.38, radius_unit=0.611 * xn,
                                 radius_unit_rel=0.611, pixel_ratio=1.0, exact=True))
    return pd.DataFrame(rows)


def _claims(df, start):
    exp = get_experiment(NAME)
    p = exp.params("smoke")
    return [c for c in exp.check_claims(df, p) if c.statement.startswith(start)]


def test_claims_hold_on_flat_relative_crossings_and_fail_otherwise():
    def flat(n, rng, size):
        t = rng.uniform(0.3, 3.0, size)
        t[rng.random(size) < 0.5] = np.inf
        return t

    df = _fake(flat)
    expo = _claims(df, "Theorem 1 / Corollary 1")
    assert len(expo) == 2 and all(c.holds for c in expo)
    assert all(c.holds for c in _claims(df, "Corollary 1, eqs."))

    def decaying(n, rng, size):      # t*/||x|| ~ n^-1/2: t* flat in n
        return flat(n, rng, size) * 4 / math.sqrt(n)

    expo = _claims(_fake(decaying), "Theorem 1 / Corollary 1")
    assert all(c.holds is False for c in expo)

    def too_close(n, rng, size):     # half the directions cross within 0.05 ||x|| < r(0.1)
        t = flat(n, rng, size)
        t[: size // 2] = 0.05
        return t

    assert all(c.holds is False for c in _claims(_fake(too_close), "Corollary 1, eqs."))
    bad = _fake(flat)
    bad.loc[3, "unverified"] = True
    assert [c.holds for c in _claims(bad, "every reported crossing")] == [False]


@pytest.mark.parametrize(("size", "exact"), [(4, True), (12, False)])
def test_resnet_family_walks_small_nets_exactly_and_brackets_larger_ones(size, exact):
    """A residual net whose dense affine layers are small (4x4 images, widths 8-16-32: 1.2e5
    weights) is walked exactly; at 12x12 (1e7 > 4e6) the bracketed search is used (exact
    False); two stride-2 stages keep 1/16 of the pixels (4x4 -> 1x1, 12x12 -> 3x3), so M = 4
    (Theorem 2, eq. (14)); crossings are verified either way."""
    exp = get_experiment(NAME)
    p = exp.params("smoke", {"families": "resnet", "image_sizes": str(size), "points": "1",
                             "directions": "3", "n_grid": "32"})
    recs = pd.DataFrame(exp.run_unit(exp.units(p)[0], p, UnitContext(seed=1)))
    assert len(recs) == 3 and (recs.exact == exact).all() and not recs.unverified.any()
    assert (recs.pixel_ratio == 1 / 16).all()
    assert recs.radius_unit_rel.iloc[0] == pytest.approx(math.pi / (2 * 4 + math.pi))
    assert recs.nngp_end_flip.isna().all()
