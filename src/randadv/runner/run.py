"""Turning an experiment + profile into stored results, a report and figures; resuming."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from randadv.errors import ConfigError
from randadv.experiments.base import Experiment, unit_key
from randadv.report.markdown import write_report
from randadv.runner.executors import run_local
from randadv.runner.lock import RunLock
from randadv.runner.store import ResultStore

DEFAULT_ROOT = Path("randadv-runs")


def default_out(experiment: str, profile: str, seed: int) -> Path:
    return DEFAULT_ROOT / f"{experiment}-{profile}-seed{seed}"


def run_config(exp: Experiment, profile: str, params: dict, seed: int) -> dict:
    """What identifies a run's results (the device and worker count do not)."""
    return {"experiment": exp.name, "profile": profile, "params": params, "seed": seed}


@dataclass
class RunSummary:
    out: Path
    report: Path
    figures: list[Path]
    units_total: int
    units_run: int
    units_skipped: int
    seconds: float


def resolve_device(device: str | None) -> str:
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine")
    if device != "cpu" and not device.startswith("cuda"):
        raise ConfigError(f"--device must be cpu, cuda or auto, got {device!r}")
    return device


def _logger(out: Path) -> logging.Logger:
    log = logging.getLogger(f"randadv.run.{out.resolve()}")
    if not log.handlers:
        h = logging.FileHandler(out / "run.log")
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(h)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


def run_experiment(exp: Experiment, profile: str, params: dict, seed: int = 0,
                   out: Path | None = None, device: str | None = "cpu", workers: int = 1,
                   quiet: bool = False, max_units: int | None = None) -> RunSummary:
    """Run (or resume) every pending unit, storing each atomically, then write the report.

    ``max_units`` stops after that many new units (used to test resumption).
    """
    t0 = time.perf_counter()
    device = resolve_device(device)
    out = Path(out) if out is not None else default_out(exp.name, profile, seed)
    config = run_config(exp, profile, params, seed)
    units = exp.units(params)
    with RunLock(out):
        store = ResultStore(out, exp.name, config, exp.columns)
        log = _logger(out)
        try:
            done = store.done_keys()
            pending = [(i, u) for i, u in enumerate(units) if unit_key(u) not in done]
            if max_units is not None:
                pending = pending[:max_units]
            log.info("run %s profile=%s seed=%d device=%s: %d units, %d done, %d to run",
                     exp.name, profile, seed, device, len(units), len(done), len(pending))
            bar = tqdm(total=len(units), initial=len(units) - len(pending) if max_units is None
                       else len(done), disable=quiet, unit="unit", desc=exp.name,
                       dynamic_ncols=True)
            n_run = 0
            for idx, unit, records, secs in run_local(exp.name, pending, params, seed, device,
                                                      workers):
                store.write_unit(unit_key(unit), idx, unit, records, secs)
                n_run += 1
                bar.update(1)
                log.info("unit %d %s: %d records in %.3fs", idx, unit_key(unit), len(records),
                         secs)
            bar.close()
            report, figures = write_report(exp, store.records(), config, out,
                                           len(store.done_keys()), len(units))
            log.info("report written to %s", report)
        finally:
            store.close()
    return RunSummary(out, report, figures, len(units), n_run, len(units) - len(pending),
                      time.perf_counter() - t0)


def open_results(exp: Experiment, out: Path) -> ResultStore:
    """Open an existing run folder read-only in spirit (no configuration check)."""
    return ResultStore(out, exp.name, None, exp.columns, create=False)


def redraw_report(exp: Experiment, out: Path) -> tuple[Path, list[Path]]:
    """Figures and report from stored results only, no recomputation."""
    store = open_results(exp, out)
    try:
        config = store.config
        units = exp.units(config["params"])
        return write_report(exp, store.records(), config, Path(out), len(store.done_keys()),
                            len(units))
    finally:
        store.close()
