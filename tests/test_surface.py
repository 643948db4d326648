"""The user's surface: results in one call, a CLI that reads the experiment from its folder,
`randadv params`, refused outputs and executors, whole help texts, runnable report suggestions,
data lookup."""

import io
import re
import shlex

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

import randadv
from randadv.cli import main
from randadv.experiments.registry import EXPERIMENTS
from randadv.framework.params import param_table

EXP = "two-layer-single-step"


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("surface") / "run"
    res = invoke("run", EXP, "--profile", "smoke", "--out", str(out), "--quiet")
    assert res.exit_code == 0, res.output
    return out


# -- results in one call -------------------------------------------------------------------
def test_load_results_joins_records_with_unit_parameters(run_dir):
    df = randadv.load_results(run_dir)
    csv = pd.read_csv(io.StringIO(invoke("export", "--out", str(run_dir)).output))
    assert len(df) == len(csv) == 400
    assert df.columns[0] == "unit" and df.unit.nunique() == 40
    pd.testing.assert_frame_equal(df[csv.columns].reset_index(drop=True), csv,
                                  check_dtype=False)
    # each record carries the parameters of the unit it came from (the store's units table)
    from randadv.runner.run import open_results

    store = open_results(EXPERIMENTS[EXP], run_dir)
    try:
        units = store.units_table().set_index("idx")
    finally:
        store.close()
    import json

    for idx, g in df.groupby("unit"):
        unit = json.loads(units.loc[idx, "params"])
        for key, value in unit.items():
            assert (g[key] == value).all(), (idx, key)


def test_load_summary_gives_the_reports_tables(run_dir):
    tables = randadv.load_summary(run_dir)
    assert set(tables) == {"summary", "claims"}
    report = (run_dir / "report.md").read_text()
    assert len(tables["summary"]) > 0
    for verdict, statement in zip(tables["claims"].verdict, tables["claims"].statement,
                                  strict=True):
        assert f"**{verdict}**" in report and statement.split("|")[0][:30] in report


def test_load_results_checks_a_given_name(run_dir):
    from randadv.errors import ConfigError

    with pytest.raises(ConfigError, match="holds results of experiment 'two-layer"):
        randadv.load_results(run_dir, "min-pert")


# -- CLI: the folder knows its experiment --------------------------------------------------
@pytest.mark.parametrize("cmd", ["status", "export", "report"])
def test_commands_read_the_experiment_from_the_folder(cmd, run_dir):
    res = invoke(cmd, "--out", str(run_dir))
    assert res.exit_code == 0, res.output
    res = invoke(cmd, EXP, "--out", str(run_dir))
    assert res.exit_code == 0, res.output
    res = invoke(cmd, "min-pert", "--out", str(run_dir))
    assert res.exit_code == 2
    line = res.output.strip()
    assert len(line.splitlines()) == 1
    assert "'two-layer-single-step'" in line and "'min-pert'" in line
    assert "corrupted" not in line


def test_params_lists_every_key_with_type_values_and_meaning():
    for name, exp in EXPERIMENTS.items():
        res = invoke("params", name)
        assert res.exit_code == 0, res.output
        keys = set().union(*(set(p) for p in exp.profiles.values()))
        for key in keys:
            line = next(ln for ln in res.output.splitlines() if ln.startswith(f"{key} ("))
            for prof in exp.profiles:
                assert f"{prof} " in line
    res = invoke("params", "min-pert", "--profile", "smoke")
    assert "k (list[int]): smoke " in res.output and "quick" not in res.output.split("\n", 2)[2]
    assert invoke("params", "min-pert", "--profile", "huge").exit_code == 2


def test_every_parameter_of_every_experiment_has_a_description():
    for name, exp in EXPERIMENTS.items():
        keys = set().union(*(set(p) for p in exp.profiles.values()))
        missing = sorted(keys - set(exp.param_help))
        assert not missing, f"{name}: no param_help for {missing}"
        stale = sorted(set(exp.param_help) - keys)
        assert not stale, f"{name}: param_help for unknown keys {stale}"
        assert all(len(exp.param_help[k]) > 10 for k in keys)


def test_param_types_parse_back_their_profile_values():
    # what `params` prints for each profile is accepted by --set as that same value
    for name, exp in EXPERIMENTS.items():
        for row in param_table(exp):
            for prof, text in row["values"].items():
                if text == '""':
                    continue
                assert exp.params(prof, {row["key"]: text})[row["key"]] == \
                    exp.profiles[prof][row["key"]], (name, prof, row["key"])


