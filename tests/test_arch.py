"""randadv.arch: one description per network family.

- ``build(seed)`` gives the weights the old constructors give for the same seed;
- every law / prediction method returns the numbers of the theory function it names
  (equality, not closeness: it passes the same arguments);
- the new ``hidden_gain`` of the NNGP recursion agrees with the independent recursion of
  ``gp_limit`` and with a Monte-Carlo estimate over built networks;
- bad parameters raise ``InvalidInputError`` with the parameter's name.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from randadv.arch import ImageNetSpec, MLPSpec, SmallNetSpec
from randadv.errors import InvalidInputError
from randadv.exact import to_affine_layers
from randadv.nets import (
    Activation,
    DeepRandomNet,
    DeepReLUNet,
    RandomMLP,
    TwoLayerRandomNet,
    build_architecture,
    get_activation,
    sphere_points,
)
from randadv.nets.plain import plain_relu_sequential
from randadv.theory import (
    corollary1_l1_radius,
    corollary1_segment_radius,
    expected_grad_norm_sq,
    fourth_moments,
    gp_single_step,
    gp_value_grad_law,
    lp_radius,
    min_pert_ratio_mean,
    min_pert_ratio_theory,
    nngp_kernel,
    nngp_kernel_matrix,
    relu_correlation_iterates,
    sample_gp_value_and_grad,
    sample_two_layer_ray,
    single_step_prediction,
)
from randadv.theory.gp_limit import gp_law_of


def _same_weights(a: RandomMLP, b: RandomMLP) -> bool:
    return (a.widths == b.widths and a.activation.name == b.activation.name
            and all(torch.equal(la.full(), lb.full()) for la, lb in zip(a.layers, b.layers,
                                                                        strict=True))
            and all(torch.equal(a.bias(i), b.bias(i)) for i in range(a.depth))
            and torch.equal(a.out_weight, b.out_weight))


# ---------------------------------------------------------------------------- MLP: build
@pytest.mark.parametrize("spec, old", [
    (MLPSpec.two_layer(12, 30, "tanh"), lambda s: TwoLayerRandomNet(12, 30, "tanh", seed=s)),
    (MLPSpec.two_layer(12, 30, bias_std=0.5),
     lambda s: TwoLayerRandomNet(12, 30, seed=s, bias_std=0.5)),
    (MLPSpec.deep(12, 20, 3, "relu", output="gaussian", hidden_gain=2.0),
     lambda s: DeepRandomNet(12, 20, 3, "relu", seed=s, output="gaussian", hidden_gain=2.0)),
    (MLPSpec.nn_def([12, 7, 9], bias_std=0.3),
     lambda s: DeepReLUNet([12, 7, 9], seed=s, bias_std=0.3)),
    (MLPSpec((12, 5, 6, 7), "softplus", "gaussian", 0.1, 1.5),
     lambda s: RandomMLP([12, 5, 6, 7], "softplus", s, output="gaussian", bias_std=0.1,
                         hidden_gain=1.5)),
])
def test_build_gives_the_old_constructors_weights(spec, old):
    for seed in (0, 17):
        assert _same_weights(spec.build(seed), old(seed))
    streamed = spec.build(3, max_weight_bytes=64, block_rows=4)
    assert _same_weights(streamed, old(3))
    x = torch.randn(5, spec.d, generator=torch.Generator().manual_seed(1))
    assert torch.equal(spec.build(3)(x), old(3)(x))
    assert spec.build(3, dtype=torch.float64).dtype == torch.float64


def test_spec_structure_and_config_round_trip():
    spec = MLPSpec.nn_def([10, 4, 6], hidden_gain=2.0)
    assert (spec.d, spec.n, spec.depth, spec.hidden) == (10, 10, 2, (4, 6))
    assert spec.piecewise_linear and spec.pixel_ratio == 1.0
    assert MLPSpec(**spec.config()) == spec
    assert hash(MLPSpec(**spec.config())) == hash(spec)
    assert not MLPSpec.two_layer(3, 4, "tanh").piecewise_linear
    # the spec is its five parameters: the activation is resolved from its field, not stored
    # twice (a registry activation by its name, any other as the Activation itself)
    assert [f.name for f in dataclasses.fields(MLPSpec)] == [
        "widths", "activation", "output", "bias_std", "hidden_gain"]
    custom = MLPSpec.two_layer(3, 4, torch.sin)
    assert isinstance(custom.activation, Activation) and custom.activation_name == "sin"
    assert not custom.piecewise_linear
    relu = MLPSpec.deep(3, 4, 1, get_activation("relu"))
    assert relu.activation == "relu" and relu == MLPSpec.deep(3, 4, 1) and relu.piecewise_linear


# ---------------------------------------------------------------------------- MLP: plain form
@pytest.mark.parametrize("spec", [
    MLPSpec.nn_def([6, 8, 5]),
    MLPSpec.deep(6, 8, 2, "leaky_relu", bias_std=0.4, hidden_gain=2.0),
    MLPSpec.two_layer(6, 9, "linear"),
])
def test_plain_form_computes_the_network(spec):
    net, seq = spec.build(4, dtype=torch.float64), spec.plain(4)
    x = torch.randn(7, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert seq(x).shape == (7,)
    torch.testing.assert_close(seq(x), net(x), rtol=0, atol=1e-12)
    if spec.activation_name == "relu":      # the exact reader reads both forms alike
        a, b = to_affine_layers(net), to_affine_layers(seq)
        assert all(np.allclose(wa, wb) and np.allclose(ba, bb)
                   for (wa, ba), (wb, bb) in zip(a, b, strict=True))


def test_plain_form_refuses_smooth_activations():
    with pytest.raises(InvalidInputError, match="piecewise-linear"):
        MLPSpec.two_layer(4, 5, "tanh").plain(0)


# ---------------------------------------------------------------------------- MLP: laws
X = np.linspace(-1.0, 2.0, 8)
Y = np.cos(np.arange(8.0))


@pytest.mark.parametrize("spec", [
    MLPSpec.two_layer(8, 50),
    MLPSpec.deep(8, 50, 3, "tanh", bias_std=0.2),
    MLPSpec.nn_def([8, 5, 9]),
])
def test_laws_are_the_theory_functions_numbers(spec):
    w, act, b, out = list(spec.widths), spec.activation, spec.bias_std, spec.output
    assert spec.nngp_kernel(X, Y) == nngp_kernel(X, Y, w, act, b, out)
    assert spec.nngp_kernel(X, Y) == nngp_kernel(X, Y, spec.depth, act, b)
    XY = np.stack([X, Y])
    np.testing.assert_array_equal(spec.nngp_kernel_matrix(XY),
                                  nngp_kernel_matrix(XY, None, w, act, b, out))
    assert spec.expected_grad_norm_sq(X) == expected_grad_norm_sq(X, w, act, b)
    assert spec.gp_law() == gp_value_grad_law(spec.d, spec.depth, act, bias_std=b)
    assert spec.gp_law(x_norm=2.0) == gp_value_grad_law(spec.d, spec.depth, act, x_norm=2.0,
                                                        bias_std=b)
    assert gp_law_of(spec) == gp_law_of(spec.build(0)) == spec.gp_law()
    s1, s2 = spec.sample_gp(X, 50, seed=3), sample_gp_value_and_grad(X, 50, spec.depth, act,
                                                                     seed=3, bias_std=b)
    np.testing.assert_array_equal(s1.f, s2.f)
    assert spec.gp_single_step(n=500, seed=1) == gp_single_step(spec.d, spec.depth, act,
                                                                bias_std=b, n=500, seed=1)
    assert spec.lp_radius(2, 0.5, 3.0) == lp_radius(2, spec.d, 0.5, 1.0, 3.0)
    assert spec.corollary1_l1_radius(0.1, 3.0) == corollary1_l1_radius(spec.d, 0.1, 1.0, 3.0)
    assert spec.corollary1_segment_radius(0.1, 3.0) == corollary1_segment_radius(0.1, 1.0, 3.0)


def test_predictions_are_the_theory_functions_numbers():
    two = MLPSpec.two_layer(40, 30, "tanh")
    p, q = two.single_step_prediction(), single_step_prediction("tanh", 1, 40)
    assert (p.f_var, p.grad_norm_sq) == (q.f_var, q.grad_norm_sq)
    p = two.single_step_prediction(finite_d=False)
    assert p.grad_norm_sq == single_step_prediction("tanh", 1, None).grad_norm_sq
    deep = MLPSpec.deep(40, 30, 3, hidden_gain=2.0)
    p, q = deep.single_step_prediction(), single_step_prediction("relu", 3, None,
                                                                 hidden_gain=2.0)
    assert (p.f_var, p.grad_norm_sq) == (q.f_var, q.grad_norm_sq)
    assert two.fourth_moments() == fourth_moments("tanh", 40, 30)
    r1 = two.two_layer_ray(3, seed=5)
    r2 = sample_two_layer_ray(40, 30, "tanh", pairs=3, seed=5)
    assert torch.equal(r1.z, r2.z) and torch.equal(r1.c, r2.c)
    assert two.min_pert_ratio() == min_pert_ratio_mean(30, 40)
    assert two.min_pert_ratio(exact=False) == min_pert_ratio_theory(30, 40)
    rho = np.array([-0.5, 0.0, 0.9])
    np.testing.assert_array_equal(deep.output_correlation(rho),
                                  relu_correlation_iterates(rho, 3)[-1])


def test_hidden_gain_kernel_agrees_with_the_independent_gp_recursion():
    # nngp.py (kernel recursion) and gp_limit.py (joint law of (z, e . grad z)) are separate
    # code; with the new hidden_gain both must give Var f and E ||grad f||^2 alike
    x = np.linspace(0.5, 1.5, 6)
    for spec in (MLPSpec.deep(6, 10, 3, "tanh", bias_std=0.3, hidden_gain=2.0),
                 MLPSpec.deep(6, 10, 2, "relu", bias_std=0.5, hidden_gain=0.7)):
        law = spec.gp_law(x_norm=float(np.linalg.norm(x)))
        assert spec.nngp_kernel(x, x).kxx == pytest.approx(law.f_var, rel=1e-9)
        assert spec.expected_grad_norm_sq(x) == pytest.approx(
            5 * law.tangential_var + law.radial_var, rel=1e-9)


def test_hidden_gain_kernel_matches_built_networks():
    # bias-free ReLU: E f(x)^2 = g^{L-1} 2^-L ||x||^2 / d exactly at every width (sign symmetry,
    # Bartlett et al. 2021, Lemma 2.1), so the mean over independent nets of f(x)^2 estimates the
    # kernel without width bias; 4 standard errors
    spec = MLPSpec.deep(8, 16, 3, hidden_gain=2.0)
    x = sphere_points(1, 8, math.sqrt(8), "arch-test", dtype=torch.float64)
    f = torch.stack([spec.build(s, dtype=torch.float64)(x)[0] for s in range(600)])
    f2 = (f ** 2).numpy()
    kxx = spec.nngp_kernel(x[0].numpy(), x[0].numpy()).kxx
    assert kxx == pytest.approx(2.0 ** 2 * 2.0 ** -3 * float(x.norm()) ** 2 / 8, rel=1e-12)
    assert abs(f2.mean() - kxx) <= 4 * f2.std(ddof=1) / math.sqrt(len(f2))


# ---------------------------------------------------------------------------- MLP: bad input
@pytest.mark.parametrize("make, match", [
    (lambda: MLPSpec((5,)), "hidden width"),
    (lambda: MLPSpec((5, 0)), "positive"),
    (lambda: MLPSpec(("a", 3)), "widths"),
    (lambda: MLPSpec((5, 3), output="softmax"), "output"),
    (lambda: MLPSpec((5, 3), bias_std=-1.0), "bias_std"),
    (lambda: MLPSpec((5, 3), bias_std=math.nan), "bias_std"),
    (lambda: MLPSpec((5, 3, 3), hidden_gain=0.0), "hidden_gain"),
    (lambda: MLPSpec((5, 3), "no_such_activation"), "activation"),
    (lambda: MLPSpec.deep(5, 3, 0), "depth"),
    (lambda: MLPSpec.two_layer(5, 3, output="gaussian"), "deep"),
    (lambda: MLPSpec.two_layer(5, 3).build(0, hidden_gain=2.0), "build options"),
    (lambda: MLPSpec.two_layer(5, 3, bias_std=0.1).single_step_prediction(), "bias-free"),
    (lambda: MLPSpec.deep(5, 3, 2).two_layer_ray(), "one hidden layer"),
    (lambda: MLPSpec.deep(5, 3, 2).fourth_moments(), "one hidden layer"),
    (lambda: MLPSpec.two_layer(5, 3, "tanh").output_correlation(0.5), "ReLU"),
    (lambda: MLPSpec.two_layer(5, 3).sample_gp(np.ones(4), 10), r"\(5,\)"),
])
def test_bad_mlp_parameters_raise(make, match):
    with pytest.raises(InvalidInputError, match=match):
        make()


# ---------------------------------------------------------------------------- image nets
SMALL = {
    "fc": dict(hidden=(6, 5)),
    "lenet": dict(width=3, dense=(4,)),
    "conv4": dict(width=3, depth=2),
    "resnet": dict(widths=(2, 3, 4), blocks_per_stage=1),
}


@pytest.mark.parametrize("name", list(SMALL))
def test_image_spec_builds_the_zoo_net(name):
    spec = ImageNetSpec(name, 9, channels=2, options=SMALL[name])
    old = build_architecture(name, 9, 11, channels=2, **SMALL[name])
    new = spec.build(11)
    sa, sb = old.state_dict(), new.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert new.config == old.config
    assert (spec.n, spec.input_shape) == (old.n, old.input_shape)
    for size in (8, 9, 13, (12, 17)):
        s = ImageNetSpec(name, size, channels=2, options=SMALL[name])
        assert s.pixel_ratio == build_architecture(name, size, 0, channels=2,
                                                   **SMALL[name]).pixel_ratio
    assert spec.lp_radius(1, 0.5, 2.0) == lp_radius(1, old.n, 0.5, old.pixel_ratio, 2.0)
    assert spec.corollary1_segment_radius(0.5, 2.0) == corollary1_segment_radius(
        0.5, old.pixel_ratio, 2.0)
    assert ImageNetSpec(**spec.config()) == spec
    assert hash(ImageNetSpec(**spec.config())) == hash(spec)     # usable as a cache key


def test_image_spec_default_sizes_pixel_ratio():
    # the paper's nets at s = 28 (no full-size network is built for the ratio)
    assert ImageNetSpec("resnet", 28).pixel_ratio == 7 ** 2 / 28 ** 2
    assert ImageNetSpec("lenet", 28).pixel_ratio == 7 ** 2 / 28 ** 2
    assert ImageNetSpec("fc", 28).pixel_ratio == ImageNetSpec("conv4", 28).pixel_ratio == 1.0


def test_image_spec_plain_form():
    spec = ImageNetSpec("lenet", 8, channels=1, options=SMALL["lenet"])
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = plain_relu_sequential(spec.build(2, dtype=torch.float64))
    torch.testing.assert_close(spec.plain(2)(x), ref(x), rtol=0, atol=0)
    with pytest.raises(InvalidInputError, match="residual"):
        ImageNetSpec("resnet", 8, channels=1, options=SMALL["resnet"]).plain(0)
    fc = ImageNetSpec("fc", 8, options=SMALL["fc"])
    np.testing.assert_array_equal(fc.output_correlation(np.array([0.1, 0.7])),
                                  relu_correlation_iterates(np.array([0.1, 0.7]), 2)[-1])
    with pytest.raises(InvalidInputError, match="fc"):
        ImageNetSpec("conv4", 8).output_correlation(0.5)


@pytest.mark.parametrize("make, match", [
    (lambda: ImageNetSpec("vgg", 8), "unknown architecture"),
    (lambda: ImageNetSpec("fc", 0), "image"),
    (lambda: ImageNetSpec("fc", "big"), "image_size"),
    (lambda: ImageNetSpec("fc", 8, channels=0), "channels"),
    (lambda: ImageNetSpec("fc", 8, options=dict(width=3)), "unknown options"),
    (lambda: ImageNetSpec("lenet", 8, options=dict(seed=3)), "unknown options"),
    (lambda: ImageNetSpec("lenet", 8, options=dict(pool="max")), "pool"),
    (lambda: ImageNetSpec("conv4", 8, options=dict(depth=0)), "depth"),
])
def test_bad_image_parameters_raise(make, match):
    with pytest.raises(InvalidInputError, match=match):
        make()


@pytest.mark.parametrize("spec", [
    MLPSpec.two_layer(6, 9, "relu"),
    MLPSpec.nn_def([5, 7, 3], hidden_gain=2.0, bias_std=0.3),
    ImageNetSpec("lenet", 8, channels=1, options=SMALL["lenet"]),
    ImageNetSpec("resnet", 8, channels=1, options=SMALL["resnet"]),
])
def test_piecewise_linear_reading_computes_the_network(spec):
    # the one reader's float64 affine form of the built net: the net's own function
    read = spec.piecewise_form(3)
    net = spec.build(3, dtype=torch.float64)
    shape = (4, *spec.input_shape) if isinstance(spec, ImageNetSpec) else (4, spec.widths[0])
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    got = np.array([read.affine().forward(xi.reshape(-1).numpy()) for xi in x]).reshape(-1)
    np.testing.assert_allclose(got, net(x).reshape(-1).numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------- SmallNetSpec
def test_small_fc_spec_is_the_he_scaled_relu_mlp():
    spec = SmallNetSpec.parse("fc:10:16-8")
    assert (spec.family, spec.n, spec.hidden_neurons, spec.pixel_ratio) == ("fc", 10, 24, 1.0)
    assert spec.model_input_shape is None
    net = spec.build(seed=3)
    ref = MLPSpec.nn_def([10, 16, 8], hidden_gain=2.0).build(3, dtype=torch.float64)
    for a, b in zip(net.state_dict().values(), ref.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("text, ratio, relus", [("conv:1x4x4:2:p2", 0.25, 32),
                                                ("conv:2x6x6:3-2", 1.0, 180),
                                                ("conv:1x6x6:2:p3", 1 / 9, 72)])
def test_small_conv_spec_shapes_pixel_ratio_and_piecewise_form(text, ratio, relus):
    spec = SmallNetSpec.parse(text, bias_std=0.1)
    assert spec.pixel_ratio == pytest.approx(ratio, rel=1e-12)
    assert spec.hidden_neurons == relus and spec.model_input_shape == spec.input_shape
    net = spec.build(seed=1)
    x = torch.rand(4, *spec.input_shape, generator=torch.Generator().manual_seed(0),
                   dtype=torch.float64)
    f = net(x).reshape(-1)
    h = x.reshape(4, -1).numpy().T
    layers = to_affine_layers(net, spec.input_shape)
    for w, b in layers[:-1]:
        h = np.maximum(w @ h + b[:, None], 0.0)
    w, b = layers[-1]
    np.testing.assert_allclose((w @ h + b[:, None]).reshape(-1), f.detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    assert any(float(v.abs().max()) > 0 for k, v in net.state_dict().items() if "bias" in k)


@pytest.mark.parametrize("text, words", [("fc:0:8", "fc:0:8"), ("fc:6", "expected"),
                                         ("conv:1x4:2", "expected"), ("mlp:4:4", "expected"),
                                         ("conv:1x4x4:2:q2", "expected"),
                                         ("conv:1x4x4:2:p9", "pooling window 9")])
def test_small_spec_rejects_malformed_strings_by_name(text, words):
    with pytest.raises(InvalidInputError, match=words):
        SmallNetSpec.parse(text)

