"""The one reader of piecewise-linear networks: a model becomes its affine layers with a
piecewise-linear activation between them, in the two forms the layers above read.

:func:`read_piecewise_linear` takes the model once into the form every reading starts from
(:func:`randadv.nets.plain.scalar_sequential`) and gives

* :meth:`PiecewiseLinearModel.native`: a :class:`PiecewiseLinearStack` of the model's own
  matrices (a :class:`randadv.nets.RandomMLP`'s streamed products, the weights of an
  ``nn.Sequential`` of ``Linear`` and ``ReLU`` / ``LeakyReLU`` alternating): nothing is copied
  or densified;
* :meth:`PiecewiseLinearModel.layers` / :meth:`PiecewiseLinearModel.affine`: the ReLU network
  as float64 affine layers ``[(W_1, b_1), ..., (W_{L+1}, b_{L+1})]`` with ``f(x) = W_{L+1}
  relu(... relu(W_1 x + b_1) ...) + b_{L+1}`` (consecutive affine maps, Linear, Conv2d, Flatten,
  Identity, the zoo's seeded layers and residual blocks, composed into one layer), and
  :class:`AffineNet` over them;
* :meth:`PiecewiseLinearModel.stack`: the native stack, else the affine layers as a dense
  stack in a given dtype.

The exact ray and region walks (:mod:`randadv.attacks.piecewise_linear`,
:mod:`randadv.attacks.segment`), the attacks' exact region refinement
(:mod:`randadv.attacks.closest`), the exact solvers' region LPs and MILP encoding
(:mod:`randadv.exact`) all read models through it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from randadv.errors import InvalidInputError
from randadv.nets.conv import RandomImageNet
from randadv.nets.mlp import RandomMLP
from randadv.nets.plain import scalar_sequential

Layers = list[tuple[np.ndarray, np.ndarray]]
LinearMap = Callable[[torch.Tensor], torch.Tensor]
MAX_DENSE_ENTRIES = 20_000_000    # one densified convolution beyond this: refused
MAX_STACK_ENTRIES = 4_000_000     # a dense stack beyond this: None (the generic searches)


@dataclass
class PiecewiseLinearStack:
    """The torch form of a piecewise-linear network, read by the exact ray searches
    (:func:`randadv.attacks.first_root_on_ray`) and the attacks' explicit backpropagation:
    ``f(x) = out_w . phi(A_L(... phi(A_1 x + b_1) ...) + b_L) + out_b`` with
    ``phi(z) = slope_pos * z`` (z > 0), ``slope_neg * z`` (z <= 0).

    Paper:
        De Palma et al. 2021, Section 2 (a ReLU net: affine maps with the nonlinearity
        between, linear in each activation region).

    Attributes:
        maps: the hidden layers' linear maps ``h -> A_l h`` (rows of a batch); biases: their
            ``b_l`` (None for none); out_w, out_b: the output layer; slope_pos, slope_neg: phi;
        flatten_input: inputs are flattened to rows first; rmaps: the transposes
            ``d -> d A_l`` (None if unknown); n_weights: entries of the dense weight matrices
            (None if the maps are not dense).

    Example:
        >>> import torch
        >>> from randadv.nets import RandomMLP
        >>> from randadv.protocol import as_piecewise_linear
        >>> net = RandomMLP([3, 5], seed=0, dtype=torch.float64)
        >>> stack = as_piecewise_linear(net)
        >>> x = torch.rand(2, 3, dtype=torch.float64)
        >>> f, g = stack.value_and_grad(x)
        >>> stack.depth, bool(torch.allclose(f, net(x)))
        (1, True)
    """

    maps: list[LinearMap]
    biases: list[torch.Tensor | None]
    out_w: torch.Tensor
    out_b: float
    slope_pos: float = 1.0
    slope_neg: float = 0.0
    flatten_input: bool = True
    # the transposes d -> d A of ``maps`` (for backpropagation); None if unknown
    rmaps: list[LinearMap] | None = None
    # entries of the dense weight matrices (maps and out_w); None if the maps are not dense
    n_weights: int | None = None

    @property
    def depth(self) -> int:
        return len(self.maps)

    @torch.no_grad()
    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f(x), grad f(x))`` for a batch (B, ...) by explicit backpropagation through the
        layers (no autograd graph): ``grad f = A_1^T (phi'(z_1) * ... A_L^T (phi'(z_L) *
        out_w))`` with ``phi'(z) = slope_pos`` where z > 0, else ``slope_neg`` (autograd's
        convention at z = 0). Needs ``rmaps``."""
        if self.rmaps is None:
            raise ValueError("this stack has no transposed maps (rmaps) to backpropagate")
        h = x.reshape(x.shape[0], -1).to(self.out_w.dtype)
        relu = self.slope_pos == 1.0 and self.slope_neg == 0.0
        slopes = []
        for layer, bias in zip(self.maps, self.biases, strict=True):
            z = layer(h)
            if bias is not None:
                z = z + bias
            if relu:
                slope = (z > 0).to(z.dtype)
            else:
                slope = torch.where(z > 0, z.new_tensor(self.slope_pos),
                                    z.new_tensor(self.slope_neg))
            slopes.append(slope)
            h = slope * z
        f = h @ self.out_w + self.out_b
        d = self.out_w.expand(x.shape[0], -1)
        for rmap, slope in zip(reversed(self.rmaps), reversed(slopes), strict=True):
            d = rmap(d * slope)
        return f.to(x.dtype), d.reshape(x.shape).to(x.dtype)


