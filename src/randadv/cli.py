"""The ``randadv`` command: list, params, run, report, export, status.

Bad usage (unknown experiment or profile, malformed ``--set``, impossible sizes, unusable output
folder) exits with code 2 and a one-line message naming the problem.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from randadv.errors import RandadvError


def _fail(message: str) -> None:
    lines = [ln for ln in str(message).splitlines() if ln.strip()] or ["unknown error"]
    more = f" (+{len(lines) - 1} more lines)" if len(lines) > 1 else ""
    click.echo(f"randadv: error: {lines[0]}{more}", err=True)
    sys.exit(2)


def parse_sets(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``key=value`` pairs -> dict; raises :class:`ConfigError` on a malformed or repeated key."""
    from randadv.errors import ConfigError

    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key or not key.isidentifier():
            raise ConfigError(f"malformed --set {pair!r}: expected key=value")
        if key in out:
            raise ConfigError(f"--set {key} given twice ({out[key]!r} and {value!r})")
        out[key] = value
    return out


def _out_option(required: bool, help: str):
    """``--out``: a folder; an empty name is refused (it would mean the current folder)."""
    def check(ctx, param, value):
        if value is None:
            return None
        if not value.strip():
            raise click.BadParameter("empty folder name: name an output folder", ctx, param)
        return Path(value)
    return click.option("--out", type=str, required=required, default=None, callback=check,
                        help=help)


class CalibrationBudget(click.ParamType):
    """``--calibrate-seconds``: seconds (>= 1) or ``auto`` (None: runner.cost.auto_budget)."""

    name = "SECONDS|auto"

    def convert(self, value, param, ctx):
        from randadv.runner.cost import parse_calibration_budget

        if value is None or isinstance(value, float):
            return value
        try:
            return parse_calibration_budget(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


class _OneLineErrors(click.Group):
    """Usage errors (bad option values, unknown options) as one line, exit code 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as e:
            _fail(e.format_message())
        except click.ClickException as e:
            click.echo(f"randadv: error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=_OneLineErrors)
@click.version_option(package_name="randadv")
def main() -> None:
    """randadv: adversarial examples in random and lazily-trained neural networks."""


@main.command("list", short_help="List the experiments, their papers and figures.")
def list_cmd() -> None:
    """List the experiments, with the paper and figures each reproduces."""
    from randadv.experiments.registry import EXPERIMENTS

    for exp in EXPERIMENTS.values():
        click.echo(f"{exp.name}\n  {exp.paper}\n  {exp.figures_reproduced}\n  {exp.summary}\n"
                   f"  profiles: {', '.join(exp.profiles)} (default {exp.default_profile})\n")


@main.command("params", short_help="List an experiment's --set keys and profile values.")
@click.argument("experiment")
@click.option("--profile", default=None, help="show only this profile's values")
def params_cmd(experiment: str, profile: str | None) -> None:
    """Every ``--set`` key of EXPERIMENT: its type, each profile's value and its meaning."""
    from randadv.experiments.registry import get_experiment
    from randadv.framework.params import param_table

    try:
        exp = get_experiment(experiment)
        rows = param_table(exp, profile)
    except RandadvError as e:
        _fail(str(e))
    names = [profile] if profile else list(exp.profiles)
    click.echo(f"{exp.name}: --set KEY=VALUE (lists as 1,2,3); profiles "
               f"{', '.join(exp.profiles)} (default {exp.default_profile})\n")
    for row in rows:
        values = "; ".join(f"{n} {row['values'][n]}" for n in names)
        click.echo(f"{row['key']} ({row['type']}): {values}\n    {row['help']}")


@main.command(short_help="Run an experiment (or resume it in its --out folder).")
@click.argument("experiment")
@click.option("--profile", default=None, help="smoke | quick | paper (default: quick)")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="override a profile parameter, e.g. --set d=10,100 --set nets=20 "
                   "(`randadv params EXPERIMENT` lists them)")
@_out_option(False, "output folder (default randadv-runs/EXPERIMENT-PROFILE-seedN)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu | cuda | auto")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              show_default=True, help="where units run: this machine, or Ray tasks")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="local: worker processes (default 1); ray: CPUs of a local Ray instance "
                   "(default: all)")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="torch threads per unit (results are bit-identical for a given value)")
@click.option("--address", default=None,
              help="ray: cluster address (auto, ray://HOST:10001); default: a local instance")
@click.option("--gpus-per-task", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="ray: GPUs per unit (use with --device cuda or auto)")
@click.option("--max-retries", type=click.IntRange(min=0), default=3, show_default=True,
              help="ray: retries of a unit whose worker died")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="folder with the datasets (MNIST IDX files, CIFAR-10 batches); "
                   "default: $RANDADV_DATA_DIR or the usual places")
