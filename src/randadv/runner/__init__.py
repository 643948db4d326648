"""Running experiments: units, executors, the results store, resuming."""

from randadv.runner.run import RunSummary, redraw_report, run_experiment
from randadv.runner.store import ResultStore

__all__ = ["ResultStore", "RunSummary", "redraw_report", "run_experiment"]