@dataclass
class AffineNet:
    """A ReLU network as affine layers (float64), with forward, gradient and region maps.

    Paper:
        De Palma et al. 2021, Section 2 (a ReLU net: affine layers with ReLU between, linear in
        each activation region).

    Attributes:
        layers: ``[(W, b), ...]`` float64 numpy, ReLU between consecutive layers.

    Example:
        >>> import numpy as np
        >>> from randadv.protocol import AffineNet
        >>> hidden = (np.array([[1.0], [-1.0]]), np.zeros(2))
        >>> net = AffineNet([hidden, (np.array([[1.0, 1.0]]), np.zeros(1))])
        >>> float(net.forward(np.array([-3.0]))[0]), net.hidden_widths   # relu(x) + relu(-x) = |x|
        (3.0, [2])
    """

    layers: Layers

    @property
    def d(self) -> int:
        return self.layers[0][0].shape[1]

    @property
    def hidden_widths(self) -> list[int]:
        return [w.shape[0] for w, _ in self.layers[:-1]]

    def preactivations(self, x: np.ndarray) -> list[np.ndarray]:
        """Hidden pre-activations ``[z_1, ..., z_L]`` and the output, for x of shape (B, d)."""
        zs, h = [], x
        for i, (w, b) in enumerate(self.layers):
            z = h @ w.T + b
            zs.append(z)
            if i < len(self.layers) - 1:
                h = np.maximum(z, 0.0)
        return zs

    def forward(self, x: np.ndarray) -> np.ndarray:
        """f(x) for x of shape (B, d) -> (B,)."""
        return self.preactivations(np.atleast_2d(x))[-1][:, 0]

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """``(f(x), grad f(x))`` at one point (the gradient of its linear region)."""
        c, c0, _ = self.region_map(x)
        return float(c @ x + c0), c

    def pattern(self, x: np.ndarray) -> list[np.ndarray]:
        """Activation pattern (``z > 0``) of each hidden layer at one point."""
        return [z[0] > 0 for z in self.preactivations(x[None, :])[:-1]]

    def region_map(self, x: np.ndarray, pattern: list[np.ndarray] | None = None
                   ) -> tuple[np.ndarray, float, list[tuple[np.ndarray, np.ndarray]]]:
        """On the linear region of ``x`` (or of ``pattern``): ``f = c . x + c0``, and the affine
        maps ``z_l = A_l x + e_l`` of all hidden pre-activations."""
        pat = self.pattern(x) if pattern is None else pattern
        a, e = np.eye(self.d), np.zeros(self.d)
        maps = []
        for i, (w, b) in enumerate(self.layers):
            a, e = w @ a, w @ e + b
            if i < len(self.layers) - 1:
                maps.append((a, e))
                mask = pat[i].astype(np.float64)
                a, e = a * mask[:, None], e * mask
        return a[0], float(e[0]), maps