@click.option("--dry-run", is_flag=True,
              help="print units, estimated time (short calibration) and memory; write nothing")
@click.option("--calibrate", type=click.IntRange(min=0, max=16), default=4, show_default=True,
              help="dry run: cost points to time, cheapest to dearest (0: count only)")
@click.option("--calibrate-repeats", type=click.IntRange(min=1, max=5), default=2,
              show_default=True,
              help="dry run: units timed per cost point, budget allowing (unit-to-unit spread)")
@click.option("--calibrate-seconds", type=CalibrationBudget(), default="auto",
              show_default=True,
              help="dry run: time budget of the calibration in seconds (>= 1), or auto: "
                   "60 s, or 3x the warm-up unit's time when that is longer")
@click.option("--until-decided", is_flag=True,
              help="add networks in rounds (1/8 of the profile's, doubling) and stop once every "
                   "claim is decided and every fitted exponent has SE <= --se-target")
@click.option("--se-target", type=click.FloatRange(min=0, min_open=True), default=0.05,
              show_default=True, help="with --until-decided: largest SE of a fitted exponent")
@click.option("--quiet", is_flag=True, help="no progress bar")
def run(experiment: str, profile: str | None, sets: tuple[str, ...], out: Path | None,
        seed: int, device: str, executor: str, workers: int | None, threads: int,
        address: str | None, gpus_per_task: float, max_retries: int, data_dir: Path | None,
        dry_run: bool, calibrate: int, calibrate_repeats: int,
        calibrate_seconds: float | None,
        until_decided: bool,
        se_target: float, quiet: bool) -> None:
    """Run EXPERIMENT (or resume it in the same --out folder; a larger nets / seeds / runs,
    all else equal, extends the run there)."""
    from randadv.experiments.registry import get_experiment
    from randadv.runner.executors import ExecutorSpec
    from randadv.runner.run import run_experiment

    if data_dir is not None:
        if not data_dir.is_dir():
            _fail(f"--data-dir {data_dir}: no such directory")
        os.environ["RANDADV_DATA_DIR"] = str(data_dir.resolve())
    try:
        exp = get_experiment(experiment)
        profile = profile or exp.default_profile
        params = exp.params(profile, parse_sets(sets))
        spec = ExecutorSpec(executor, workers=workers, threads=threads, address=address,
                            gpus_per_task=gpus_per_task, max_retries=max_retries)
        if dry_run:
            _dry_run(exp, profile, params, seed, out, device, spec, calibrate,
                     calibrate_seconds, calibrate_repeats)
            return
        summary = run_experiment(exp, profile, params, seed=seed, out=out, device=device,
                                 quiet=quiet, executor=spec, until_decided=until_decided,
                                 se_target=se_target)
    except RandadvError as e:
        _fail(str(e))
    click.echo(f"{summary.units_run} units computed, {summary.units_skipped} already stored, "
               f"{summary.seconds:.1f} s")
    if until_decided:
        from randadv.runner.sequential import read_stopping

        info = read_stopping(summary.out) or {}
        if info:
            click.echo(f"stopped at {info['used']} of {info['full']} {info['param']}: "
                       f"{info['reason']}")
    click.echo(f"results: {summary.out / 'results.sqlite'}")
    click.echo(f"report:  {summary.report}")
    click.echo(f"figures: {summary.report.parent / 'figures'}")


def _dry_run(exp, profile: str, params: dict, seed: int, out: Path | None, device: str,
             spec, n_cal: int, budget: float | None, repeats: int = 2) -> None:
    """Units, estimated time and memory of a run; nothing is written."""
    from randadv.runner.cost import (
        available_memory,
        check_memory,
        estimate,
        fmt_bytes,
        format_estimate,
    )
    from randadv.runner.run import pending_units, resolve_device

    dev = resolve_device(device)
    units, pending = pending_units(exp, profile, params, seed, out)
    if spec.kind == "local":
        check_memory(exp, units, params, spec.workers or 1)
    stored = len(units) - len(pending)
    click.echo(f"{exp.name}, profile {profile}, seed {seed}: {len(units)} units, "
               f"{len(pending)} to run" + (f" ({stored} already stored in {out})"
                                           if stored else ""))
    est = estimate(exp, units, pending, params, seed, dev, spec.threads, n_cal, budget, repeats,
                   out, progress=lambda line: click.echo(line, err=True))
    for c in est.calibrated:
        mem = f", peak memory {fmt_bytes(c.peak_bytes)}" if c.peak_bytes is not None else ""
        state = "" if c.finished else " so far (stopped: over the calibration budget)"
        click.echo(f"  calibration unit {c.idx} {c.unit} (relative cost {c.cost:g}): "
                   f"{c.seconds:.3f} s{mem}{state}")
    par = spec.workers or (1 if spec.kind == "local" else os.cpu_count() or 1)
    for line in format_estimate(est, spec.threads, par):
        click.echo(line)
    mem = []
    if est.memory_bytes is not None:
        partial = est.extrapolated > 1 or any(not c.finished for c in est.calibrated)
        mem.append(f"{fmt_bytes(est.memory_bytes)} measured (largest calibrated unit"
                   + ("; dearer units may need more" if partial else "") + ")")
    if est.memory_hint_bytes is not None:
        mem.append(f"{fmt_bytes(est.memory_hint_bytes)} declared (largest unit)")
    avail = available_memory()
    click.echo(f"memory per unit: {'; '.join(mem) or 'unknown'}"
               + (f"; {fmt_bytes(avail)} available" if avail else ""))
    click.echo("dry run: nothing written")


