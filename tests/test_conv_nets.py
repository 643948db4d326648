"""Random conv / residual networks of De Palma, Kiani, Lloyd (2021), Section 2 and Section 4."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from randadv.errors import InvalidInputError
from randadv.nets.conv import ConvNetBuilder, LogitDifference, TwoLogitModel, uniform_images
from randadv.nets.layers import (
    AvgPool2d,
    Nonlinearity,
    ResidualBlock,
    SeededConv2d,
    SeededLinear,
    SumPool2d,
    same_padding,
)
from randadv.nets.zoo import (
    ARCHITECTURES,
    RandomConvNet4,
    RandomFCNet,
    RandomLeNet,
    RandomResNet,
    build_architecture,
)

# small variants keep the tests fast; the defaults are checked for shapes only
SMALL = {"fc": {}, "lenet": {"width": 8, "dense": (16, 16)}, "conv4": {"width": 8},
         "resnet": {"widths": (4, 8, 8), "blocks_per_stage": 2}}


# ---------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("s,flat", [(12, (3, 3)), (14, (4, 4)), (16, (4, 4)), (17, (5, 5))])
def test_resnet_shapes(s, flat):
    net = RandomResNet(s, widths=(4, 8, 16), blocks_per_stage=1)
    assert net.input_shape == (3, s, s) and net.n == 3 * s * s
    assert net.flatten_shape == (16, *flat)
    assert net.pixel_ratio == pytest.approx(flat[0] * flat[1] / s**2)
    x = net.sample_inputs(5, "x")
    assert net(x).shape == (5,)
    assert net(x[0]).shape == ()
    assert torch.equal(net(x.reshape(5, -1)), net(x))


def test_default_architectures_match_the_paper():
    net = RandomResNet(32)
    convs = [m for m in net.modules() if isinstance(m, SeededConv2d)]
    # stem + 9 blocks x 2 convs + 2 projection shortcuts = 21 convolutions, ResNet-20 v1
    assert len(convs) == 21
    assert [m.out_channels for m in convs if m.kernel_size == (1, 1)] == [64, 128]
    assert {m.stride for m in convs if m.kernel_size == (1, 1)} == {(2, 2)}
    assert sorted({m.out_channels for m in convs}) == [32, 64, 128]
    assert all(m.sigma_w2 == 2.0 and m.sigma_b2 == 0.0 for m in convs)
    assert all(float(m.bias.abs().max()) == 0.0 for m in convs)
    assert net.flatten_shape == (128, 8, 8) and net.pixel_ratio == 1 / 16
    assert not any(isinstance(m, (AvgPool2d, SumPool2d)) for m in net.modules())
    head = net.layers[-1]
    assert isinstance(head, SeededLinear) and head.in_features == 128 * 64

    le = RandomLeNet(16)
    assert le.flatten_shape == (128, 4, 4)
    assert [m.out_features for m in le.modules() if isinstance(m, SeededLinear)] == [512, 512, 1]
    assert sum(isinstance(m, AvgPool2d) for m in le.modules()) == 2
    c4 = RandomConvNet4(16)
    assert sum(isinstance(m, SeededConv2d) for m in c4.modules()) == 4
    assert c4.flatten_shape == (128, 16, 16) and c4.pixel_ratio == 1.0
    fc = RandomFCNet(16)
    assert [m.out_features for m in fc.modules() if isinstance(m, SeededLinear)] == [100, 100, 1]
    assert fc.pixel_ratio == 1.0


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
@pytest.mark.parametrize("s", [12, 20])
def test_factory_shapes_and_config(name, s):
    net = build_architecture(name, s, seed=3, **SMALL[name])
    assert isinstance(net, ARCHITECTURES[name]) and net.name == name
    y = net(net.sample_inputs(4, "x"))
    assert y.shape == (4,) and y.dtype == torch.float32 and bool(torch.isfinite(y).all())
    json.dumps(net.config)
    assert net.config["seed"] == 3


# ---------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_pure_function_of_architecture_and_seed(name):
    a = build_architecture(name, 12, seed=7, **SMALL[name])
    b = build_architecture(name, 12, seed=7, **SMALL[name])
    c = build_architecture(name, 12, seed=8, **SMALL[name])
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert list(sa) == list(sb)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].abs().sum() > 0)
    x = a.sample_inputs(9, "x")
    full = a(x)
    assert torch.equal(full, b(x))
    one_by_one = torch.stack([a(x[i:i + 1])[0] for i in range(9)])
    torch.testing.assert_close(one_by_one, full, rtol=1e-5, atol=1e-6)


def test_float64_net_holds_the_float32_weights():
    a = RandomResNet(12, widths=(4, 8, 8), blocks_per_stage=1, seed=1)
    b = RandomResNet(12, widths=(4, 8, 8), blocks_per_stage=1, seed=1, dtype=torch.float64)
    for (ka, pa), (kb, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert ka == kb and pb.dtype == torch.float64 and torch.equal(pa.double(), pb)
    x = b.sample_inputs(3, "x")
    assert b(x).dtype == torch.float64
    torch.testing.assert_close(a(x).double(), b(x), rtol=1e-4, atol=1e-5)


def test_layers_get_distinct_weights():
    net = RandomConvNet4(8, width=6, depth=3, seed=0)
    convs = [m for m in net.modules() if isinstance(m, SeededConv2d)]
    w1, w2 = convs[1].weight, convs[2].weight
    assert w1.shape == w2.shape and not torch.equal(w1, w2)


def test_uniform_images():
    x = uniform_images(6, 5, "k", 1)
    assert x.shape == (6, 3, 5, 5) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert torch.equal(x, uniform_images(6, 5, "k", 1))
    assert not torch.equal(x, uniform_images(6, 5, "k", 2))
    assert torch.equal(uniform_images(2, 5, "k", 1), x[:2])  # prefix-stable
    x64 = uniform_images(6, 5, "k", 1, dtype=torch.float64)
    assert torch.equal(x64.float(), x)
    y = uniform_images(4000, (2, 3), "m", channels=1, low=-1.0, high=3.0, dtype=torch.float64)
    assert y.shape == (4000, 1, 2, 3)
    assert abs(float(y.mean()) - 1.0) < 0.05 and float(y.min()) >= -1.0
    with pytest.raises(InvalidInputError):
        uniform_images(2, 5, "k", low=1.0, high=1.0)


# ---------------------------------------------------------------------------- layers
def _conv_reference(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, padding: str):
    """Eq. (1) by loops: out[i,a,c] = b_i + sum_{j,di,dj} W[i,j,di,dj] x[j, a*s+di-top, ...],
    TF "same" offsets; out-of-range pixels are 0 (zeros) or wrapped (periodic)."""
    cin, h, wd = x.shape
    cout, _, kh, kw = w.shape
    top, _ = same_padding(h, kh, stride)
    left, _ = same_padding(wd, kw, stride)
    oh, ow = -(-h // stride), -(-wd // stride)
    out = np.zeros((cout, oh, ow))
    for i in range(cout):
        for a in range(oh):
            for c in range(ow):
                acc = b[i]
                for j in range(cin):
                    for di in range(kh):
                        for dj in range(kw):
                            r, q = a * stride + di - top, c * stride + dj - left
                            if padding == "periodic":
                                acc += w[i, j, di, dj] * x[j, r % h, q % wd]
                            elif 0 <= r < h and 0 <= q < wd:
                                acc += w[i, j, di, dj] * x[j, r, q]
                out[i, a, c] = acc
    return out


@pytest.mark.parametrize("padding", ["periodic", "zeros"])
@pytest.mark.parametrize("k,stride,size", [(3, 1, 5), (3, 2, 6), (3, 2, 5), (2, 1, 4), (5, 1, 5)])
def test_conv_matches_eq1(padding, k, stride, size):
    layer = SeededConv2d(2, 3, k, ("t", k, stride), stride=stride, padding=padding,
                         sigma_b2=0.5, dtype=torch.float64)
    x = uniform_images(1, size, "x", channels=2, dtype=torch.float64)
    got = layer(x)[0].numpy()
    ref = _conv_reference(x[0].numpy(), layer.weight.detach().numpy(),
                          layer.bias.detach().numpy(), stride, padding)
    assert got.shape == ref.shape == (3, *layer.output_size(size, size))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_periodic_padding_is_translation_equivariant_zero_padding_is_not():
    x = uniform_images(2, 7, "x", dtype=torch.float64)
    for padding, equivariant in [("periodic", True), ("zeros", False)]:
        layer = SeededConv2d(3, 4, 3, ("eq",), padding=padding, dtype=torch.float64)
        shifted = layer(torch.roll(x, (2, -3), dims=(2, 3)))
        rolled = torch.roll(layer(x), (2, -3), dims=(2, 3))
        assert torch.allclose(shifted, rolled, atol=1e-12) == equivariant
    # valid padding shrinks the image
    assert SeededConv2d(3, 4, 3, ("v",), padding="valid")(x.float()).shape == (2, 4, 5, 5)


def test_pooling_and_residual():
    x = uniform_images(2, 5, "x", dtype=torch.float64)
    s, a = SumPool2d(2)(x), AvgPool2d(2)(x)
    assert s.shape == a.shape == (2, 3, 2, 2)  # odd rows/columns dropped (Keras "valid")
    torch.testing.assert_close(s[:, :, 0, 0], x[:, :, 0:2, 0:2].sum((2, 3)))
    torch.testing.assert_close(s[:, :, 1, 0], x[:, :, 2:4, 0:2].sum((2, 3)))
    torch.testing.assert_close(a, s / 4)
    conv = SeededConv2d(3, 3, 3, ("r",), dtype=torch.float64)
    block = ResidualBlock(conv, None, Nonlinearity("relu"))
    torch.testing.assert_close(block(x), torch.relu(conv(x) + x))
    proj = SeededConv2d(3, 3, 1, ("p",), dtype=torch.float64)
    torch.testing.assert_close(ResidualBlock(conv, proj)(x), conv(x) + proj(x))


def test_builder_custom_network():
    b = ConvNetBuilder("custom", (2, 9, 9), seed=4, padding="periodic", sigma_b2=0.1)
    b.conv(5, 3, stride=2).act("tanh").sum_pool(2).conv(6, 1).act().dense(7).act()
    net = b.build(num_outputs=3)
    assert net.flatten_shape == (6, 2, 2) and net.pixel_ratio == pytest.approx(4 / 81)
    y = net(uniform_images(4, 9, "x", channels=2))
    assert y.shape == (4, 3)
    with pytest.raises(InvalidInputError, match="duplicate"):
        ConvNetBuilder("c", (1, 4, 4)).conv(2, name="a").conv(2, name="a")
    with pytest.raises(InvalidInputError, match="after a fully connected"):
        ConvNetBuilder("c", (1, 4, 4)).dense(3).conv(2)


def test_ensemble_matches_members():
    from randadv.nets.conv_ensemble import RandomImageNetEnsemble

    for name, kw in [("resnet", {"padding": "periodic"}), ("lenet", {}), ("fc", {})]:
        nets = [build_architecture(name, 9, seed=k, **{**SMALL[name], **kw}) for k in range(3)]
        ens = RandomImageNetEnsemble(nets)
        xs = torch.stack([nets[0].sample_inputs(4, "x", j) for j in range(3)])
        ref = torch.stack([net(xs[j]) for j, net in enumerate(nets)])
        torch.testing.assert_close(ens(xs), ref, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ens(xs[0]), torch.stack([net(xs[0]) for net in nets]),
                                   rtol=1e-5, atol=1e-6)
        flat = xs.reshape(12, *xs.shape[2:]).requires_grad_(True)
        out = ens.as_batch_model()(flat)
        torch.testing.assert_close(out, ref.reshape(-1), rtol=1e-5, atol=1e-6)
        (g,) = torch.autograd.grad(out[5], flat)  # row 5 -> member 1 only
        assert bool(g[5].abs().sum() > 0) and float(g[torch.arange(12) != 5].abs().sum()) == 0
    with pytest.raises(InvalidInputError, match="ensemble input"):
        ens(torch.rand(2, 4, 3, 9, 9))


# ---------------------------------------------------------------------------- wrappers
def test_two_logit_wrappers():
    two = RandomConvNet4(8, width=4, depth=2, num_outputs=2, seed=2)
    x = two.sample_inputs(20, "x")
    z = two(x)
    assert z.shape == (20, 2)
    torch.testing.assert_close(LogitDifference(two)(x), z[:, 1] - z[:, 0])
    torch.testing.assert_close(LogitDifference(two, positive=0, negative=1)(x), z[:, 0] - z[:, 1])
    f = RandomConvNet4(8, width=4, depth=2, seed=2)
    logits = TwoLogitModel(f)(x)
    assert logits.shape == (20, 2) and bool((logits[:, 0] == 0).all())
    assert torch.equal(logits.argmax(1) == 1, f(x) > 0)
    assert torch.equal(LogitDifference(TwoLogitModel(f))(x), f(x))
    with pytest.raises(InvalidInputError, match="logits"):
        LogitDifference(f)(x)


def test_trainable():
    net = RandomResNet(8, widths=(4, 4, 4), blocks_per_stage=1, seed=0)
    assert not any(p.requires_grad for p in net.parameters())
    x = net.sample_inputs(3, "x").requires_grad_(True)
    (g,) = torch.autograd.grad(net(x).sum(), x)  # attacks: input gradients only
    assert g.shape == x.shape and bool(g.abs().sum() > 0)
    assert net.trainable() is net and all(p.requires_grad for p in net.parameters())
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    before = net(x).detach().clone()
    net(x).pow(2).sum().backward()
    opt.step()
    assert not torch.equal(before, net(x).detach())
    assert all(p.requires_grad for p in RandomFCNet(4, requires_grad=True).parameters())
    net.trainable(False)
    assert not any(p.requires_grad for p in net.parameters())


# ---------------------------------------------------------------------------- bad inputs
def test_bad_inputs():
    net = RandomResNet(12, widths=(4, 4, 4), blocks_per_stage=1)
    with pytest.raises(InvalidInputError, match="channels"):
        net(torch.rand(2, 1, 12, 12))
    with pytest.raises(InvalidInputError, match="built for 12x12"):
        net(torch.rand(2, 3, 16, 16))
    with pytest.raises(InvalidInputError, match="n is 432"):
        net(torch.rand(2, 400))
    with pytest.raises(InvalidInputError, match="floating-point"):
        net(torch.ones(2, 3, 12, 12, dtype=torch.int64))
    with pytest.raises(InvalidInputError, match="shape"):
        net(torch.rand(1, 2, 3, 12, 12))
    with pytest.raises(InvalidInputError, match="torch.Tensor"):
        net(np.zeros((2, 3, 12, 12)))
    with pytest.raises(InvalidInputError, match="unknown architecture"):
        build_architecture("vgg", 12)
    with pytest.raises(InvalidInputError, match="padding"):
        RandomConvNet4(8, padding="reflect")
    with pytest.raises(InvalidInputError, match="dtype"):
        RandomFCNet(8, dtype=torch.float16)
    with pytest.raises(InvalidInputError, match="sigma_w2"):
        RandomConvNet4(8, sigma_w2=0.0)
    with pytest.raises(InvalidInputError, match="sigma_b2"):
        RandomConvNet4(8, sigma_b2=-1.0)
    with pytest.raises(InvalidInputError, match="pooling window"):
        RandomLeNet(3, width=2, dense=(2,))
    with pytest.raises(InvalidInputError, match="num_outputs"):
        RandomFCNet(4, num_outputs=0)
    with pytest.raises(InvalidInputError, match="image_size"):
        RandomFCNet(0)


# ---------------------------------------------------------------------------- moments at init
def test_weight_and_bias_laws():
    """Every weight ~ N(0, sigma_W^2 / fan_in) (fan_in = C k^2, or C with fan_in="channels"),
    every bias ~ N(0, sigma_b^2) (Section 2): sample variance, mean and kurtosis."""
    layers = [m for m in RandomResNet(16, seed=5).modules()
              if isinstance(m, (SeededConv2d, SeededLinear))]
    layers += [SeededConv2d(64, 512, 3, ("c",), sigma_w2=0.7, sigma_b2=0.4),
               SeededConv2d(64, 512, 3, ("c",), sigma_w2=0.7, fan_in="channels"),
               SeededLinear(3000, 300, ("l",), sigma_w2=1.3, sigma_b2=2.0)]
    checked = 0
    for layer in layers:
        fan = layer.fan_in if isinstance(layer, SeededConv2d) else layer.in_features
        for t, var in [(layer.weight, layer.sigma_w2 / fan), (layer.bias, layer.sigma_b2)]:
            if t is None or t.numel() < 20_000:
                continue
            v = t.detach().double().flatten()
            if var == 0:
                assert float(v.abs().max()) == 0.0
                continue
            n = v.numel()
            assert abs(float(v.mean())) < 5 * math.sqrt(var / n)
            assert abs(float(v.pow(2).mean()) / var - 1) < 5 * math.sqrt(2 / n)
            assert abs(float(v.pow(4).mean()) / (3 * var**2) - 1) < 5 * math.sqrt(96 / 9 / n)
            checked += 1
    assert checked >= 12
    assert layers[-2].fan_in == 64


def _patch_mean(m: torch.Tensor, layer: SeededConv2d) -> torch.Tensor:
    """Mean of ``m`` (1, 1, H, W) over each output pixel's patch (out-of-range: 0 or wrapped)."""
    mode = "circular" if layer.padding == "periodic" else "constant"
    mp = F.pad(m, layer.pads(m.shape[-2], m.shape[-1]), mode=mode)
    kh, kw = layer.kernel_size
    ones = torch.full((1, 1, kh, kw), 1.0 / (kh * kw), dtype=m.dtype)
    return F.conv2d(mp, ones, stride=layer.stride)


