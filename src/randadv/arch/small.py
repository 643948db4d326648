"""Small ReLU networks that an exact solver finishes: :class:`SmallNetSpec`, written
``fc:D:W1-W2-...`` or ``conv:CxHxW:C1-C2-...[:pK]``.

The fully connected ones are :meth:`randadv.arch.MLPSpec.nn_def` networks; the convolutional
ones are :class:`randadv.nets.ConvNetBuilder` networks (3x3 "same" convolutions, ReLU, an
optional K x K sum pooling, flatten + linear output) read as a plain ``nn.Sequential``
(:func:`randadv.nets.plain.plain_relu_sequential`), which the MILP encoding and the attacks'
piecewise-linear reader take.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import nn

from randadv.arch.base import _Radii
from randadv.arch.mlp import MLPSpec
from randadv.errors import InvalidInputError
from randadv.nets.conv import ConvNetBuilder
from randadv.nets.plain import plain_relu_sequential

__all__ = ["SmallNetSpec"]


@dataclass(frozen=True)
class SmallNetSpec(_Radii):
    """A small random ReLU network, described by a string: ``fc:D:W1-W2`` (the MLP
    ``D -> W1 -> W2 -> 1``: He-scaled hidden layers, Gaussian output) or
    ``conv:CxHxW:C1-C2[:pK]`` (3x3 "same" convolutions with C1, C2 channels on C x H x W
    images, ReLU, an optional K x K sum pooling (eq. (4)), flatten + linear output; He-normal
    weights); biases N(0, ``bias_std``^2) when ``bias_std > 0``.

    Paper:
        De Palma, Kiani, Lloyd 2021, Section 2 (random ReLU networks, eq. (4) pooling) and
        Corollary 1 / Remark 5 (the radii, through ``n`` and ``pixel_ratio``).

    Attributes:
        spec: the string it was parsed from.
        family: ``"fc"`` or ``"conv"``.
        input_shape: ``(D,)`` or ``(C, H, W)``.
        hidden: the hidden widths (fc) or channel counts (conv).
        pool: K of the sum pooling (0: none).
        bias_std: standard deviation of the random biases.

    Example:
        >>> import torch
        >>> from randadv.arch import SmallNetSpec
        >>> spec = SmallNetSpec.parse("conv:1x4x4:2:p2")
        >>> spec.n, spec.hidden_neurons, spec.pixel_ratio
        (16, 32, 0.25)
        >>> spec.build(seed=0)(torch.rand(3, 1, 4, 4, dtype=torch.float64)).shape
        torch.Size([3, 1])
    """

    spec: str
    family: str
    input_shape: tuple[int, ...]
    hidden: tuple[int, ...]
    pool: int = 0
    bias_std: float = 0.0

    @classmethod
    def parse(cls, spec: str, bias_std: float = 0.0) -> SmallNetSpec:
        """The spec of the string ``spec``; :class:`randadv.errors.InvalidInputError` naming
        it when it is malformed or its pooling window exceeds the image."""
        parts = str(spec).strip().split(":")
        bad = InvalidInputError(f"architecture {spec!r}: expected fc:D:W1-W2-... or "
                                "conv:CxHxW:C1-C2-...[:pK] with positive integers")
        try:
            if parts[0] == "fc" and len(parts) == 3:
                d, hidden = int(parts[1]), tuple(int(w) for w in parts[2].split("-"))
                if d < 1 or not hidden or min(hidden) < 1:
                    raise bad
                return cls(spec, "fc", (d,), hidden, bias_std=bias_std)
            if parts[0] == "conv" and len(parts) in (3, 4):
                shape = tuple(int(v) for v in parts[1].split("x"))
                hidden = tuple(int(c) for c in parts[2].split("-"))
                pool = 0
                if len(parts) == 4:
                    if not parts[3].startswith("p"):
                        raise bad
                    pool = int(parts[3][1:])
                if len(shape) != 3 or min(shape) < 1 or not hidden or min(hidden) < 1 or pool < 0:
                    raise bad
                if pool and (pool > shape[1] or pool > shape[2]):
                    raise InvalidInputError(f"architecture {spec!r}: pooling window {pool} larger "
                                            f"than the {shape[1]}x{shape[2]} image")
                return cls(spec, "conv", shape, hidden, pool, bias_std)
        except InvalidInputError:
            raise
        except ValueError:      # a part that is not an integer
            raise bad from None
        raise bad

    @property
    def n(self) -> int:
        """Input dimension."""
        return math.prod(self.input_shape)

    @property
    def hidden_neurons(self) -> int:
        """ReLUs of the network (what an exact solve branches on)."""
        if self.family == "fc":
            return sum(self.hidden)
        _, h, w = self.input_shape
        return sum(self.hidden) * h * w

    @property
    def model_input_shape(self) -> tuple[int, ...] | None:
        """The ``input_shape`` to give the exact solver and the attacks: ``None`` for fc (flat
        inputs), ``(C, H, W)`` for conv."""
        return None if self.family == "fc" else self.input_shape

    @cached_property
    def pixel_ratio(self) -> float:
        """``|I^(L_f)| / |I^(0)|`` (Theorem 2, eq. (14)): 1 for fc."""
        if self.family == "fc":
            return self._mlp.pixel_ratio
        return self._conv(0, torch.float64).pixel_ratio

    @property
    def _mlp(self) -> MLPSpec:
        return MLPSpec.nn_def([self.n, *self.hidden], hidden_gain=2.0, bias_std=self.bias_std)

    def _conv(self, seed: int, dtype: torch.dtype):
        b = ConvNetBuilder("conv", self.input_shape, seed, dtype=dtype,
                           bias=self.bias_std > 0, sigma_b2=self.bias_std ** 2)
        for c in self.hidden:
            b.conv(c, 3).act()
        if self.pool:
            b.sum_pool(self.pool)
        return b.build()

    def build(self, seed: int = 0, *, dtype: torch.dtype = torch.float64) -> nn.Module:
        """The network of seed ``seed``: a ``DeepReLUNet`` (fc) or a plain ``nn.Sequential``
        (conv), in ``dtype`` (float64 by default, as exact solves want)."""
        if self.family == "fc":
            return self._mlp.build(seed, dtype=dtype)
        return plain_relu_sequential(self._conv(seed, dtype))
