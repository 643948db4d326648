"""Lazy-regime two-layer nets (Definition 2.1), SGD inside the lazy ball, PGD-l2, projected
adversarial training (Algorithm 1), model store ("Adversarial Robustness is at Odds with Lazy
Training", NeurIPS 2022)."""

import math

import pytest
import torch

from randadv.attacks import as_piecewise_linear, smallest_flip_step
from randadv.attacks.pgd import pgd_l2, project_l2_box
from randadv.errors import InvalidInputError, StoreError
from randadv.train import (
    AdversarialTrainConfig,
    LazyTrainConfig,
    LazyTwoLayerNet,
    ModelCache,
    lazy_radius,
    load_model,
    project_to_lazy_ball,
    save_model,
    train_adversarial,
    train_lazy_sgd,
    train_lazy_sgd_c0s,
)


def toy_data(n=400, d=16, seed=0):
    """Two separable blobs in [0, 1]^d, labels +-1."""
    g = torch.Generator().manual_seed(seed)
    y = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    centre = torch.where(torch.arange(d) < d // 2, 0.7, 0.2)
    x = 0.5 + (y[:, None] * (centre - 0.45)) + 0.1 * torch.randn(n, d, generator=g)
    return x.clamp(0, 1), y


# ---------------------------------------------------------------- model (Definition 2.1)
def test_init_statistics_follow_definition_2_1():
    net = LazyTwoLayerNet(50, 4000, seed=3)
    w = net[0].weight.detach()
    assert w.shape == (4000, 50)
    # w_s0 ~ N(0, I_d): unit variance (not 1/d); 200,000 entries
    assert abs(float(w.mean())) < 0.01
    assert abs(float(w.var()) - 1.0) < 0.02
    a = net.a
    assert set(a.unique().tolist()) == {-1.0, 1.0}
    assert abs(float(a.mean())) < 0.05
    assert torch.allclose(net[2].weight[0], a / math.sqrt(4000))
    assert not net[2].weight.requires_grad and net[0].weight.requires_grad
    assert torch.equal(net.w0, w) and net.max_deviation() == 0.0
    x = torch.rand(7, 50)
    expected = (torch.relu(x @ w.T) * a).sum(1) / math.sqrt(4000)
    assert torch.allclose(net(x), expected, atol=1e-4)


def test_same_seed_same_init_and_bias_variant():
    a, b = LazyTwoLayerNet(10, 30, seed=5, bias=True), LazyTwoLayerNet(10, 30, seed=5, bias=True)
    assert torch.equal(a[0].weight, b[0].weight) and torch.equal(a[0].bias, b[0].bias)
    assert float(a[0].bias.detach().abs().max()) <= 1 / math.sqrt(10)
    assert not torch.equal(a[0].weight, LazyTwoLayerNet(10, 30, seed=6)[0].weight)


def test_bad_input_typed_errors():
    with pytest.raises(InvalidInputError):
        LazyTwoLayerNet(0, 10)
    with pytest.raises(InvalidInputError):
        LazyTrainConfig(c0=-1.0)
    with pytest.raises(InvalidInputError):
        AdversarialTrainConfig(radius=0.0, v=1.0)
    net = LazyTwoLayerNet(4, 8)
    with pytest.raises(InvalidInputError):
        train_lazy_sgd(net, torch.rand(5, 3), torch.ones(5), LazyTrainConfig())
    with pytest.raises(InvalidInputError):
        train_lazy_sgd(net, torch.rand(5, 4), torch.zeros(5), LazyTrainConfig())


@pytest.mark.parametrize("bias", [False, True])
def test_exact_smallest_flip_step_on_lazy_net(bias):
    """The net is an nn.Sequential(Linear, ReLU, Linear): the exact kink sweep applies and
    eta_boundary is the first zero of t -> f(x + t grad f(x)) on the flipping side."""
    net = LazyTwoLayerNet(20, 300, seed=1, bias=bias).double()
    assert as_piecewise_linear(net) is not None
    x = torch.rand(40, 20, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    r = smallest_flip_step(net, x, max_eta=50.0, exact=True)
    assert bool(r.flipped.all())
    with torch.no_grad():
        g = torch.func.vmap(torch.func.grad(lambda z: net(z[None])[0]))(x)
        fb = net(x + r.eta_boundary[:, None] * g)
        assert float((fb.abs() / r.f_x.abs()).max()) < 1e-9          # on the boundary
        for frac in torch.linspace(0.01, 0.999, 25, dtype=torch.float64):
            f = net(x + frac * r.eta_boundary[:, None] * g)       # no earlier crossing
            assert bool((torch.sign(f) == torch.sign(r.f_x)).all())
    assert torch.allclose(r.perturbation_norm, r.eta.abs() * r.grad_norm)


# ---------------------------------------------------------------- SGD in the lazy ball
def test_training_stays_in_ball_and_stops_when_it_would_leave():
    x, y = toy_data()
    c0 = 0.5
    net = LazyTwoLayerNet(16, 200, seed=0, bias=True)
    cfg = LazyTrainConfig(c0=c0, lr=0.1, batch_size=16, max_epochs=50, seed=1)
    res = train_lazy_sgd(net, x, y, cfg)
    radius = lazy_radius(c0, 200)
    assert res.stop_reason == "left_ball"
    assert res.max_deviation <= radius and net.max_deviation() <= radius
    # the same run without the ball: after exactly `steps` steps the weights are identical,
    # and the next step leaves the ball
    free = LazyTwoLayerNet(16, 200, seed=0, bias=True)
    train_lazy_sgd(free, x, y, LazyTrainConfig(c0=1e9, lr=0.1, batch_size=16, max_epochs=50,
                                               seed=1, max_steps=res.steps))
    assert torch.equal(free[0].weight, net[0].weight)
    assert torch.equal(free[0].bias, net[0].bias)
    one_more = LazyTwoLayerNet(16, 200, seed=0, bias=True)
    r2 = train_lazy_sgd(one_more, x, y, LazyTrainConfig(c0=1e9, lr=0.1, batch_size=16,
                                                        max_epochs=50, seed=1,
                                                        max_steps=res.steps + 1))
    assert r2.stop_reason == "max_steps" and one_more.max_deviation() > radius


@pytest.mark.parametrize("bias", [False, True])
def test_one_run_for_every_c0_is_bit_identical_to_separate_runs(bias):
    """Issue 16 item 3: the largest C0's run snapshotted at each smaller ball's exit gives the
    model and result of that C0's own run (a ball never left: the run's end)."""
    x, y = toy_data(n=300)
    xt, yt = toy_data(n=100, seed=5)
    c0s = [0.3, 0.6, 1.2, 50.0]      # 50: never leaves the ball in 4 epochs (max_epochs)
    base = dict(lr=0.1, batch_size=16, max_epochs=4, seed=2)
    shared = train_lazy_sgd_c0s(LazyTwoLayerNet(16, 120, seed=7, bias=bias), x, y,
                                LazyTrainConfig(**base), c0s, xt, yt)
    assert sorted(shared) == c0s
    reasons = set()
    for c0 in c0s:
        net = LazyTwoLayerNet(16, 120, seed=7, bias=bias)
        res = train_lazy_sgd(net, x, y, LazyTrainConfig(c0=c0, **base), xt, yt)
        snap, sres = shared[c0]
        assert torch.equal(snap[0].weight, net[0].weight)
        if bias:
            assert torch.equal(snap[0].bias, net[0].bias)
        a, b = res.to_dict(), sres.to_dict()
        a.pop("seconds"), b.pop("seconds")
        assert a == b, c0
        reasons.add(res.stop_reason)
    assert reasons == {"left_ball", "max_epochs"}    # both endings are covered
    steps = [shared[c][1].steps for c in c0s]
    assert steps == sorted(steps) and steps[0] < steps[-1]


def test_one_run_for_every_c0_with_max_steps_and_bad_input():
    x, y = toy_data(n=200)
    base = dict(lr=0.1, batch_size=16, max_epochs=5, seed=3, max_steps=7)
    shared = train_lazy_sgd_c0s(LazyTwoLayerNet(16, 60, seed=1), x, y,
                                LazyTrainConfig(**base), [0.05, 40.0])
    for c0 in (0.05, 40.0):
        net = LazyTwoLayerNet(16, 60, seed=1)
        res = train_lazy_sgd(net, x, y, LazyTrainConfig(c0=c0, **base))
        assert torch.equal(shared[c0][0][0].weight, net[0].weight)
        assert shared[c0][1].stop_reason == res.stop_reason and shared[c0][1].steps == res.steps
    assert shared[40.0][1].stop_reason == "max_steps"
    with pytest.raises(InvalidInputError):
        train_lazy_sgd_c0s(LazyTwoLayerNet(16, 60), x, y, LazyTrainConfig(), [])
    with pytest.raises(InvalidInputError):
        train_lazy_sgd_c0s(LazyTwoLayerNet(16, 60), x, y, LazyTrainConfig(), [1.0, -2.0])


def test_training_is_deterministic_and_learns():
    x, y = toy_data(n=200)
    runs = []
    for _ in range(2):
        net = LazyTwoLayerNet(16, 100, seed=4)
        res = train_lazy_sgd(net, x, y, LazyTrainConfig(c0=20.0, max_epochs=20, batch_size=16,
                                                             seed=9),
                             x[:100], y[:100])
        runs.append((net[0].weight.detach().clone(), res))
    assert torch.equal(runs[0][0], runs[1][0])
    assert runs[0][1].steps == runs[1][1].steps
    assert runs[0][1].test_acc > 0.95 and runs[0][1].train_acc > 0.95


# ---------------------------------------------------------------- PGD-l2
def test_project_l2_box_is_feasible_and_optimal():
    g = torch.Generator().manual_seed(0)
    c = torch.rand(64, 5, generator=g, dtype=torch.float64)
    z = c + 2 * torch.randn(64, 5, generator=g, dtype=torch.float64)
    p = project_l2_box(z, c, 0.3)
    assert float((p - c).norm(dim=1).max()) <= 0.3 + 1e-12
    assert float(p.min()) >= 0 and float(p.max()) <= 1
    # no random feasible point of the intersection is closer to z
    for _ in range(200):
        q = c + 0.3 * torch.rand(64, 1, generator=g, dtype=torch.float64) * \
            torch.nn.functional.normalize(torch.randn(64, 5, generator=g, dtype=torch.float64))
        q = project_l2_box(q.clamp(0, 1), c, 0.3)
        assert bool(((p - z).norm(dim=1) <= (q - z).norm(dim=1) + 1e-9).all())
    inside = c + 0.01
    assert torch.allclose(project_l2_box(inside.clamp(0, 1), c, 0.3), inside.clamp(0, 1))


@pytest.mark.parametrize("random_start", [False, True])
def test_pgd_respects_budget_and_box(random_start):
    net = LazyTwoLayerNet(30, 200, seed=2)
    x = torch.rand(80, 30, generator=torch.Generator().manual_seed(3))
    y = torch.sign(net(x).detach())
    for radius in (0.05, 1.0):
        r = pgd_l2(net, x, y, radius, steps=15, random_start=random_start, seed=4)
        assert float(r.norm.max()) <= radius * (1 + 1e-5)
        assert float(r.x_adv.min()) >= 0.0 and float(r.x_adv.max()) <= 1.0
        with torch.no_grad():
            assert torch.equal(r.f_adv, net(r.x_adv))             # verified forward pass
        assert torch.equal(r.robust, (y * r.f_x > 0) & (y * r.f_adv > 0))
    assert r.success.float().mean() > 0.9                         # R = 1 breaks this net
    r2 = pgd_l2(net, x, y, 1.0, steps=15, random_start=random_start, seed=4)
    assert torch.equal(r.x_adv, r2.x_adv)                          # deterministic


def test_pgd_typed_errors():
    net = LazyTwoLayerNet(3, 10)
    with pytest.raises(InvalidInputError):
        pgd_l2(net, torch.full((2, 3), 2.0), torch.ones(2), 0.1)   # outside the box
    with pytest.raises(InvalidInputError):
        pgd_l2(net, torch.rand(2, 3), torch.zeros(2), 0.1)
    with pytest.raises(InvalidInputError):
        pgd_l2(net, torch.rand(2, 3), torch.ones(2), -0.1)


# ---------------------------------------------------------------- Algorithm 1
def test_projection_to_lazy_ball():
    net = LazyTwoLayerNet(6, 50, seed=0, bias=True)
    with torch.no_grad():
        net[0].weight.add_(torch.randn(50, 6))
        net[0].bias.add_(1.0)
    project_to_lazy_ball(net, 0.25)
    assert net.max_deviation() <= 0.25 * (1 + 1e-6)


def test_projected_adversarial_training_stays_in_ball():
    x, y = toy_data(n=200)
    v = 0.3
    net = LazyTwoLayerNet(16, 100, seed=7)
    res = train_adversarial(net, x, y, AdversarialTrainConfig(
        radius=0.1, v=v, pgd_steps=5, max_epochs=3, patience=1, seed=2), x[:50], y[:50])
    assert net.max_deviation() <= v * (1 + 1e-5)
    assert res.stop_reason in ("max_epochs", "robust_acc_plateau")
    assert res.history and all(0 <= h["robust_train_acc"] <= 1 for h in res.history)


# ---------------------------------------------------------------- store
def test_save_load_round_trip_and_cache(tmp_path):
    net = LazyTwoLayerNet(9, 40, seed=3, bias=True)
    with torch.no_grad():
        net[0].weight.add_(0.01)
    cfg = dict(kind="test", c0=1.0, d=9)
    save_model(net, tmp_path / "m", cfg, dict(test_acc=0.5))
    back, saved = load_model(tmp_path / "m")
    assert isinstance(back, LazyTwoLayerNet) and saved["train"] == cfg
    assert saved["result"]["test_acc"] == 0.5
    for k, v in net.state_dict().items():
        assert torch.equal(v, back.state_dict()[k])
    x = torch.rand(5, 9)
    assert torch.equal(net(x), back(x))
    cache = ModelCache(tmp_path / "cache")
    assert cache.get(cfg) is None
    cache.put(net, cfg, dict(test_acc=0.5))
    hit = cache.get(cfg)
    assert hit is not None and torch.equal(hit[0](x), net(x))
    assert cache.get(dict(cfg, c0=2.0)) is None
    assert ModelCache(None).get(cfg) is None
    with pytest.raises(StoreError):
        load_model(tmp_path / "nothing")


# ---------------------------------------------------------------- standard training (Adam)
def test_standard_training_checkpoints_and_resumes(tmp_path):
    from randadv.train import StandardTrainConfig, train_standard

    x, y = toy_data(n=128)

    def small_net():
        torch.manual_seed(0)   # test-only module init; randadv code never reads the global RNG
        return torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(),
                                   torch.nn.Linear(8, 1))

    cfg = StandardTrainConfig(epochs=3, lr=1e-2, batch_size=32, seed=5)
    full = small_net()
    res = train_standard(full, x, y, cfg, tmp_path / "a")
    assert res.train_acc > 0.9 and len(res.history) == 3

    class Stop(Exception):
        pass

    def interrupt(msg):
        if msg.startswith("epoch 1"):
            raise Stop

    part = small_net()
    with pytest.raises(Stop):
        train_standard(part, x, y, cfg, tmp_path / "b", log=interrupt)
    resumed = small_net()
    res2 = train_standard(resumed, x, y, cfg, tmp_path / "b")
    for p1, p2 in zip(full.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p1, p2)
    assert res2.history == res.history
    with pytest.raises(StoreError):     # another configuration in the same folder
        train_standard(small_net(), x, y, StandardTrainConfig(epochs=4, seed=5), tmp_path / "b")


# ---------------------------------------------------------------- multi-layer lazy nets
def test_lazy_deep_net_init_training_and_exact_attack():
    from randadv.train import LazyDeepNet

    net = LazyDeepNet(16, 300, 3, seed=2)
    assert as_piecewise_linear(net) is not None
    # raw parameters N(0, 1): first layer as stored, hidden layers sqrt(m) * effective
    assert abs(float(net[0].weight.detach().var()) - 1) < 0.05
    assert abs(float(net[2].weight.detach().var()) * 300 - 1) < 0.05
    x, y = toy_data(n=200)
    c0 = 2.0
    res = train_lazy_sgd(net, x, y, LazyTrainConfig(c0=c0, max_epochs=30, batch_size=16,
                                                    seed=1))
    radius = lazy_radius(c0, 300)
    assert res.max_deviation <= radius
    for k, g in enumerate(net.lazy_groups()):     # every layer inside the raw-parameter ball
        assert float(g.row_sq_deviation().max()) ** 0.5 <= radius * (1 + 1e-6), k
    again = LazyDeepNet(16, 300, 3, seed=2)
    train_lazy_sgd(again, x, y, LazyTrainConfig(c0=c0, max_epochs=30, batch_size=16, seed=1))
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), again.parameters(),
                                                 strict=True))
    r = smallest_flip_step(net.double(), x[:20].double(), max_eta=50.0, exact=True)
    assert bool(r.flipped.all())


def test_model_cache_get_or_train_trains_once(tmp_path):
    """The experiments' one train-or-load path: the second call loads, bit-identical."""
    from randadv.train.store import ModelCache

    calls = []

    def train():
        calls.append(1)
        return LazyTwoLayerNet(4, 8, seed=1, bias=False), {"test_acc": 0.5}

    cache = ModelCache(tmp_path)
    m1, r1 = cache.get_or_train({"kind": "t", "seed": 1}, "cpu", train)
    m2, r2 = cache.get_or_train({"kind": "t", "seed": 1}, "cpu", train)
    assert len(calls) == 1 and r1 == r2 == {"test_acc": 0.5}
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(),
                                                 m2.state_dict().values(), strict=True))
    ModelCache(None).get_or_train({"kind": "t"}, "cpu", train)     # no cache: trains
    assert len(calls) == 2
