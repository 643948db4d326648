"""Turning an experiment + profile into stored results, a report and figures; resuming."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from randadv.errors import ConfigError
from randadv.framework import Experiment, unit_key
from randadv.runner.cost import check_memory, fmt_seconds
from randadv.runner.executors import RUN_DIR_ENV, Executor, ExecutorSpec, exp_ref, import_ray
from randadv.runner.lock import RunLock
from randadv.runner.report import write_report
from randadv.runner.sequential import (
    REPLICATE_PARAMS,
    clear_stopping,
    look,
    network_counts,
    read_stopping,
    replicate_param,
    rounds,
    stopping_text,
    write_stopping,
)
from randadv.runner.store import STORE_NAME, ResultStore, stored_experiment

DEFAULT_ROOT = Path("randadv-runs")


def default_out(experiment: str, profile: str, seed: int) -> Path:
    return DEFAULT_ROOT / f"{experiment}-{profile}-seed{seed}"


def run_config(exp: Experiment, profile: str, params: dict, seed: int) -> dict:
    """What identifies a run's results (the device and worker count do not)."""
    return {"experiment": exp.name, "profile": profile, "params": params, "seed": seed}


@dataclass
class RunSummary:
    """What :func:`run_experiment` did.

    Paper:
        none (utility: the runner's account of a run).

    Attributes:
        out: the run folder; report: its report.md; figures: the figures drawn; units_total,
        units_run, units_skipped: the grid's units, those run now and those already stored;
        seconds: the wall time.

    Example:
        >>> import tempfile
        >>> from randadv.experiments import get_experiment
        >>> from randadv.runner import run_experiment
        >>> exp, out = get_experiment("min-pert"), tempfile.mkdtemp() + "/run"
        >>> params = exp.params("smoke", {"k": "2,10", "runs": "2"})
        >>> s = run_experiment(exp, "smoke", params, out=out, quiet=True, max_units=3)
        >>> s = run_experiment(exp, "smoke", params, out=out, quiet=True)   # resumes
        >>> s.units_total, s.units_run, s.units_skipped
        (4, 1, 3)
    """

    out: Path
    report: Path
    figures: list[Path]
    units_total: int
    units_run: int
    units_skipped: int
    seconds: float


