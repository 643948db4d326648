"""Activation functions psi of the random networks, with their derivatives psi'.

Theorem 1 of Bubeck et al. (2021) covers Lipschitz activations with Lipschitz derivative (tanh,
softplus, gelu, ...); Theorem 2 covers the ReLU. A piecewise-linear activation lets the smallest
flipping step be found exactly (the network is piecewise linear along any ray).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from randadv.errors import InvalidInputError

TensorFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Activation:
    """An activation psi with derivative psi'.

    ``piecewise_linear`` activations are positively homogeneous ReLU-like maps
    ``psi(z) = z * (slope_pos if z > 0 else slope_neg)`` whose kinks are at 0 only.

    Paper:
        Bubeck et al. 2021, eq. (1) (psi and the psi' of grad f).

    Attributes:
        name: registry name; fn: psi; derivative: psi' (elementwise torch functions).
        piecewise_linear, slope_pos, slope_neg: as above.

    Example:
        >>> import torch
        >>> from randadv.nets import get_activation
        >>> relu = get_activation("relu")
        >>> z = torch.tensor([-1.0, 2.0])
        >>> relu.fn(z).tolist(), relu.derivative(z).tolist()
        ([0.0, 2.0], [0.0, 1.0])
    """

    name: str
    fn: TensorFn
    derivative: TensorFn
    piecewise_linear: bool = False
    slope_pos: float = 1.0
    slope_neg: float = 0.0

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return self.fn(z)


def _relu_grad(z: torch.Tensor) -> torch.Tensor:
    return (z > 0).to(z.dtype)


def _gelu_grad(z: torch.Tensor) -> torch.Tensor:
    cdf = 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))
    pdf = torch.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return cdf + z * pdf


def _tanh_grad(z: torch.Tensor) -> torch.Tensor:
    return 1.0 - torch.tanh(z) ** 2


def _leaky_relu(neg_slope: float) -> Activation:
    return Activation(
        name=f"leaky_relu({neg_slope:g})",
        fn=lambda z: torch.where(z > 0, z, neg_slope * z),
        derivative=lambda z: torch.where(z > 0, torch.ones_like(z), torch.full_like(z, neg_slope)),
        piecewise_linear=True,
        slope_neg=neg_slope,
    )


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation("relu", torch.relu, _relu_grad, piecewise_linear=True),
    "leaky_relu": _leaky_relu(0.01),
    "linear": Activation("linear", lambda z: z, torch.ones_like, piecewise_linear=True,
                         slope_neg=1.0),
    "tanh": Activation("tanh", torch.tanh, _tanh_grad),
    "softplus": Activation("softplus", torch.nn.functional.softplus, torch.sigmoid),
    "gelu": Activation("gelu", torch.nn.functional.gelu, _gelu_grad),
    "sigmoid": Activation("sigmoid", torch.sigmoid,
                          lambda z: torch.sigmoid(z) * (1.0 - torch.sigmoid(z))),
}
"""The registry of named activations: name -> :class:`Activation`.

Paper:
    Bubeck et al. 2021, eq. (1) (any activation psi; Section 4 uses ReLU, tanh, ...);
    Bartlett et al. 2021, Section 1 (ReLU).

Example:
    >>> from randadv.nets import ACTIVATIONS
    >>> ACTIVATIONS["relu"].piecewise_linear, ACTIVATIONS["tanh"].piecewise_linear
    (True, False)
"""


def _autograd_derivative(fn: TensorFn) -> TensorFn:
    def derivative(z: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            zz = z.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(fn(zz).sum(), zz)
        return g

    return derivative


def get_activation(activation: str | Activation | TensorFn) -> Activation:
    """Resolve a name (``relu``, ``tanh``, ``softplus``, ``gelu``, ...), an :class:`Activation`,
    or any elementwise callable (its derivative then comes from autograd).

    Paper:
        Bubeck et al. 2021, eq. (1) (the activation psi).

    Arguments:
        activation: a registry name, an :class:`Activation`, or an elementwise callable.

    Returns:
        :class:`Activation`.

    Example:
        >>> import torch
        >>> from randadv.nets import get_activation
        >>> act = get_activation(torch.sin)   # psi' by autograd: cos
        >>> round(float(act.derivative(torch.tensor([0.0]))[0]), 6)
        1.0
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        try:
            return ACTIVATIONS[activation]
        except KeyError:
            raise InvalidInputError(
                f"unknown activation {activation!r}; known: {', '.join(sorted(ACTIVATIONS))} "
                "(or pass any elementwise callable)"
            ) from None
    if callable(activation):
        name = getattr(activation, "__name__", type(activation).__name__)
        return Activation(name, activation, _autograd_derivative(activation))
    raise InvalidInputError(f"activation must be a name or a callable, got {activation!r}")
