"""One description of randadv's random MLPs: :class:`MLPSpec`.

From it come the module (``build(seed)``, the :class:`randadv.nets.RandomMLP` that
``TwoLayerRandomNet`` / ``DeepRandomNet`` / ``DeepReLUNet`` / ``RandomMLP`` build with the same
arguments: the same weights for the same seed), its piecewise-linear form (``plain(seed)``, a
plain ``nn.Sequential``), its infinite-width law (NNGP kernel, ``E ||grad f||^2``, the Gaussian
law of ``(f, grad f)`` and its sampler), the theory's predictions (``single_step_prediction``,
the infinite-width single step, the exact finite-(d, k) law of a two-layer ray, the Min-Pert
radius) and De Palma et al.'s radii (``pixel_ratio = 1``: a fully connected net flattens at its
input). Every method calls the theory function it names with the spec's parameters, so its
numbers are those of that function.

Parameter names, the same here, in :class:`randadv.nets.RandomMLP` and in :mod:`randadv.theory`:
``widths = [d, d_1, ..., d_L]``, ``activation``, ``output`` (``"rademacher"``: eq. (1) of Bubeck
et al. 2021; ``"gaussian"``: NN-DEF), ``bias_std`` (hidden biases N(0, bias_std^2)) and
``hidden_gain`` (the variance gain g of ``W_2..W_L``: N(0, g / d_{l-1}); 1 is NN-DEF, 2 He).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn

from randadv import theory as th
from randadv.arch.base import _Radii
from randadv.errors import InvalidInputError
from randadv.nets.activations import ACTIVATIONS, Activation, TensorFn, get_activation
from randadv.nets.mlp import OUTPUTS, RandomMLP
from randadv.theory.gp_limit import gp_law_of

__all__ = ["MLPSpec"]

_MEMORY_OPTIONS = ("max_weight_bytes", "block_rows", "generate_on")


def _activation_field(activation: str | Activation | TensorFn) -> str | Activation:
    """A registry activation by its name (JSON-able, hashable), any other as an Activation."""
    act = get_activation(activation)      # InvalidInputError for an unknown name
    return act.name if ACTIVATIONS.get(act.name) is act else act


@dataclass(frozen=True)
class MLPSpec(_Radii):
    """A random fully connected network ``R^d -> R`` described once: its widths, activation,
    output law, biases and hidden gain (the parameters of :class:`randadv.nets.RandomMLP`).

    ``build(seed)`` gives the module; ``plain(seed)`` its piecewise-linear form (a plain
    ``nn.Sequential``); ``nngp_kernel``, ``nngp_kernel_matrix``, ``expected_grad_norm_sq``,
    ``gp_law``, ``sample_gp``, ``gp_single_step`` its infinite-width law;
    ``single_step_prediction``, ``two_layer_ray``, ``fourth_moments``, ``min_pert_ratio`` the
    theory's predictions; ``n``, ``pixel_ratio`` (1) and ``lp_radius``,
    ``corollary1_l1_radius``, ``corollary1_segment_radius`` De Palma et al.'s radii. The
    constructors :meth:`two_layer`, :meth:`deep` and :meth:`nn_def` describe
    ``TwoLayerRandomNet``, ``DeepRandomNet`` and ``DeepReLUNet``.

    Paper:
        Bubeck et al. 2021, eq. (1) (one hidden layer); Bartlett et al. 2021, Section 1,
        (NN-DEF) (any widths); De Palma et al. 2021, Section 2 (biases).

    Attributes:
        widths: ``(d, d_1, ..., d_L)``, at least one hidden layer, all positive.
        activation: a registry name (``"relu"``, ``"tanh"``, ...) or an :class:`Activation`
            (an elementwise callable is turned into one).
        output: ``"rademacher"`` or ``"gaussian"``.
        bias_std: standard deviation of the hidden biases (0: none).
        hidden_gain: variance gain of ``W_2..W_L`` (1: NN-DEF; 2: He).

    Example:
        >>> import torch
        >>> from randadv.arch import MLPSpec
        >>> from randadv.nets import DeepRandomNet
        >>> spec = MLPSpec.deep(10, 32, depth=2, hidden_gain=2.0)
        >>> x = torch.randn(4, 10)
        >>> torch.equal(spec.build(seed=3)(x), DeepRandomNet(10, 32, 2, seed=3, hidden_gain=2.0)(x))
        True
        >>> round(spec.gp_law().f_var, 6), spec.pixel_ratio   # He-scaled ReLU: Var f = 1/2
        (0.5, 1.0)
    """

    widths: tuple[int, ...]
    activation: str | Activation = "relu"
    output: str = "rademacher"
    bias_std: float = 0.0
    hidden_gain: float = 1.0

    def __post_init__(self) -> None:
        try:
            widths = tuple(int(w) for w in self.widths)
        except (TypeError, ValueError):
            raise InvalidInputError(f"widths must be integers [d, d_1, ..., d_L], got "
                                    f"{self.widths!r}") from None
        if len(widths) < 2:
            raise InvalidInputError(f"widths needs the input dimension and >= 1 hidden width, "
                                    f"got {list(widths)}")
        if any(w <= 0 for w in widths):
            raise InvalidInputError(f"all widths must be positive, got {list(widths)}")
        if self.output not in OUTPUTS:
            raise InvalidInputError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        bias_std, gain = float(self.bias_std), float(self.hidden_gain)
        if not (math.isfinite(bias_std) and bias_std >= 0):
            raise InvalidInputError(f"bias_std must be finite and >= 0, got {self.bias_std}")
        if not (math.isfinite(gain) and gain > 0):
            raise InvalidInputError(f"hidden_gain must be finite and > 0, got "
                                    f"{self.hidden_gain}")
        activation = _activation_field(self.activation)
        object.__setattr__(self, "widths", widths)
        object.__setattr__(self, "activation", activation)
        object.__setattr__(self, "bias_std", bias_std)
        object.__setattr__(self, "hidden_gain", gain)

    # ------------------------------------------------------------------ the families
    @classmethod
    def two_layer(cls, d: int, k: int, activation: str | Activation | TensorFn = "relu",
                  **kwargs: Any) -> MLPSpec:
        """``TwoLayerRandomNet(d, k, activation)``: eq. (1) of Bubeck et al. (2021), Rademacher
        output; ``kwargs``: ``bias_std``."""
        if "output" in kwargs or "hidden_gain" in kwargs:
            raise InvalidInputError("a two-layer net (eq. (1)) has a Rademacher output and no "
                                    "hidden layer after the first; use MLPSpec.deep")
        return cls((d, k), activation, "rademacher", **kwargs)

    @classmethod
    def deep(cls, d: int, k: int, depth: int, activation: str | Activation | TensorFn = "relu",
             *, output: str = "rademacher", bias_std: float = 0.0,
             hidden_gain: float = 1.0) -> MLPSpec:
        """``DeepRandomNet(d, k, depth, activation, ...)``: ``depth`` hidden layers of width k."""
        if int(depth) < 1:
            raise InvalidInputError(f"depth must be >= 1, got {depth}")
        return cls((d,) + (k,) * int(depth), activation, output, bias_std, hidden_gain)

    @classmethod
    def nn_def(cls, widths: Sequence[int], *, output: str = "gaussian", bias_std: float = 0.0,
               hidden_gain: float = 1.0) -> MLPSpec:
        """``DeepReLUNet(widths, ...)``: the NN-DEF net of Bartlett et al. (2021), ReLU,
        Gaussian output by default."""
        return cls(tuple(widths), "relu", output, bias_std, hidden_gain)

    # ------------------------------------------------------------------ structure
    @property
    def hidden(self) -> tuple[int, ...]:
        """The hidden widths ``(d_1, ..., d_L)``."""
        return self.widths[1:]

    @property
    def depth(self) -> int:
        """Number of hidden layers L."""
        return len(self.hidden)

    @property
    def d(self) -> int:
        """Input dimension."""
        return self.widths[0]

    @property
    def _act(self) -> Activation:
        """The activation itself (the field holds a registry activation by its name)."""
        return get_activation(self.activation)

    @property
    def activation_name(self) -> str:
        return self._act.name

    @property
    def piecewise_linear(self) -> bool:
        """Whether the network is piecewise linear (its activation is)."""
        return bool(self._act.piecewise_linear)

    n = d
    """Input dimension (De Palma et al.'s name for d)."""

    @property
    def pixel_ratio(self) -> float:
        """``|I^(L_f)| / |I^(0)| = 1``: a fully connected net flattens at its input."""
        return 1.0

    def config(self) -> dict[str, Any]:
        """The spec as a JSON-able dict (``MLPSpec(**spec.config())`` rebuilds a registry
        activation's spec)."""
        return dict(widths=list(self.widths), activation=self.activation_name,
                    output=self.output, bias_std=self.bias_std, hidden_gain=self.hidden_gain)

    # ------------------------------------------------------------------ modules
    def build(self, seed: int = 0, *, dtype: torch.dtype = torch.float32,
              device: torch.device | str | None = None, **memory: Any) -> RandomMLP:
        """The :class:`randadv.nets.RandomMLP` of seed ``seed``; ``memory``: its
        ``max_weight_bytes``, ``block_rows``, ``generate_on`` (the weights do not depend on
        them)."""
        bad = sorted(set(memory) - set(_MEMORY_OPTIONS))
        if bad:
            raise InvalidInputError(f"unknown build options {bad}; known: {_MEMORY_OPTIONS} "
                                    "(the architecture's parameters belong to the spec)")
        return RandomMLP(list(self.widths), self.activation, seed, output=self.output,
                         bias_std=self.bias_std, hidden_gain=self.hidden_gain, dtype=dtype,
                         device=device, **memory)

    def plain(self, seed: int = 0, *, dtype: torch.dtype = torch.float64,
              device: torch.device | str | None = None) -> nn.Sequential:
        """The network of seed ``seed`` as a plain ``nn.Sequential`` of ``nn.Linear`` and
        ``nn.ReLU`` / ``nn.LeakyReLU`` ending in ``Linear(d_L, 1)`` and ``nn.Flatten(0)``
        (output (B,) as the module's): the piecewise-linear form the exact readers
        (:func:`randadv.exact.to_affine_layers`, :func:`randadv.attacks.as_piecewise_linear`)
        take. Materialises every weight. Raises :class:`InvalidInputError` for an activation
        that is not piecewise linear with slope 1 on the positive side."""
        act = self._act
        if not act.piecewise_linear or act.slope_pos != 1.0:
            raise InvalidInputError(f"{act.name} is not a ReLU-like piecewise-linear activation "
                                    "(slope 1 for z > 0): no plain piecewise-linear form")
        net = self.build(seed, dtype=dtype)
        mods: list[nn.Module] = []
        for i, layer in enumerate(net.layers):
            lin = nn.Linear(layer.cols, layer.rows, bias=net.has_bias, dtype=dtype)
            with torch.no_grad():
                lin.weight.copy_(layer.full())
                if net.has_bias:
                    lin.bias.copy_(net.bias(i))
            mods += [lin, nn.ReLU() if act.slope_neg == 0.0 else nn.LeakyReLU(act.slope_neg)]
        head = nn.Linear(self.widths[-1], 1, bias=False, dtype=dtype)
        with torch.no_grad():
            head.weight.copy_(net.out_weight.reshape(1, -1))
        seq = nn.Sequential(*mods, head, nn.Flatten(0)).requires_grad_(False)
        return seq.to(device) if device is not None else seq

    # ------------------------------------------------------------------ infinite width
    def nngp_kernel(self, x: ArrayLike, y: ArrayLike, **quad: Any) -> th.NNGPKernel:
        """:func:`randadv.theory.nngp_kernel` of this network at x, y (``quad``: ``n_quad``,
        ``quad``)."""
        return th.nngp_kernel(x, y, list(self.widths), self.activation, self.bias_std, self.output,
                              hidden_gain=self.hidden_gain, **quad)

    def nngp_kernel_matrix(self, X: ArrayLike, Y: ArrayLike | None = None,
                           **quad: Any) -> np.ndarray:
        """:func:`randadv.theory.nngp_kernel_matrix` of this network."""
        return th.nngp_kernel_matrix(X, Y, list(self.widths), self.activation, self.bias_std,
                                     self.output, hidden_gain=self.hidden_gain, **quad)

    def expected_grad_norm_sq(self, x: ArrayLike, method: str = "exact",
                              **quad: Any) -> float | np.ndarray:
        """:func:`randadv.theory.expected_grad_norm_sq` of this network."""
        return th.expected_grad_norm_sq(x, list(self.widths), self.activation, self.bias_std,
                                        hidden_gain=self.hidden_gain, method=method, **quad)

    def gp_law(self, x_norm: float | None = None, **quad: Any) -> th.ValueGradLaw:
        """:func:`randadv.theory.gp_limit.gp_law_of` of this spec: the infinite-width law of
        ``(f(x), grad f(x))`` (:func:`randadv.theory.gp_value_grad_law`) at ``||x|| = x_norm``
        (default sqrt(d))."""
        return gp_law_of(self, x_norm=x_norm, **quad)

    def sample_gp(self, x: ArrayLike, n: int, seed: int | np.random.Generator = 0, *,
                  full: bool = False, **quad: Any) -> th.GPSamples:
        """:func:`randadv.theory.sample_gp_value_and_grad` of this network at x (shape (d,))."""
        arr = np.asarray(x)
        if arr.ndim != 1 or arr.size != self.d:
            raise InvalidInputError(f"x must have shape ({self.d},), got {arr.shape}")
        return th.sample_gp_value_and_grad(x, n, self.depth, self.activation, seed=seed, full=full,
                                           bias_std=self.bias_std, hidden_gain=self.hidden_gain,
                                           **quad)

    def gp_single_step(self, *, x_norm: float | None = None, max_eta: float = 20.0,
                       max_rel: float | None = None, n: int = 200_000,
                       seed: int = 0) -> th.GPSingleStep:
        """:func:`randadv.theory.gp_single_step`: the single step at infinite width."""
        return th.gp_single_step(self.d, self.depth, self.activation, x_norm=x_norm,
                                 bias_std=self.bias_std, hidden_gain=self.hidden_gain,
                                 max_eta=max_eta, max_rel=max_rel, n=n, seed=seed)

    def output_correlation(self, rho: ArrayLike) -> float | np.ndarray:
        """The infinite-width correlation of ``f(x), f(y)`` (and of the last hidden layer's
        images) for inputs of correlation ``rho``: ``c^L(rho)``, the iterated ReLU correlation
        map (:func:`randadv.theory.relu_correlation_iterates`; Bartlett et al. 2021, Lemma 3.2).
        Bias-free ReLU nets only (for them it holds for any ``hidden_gain`` and input norms)."""
        if self.activation_name != "relu" or self.bias_std > 0:
            raise InvalidInputError(f"output_correlation is the bias-free ReLU closed form, got "
                                    f"{self.activation_name} with bias_std {self.bias_std}; "
                                    "use nngp_kernel(x, y).correlation")
        return th.relu_correlation_iterates(rho, self.depth)[-1]

    # ------------------------------------------------------------------ predictions
    def single_step_prediction(self, x_norm_sq_over_d: float = 1.0, *,
                               finite_d: bool = True) -> th.SingleStepPrediction:
        """:func:`randadv.theory.single_step_prediction` of this network (bias-free nets only).
        ``finite_d``: pass d (exact in d at depth 1; deeper nets' prediction has no finite-d
        term either way); False: the d -> infinity limit."""
        if self.bias_std > 0:
            raise InvalidInputError("single_step_prediction is for bias-free nets; use gp_law "
                                    "or gp_single_step with biases")
        return th.single_step_prediction(self.activation, self.depth,
                                         self.d if finite_d and self.depth == 1 else None,
                                         x_norm_sq_over_d, hidden_gain=self.hidden_gain)

    def _one_hidden_layer(self, what: str) -> int:
        if self.depth != 1:
            raise InvalidInputError(f"{what} is for one hidden layer, got depth {self.depth}")
        if self.bias_std > 0:
            raise InvalidInputError(f"{what} is for bias-free nets, got bias_std "
                                    f"{self.bias_std}")
        return self.widths[1]

    def two_layer_ray(self, pairs: int = 1, seed: int = 0, **options: Any) -> th.TwoLayerRay:
        """:func:`randadv.theory.sample_two_layer_ray`: exact draws of the ray of a two-layer
        net (one hidden layer, no biases); ``options``: ``first_pair``, ``x_norm``,
        ``device``."""
        k = self._one_hidden_layer("two_layer_ray")
        return th.sample_two_layer_ray(self.d, k, self.activation, pairs, seed,
                                       output=self.output, **options)

    def fourth_moments(self) -> th.FourthMoments:
        """:func:`randadv.theory.fourth_moments` of a two-layer net at ``||x|| = sqrt(d)``."""
        k = self._one_hidden_layer("fourth_moments")
        return th.fourth_moments(self.activation, self.d, k, self.output)

    def min_pert_ratio(self, exact: bool = True) -> float:
        """Bartlett et al.'s Min-Pert radius ratio ``E ||W^+ W x|| / ||x||`` of the first layer
        (:func:`randadv.theory.min_pert_ratio_mean`; ``exact=False``: the approximation
        sqrt(min(k, d) / d), :func:`randadv.theory.min_pert_ratio_theory`)."""
        k = self.widths[1]
        return th.min_pert_ratio_mean(k, self.d) if exact else th.min_pert_ratio_theory(k, self.d)
