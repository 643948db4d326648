"""Random fully-connected networks: the two-layer model of Bubeck et al. (2021), eq. (1), and the
deep NN-DEF networks of Bartlett et al. (2021), Section 1.1.

Weights and the output layer (the choice documented here, used everywhere in randadv):

* hidden layer ``i`` (``i = 1..L``): ``W_i`` of shape ``(d_i, d_{i-1})`` with i.i.d.
  N(0, 1/d_{i-1}) entries (fan-in scaling, NN-DEF); optional biases N(0, bias_std^2);
  ``hidden_gain`` g multiplies the variance of ``W_2..W_L`` (g = 2 is He scaling, which keeps
  ReLU pre-activations at unit variance; g = 1, NN-DEF, halves it at every ReLU layer);
* output: ``f(x) = a . psi(z_L)`` with ``a_l = +-1/sqrt(d_L)`` uniform (``output="rademacher"``,
  eq. (1) of the two-layer paper) or ``a ~ N(0, I/d_L)`` (``output="gaussian"``, NN-DEF).

With one hidden layer and ``output="rademacher"`` this is exactly eq. (1):
``f(x) = k^-1/2 sum_l a_l psi(w_l . x)``, ``w_l ~ N(0, I/d)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from randadv.errors import InvalidInputError
from randadv.nets.activations import Activation, TensorFn, get_activation
from randadv.nets.seeded_matrix import DEFAULT_MAX_WEIGHT_BYTES, GaussianMatrix
from randadv.nets.seeding import generator, rademacher
from randadv.validation import check_input_batch

OUTPUTS = ("rademacher", "gaussian")


class RandomMLP(nn.Module):
    """A random fully-connected network ``R^d -> R`` with widths ``widths = [d, d_1, ..., d_L]``.

    A pure function of its architecture and ``seed``: the same weights whatever the batch size,
    the number of networks built together, the memory budget or the compute block size.

    Arguments:
        widths: input dimension followed by the hidden widths (at least one hidden layer).
        activation: name (``relu``, ``tanh``, ``softplus``, ``gelu``, ...) or elementwise callable.
        seed: integer seed of the network.
        output: ``"rademacher"`` or ``"gaussian"`` output layer (see module docstring).
        bias_std: standard deviation of the hidden biases (0: no biases).
        hidden_gain: variance gain of the weights after the first layer (see module docstring).
        dtype, device: of the weights and the computation.
        max_weight_bytes: layers larger than this are streamed block by block, never held whole.
        block_rows: rows per compute block of streamed layers.
        generate_on: ``"cpu"`` (identical weights everywhere) or ``"device"`` (see GaussianMatrix).

    Paper:
        Bubeck et al. 2021, eq. (1) (one hidden layer); Bartlett et al. 2021, Section 1,
        (NN-DEF) (ReLU, any widths); De Palma et al. 2021, Section 2 (biases).

    Example:
        >>> import torch
        >>> from randadv.nets import RandomMLP
        >>> a, b = RandomMLP([10, 64, 32], seed=3), RandomMLP([10, 64, 32], seed=3, block_rows=8)
        >>> x = torch.randn(5, 10)
        >>> a(x).shape, torch.allclose(a(x), b(x), atol=1e-6)   # whatever the block size
        (torch.Size([5]), True)
    """

    def __init__(self, widths: Sequence[int], activation: str | Activation | TensorFn = "relu",
                 seed: int = 0, *, output: str = "rademacher", bias_std: float = 0.0,
                 hidden_gain: float = 1.0, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None,
                 max_weight_bytes: int = DEFAULT_MAX_WEIGHT_BYTES, block_rows: int = 4096,
                 generate_on: str = "cpu") -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        if len(widths) < 2:
            raise InvalidInputError(f"widths needs the input dimension and >= 1 hidden width, "
                                    f"got {widths}")
        if any(w <= 0 for w in widths):
            raise InvalidInputError(f"all widths must be positive, got {widths}")
        if output not in OUTPUTS:
            raise InvalidInputError(f"output must be one of {OUTPUTS}, got {output!r}")
        if bias_std < 0 or not math.isfinite(bias_std):
            raise InvalidInputError(f"bias_std must be finite and >= 0, got {bias_std}")
        if not hidden_gain > 0 or not math.isfinite(hidden_gain):
            raise InvalidInputError(f"hidden_gain must be finite and > 0, got {hidden_gain}")
        if dtype not in (torch.float32, torch.float64):
            raise InvalidInputError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.widths = widths
        self.activation = get_activation(activation)
        self.seed = int(seed)
        self.output = output
        self.bias_std = float(bias_std)
        self.hidden_gain = float(hidden_gain)
        self.dtype = dtype
        dev = torch.device(device) if device is not None else torch.device("cpu")
        self.layers = nn.ModuleList(
            GaussianMatrix(widths[i + 1], widths[i],
                           math.sqrt((self.hidden_gain if i > 0 else 1.0) / widths[i]),
                           (self.seed, "W", i), dtype=dtype, max_bytes=max_weight_bytes,
                           block_rows=block_rows, generate_on=generate_on, device=dev)
            for i in range(len(widths) - 1)
        )
        biases = []
        for i, w in enumerate(widths[1:]):
            if self.bias_std > 0:
                b = torch.randn(w, generator=generator(self.seed, "b", i)) * self.bias_std
            else:
                b = torch.zeros(w)
            biases.append(b.to(device=dev, dtype=dtype))
        for i, b in enumerate(biases):
            self.register_buffer(f"bias{i}", b, persistent=False)
        k = widths[-1]
        if output == "rademacher":
            a = rademacher(k, self.seed, "a") / math.sqrt(k)
        else:
            a = torch.randn(k, generator=generator(self.seed, "a")) / math.sqrt(k)
        self.register_buffer("out_weight", a.to(device=dev, dtype=dtype), persistent=False)

    # ------------------------------------------------------------------ structure
    @property
    def d(self) -> int:
        return self.widths[0]

    @property
    def depth(self) -> int:
        """Number of hidden layers L."""
        return len(self.widths) - 1

    @property
    def has_bias(self) -> bool:
        return self.bias_std > 0

    def bias(self, i: int) -> torch.Tensor:
        return getattr(self, f"bias{i}")

    # ------------------------------------------------------------------ evaluation
    def preactivations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[z_1, ..., z_L]`` for a batch ``x`` of shape (B, d)."""
        zs, h = [], x
        for i, layer in enumerate(self.layers):
            z = layer.mm(h)
            if self.has_bias:
                z = z + self.bias(i)
            zs.append(z)
            h = self.activation(z)
        return zs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """f(x): (B, d) -> (B,), or (d,) -> ()."""
        x, squeeze = check_input_batch(x, self.d, self.dtype)
        h = self.activation(self.preactivations(x)[-1])
        out = h @ self.out_weight
        return out[0] if squeeze else out

    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f(x), grad f(x))`` for x of shape (B, d), by explicit backpropagation (no autograd):
        ``grad f = W_1^T (psi'(z_1) * W_2^T (... psi'(z_L) * a))``."""
        x, _ = check_input_batch(x, self.d, self.dtype)
        zs = self.preactivations(x)
        f = self.activation(zs[-1]) @ self.out_weight
        delta = self.activation.derivative(zs[-1]) * self.out_weight
        for i in range(self.depth - 1, 0, -1):
            delta = self.layers[i].rmm(delta) * self.activation.derivative(zs[i - 1])
        return f, self.layers[0].rmm(delta)

    def extra_repr(self) -> str:
        return (f"widths={self.widths}, activation={self.activation.name}, seed={self.seed}, "
                f"output={self.output}, bias_std={self.bias_std}, hidden_gain={self.hidden_gain}")


class TwoLayerRandomNet(RandomMLP):
    """f(x) = k^-1/2 sum_l a_l psi(w_l . x), w_l ~ N(0, I/d), a_l uniform on {-1, +1}.

    Bubeck, Cherapanamjeri, Gidel, Tachet des Combes (2021), eq. (1). forward: (B, d) -> (B,).

    Paper:
        Bubeck et al. 2021, eq. (1).

    Arguments:
        d: input dimension; k: width; activation: psi; seed: the network's seed; dtype,
        device: of the weights; kwargs: the other arguments of :class:`RandomMLP`.

    Example:
        >>> import torch
        >>> from randadv.nets import TwoLayerRandomNet
        >>> net = TwoLayerRandomNet(100, 50, seed=0)
        >>> f, g = net.value_and_grad(torch.randn(8, 100))
        >>> f.shape, g.shape
        (torch.Size([8]), torch.Size([8, 100]))
    """

    def __init__(self, d: int, k: int, activation: str | Activation | TensorFn = "relu",
                 seed: int = 0, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None, **kwargs) -> None:
        super().__init__([d, k], activation, seed, output="rademacher", dtype=dtype,
                         device=device, **kwargs)


class DeepRandomNet(RandomMLP):
    """L hidden layers of width k (Bubeck et al. 2021, Section 4 and Appendix A).

    Hidden weights N(0, 1/fan_in) as in NN-DEF (Bartlett et al. 2021); output Rademacher/sqrt(k)
    (default, equal to eq. (1) at L = 1) or Gaussian N(0, 1/k).

    Paper:
        Bubeck et al. 2021, Section 4 and Appendix A; Bartlett et al. 2021, Section 1
        (NN-DEF).

    Arguments:
        d: input dimension; k: width; depth: number of hidden layers L; activation: psi;
        seed: the network's seed; output: ``"rademacher"`` or ``"gaussian"``; kwargs: the
        other arguments of :class:`RandomMLP`.

    Example:
        >>> import torch
        >>> from randadv.nets import DeepRandomNet
        >>> net = DeepRandomNet(10, 32, depth=3, seed=0)
        >>> net.depth, net(torch.randn(4, 10)).shape
        (3, torch.Size([4]))
    """

    def __init__(self, d: int, k: int, depth: int,
                 activation: str | Activation | TensorFn = "relu", seed: int = 0, *,
                 output: str = "rademacher", **kwargs) -> None:
        if depth < 1:
            raise InvalidInputError(f"depth must be >= 1, got {depth}")
        super().__init__([d] + [k] * depth, activation, seed, output=output, **kwargs)


class DeepReLUNet(RandomMLP):
    """The NN-DEF network of Bartlett, Bubeck, Cherapanamjeri (2021), Section 1.

    ``widths = [d, d_1, ..., d_l]``; (W_i)_jk ~ N(0, 1/d_{i-1}), output W_{l+1} ~ N(0, I/d_l),
    ReLU. For these bias-free nets f(x) = grad f(x) . x (positive homogeneity).

    Paper:
        Bartlett et al. 2021, Section 1, (NN-DEF) and Theorem 1.1.

    Arguments:
        widths: ``[d, d_1, ..., d_l]``; seed: the network's seed; kwargs: the other arguments
        of :class:`RandomMLP`.

    Example:
        >>> import torch
        >>> from randadv.nets import DeepReLUNet
        >>> net = DeepReLUNet([20, 30, 10], seed=0, dtype=torch.float64)
        >>> x = torch.randn(3, 20, dtype=torch.float64)
        >>> f, g = net.value_and_grad(x)
        >>> torch.allclose(f, (g * x).sum(1))   # f(x) = grad f(x) . x
        True
    """

    def __init__(self, widths: Sequence[int], seed: int = 0, **kwargs) -> None:
        kwargs.setdefault("output", "gaussian")
        super().__init__(widths, "relu", seed, **kwargs)
