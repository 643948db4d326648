"""Every experiment's smoke figures, drawn from a real smoke run: each labelled artist has a
legend entry, each per-colour line style drawn without a label is explained by a style entry,
no legend covers more than a few data points, y labels do not run into the neighbouring panel,
every panel with data has y tick labels (tests/figure_checks.py)."""

import pytest
from figure_checks import figure_problems
from matplotlib.figure import Figure

from randadv.data import load_mnist
from randadv.data.errors import DataNotFoundError
from randadv.experiments.registry import EXPERIMENTS
from randadv.runner.run import run_experiment


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_smoke_figures_have_whole_legends(name, tmp_path, monkeypatch, one_torch_thread):
    checked = {}
    save = Figure.savefig

    def checking_savefig(self, fname, *args, **kwargs):
        checked[str(fname)] = figure_problems(self)
        return save(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", checking_savefig)
    exp = EXPERIMENTS[name]
    if "data_dir" in exp.profiles["smoke"]:
        try:
            load_mnist(None, "test")
        except DataNotFoundError:
            pytest.skip("MNIST files not found (the experiment trains on MNIST)")
    summary = run_experiment(exp, "smoke", exp.params("smoke"), out=tmp_path, quiet=True)
    assert summary.figures and len(checked) >= len(summary.figures)
    problems = {f: p for f, p in checked.items() if p}
    assert not problems, problems


def test_the_checks_catch_what_they_look_for():
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2)
    a.plot([1, 2, 3], [1, 2, 3], label="data")
    a.plot([1, 2, 3], [2, 3, 4], "--")            # unlabelled line
    b.plot([1, 2], [1, 2], label="no legend anywhere")
    b.plot([1, 2], [2, 1], ":", label="_theory")  # style not explained
    problems = " | ".join(figure_problems(fig))
    plt.close(fig)
    assert "'data' has no legend entry" in problems
    assert "without a label" in problems
    assert "'no legend anywhere' has no legend entry" in problems
    assert "'_theory' lines (:)" in problems
    fig, ax = plt.subplots()
    xs = [j / 49 for j in range(50)]
    for i in range(20):
        ax.plot(xs, [i] * 50, label=f"line {i}")
    ax.legend(loc="center")
    problems = " | ".join(figure_problems(fig))
    plt.close(fig)
    assert "legend covers" in problems