def _moment_recursion(net, x: torch.Tensor, relu: bool) -> float:
    """E phi(x)^2 over the weights, exact at finite width, for bias-free nets made of
    convolutions, (ReLU or linear) activations, projection residual blocks and the output layer.

    The pre-activation z of a convolution is, given its input h, centred Gaussian with variance
    sigma_W^2 / (C k^2) sum_{j, beta in patch} h_{j,beta}^2; so the channel-averaged second-moment
    map obeys q = sigma_W^2 * patch_mean(m) with m = E h^2, and m = q / 2 after a ReLU (z is
    conditionally symmetric) or m = q after a linear activation. A residual block
    h + conv2(act(conv1(h))) has, given h, a symmetric second term, so second moments add (no
    cross term); with ReLU after an *identity* shortcut the recursion is not closed (handled
    separately)."""
    factor = 0.5 if relu else 1.0
    m = x.pow(2).mean(1, keepdim=True)  # channel-averaged E h^2 of the input
    for layer in net.layers:
        if isinstance(layer, SeededConv2d):
            m = layer.sigma_w2 * _patch_mean(m, layer)
        elif isinstance(layer, Nonlinearity):
            m = factor * m
        elif isinstance(layer, ResidualBlock):
            c1, c2 = layer.main.conv1, layer.main.conv2
            y = c2.sigma_w2 * _patch_mean(factor * c1.sigma_w2 * _patch_mean(m, c1), c2)
            if layer.shortcut is None:
                assert not relu, "identity shortcut + ReLU: not a closed recursion"
                short = m
            else:
                short = layer.shortcut.sigma_w2 * _patch_mean(m, layer.shortcut)
            m = factor * (short + y)
        elif isinstance(layer, SeededLinear):
            return layer.sigma_w2 * float(m.mean())
    raise AssertionError("no output layer")