# -- CLI: refused before anything is written ----------------------------------------------
def test_empty_out_is_refused_and_nothing_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for cmd in (["run", "min-pert", "--profile", "smoke", "--quiet"], ["status"], ["report"],
                ["export"]):
        res = invoke(*cmd, "--out", "")
        assert res.exit_code == 2 and "--out" in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_library_refuses_an_empty_out(tmp_path, monkeypatch):
    from randadv.errors import ConfigError
    from randadv.runner.run import run_experiment

    monkeypatch.chdir(tmp_path)
    exp = EXPERIMENTS["min-pert"]
    with pytest.raises(ConfigError, match="--out is empty"):
        run_experiment(exp, "smoke", exp.params("smoke"), out="", quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_unavailable_executor_is_refused_before_the_folder_exists(tmp_path):
    try:
        import ray  # noqa: F401
        pytest.skip("Ray is installed here")
    except ImportError:
        pass
    out = tmp_path / "o"
    res = invoke("run", "min-pert", "--profile", "smoke", "--executor", "ray", "--out",
                 str(out), "--quiet")
    assert res.exit_code == 2 and "needs Ray" in res.output
    assert not out.exists()


def test_top_level_help_lines_are_whole():
    res = invoke("--help")
    commands = res.output.split("Commands:")[1].strip().splitlines()
    assert len(commands) == len(main.commands)
    for line in commands:
        assert not line.rstrip().endswith("..."), line
    for name, cmd in main.commands.items():
        assert cmd.get_short_help_str(limit=80) == cmd.short_help, name


# -- every suggestion a report prints runs as printed ---------------------------------------
_VALUE_OPTIONS = {o for p in main.commands["run"].params if not getattr(p, "is_flag", True)
                  for o in p.opts}


def _suggestions():
    out = []
    for name, exp in EXPERIMENTS.items():
        keys = set().union(*(set(p) for p in exp.profiles.values()))
        for frag in re.findall(r"`([^`]+)`", getattr(exp, "report_notes", "")):
            frag = frag.strip()
            if frag.startswith("randadv run "):
                args = shlex.split(frag)[1:]
            elif frag in _VALUE_OPTIONS:
                continue   # an option named in prose (`--data-dir`), not a command
            elif frag.startswith("--"):
                args = ["run", name, *shlex.split(frag)]
            elif re.fullmatch(r"\w+=\S+", frag) and frag.split("=")[0] in keys:
                args = ["run", name, "--set", frag]
            else:
                continue
            out.append(pytest.param(args, id=f"{name}: {frag}"))
    return out


SUGGESTIONS = _suggestions()


def test_the_reports_make_suggestions():
    assert len(SUGGESTIONS) >= 10


@pytest.mark.parametrize("args", SUGGESTIONS)
def test_report_suggestion_runs_as_printed(args, tmp_path):
    """Each printed command is run as a dry run (parse, validate, build the grid, check
    memory; 0 calibration units): that is what it does before any unit is computed."""
    if "cuda" in args and not torch.cuda.is_available():
        pytest.skip("suggests --device cuda; no CUDA here")
    argv = [*args, "--out", str(tmp_path / "o")]
    if "--dry-run" not in argv:
        argv.append("--dry-run")
    argv += ["--calibrate", "0"]
    res = invoke(*argv)
    assert res.exit_code == 0, res.output
    assert "units" in res.output and "dry run: nothing written" in res.output
    assert not (tmp_path / "o").exists()


# -- data lookup -------------------------------------------------------------------------
def test_data_lookup_order(tmp_path, monkeypatch):
    from randadv.data.paths import ENV_VAR, base_dirs

    work = tmp_path / "proj" / "checkout" / "sub"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.delenv(ENV_VAR, raising=False)
    dirs = base_dirs("mnist")
    # the working folder and its parents first, nearest first
    assert dirs[:3] == [work / "shared/data/mnist", work.parent / "shared/data/mnist",
                        tmp_path / "proj" / "shared/data/mnist"]
    # then next to the package, then the home folder
    pkg = __import__("randadv").__file__
    assert any(str(d).endswith("shared/data/mnist") and str(pkg).startswith(str(d.parents[2]))
               for d in dirs[3:])
    assert dirs[-1].parts[-3:] == (".randadv", "data", "mnist")
    # an explicit place is the only one searched
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert base_dirs("mnist") == [tmp_path / "env" / "mnist", tmp_path / "env"]
    assert base_dirs("mnist", root=tmp_path / "given") == [tmp_path / "given"]


def test_mnist_found_from_the_working_folder_whatever_the_install(tmp_path, monkeypatch):
    """A checkout X/main run from X/main (or below) finds X/shared/data/mnist even when the
    package is installed elsewhere: the lookup starts at the working folder."""
    import os

    from randadv.data import paths
    from randadv.data.mnist import load_mnist

    here = __import__("pathlib").Path(__file__).resolve()
    found = [a / "shared" / "data" / "mnist" for a in here.parents
             if (a / "shared" / "data" / "mnist").is_dir()]
    if not found:
        pytest.skip("no MNIST next to this checkout")
    real = str(found[0])
    (tmp_path / "shared" / "data").mkdir(parents=True)
    os.symlink(os.path.realpath(real), tmp_path / "shared" / "data" / "mnist")
    (tmp_path / "main" / "src").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "main" / "src")
    monkeypatch.delenv(paths.ENV_VAR, raising=False)
    # the package "installed" somewhere with no data near it
    monkeypatch.setattr(paths, "__file__", str(tmp_path / "site" / "randadv" / "data" /
                                              "paths.py"))
    x, y = load_mnist(split="test")
    assert len(x) == len(y) == 10000


