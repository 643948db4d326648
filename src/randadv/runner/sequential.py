"""Sequential stopping (``randadv run --until-decided``): networks are added in rounds, in the
order of the full profile, and the run stops once the paper's claims are decided.

A round runs the units of the profile with its network count (``nets``, ``seeds`` or ``runs``)
set to n_r, n_1 = max(2, ceil(N / 8)) doubling up to the profile's N. Every unit is a unit of the
full profile (same key, seed and index), stored in the full profile's store, so a sequential run
is a prefix of the full run and the same command without ``--until-decided`` continues it.

After each round (a "look") the claims are recomputed on the networks so far (with the network
count of that round, so degrees of freedom and Bonferroni factors are those of the data). The
run stops at the first look where

* every claim with a criterion whose scale the grid reaches is decided (holds True or False),
  with the same verdict as at the previous look (a verdict that flips between looks is not
  decided), and
* every fitted exponent the experiment reports (:meth:`Experiment.fit_standard_errors`) has a
  standard error at most ``se_target`` (0.05),

or when the full counts are reached. Repeated looks: the stopping rule uses the standard errors
(a precision rule: for normal estimates the sample variance is independent of the mean, so
stopping on it leaves the final test's level unchanged) and the stability of verdicts across two
consecutive looks; the claims' own criteria keep their fixed levels, and with at most K looks
Bonferroni bounds the chance that any look's verdict is a false alarm by K times a claim's level
(K is printed in the report). The decision is written to ``OUT/stopping.json`` and the report.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from randadv.errors import ConfigError
from randadv.framework import Experiment

STOPPING_FILE = "stopping.json"
REPLICATE_PARAMS = {"net": "nets", "seed": "seeds", "run": "runs"}


def replicate_param(exp: Experiment, params: Mapping[str, Any]) -> str:
    """The profile parameter that counts independent networks (``nets``, ``seeds``, ``runs``)."""
    units = exp.units(params)
    for key, name in REPLICATE_PARAMS.items():
        if units and key in units[0] and isinstance(params.get(name), int):
            return name
    raise ConfigError(f"{exp.name} has no network count (nets, seeds or runs) to add in "
                      "rounds; --until-decided does not apply")


def network_counts(exp: Experiment, params: Mapping[str, Any]) -> tuple[str, ...]:
    """The network count of :func:`replicate_param` as a tuple (empty where the experiment has
    none): the parameter by which a stored run may be extended."""
    try:
        return (replicate_param(exp, params),)
    except ConfigError:
        return ()


def rounds(n_full: int) -> list[int]:
    """Network counts of the looks: max(2, ceil(N/8)), doubling, then N."""
    n = min(n_full, max(2, math.ceil(n_full / 8)))
    out = [n]
    while out[-1] < n_full:
        out.append(min(n_full, out[-1] * 2))
    return out


def look(exp: Experiment, records, params: Mapping[str, Any], previous: list | None,
         se_target: float) -> tuple[bool, list, dict[str, Any]]:
    """Claims and fits at one look: ``(stop, verdicts, info)``."""
    claims = exp.check_claims(records, params) if len(records) else []
    verdicts = [c.holds for c in claims if c.reached and c.decidable]
    ses = exp.fit_standard_errors(records, params) if len(records) else {}
    open_claims = [c.statement for c in claims
                   if c.reached and c.decidable and c.holds is None]
    changed = previous is not None and previous != verdicts
    wide = {k: v for k, v in ses.items() if not (v <= se_target)}
    stop = (previous is not None and not changed and not open_claims and not wide
            and len(claims) > 0)
    info = dict(claims=len(claims), undecided=open_claims[:5], changed=changed,
                se_max=max(ses.values()) if ses else None,
                se_over_target=sorted(wide)[:5])
    return stop, verdicts, info


def write_stopping(out: Path, info: Mapping[str, Any]) -> None:
    path = Path(out) / STOPPING_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)


def clear_stopping(out: Path) -> None:
    (Path(out) / STOPPING_FILE).unlink(missing_ok=True)


def read_stopping(out: Path) -> dict[str, Any] | None:
    path = Path(out) / STOPPING_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def stopping_text(info: Mapping[str, Any]) -> str:
    """The report's paragraph on a sequential run."""
    name = info["param"]
    return (f"Sequential run (`--until-decided`): {info['used']} of {info['full']} {name} per "
            f"cell, {info['looks']} look(s) of at most {info['max_looks']} "
            f"({', '.join(str(n) for n in info['schedule'])}). Stopped because "
            f"{info['reason']}. Repeated looks: the stop uses the fits' standard errors "
            f"(target {info['se_target']:g}) and verdicts stable over two looks; each claim keeps "
            f"its own criterion, so over {info['max_looks']} looks a claim's false-alarm level is "
            f"at most {info['max_looks']} times its stated one (Bonferroni). The same command "
            "without `--until-decided` runs the rest of the profile in this folder.")
