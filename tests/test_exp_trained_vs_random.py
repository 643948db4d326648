"""``trained-vs-random`` (De Palma et al. 2021, Section 4.1) smoke run on the real MNIST."""

import pytest

from randadv.data import DataNotFoundError, load_mnist
from randadv.errors import ConfigError
from randadv.experiments.registry import get_experiment
from randadv.runner.run import open_results, run_experiment


def test_trained_vs_random_smoke_end_to_end(tmp_path):
    try:
        load_mnist(None, "test")
    except DataNotFoundError:
        pytest.skip("MNIST files not found")
    exp = get_experiment("trained-vs-random")
    p = exp.params("smoke")
    run_experiment(exp, "smoke", p, seed=0, out=tmp_path, quiet=True)
    store = open_results(exp, tmp_path)
    try:
        df = store.records()
    finally:
        store.close()
    assert len(df) == 2 * 3 * len(p["norms"]) * p["points"]
    assert set(df.state) == {"random", "trained"} and set(df.inputs) == {"random", "train",
                                                                        "test"}
    ok = df[df.success]
    assert len(ok) >= 0.5 * len(df) and (ok.distance > 0).all()
    assert df[df.state == "trained"].train_acc.notna().all()
    assert (tmp_path / "report.md").is_file()


def test_trained_vs_random_bad_params():
    exp = get_experiment("trained-vs-random")
    with pytest.raises(ConfigError):
        exp.params("smoke", {"norms": "l3"})
    with pytest.raises(ConfigError):
        exp.params("smoke", {"dataset": "svhn"})


def test_trained_vs_random_paper_scale_needs_the_whole_training_set():
    # the claims are stated for the paper's ResNet trained 15 epochs on the whole training
    # set: a subset (n_train > 0) does not reach that scale, whatever the epochs
    import pandas as pd

    exp = get_experiment("trained-vs-random")
    rows = [dict(net=0, state=s, inputs=k, norm="l2", index=i, distance=0.1 * (i + 1),
                 success=True, own_norm=True, x_norm=1.0, f_x=1.0, y=1, correct=True,
                 train_acc=0.99, test_acc=0.98, train_seconds=1.0)
            for s in ("random", "trained") for k in ("random", "train", "test")
            for i in range(8)]
    df = pd.DataFrame(rows)
    full = exp.check_claims(df, exp.params("paper"))
    subset = exp.check_claims(df, exp.params("paper", {"n_train": "4000"}))
    short = exp.check_claims(df, exp.params("paper", {"epochs": "1"}))
    assert full and all(c.reached for c in full)
    assert len(subset) == len(full) and not any(c.reached for c in subset)
    assert not any(c.reached for c in short)
