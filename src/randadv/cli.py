"""The ``randadv`` command: list, run, report, export, status.

Bad usage (unknown experiment or profile, malformed ``--set``, impossible sizes, unusable output
folder) exits with code 2 and a one-line message naming the problem.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from randadv.errors import RandadvError


def _fail(message: str) -> None:
    click.echo(f"randadv: error: {message}", err=True)
    sys.exit(2)


def _parse_sets(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair or pair.startswith("="):
            _fail(f"malformed --set {pair!r}: expected key=value")
        key, value = pair.split("=", 1)
        out[key.strip()] = value
    return out


@click.group()
@click.version_option(package_name="randadv")
def main() -> None:
    """randadv: adversarial examples in random and lazily-trained neural networks."""


@main.command("list")
def list_cmd() -> None:
    """List the experiments, with the paper and figures each reproduces."""
    from randadv.experiments.registry import EXPERIMENTS

    for exp in EXPERIMENTS.values():
        click.echo(f"{exp.name}\n  {exp.paper}\n  {exp.figures_reproduced}\n  {exp.summary}\n"
                   f"  profiles: {', '.join(exp.profiles)} (default {exp.default_profile})\n")


@main.command()
@click.argument("experiment")
@click.option("--profile", default=None, help="smoke | quick | paper (default: quick)")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="override a profile parameter, e.g. --set d=10,100 --set nets=20")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="output folder (default randadv-runs/EXPERIMENT-PROFILE-seedN)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu | cuda | auto")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="local worker processes")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="folder with the datasets (MNIST IDX files, CIFAR-10 batches); "
                   "default: $RANDADV_DATA_DIR or the usual places")
@click.option("--quiet", is_flag=True, help="no progress bar")
def run(experiment: str, profile: str | None, sets: tuple[str, ...], out: Path | None,
        seed: int, device: str, workers: int, data_dir: Path | None, quiet: bool) -> None:
    """Run EXPERIMENT (or resume it in the same --out folder)."""
    from randadv.experiments.registry import get_experiment
    from randadv.runner.run import run_experiment

    if data_dir is not None:
        if not data_dir.is_dir():
            _fail(f"--data-dir {data_dir}: no such directory")
        os.environ["RANDADV_DATA_DIR"] = str(data_dir.resolve())
    try:
        exp = get_experiment(experiment)
        profile = profile or exp.default_profile
        params = exp.params(profile, _parse_sets(sets))
        summary = run_experiment(exp, profile, params, seed=seed, out=out, device=device,
                                 workers=workers, quiet=quiet)
    except RandadvError as e:
        _fail(str(e))
    click.echo(f"{summary.units_run} units computed, {summary.units_skipped} already stored, "
               f"{summary.seconds:.1f} s")
    click.echo(f"results: {summary.out / 'results.sqlite'}")
    click.echo(f"report:  {summary.report}")
    click.echo(f"figures: {summary.report.parent / 'figures'}")


@main.command()
@click.argument("experiment")
@click.option("--out", type=click.Path(path_type=Path), required=True)
def report(experiment: str, out: Path) -> None:
    """Redraw figures and the report from stored results (no recomputation)."""
    from randadv.experiments.registry import get_experiment
    from randadv.runner.run import redraw_report

    try:
        path, _ = redraw_report(get_experiment(experiment), out)
    except RandadvError as e:
        _fail(str(e))
    click.echo(f"report: {path}")


@main.command()
@click.argument("experiment")
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv",
              show_default=True)
@click.option("--to", type=click.Path(path_type=Path), default=None,
              help="file to write (default: stdout; parquet needs --to)")
def export(experiment: str, out: Path, fmt: str, to: Path | None) -> None:
    """Export the per-sample records of a run."""
    from randadv.experiments.registry import get_experiment
    from randadv.runner.run import open_results

    try:
        store = open_results(get_experiment(experiment), out)
        df = store.records()
        store.close()
    except RandadvError as e:
        _fail(str(e))
    if fmt == "parquet":
        if to is None:
            _fail("--format parquet needs --to FILE")
        df.to_parquet(to, index=False)
    elif to is None:
        df.to_csv(sys.stdout, index=False)
    else:
        df.to_csv(to, index=False)
    if to is not None:
        click.echo(f"{len(df)} records written to {to}", err=True)


@main.command()
@click.argument("experiment")
@click.option("--out", type=click.Path(path_type=Path), required=True)
def status(experiment: str, out: Path) -> None:
    """Units done and remaining in a run folder, and the compute time so far."""
    from randadv.experiments.registry import get_experiment
    from randadv.runner.run import open_results

    try:
        exp = get_experiment(experiment)
        store = open_results(exp, out)
        units = store.units_table()
        total = len(exp.units(store.config["params"]))
        store.close()
    except RandadvError as e:
        _fail(str(e))
    click.echo(f"{experiment} in {out}: {len(units)} / {total} units done, "
               f"{total - len(units)} remaining, {units.elapsed.sum():.1f} s of compute")


if __name__ == "__main__":
    main()
