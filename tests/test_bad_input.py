"""Bad input everywhere a user can type: the CLI (one line, exit code 2, nothing stored touched)
and the library (typed exceptions, zero-gradient warning); property-based checks of the
exactness and verification of ``smallest_flip_step`` on small float64 ReLU nets."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_runner_helpers import EXP, invoke
from torch import nn

from randadv.attacks import smallest_flip_step, value_and_grad
from randadv.errors import InvalidInputError, ModelOutputError
from randadv.nets import DeepRandomNet

SMOKE = ["--profile", "smoke"]


# ------------------------------------------------------------------ CLI
@pytest.mark.parametrize("args, needle", [
    (["run", "nope"], "unknown experiment 'nope'"),
    (["run", EXP, "--profile", "tiny"], "unknown profile 'tiny'"),
    (["run", EXP, *SMOKE, "--set", "=3"], "malformed --set '=3'"),
    (["run", EXP, *SMOKE, "--set", "nets=1", "--set", "nets=2"], "--set nets given twice"),
    (["run", EXP, *SMOKE, "--set", "widht=3"], "unknown parameter 'widht'"),
    (["run", EXP, *SMOKE, "--set", "nets=2.5"], "nets=2.5: expected an integer"),
    (["run", EXP, *SMOKE, "--set", "max_eta=abc"], "max_eta=abc: expected a number"),
    (["run", EXP, *SMOKE, "--set", "max_eta=inf"], "expected a finite number"),
    (["run", EXP, *SMOKE, "--set", "d=10,x"], "d=x: expected an integer"),
    (["run", EXP, *SMOKE, "--set", "nets=0"], "nets must be >= 1, got 0"),
    (["run", EXP, *SMOKE, "--set", "inputs=-3"], "inputs must be >= 1, got -3"),
    (["run", EXP, *SMOKE, "--set", "k=-5"], "k must be >= 1"),
    (["run", EXP, *SMOKE, "--set", "depth=0"], "depth must be >= 1"),
    (["run", EXP, *SMOKE, "--set", "d=1000000", "--set", "k=10000000"], "GB in float32"),
    (["run", EXP, *SMOKE, "--workers", "0"], "'--workers': 0 is not in the range"),
    (["run", EXP, *SMOKE, "--threads", "0"], "'--threads': 0 is not in the range"),
    (["run", EXP, *SMOKE, "--executor", "slurm"], "'--executor'"),
    (["run", EXP, *SMOKE, "--address", "auto"], "need --executor ray"),
    (["run", EXP, *SMOKE, "--gpus-per-task", "1"], "need --executor ray"),
    (["run", EXP, *SMOKE, "--device", "tpu"], "--device must be cpu, cuda or auto"),
    (["run", EXP, *SMOKE, "--data-dir", "/no/such/dir"], "--data-dir /no/such/dir"),
    (["run", EXP, *SMOKE, "--bogus"], "No such option '--bogus'"),
    (["frobnicate"], "No such command 'frobnicate'"),
    (["export", EXP, "--out", "/no/such/run"], "no results in /no/such/run"),
    (["status", EXP, "--out", "/no/such/run"], "no results in /no/such/run"),
    (["status", "nope", "--out", "/no/such/run"], "unknown experiment 'nope'"),
])
def test_cli_bad_input_one_line_exit_2(args, needle, tmp_path):
    if args[0] == "run" and "--out" not in args:
        args = [*args, "--out", str(tmp_path / "o"), "--quiet"]
    res = invoke(*args)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], res.output
    assert lines[0].startswith("randadv: error: ")
    assert not (tmp_path / "o" / "results.sqlite").exists()


def test_bad_input_leaves_an_existing_run_untouched(tmp_path):
    args = ["run", EXP, *SMOKE, "--set", "depth=1", "--set", "nets=1", "--out", str(tmp_path),
            "--quiet"]
    assert invoke(*args).exit_code == 0

    def snapshot():   # the lock file holds the pid of the last run: not results
        return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.rglob("*")
                if p.is_file() and p.name != ".randadv.lock"}

    before = snapshot()
    for extra in (["--set", "nets=x"], ["--set", "nets=2"], ["--set", "bogus=1"],
                  ["--profile", "quick"], ["--seed", "1"], ["--workers", "0"]):
        res = invoke(*args, *extra)
        assert res.exit_code == 2, (extra, res.output)
        assert snapshot() == before, extra


def test_memory_estimate_in_the_refusal():
    res = invoke("run", EXP, *SMOKE, "--set", "d=1000000", "--set", "k=10000000", "--out",
                 "/nonexistent/never", "--quiet")
    assert res.exit_code == 2
    assert "needs 1e+13 weights (4e+04 GB in float32" in res.output


# ------------------------------------------------------------------ library
NET = DeepRandomNet(5, 8, 1, seed=0)
X = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))


class _Const(nn.Module):
    def forward(self, x):
        return x.sum(1) * 0 + 1.0


class _Detached(nn.Module):
    def forward(self, x):
        return x.detach().sum(1)


class _TwoLogits(nn.Module):
    def forward(self, x):
        return torch.stack([x.sum(1), -x.sum(1)], 1)


class _NaN(nn.Module):
    def forward(self, x):
        return x.sum(1) * float("nan")


class _Tuple(nn.Module):
    def forward(self, x):
        return (x.sum(1),)


@pytest.mark.parametrize("model, x, kw, exc, needle", [
    (NET, torch.full((2, 5), float("nan")), {}, InvalidInputError, "NaN or inf"),
    (NET, torch.tensor([[1.0, float("inf"), 0, 0, 0]]), {}, InvalidInputError, "NaN or inf"),
    (NET, torch.ones(2, 5, dtype=torch.int64), {}, InvalidInputError, "floating-point"),
    (NET, torch.randn(0, 5), {}, InvalidInputError, "non-empty batch"),
    (NET, X, {"max_eta": 0}, InvalidInputError, "max_eta"),
    (NET, X, {"max_eta": float("nan")}, InvalidInputError, "max_eta"),
    (NET, X, {"max_eta": -1.0}, InvalidInputError, "max_eta"),
    (_TwoLogits(), X, {}, ModelOutputError, "one scalar per input"),
    (_NaN(), X, {}, ModelOutputError, "NaN or inf"),
    (_Tuple(), X, {}, ModelOutputError, "must return a tensor"),
])
def test_library_bad_input_raises_typed_errors(model, x, kw, exc, needle):
    with pytest.raises(exc, match=needle):
        smallest_flip_step(model, x, **kw)


def test_zero_gradient_is_a_warning_not_an_error():
    with pytest.warns(RuntimeWarning, match="grad f\\(x\\) = 0"):
        r = smallest_flip_step(_Const(), X)
    assert torch.isnan(r.eta).all() and not r.flipped.any()


def test_bad_network_sizes():
    for d, k, depth in ((0, 8, 1), (5, -1, 1), (5, 8, 0)):
        with pytest.raises(InvalidInputError):
            DeepRandomNet(d, k, depth)


def test_wrong_input_dimension_for_a_random_net():
    with pytest.raises(InvalidInputError, match="dimension 6 does not match"):
        NET(torch.randn(2, 6))


def test_wrong_input_dimension_in_the_attack():
    with pytest.raises(InvalidInputError):
        smallest_flip_step(NET, torch.randn(2, 6))


@pytest.mark.parametrize("x, needle", [(torch.randn(2, 6), r"shape \(2, 6\)"),
                                      (torch.randn(2, 5, dtype=torch.float64), "torch.float64")])
def test_input_a_user_model_cannot_take_is_named(x, needle):
    # torch's own message ("mat1 and mat2 shapes cannot be multiplied") names neither
    from randadv.attacks import closest_adversarial, first_boundary_crossing
    net = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 1))
    for run in (smallest_flip_step, closest_adversarial,
                lambda m, z: first_boundary_crossing(m, z, torch.ones_like(z), 1.0)):
        with pytest.raises(InvalidInputError, match=needle):
            run(net, x)


def test_non_tensor_input_in_the_attack():
    with pytest.raises(InvalidInputError):
        smallest_flip_step(NET, [[1.0] * 5])


def test_output_without_gradient_is_reported():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises((ModelOutputError, RuntimeWarning)):
            smallest_flip_step(_Detached(), X)


# ------------------------------------------------------------------ properties of the attack
PROPS = settings(max_examples=20, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@PROPS
@given(d=st.integers(2, 8), k=st.integers(1, 24), depth=st.integers(1, 2),
       seed=st.integers(0, 10**6), n=st.integers(1, 4), max_eta=st.sampled_from([1.0, 20.0]))
def test_smallest_flip_step_is_exact_and_verified_float64_relu(d, k, depth, seed, n, max_eta):
    net = DeepRandomNet(d, k, depth, "relu", seed=seed, dtype=torch.float64)
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # dead nets: documented warning
        r = smallest_flip_step(net, x, max_eta=max_eta)
        f, g = value_and_grad(net, x)
    assert torch.equal(r.f_x, f)
    with torch.no_grad():
        for i in range(n):
            fx, gi, gn = float(f[i]), g[i], float(g[i].norm())
            s0 = math.copysign(1.0, fx)
            eb, eta = float(r.eta_boundary[i]), float(r.eta[i])
            if fx == 0 or gn == 0:
                assert math.isnan(eta) and not bool(r.flipped[i])
                continue
            scale = abs(fx) + gn * gn * max_eta
            if math.isnan(eb):
                # no flip within max_eta: no sign change on a fine scan either
                ts = torch.linspace(0, max_eta, 401, dtype=torch.float64)
                vals = net(x[i] - s0 * ts[:, None] * gi)
                assert bool((vals * s0 > -1e-12 * scale).all())
                assert not bool(r.flipped[i]) and math.isnan(eta)
                continue
            # the boundary opposes f(x) and is a root; nothing flips before it
            assert eb * s0 < 0 and abs(eb) <= max_eta * (1 + 1e-12)
            assert abs(float(net((x[i] + eb * gi)[None])[0])) <= 1e-9 * scale
            ts = torch.linspace(0, abs(eb), 401, dtype=torch.float64)[:-1]
            vals = net(x[i] - s0 * ts[:, None] * gi)
            assert bool((vals * s0 > -1e-9 * scale).all())
            if math.isnan(eta):
                # f reaches 0 and stays there (all ReLUs dead): no strict flip past the root
                assert not bool(r.flipped[i])
                past = net((x[i] + eb * (1 + 1e-3) * gi)[None])[0]
                assert float(past) * s0 >= -1e-9 * scale
                continue
            assert eta * s0 < 0
            # the reported example: just past the boundary, verified by a forward pass
            assert bool(r.flipped[i])
            assert abs(eb) <= abs(eta) <= abs(eb) * (1 + 1e-3) + 1e-12
            assert torch.allclose(r.x_adv[i], x[i] + eta * gi, rtol=0, atol=1e-12)
            f_adv = float(net(r.x_adv[i][None])[0])
            assert f_adv * s0 < 0 and f_adv == pytest.approx(float(r.f_adv[i]), abs=1e-12)
            assert float(r.perturbation_norm[i]) == pytest.approx(abs(eta) * gn, rel=1e-12)
