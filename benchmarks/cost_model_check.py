"""The dry run's cost model against reality, offline (issue 16, item 1).

For each finished run folder given, replays the dry run: the calibration units it would pick
(``--calibrate N`` cost points, ``--repeats R`` units at each) take their times recorded by the
run instead of being run again (no CPU spent), the cost model is fitted as ``randadv run
--dry-run`` fits it, and its estimate of the whole run is compared with the run's measured
compute time (sum of the recorded unit times). Printed per
run: the estimate with cost groups (the current model) and with one pooled fit (the model
before cost groups), the ratio estimate / measured of each, whether it is within 1.5x, and
the range the dry run states with its estimate and whether that range holds the measured time.
A sequential run (``--until-decided``, with its ``stopping.json``) is checked on the units of
the network count it stopped at, i.e. the dry run of the same command with ``--set nets=USED``.

    python benchmarks/cost_model_check.py randadv-runs/*-quick-seed0 [--calibrate 4] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

from randadv.experiments.registry import get_experiment
from randadv.runner.cost import fmt_seconds, parse_calibration_budget, replay_estimate
from randadv.runner.sequential import REPLICATE_PARAMS, read_stopping


def recorded(folder: Path) -> tuple[str, dict, dict[int, float]]:
    con = sqlite3.connect(f"file:{folder / 'results.sqlite'}?mode=ro", uri=True)
    try:
        config = json.loads(con.execute("select value from meta where key = 'config'")
                            .fetchone()[0])
        elapsed = {int(i): float(t) for i, t in
                   con.execute("select idx, elapsed from units where elapsed is not null")}
    finally:
        con.close()
    return config["experiment"], config["params"], elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="finished run folders (--out of a run)")
    ap.add_argument("--calibrate", type=int, default=4, help="calibration units (as the dry run)")
    ap.add_argument("--repeats", type=int, default=2,
                    help="units timed per cost point (as the dry run's --calibrate-repeats)")
    ap.add_argument("--calibrate-seconds", type=parse_calibration_budget, default=None,
                    help="the calibration's time budget in seconds, or auto (the default, as "
                         "the dry run's)")
    args = ap.parse_args()
    print(f"{'run':44s} {'units':>6s} {'measured':>10s} {'grouped':>10s} {'ratio':>6s} "
          f"{'pooled':>10s} {'ratio':>6s}  within 1.5x  range (grouped)        holds it")
    worst, inside, checked = 1.0, 0, 0
    for folder in args.runs:
        name, params, elapsed = recorded(folder)
        exp = get_experiment(name)
        units = exp.units(exp.params(exp.default_profile, None) | params)
        stopping = read_stopping(folder)
        if stopping and stopping.get("param") in params:
            key = next(k for k, v in REPLICATE_PARAMS.items() if v == stopping["param"])
            kept = [i for i, u in enumerate(units) if u[key] < stopping["used"]]
            units = [units[i] for i in kept]          # stored indices are the full profile's
            elapsed = {j: elapsed[i] for j, i in enumerate(kept) if i in elapsed}
        if len(elapsed) < len(units):
            print(f"{str(folder):44s} unfinished ({len(elapsed)} / {len(units)} units): skipped")
            continue
        est, measured = replay_estimate(exp, params, units, elapsed, args.calibrate,
                                        repeats=args.repeats, budget_s=args.calibrate_seconds)
        pooled, _ = replay_estimate(exp, params, units, elapsed, args.calibrate, grouped=False,
                                    repeats=args.repeats, budget_s=args.calibrate_seconds)
        if est.compute_seconds is None or pooled.compute_seconds is None:
            print(f"{str(folder)[-44:]:44s} {len(units):6d} {fmt_seconds(measured):>10s} "
                  f"no estimate: no unit finishes within --calibrate-seconds "
                  f"{fmt_seconds(est.calibration_budget)} (as the dry run says)")
            continue
        r, rp = est.compute_seconds / measured, pooled.compute_seconds / measured
        lo, hi = est.compute_seconds / est.factor, est.compute_seconds * est.factor
        holds = lo <= measured <= hi
        worst = max(worst, r, 1 / r)
        print(f"{str(folder)[-44:]:44s} {len(units):6d} {fmt_seconds(measured):>10s} "
              f"{fmt_seconds(est.compute_seconds):>10s} {r:6.2f} "
              f"{fmt_seconds(pooled.compute_seconds):>10s} {rp:6.2f}  "
              f"{'yes' if 1 / 1.5 <= r <= 1.5 else 'NO':11s}  "
              f"{fmt_seconds(lo):>9s} - {fmt_seconds(hi):9s}  {'yes' if holds else 'NO'}")
        inside += holds
        checked += 1
    print(f"worst ratio (either way), grouped model: x{worst:.2f}; the stated range holds the "
          f"measured time in {inside} of {checked} runs")


if __name__ == "__main__":
    main()
