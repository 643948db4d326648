"""A finished (or partial) run's results as pandas objects, in one call."""

from __future__ import annotations

import json
import os

import pandas as pd

from randadv.runner.run import experiment_of, open_results


def load_results(out: str | os.PathLike, experiment: str | None = None) -> pd.DataFrame:
    """The per-sample records of the run in ``out``, each joined with its unit's parameters.

    Paper:
        none (utility: reads any experiment's records, the measurements behind its figures;
        ``randadv list`` names the figures each experiment reproduces).

    Arguments:
        out: a run folder (``randadv run ... --out OUT``).
        experiment: optional; when given it must be the experiment stored in ``out``.

    Returns:
        One row per record: ``unit`` (the unit's index in the run's grid), the unit's
        parameters (a column per key that the records do not already carry; lists as JSON
        text), then the experiment's record columns (``randadv export`` writes these).

    Example:
        >>> import tempfile
        >>> import randadv
        >>> from randadv.experiments import get_experiment
        >>> from randadv.runner import run_experiment
        >>> exp, out = get_experiment("min-pert"), tempfile.mkdtemp() + "/run"
        >>> _ = run_experiment(exp, "smoke", exp.params("smoke", {"k": "2,10", "runs": "2"}),
        ...                    out=out, quiet=True)
        >>> df = randadv.load_results(out)
        >>> len(df), list(df.columns[:4])   # 2 widths x 2 matrices x 2 inputs
        (8, ['unit', 'd', 'k', 'run'])
    """
    with open_results(experiment_of(out, experiment), out) as store:
        records = store.records(unit_index=True)
        units = store.units_table()
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

    Paper:
        none (utility: the report's tables of any experiment; ``randadv list`` names the
        figures each experiment reproduces).

    Example:
        >>> import tempfile
        >>> import randadv
        >>> from randadv.experiments import get_experiment
        >>> from randadv.runner import run_experiment
        >>> exp, out = get_experiment("min-pert"), tempfile.mkdtemp() + "/run"
        >>> _ = run_experiment(exp, "smoke", exp.params("smoke", {"k": "2,10", "runs": "2"}),
        ...                    out=out, quiet=True)
        >>> tables = randadv.load_summary(out)
        >>> sorted(tables), "verdict" in tables["claims"].columns
        (['claims', 'summary'], True)
    """
    exp = experiment_of(out, experiment)
    with open_results(exp, out) as store:
        records, params = store.records(), store.config["params"]
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