class PiecewiseLinearModel:
    """A model as read by :func:`read_piecewise_linear`: its forms, each on demand.

    Paper:
        De Palma et al. 2021, Section 2, eqs. (1)-(5) (every layer type as an affine map; a
        ReLU net is linear in each activation region).

    Arguments:
        model: the network; input_shape: (C, H, W) for ``nn.Conv2d`` layers (a
            :class:`randadv.nets.conv.RandomImageNet` has its own).

    Attributes:
        source: the model as given; model: its :func:`randadv.nets.plain.scalar_sequential`
            form (the one read); input_shape: as given.

    Example:
        >>> import torch
        >>> from randadv.nets import RandomMLP
        >>> from randadv.protocol import read_piecewise_linear
        >>> net = RandomMLP([3, 4, 4], seed=0, dtype=torch.float64)
        >>> read = read_piecewise_linear(net)
        >>> read.native().depth, [w.shape for w, _ in read.layers()]
        (2, [(4, 3), (4, 4), (1, 4)])
        >>> x = torch.rand(2, 3, dtype=torch.float64)
        >>> bool(abs(read.affine().forward(x.numpy()) - net(x).numpy()).max() < 1e-12)
        True
    """

    def __init__(self, model: nn.Module, input_shape: Sequence[int] | None = None) -> None:
        self.source = model
        self.model = scalar_sequential(model)
        self.input_shape = input_shape

    def native(self) -> PiecewiseLinearStack | None:
        """The stack of the model's own matrices, or None: a :class:`randadv.nets.RandomMLP`
        with a piecewise-linear activation, an ``nn.Sequential`` of ``nn.Flatten`` (first only)
        / ``nn.Identity``, ``nn.Linear`` and ``nn.ReLU`` / ``nn.LeakyReLU`` alternating, ending
        in a ``Linear`` with one output."""
        if isinstance(self.model, RandomMLP):
            return _mlp_stack(self.model)
        if isinstance(self.model, nn.Sequential):
            return _sequential_stack(self.model)
        return None

    def layers(self) -> Layers:
        """The float64 affine layers ``[(W, b), ...]`` with ReLU between
        (:func:`to_affine_layers`); :class:`randadv.errors.InvalidInputError` naming the first
        unsupported layer or activation."""
        return _affine_layers(self.model, self.input_shape)

    def affine(self) -> AffineNet:
        """:class:`AffineNet` over :meth:`layers`."""
        return AffineNet(self.layers())

    def dense_stack(self, dtype: torch.dtype, device: torch.device | str = "cpu",
                    max_entries: int = MAX_STACK_ENTRIES) -> PiecewiseLinearStack | None:
        """:meth:`layers` as a stack of dense maps in ``dtype`` for a conv/linear ReLU
        ``nn.Sequential`` or a ReLU zoo network (:class:`randadv.nets.conv.RandomImageNet`:
        fc, lenet, conv4, resnet); None for other models, unsupported layers, or more than
        ``max_entries`` weights."""
        if not isinstance(self.source, (nn.Sequential, RandomImageNet)):
            return None
        if isinstance(self.source, RandomImageNet) and _layer_entries(self.source) > max_entries:
            return None      # densifying it would take seconds only to be refused
        try:
            layers = self.layers()
        except InvalidInputError:
            return None
        if sum(w.size for w, _ in layers) > max_entries or len(layers) < 2:
            return None
        ws = [torch.as_tensor(w, dtype=dtype, device=device) for w, _ in layers]
        bs = [torch.as_tensor(b, dtype=dtype, device=device) for _, b in layers]
        return _dense_stack(ws[:-1], bs[:-1], ws[-1][0], float(bs[-1][0]))

    def stack(self, dtype: torch.dtype, device: torch.device | str = "cpu"
              ) -> PiecewiseLinearStack | None:
        """:meth:`native`, else :meth:`dense_stack` in ``dtype`` on ``device``, else None."""
        stack = self.native()
        if stack is None:
            stack = self.dense_stack(dtype, device)
        return stack


