"""The examples run, on tiny sizes, as part of the test suite."""

import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_attack_your_model_example():
    out = load("attack_your_model").main(d=20, width=32, n=8)
    assert 0.0 <= out["mlp_flip_rate"] <= 1.0
    assert out["conv_flip_rate"] > 0


def test_custom_sweep_example():
    rows = load("custom_sweep").sweep(ds=(20, 80), depths=(1,), k=50, nets=2, inputs=5)
    assert set(rows) == {(1, 20), (1, 80)}
    # relative perturbation shrinks with d (Theorem 2's ||x|| / sqrt(d) scaling)
    assert rows[(1, 80)] < rows[(1, 20)]