RUN_FOLDER = "run folder (the experiment is read from it)"


def _run_folder_command(short_help: str):
    """A command on a run folder: the optional EXPERIMENT argument (the folder records it) and
    the required ``--out``; options declared below it come after ``--out``."""
    def decorate(f):
        f = _out_option(True, RUN_FOLDER)(f)
        f = click.argument("experiment", required=False)(f)
        return main.command(short_help=short_help)(f)
    return decorate


@_run_folder_command("Redraw a run's figures and report (no recomputation).")
@click.option("--first", type=click.IntRange(min=1), default=None,
              help="the report of the run's first N networks only (nets, seeds or runs), in "
                   "--to")
@click.option("--to", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="folder for the --first report (default OUT/first-N-nets)")
def report(experiment: str | None, out: Path, first: int | None, to: Path | None) -> None:
    """Redraw figures and the report from the results stored in --out (no recomputation).

    EXPERIMENT is optional: the folder records it (a given name must match). --first N draws
    the report of the first N networks (a look at a run still growing) into its own folder."""
    from randadv.runner.run import experiment_of, redraw_report

    if to is not None and first is None:
        _fail("--to is for the report of --first N networks; give --first")
    try:
        path, _ = redraw_report(experiment_of(out, experiment), out, first, to)
    except RandadvError as e:
        _fail(str(e))
    click.echo(f"report: {path}")


@_run_folder_command("Export a run's per-sample records (csv or parquet).")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv",
              show_default=True)
@click.option("--to", type=click.Path(path_type=Path), default=None,
              help="file to write (default: stdout; parquet needs --to)")
def export(experiment: str | None, out: Path, fmt: str, to: Path | None) -> None:
    """Export the per-sample records of the run in --out.

    EXPERIMENT is optional: the folder records it (a given name must match)."""
    from randadv.runner.run import experiment_of, open_results

    if fmt == "parquet" and to is None:
        _fail("--format parquet needs --to FILE")
    try:
        with open_results(experiment_of(out, experiment), out) as store:
            df = store.records()
    except RandadvError as e:
        _fail(str(e))
    if fmt == "parquet":
        df.to_parquet(to, index=False)
    elif to is None:
        df.to_csv(sys.stdout, index=False)
    else:
        df.to_csv(to, index=False)
    if to is not None:
        click.echo(f"{len(df)} records written to {to}", err=True)


@_run_folder_command("Units done and left in a run folder, time left.")
def status(experiment: str | None, out: Path) -> None:
    """Units done and remaining in the run folder --out, compute so far, estimated time left.

    EXPERIMENT is optional: the folder records it (a given name must match)."""
    from randadv.framework import unit_key
    from randadv.runner.cost import fmt_seconds
    from randadv.runner.lock import lock_holder
    from randadv.runner.run import experiment_of, open_results

    try:
        exp = experiment_of(out, experiment)
        with open_results(exp, out, verify=False) as store:
            units = store.units_table()
            params = store.config["params"]
        all_units = exp.units(params)
        done_keys = set(units.key)
        left = [u for u in all_units if unit_key(u) not in done_keys]
        cost_left = sum(exp.unit_cost(u, params) for u in left)
        cost_done = sum(exp.unit_cost(json.loads(p), params) for p in units.params)
    except RandadvError as e:
        _fail(str(e))
    total, spent = len(all_units), float(units.elapsed.sum())
    holder = lock_holder(out)
    click.echo(f"{exp.name} in {out}: {len(units)} / {total} units done, "
               f"{total - len(units)} remaining, {spent:.1f} s of compute"
               + (f"; running (pid {holder})" if holder else ""))
    if len(units) and left:
        per = spent / cost_done if cost_done > 0 else spent / len(units)
        click.echo(f"mean {spent / len(units):.3f} s per unit; estimated remaining compute "
                   f"{fmt_seconds(per * cost_left)} (divide by the number of workers)")


if __name__ == "__main__":
    main()