def _mean_se(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v)))


@torch.no_grad()
def test_single_conv_layer_output_variance_closed_form():
    """phi = a . relu(conv(x)) + b_out: E phi^2 = sigma_a^2/2 (sigma_W^2 mean_alpha ||x_patch||^2
    / fan_in + sigma_b^2) + sigma_b,out^2; with periodic padding and stride 1,
    mean_alpha ||x_patch||^2 = k^2 ||x||^2 / |I|, so E phi^2 = sigma_a^2/2 (sigma_W^2 ||x||^2/n +
    sigma_b^2) + sigma_b,out^2 (n = C |I|). Zero padding loses the border terms.

    The head enters through E_a phi^2 = sigma_a^2 ||h||^2 / N + sigma_b,out^2 given the features h
    (Rao-Blackwell; the head's own law is checked in test_weight_and_bias_laws); 512 i.i.d.
    channels per network, a few networks, the standard error over networks."""
    # a centred input: the patches' pre-activations decorrelate across pixels (smaller errors)
    x = uniform_images(1, 6, "x", low=-1.0, high=1.0, dtype=torch.float64)
    n, x2 = x.numel(), float(x.pow(2).sum())
    sw2, sb2, sa2, sbo2 = 1.5, 0.3, 2.0, 0.2
    periodic = sa2 / 2 * (sw2 * x2 / n + sb2) + sbo2
    for padding in ("periodic", "zeros"):
        est = []
        for seed in range(32):
            b = ConvNetBuilder("single", (3, 6, 6), seed, padding=padding, sigma_w2=sw2,
                               sigma_b2=sb2, dtype=torch.float64)
            net = b.conv(512, 3).act().build(sigma_w2=sa2, sigma_b2=sbo2)
            est.append(sa2 * float(net.layers[:-1](x).pow(2).mean()) + sbo2)
        mean, se = _mean_se(est)
        if padding == "periodic":
            theory = periodic
        else:
            layer = next(m for m in net.modules() if isinstance(m, SeededConv2d))
            patch = float(_patch_mean(x.pow(2).sum(1, keepdim=True), layer).mean()) * 9
            theory = sa2 / 2 * (sw2 * patch / 27 + sb2) + sbo2
            assert theory < periodic - 6 * se  # the border loss is resolved
        assert abs(mean - theory) < 4 * se, (padding, mean, theory, se)