def resolve_device(device: str | None, remote: bool = False) -> str:
    """``auto`` -> cuda if available; with ``remote`` (Ray) ``auto``/``cuda`` are resolved and
    checked on the workers."""
    if device not in (None, "auto", "cpu") and not str(device).startswith("cuda"):
        raise ConfigError(f"--device must be cpu, cuda or auto, got {device!r}")
    if remote:
        return device or "auto"
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
                   quiet: bool = False, max_units: int | None = None,
                   executor: ExecutorSpec | None = None, until_decided: bool = False,
                   se_target: float = 0.05) -> RunSummary:
    """Run (or resume) every pending unit, storing each atomically, then write the report.

    ``executor`` says where units run (default: local, ``workers`` processes, one torch thread
    per unit); results do not depend on it. ``max_units`` stops after that many new units
    (used to test resumption). ``until_decided`` adds networks in rounds and stops once the
    claims are decided and every fitted exponent's standard error is at most ``se_target``
    (:mod:`randadv.runner.sequential`).

    Paper:
        none (utility: runs any experiment; each one reproduces its paper's figures).

    Arguments:
        exp: the experiment; profile: its profile's name; params: ``exp.params(profile, ...)``;
        seed: the run's seed; out: the run folder (None: a default under randadv-runs/);
        device: torch device of the units; workers: local processes; quiet: no progress
        output; max_units, executor, until_decided, se_target: as above.

    Returns:
        :class:`RunSummary`.

    Example:
        >>> import tempfile
        >>> from randadv.experiments import get_experiment
        >>> from randadv.runner import run_experiment
        >>> exp, out = get_experiment("min-pert"), tempfile.mkdtemp() + "/run"
        >>> s = run_experiment(exp, "smoke", exp.params("smoke", {"k": "2,10", "runs": "2"}),
        ...                    out=out, quiet=True)
        >>> s.units_total, s.units_run, s.report.name
        (4, 4, 'report.md')
    """
    t0 = time.perf_counter()
    spec = executor or ExecutorSpec("local", workers=workers)
    device = resolve_device(device, remote=spec.kind == "ray")
    if out is not None and not str(out).strip():
        raise ConfigError("--out is empty: name an output folder (or leave --out out for "
                          f"{default_out(exp.name, profile, seed)})")
    out = Path(out) if out is not None else default_out(exp.name, profile, seed)
    if spec.kind == "ray":
        import_ray()   # refused before the output folder is created
    config = run_config(exp, profile, params, seed)
    units = exp.units(params)
    keys = [unit_key(u) for u in units]
    if spec.gpus_per_task and device == "cpu":
        raise ConfigError("--gpus-per-task needs --device cuda or auto")
    param = replicate_param(exp, params) if until_decided else None
    schedule = rounds(params[param]) if param else [None]
    if spec.kind == "local":
        check_memory(exp, units, params, spec.workers or 1)
    n_run = n_skipped = 0
    report_params, stopping = params, None
    with RunLock(out), Executor(spec) as ex:
        store = ResultStore(out, exp.name, config, exp.columns,
                            extendable=network_counts(exp, params),
                            unit_index={k: i for i, k in enumerate(keys)})
        os.environ[RUN_DIR_ENV] = str(Path(out).resolve())
        log = _logger(out)
        if store.extended:
            log.info("run extended: %s %d -> %d (the stored units kept, re-indexed)",
                     *store.extended)
        try:
            previous = None
            for n_look, n in enumerate(schedule, 1):
                p_n = params if n is None else {**params, param: n}
                wanted = None if n is None else {unit_key(u) for u in exp.units(p_n)}
                done = store.done_keys()
                todo = [(i, u) for i, u in enumerate(units)
                        if wanted is None or keys[i] in wanted]
                pending = [(i, u) for i, u in todo if keys[i] not in done]
                if n_look == 1:
                    n_skipped = len(todo) - len(pending)
                if max_units is not None:
                    pending = pending[:max(0, max_units - n_run)]
                n_run += _run_pending(ex, exp, store, log, pending, params, seed, device, spec,
                                      profile, len(units), len(done), quiet)
                if n is None:
                    break
                records = _records_up_to(store.records(), param, n)
                stop, previous, info = look(exp, records, p_n, previous, se_target)
                last = n == schedule[-1]
                log.info("look %d (%s = %d): %s", n_look, param, n, info)
                if stop or last or (max_units is not None and n_run >= max_units):
                    reason = ("every claim is decided, with the verdicts of the previous look, "
                              f"and every fitted exponent has SE <= {se_target:g}" if stop
                              else "the profile's full count was reached" if last
                              else "--max-units was reached")
                    stopping = dict(param=param, used=n, full=params[param], looks=n_look,
                                    max_looks=len(schedule), schedule=schedule,
                                    reason=reason, se_target=se_target, last_look=info)
                    write_stopping(out, stopping)
                    report_params = p_n
                    break
            if param is None and len(store.done_keys()) == len(units):
                clear_stopping(out)     # a sequential prefix, now run to the full profile
            records = store.records()
            if stopping:
                records = _records_up_to(records, param, stopping["used"])
            report, figures = write_report(
                exp, records, config, out, len(store.done_keys()), len(units),
                params=report_params, notes=stopping_text(stopping) if stopping else "")
            log.info("report written to %s", report)
        except BaseException as e:
            log.error("run stopped: %s: %s", type(e).__name__, e)
            raise
        finally:
            store.close()
    return RunSummary(out, report, figures, len(units), n_run, n_skipped,
                      time.perf_counter() - t0)


def _first_networks(exp: Experiment, params: dict, done: set[str], first: int,
                    out: Path) -> tuple[str, list[dict]]:
    """``(network-count parameter, units of the first networks)`` (the units of the same grid
    with that count, as a sequential run's look takes them), refused with a message naming the
    problem when the run has no network count, ``first`` is outside 1 ... its count, or a unit
    of those networks is not stored."""
    counts = network_counts(exp, params)
    if not counts:
        raise ConfigError(f"{exp.name} has no network count (nets, seeds or runs): --first "
                          "does not apply")
    param = counts[0]
    if not 1 <= first <= params[param]:
        raise ConfigError(f"--first {first}: the run in {out} has {params[param]} {param}; "
                          f"give 1 ... {params[param]}")
    prefix = exp.units({**params, param: first})
    missing = sum(unit_key(u) not in done for u in prefix)
    if missing:
        raise ConfigError(f"{missing} of the {len(prefix)} units of the first {first} {param} "
                          f"are not stored in {out} yet: resume the run, or give a smaller "
                          "--first")
    return param, prefix


def _records_up_to(records, param: str, n: int):
    """The records of the first ``n`` networks (the replicate column counts from 0)."""
    col = {v: k for k, v in REPLICATE_PARAMS.items()}[param]
    return records[records[col] < n] if col in records.columns else records


