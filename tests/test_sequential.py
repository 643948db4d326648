"""Sequential stopping (issue 16, item 2): networks are added in rounds of the full profile,
the run stops once the claims are decided and the fits precise enough, and the same folder then
continues to the full profile with results identical to a run that never stopped."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from randadv.errors import ConfigError
from randadv.framework import Claim, Experiment, UnitContext
from randadv.nets.seeding import derive_seed
from randadv.runner.run import redraw_report, run_experiment
from randadv.runner.sequential import read_stopping, rounds


class NormalMeans(Experiment):
    """One unit per (cell, net): a N(mu, 1) draw; the claim "mean = mu" within 3 SE, decided from
    4 networks on; the 'exponent' SE is 1/sqrt(nets) (not registered)."""

    name = "test-normal-means"
    profiles = {"smoke": dict(cells=[0, 1], nets=64, mu=0.0)}
    default_profile = "smoke"
    columns = (("cell", "int"), ("net", "int"), ("v", "float"))

    def units(self, p):
        return [dict(cell=c, net=n) for c in p["cells"] for n in range(p["nets"])]

    def run_unit(self, unit, p, ctx: UnitContext):
        rng = np.random.default_rng(derive_seed(ctx.seed, unit["cell"], unit["net"]) % 2**32)
        return [dict(cell=unit["cell"], net=unit["net"], v=float(rng.standard_normal()))]

    def fit_standard_errors(self, df, p):
        return {"slope": 1 / math.sqrt(df.net.nunique())}

    def check_claims(self, df, p):
        n = df.net.nunique()
        assert n == p["nets"], "claims see the look's network count"
        z = abs(df.v.mean()) / (df.v.std(ddof=1) / math.sqrt(len(df)))
        return [Claim("mean = mu", f"z = {z:.2f}", bool(z <= 3) if n >= 4 else None, "3 SE",
                      scale="any n"),
                Claim("reported", "x", None, scale="any n", decidable=False)]

    def summary_table(self, df, p):
        return pd.DataFrame({"n": [len(df)]})

    def draw_figures(self, df, p, folder):
        return []


def test_round_schedule():
    assert rounds(64) == [8, 16, 32, 64]
    assert rounds(5) == [2, 4, 5]
    assert rounds(1) == [1]


def test_stops_when_decided_then_continues_to_the_identical_full_run(tmp_path):
    exp = NormalMeans()
    params = exp.params("smoke")
    seq = tmp_path / "seq"
    s = run_experiment(exp, "smoke", params, out=seq, quiet=True, until_decided=True,
                       se_target=0.2)
    info = read_stopping(seq)
    # 1/sqrt(16) = 0.25 > 0.2; 1/sqrt(32) = 0.18: stop at the third look
    assert info["used"] == 32 and info["looks"] == 3 and "decided" in info["reason"]
    assert s.units_run == 2 * 32
    report = (seq / "report.md").read_text()
    assert "Sequential run" in report and "32 of 64 nets" in report
    redraw_report(exp, seq)            # redraws with the look's network count
    # the same folder continues to the full profile: only the remaining units run
    s2 = run_experiment(exp, "smoke", params, out=seq, quiet=True)
    assert s2.units_run == 2 * 32 and s2.units_skipped == 2 * 32
    assert read_stopping(seq) is None and "Sequential run" not in (seq / "report.md").read_text()
    full = tmp_path / "full"
    run_experiment(exp, "smoke", params, out=full, quiet=True)
    from randadv.runner.run import open_results

    a, b = open_results(exp, seq), open_results(exp, full)
    try:
        pd.testing.assert_frame_equal(a.records(), b.records())
    finally:
        a.close()
        b.close()


def test_never_decided_runs_to_the_full_count(tmp_path):
    exp = NormalMeans()
    params = exp.params("smoke", {"nets": "6"})
    run_experiment(exp, "smoke", params, out=tmp_path, quiet=True, until_decided=True,
                   se_target=0.01)
    info = json.loads((tmp_path / "stopping.json").read_text())
    assert info["used"] == 6 and info["reason"] == "the profile's full count was reached"
    assert info["last_look"]["se_over_target"] == ["slope"]


def test_report_of_the_first_networks_is_the_look_at_that_count(tmp_path):
    exp = NormalMeans()
    params = exp.params("smoke", {"nets": "12"})
    out = tmp_path / "run"
    run_experiment(exp, "smoke", params, out=out, quiet=True)
    own = (out / "report.md").read_bytes()
    # check_claims asserts it sees exactly p["nets"] networks: 5 here, not the run's 12
    report, _ = redraw_report(exp, out, first=5, to=tmp_path / "look5")
    assert report == tmp_path / "look5" / "report.md"
    text = report.read_text()
    assert "first 5 of 12 nets (10 of its 24 units)" in text
    assert "Units of work done: 10 / 10" in text and "Samples: 10" in text
    assert (out / "report.md").read_bytes() == own          # the run's own report untouched
    default, _ = redraw_report(exp, out, first=12)
    assert default == out / "first-12-nets" / "report.md"


class PartialMeans(NormalMeans):
    """NormalMeans whose claims accept a partial run's records."""

    def check_claims(self, df, p):
        return []


def test_report_of_the_first_networks_refuses_what_is_not_stored(tmp_path):
    exp = PartialMeans()
    out = tmp_path / "run"
    run_experiment(exp, "smoke", exp.params("smoke", {"nets": "4"}), out=out, quiet=True)
    # the folder extended to 8 networks, one new unit stored so far (a run still growing)
    run_experiment(exp, "smoke", exp.params("smoke", {"nets": "8"}), out=out, quiet=True,
                   max_units=1)
    redraw_report(exp, out, first=4)
    for first, words in [(8, "7 of the 16 units of the first 8 nets are not stored"),
                         (0, "--first 0: the run"), (9, "has 8 nets; give 1 ... 8")]:
        with pytest.raises(ConfigError, match=words):
            redraw_report(exp, out, first=first)
    with pytest.raises(ConfigError, match="is the run folder"):
        redraw_report(exp, out, first=4, to=out)