def test_data_error_names_the_fix_and_first_places_on_its_first_line(tmp_path, monkeypatch,
                                                                    capsys):
    from randadv.data import paths
    from randadv.data.errors import DataNotFoundError
    from randadv.data.mnist import load_mnist

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(paths.ENV_VAR, raising=False)
    monkeypatch.setattr(paths, "__file__", str(tmp_path / "site" / "randadv" / "data" /
                                              "paths.py"))
    monkeypatch.setattr(paths.Path, "home", lambda: tmp_path / "home")
    with pytest.raises(DataNotFoundError) as err:
        load_mnist(split="test")
    first = str(err.value).splitlines()[0]
    assert "--data-dir" in first and paths.ENV_VAR in first
    assert str(tmp_path / "shared" / "data" / "mnist") in first and "more" in first
    # the CLI's one-line error is this first line
    from randadv import cli

    with pytest.raises(SystemExit):
        cli._fail(str(err.value))
    shown = capsys.readouterr().err.strip().splitlines()
    assert len(shown) == 1 and "--data-dir" in shown[0] and str(tmp_path) in shown[0]


# -- packaging and docs -------------------------------------------------------------------
ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_license_citation_changelog_and_typed_marker():
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # an SPDX expression and license-files (PEP 639); setuptools < 77 cannot read them
    assert meta["project"]["license"] == "MIT"
    assert meta["project"]["license-files"] == ["LICENSE"]
    assert "setuptools>=77" in meta["build-system"]["requires"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert "py.typed" in meta["tool"]["setuptools"]["package-data"]["randadv"]
    assert (ROOT / "src" / "randadv" / "py.typed").exists()
    cff = (ROOT / "CITATION.cff").read_text()
    assert f"version: {randadv.__version__}" in cff
    papers = (ROOT.parent / "shared" / "papers" / "README.md")
    titles = ["A single gradient step finds adversarial examples on random two-layers neural "
              "networks", "Adversarial Examples in Multi-Layer Random ReLU Networks",
              "Adversarial Robustness Guarantees for Random Deep Neural Networks",
              "Adversarial Robustness is at Odds with Lazy Training"]
    for t in titles:
        assert f'title: "{t}"' in cff
        if papers.exists():
            assert t.lower() in papers.read_text().lower()
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"v{randadv.__version__}" in changelog


def test_docs_pages_hold_no_lab_notebook_history():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    # a commit hash has a letter a-f (a run of decimal digits such as 1000000 is a size)
    bad = re.compile(r"\bcommit [0-9a-f]{7}|\b(?=[0-9]*[a-f])[0-9a-f]{7,40}\b(?=[,):])|"
                     r"load average|at load \d|[Aa]n earlier run|64 eps")
    for page in pages:
        for i, line in enumerate(page.read_text().splitlines(), 1):
            assert not bad.search(line), f"{page.name}:{i}: {line}"


def test_every_experiment_has_its_report_notes_as_package_data():
    import pathlib

    from randadv.framework.experiment import report_notes

    root = pathlib.Path(__file__).resolve().parents[1]
    assert '"experiments/notes/*.md"' in (root / "pyproject.toml").read_text()
    for name, exp in EXPERIMENTS.items():
        assert exp.report_notes and exp.report_notes == report_notes(name), name
        assert "\n" not in exp.report_notes.replace("\n\n", ""), name   # lines joined
    assert report_notes("no-such-experiment") == ""


def test_report_notes_are_read_when_asked_for_not_at_import(monkeypatch):
    import randadv.framework.experiment as base

    read = []
    monkeypatch.setattr(base, "report_notes", lambda name: read.append(name) or f"notes {name}")

    class Probe(base.Experiment):
        name = "min-pert"

    class Own(base.Experiment):
        name = "depth-constant"
        report_notes = "its own"

    assert read == []                                    # defining the class reads nothing
    assert Probe().report_notes == "notes min-pert" and read == ["min-pert"]
    assert Own().report_notes == "its own" and base.Experiment.report_notes == ""
    assert read == ["min-pert"]