def read_piecewise_linear(model: nn.Module, input_shape: Sequence[int] | None = None
                          ) -> PiecewiseLinearModel:
    """Read ``model`` as a piecewise-linear network: the one reader of randadv (the module
    docstring lists the forms and who reads them).

    Paper:
        De Palma et al. 2021, Section 2, eqs. (1)-(5) (every layer type as an affine map; a
        ReLU net is linear in each activation region).

    Arguments:
        model: the network (any module; the forms say what they support);
        input_shape: (C, H, W) for ``nn.Conv2d`` layers (a RandomImageNet has its own).

    Returns:
        The :class:`PiecewiseLinearModel`.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from randadv.protocol import read_piecewise_linear
        >>> seq = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
        >>> read = read_piecewise_linear(seq)
        >>> read.native().n_weights, read.affine().hidden_widths
        (16, [4])
        >>> read_piecewise_linear(nn.Tanh()).stack(torch.float32) is None
        True
    """
    return PiecewiseLinearModel(model, input_shape)


def as_piecewise_linear(model: nn.Module) -> PiecewiseLinearStack | None:
    """The piecewise-linear structure of ``model`` if randadv can read it, else None.

    Recognised: :class:`randadv.nets.RandomMLP` with a piecewise-linear activation, and
    ``nn.Sequential`` of ``nn.Flatten``/``nn.Identity``, ``nn.Linear`` and ``nn.ReLU``/
    ``nn.LeakyReLU`` alternating, ending in a ``Linear`` with one output, also followed by
    shape-only modules (``nn.Flatten(0)``) or wrapped in :class:`randadv.nets.LogitDifference`
    over two logits (:func:`randadv.nets.plain.scalar_sequential`).

    Paper:
        De Palma et al. 2021, Section 2 (a ReLU net is piecewise linear: its regions and their
        affine maps).

    Arguments:
        model: any module.

    Returns:
        The ``PiecewiseLinearStack`` or None.

    Example:
        >>> from torch import nn
        >>> from randadv.nets import RandomMLP
        >>> from randadv.protocol import as_piecewise_linear
        >>> mlp = RandomMLP([4, 8], seed=0)
        >>> as_piecewise_linear(mlp) is not None, as_piecewise_linear(nn.Tanh())
        (True, None)
    """
    return read_piecewise_linear(model).native()


def to_affine_layers(model: nn.Module, input_shape: Sequence[int] | None = None) -> Layers:
    """Turn a supported ReLU network into affine layers ``[(W, b), ...]`` with ReLU between.

    Supported: ``randadv.nets.RandomMLP`` (activation ``relu``; ``linear`` is composed away), a
    bare ``nn.Linear``, ``nn.Sequential`` (nested allowed) of ``nn.Linear``, ``nn.ReLU``,
    ``nn.Flatten``, ``nn.Identity`` and ``nn.Conv2d`` (densified exactly; pass
    ``input_shape=(C, H, W)``), and the random image networks
    :class:`randadv.nets.conv.RandomImageNet` of De Palma et al. (``randadv.nets.zoo``: fc,
    lenet, conv4, resnet) with ReLU activations and one output: SeededConv2d (any padding and
    stride) and Sum/AvgPool2d are densified, SeededLinear flattens in C order like the module,
    and a ResidualBlock (eq. (3)) becomes ReLU layers that carry the block input alongside
    ``main`` (its input is a ReLU output, or is split as ``relu(u) - relu(-u)``). Inputs of a
    RandomImageNet are its flattened (C, H, W) images (``input_shape`` defaults to the net's).
    The last layer must be affine with one output; shape-only modules after it (``nn.Flatten(0)``)
    and :class:`randadv.nets.LogitDifference` over a two-logit ``nn.Sequential`` are read through
    :func:`randadv.nets.plain.scalar_sequential`.

    Raises:
        InvalidInputError: naming the first unsupported layer or activation.

    Paper:
        De Palma et al. 2021, Section 2, eqs. (1)-(5) (every layer type as an affine map).

    Arguments:
        model: the network; input_shape: (C, H, W) for ``nn.Conv2d`` layers (RandomImageNet:
        its own by default).

    Returns:
        The layers ``[(W, b), ...]`` (float64 numpy).

    Example:
        >>> import torch
        >>> from randadv.nets import RandomLeNet
        >>> from randadv.protocol import AffineNet, to_affine_layers
        >>> net = RandomLeNet(8, channels=1, width=2, dense=(4,), dtype=torch.float64)
        >>> x = net.sample_inputs(1, "x")
        >>> aff = AffineNet(to_affine_layers(net))
        >>> bool(abs(aff.forward(x.reshape(1, -1).numpy())[0] - net(x)[0].item()) < 1e-9)
        True
    """
    return read_piecewise_linear(model, input_shape).layers()


