"""End-to-end smoke runs of ``lazy-sgd`` and ``lazy-adversarial-training`` on the real MNIST
files (found by the loader's default search), with their records checked."""

import pytest

from randadv.data import DataNotFoundError, load_mnist
from randadv.errors import ConfigError
from randadv.experiments.registry import get_experiment
from randadv.framework import UnitContext
from randadv.runner.run import open_results, run_experiment


@pytest.fixture(scope="module", autouse=True)
def _need_mnist():
    try:
        load_mnist(None, "test")
    except DataNotFoundError:
        pytest.skip("MNIST files not found")


def _records(name, tmp_path):
    exp = get_experiment(name)
    params = exp.params("smoke")
    summary = run_experiment(exp, "smoke", params, seed=0, out=tmp_path, quiet=True)
    assert summary.units_run == len(exp.units(params))
    store = open_results(exp, tmp_path)
    try:
        df = store.records()
    finally:
        store.close()
    assert (tmp_path / "report.md").is_file() and summary.figures
    return exp, params, df


def test_lazy_sgd_smoke_end_to_end(tmp_path):
    exp, p, df = _records("lazy-sgd", tmp_path)
    assert len(df) == len(exp.units(p)) * p["n_test"]
    assert p["data_dir"] == "" and isinstance(p["data_dir"], str)
    # every model inside its lazy ball; raw-pixel models have biases, unit-norm ones do not
    assert (df.max_dev_ratio <= 1.0).all()
    assert (df.bias == ~df.normalize).all()
    # records of the verified single gradient step
    fl = df[df.flipped]
    assert len(fl) >= 0.99 * len(df)
    assert (fl.eta.abs() >= fl.eta_boundary.abs()).all()
    assert (fl.eta.abs() <= fl.eta_boundary.abs() * (1 + 1e-3)).all()
    assert ((fl.perturbation_norm - fl.eta.abs() * fl.grad_norm).abs()
            <= 1e-9 * fl.perturbation_norm).all()
    assert (fl.eta * fl.f_x < 0).all()
    unit = df[df.normalize]
    assert ((unit.x_norm - 1).abs() < 1e-6).all()
    report = (tmp_path / "report.md").read_text()
    assert "test error" in report and "Theorem 3.1" in report


def test_lazy_sgd_unit_deterministic_and_cached(tmp_path):
    exp = get_experiment("lazy-sgd")
    p = exp.params("smoke", {"model_dir": str(tmp_path / "models"), "n_test": "20"})
    unit = exp.units(p)[0]
    a = exp.run_unit(unit, p, UnitContext(seed=0))
    assert len(list((tmp_path / "models").iterdir())) == 1
    b = exp.run_unit(unit, p, UnitContext(seed=0))       # from the model cache
    assert a == b


def test_lazy_sgd_one_training_run_serves_every_c0(tmp_path):
    """With a model cache, the first unit of a (preprocessing, d, m) trains the largest C0 once
    and caches every smaller C0's snapshot; the records equal those of separate runs."""
    exp = get_experiment("lazy-sgd")
    over = {"c0": "1,40", "n_test": "20", "d": "25", "normalize": "true"}
    p = exp.params("smoke", dict(over, model_dir=str(tmp_path / "models")))
    solo = exp.params("smoke", over)                     # no cache: each unit trains alone
    units = exp.units(p)
    assert [u["c0"] for u in units] == [1.0, 40.0] and exp.c0_siblings(units[0], p) == [1, 40]
    first = exp.run_unit(units[0], p, UnitContext(seed=0))
    assert len(list((tmp_path / "models").iterdir())) == 2     # both C0 trained by one run
    for unit, shared in ((units[0], first), (units[1], exp.run_unit(units[1], p,
                                                                   UnitContext(seed=0)))):
        alone = exp.run_unit(unit, solo, UnitContext(seed=0))
        assert [{k: v for k, v in r.items() if k != "train_seconds"} for r in shared] == \
            [{k: v for k, v in r.items() if k != "train_seconds"} for r in alone]
    assert first[0]["stop_reason"] == "left_ball" and first[0]["steps"] > 0


def test_lazy_adversarial_training_smoke_end_to_end(tmp_path):
    exp, p, df = _records("lazy-adversarial-training", tmp_path)
    assert len(df) == len(exp.units(p)) * p["n_test"]
    assert (df.adv_norm <= df.radius * (1 + 1e-5)).all()
    assert (df.max_dev_ratio <= 1 + 1e-5).all()
    assert (~df.robust | df.correct).all()                # robust implies clean-correct
    assert (df.robust == (df.correct & (df.y * df.f_adv > 0))).all()
    assert set(df.part) == {"budget", "width"}


def test_lazy_adversarial_training_parts_select_the_grid():
    exp = get_experiment("lazy-adversarial-training")
    both = exp.units(exp.params("paper"))
    for part in ("budget", "width"):
        p = exp.params("paper", {"parts": part})
        units = exp.units(p)
        assert {u["part"] for u in units} == {part}
        assert units == [u for u in both if u["part"] == part]    # the same units, in order
    p = exp.params("paper", {"parts": "budget"})
    assert len(exp.units(p)) == len(p["d"]) * len(p["radius"]) * p["seeds"]


def test_lazy_multilayer_smoke_end_to_end(tmp_path):
    exp, p, df = _records("lazy-multilayer", tmp_path)
    assert len(df) == len(exp.units(p)) * p["n_test"]
    assert set(df.depth) == set(p["depth"])
    assert (df.max_dev_ratio <= 1.0 + 1e-6).all()
    fl = df[df.flipped]
    assert len(fl) >= 0.99 * len(df)
    assert (fl.eta.abs() >= fl.eta_boundary.abs()).all()
    assert (fl.eta * fl.f_x < 0).all()


@pytest.mark.parametrize("name,key,value", [
    ("lazy-sgd", "d", "30"), ("lazy-sgd", "grid", "diagonal"), ("lazy-sgd", "bias", "maybe"),
    ("lazy-adversarial-training", "radius", "-0.1"),
    ("lazy-adversarial-training", "d_width", "1000"), ("lazy-multilayer", "depth", "0"),
    ("lazy-adversarial-training", "parts", "depth"),
    ("lazy-adversarial-training", "parts", "budget,budget"),
])
def test_bad_params_raise_config_error(name, key, value):
    with pytest.raises(ConfigError):
        get_experiment(name).params("smoke", {key: value})

