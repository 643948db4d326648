"""Piecewise-linear stacks of ReLU networks: explicit backpropagation equals autograd, zoo
networks get a dense stack when it is small (and are refused fast when it is not), and the
attacks' gradient choice (:func:`randadv.attacks.min_norm.gradient_stack`)."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from randadv.attacks.min_norm import gradient_stack
from randadv.errors import InvalidInputError
from randadv.exact import to_affine_layers
from randadv.nets import RandomMLP
from randadv.nets.zoo import build_architecture
from randadv.protocol.piecewise import (
    _layer_entries,
    as_piecewise_linear,
    model_stack,
    read_piecewise_linear,
)


def _autograd(model, x):
    xx = x.clone().requires_grad_(True)
    f = model(xx).reshape(-1)
    (g,) = torch.autograd.grad(f.sum(), xx)
    return f.detach(), g


def _models():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        seq = nn.Sequential(nn.Flatten(), nn.Linear(12, 9), nn.ReLU(), nn.Linear(9, 7), nn.ReLU(),
                            nn.Linear(7, 1)).double()
        leaky = nn.Sequential(nn.Linear(12, 9), nn.LeakyReLU(0.2), nn.Linear(9, 1)).double()
        conv = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(4 * 4 * 4, 1)).double()
    return {
        "sequential": (seq, (12,)),
        "leaky": (leaky, (12,)),
        "conv": (conv, (3, 4, 4)),
        "mlp": (RandomMLP([12, 16, 16], seed=3, dtype=torch.float64), (12,)),
        "zoo-fc": (build_architecture("fc", 4, seed=1, dtype=torch.float64), (3, 4, 4)),
    }


@pytest.mark.parametrize("name", list(_models()))
def test_stack_value_and_grad_equals_autograd(name):
    model, shape = _models()[name]
    x = torch.randn((64, *shape), dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    stack = model_stack(model, x)
    assert stack is not None and stack.rmaps is not None
    f, g = stack.value_and_grad(x)
    f_ref, g_ref = _autograd(model, x)
    assert g.shape == x.shape
    # composed / densified layers round differently from the model's own: float64 rounding only
    torch.testing.assert_close(f, f_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g, g_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(_models()))
def test_the_reader_s_forms_compute_the_same_function(name):
    # read_piecewise_linear is the one reader: its native stack (where the model has one), its
    # dense stack and its float64 affine layers (ReLU nets) are the same network as the model
    model, shape = _models()[name]
    x = torch.randn((16, *shape), dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        f_ref = model(x).reshape(-1)
    read = read_piecewise_linear(model, shape)
    native = read.native()
    assert (native is not None) == (name in ("sequential", "leaky", "mlp"))
    forms = [] if native is None else [native.value_and_grad(x)[0]]
    if name != "leaky":                      # the affine layers are ReLU-only
        dense = read.dense_stack(torch.float64)
        assert (dense is not None) == (name != "mlp")   # a RandomMLP has its own matrices
        if dense is not None:
            forms.append(dense.value_and_grad(x)[0])
        forms.append(torch.from_numpy(read.affine().forward(x.reshape(16, -1).numpy())))
    else:
        with pytest.raises(InvalidInputError, match="LeakyReLU"):
            read.layers()
    assert forms
    for f in forms:
        torch.testing.assert_close(f, f_ref, rtol=1e-10, atol=1e-12)


def test_a_plain_sequential_s_native_and_dense_stacks_are_one_stack():
    # nothing to compose or densify: the dense stack is the native one, entry for entry
    model, shape = _models()["sequential"]
    read = read_piecewise_linear(model, shape)
    native, dense = read.native(), read.dense_stack(torch.float64)
    x = torch.randn((8, *shape), dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert native.n_weights == dense.n_weights == 12 * 9 + 9 * 7 + 7
    assert (native.slope_pos, native.slope_neg) == (dense.slope_pos, dense.slope_neg) == (1, 0)
    assert native.out_b == dense.out_b
    for a, b in zip(native.value_and_grad(x), dense.value_and_grad(x), strict=True):
        assert torch.equal(a, b)


def test_stack_without_transposed_maps_refuses_to_backpropagate():
    stack = as_piecewise_linear(RandomMLP([4, 5], seed=0))
    stack.rmaps = None
    with pytest.raises(ValueError, match="rmaps"):
        stack.value_and_grad(torch.zeros(2, 4))


def test_zoo_fc_stack_is_the_net_itself():
    net = build_architecture("fc", 8, seed=2)
    x = net.sample_inputs(4, "stack", 0)
    stack = model_stack(net, x)
    assert stack is not None
    # the fc net's dense matrices are its own weights: as many entries, same outputs
    assert stack.n_weights == sum(p.numel() for p in net.parameters() if p.dim() >= 2)
    f, _ = stack.value_and_grad(x)
    with torch.no_grad():
        torch.testing.assert_close(f, net(x), rtol=1e-5, atol=1e-6)
    assert gradient_stack(net, stack) is stack


@pytest.mark.parametrize("arch", ["lenet", "conv4", "resnet"])
def test_zoo_conv_nets_too_large_to_densify_are_refused_before_densifying(arch):
    net = build_architecture(arch, 4, seed=0)
    x = net.sample_inputs(2, "stack", 0)
    t0 = time.process_time()
    assert model_stack(net, x) is None
    # densifying the s = 4 ResNet alone takes ~0.7 s; the size estimate is one forward pass
    assert time.process_time() - t0 < 0.5


def test_layer_entries_estimates_the_dense_size():
    for arch in ("fc", "resnet"):
        net = build_architecture(arch, 4, seed=0, dtype=torch.float64)
        actual = sum(w.size for w, _ in to_affine_layers(net))
        assert 0.5 * actual <= _layer_entries(net) <= 2 * actual


def test_gradient_stack_only_where_backpropagation_is_no_dearer():
    models = _models()
    conv, shape = models["conv"]
    x = torch.zeros((1, *shape), dtype=torch.float64)
    stack = read_piecewise_linear(conv, shape).dense_stack(torch.float64)
    assert stack is not None
    # the densified conv has more entries than twice its kernels: autograd is cheaper
    assert stack.n_weights > 2 * sum(p.numel() for p in conv.parameters() if p.dim() >= 2)
    assert gradient_stack(conv, stack) is None
    assert gradient_stack(conv, None) is None
    seq, _ = models["sequential"]
    assert gradient_stack(seq, model_stack(seq, x.new_zeros(1, 12))) is not None