def model_stack(model: nn.Module, x: torch.Tensor) -> PiecewiseLinearStack | None:
    """The exact piecewise-linear structure of ``model`` for inputs like ``x`` (B, ...), or
    None: :meth:`PiecewiseLinearModel.stack` in x's dtype and on its device."""
    return read_piecewise_linear(model, tuple(x.shape[1:])).stack(x.dtype, x.device)


def _mlp_stack(model: RandomMLP) -> PiecewiseLinearStack | None:
    act = model.activation
    if not act.piecewise_linear:
        return None
    return PiecewiseLinearStack(
        maps=[layer.mm for layer in model.layers],
        biases=[model.bias(i) if model.has_bias else None for i in range(model.depth)],
        out_w=model.out_weight, out_b=0.0,
        slope_pos=act.slope_pos, slope_neg=act.slope_neg,
        rmaps=[layer.rmm for layer in model.layers])


def _sequential_stack(model: nn.Sequential) -> PiecewiseLinearStack | None:
    mods = [m for m in model if not isinstance(m, (nn.Identity, nn.Flatten))]
    if any(isinstance(m, nn.Flatten) and i > 0 for i, m in enumerate(model)):
        return None
    linears, slope_neg = [], None
    for i, m in enumerate(mods):
        if i % 2 == 0:
            if not isinstance(m, nn.Linear):
                return None
            linears.append(m)
        else:
            if isinstance(m, nn.ReLU):
                s = 0.0
            elif isinstance(m, nn.LeakyReLU):
                s = float(m.negative_slope)
            else:
                return None
            if slope_neg is not None and s != slope_neg:
                return None
            slope_neg = s
    if not linears or len(mods) % 2 == 0 or linears[-1].out_features != 1:
        return None
    hidden, last = linears[:-1], linears[-1]
    return _dense_stack([m.weight for m in hidden], [m.bias for m in hidden], last.weight[0],
                        float(last.bias[0].detach()) if last.bias is not None else 0.0,
                        0.0 if slope_neg is None else slope_neg)


def _dense_stack(weights: list[torch.Tensor], biases: list[torch.Tensor | None],
                 out_w: torch.Tensor, out_b: float, slope_neg: float = 0.0
                 ) -> PiecewiseLinearStack:
    """The stack of dense hidden weights ``W_l`` (``h -> h W_l^T``, transposes ``d -> d W_l``),
    their biases and the output layer ``out_w``, ``out_b``; phi of slopes 1 and ``slope_neg``:
    the one builder of :meth:`PiecewiseLinearModel.dense_stack` and a Sequential's native
    stack."""
    return PiecewiseLinearStack(
        maps=[(lambda h, w=w: h @ w.T) for w in weights], biases=list(biases), out_w=out_w,
        out_b=out_b, slope_pos=1.0, slope_neg=slope_neg,
        rmaps=[(lambda d, w=w: d @ w) for w in weights],
        n_weights=sum(w.numel() for w in weights) + out_w.numel())


