"""The Markdown report of a run: configuration, figures, summary table, the paper's claims."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from randadv.framework import Claim, Experiment


def _cell(text: object) -> str:
    """Table cell text: a literal | (as in |eta|) must not end the cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(df: pd.DataFrame) -> str:
    if df.empty:
        return "_(no data)_"
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            if isinstance(v, float):
                cells.append("" if v != v else f"{v:.4g}")
            else:
                cells.append(_cell(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(exp: Experiment, records: pd.DataFrame, config: Mapping[str, Any],
                 folder: Path, units_done: int, units_total: int,
                 params: Mapping[str, Any] | None = None, notes: str = ""
                 ) -> tuple[Path, list[Path]]:
    """Draw the figures and write ``report.md`` into ``folder``; return its path and figures.
    ``params``: those the records were computed at (default the configuration's; a sequential
    run passes its network count); ``notes``: a paragraph on how the run stopped."""
    folder = Path(folder)
    fig_dir = folder / "figures"
    params = config["params"] if params is None else params
    figures = exp.draw_figures(records, params, fig_dir) if len(records) else []
    claims = exp.check_claims(records, params) if len(records) else []
    summary = exp.summary_table(records, params) if len(records) else pd.DataFrame()
    lines = [f"# {exp.name}: report", "",
             f"Reproduces {exp.figures_reproduced} of {exp.paper}.", "",
             f"Units of work done: {units_done} / {units_total}"
             + ("" if units_done == units_total or notes
                else " (partial run: re-run to resume)"),
             f"Samples: {len(records)}", "", "## Configuration", "", "```json",
             json.dumps(config, indent=1, sort_keys=True), "```", "",
             *([notes, ""] if notes else []),
             "## Claims of the paper, checked", "", _claims_table(claims), ""]
    lines += ["## Figures", ""]
    for caption, path in figures:
        rel = os.path.relpath(path, folder)
        lines += [f"![{caption}]({rel})", "", f"_{caption}_", ""]
    lines += ["## Summary by grid cell", "", _table(summary), ""]
    notes = getattr(exp, "report_notes", "")
    if notes:
        lines += ["## Notes", "", notes, ""]
    path = folder / "report.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines))
    os.replace(tmp, path)
    return path, [p for _, p in figures]


def _claims_table(claims: list[Claim]) -> str:
    if not claims:
        return "_(not enough data to check any claim)_"
    lines = ["| claim | paper's scale | measured | criterion | verdict |",
             "|---|---|---|---|---|"]
    for c in claims:
        lines.append(f"| {_cell(c.statement)} | {_cell(c.scale)} | {_cell(c.measured)} | "
                     f"{_cell(c.criterion)} | **{c.verdict}** |")
    return "\n".join(lines)