@torch.no_grad()
def test_conv4_output_variance_recursion():
    """Plain ReLU conv net with zero padding, any input: exact second-moment recursion."""
    x = uniform_images(1, 7, "x", dtype=torch.float64)
    est = []
    for seed in range(60):
        net = RandomConvNet4(7, width=32, depth=3, seed=seed, dtype=torch.float64)
        h = net.layers[:-1](x)
        est.append(2.0 * float(h.pow(2).mean()))  # E_a phi^2 given the features (Rao-Blackwell)
    theory = _moment_recursion(net, x, relu=True)
    mean, se = _mean_se(est)
    assert se < 0.1 * theory and abs(mean - theory) < 4 * se, (mean, theory, se)


@torch.no_grad()
def test_linear_resnet20_output_variance_recursion():
    """ResNet-20 structure (zero padding, odd size: asymmetric "same" padding at stride 2,
    projections) with linear activations: second moments add exactly through the blocks."""
    x = uniform_images(1, 7, "x", dtype=torch.float64)
    est = []
    for seed in range(40):
        net = RandomResNet(7, widths=(16, 16, 32), seed=seed, activation="linear",
                           sigma_w2=0.5, dtype=torch.float64)
        h = net.layers[:-1](x)
        est.append(net.layers[-1].sigma_w2 * float(h.pow(2).mean()))
    theory = _moment_recursion(net, x, relu=False)
    mean, se = _mean_se(est)
    assert se < 0.1 * theory and abs(mean - theory) < 4 * se, (mean, theory, se)