def _affine_layers(model: nn.Module, input_shape: Sequence[int] | None) -> Layers:
    """:func:`to_affine_layers` of a model already in its scalar_sequential form."""
    if isinstance(model, RandomMLP):
        return _from_random_mlp(model)
    if not isinstance(model, nn.Module):
        raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    shape = tuple(int(s) for s in input_shape) if input_shape is not None else None
    if isinstance(model, RandomImageNet):
        if model.num_outputs != 1:
            raise InvalidInputError(f"{model.name}: exact distances need one scalar output, the "
                                    f"network has num_outputs={model.num_outputs}")
        if shape is not None and math.prod(shape) != model.n:
            raise InvalidInputError(f"{model.name}: input_shape {shape} does not match the "
                                    f"network's input {model.input_shape}")
        shape, mods, where = model.input_shape, _flatten_modules(model.layers), f"{model.name}: "
    elif isinstance(model, (nn.Sequential, nn.Linear)):
        mods, where = _flatten_modules(model), ""
    else:
        raise InvalidInputError(
            f"unsupported model {type(model).__name__}: exact distances accept nn.Sequential of "
            "Linear/ReLU/Flatten/Identity/Conv2d, nn.Linear, randadv.nets.RandomMLP or a "
            "randadv.nets.conv.RandomImageNet (zoo network)")
    layers, pend, _ = _convert(mods, shape, where)
    if pend is None:
        raise InvalidInputError("the model must end with an affine layer (a final ReLU or an "
                                "empty model has no signed scalar output)")
    if pend[0].shape[0] != 1:
        raise InvalidInputError(f"the model must have one scalar output, its last layer has "
                                f"{pend[0].shape[0]} outputs")
    layers.append(pend)
    return layers


def _to_np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(device="cpu", dtype=torch.float64).numpy().copy()


def _module_dense(m: nn.Module, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray,
                                                                   tuple[int, ...]]:
    """Dense matrix of an affine module (a Conv2d, SeededConv2d, Sum/AvgPool2d) on flattened
    (C, H, W) inputs: apply a float64 copy to the identity (exact up to float64 rounding)."""
    if len(shape) != 3:
        raise InvalidInputError(f"{m} needs a (C, H, W) input, got shape {shape}")
    n_in = math.prod(shape)
    c64 = copy.deepcopy(m).to(device="cpu", dtype=torch.float64)
    with torch.no_grad():
        zero = c64(torch.zeros((1, *shape), dtype=torch.float64))
        out_shape = tuple(zero.shape[1:])
        if n_in * math.prod(out_shape) > MAX_DENSE_ENTRIES:
            raise InvalidInputError(f"{m} on input {shape} is too large to densify "
                                    f"({n_in} x {math.prod(out_shape)} entries)")
        basis = torch.eye(n_in, dtype=torch.float64).reshape(n_in, *shape)
        cols = (c64(basis) - zero).reshape(n_in, -1)
    return cols.T.numpy().copy(), zero.reshape(-1).numpy().copy(), out_shape


def _flatten_modules(model: nn.Module) -> list[nn.Module]:
    if isinstance(model, nn.Sequential):
        out: list[nn.Module] = []
        for m in model:
            out.extend(_flatten_modules(m))
        return out
    return [model]


def _from_random_mlp(model: nn.Module) -> Layers:
    name = getattr(model.activation, "name", None)
    if name not in ("relu", "linear"):
        raise InvalidInputError(f"exact distances need a ReLU network; {type(model).__name__} "
                                f"has activation {name!r}")
    raw = [(_to_np(model.layers[i].full()), _to_np(model.bias(i)))
           for i in range(len(model.layers))]
    a = _to_np(model.out_weight).reshape(1, -1)
    raw.append((a, np.zeros(1)))
    if name == "linear":
        w, b = raw[0]
        for w2, b2 in raw[1:]:
            w, b = w2 @ w, w2 @ b + b2
        return [(w, b)]
    return raw


def _compose(outer: tuple[np.ndarray, np.ndarray] | None,
             inner: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray] | None:
    """``outer o inner`` (None = identity)."""
    if inner is None:
        return outer
    if outer is None:
        return inner
    return outer[0] @ inner[0], outer[0] @ inner[1] + outer[1]


_SUPPORTED = ("nn.Linear, nn.ReLU, nn.Flatten, nn.Identity, nn.Conv2d and the randadv.nets "
              "image layers (SeededLinear, SeededConv2d, Nonlinearity('relu'/'linear'), "
              "SumPool2d, AvgPool2d, ResidualBlock)")


