"""A finished (or partial) run's results as pandas objects, in one call."""

from __future__ import annotations

import json
import os

import pandas as pd

from randadv.runner.run import experiment_of, open_results


def load_results(out: str | os.PathLike, experiment: str | None = None) -> pd.DataFrame:
    """The per-sample records of the run in ``out``, each joined with its unit's parameters.

    Paper:
        Any of the four papers: the records are the measurements behind each experiment's
        figures (``randadv list`` names the figures an experiment reproduces).

    Arguments:
        out: a run folder (``randadv run ... --out OUT``).
        experiment: optional; when given it must be the experiment stored in ``out``.

    Returns:
        One row per record: ``unit`` (the unit's index in the run's grid), the unit's
        parameters (a column per key that the records do not already carry; lists as JSON
        text), then the experiment's record columns (``randadv export`` writes these).

    Example:
        >>> df = randadv.load_results("randadv-runs/two-layer-single-step-quick-seed0")
        >>> df.groupby(["d", "k"]).eta.mean()
    """
    exp = experiment_of(out, experiment)
    store = open_results(exp, out)
    try:
        records = store.records(unit_index=True)
        units = store.units_table()
    finally:
        store.close()
    params = pd.DataFrame([{k: _cell(v) for k, v in json.loads(p).items()}
                           for p in units.params], index=units.idx)
    extra = [c for c in params.columns if c not in records.columns]
    joined = records.join(params[extra], on="unit_idx") if extra else records
    joined = joined.rename(columns={"unit_idx": "unit"})
    return joined[["unit", *extra, *[c for c in records.columns if c != "unit_idx"]]]


def load_summary(out: str | os.PathLike,
                 experiment: str | None = None) -> dict[str, pd.DataFrame]:
    """The summary tables of the run's report, computed from the stored records only.

    Arguments:
        out: a run folder.
        experiment: optional; when given it must be the experiment stored in ``out``.

    Returns:
        ``{"summary": ..., "claims": ...}``: the report's "Summary by grid cell" table and its
        claims table (columns statement, measured, criterion, scale, verdict).

    Example:
        >>> randadv.load_summary(out)["claims"][["statement", "verdict"]]
    """
    exp = experiment_of(out, experiment)
    store = open_results(exp, out)
    try:
        records, params = store.records(), store.config["params"]
    finally:
        store.close()
    if not len(records):
        return {"summary": pd.DataFrame(), "claims": pd.DataFrame(columns=_CLAIM_COLUMNS)}
    claims = exp.check_claims(records, params)
    return {"summary": exp.summary_table(records, params),
            "claims": pd.DataFrame([{"statement": c.statement, "measured": c.measured,
                                     "criterion": c.criterion, "scale": c.scale,
                                     "verdict": c.verdict} for c in claims],
                                   columns=_CLAIM_COLUMNS)}


_CLAIM_COLUMNS = ["statement", "measured", "criterion", "scale", "verdict"]


def _cell(value):
    return json.dumps(value) if isinstance(value, list | dict) else value