def _run_pending(ex, exp: Experiment, store: ResultStore, log, pending, params, seed, device,
                 spec, profile, n_units: int, n_done: int, quiet: bool) -> int:
    log.info("run %s profile=%s seed=%d device=%s executor=%s workers=%s threads=%d: "
             "%d units, %d done, %d to run", exp.name, profile, seed, device, spec.kind,
             spec.workers, spec.threads, n_units, n_done, len(pending))
    bar = tqdm(total=n_units, initial=n_done, disable=quiet, unit="unit", desc=exp.name,
               dynamic_ncols=True, smoothing=0.05)
    n_run, t_start = 0, time.perf_counter()
    for idx, unit, records, secs in ex.run(exp_ref(exp), pending, params, seed, device):
        store.write_unit(unit_key(unit), idx, unit, records, secs)
        n_run += 1
        bar.update(1)
        eta = (time.perf_counter() - t_start) / n_run * (len(pending) - n_run)
        log.info("unit %d %s: %d records in %.3fs; %d / %d done, ETA %s", idx, unit_key(unit),
                 len(records), secs, n_done + n_run, n_units, fmt_seconds(eta))
    bar.close()
    return n_run


def pending_units(exp: Experiment, profile: str, params: dict, seed: int,
                  out: Path | None) -> tuple[list[dict], list[tuple[int, dict]]]:
    """All units and those not yet stored in ``out`` (read only: nothing is created)."""
    units = exp.units(params)
    if out is None or not (Path(out) / STORE_NAME).exists():
        return units, list(enumerate(units))
    with ResultStore(out, exp.name, None, exp.columns, create=False, verify=False) as store:
        # refused as the run would be; a larger network count is pending work, not an error
        store.config_change(run_config(exp, profile, params, seed), network_counts(exp, params))
        done = store.done_keys()
    return units, [(i, u) for i, u in enumerate(units) if unit_key(u) not in done]


def open_results(exp: Experiment, out: Path, verify: bool = True) -> ResultStore:
    """Open an existing run folder read-only in spirit (no configuration check)."""
    return ResultStore(out, exp.name, None, exp.columns, create=False, verify=verify)


def experiment_of(out: str | os.PathLike, name: str | None = None) -> Experiment:
    """The experiment whose results ``out`` holds; a given ``name`` must be that one."""
    from randadv.experiments.registry import get_experiment

    if name is not None:
        get_experiment(name)   # an unknown name is named as such, whatever the folder holds
    stored = stored_experiment(out)
    if name is not None and name != stored:
        raise ConfigError(f"{out} holds results of experiment {stored!r}, not {name!r}; "
                          f"leave the name out or give {stored!r}")
    return get_experiment(stored)


def redraw_report(exp: Experiment, out: Path, first: int | None = None,
                  to: Path | None = None) -> tuple[Path, list[Path]]:
    """Figures and report from stored results only, no recomputation.

    Paper:
        none (utility: the report and figures of a stored run; each experiment's figures are
        its paper's).

    Arguments:
        exp: the experiment stored in ``out``; out: the run folder; first: the report of the
        run's first ``first`` networks only (``nets``, ``seeds`` or ``runs``: a look at a run
        still growing, or at an earlier look of a sequential run), every unit of which must be
        stored; to: where that report goes (default ``out/first-N-nets``; the run's own report
        is left as it is).

    Returns:
        ``(report path, figure paths)``.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from randadv.experiments import get_experiment
        >>> from randadv.runner import redraw_report, run_experiment
        >>> exp, out = get_experiment("min-pert"), Path(tempfile.mkdtemp()) / "run"
        >>> _ = run_experiment(exp, "smoke", exp.params("smoke", {"k": "2,10", "runs": "2"}),
        ...                    out=out, quiet=True)
        >>> report, figures = redraw_report(exp, out)
        >>> report.name, [f.name for f in figures]
        ('report.md', ['min_pert.png'])
    """
    with open_results(exp, out) as store:
        config = store.config
        units = exp.units(config["params"])
        records, params, notes = store.records(), config["params"], ""
        if first is not None:
            param, prefix = _first_networks(exp, params, store.done_keys(), first, out)
            folder = Path(to) if to is not None else Path(out) / f"first-{first}-{param}"
            if folder.resolve() == Path(out).resolve():
                raise ConfigError(f"--to {to} is the run folder: the run's own report would be "
                                  "replaced by the look's; give another folder")
            folder.mkdir(parents=True, exist_ok=True)
            notes = (f"A look at the run's first {first} of {params[param]} {param} "
                     f"({len(prefix)} of its {len(units)} units), drawn by `randadv report "
                     f"--first {first}` from the run in {out}.")
            return write_report(exp, _records_up_to(records, param, first), config, folder,
                                len(prefix), len(prefix), params={**params, param: first},
                                notes=notes)
        stopping = read_stopping(out)
        if stopping and stopping.get("param") in params:
            records = _records_up_to(records, stopping["param"], stopping["used"])
            params = {**params, stopping["param"]: stopping["used"]}
            notes = stopping_text(stopping)
        return write_report(exp, records, config, Path(out), len(store.done_keys()),
                            len(units), params=params, notes=notes)