def _convert(mods: list[nn.Module], shape: tuple[int, ...] | None, where: str
             ) -> tuple[Layers, tuple[np.ndarray, np.ndarray] | None, tuple[int, ...] | None]:
    """Convert a module chain to ``(hidden layers, pending affine map, output shape)``: the
    chain computes ``pend(relu(W_k ... relu(W_1 x + b_1) ...))``; ``pend`` None is the identity
    (the chain ends with a ReLU, or is empty)."""
    from randadv import nets

    layers: Layers = []
    pend: tuple[np.ndarray, np.ndarray] | None = None
    n_cur = math.prod(shape) if shape is not None else None

    def push_affine(w: np.ndarray, b: np.ndarray) -> None:
        nonlocal pend
        pend = _compose((w, b), pend)

    def push_relu(label: str) -> None:
        nonlocal pend
        if pend is None:
            if layers:
                return  # relu(relu(z)) = relu(z)
            if n_cur is None:
                raise InvalidInputError(f"{label}: a leading ReLU needs input_shape")
            pend = (np.eye(n_cur), np.zeros(n_cur))
        layers.append(pend)
        pend = None

    for pos, m in enumerate(mods):
        label = f"{where}layer {pos} ({m.__class__.__name__})"
        if isinstance(m, nn.Linear):
            if shape is not None and len(shape) != 1:
                raise InvalidInputError(f"{label} applied to a non-flat input of shape {shape}: "
                                        "add nn.Flatten() before it")
            if n_cur is not None and n_cur != m.in_features:
                raise InvalidInputError(f"{label} expects {m.in_features} inputs, gets {n_cur}")
            b = _to_np(m.bias) if m.bias is not None else np.zeros(m.out_features)
            push_affine(_to_np(m.weight), b)
            shape, n_cur = (m.out_features,), m.out_features
        elif isinstance(m, nets.SeededLinear):
            # flatten (C-order, as x.flatten(1)) + linear, eq. (5)
            if n_cur is not None and n_cur != m.in_features:
                raise InvalidInputError(f"{label} expects {m.in_features} inputs, gets {n_cur}")
            b = _to_np(m.bias) if m.bias is not None else np.zeros(m.out_features)
            push_affine(_to_np(m.weight), b)
            shape, n_cur = (m.out_features,), m.out_features
        elif isinstance(m, (nn.Conv2d, nets.SeededConv2d, nets.SumPool2d, nets.AvgPool2d)):
            if shape is None:
                raise InvalidInputError(f"{label}: pass input_shape=(C, H, W) for a "
                                        "convolutional model")
            w, b, shape = _module_dense(m, shape)
            push_affine(w, b)
            n_cur = math.prod(shape)
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise InvalidInputError(f"{label}: only nn.Flatten(start_dim=1, end_dim=-1) "
                                        "is supported")
            if shape is not None:
                shape = (math.prod(shape),)
        elif isinstance(m, nn.Identity):
            pass
        elif isinstance(m, nn.ReLU):
            push_relu(label)
        elif isinstance(m, nets.Nonlinearity):
            name = m.activation.name
            if name == "relu":
                push_relu(label)
            elif name != "linear":
                raise InvalidInputError(f"{label}: exact distances need a ReLU network, got "
                                        f"activation {name!r}")
        elif isinstance(m, nets.ResidualBlock):
            if shape is None:
                raise InvalidInputError(f"{label}: pass input_shape=(C, H, W)")
            pend, shape = _residual(m, layers, pend, shape, label)
            n_cur = math.prod(shape)
        else:
            raise InvalidInputError(f"unsupported {label}: exact distances support {_SUPPORTED} "
                                    f"only (got {m!r})")
    return layers, pend, shape