@torch.no_grad()
def test_relu_resnet_output_variance_mean_field():
    """He-normal ReLU residual net (ResNet-8: one block per stage), periodic padding, an input
    with unit channel-mean square at every pixel (so every second-moment map is constant):

    stem: z ~ N(0, 2), s0 = relu(z), E s0^2 = 1; identity block: y | s ~ N(0, V) with
    E V = 2 E s^2 (conv-ReLU-conv at sigma_W^2 = 2), s1 = relu(s0 + y) -- s0 is not Gaussian, so
    E s1^2 is a 2-d integral (below, by quadrature, treating V as its mean: the finite-width
    error is O(1/(C k^2))); projection blocks: p, y | s independent centred Gaussians, each of
    variance 2 E s^2, so E s'^2 = 2 E s^2 exactly; output: E phi^2 = 2 E s^2."""
    from scipy import integrate, stats

    v = 2.0  # E V for the identity block, E s0^2 = 1

    def g(t):  # E relu(t + sqrt(v) xi)^2
        u = t / math.sqrt(v)
        return v * ((u * u + 1) * stats.norm.cdf(u) + u * stats.norm.pdf(u))

    # s0 = relu(z), z ~ N(0, 2): atom 1/2 at 0, density of N(0, 2) on (0, inf)
    dens = integrate.quad(lambda t: g(t) * stats.norm.pdf(t, scale=math.sqrt(2.0)), 0, np.inf)[0]
    es1 = 0.5 * g(0.0) + dens
    theory = 2.0 * 2.0 * 2.0 * es1  # two projection stages, then the output layer
    signs = (2.0 * (uniform_images(1, 6, "sign", dtype=torch.float64) > 0.5) - 1.0).double()
    est = []
    for seed in range(60):
        net = RandomResNet(6, seed=seed, widths=(32, 32, 32), blocks_per_stage=1,
                           padding="periodic", dtype=torch.float64)
        h = net.layers[:-1](signs)
        est.append(2.0 * float(h.pow(2).mean()))
    mean, se = _mean_se(est)
    # 4 standard errors plus 3% for the finite-width (C = 32, k = 3) correction
    assert se < 0.1 * theory and abs(mean - theory) < 4 * se + 0.03 * theory, (mean, theory, se)