def _residual(block: nn.Module, layers: Layers, pend: tuple[np.ndarray, np.ndarray] | None,
              shape: tuple[int, ...], label: str
              ) -> tuple[tuple[np.ndarray, np.ndarray] | None, tuple[int, ...]]:
    """Append a skip connection ``post(main(u) + shortcut(u))`` (eq. (3)) to ``layers``; returns
    the new pending map and shape. The block input ``u = pend(h)`` is carried through the ReLU
    layers of ``main`` exactly: as ``relu(u) = u`` when u is a ReLU output (``pend`` None after
    a hidden layer), else as ``(relu(u), relu(-u))`` with ``u = relu(u) - relu(-u)``."""
    main_layers, main_pend, out_shape = _convert(_flatten_modules(block.main), shape,
                                                 f"{label}.main: ")
    n_u = math.prod(shape)
    if block.shortcut is None:
        if out_shape is None or math.prod(out_shape) != n_u:
            raise InvalidInputError(f"{label}: identity shortcut needs main to keep the shape "
                                    f"{shape}, got {out_shape}")
        sc = (np.eye(n_u), np.zeros(n_u))
    else:
        sc_layers, sc_pend, sc_shape = _convert(_flatten_modules(block.shortcut), shape,
                                                f"{label}.shortcut: ")
        if sc_layers or sc_pend is None:
            raise InvalidInputError(f"{label}: only an affine (ReLU-free) shortcut is supported")
        if sc_shape != out_shape:
            raise InvalidInputError(f"{label}: shortcut output {sc_shape} != main output "
                                    f"{out_shape}")
        sc = sc_pend
    n_out = math.prod(out_shape)
    m_last = main_pend if main_pend is not None else (np.eye(n_out), np.zeros(n_out))
    if not main_layers:  # main is affine: the block is affine
        blk = (m_last[0] + sc[0], m_last[1] + sc[1])
        pend = _compose(blk, pend if pend is not None else None)
    else:
        u_map = pend if pend is not None else (np.eye(n_u), np.zeros(n_u))
        nonneg = pend is None and bool(layers)  # u is a ReLU output
        if nonneg:
            carry, recover = (np.eye(n_u), np.zeros(n_u)), np.eye(n_u)
        else:
            carry = (np.vstack([np.eye(n_u), -np.eye(n_u)]), np.zeros(2 * n_u))
            recover = np.hstack([np.eye(n_u), -np.eye(n_u)])
        n_c = carry[0].shape[0]
        first = _compose(main_layers[0], u_map)
        c0 = _compose(carry, u_map)
        layers.append((np.vstack([first[0], c0[0]]), np.concatenate([first[1], c0[1]])))
        for w, b in main_layers[1:]:  # carried values are >= 0: relu keeps them
            z = np.zeros((w.shape[0], n_c))
            layers.append((np.block([[w, z], [np.zeros((n_c, w.shape[1])), np.eye(n_c)]]),
                           np.concatenate([b, np.zeros(n_c)])))
        pend = (np.hstack([m_last[0], sc[0] @ recover]), m_last[1] + sc[1])
    if block.post is not None:
        post_layers, post_pend, _ = _convert(_flatten_modules(block.post), out_shape,
                                             f"{label}.post: ")
        if len(post_layers) == 1 and post_pend is None and np.array_equal(
                post_layers[0][0], np.eye(n_out)) and not post_layers[0][1].any():
            layers.append(pend)
            pend = None
        elif post_layers or post_pend is not None:
            raise InvalidInputError(f"{label}: the post-activation must be a ReLU or identity")
    return pend, out_shape


def _layer_entries(model: RandomImageNet) -> int:
    """About the entries of the dense matrices :meth:`PiecewiseLinearModel.dense_stack` would
    hold for a zoo net, from one forward pass: inputs x outputs of every layer with weights,
    doubled inside residual blocks (their layers carry the block input alongside)."""
    from randadv.nets.layers import ResidualBlock

    sizes: list[int] = []

    def hook(factor: int):
        def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            sizes.append(factor * inputs[0][0].numel() * output[0].numel())
        return record

    residual = {id(m) for b in model.modules() if isinstance(b, ResidualBlock)
                for m in b.modules()}
    handles = [m.register_forward_hook(hook(2 if id(m) in residual else 1))
               for m in model.modules()
               if not list(m.children()) and any(True for _ in m.parameters(recurse=False))]
    try:
        with torch.no_grad():
            model(torch.zeros((1, *model.input_shape), dtype=model.dtype, device=model.device))
    finally:
        for h in handles:
            h.remove()
    return sum(sizes)
